package kind

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestClean: the clusters drill marked (or holds a kubeconfig of) are deleted,
// a user's own kind clusters are not, whatever their names.
func TestClean(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	// A stand-in docker for kind's library: ps lists the clusters' node
	// containers by label, rm records what it removes.
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
case "$1" in
ps)
	case "$*" in
	*"label=io.x-k8s.kind.cluster="*) n=${*##*label=io.x-k8s.kind.cluster=}; n=${n%%%% *}; echo "$n-control-plane" ;;
	*) printf 'drill-cluster1\ndrill-cluster2\ndrill-mine\nother\n' ;;
	esac ;;
rm) exit 0 ;;
*) exit 0 ;;
esac
`, calls)
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")

	state := t.TempDir()
	p := New(WithStateDir(state))
	// cluster1 was being created when drill was killed: a mark, no kubeconfig;
	// cluster2 was kept: a kubeconfig.
	if err := os.WriteFile(p.markFile("drill-cluster1"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "drill-cluster2.kubeconfig"), []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A mark whose cluster was deleted by hand.
	if err := os.WriteFile(p.markFile("drill-gone"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	deleted, err := p.Clean(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(deleted)
	if !slices.Equal(deleted, []string{"drill-cluster1", "drill-cluster2"}) {
		t.Fatalf("deleted %v, want drill-cluster1 and drill-cluster2 only", deleted)
	}
	log, _ := os.ReadFile(calls)
	for _, line := range strings.Split(string(log), "\n") {
		if strings.HasPrefix(line, "rm ") && (strings.Contains(line, "drill-mine") || strings.Contains(line, "other")) {
			t.Errorf("removed a cluster drill did not make: %s", line)
		}
	}
	if !strings.Contains(string(log), "drill-cluster1-control-plane") {
		t.Errorf("drill-cluster1's node was never removed:\n%s", log)
	}
	if exists(p.markFile("drill-cluster1")) || exists(filepath.Join(state, "drill-cluster2.kubeconfig")) || exists(p.markFile("drill-gone")) {
		t.Error("the marks of the deleted clusters are still in the state directory")
	}
}
