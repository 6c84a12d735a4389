package drill_test

import (
	"context"
	"strings"
	"testing"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/drill"
	"github.com/meshdrill/drill/pkg/report"
	"github.com/meshdrill/drill/pkg/scenario"
)

// meshlessProvider is a provider whose clusters would run no mesh; Up must
// never be reached.
type meshlessProvider struct{ t *testing.T }

func (meshlessProvider) Name() string                 { return "kind" }
func (meshlessProvider) DataPlane() cluster.DataPlane { return cluster.DataPlaneNone }
func (meshlessProvider) Down(context.Context) error   { return nil }
func (p meshlessProvider) Up(context.Context, *scenario.Scenario) ([]*cluster.Cluster, error) {
	p.t.Error("Up was called for a provider without a mesh")
	return nil, nil
}

// TestRunWithoutMesh: a drill on a provider whose clusters run no mesh stops
// before creating anything, with verdict error and a reason that says what to do.
func TestRunWithoutMesh(t *testing.T) {
	s, raw := loadScenario(t, "testdata/seed-short.yaml")
	res, err := drill.Run(context.Background(), s, drill.WithProvider(meshlessProvider{t}), drill.WithOut(t.TempDir()), drill.WithScenarioYAML(raw))
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Verdict != report.Error || !strings.Contains(res.Report.Reason, "no mesh") || res.ExitCode() != report.ExitError {
		t.Fatalf("verdict %s (%q), exit %d; want error naming the missing mesh, exit 2", res.Report.Verdict, res.Report.Reason, res.ExitCode())
	}
	if res.Report.DataPlane != string(cluster.DataPlaneNone) {
		t.Errorf("report data plane %q, want none", res.Report.DataPlane)
	}
}
