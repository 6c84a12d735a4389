package report

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshdrill/drill/pkg/event"
)

// FuzzBuild feeds arbitrary event logs through the reader, Build and every
// renderer: a report must come out of whatever a log holds, never a panic.
func FuzzBuild(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "seed", "events.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitAfter(seed, []byte("\n"))
	// The run's start, the first windows and samples, and the failover.
	f.Add(bytes.Join(lines[:12], nil))
	var around []byte
	around = append(around, lines[0]...)
	for _, l := range lines {
		if bytes.Contains(l, []byte(`"step.started"`)) || bytes.Contains(l, []byte(`"failover.detected"`)) ||
			bytes.Contains(l, []byte(`"elapsed":34900000000`)) || bytes.Contains(l, []byte(`"run.finished"`)) {
			around = append(around, l...)
		}
	}
	f.Add(around)
	f.Add([]byte(`{"seq":1,"time":"2026-11-24T21:00:00Z","elapsed":0,"type":"run.started","data":{"scenario":"x","provider":"local","clusters":[],"dataPlane":"envoy","loadDuration":0}}` + "\n" +
		`{"seq":2,"time":"2026-11-24T21:00:00Z","elapsed":5,"type":"load.window","data":{"start":10,"end":5,"requests":-3,"histogram":"HISTFAAAAB"}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := event.NewLogReader(bytes.NewReader(data))
		var evs []event.Event
		for {
			e, err := r.Next()
			if err != nil {
				break
			}
			evs = append(evs, e)
		}
		rep, _ := Build(evs)
		if rep == nil {
			t.Fatal("Build returned no report")
		}
		for _, w := range []func(io.Writer) error{rep.WriteJUnit, rep.WriteSummary, rep.WriteHTML} {
			if err := w(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		// Whatever the log, report.json keeps to its published schema.
		var js bytes.Buffer
		if err := rep.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		checkReportJSON(t, JSONFile, js.Bytes())
		if rep.Verdict != Pass && rep.Verdict != Fail && rep.Verdict != Error {
			t.Fatalf("verdict %q", rep.Verdict)
		}
	})
}
