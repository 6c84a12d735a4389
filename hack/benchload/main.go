// Command benchload is the Go half of hack/bench-load.sh, which checks that drill's load
// (pkg/load) keeps up with the standalone `vegeta attack` command at the same target
// and rate. It has three parts:
//
//	benchload server -addr-file FILE [-addr 127.0.0.1:0] [-body N]
//	    a loopback HTTP server that answers 200 with an N-byte page; writes its
//	    address to FILE and serves until SIGINT or SIGTERM
//	benchload drill -url URL -rate N -duration D -output FILE [-degraded TEXT]
//	    attacks URL through pkg/load, writing vegeta's gob results to FILE
//	benchload compare -rate N [-vegeta-cpu F] [-drill-cpu F] VEGETA.bin DRILL.bin
//	    reads both results files with vegeta's own decoder and metrics and prints
//	    one table row: achieved rates, median and p99 latencies, and their ratios
//	    (drill / vegeta); with -…-cpu, the CPU time per request from what
//	    /usr/bin/time -f '%U %S' wrote
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshdrill/drill/pkg/load"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = server(os.Args[2:])
	case "drill":
		err = drill(os.Args[2:])
	case "compare":
		err = compare(os.Args[2:])
	case "header":
		fmt.Println(header)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchload server|drill|compare|header [flags]; see hack/bench-load.sh")
	os.Exit(2)
}

func server(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	addrFile := fs.String("addr-file", "", "write the listen address here once serving")
	size := fs.Int("body", 2048, "bytes in each answer")
	fs.Parse(args)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		return fmt.Errorf("listening on %s: loopback addresses only", ip)
	}
	// An HTML-ish page without the degraded text, so a matcher reads all of it.
	const line = "<p>The Comedy of Errors by William Shakespeare</p>\n"
	body := []byte(strings.Repeat(line, *size/len(line)+1)[:*size])
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func drill(args []string) error {
	fs := flag.NewFlagSet("drill", flag.ExitOnError)
	url := fs.String("url", "", "target URL")
	rate := fs.Int("rate", 50, "requests per second")
	duration := fs.Duration("duration", 5*time.Second, "attack duration")
	output := fs.String("output", "", "results file (vegeta gob)")
	degraded := fs.String("degraded", "", "count 2xx bodies containing this text as degraded")
	fs.Parse(args)

	opts := []load.Option{
		load.WithRate(load.Constant(vegeta.Rate{Freq: *rate, Per: time.Second})),
		load.WithDuration(*duration),
		load.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if *output != "" {
		opts = append(opts, load.WithResultsFile(*output))
	}
	if *degraded != "" {
		opts = append(opts, load.WithDegraded(load.DegradedWhen{BodyContains: *degraded}))
	}
	a, err := load.New(load.Target{URL: *url}, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err = a.Run(ctx, nil)
	return err
}

const header = "  rate │ vegeta req/s  drill req/s  ratio │ vegeta p50  drill p50  ratio │ vegeta p99  drill p99 │ CPU µs/req: vegeta  drill"

func compare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	rate := fs.Int("rate", 0, "the rate both attacked at")
	vegetaCPU := fs.String("vegeta-cpu", "", "file with vegeta's user and system CPU seconds")
	drillCPU := fs.String("drill-cpu", "", "file with drill's user and system CPU seconds")
	fs.Parse(args)
	if fs.NArg() != 2 {
		return errors.New("compare: want VEGETA.bin DRILL.bin")
	}
	v, err := metrics(fs.Arg(0))
	if err != nil {
		return err
	}
	d, err := metrics(fs.Arg(1))
	if err != nil {
		return err
	}
	fmt.Printf("%6d │ %12.1f %12.1f %6.3f │ %10s %10s %6.2f │ %10s %10s │ %18s %6s\n",
		*rate,
		v.Rate, d.Rate, d.Rate/v.Rate,
		round(v.Latencies.P50), round(d.Latencies.P50), float64(d.Latencies.P50)/float64(v.Latencies.P50),
		round(v.Latencies.P99), round(d.Latencies.P99),
		cpu(*vegetaCPU, v.Requests), cpu(*drillCPU, d.Requests))
	for name, m := range map[string]*vegeta.Metrics{"vegeta": v, "drill": d} {
		if m.Success < 1 {
			fmt.Fprintf(os.Stderr, "benchload: %s: %.1f%% success: %v\n", name, 100*m.Success, m.Errors)
		}
	}
	return nil
}

// metrics reads a results file as `vegeta report` does.
func metrics(path string) (*vegeta.Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var m vegeta.Metrics
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m.Add(&r)
	}
	m.Close()
	if m.Requests == 0 {
		return nil, fmt.Errorf("%s: no results", path)
	}
	return &m, nil
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// cpu reads "USER SYS" seconds from path and returns their sum per request, in
// microseconds, or "-".
func cpu(path string, requests uint64) string {
	if path == "" || requests == 0 {
		return "-"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "-"
	}
	// /usr/bin/time appends its line; take the last one.
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 2 {
		return "-"
	}
	u, err1 := strconv.ParseFloat(f[0], 64)
	s, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil {
		return "-"
	}
	return fmt.Sprintf("%.0f", (u+s)*1e6/float64(requests))
}
