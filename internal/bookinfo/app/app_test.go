package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goldenfile "github.com/meshdrill/drill/internal/golden"
)

// mesh routes <service>:9080 to real servers on 127.0.0.1 and refuses
// connections to services it has none for, as kube-proxy does for a Service
// without ready endpoints.
type mesh struct {
	mu     sync.Mutex
	addrs  map[string]string // "reviews:9080" → "127.0.0.1:port"
	dialed map[string]*atomic.Int64
}

func newMesh() *mesh { return &mesh{addrs: map[string]string{}, dialed: map[string]*atomic.Int64{}} }

func (m *mesh) serve(t *testing.T, name string, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	m.mu.Lock()
	m.addrs[name+":9080"] = srv.Listener.Addr().String()
	m.mu.Unlock()
	return srv
}

func (m *mesh) calls(name string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.dialed[name+":9080"]; c != nil {
		return c.Load()
	}
	return 0
}

func (m *mesh) transport() http.RoundTripper {
	var d net.Dialer
	return &http.Transport{
		DisableKeepAlives: true, // one dial per call, so dials count calls
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			m.mu.Lock()
			c := m.dialed[addr]
			if c == nil {
				c = &atomic.Int64{}
				m.dialed[addr] = c
			}
			target, ok := m.addrs[addr]
			m.mu.Unlock()
			c.Add(1)
			if !ok {
				return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
			}
			return d.DialContext(ctx, network, target)
		},
	}
}

func mustNew(t *testing.T, svc, version string, env Env) http.Handler {
	t.Helper()
	h, err := New(svc, version, env)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func envFor(m *mesh, svc, version string) Env {
	return Env{Cluster: "cluster1", Namespace: "default", Pod: svc + "-" + version + "-pod", Outbound: m.transport()}
}

// bookinfo starts details, ratings and the given reviews version behind m.
func bookinfo(t *testing.T, m *mesh, reviews string) {
	t.Helper()
	m.serve(t, "details", mustNew(t, "details", "v1", envFor(m, "details", "v1")))
	m.serve(t, "ratings", mustNew(t, "ratings", "v1", envFor(m, "ratings", "v1")))
	if reviews != "" {
		m.serve(t, "reviews", mustNew(t, "reviews", reviews, envFor(m, "reviews", reviews)))
	}
}

func get(t *testing.T, h http.Handler, target string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Assert(t, filepath.Join("testdata", name), got)
}

func TestProductpage(t *testing.T) {
	tests := []struct {
		name        string
		reviews     string // version; "" for none
		downDetails bool
		want        []string
		notWant     []string
		reviewsPod  string
		golden      string
	}{
		{name: "reviews v1", reviews: "v1",
			want:    []string{"The Comedy of Errors", "Book Details", "PublisherA", "Reviewer1", "Reviews served by: <u>reviews-v1-pod</u> on cluster <u>cluster1</u>"},
			notWant: []string{"glyphicon-star", ReviewsUnavailable}, reviewsPod: "reviews-v1-pod", golden: "productpage_v1.html"},
		{name: "reviews v2 black stars", reviews: "v2",
			want:       []string{`<font color="black">`, "glyphicon-star-empty"},
			reviewsPod: "reviews-v2-pod", golden: "productpage_v2.html"},
		{name: "reviews v3 red stars", reviews: "v3",
			want: []string{`<font color="red">`}, reviewsPod: "reviews-v3-pod"},
		{name: "reviews down", reviews: "",
			want:    []string{"Error fetching product reviews!", ReviewsUnavailable, "Book Details"},
			notWant: []string{"Reviews served by"}, golden: "productpage_noreviews.html"},
		{name: "details down", reviews: "v1", downDetails: true,
			want: []string{"Error fetching product details!", DetailsUnavailable, "Book Reviews"}, reviewsPod: "reviews-v1-pod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh()
			if !tc.downDetails {
				m.serve(t, "details", mustNew(t, "details", "v1", envFor(m, "details", "v1")))
			}
			m.serve(t, "ratings", mustNew(t, "ratings", "v1", envFor(m, "ratings", "v1")))
			if tc.reviews != "" {
				m.serve(t, "reviews", mustNew(t, "reviews", tc.reviews, envFor(m, "reviews", tc.reviews)))
			}
			pp := mustNew(t, "productpage", "v1", envFor(m, "productpage", "v1"))
			resp, body := get(t, pp, "/productpage", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 whatever its calls answer", resp.StatusCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q:\n%s", w, body)
				}
			}
			if got := resp.Header.Get(HeaderReviewsPod); got != tc.reviewsPod {
				t.Errorf("%s = %q, want %q", HeaderReviewsPod, got, tc.reviewsPod)
			}
			if got := resp.Header.Get(HeaderWorkload); got != "productpage-v1" {
				t.Errorf("%s = %q, want productpage-v1", HeaderWorkload, got)
			}
			if tc.golden != "" {
				golden(t, tc.golden, []byte(body))
			}
		})
	}
}

