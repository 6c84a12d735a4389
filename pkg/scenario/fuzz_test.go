package scenario

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, and that whatever it
// accepts it accepts again identically (parsing is deterministic), and whatever it
// rejects it rejects with located errors.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	conformance, _ := filepath.Glob("../../scenarios/conformance/*.yaml")
	files = append(files, conformance...)
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(seed))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("spec: {steps: [{name: a, after: a}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %#v", err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" {
					t.Fatalf("error without file: %v", e)
				}
			}
			return
		}
		if s == nil {
			t.Fatal("nil scenario without error")
		}
		if _, err := Parse("fuzz.yaml", data); err != nil {
			t.Fatalf("accepted once, rejected the second time: %v", err)
		}
	})
}

func TestAliasBomb(t *testing.T) {
	in := `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
spec: {clusters: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]}
`
	_, err := Parse("bomb.yaml", []byte(in))
	list, ok := err.(ErrorList)
	if !ok {
		t.Fatalf("want ErrorList, got %v", err)
	}
	if len(list) > 1000 {
		t.Errorf("%d errors: aliases were expanded into an error per value", len(list))
	}
}
