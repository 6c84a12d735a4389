package report

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	goldenfile "github.com/meshdrill/drill/internal/golden"

	"github.com/meshdrill/drill/pkg/event"
)

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if filepath.Base(name) == JSONFile {
		checkReportJSON(t, name, got)
	}
	goldenfile.Assert(t, filepath.Join("testdata", name), got)
}

// firstDiff shows the first line where two texts differ.

// readLog reads an events.jsonl back with the log reader drill report uses.
func readLog(t *testing.T, data []byte) []event.Event {
	t.Helper()
	r := event.NewLogReader(bytes.NewReader(data))
	var evs []event.Event
	for {
		e, err := r.Next()
		if err != nil {
			if err.Error() == "EOF" {
				return evs
			}
			t.Fatalf("read log: %v", err)
		}
		evs = append(evs, e)
	}
}

// TestSeedGolden writes the seed drill's events.jsonl, reads it back as drill
// report does, and checks every rendering of its report against the golden files.
func TestSeedGolden(t *testing.T) {
	log := encodeLog(t, seedStory(t).build())
	golden(t, "seed/events.jsonl", log)
	rep, err := Build(readLog(t, log))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{JSONFile, func(b *bytes.Buffer) error { return rep.WriteJSON(b) }},
		{JUnitFile, func(b *bytes.Buffer) error { return rep.WriteJUnit(b) }},
		{SummaryFile, func(b *bytes.Buffer) error { return rep.WriteSummary(b) }},
		{HTMLFile, func(b *bytes.Buffer) error { return rep.WriteHTML(b) }},
	} {
		t.Run(r.file, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.write(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, "seed/"+r.file, buf.Bytes())
		})
	}
}

// TestFailedGolden checks the renderings of drills that did not pass: one whose
// failover never happened, and one killed before its revert.
func TestFailedGolden(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		story func(*story)
	}{
		{"never", func(s *story) { s.never, s.finish = true, "fail" }},
		{"killed", func(s *story) { s.finish, s.stopAt = "", 60*time.Second }},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			st := seedStory(t)
			tc.story(st)
			rep, err := Build(st.build())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				file  string
				write func(*bytes.Buffer) error
			}{
				{JSONFile, func(b *bytes.Buffer) error { return rep.WriteJSON(b) }},
				{JUnitFile, func(b *bytes.Buffer) error { return rep.WriteJUnit(b) }},
				{SummaryFile, func(b *bytes.Buffer) error { return rep.WriteSummary(b) }},
			} {
				var buf bytes.Buffer
				if err := r.write(&buf); err != nil {
					t.Fatal(err)
				}
				golden(t, tc.dir+"/"+r.file, buf.Bytes())
			}
		})
	}
}