// Upstream productpage calls reviews twice before giving up: a drill's
// upstream error counts depend on it.
func TestProductpageRetriesReviewsOnce(t *testing.T) {
	tests := []struct {
		name    string
		reviews http.Handler // nil: connection refused
	}{
		{"refused", nil},
		{"503", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no healthy upstream", 503) })},
		{"not JSON", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh()
			bookinfo(t, m, "")
			if tc.reviews != nil {
				m.serve(t, "reviews", tc.reviews)
			}
			pp := mustNew(t, "productpage", "v1", envFor(m, "productpage", "v1"))
			resp, body := get(t, pp, "/productpage", nil)
			if resp.StatusCode != 200 || !strings.Contains(body, ReviewsUnavailable) {
				t.Fatalf("status %d, body lacks the unavailable sentence:\n%s", resp.StatusCode, body)
			}
			if got := m.calls("reviews"); got != reviewsTries {
				t.Errorf("reviews called %d times, want %d", got, reviewsTries)
			}
			if got := m.calls("details"); got != 1 {
				t.Errorf("details called %d times, want 1", got)
			}
		})
	}
}

func TestProductpageAPI(t *testing.T) {
	m := newMesh()
	bookinfo(t, m, "v2")
	m.serve(t, "failing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }))
	pp := mustNew(t, "productpage", "v1", envFor(m, "productpage", "v1"))
	ppDown := mustNew(t, "productpage", "v1", Env{Outbound: m.transport(), Vars: map[string]string{
		"REVIEWS_HOSTNAME": "failing", "DETAILS_HOSTNAME": "nowhere", "RATINGS_HOSTNAME": "failing"}})

	tests := []struct {
		name   string
		h      http.Handler
		path   string
		status int
		json   string // compared as JSON when set
		has    string
	}{
		{"products", pp, "/api/v1/products", 200, "", `"title":"The Comedy of Errors"`},
		{"product", pp, "/api/v1/products/0", 200, `{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}`, ""},
		{"ratings", pp, "/api/v1/products/0/ratings", 200, `{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}`, ""},
		{"reviews", pp, "/api/v1/products/0/reviews", 200, "", `"color":"black"`},
		{"details refused", ppDown, "/api/v1/products/0", 500, `{"error":"` + DetailsUnavailable + `"}`, ""},
		{"reviews 503", ppDown, "/api/v1/products/0/reviews", 503, `{"error":"` + ReviewsUnavailable + `"}`, ""},
		{"ratings 503", ppDown, "/api/v1/products/0/ratings", 503, `{"error":"` + RatingsUnavailableForBook + `"}`, ""},
		{"health", pp, "/health", 200, "", "Product page is healthy"},
		{"index", pp, "/", 200, "", "http://reviews:9080/reviews/"},
		{"unknown", pp, "/nope", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.h, tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.json != "" {
				assertJSON(t, body, tc.json)
			}
			if !strings.Contains(body, tc.has) {
				t.Errorf("body lacks %q: %s", tc.has, body)
			}
		})
	}
}

func assertJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("got %s, want %s", gb, wb)
	}
}

func TestServices(t *testing.T) {
	m := newMesh()
	bookinfo(t, m, "")
	env := func(svc, v string) Env { return envFor(m, svc, v) }
	tests := []struct {
		name, svc, version, path string
		status                   int
		golden                   string
		has                      string
	}{
		{"details", "details", "v1", "/details/0", 200, "details.json", ""},
		{"details other id", "details", "v1", "/details/7", 200, "", `"id":7`},
		{"details bad id", "details", "v1", "/details/abc", 400, "", `"error":"please provide numeric product id"`},
		{"details health", "details", "v1", "/health", 200, "", `"status":"Details is healthy"`},
		{"ratings", "ratings", "v1", "/ratings/0", 200, "ratings.json", ""},
		{"ratings parseInt", "ratings", "v1", "/ratings/12abc", 200, "", `"id":12`},
		{"ratings bad id", "ratings", "v1", "/ratings/abc", 400, "", "please provide numeric product ID"},
		{"ratings health", "ratings", "v1", "/health", 200, "", "Ratings is healthy"},
		{"reviews v1", "reviews", "v1", "/reviews/0", 200, "reviews_v1.json", ""},
		{"reviews v2", "reviews", "v2", "/reviews/0", 200, "reviews_v2.json", ""},
		{"reviews v3", "reviews", "v3", "/reviews/0", 200, "reviews_v3.json", ""},
		{"reviews bad id", "reviews", "v1", "/reviews/abc", 404, "", ""},
		{"reviews health", "reviews", "v3", "/health", 200, "", "Reviews is healthy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, mustNew(t, tc.svc, tc.version, env(tc.svc, tc.version)), tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.golden != "" {
				golden(t, tc.golden, []byte(body))
			}
			if !strings.Contains(body, tc.has) {
				t.Errorf("body lacks %q: %s", tc.has, body)
			}
			if got := resp.Header.Get(HeaderPod); got != tc.svc+"-"+tc.version+"-pod" {
				t.Errorf("%s = %q", HeaderPod, got)
			}
			if got := resp.Header.Get(HeaderCluster); got != "cluster1" {
				t.Errorf("%s = %q", HeaderCluster, got)
			}
		})
	}
}

