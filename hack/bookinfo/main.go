// Command bookinfo serves one version of one Bookinfo service — drill's Go
// workloads (internal/bookinfo/app) — on port 9080, as the entrypoint of the
// Bookinfo images drill builds for kind clusters without a registry
// (hack/kind-images.sh):
//
//	bookinfo reviews v2
//
// It reads what upstream's containers read from their environment
// (SERVICES_DOMAIN, DETAILS_HOSTNAME, REVIEWS_HOSTNAME, RATINGS_HOSTNAME), names
// its pod after HOSTNAME, its namespace after POD_NAMESPACE and its cluster after
// CLUSTER_NAME, and stops cleanly on SIGTERM as kubelet asks.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meshdrill/drill/internal/bookinfo/app"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bookinfo:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: bookinfo SERVICE VERSION (e.g. bookinfo reviews v2)")
	}
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// Calls to other services keep their connections, as upstream's
	// workloads do (Python requests sessions, JAX-RS clients): Go's default
	// transport keeps two idle connections a host, so under load most calls
	// would open a new one, through the sidecar's capture every time.
	out := http.DefaultTransport.(*http.Transport).Clone()
	out.MaxIdleConnsPerHost = 64
	h, err := app.New(args[0], args[1], app.Env{
		Cluster:   vars["CLUSTER_NAME"],
		Namespace: vars["POD_NAMESPACE"],
		Pod:       vars["HOSTNAME"],
		Vars:      vars,
		Log:       log,
		Outbound:  out,
	})
	if err != nil {
		return err
	}
	addr := ":9080"
	if a := vars["BOOKINFO_ADDR"]; a != "" {
		addr = a
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "service", args[0], "version", args[1], "addr", addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
