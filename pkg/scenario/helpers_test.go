package scenario

import (
	"reflect"
	"testing"

	goldenfile "github.com/meshdrill/drill/internal/golden"
)

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	goldenfile.Assert(t, path, got)
}

func reflectTypeOf(v any) reflect.Type { return reflect.TypeOf(v) }
