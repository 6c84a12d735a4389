package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// TestShare: the share of a service's answers one cluster served, from the
// load's own answers, over a window: 30 % of reviews spill to cluster2 after
// the fault in this story, 0 % before. Failed calls (no cluster named) are in
// neither the share nor its whole. A service the answers do not name is read
// from the observed Envoys' istio_requests_total; with neither it cannot be
// judged.
func TestShare(t *testing.T) {
	const ms = time.Millisecond
	story := seedStory(t)
	story.yaml = withExpect(t, story.yaml, `    - name: home-before
      share: {service: reviews, cluster: cluster1, min: 100%, until: 20s}
    - name: home-but-one
      share: {service: reviews, cluster: cluster1, min: 100%, until: reviews-down}
    - name: spill
      share: {service: reviews, cluster: cluster2, min: 22%, max: 38%, from: reviews-down + 2s, until: reviews-back}
    - name: spill-too-small
      share: {service: reviews, cluster: cluster2, max: 20%, from: reviews-down + 2s, until: reviews-back}
    - name: spill-too-large
      share: {service: reviews, cluster: cluster2, min: 40%, from: reviews-down + 2s, until: reviews-back}
    - name: details-by-envoy
      share: {service: details, cluster: cluster1, min: 50%}
    - name: ratings-not-named
      share: {service: ratings, cluster: cluster1, min: 50%}
`)
	evs := withServed(t, story.build(), func(start time.Duration) map[string]event.Seen {
		end := start + time.Second
		switch {
		case start == 20*time.Second:
			// One stray answer: a share of 100 % no longer holds.
			return map[string]event.Seen{"cluster1": seen(39, start+10*ms, end-5*ms), "cluster2": seen(1, start+500*ms, start+500*ms)}
		case start < faultAt:
			return map[string]event.Seen{"cluster1": seen(40, start+10*ms, end-5*ms)}
		case start < faultAt+2*time.Second:
			return map[string]event.Seen{"cluster1": seen(20, start+10*ms, end-5*ms)}
		case start < revertAt:
			return map[string]event.Seen{"cluster1": seen(28, start+10*ms, end-5*ms), "cluster2": seen(12, start+12*ms, end-6*ms)}
		}
		return map[string]event.Seen{"cluster1": seen(40, start+10*ms, end-5*ms)}
	})
	rep, err := Build(evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		status   Status
		observed float64
	}{
		{"home-before", StatusPass, 1},
		{"home-but-one", StatusFail, 0.9992},
		{"spill", StatusPass, 0.3},
		{"spill-too-small", StatusFail, 0.3},
		{"spill-too-large", StatusFail, 0.3},
	} {
		r := resultOf(t, rep, c.name)
		if r.Kind != "share" || r.Status != c.status || len(r.Measures) != 1 || r.Measures[0].Observed == nil || math.Abs(*r.Measures[0].Observed-c.observed) > 1e-4 {
			t.Errorf("%s: %s %s, measures %+v (%s); want %s, %v", c.name, r.Kind, r.Status, r.Measures, r.Message, c.status, c.observed)
		}
	}
	spill := resultOf(t, rep, "spill")
	// 58 windows of 40 answers each from 32 s to 90 s, 12 of each from cluster2.
	if want := "cluster2 served 696 of the 2,320 reviews answers (30 %) in [reviews-down + 2s, reviews-back) = [32 s, 90 s), by the load's answers; the others: cluster1 1,624"; !strings.HasPrefix(spill.Message, want) {
		t.Errorf("message %q, want it to begin %q", spill.Message, want)
	}
	if spill.Check != "share of the load's reviews answers served by cluster2 between 22 % and 38 % in [reviews-down + 2s, reviews-back)" {
		t.Errorf("check %q", spill.Check)
	}
	if m := spill.Measures[0]; m.ObservedText() != "30 %" || m.LimitText() != "22 % – 38 %" || m.Name != "share served by cluster2" {
		t.Errorf("measure %q shown as %q against %q", m.Name, m.ObservedText(), m.LimitText())
	}
	if spill.Breakdown["cluster1"] != 1624 || spill.Breakdown["cluster2"] != 696 {
		t.Errorf("breakdown %v, want the answers by cluster", spill.Breakdown)
	}
	// The answers name no cluster for details here; productpage's Envoy
	// counted them by destination_cluster.
	if r := resultOf(t, rep, "details-by-envoy"); r.Status != StatusPass || !strings.Contains(r.Message, "(100 %) in the whole load, by istio_requests_total of productpage's Envoy in cluster1") {
		t.Errorf("details-by-envoy: %s: %s; want the share from productpage's Envoy", r.Status, r.Message)
	}
	if r := resultOf(t, rep, "ratings-not-named"); r.Status != StatusError || !strings.Contains(r.Message, "names the cluster serving ratings, and no observed Envoy's istio_requests_total counted an answer from ratings") {
		t.Errorf("ratings-not-named: %s: %s; want an error saying nothing named a cluster", r.Status, r.Message)
	}
	// The failed share reads as its measure against its bounds in JUnit and
	// the summary.
	var junit, summary bytes.Buffer
	if err := rep.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteSummary(&summary); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `<failure message="share served by cluster2 30 % (limit ≤ 20 %)" type="share">`) || !strings.Contains(summary.String(), "spill-too-small") {
		t.Errorf("junit.xml or summary.md does not show the share:\n%s\n%s", junit.String(), summary.String())
	}
}
