package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzFitHost: any spec or process file, and any command line, is either
// rewritten or refused with an error; never a panic.
func FuzzFitHost(f *testing.F) {
	f.Add(`{"process":{"oomScoreAdj":-998,"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_CHOWN"]}}}`, "--root /r create --bundle /b id")
	f.Add(`{"capabilities":{"effective":[1,"CAP_SYS_ADMIN",null]}}`, "exec -p /x.json id")
	f.Add(`[]`, "--log")
	f.Fuzz(func(t *testing.T, spec, args string) {
		_ = specToEdit(strings.Fields(args))
		file := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = fitHost(file, map[string]bool{"CAP_CHOWN": true}, -500)
	})
}
