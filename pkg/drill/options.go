package drill

import (
	"io"
	"log/slog"
	"time"

	"github.com/meshdrill/drill/pkg/cluster"
)

// Option configures a run.
type Option func(*config)

type config struct {
	provider      cluster.Provider
	out           string
	keep          bool
	logger        *slog.Logger
	progress      io.Writer
	terminal      bool
	allowContexts []string
	scenarioYAML  []byte
	version       string
	readyTimeout  time.Duration
	history       string
}

// WithProvider sets the provider the clusters come from (required).
func WithProvider(p cluster.Provider) Option { return func(c *config) { c.provider = p } }

// WithOut sets the directory under which the run's report directory is made.
// Default: reports.
func WithOut(dir string) Option { return func(c *config) { c.out = dir } }

// WithKeep leaves the clusters up (and the policy applied) after the run.
func WithKeep(keep bool) Option { return func(c *config) { c.keep = keep } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithProgress writes a progress line to w: redrawn in place when terminal is true,
// plain periodic lines otherwise (CI logs). Default: none.
func WithProgress(w io.Writer, terminal bool) Option {
	return func(c *config) { c.progress, c.terminal = w, terminal }
}

// WithAllowContexts names kube contexts on which destructive faults may run although
// drill did not create the cluster.
func WithAllowContexts(ctxs ...string) Option {
	return func(c *config) { c.allowContexts = append(c.allowContexts, ctxs...) }
}

// WithScenarioYAML records the scenario file as it was read, so that the report can
// be rebuilt from events.jsonl alone.
func WithScenarioYAML(b []byte) Option { return func(c *config) { c.scenarioYAML = b } }

// WithHistory judges the run's regression expectations against the run
// history at path and records the run there once its reports are written
// (pkg/history). "" (the default) keeps no history.
func WithHistory(path string) Option { return func(c *config) { c.history = path } }

// WithVersion records drill's version in the report.
func WithVersion(v string) Option { return func(c *config) { c.version = v } }

// WithReadyTimeout bounds the wait for the mesh to answer before load starts.
// Default: 3 minutes.
func WithReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyTimeout = d } }
