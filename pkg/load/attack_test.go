package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshdrill/drill/pkg/event"
)

// recorder is an event.Publisher that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Publish(e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// check verifies the record of one Run that returned total: load.started first,
// load.finished (equal to total) last, and between them windows that tile [0, end) and
// add up to total. It returns the windows.
func (r *recorder) check(t *testing.T, total event.Window) []event.Window {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) < 2 || r.events[0].Type != event.LoadStarted || r.events[len(r.events)-1].Type != event.LoadFinished {
		t.Fatalf("events: want load.started … load.finished, got %d events", len(r.events))
	}
	var info event.LoadInfo
	if err := r.events[0].Decode(&info); err != nil || info.Target == "" || info.Rate == "" {
		t.Errorf("load.started payload %+v (%v)", info, err)
	}
	var finished event.Window
	if err := r.events[len(r.events)-1].Decode(&finished); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(finished, total) {
		t.Errorf("load.finished %+v, Run returned %+v", finished, total)
	}

	var (
		windows []event.Window
		sum     event.Window
		next    time.Duration
	)
	sum.Codes = map[string]int64{}
	var schedEnd time.Duration
	scheds := 0
	for _, e := range r.events[1 : len(r.events)-1] {
		if e.Type == event.LoadSched && e.Source == Source {
			var s event.Sched
			if err := e.Decode(&s); err != nil {
				t.Fatal(err)
			}
			if s.Start != schedEnd || s.End < s.Start || s.P99 > s.Max {
				t.Fatalf("load.sched %+v does not follow the interval ending at %s", s, schedEnd)
			}
			schedEnd = s.End
			scheds++
			continue
		}
		if e.Type != event.LoadWindow || e.Source != Source {
			t.Fatalf("unexpected event %s from %q between start and finish", e.Type, e.Source)
		}
		var w event.Window
		if err := e.Decode(&w); err != nil {
			t.Fatal(err)
		}
		if w.Start != next || w.End <= w.Start {
			t.Fatalf("window [%s, %s) does not follow %s", w.Start, w.End, next)
		}
		next = w.End
		sum.Requests += w.Requests
		sum.Errors += w.Errors
		sum.Degraded += w.Degraded
		for c, n := range w.Codes {
			sum.Codes[c] += n
		}
		if w.Requests > 0 && !(w.P50 <= w.P90 && w.P90 <= w.P99 && w.P99 <= w.Max && w.Max > 0) {
			t.Errorf("window %s: percentiles out of order: %+v", w.Start, w)
		}
		windows = append(windows, w)
	}
	if next != total.End {
		t.Errorf("windows end at %s, the load at %s", next, total.End)
	}
	if scheds == 0 {
		t.Error("no load.sched event: the scheduler's waits were not recorded")
	}
	if sum.Requests != total.Requests || sum.Errors != total.Errors || sum.Degraded != total.Degraded ||
		!equalCodes(sum.Codes, total.Codes) {
		t.Errorf("windows add up to %d requests, %d errors, %d degraded, codes %v; totals are %d, %d, %d, %v",
			sum.Requests, sum.Errors, sum.Degraded, sum.Codes, total.Requests, total.Errors, total.Degraded, total.Codes)
	}
	return windows
}

