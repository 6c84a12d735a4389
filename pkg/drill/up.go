package drill

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// Up brings up a scenario's clusters without running the drill — for a person to
// look around with kubectl — and, when policy is true, applies the scenario's
// translated mesh policy. The caller tears the clusters down with p.Down.
func Up(ctx context.Context, s *scenario.Scenario, p cluster.Provider, policy bool, log *slog.Logger) ([]*cluster.Cluster, error) {
	if log == nil {
		log = slog.Default()
	}
	cs, err := p.Up(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name(), err)
	}
	if !policy {
		return cs, nil
	}
	bus := event.NewBus(event.WithLogger(log))
	defer bus.Close()
	r := &run{cfg: config{provider: p, logger: log}, s: s, log: log, bus: bus,
		clusters: map[string]*cluster.Cluster{}, applied: map[string]map[string]bool{}}
	for _, c := range cs {
		r.clusters[c.Name] = c
	}
	if err := r.applyPolicy(ctx, &s.Spec.Mesh, ""); err != nil {
		return cs, err
	}
	return cs, nil
}
