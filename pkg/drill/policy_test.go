package drill

import (
	"context"
	"errors"
	"testing"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

// namedProvider is a provider that knows nothing of remotes (like kind's).
type namedProvider struct{ cluster.Provider }

func (namedProvider) Name() string { return "kind" }

type ewAccess struct {
	cluster.Access
	ep  translate.Endpoint
	err error
}

func (a ewAccess) EastWest(context.Context) (translate.Endpoint, error) { return a.ep, a.err }

func TestRemotesFromEastWestGateways(t *testing.T) {
	bus := event.NewBus()
	defer bus.Close()
	log := bus.Subscribe("test")
	r := &run{cfg: config{provider: namedProvider{}}, s: &scenario.Scenario{}, bus: bus, clusters: map[string]*cluster.Cluster{
		"cluster1": {Name: "cluster1", Access: ewAccess{ep: translate.Endpoint{Address: "172.18.255.200", Port: 15443}}},
		"cluster2": {Name: "cluster2", Access: ewAccess{err: errors.New("no LoadBalancer address yet")}},
	}}
	got := r.remotes(context.Background())
	if len(got) != 1 || got["cluster1"].Address != "172.18.255.200" || got["cluster1"].Port != 15443 {
		t.Errorf("remotes = %+v, want cluster1's east-west gateway only", got)
	}
	e := <-log.Events()
	var l event.LogLine
	if e.Type != event.Log || e.Cluster != "cluster2" || e.Decode(&l) != nil || l.Level != "warn" {
		t.Errorf("want a warning about cluster2, got %+v", e)
	}
}
