//go:build race

package drill_test

// raceDetector: this test binary runs under the race detector, which makes Go
// code 2–20 times slower (go.dev/doc/articles/race_detector, "Runtime
// Overhead"): a whole drill's latency then measures the instrumentation, not
// drill. make test runs the drills with a latency bound once more without it.
const raceDetector = true
