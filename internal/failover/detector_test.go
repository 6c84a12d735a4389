package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

const (
	localReviews  = "outbound|9080||reviews.default.svc.cluster.local"
	remoteReviews = "outbound|9080||reviews.default.svc.cluster2.global"
	aggregateHost = "reviews-failover.default.global"
)

// start is the wall-clock instant the fed runs begin at.
var start = time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)

// feed builds a run of events for a Detector: a step at 10 s, then samples.
type feed struct {
	seq    uint64
	events []event.Event
}

func (f *feed) add(e event.Event, at time.Duration) {
	f.seq++
	e.Seq, e.Elapsed, e.Time = f.seq, at, start.Add(at)
	f.events = append(f.events, e)
}

func (f *feed) step(at time.Duration, name string) *feed {
	f.add(event.New(event.StepStarted, "", "engine", event.Step{Name: name, Action: "fault"}), at)
	return f
}

// sample adds a scrape of productpage in cluster ending at `at`.
func (f *feed) sample(at time.Duration, cluster string, clusters map[string]event.ClusterDelta, served map[string]map[string]int64) *feed {
	f.add(event.New(event.StatsSample, cluster, "stats/productpage",
		event.Sample{Workload: "productpage", Interval: time.Second, Clusters: clusters, Served: served}), at)
	return f
}

// envoy is a sample's Envoy clusters: requests and 503s per Envoy cluster.
func envoy(kv ...any) map[string]event.ClusterDelta {
	m := map[string]event.ClusterDelta{}
	for i := 0; i < len(kv); i += 3 {
		m[kv[i].(string)] = event.ClusterDelta{Requests: int64(kv[i+1].(int)), Upstream5xx: int64(kv[i+2].(int))}
	}
	return m
}

