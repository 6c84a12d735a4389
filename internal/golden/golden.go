// Package golden compares test output with golden files under testdata/ and
// rewrites them when the tests run with -update. Every package's golden tests use
// it, so one flag and one message shape hold across the repository:
//
//	go test ./pkg/translate -run TestGolden -update
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files the tests compare with")

// Update reports whether the tests run with -update, for tests whose golden
// files are more than one file per comparison.
func Update() bool { return *update }

// Assert compares got with the golden file at path, or writes it there with
// -update. A difference fails the test with the first line that differs.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run go test -run '%s' -update to create it", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run '%s' -update rewrites it after you check the change):\n%s", path, t.Name(), FirstDiff(string(want), string(got)))
	}
}

// FirstDiff describes the first line at which want and got differ.
func FirstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant: %.300s\ngot:  %.300s", i+1, w, g)
		}
	}
	return "(only line endings differ)"
}
