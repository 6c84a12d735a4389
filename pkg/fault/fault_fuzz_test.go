package fault

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// FuzzShellQuote checks that a restore command survives a shell: whatever a
// kube context, namespace or kubeconfig path holds, the quoted word reaches
// kubectl as one argument, unchanged, and runs nothing.
func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"", "kind-c1", "arn:aws:eks:eu-west-1:1:cluster/prod", "a b", "it's", `"$(touch x)"`, "`id`", "a\nb", "'", "''", "\\", "-n", "*"} {
		f.Add(s)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		f.Skip("no sh")
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			t.Skip("an argument cannot hold NUL")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, sh, "-c", `printf '%s' `+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("sh on %q: %v", shellQuote(s), err)
		}
		if string(out) != s {
			t.Fatalf("quoted %q as %q; the shell gave back %q", s, shellQuote(s), out)
		}
	})
}