// served is a sample's istio_requests_total: host → cluster → requests.
func served(host string, kv ...any) map[string]map[string]int64 {
	m := map[string]int64{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = int64(kv[i+1].(int))
	}
	return map[string]map[string]int64{host: m}
}

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestDetector(t *testing.T) {
	watch := Watch{Service: "reviews", Namespace: "default", From: "cluster1", To: "cluster2",
		Hosts: []string{aggregateHost}, FailoverAfter: "down", FailbackAfter: "back"}
	type want struct {
		typ   event.Type
		took  time.Duration
		basis string
		got   int64 // Served
		total int64
	}
	cases := []struct {
		name  string
		watch *Watch
		opts  []DetectorOption
		feed  *feed
		want  []want
	}{
		{
			name: "aggregate strategy, by envoy cluster",
			feed: new(feed).
				sample(sec(9.5), "cluster1", envoy(localReviews, 50, 0), nil).
				step(sec(10), "down").
				sample(sec(10.5), "cluster1", envoy(localReviews, 50, 4), nil).
				sample(sec(11.5), "cluster1", envoy(localReviews, 30, 8, remoteReviews, 20, 0), nil). // 20 of 42: no
				sample(sec(12.5), "cluster1", envoy(localReviews, 10, 0, remoteReviews, 40, 0), nil).
				sample(sec(13.5), "cluster1", envoy(remoteReviews, 50, 0), nil),
			want: []want{{event.FailoverDetected, sec(2.5), "envoy_cluster", 40, 50}},
		},
		{
			name: "istio_requests_total wins over envoy clusters",
			feed: new(feed).
				step(sec(10), "down").
				// Envoy says local; the answering workloads say cluster2 (a merged
				// host, as under the locality strategy).
				sample(sec(11), "cluster1", envoy(localReviews, 50, 0), served("reviews.default.svc.cluster.local", "cluster2", 30, "cluster1", 20)),
			want: []want{{event.FailoverDetected, sec(1), "istio_requests_total", 30, 50}},
		},
		{
			name: "locality strategy: one envoy cluster, told apart by destination_cluster",
			feed: new(feed).
				sample(sec(9), "cluster1", envoy(localReviews, 50, 0), served("reviews.default.svc.cluster.local", "cluster1", 50)).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(localReviews, 50, 20), served("reviews.default.svc.cluster.local", "cluster1", 10, "unknown", 20, "cluster2", 20)).
				sample(sec(12), "cluster1", envoy(localReviews, 50, 0), served("reviews.default.svc.cluster.local", "cluster2", 49, "cluster1", 1)),
			// The first interval: 20 of 30 answered requests — the 20 unanswered
			// count for no one — are a majority.
			want: []want{{event.FailoverDetected, sec(1), "istio_requests_total", 20, 30}},
		},
		{
			name: "requests to the failover host count as the service's",
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", nil, served(aggregateHost, "cluster2", 9, "cluster1", 1)),
			want: []want{{event.FailoverDetected, sec(1), "istio_requests_total", 9, 10}},
		},
		{
			name: "a half is not a majority",
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(localReviews, 25, 0, remoteReviews, 25, 0), nil),
		},
		{
			name: "too few requests to decide",
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(remoteReviews, 4, 0), nil).
				sample(sec(12), "cluster1", envoy(remoteReviews, 5, 0), nil),
			want: []want{{event.FailoverDetected, sec(2), "envoy_cluster", 5, 5}},
		},
		{
			name: "min requests option",
			opts: []DetectorOption{WithMinRequests(10)},
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(remoteReviews, 9, 0), nil),
		},
		{
			name: "share option",
			opts: []DetectorOption{WithShare(0.9)},
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(localReviews, 10, 0, remoteReviews, 40, 0), nil).
				sample(sec(12), "cluster1", envoy(localReviews, 2, 0, remoteReviews, 48, 0), nil),
			want: []want{{event.FailoverDetected, sec(2), "envoy_cluster", 48, 50}},
		},
		{
			name: "failed requests are no one's",
			feed: new(feed).
				step(sec(10), "down").
				// 45 local answers are 503s: 5 local successes against 4 remote.
				sample(sec(11), "cluster1", envoy(localReviews, 50, 45, remoteReviews, 4, 0), nil),
		},
		{
			name: "samples before the step do not count",
			feed: new(feed).
				sample(sec(9), "cluster1", envoy(remoteReviews, 50, 0), nil).
				step(sec(10), "down").
				sample(sec(10), "cluster1", envoy(remoteReviews, 50, 0), nil). // published with the step: before it
				sample(sec(11), "cluster1", envoy(remoteReviews, 50, 0), nil),
			want: []want{{event.FailoverDetected, sec(1), "envoy_cluster", 50, 50}},
		},
		{
			name: "without the step nothing is detected",
			feed: new(feed).
				sample(sec(11), "cluster1", envoy(remoteReviews, 50, 0), nil),
		},
		{
			name: "clients in other clusters are not watched",
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster2", envoy("outbound|9080||reviews.default.svc.cluster.local", 50, 0), served("reviews.default.svc.cluster.local", "cluster2", 50)),
		},
		{
			name: "observer option",
			opts: []DetectorOption{WithObserver("details")},
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(remoteReviews, 50, 0), nil),
		},
		{
			name: "other services do not count",
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy("outbound|9080||ratings.default.svc.cluster2.global", 50, 0), served("details.default.svc.cluster2.global", "cluster2", 50)),
		},
		{
			name: "failover then failback, each once",
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(remoteReviews, 50, 0), nil).
				sample(sec(12), "cluster1", envoy(remoteReviews, 50, 0), nil).
				step(sec(20), "back").
				sample(sec(21), "cluster1", envoy(remoteReviews, 50, 0), nil).
				sample(sec(22), "cluster1", envoy(localReviews, 30, 0, remoteReviews, 20, 0), nil).
				sample(sec(23), "cluster1", envoy(localReviews, 50, 0), nil),
			want: []want{
				{event.FailoverDetected, sec(1), "envoy_cluster", 50, 50},
				{event.FailbackDetected, sec(2), "envoy_cluster", 30, 50},
			},
		},
		{
			name:  "a watch without a failback step only fails over",
			watch: &Watch{Service: "reviews", From: "cluster1", To: "cluster2", FailoverAfter: "down"},
			feed: new(feed).
				step(sec(10), "down").
				sample(sec(11), "cluster1", envoy(remoteReviews, 50, 0), nil).
				step(sec(20), "back").
				sample(sec(21), "cluster1", envoy(localReviews, 50, 0), nil),
			want: []want{{event.FailoverDetected, sec(1), "envoy_cluster", 50, 50}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := watch
			if tc.watch != nil {
				w = *tc.watch
			}
			d, err := NewDetector(w, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var got []event.Event
			for _, e := range tc.feed.events {
				got = append(got, d.Observe(e)...)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d detections %v, want %d", len(got), got, len(tc.want))
			}
			for i, e := range got {
				var f event.Failover
				if err := e.Decode(&f); err != nil {
					t.Fatal(err)
				}
				wt := tc.want[i]
				if e.Type != wt.typ || f.Took != wt.took || f.Basis != wt.basis || f.Served != wt.got || f.Total != wt.total {
					t.Errorf("detection %d: %s %+v, want %s took %v basis %s served %d of %d", i, e.Type, f, wt.typ, wt.took, wt.basis, wt.got, wt.total)
				}
				if f.Resolution != time.Second || f.Service != "reviews" || e.Source != DetectorSource || e.Cluster != "cluster1" {
					t.Errorf("detection %d: %+v from %s in %s", i, f, e.Source, e.Cluster)
				}
				wantFrom, wantTo := "cluster1", "cluster2"
				if e.Type == event.FailbackDetected {
					wantFrom, wantTo = wantTo, wantFrom
				}
				if f.From != wantFrom || f.To != wantTo {
					t.Errorf("detection %d: from %s to %s, want from %s to %s", i, f.From, f.To, wantFrom, wantTo)
				}
			}
		})
	}
}

func TestNewDetectorRejects(t *testing.T) {
	for _, tc := range []struct {
		w    Watch
		opts []DetectorOption
		msg  string
	}{
		{Watch{From: "a", To: "b"}, nil, "no service"},
		{Watch{Service: "reviews", From: "a"}, nil, "both clusters"},
		{Watch{Service: "reviews", From: "a", To: "a"}, nil, "both a"},
		{Watch{Service: "reviews", From: "a", To: "b"}, []DetectorOption{WithShare(1)}, "share"},
		{Watch{Service: "reviews", From: "a", To: "b"}, []DetectorOption{WithMinRequests(0)}, "minimum"},
	} {
		_, err := NewDetector(tc.w, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("NewDetector(%+v): %v, want an error about %q", tc.w, err, tc.msg)
		}
	}
}
