package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFirstDiff(t *testing.T) {
	for _, tc := range []struct{ want, got, say string }{
		{"a\nb\nc", "a\nx\nc", "line 2:\nwant: b\ngot:  x"},
		{"a\nb", "a\nb\nc", "line 3:\nwant: \ngot:  c"},
		{"a\r\n", "a\r\n", "(only line endings differ)"},
	} {
		if got := FirstDiff(tc.want, tc.got); !strings.HasPrefix(got, tc.say) {
			t.Errorf("FirstDiff(%q, %q) = %q, want %q", tc.want, tc.got, got, tc.say)
		}
	}
}

func TestAssert(t *testing.T) {
	if Update() {
		t.Skip("-update rewrites instead of comparing")
	}
	path := filepath.Join(t.TempDir(), "g.txt")
	missing := &recorder{TB: t}
	Assert(missing, path, []byte("x\n"))
	if len(missing.msgs) == 0 || !strings.Contains(missing.msgs[0], "-update") {
		t.Errorf("a missing golden file: %q, want a failure saying how to create it", missing.msgs)
	}
	if err := os.WriteFile(path, []byte("x\ny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	same := &recorder{TB: t}
	Assert(same, path, []byte("x\ny\n"))
	if len(same.msgs) != 0 {
		t.Errorf("equal output: %q, want no failure", same.msgs)
	}
	differs := &recorder{TB: t}
	Assert(differs, path, []byte("x\nz\n"))
	if len(differs.msgs) != 1 || !strings.Contains(differs.msgs[0], "line 2") {
		t.Errorf("different output: %q, want one failure naming line 2", differs.msgs)
	}
}

// recorder keeps the failures Assert reports instead of failing the test.
type recorder struct {
	testing.TB
	msgs []string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