func TestRatingsPost(t *testing.T) {
	h := mustNew(t, "ratings", "v1", Env{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/ratings/3", "application/json", strings.NewReader(`{"Reviewer1":1,"Reviewer2":2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST status %d", resp.StatusCode)
	}
	_, body := get(t, h, "/ratings/3", nil)
	assertJSON(t, body, `{"id":3,"ratings":{"Reviewer1":1,"Reviewer2":2}}`)
	// The handler built above keeps what was posted; every call to New is a
	// new pod, with nothing posted.
	_, body = get(t, mustNew(t, "ratings", "v1", Env{}), "/ratings/3", nil)
	assertJSON(t, body, `{"id":3,"ratings":{"Reviewer1":5,"Reviewer2":4}}`)
	resp, err = srv.Client().Post(srv.URL+"/ratings/3", "application/json", strings.NewReader(`not json`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("POST of bad JSON: status %d, want 400", resp.StatusCode)
	}
}

func TestReviewsWithoutRatings(t *testing.T) {
	tests := []struct {
		version string
		ratings http.Handler
	}{
		{"v2", nil},
		{"v3", nil},
		{"v2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "{}", 500) })},
		{"v3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"id":0,"ratings":{"Reviewer1":3}}`) })},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			m := newMesh()
			if tc.ratings != nil {
				m.serve(t, "ratings", tc.ratings)
			}
			_, body := get(t, mustNew(t, "reviews", tc.version, envFor(m, "reviews", tc.version)), "/reviews/0", nil)
			var ans ReviewsAnswer
			if err := json.Unmarshal([]byte(body), &ans); err != nil {
				t.Fatal(err)
			}
			if len(ans.Reviews) != 2 || ans.Reviews[1].Rating == nil || ans.Reviews[1].Rating.Error != RatingsUnavailable {
				t.Errorf("want Reviewer2's rating to be the ratings error, got %s", body)
			}
		})
	}
}

// reviews v3 gives up on ratings after upstream's 2.5 s; the answer still
// comes, with the ratings error.
func TestReviewsV3RatingsTimeout(t *testing.T) {
	m := newMesh()
	release := make(chan struct{})
	defer close(release)
	m.serve(t, "ratings", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	start := time.Now()
	_, body := get(t, mustNew(t, "reviews", "v3", envFor(m, "reviews", "v3")), "/reviews/0", nil)
	took := time.Since(start)
	if !strings.Contains(body, RatingsUnavailable) {
		t.Errorf("want the ratings error, got %s", body)
	}
	if took < 2500*time.Millisecond || took > 5*time.Second {
		t.Errorf("answered after %s, want just after the 2.5s ratings timeout", took)
	}
}

func TestHeadersPropagate(t *testing.T) {
	m := newMesh()
	var got atomic.Value
	m.serve(t, "details", mustNew(t, "details", "v1", Env{}))
	m.serve(t, "ratings", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Clone())
		io.WriteString(w, `{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}`)
	}))
	m.serve(t, "reviews", mustNew(t, "reviews", "v2", envFor(m, "reviews", "v2")))
	pp := mustNew(t, "productpage", "v1", envFor(m, "productpage", "v1"))

	srv := httptest.NewServer(pp)
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.PostForm(srv.URL+"/login", url.Values{"username": {"jason"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: status %d, want 302", resp.StatusCode)
	}
	cookies := resp.Cookies()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/productpage", nil)
	req.Header.Set("x-request-id", "req-1")
	req.Header.Set("x-b3-traceid", "abc")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "jason") {
		t.Errorf("page does not show the signed-in user")
	}
	h, _ := got.Load().(http.Header)
	if h == nil {
		t.Fatal("ratings was not called")
	}
	for k, want := range map[string]string{"x-request-id": "req-1", "x-b3-traceid": "abc", "end-user": "jason"} {
		if v := h.Get(k); v != want {
			t.Errorf("ratings got %s %q, want %q (productpage → reviews → ratings)", k, v, want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct{ svc, version, want string }{
		{"reviews", "v4", "no version"},
		{"details", "v2", "no version"},
		{"frontend", "v1", "no service"},
	} {
		_, err := New(tc.svc, tc.version, Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s, %s) = %v, want an error saying %q", tc.svc, tc.version, err, tc.want)
		}
	}
}

func TestRefusedIsConnRefused(t *testing.T) {
	// The test mesh must fail the way kube-proxy does, or the tests above
	// prove nothing about refused connections.
	m := newMesh()
	_, err := (&http.Client{Transport: m.transport()}).Get("http://reviews:9080/reviews/0")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want connection refused", err)
	}
}

func BenchmarkProductpage(b *testing.B) {
	m := newMesh()
	for _, s := range []struct{ svc, v string }{{"details", "v1"}, {"ratings", "v1"}, {"reviews", "v2"}} {
		h, _ := New(s.svc, s.v, envFor(m, s.svc, s.v))
		srv := httptest.NewServer(h)
		defer srv.Close()
		m.addrs[s.svc+":9080"] = srv.Listener.Addr().String()
	}
	pp, _ := New("productpage", "v1", envFor(m, "productpage", "v1"))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		pp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/productpage", nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "glyphicon-star") {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
