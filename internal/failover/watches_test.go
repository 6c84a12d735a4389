package failover

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/meshdrill/drill/pkg/scenario"
)

// withExpect replaces a scenario's expectations.
func withExpect(t *testing.T, yaml, expect string) string {
	t.Helper()
	i := strings.Index(yaml, "  expect:\n")
	if i < 0 {
		t.Fatal("the scenario has no expect section")
	}
	return yaml[:i] + "  expect:\n" + expect
}

func TestWatches(t *testing.T) {
	seed, err := os.ReadFile("../../scenarios/reviews-failover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		expect string
		want   []Watch
	}{
		{
			name: "the seed: failover and failback of reviews in one watch",
			expect: "    - name: failover-fast\n      failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: reviews-down}\n" +
				"    - name: failback\n      failback: {service: reviews, to: cluster1, within: 30s, after: reviews-back}\n",
			want: []Watch{{Service: "reviews", Namespace: "default", From: "cluster1", To: "cluster2",
				Hosts: []string{aggregateHost}, Clients: []string{"cluster1"}, FailoverAfter: "reviews-down", FailbackAfter: "reviews-back"}},
		},
		{
			name:   "a failback alone fails back from the other cluster",
			expect: "    - name: back\n      failback: {service: reviews, to: cluster1, within: 30s, after: reviews-back}\n",
			want: []Watch{{Service: "reviews", Namespace: "default", From: "cluster1", To: "cluster2",
				Hosts: []string{aggregateHost}, Clients: []string{"cluster1"}, FailbackAfter: "reviews-back"}},
		},
		{
			name:   "a chain's second hop is seen by the first cluster's clients",
			expect: "    - name: hop2\n      failover: {service: reviews, from: cluster2, to: cluster1, within: 10s, after: reviews-down}\n",
			want: []Watch{{Service: "reviews", Namespace: "default", From: "cluster2", To: "cluster1",
				Hosts: []string{aggregateHost}, Clients: []string{"cluster1"}, FailoverAfter: "reviews-down"}},
		},
		{
			name:   "no failover expectations, no watches",
			expect: "    - name: few-errors\n      errors: {max: 5}\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scenario.Parse("reviews-failover.yaml", []byte(withExpect(t, string(seed), tc.expect)))
			if err != nil {
				t.Fatal(err)
			}
			if got := Watches(s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Watches:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
