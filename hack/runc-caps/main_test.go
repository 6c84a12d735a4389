package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestBoundingSet(t *testing.T) {
	// This host's bounding set less CAP_SYS_RESOURCE (bit 24).
	set, err := boundingSet("Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n")
	if err != nil {
		t.Fatal(err)
	}
	if set["CAP_SYS_RESOURCE"] || !set["CAP_SYS_ADMIN"] || !set["CAP_NET_ADMIN"] || !set["CAP_CHECKPOINT_RESTORE"] {
		t.Fatalf("bounding set %v", set)
	}
	if _, err := boundingSet("Name:\tx\n"); err == nil {
		t.Fatal("a status without CapBnd gave no error")
	}
}

func TestSpecToEdit(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--root", "/run/moby", "--log", "/l", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, "/b/config.json"},
		{[]string{"--root=/run/x", "run", "-b", "/c", "id"}, "/c/config.json"},
		{[]string{"create", "id"}, "config.json"},
		{[]string{"--root", "/r", "exec", "--process", "/tmp/proc.json", "--detach", "id"}, "/tmp/proc.json"},
		{[]string{"exec", "-p=/x.json", "id"}, "/x.json"},
		{[]string{"--root", "/r", "start", "id"}, ""},
		{[]string{"--version"}, ""},
	} {
		if got := specToEdit(tc.args); got != tc.want {
			t.Errorf("specToEdit(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestDropCaps: a privileged container's spec keeps every capability but the
// ones the host cannot grant, and the rest of the spec is untouched.
func TestFitHostCaps(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "config.json")
	all := []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"}
	doc := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"args": []string{"/sbin/init"},
			"capabilities": map[string]any{
				"bounding": all, "effective": all, "permitted": all, "inheritable": all,
			},
		},
		"root": map[string]any{"path": "rootfs"},
	}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(spec, b, 0o644); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"CAP_CHOWN": true, "CAP_SYS_ADMIN": true, "CAP_NET_ADMIN": true}
	if err := fitHost(spec, allowed, 0); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OCIVersion string `json:"ociVersion"`
		Process    struct {
			Args         []string            `json:"args"`
			Capabilities map[string][]string `json:"capabilities"`
		} `json:"process"`
	}
	b, _ = os.ReadFile(spec)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for set, caps := range got.Process.Capabilities {
		if slices.Contains(caps, "CAP_SYS_RESOURCE") || len(caps) != 3 {
			t.Errorf("%s: %v", set, caps)
		}
	}
	if got.OCIVersion != "1.0.2" || len(got.Process.Args) != 1 {
		t.Errorf("the rest of the spec changed: %s", b)
	}

	// An exec's process file has the capabilities at its top level.
	proc := filepath.Join(dir, "process.json")
	b, _ = json.Marshal(map[string]any{"args": []string{"sh"}, "capabilities": map[string]any{"bounding": all}})
	if err := os.WriteFile(proc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fitHost(proc, allowed, 0); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(proc)
	var p struct {
		Capabilities map[string][]string `json:"capabilities"`
	}
	if err := json.Unmarshal(b, &p); err != nil || slices.Contains(p.Capabilities["bounding"], "CAP_SYS_RESOURCE") {
		t.Errorf("process file: %s (%v)", b, err)
	}
}

// TestRegister: the runtime becomes the default, other settings stay.
func TestRegister(t *testing.T) {
	f := filepath.Join(t.TempDir(), "docker", "daemon.json")
	if err := register(f, "drill-runc", "/usr/local/libexec/drill-runc"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte(`{"log-level":"warn","runtimes":{"other":{"path":"/x"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := register(f, "drill-runc", "/usr/local/libexec/drill-runc"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		LogLevel       string                       `json:"log-level"`
		DefaultRuntime string                       `json:"default-runtime"`
		Runtimes       map[string]map[string]string `json:"runtimes"`
	}
	b, _ := os.ReadFile(f)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.LogLevel != "warn" || doc.DefaultRuntime != "drill-runc" || doc.Runtimes["other"]["path"] != "/x" ||
		doc.Runtimes["drill-runc"]["path"] != "/usr/local/libexec/drill-runc" {
		t.Fatalf("daemon.json: %s", b)
	}
}

// TestFitHostOOMScoreAdj: without CAP_SYS_RESOURCE a spec may not ask for an
// oom_score_adj below the runtime's own; with it, nothing changes.
func TestFitHostOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed map[string]bool
		adj     int
		want    float64
	}{
		{"lowered, no CAP_SYS_RESOURCE", map[string]bool{}, -998, -500},
		{"raised, no CAP_SYS_RESOURCE", map[string]bool{}, 100, 100},
		{"lowered, CAP_SYS_RESOURCE", map[string]bool{"CAP_SYS_RESOURCE": true}, -998, -998},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := filepath.Join(t.TempDir(), "config.json")
			b, _ := json.Marshal(map[string]any{"process": map[string]any{"oomScoreAdj": tc.adj}})
			if err := os.WriteFile(spec, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := fitHost(spec, tc.allowed, -500); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Process struct {
					OOMScoreAdj float64 `json:"oomScoreAdj"`
				} `json:"process"`
			}
			b, _ = os.ReadFile(spec)
			if err := json.Unmarshal(b, &got); err != nil || got.Process.OOMScoreAdj != tc.want {
				t.Fatalf("oomScoreAdj %v (%v), want %v", got.Process.OOMScoreAdj, err, tc.want)
			}
		})
	}
}
