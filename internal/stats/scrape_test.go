package stats

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// recorder is an event.Publisher that keeps what it is given and lets a test
// wait for a condition on it.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
	change chan struct{}
}

func newRecorder() *recorder { return &recorder{change: make(chan struct{}, 1)} }

func (r *recorder) Publish(e event.Event) {
	r.mu.Lock()
	e.Seq = uint64(len(r.events) + 1)
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.change <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// waitFor waits until cond holds on the events published so far.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]event.Event) bool) []event.Event {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if evs := r.snapshot(); cond(evs) {
			return evs
		}
		select {
		case <-r.change:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; events: %s", what, describe(r.snapshot()))
		}
	}
}

func describe(evs []event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("\n  " + string(e.Type) + " " + string(e.Data))
	}
	return b.String()
}

func ofType(evs []event.Event, t event.Type) []event.Event {
	var out []event.Event
	for _, e := range evs {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

func countOf(t event.Type, n int) func([]event.Event) bool {
	return func(evs []event.Event) bool { return len(ofType(evs, t)) >= n }
}

// envoy is a loopback HTTP server playing an Envoy admin endpoint: each GET of
// the stats page answers with the next step of a script, then keeps answering
// the last one.
type envoy struct {
	t     *testing.T
	mu    sync.Mutex
	steps []func(w http.ResponseWriter)
	hits  map[string]int
	srv   *httptest.Server
}

func page(t *testing.T, file string) func(w http.ResponseWriter) {
	body := readFixture(t, file)
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write(body)
	}
}

func status(code int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { http.Error(w, body, code) }
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func newEnvoy(t *testing.T, steps ...func(w http.ResponseWriter)) *envoy {
	e := &envoy{t: t, steps: steps, hits: map[string]int{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits[r.URL.RequestURI()]++
		var step func(http.ResponseWriter)
		if r.URL.Path == DefaultPath {
			step = e.steps[0]
			if len(e.steps) > 1 {
				e.steps = e.steps[1:]
			}
		}
		e.mu.Unlock()
		if step == nil {
			http.NotFound(w, r)
			return
		}
		step(w)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *envoy) hitsOf(uri string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[uri]
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// run starts s.Run and returns a stop function that cancels it and waits for it.
func run(t *testing.T, s *Scraper) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel; want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func target(e *envoy) Target {
	return Target{Workload: "productpage", Pod: "productpage-v1-abc", Cluster: "cluster1", AdminURL: e.srv.URL}
}

func decodeSample(t *testing.T, e event.Event) event.Sample {
	t.Helper()
	var s event.Sample
	if err := e.Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScraperFailover(t *testing.T) {
	e := newEnvoy(t, page(t, "sidecar_before.prom"), page(t, "sidecar_during.prom"), page(t, "sidecar_after.prom"))
	rec := newRecorder()
	s, err := NewScraper(target(e), rec, WithInterval(5*time.Millisecond), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	evs := rec.waitFor(t, "two samples and two ejection changes", func(evs []event.Event) bool {
		return len(ofType(evs, event.StatsSample)) >= 2 && len(ofType(evs, event.OutlierEjection)) >= 2
	})
	stop()

	for _, ev := range evs {
		if ev.Cluster != "cluster1" || ev.Source != "stats/productpage" {
			t.Errorf("%s event has cluster %q, source %q", ev.Type, ev.Cluster, ev.Source)
		}
	}
	if n := len(ofType(evs, event.StatsReset)) + len(ofType(evs, event.StatsScrapeFailed)); n != 0 {
		t.Errorf("%d reset or failure events; want none: %s", n, describe(evs))
	}

	samples := ofType(evs, event.StatsSample)
	first := decodeSample(t, samples[0])
	if first.Workload != "productpage" || first.Pod != "productpage-v1-abc" || first.Interval <= 0 {
		t.Errorf("first sample header = %q %q %v", first.Workload, first.Pod, first.Interval)
	}
	if len(first.Clusters) != 7 {
		t.Errorf("first sample has %d clusters; want all 7", len(first.Clusters))
	}
	if l := first.Clusters[local]; l.Codes["503"] != 12 || l.Upstream5xx != 12 || l.EjectionsActive != 2 {
		t.Errorf("local reviews in the first sample = %+v", l)
	}
	if got := first.Served["reviews.default.svc.cluster2.global"]["cluster2"]; got != 380 {
		t.Errorf("served by cluster2 = %d; want 380", got)
	}
	second := decodeSample(t, samples[1])
	if _, ok := second.Clusters[ratings]; ok {
		t.Error("the quiet ratings cluster is in the second sample")
	}
	if got := second.Clusters[remote].Requests; got != 500 {
		t.Errorf("cluster2 requests in the second sample = %d; want 500", got)
	}
	// After the script ends the page stops changing: samples keep coming, empty.
	for _, ev := range samples[2:] {
		if s := decodeSample(t, ev); len(s.Clusters) != 0 || len(s.Served) != 0 {
			t.Errorf("sample of an unchanged page is not empty: %+v", s)
		}
	}

	var ej []event.Ejection
	for _, ev := range ofType(evs, event.OutlierEjection) {
		var x event.Ejection
		if err := ev.Decode(&x); err != nil {
			t.Fatal(err)
		}
		ej = append(ej, x)
	}
	want := []event.Ejection{
		{Workload: "productpage", EnvoyCluster: local, Active: 2, Previous: 0},
		{Workload: "productpage", EnvoyCluster: local, Active: 0, Previous: 2},
	}
	if len(ej) != 2 || ej[0] != want[0] || ej[1] != want[1] {
		t.Errorf("ejections = %+v; want %+v", ej, want)
	}
}

func TestScraperSurvivesFailures(t *testing.T) {
	e := newEnvoy(t,
		page(t, "sidecar_before.prom"),
		status(http.StatusInternalServerError, "upstream connect error or disconnect/reset before headers"),
		hangUp,
		status(http.StatusOK, "<html><body>Envoy Admin</body></html>\n"+strings.Repeat("<p>not stats</p>\n", 40)),
		page(t, "sidecar_during.prom"),
	)
	// Go's client silently retries a GET whose reused connection closes before
	// any answer; fresh connections make the hang-up reach the scraper.
	e.srv.Config.SetKeepAlivesEnabled(false)
	rec := newRecorder()
	s, err := NewScraper(target(e), rec, WithInterval(5*time.Millisecond), WithJSONFallback(false), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	evs := rec.waitFor(t, "a sample after the failures", countOf(event.StatsSample, 1))

	failed := ofType(evs, event.StatsScrapeFailed)
	if len(failed) != 3 {
		t.Fatalf("%d failures; want 3: %s", len(failed), describe(evs))
	}
	wantErr := []string{"HTTP 500 Internal Server Error: upstream connect error", "is the Envoy admin port reachable", "holds none of the Envoy stats drill reads"}
	for i, ev := range failed {
		var f event.ScrapeFailure
		if err := ev.Decode(&f); err != nil {
			t.Fatal(err)
		}
		if f.Workload != "productpage" || !strings.Contains(f.Error, wantErr[i]) || !strings.Contains(f.Error, "scrape Envoy stats of productpage") {
			t.Errorf("failure %d = %+v; want an error containing %q", i, f, wantErr[i])
		}
	}
	// The baseline survived the failures: the sample covers before → during.
	first := decodeSample(t, ofType(evs, event.StatsSample)[0])
	if got := first.Clusters[local].Codes["503"]; got != 12 {
		t.Errorf("503s in the sample after the failures = %d; want 12", got)
	}
	if last := failed[len(failed)-1].Seq; last > ofType(evs, event.StatsSample)[0].Seq {
		t.Error("the sample came before the failures")
	}
}

func TestScraperReset(t *testing.T) {
	e := newEnvoy(t, page(t, "sidecar_after.prom"), page(t, "sidecar_restarted.prom"))
	rec := newRecorder()
	s, err := NewScraper(target(e), rec, WithInterval(5*time.Millisecond), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	evs := rec.waitFor(t, "a reset and a sample", func(evs []event.Event) bool {
		return len(ofType(evs, event.StatsReset)) >= 1 && len(ofType(evs, event.StatsSample)) >= 1
	})
	reset, sample := ofType(evs, event.StatsReset)[0], ofType(evs, event.StatsSample)[0]
	if reset.Seq > sample.Seq {
		t.Error("stats.reset published after the sample of its scrape")
	}
	rs := decodeSample(t, reset)
	if got := rs.Clusters[remote].Requests; got != 150 {
		t.Errorf("reset sample: cluster2 requests %d; want 150 since the restart", got)
	}
	if got := decodeSample(t, sample).Served["reviews.default.svc.cluster2.global"]["cluster2"]; got != 150 {
		t.Errorf("sample after restart: served by cluster2 %d; want 150", got)
	}
	if n := len(ofType(evs, event.StatsReset)); n != 1 {
		t.Errorf("%d resets; want 1", n)
	}
}

func TestScraperJSONFallback(t *testing.T) {
	jsonPage := readFixture(t, "sidecar_after.json")
	var jsonHits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == DefaultPath:
			// A page the text parser cannot read past its first line.
			io.WriteString(w, strings.Repeat("envoy_cluster_upstream_rq_total{cluster_name=\"a\"} \"x\"\n", 40))
		case r.URL.Path == "/stats" && r.URL.Query().Get("format") == "json" && r.URL.Query().Get("histogram_buckets") == "cumulative":
			jsonHits.Add(1)
			w.Write(jsonPage)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	rec := newRecorder()
	s, err := NewScraper(Target{Workload: "productpage", AdminURL: srv.URL + "/"}, rec, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 2 {
		snap, err := s.Scrape(ctx)
		if err != nil {
			t.Fatalf("scrape %d: %v", i, err)
		}
		if snap.Format != FormatJSON || snap.Clusters[remote].Get(StatRqTotal) != 880 || snap.Time.IsZero() {
			t.Errorf("scrape %d: format %s, cluster2 total %d, time %v", i, snap.Format, snap.Clusters[remote].Get(StatRqTotal), snap.Time)
		}
	}
	if jsonHits.Load() != 2 {
		t.Errorf("JSON page fetched %d times; want 2", jsonHits.Load())
	}

	// Without the fallback the parse error is the answer, and it names the line.
	s, err = NewScraper(Target{Workload: "productpage", AdminURL: srv.URL}, rec, WithJSONFallback(false), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scrape(ctx); err == nil || !strings.Contains(err.Error(), "line 1: ") {
		t.Errorf("err = %v; want a parse error naming line 1", err)
	}
}

func TestScrapeBounds(t *testing.T) {
	blocked := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-blocked:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, strings.Repeat("# padding comment line\n", 100))
	}))
	defer srv.Close()
	defer close(blocked)
	ctx := context.Background()

	s, err := NewScraper(Target{Workload: "w", AdminURL: srv.URL}, newRecorder(), WithPath("/big"), WithMaxBody(1000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scrape(ctx); err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Errorf("err = %v; want the body bound", err)
	}

	s, err = NewScraper(Target{Workload: "w", AdminURL: srv.URL}, newRecorder(), WithPath("/slow"), WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scrape(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want the scrape timeout", err)
	}
}

// A Target's RoundTripper carries the requests: the provider plugs its
// port-forward or dialer in here.
func TestScraperTransport(t *testing.T) {
	e := newEnvoy(t, page(t, "sidecar_before.prom"))
	var used atomic.Int64
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	tg := target(e)
	tg.Transport = rt
	s, err := NewScraper(tg, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}
	if used.Load() != 1 {
		t.Errorf("transport used %d times; want 1", used.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewScraperRejects(t *testing.T) {
	rec := newRecorder()
	tests := []struct {
		name string
		t    Target
		pub  event.Publisher
		opts []Option
		want string
	}{
		{"no url", Target{Workload: "w"}, rec, nil, "admin URL"},
		{"not http", Target{Workload: "w", AdminURL: "127.0.0.1:15000"}, rec, nil, "admin URL"},
		{"no publisher", Target{Workload: "w", AdminURL: "http://127.0.0.1:1"}, nil, nil, "no event publisher"},
		{"zero interval", Target{Workload: "w", AdminURL: "http://127.0.0.1:1"}, rec, []Option{WithInterval(0)}, "interval"},
		{"relative path", Target{Workload: "w", AdminURL: "http://127.0.0.1:1"}, rec, []Option{WithPath("stats")}, "must start with /"},
	}
	for _, tc := range tests {
		if _, err := NewScraper(tc.t, tc.pub, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want %q", tc.name, err, tc.want)
		}
	}
}

func TestRunTwice(t *testing.T) {
	e := newEnvoy(t, page(t, "sidecar_before.prom"))
	rec := newRecorder()
	s, err := NewScraper(target(e), rec, WithInterval(5*time.Millisecond), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	rec.waitFor(t, "a first sample", countOf(event.StatsSample, 1))
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v; want already running", err)
	}
	stop()
	// Once stopped it can run again.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run after stop = %v", err)
	}
	if e.hitsOf(DefaultPath) < 2 {
		t.Errorf("stats page fetched %d times", e.hitsOf(DefaultPath))
	}
}