// serve starts a loopback server whose answer depends on the request's vegeta sequence
// number (X-Vegeta-Seq), so that tests know exactly which requests fail.
func serve(t *testing.T, h func(seq int, w http.ResponseWriter, r *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := strconv.Atoi(r.Header.Get("X-Vegeta-Seq"))
		if err != nil {
			http.Error(w, "no X-Vegeta-Seq", http.StatusBadRequest)
			return
		}
		h(seq, w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func run(t *testing.T, target Target, opts ...Option) (event.Window, []event.Window) {
	t.Helper()
	a, err := New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	total, err := a.Run(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	return total, rec.check(t, total)
}

// within checks a request count against the pacer's. vegeta's pacers never send
// ahead, and the last hit of a constant rate is due at the duration itself, so there
// are never more; on a loaded machine vegeta's loop may fall behind and reach the end of
// the duration before catching up, so there may be fewer. Exact counts are the pacer
// tests' business (rate_test.go); these tests make their expectations from the number
// of requests actually sent.
func within(t *testing.T, got int64, want int) {
	t.Helper()
	if got <= 0 || got > int64(want) {
		t.Fatalf("%d requests, want 1 to %d", got, want)
	}
}

func TestRunStatusCodes(t *testing.T) {
	t.Parallel()
	// Bookinfo's gateway routes by host: anything else is a 404.
	srv := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Host != "bookinfo.example":
			http.NotFound(w, r)
		case seq >= 25 && seq < 60:
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ok")
		}
	})
	total, windows := run(t, Target{URL: srv.URL + "/productpage", Host: "bookinfo.example"},
		WithRate(Constant(perSec(50))), WithDuration(2*time.Second), WithWindow(500*time.Millisecond))

	within(t, total.Requests, 100)
	want503 := min(max(total.Requests-25, 0), 35) // seq 25 to 59 of 0 … requests-1
	if total.Codes["503"] != want503 || total.Errors != want503 || total.Codes["200"] != total.Requests-want503 {
		t.Errorf("codes %v, errors %d; want %d × 503 (seq 25 to 59), the rest 200", total.Codes, total.Errors, want503)
	}
	if len(windows) != 4 || windows[3].End != 2*time.Second {
		t.Fatalf("%d windows ending at %s, want 4 over 2s", len(windows), windows[len(windows)-1].End)
	}
	// vegeta sends hit n at n × 20 ms and never early, so seq 25 leaves at 520 ms at
	// the earliest: the first window has no 503.
	if n := windows[0].Codes["503"]; n != 0 {
		t.Errorf("first window has %d 503s, want none", n)
	}
	if total.P50 <= 0 || total.Max < total.P99 || total.Rate <= 0 {
		t.Errorf("totals %+v: want latencies and a rate", total)
	}
}

func TestRunDegraded(t *testing.T) {
	t.Parallel()
	const sorry = "Sorry, product reviews are currently unavailable for this book."
	page := strings.Repeat("<p>The Comedy of Errors</p>\n", 100) // ~2.8 kB before the reviews
	srv := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		switch seq % 4 {
		case 0:
			io.WriteString(w, page+sorry)
		case 1:
			// Not a 2xx: an error, never degraded, whatever the body says.
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, page+sorry)
		default:
			io.WriteString(w, page+"<p>Reviewer1: An extremely entertaining play by Shakespeare.</p>")
		}
	})
	every4th := func(n int64) int64 { return (n + 3) / 4 }
	none := func(int64) int64 { return 0 }
	tests := []struct {
		name string
		when DegradedWhen
		want func(requests int64) int64
	}{
		{"body contains", DegradedWhen{BodyContains: "product reviews are currently unavailable"}, every4th},
		{"body matches", DegradedWhen{BodyMatches: regexp.MustCompile(`reviews are currently \w+`)}, every4th},
		{"either", DegradedWhen{BodyContains: "no such text", BodyMatches: regexp.MustCompile(`Sorry`)}, every4th},
		{"past the bytes read", DegradedWhen{BodyContains: "Sorry", Within: 1024}, none},
		{"no match", DegradedWhen{BodyContains: "Sorry, the page is on fire"}, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			total, _ := run(t, Target{URL: srv.URL}, WithRate(Constant(perSec(40))), WithDuration(time.Second),
				WithDegraded(tt.when), WithWindow(250*time.Millisecond))
			within(t, total.Requests, 40)
			if want := tt.want(total.Requests); total.Degraded != want {
				t.Errorf("%d degraded of %d, want %d", total.Degraded, total.Requests, want)
			}
			if want := (total.Requests + 2) / 4; total.Errors != want {
				t.Errorf("%d errors, want %d", total.Errors, want)
			}
		})
	}
}

