package report

import (
	"reflect"
	"testing"

	"github.com/meshdrill/drill/pkg/scenario"
)

func TestWatches(t *testing.T) {
	st := seedStory(t)
	for _, tc := range []struct {
		name   string
		expect string
		want   []Watch
	}{
		{
			name: "the seed: failover and failback of reviews in one watch",
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
			y := st.yaml
			if tc.expect != "" {
				y = withExpect(t, y, tc.expect)
			}
			s, err := scenario.Parse("seed.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			if got := Watches(s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Watches:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
