package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/meshdrill/drill/pkg/event"
)

// The files a report directory holds besides events.jsonl.
const (
	JSONFile    = "report.json"
	JUnitFile   = "junit.xml"
	SummaryFile = "summary.md"
	HTMLFile    = "report.html"
	// MetricsFile (metrics.go) is written with them.
	// ResultsFile is the load's per-request results in vegeta's own binary
	// (gob) format, as `vegeta attack -output` writes them: `vegeta report`,
	// `vegeta plot` and `vegeta encode` read it. drill writes it while the load
	// runs; it is not rebuilt from events.jsonl.
	ResultsFile = "results.bin"
)

// WriteAll builds the report of events and writes report.json, junit.xml,
// summary.md and report.html into dir (which must exist). It returns the Report
// whatever happens, so that the caller can still print a verdict; the error says
// which file could not be written, or wraps ErrNoRun for events that are not a
// drill's record (the files are written all the same, saying so).
func WriteAll(dir string, events []event.Event, opts ...Option) (*Report, error) {
	rep, buildErr := Build(events, opts...)
	return rep, errors.Join(buildErr, rep.WriteFiles(dir))
}

// WriteFiles writes the files of the report into dir: report.json, junit.xml,
// summary.md, report.html and metrics.prom. Each file is written
// whole to a temporary name and renamed, so that a reader never sees half a report.
func (r *Report) WriteFiles(dir string) error {
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{JSONFile, r.WriteJSON},
		{JUnitFile, r.WriteJUnit},
		{SummaryFile, r.WriteSummary},
		{HTMLFile, r.WriteHTML},
		{MetricsFile, r.WriteMetrics},
	}
	var errs []error
	for _, f := range files {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := writeFile(filepath.Join(dir, f.name), buf.Bytes()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