func TestRunTransportErrors(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	dropping := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		if seq%5 != 0 {
			io.WriteString(w, "ok")
			return
		}
		// Hang up without an answer, as a crashing upstream would.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	slow := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		if seq == 3 {
			<-r.Context().Done() // until the client gives up
			return
		}
		io.WriteString(w, "ok")
	})
	tests := []struct {
		name string
		url  string
		opts []Option
		// want is the number of transport errors among n requests.
		want func(n int64) int64
	}{
		{"server gone", closed.URL, nil, func(n int64) int64 { return n }},
		{"connection dropped", dropping.URL, nil, func(n int64) int64 { return (n + 4) / 5 }},
		{"request timeout", slow.URL, []Option{WithTimeout(300 * time.Millisecond)}, func(int64) int64 { return 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]Option{WithRate(Constant(perSec(30))), WithDuration(time.Second), WithWindow(200 * time.Millisecond)}, tt.opts...)
			total, _ := run(t, Target{URL: tt.url}, opts...)
			within(t, total.Requests, 30)
			want := tt.want(total.Requests)
			if total.Codes["0"] != want || total.Errors != want {
				t.Errorf("codes %v, %d errors; want %d transport errors (code 0)", total.Codes, total.Errors, want)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1000)
	hung := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	a, err := New(Target{URL: hung.URL}, WithRate(Constant(perSec(20))), WithDuration(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		total event.Window
		err   error
	}
	done := make(chan result, 1)
	rec := &recorder{}
	go func() {
		total, err := a.Run(ctx, rec)
		done <- result{total, err}
	}()

	for range 5 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the server saw no request within 10s")
		}
	}
	cancel()
	// Requests in flight would hold the attack for vegeta's 30 s timeout; Run cancels
	// them, and vegeta's pacer sleeps at most one interval (50 ms).
	var res result
	select {
	case res = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its context being cancelled")
	}
	if !errors.Is(res.err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", res.err)
	}
	// No request was answered: the cancelled ones count nowhere.
	if res.total.Requests != 0 {
		t.Errorf("totals %+v: want no requests counted", res.total)
	}
	rec.check(t, res.total)
}

func TestRunResultsFile(t *testing.T) {
	t.Parallel()
	srv := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		if seq%3 == 0 {
			http.Error(w, "upstream connect error", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "Sorry, product reviews are currently unavailable for this book.")
	})
	path := filepath.Join(t.TempDir(), "results.bin")
	total, _ := run(t, Target{URL: srv.URL}, WithRate(Constant(perSec(30))), WithDuration(time.Second),
		WithResultsFile(path), WithDegraded(DegradedWhen{BodyContains: "Sorry"}))

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// DecoderFor is what `vegeta report` and `vegeta plot` use; it must see gob.
	dec := vegeta.DecoderFor(f)
	if dec == nil {
		t.Fatal("vegeta does not recognise the results file")
	}
	var m vegeta.Metrics
	seqs := map[uint64]bool{}
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode result %d: %v", len(seqs), err)
		}
		if r.Attack != attackName || r.Body != nil || r.Timestamp.IsZero() || r.Latency <= 0 {
			t.Errorf("result %+v: want attack %q, no body, a timestamp and a latency", r, attackName)
		}
		seqs[r.Seq] = true
		m.Add(&r)
	}
	m.Close()
	if int64(m.Requests) != total.Requests || len(seqs) != int(total.Requests) {
		t.Errorf("file holds %d results (%d distinct), totals say %d", m.Requests, len(seqs), total.Requests)
	}
	for code, n := range m.StatusCodes {
		if total.Codes[code] != int64(n) {
			t.Errorf("file has %d × %s, totals %d", n, code, total.Codes[code])
		}
	}
}

