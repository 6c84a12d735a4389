package kind

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	kindlog "sigs.k8s.io/kind/pkg/log"
)

// kindLogger makes kind's progress ("Ensuring node image", "Preparing nodes",
// "Starting control-plane") records of drill's log, tagged with the cluster,
// so a nightly job's log shows each step of each cluster.
type kindLogger struct {
	log *slog.Logger
}

var _ kindlog.Logger = kindLogger{}

func (l kindLogger) Warn(message string) { l.log.Warn(clean(message)) }
func (l kindLogger) Warnf(format string, args ...any) {
	l.log.Warn(clean(fmt.Sprintf(format, args...)))
}
func (l kindLogger) Error(message string) { l.log.Error(clean(message)) }
func (l kindLogger) Errorf(format string, args ...any) {
	l.log.Error(clean(fmt.Sprintf(format, args...)))
}

// V maps kind's verbosity to levels: V(0) is kind's user-facing progress
// (Info), V(1) and above its debug output.
func (l kindLogger) V(level kindlog.Level) kindlog.InfoLogger {
	return kindInfo{log: l.log, level: map[bool]slog.Level{true: slog.LevelInfo, false: slog.LevelDebug}[level <= 0]}
}

type kindInfo struct {
	log   *slog.Logger
	level slog.Level
}

func (l kindInfo) Info(message string) { l.emit(message) }
func (l kindInfo) Infof(format string, args ...any) {
	l.emit(fmt.Sprintf(format, args...))
}
func (l kindInfo) Enabled() bool { return true }

func (l kindInfo) emit(msg string) {
	if msg = clean(msg); msg != "" {
		l.log.Log(context.Background(), l.level, "kind: "+msg)
	}
}

// clean trims kind's terminal decorations (status emoji, trailing spaces).
func clean(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range []string{"✓", "✗", "•", "⢎", "⠁"} {
		s = strings.TrimSpace(strings.TrimPrefix(s, p))
	}
	return s
}
