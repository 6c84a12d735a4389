// Package localtest starts real local control planes for the tests of other
// packages: one call, a cluster that is stopped when the test ends.
//
//	cp := localtest.Start(t, local.WithoutIstiod())
//	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
//
// The binaries come from `make tools` (hack/build-tools.sh). When they are
// missing the test fails and says so; set DRILL_SKIP_CONTROL_PLANE=1 to skip
// such tests instead.
package localtest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/internal/localcluster"
)

// SkipEnv names the environment variable that, set to 1, makes Start skip
// the test instead of starting a control plane.
const SkipEnv = "DRILL_SKIP_CONTROL_PLANE"

// Start starts a local control plane named after the test, under the
// test's temporary directory, and stops it when the test and its subtests
// finish. opts are passed to local.StartControlPlane after the defaults
// Start sets (run directory, logger), so they can override them.
func Start(tb testing.TB, opts ...localcluster.Option) *localcluster.ControlPlane {
	tb.Helper()
	SkipIfDisabled(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	all := append([]localcluster.Option{
		localcluster.WithRunDir(tb.TempDir()),
		localcluster.WithLogger(slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))),
	}, opts...)
	cp, err := localcluster.StartControlPlane(ctx, ClusterName(tb), all...)
	if err != nil {
		failStart(tb, err)
	}
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cp.Stop(sctx); err != nil {
			tb.Errorf("stop local control plane: %v", err)
		}
	})
	return cp
}

// StartClusters starts a mesh of local clusters for the test (see
// local.StartClusters) and stops it when the test finishes.
func StartClusters(tb testing.TB, names []string, opts ...localcluster.Option) *localcluster.Mesh {
	tb.Helper()
	SkipIfDisabled(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	all := append([]localcluster.Option{
		localcluster.WithRunDir(tb.TempDir()),
		localcluster.WithLogger(slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))),
	}, opts...)
	m, err := localcluster.StartClusters(ctx, names, all...)
	if err != nil {
		failStart(tb, err)
	}
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.Stop(sctx); err != nil {
			tb.Errorf("stop local clusters: %v", err)
		}
	})
	return m
}

// SkipIfDisabled skips the test when DRILL_SKIP_CONTROL_PLANE=1.
func SkipIfDisabled(tb testing.TB) {
	tb.Helper()
	if os.Getenv(SkipEnv) == "1" {
		tb.Skipf("%s=1: not starting a local control plane", SkipEnv)
	}
}

func failStart(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, localcluster.ErrMissingBinary) {
		tb.Fatalf("%v\n(set %s=1 to skip tests that need a local control plane)", err, SkipEnv)
	}
	tb.Fatalf("start local control plane: %v", err)
}

// ClusterName turns the test's name into a valid cluster name (a DNS label).
func ClusterName(tb testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(tb.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.Trim(name[:40], "-")
	}
	if name == "" {
		name = "test"
	}
	return name
}

// testWriter sends log lines to the test log, where they show only when the
// test fails or runs with -v.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
