package translate

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/meshdrill/drill/pkg/scenario"
)

// TestResourcesCoverEveryObject: pruning looks only in Resources(), so an object kind
// missing there would be applied and never removed.
func TestResourcesCoverEveryObject(t *testing.T) {
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	conformance, _ := filepath.Glob("../../scenarios/conformance/*.yaml")
	files = append(files, conformance...)
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Translate(Input{Scenario: s})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Clusters {
			for _, o := range c.Objects() {
				if gvr := Resource(o); gvr.Resource == "" || !slices.Contains(Resources(), gvr) {
					t.Errorf("%s: %T %s has resource %v, not in Resources()", f, o, o.GetName(), gvr)
				}
			}
		}
	}
}
