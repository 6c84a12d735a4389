//go:build !race

package drill_test

// raceDetector: see race_test.go.
const raceDetector = false
