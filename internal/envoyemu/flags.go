package envoyemu

import (
	"net/http"
	"strconv"
	"strings"
)

// responseFlags are Envoy's response flags (envoy docs: configuration/
// observability/access_log/usage, %RESPONSE_FLAGS%), the ones the emulated
// proxy can set.
type responseFlags uint32

const (
	flagUH  responseFlags = 1 << iota // no healthy upstream host
	flagUT                            // upstream request timeout
	flagLR                            // connection local reset
	flagUR                            // upstream remote reset
	flagUF                            // upstream connection failure
	flagUC                            // upstream connection termination
	flagUO                            // upstream overflow (circuit breaking)
	flagNR                            // no route configured
	flagURX                           // upstream retry limit exceeded
	flagDC                            // downstream connection termination
	flagNC                            // upstream cluster not found
	flagDI                            // delay injected by the fault filter
	flagFI                            // abort injected by the fault filter
)

// flagOrder is Envoy's order of the short flags in %RESPONSE_FLAGS% (envoy
// source/common/stream_info/utility.h, ALL_RESPONSE_STRING_FLAGS).
var flagOrder = []struct {
	f    responseFlags
	name string
}{
	{flagUH, "UH"}, {flagUT, "UT"}, {flagLR, "LR"}, {flagUR, "UR"}, {flagUF, "UF"},
	{flagUC, "UC"}, {flagUO, "UO"}, {flagNR, "NR"}, {flagDI, "DI"}, {flagFI, "FI"}, {flagDC, "DC"}, {flagURX, "URX"}, {flagNC, "NC"},
}

// String is the flags as Envoy's access log prints them: comma-separated,
// or "-" for none.
func (f responseFlags) String() string {
	if f == 0 {
		return "-"
	}
	var parts []string
	for _, o := range flagOrder {
		if f&o.f != 0 {
			parts = append(parts, o.name)
		}
	}
	return strings.Join(parts, ",")
}

// Local reply bodies, as Envoy writes them.
const (
	bodyNoHealthyUpstream = "no healthy upstream"
	bodyTimeout           = "upstream request timeout"
	bodyResetPrefix       = "upstream connect error or disconnect/reset before headers. "
)

// resetBody is the body of a local reply for an upstream that failed before
// answering: "upstream connect error or disconnect/reset before headers.
// reset reason: connection failure, …" ("retried and the latest reset
// reason" once retried).
func resetBody(reason string, retried bool) string {
	if retried {
		return bodyResetPrefix + "retried and the latest reset reason: " + reason
	}
	return bodyResetPrefix + "reset reason: " + reason
}

// localReply writes a reply the proxy makes itself.
func localReply(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	if body != "" {
		h.Set("Content-Type", "text/plain")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Server", "envoy")
	w.WriteHeader(code)
	if body != "" {
		_, _ = w.Write([]byte(body))
	}
}
