package localcluster

import (
	"os"
	"strings"
	"testing"
)

func TestParseCRDs(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		wantNames []string
		wantErr   string
	}{
		{name: "two CRDs and empty documents", file: "testdata/crds.yaml",
			wantNames: []string{"destinationrules.networking.istio.io", "virtualservices.networking.istio.io"}},
		{name: "not a CRD", file: "testdata/not-crd.yaml", wantErr: `document 2: kind "ConfigMap"`},
		{name: "no name", file: "testdata/unnamed-crd.yaml", wantErr: "without a name"},
		{name: "empty", file: "testdata/empty.yaml", wantErr: "no CustomResourceDefinition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			crds, err := parseCRDs(b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range crds {
				names = append(names, c.GetName())
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("got %v, want %v", names, tt.wantNames)
			}
		})
	}
}

// TestParseIstioCRDs parses the manifest the build copies, when it is there:
// every Istio networking kind drill applies must be in it.
func TestParseIstioCRDs(t *testing.T) {
	path := defaultBinDir() + "/istio-crds.yaml"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not built (run make tools)", path)
	}
	crds, err := readCRDs(path)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, c := range crds {
		have[c.GetName()] = true
	}
	for _, want := range []string{
		"destinationrules.networking.istio.io", "virtualservices.networking.istio.io",
		"serviceentries.networking.istio.io", "sidecars.networking.istio.io",
		"peerauthentications.security.istio.io",
	} {
		if !have[want] {
			t.Errorf("%s lacks %s", path, want)
		}
	}
}

func FuzzParseCRDs(f *testing.F) {
	for _, p := range []string{"testdata/crds.yaml", "testdata/not-crd.yaml", "testdata/unnamed-crd.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("---\n---\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		crds, err := parseCRDs(b)
		if err != nil {
			return
		}
		for _, c := range crds {
			if c.GetKind() != "CustomResourceDefinition" || c.GetName() == "" {
				t.Fatalf("accepted %s %q", c.GetKind(), c.GetName())
			}
		}
	})
}
