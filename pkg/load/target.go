package load

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Target is what an attack sends: one request, repeated.
type Target struct {
	// Method defaults to GET.
	Method string
	// URL is the full address, e.g. http://127.0.0.1:31080/productpage.
	URL string
	// Host, when set, is sent as the Host header instead of the URL's host: how an
	// Istio ingress gateway picks the virtual service (a Gateway's hosts) when it is
	// reached by IP or through a port-forward.
	Host string
}

// String describes the target for people and for the load.started event.
func (t Target) String() string {
	s := t.method() + " " + t.URL
	if t.Host != "" {
		s += " (Host: " + t.Host + ")"
	}
	return s
}

func (t Target) method() string {
	if t.Method == "" {
		return http.MethodGet
	}
	return strings.ToUpper(t.Method)
}

func (t Target) validate() error {
	const form = "write it as http://HOST:PORT/PATH, e.g. http://127.0.0.1:8080/productpage"
	u, err := url.Parse(t.URL)
	switch {
	case err != nil:
		return fmt.Errorf("load target URL %q: %w; %s", t.URL, errors.Unwrap(err), form)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("load target URL %q: scheme must be http or https; %s", t.URL, form)
	case u.Host == "":
		return fmt.Errorf("load target URL %q: no host; %s", t.URL, form)
	case strings.ContainsAny(t.Host, " /\r\n"):
		return fmt.Errorf("load target Host %q: not a host name", t.Host)
	}
	return nil
}
