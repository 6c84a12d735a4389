package history

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/report"
)

// Off is the --history value (and DRILL_HISTORY) that turns the history off.
const Off = "off"

// Path is where a run's history is: flag (--history, DRILL_HISTORY) when
// set, history.db in reportsDir otherwise; "" when the history is off.
func Path(flag, reportsDir string) string {
	switch f := strings.TrimSpace(flag); {
	case strings.EqualFold(f, Off):
		return ""
	case f != "":
		return f
	}
	return filepath.Join(reportsDir, FileName)
}

// recordTimeout bounds the history's part of writing a run's reports: a
// history another run holds locked must not keep this one from ending.
const recordTimeout = 2 * busyTimeout

// WriteReports writes the reports of a run into dir (report.WriteAll),
// judged against the history at path, then records the run in it. With path
// "" the history is off: it is report.WriteAll.
//
// The reports come first and are written whatever the history does. A
// history that cannot be opened or read makes the run's regression
// expectations errors that say why (and a note in the report);
// historyErr says what went wrong with the history, reportErr is what
// report.WriteAll returned.
func WriteReports(ctx context.Context, path, dir string, events []event.Event, opts ...report.Option) (rep *report.Report, reportErr, historyErr error) {
	if path == "" {
		rep, reportErr = report.WriteAll(dir, events, opts...)
		return rep, reportErr, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	store, historyErr := Open(ctx, path)
	if historyErr != nil {
		rep, reportErr = report.WriteAll(dir, events, append(opts, report.WithHistory(unreadable{historyErr}))...)
		return rep, reportErr, historyErr
	}
	defer store.Close()
	rep, reportErr = report.WriteAll(dir, events, append(opts, report.WithHistory(store))...)
	if rep.RunID == "" {
		return rep, reportErr, nil // not a run: nothing to record
	}
	return rep, reportErr, store.Append(ctx, rep, dir)
}

// unreadable is a history that could not be opened: every read says why.
type unreadable struct{ err error }

func (u unreadable) Runs(string, string, time.Time, int) ([]report.PastRun, error) { return nil, u.err }
