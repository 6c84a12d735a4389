// Command envoy is drill's emulated Envoy as a drop-in executable: the
// `envoy` of the proxy image drill builds for clusters with no Envoy
// binary. Istio's pilot-agent starts it exactly as it starts Envoy — the
// same command line, the bootstrap it rendered, ADS and SDS over its unix
// sockets — and the emulation (package internal/envoyemu) serves the pod's
// traffic as iptables captures it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshdrill/drill/internal/envoyemu"
)

// Exit codes as Envoy's: 1 for a bad command line or configuration.
const (
	exitOK    = 0
	exitError = 1
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line flags of Envoy pilot-agent uses (istio
// pkg/envoy/proxy.go, envoyArgs) and the few others a person would try.
type options struct {
	configPath string
	logLevel   string
	drainTime  time.Duration
	version    bool
}

// valueFlags take a value; boolFlags do not. Envoy's own flags outside
// these are refused, as Envoy refuses a flag it does not know.
var (
	valueFlags = map[string]bool{
		"c": true, "config-path": true, "l": true, "log-level": true,
		"drain-time-s": true, "drain-strategy": true, "parent-shutdown-time-s": true,
		"local-address-ip-version": true, "file-flush-interval-msec": true,
		"component-log-level": true, "concurrency": true, "log-format": true,
		"service-cluster": true, "service-node": true, "service-zone": true,
		"restart-epoch": true, "base-id": true, "log-path": true, "mode": true,
	}
	boolFlags = map[string]bool{
		"disable-hot-restart": true, "allow-unknown-static-fields": true,
		"reject-unknown-dynamic-fields": true, "ignore-unknown-dynamic-fields": true,
		"skip-deprecated-logs": true, "version": true, "use-dynamic-base-id": true,
		"log-format-escaped": true, "enable-fine-grain-logging": true,
	}
)

func parse(args []string) (options, error) {
	o := options{logLevel: "info", drainTime: 600 * time.Second}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return o, fmt.Errorf("unexpected argument %q", a)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case boolFlags[name]:
			if name == "version" {
				o.version = true
			}
			continue
		case valueFlags[name]:
			if !hasVal {
				if i+1 >= len(args) {
					return o, fmt.Errorf("flag %s needs a value", a)
				}
				i++
				val = args[i]
			}
		default:
			return o, fmt.Errorf("unknown flag %s (the emulated Envoy takes the flags pilot-agent passes)", a)
		}
		switch name {
		case "c", "config-path":
			o.configPath = val
		case "l", "log-level":
			o.logLevel = val
		case "drain-time-s":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return o, fmt.Errorf("--drain-time-s %q is not a number of seconds", val)
			}
			o.drainTime = time.Duration(n) * time.Second
		}
	}
	return o, nil
}

func level(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warning", "warn":
		return slog.LevelWarn
	default: // error, critical, off
		return slog.LevelError
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "envoy (drill emulation):", err)
		return exitError
	}
	if o.version {
		fmt.Fprintf(stdout, "envoy  version: drill-emulated/%s/Emulated/RELEASE/none\n", envoyemu.IstioVersion)
		return exitOK
	}
	if o.configPath == "" {
		fmt.Fprintln(stderr, "envoy (drill emulation): no bootstrap: give -c FILE (pilot-agent does)")
		return exitError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level(o.logLevel)}))
	b, err := envoyemu.LoadBootstrap(o.configPath)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	quit, cancelQuit := context.WithCancel(ctx)
	defer cancelQuit()
	p, err := envoyemu.NewFromBootstrap(b, envoyemu.WithLogger(log), envoyemu.WithQuit(cancelQuit))
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitError
	}
	if err := p.Start(ctx); err != nil {
		log.Error("cannot start", "err", err)
		return exitError
	}
	log.Warn("this is drill's emulated Envoy, not Envoy: HTTP/1.1 routing, load balancing, outlier detection, mutual TLS and stats from istiod's configuration; see drill's docs/proxy.md",
		"node", b.Node.GetId(), "xds", b.XDS, "sds", b.SDS, "admin", b.Admin.String())
	<-quit.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stop", "err", err)
		return exitError
	}
	return exitOK
}