func TestRunResultsFileUnwritable(t *testing.T) {
	t.Parallel()
	a, err := New(Target{URL: "http://127.0.0.1:1/"}, WithResultsFile(filepath.Join(t.TempDir(), "no", "such", "dir", "r.bin")))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if _, err := a.Run(t.Context(), rec); err == nil || !strings.Contains(err.Error(), "directory exists") {
		t.Fatalf("Run error = %v, want one telling to check the directory", err)
	}
	if len(rec.events) != 0 {
		t.Errorf("%d events published by a load that never started", len(rec.events))
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	good := Target{URL: "http://127.0.0.1:8080/productpage"}
	tests := []struct {
		name   string
		target Target
		opts   []Option
		want   string
	}{
		{"no scheme", Target{URL: "127.0.0.1:8080/productpage"}, nil, "write it as http://HOST:PORT/PATH"},
		{"other scheme", Target{URL: "ftp://127.0.0.1/productpage"}, nil, "scheme must be http or https"},
		{"no host", Target{URL: "http:///productpage"}, nil, "no host"},
		{"bad Host", Target{URL: good.URL, Host: "a b"}, nil, "not a host name"},
		{"no rate", good, []Option{WithRate(nil)}, "no rate given"},
		{"zero rate", good, []Option{WithRate(Constant(perSec(0)))}, "must be above zero"},
		{"ramp without duration", good, []Option{WithRate(Ramp(perSec(1), perSec(2)))}, "set WithDuration"},
		{"negative duration", good, []Option{WithDuration(-time.Second)}, "must not be negative"},
		{"no timeout", good, []Option{WithTimeout(0)}, "timeout 0s: must be above zero"},
		{"no window", good, []Option{WithWindow(0)}, "window 0s"},
		{"negative connections", good, []Option{WithConnections(-1)}, "connections -1"},
		{"no workers", good, []Option{WithMaxWorkers(0)}, "max workers"},
		{"empty matcher", good, []Option{WithDegraded(DegradedWhen{})}, "set bodyContains"},
		{"huge within", good, []Option{WithDegraded(DegradedWhen{BodyContains: "x", Within: 1 << 30})}, "within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.target, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	a, err := New(Target{URL: "http://127.0.0.1:8080/productpage", Host: "bookinfo.example"},
		WithRate(Steps(Step{perSec(10), 30 * time.Second}, Step{perSec(50), time.Minute})))
	if err != nil {
		t.Fatal(err)
	}
	want := event.LoadInfo{
		Target:   "GET http://127.0.0.1:8080/productpage (Host: bookinfo.example)",
		Rate:     "steps 10/s for 30s, 50/s for 1m0s",
		Duration: 90 * time.Second, // the steps' sum
	}
	if got := a.Info(); got != want {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
	if a.maxBody != 0 {
		t.Errorf("without a matcher MaxBody = %d, want 0: no body kept", a.maxBody)
	}
}

func TestRunConnections(t *testing.T) {
	t.Parallel()
	type seen struct {
		mu            sync.Mutex
		conns, proto2 int
		requests      int
	}
	start := func(t *testing.T, tlsOn bool) (*httptest.Server, *seen) {
		s := &seen{}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.requests++
			if r.ProtoMajor == 2 {
				s.proto2++
			}
			s.mu.Unlock()
			io.WriteString(w, "ok")
		}))
		srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.mu.Lock()
				s.conns++
				s.mu.Unlock()
			}
		}
		if tlsOn {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		return srv, s
	}
	trust := func(srv *httptest.Server) *tls.Config {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		return &tls.Config{RootCAs: pool}
	}

	tests := []struct {
		name  string
		tls   bool
		opts  func(srv *httptest.Server) []Option
		check func(t *testing.T, s *seen, requests int)
	}{
		// Two workers have at most two requests in flight: two connections, reused.
		{"keep-alive reuses connections", false, func(*httptest.Server) []Option { return []Option{WithMaxWorkers(2)} },
			func(t *testing.T, s *seen, n int) {
				if s.conns > 2 {
					t.Errorf("%d connections for %d requests by 2 workers, want at most 2", s.conns, n)
				}
			}},
		{"no keep-alive: a connection per request", false, func(*httptest.Server) []Option { return []Option{WithKeepAlive(false)} },
			func(t *testing.T, s *seen, n int) {
				if s.conns != n {
					t.Errorf("%d connections for %d requests, want one each", s.conns, n)
				}
			}},
		{"HTTP/2 over TLS", true, func(srv *httptest.Server) []Option { return []Option{WithTLSConfig(trust(srv))} },
			func(t *testing.T, s *seen, n int) {
				if s.proto2 != n {
					t.Errorf("%d of %d requests over HTTP/2, want all", s.proto2, n)
				}
			}},
		{"HTTP/2 off", true, func(srv *httptest.Server) []Option { return []Option{WithTLSConfig(trust(srv)), WithHTTP2(false)} },
			func(t *testing.T, s *seen, n int) {
				if s.proto2 != 0 {
					t.Errorf("%d of %d requests over HTTP/2, want none", s.proto2, n)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, s := start(t, tt.tls)
			opts := []Option{WithRate(Constant(perSec(30))), WithDuration(time.Second)}
			if tt.opts != nil {
				opts = append(opts, tt.opts(srv)...)
			}
			total, _ := run(t, Target{URL: srv.URL}, opts...)
			if total.Errors != 0 {
				t.Fatalf("%d errors: %v", total.Errors, total.Codes)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if int64(s.requests) != total.Requests {
				t.Fatalf("server saw %d requests, drill counted %d", s.requests, total.Requests)
			}
			tt.check(t, s, s.requests)
		})
	}
}

// TestRunServedBy: the load reads who served each answer from the headers
// drill's Bookinfo sets, per service, with when the first and last answer of
// each cluster arrived; answers that name no cluster count nowhere there.
func TestRunServedBy(t *testing.T) {
	t.Parallel()
	const switchAt, failFrom, failTo = 35, 30, 35 // sequence numbers
	srv := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Drill-Cluster", "cluster1")
		h.Set("X-Drill-Workload", "productpage-v1")
		h.Set("X-Drill-Pod", "productpage-v1-abc")
		h.Set("X-Drill-Details-Cluster", "cluster1")
		switch {
		case seq >= failFrom && seq < failTo:
			io.WriteString(w, "Sorry, product reviews are currently unavailable for this book.")
			return
		case seq < switchAt:
			h.Set("X-Drill-Reviews-Cluster", "cluster1")
		default:
			h.Set("X-Drill-Reviews-Cluster", "cluster2")
		}
		h.Set("X-Drill-Reviews-Pod", "reviews-v1-xyz")
		io.WriteString(w, "ok")
	})
	total, windows := run(t, Target{URL: srv.URL}, WithRate(Constant(perSec(50))), WithDuration(2*time.Second),
		WithWindow(500*time.Millisecond), WithDegraded(DegradedWhen{BodyContains: "currently unavailable"}))
	within(t, total.Requests, 100)
	if total.Requests <= switchAt {
		t.Skipf("only %d requests sent", total.Requests)
	}
	served := map[string]map[string]event.Seen{}
	var failed event.Seen
	for _, w := range windows {
		for svc, byCluster := range w.Served {
			if served[svc] == nil {
				served[svc] = map[string]event.Seen{}
			}
			for cl, n := range byCluster {
				s := served[svc][cl]
				s.Merge(n)
				served[svc][cl] = s
				if n.First < w.Start || n.Last < n.First {
					t.Errorf("window [%s, %s): %s from %s seen %+v, before the window was sent or out of order", w.Start, w.End, svc, cl, n)
				}
			}
		}
		if w.Failed != nil {
			failed.Merge(*w.Failed)
		}
	}
	if len(served) != 3 {
		t.Errorf("services %v, want productpage, details and reviews (pods and workloads name none)", served)
	}
	if n := served["productpage"]["cluster1"].N; n != total.Requests {
		t.Errorf("productpage answered %d times from cluster1, want every one of %d", n, total.Requests)
	}
	r1, r2 := served["reviews"]["cluster1"], served["reviews"]["cluster2"]
	if r1.N != failFrom || r2.N != total.Requests-switchAt {
		t.Errorf("reviews answered %d times from cluster1 and %d from cluster2, want %d and %d", r1.N, r2.N, failFrom, total.Requests-switchAt)
	}
	// vegeta sends hit n at n × 20 ms and never early.
	if r2.First < switchAt*20*time.Millisecond {
		t.Errorf("first answer from cluster2 seen at %s, before the request that got it was sent (%s)", r2.First, switchAt*20*time.Millisecond)
	}
	if failed.N != failTo-failFrom || failed.First < failFrom*20*time.Millisecond || total.Degraded != failed.N {
		t.Errorf("failed answers %+v, degraded %d; want %d seen from %s on", failed, total.Degraded, failTo-failFrom, failFrom*20*time.Millisecond)
	}
}

func TestWorkloadService(t *testing.T) {
	for in, want := range map[string]string{"reviews-v2": "reviews", "productpage-v1": "productpage", "my-api-v12": "my-api", "ratings": "ratings", "svc-vx": "svc-vx", "": ""} {
		if got := workloadService(in); got != want {
			t.Errorf("workloadService(%q) = %q, want %q", in, got, want)
		}
	}
}
