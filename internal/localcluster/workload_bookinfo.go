package localcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/bookinfo/app"
)

// program finds what runs image: a resolver given WithPrograms, else a
// Bookinfo workload. The error says what the node runs, for the pod's status.
func (n *Node) program(image string) (Program, string) {
	for _, r := range n.cfg.programs {
		if p, ok := r(image); ok {
			return p, ""
		}
	}
	if p, ok := BookinfoProgram(image); ok {
		return p, ""
	}
	var known []string
	for _, svc := range bookinfo.Services {
		for _, v := range bookinfo.Versions(svc) {
			known = append(known, "examples-bookinfo-"+svc+"-"+v)
		}
	}
	return nil, fmt.Sprintf("drill's local node has no program for image %q: it runs no container images, only "+
		"Go stand-ins for Bookinfo's (%s, from any registry and tag) and what drill registers; use one of those images or run this drill on kind",
		image, strings.Join(known, ", "))
}

// BookinfoProgram returns the program that stands in for one of Bookinfo's
// images: the service of package bookinfo/app, served on port 9080 of the
// pod's address as upstream's images serve it.
func BookinfoProgram(image string) (Program, bool) {
	svc, version, ok := bookinfo.ParseImage(image)
	if !ok || !bookinfo.Supported(svc, version) {
		return nil, false
	}
	return ProgramFunc(func(ctx context.Context, c *Container) error {
		h, err := app.New(svc, version, app.Env{
			Cluster: c.Cluster, Namespace: c.Pod.Namespace, Pod: c.Pod.Name,
			Outbound: c.Outbound, Vars: c.Env, Log: c.Log,
		})
		if err != nil {
			return err
		}
		l, err := c.Listen(bookinfo.Port)
		if err != nil {
			return err
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(c.Log.Handler(), slog.LevelDebug),
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		c.Ready()
		select {
		case err := <-served:
			return fmt.Errorf("%s %s: serve: %w", svc, version, err)
		case <-ctx.Done():
		}
		// SIGTERM: stop accepting and let requests in flight finish, until
		// the grace period ends.
		sctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-c.Killed():
				cancel()
			case <-sctx.Done():
			}
		}()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		_ = srv.Close()
		return nil
	}), true
}
