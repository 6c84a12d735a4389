package scenario

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a scenario file, located by line, column and the path
// of the field in the document (e.g. "spec.steps[1].after").
type FieldError struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList holds every problem found in one scenario file, in file order. It is
// returned as the error of Load and Parse whenever the file is not a valid scenario.
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find the individual FieldErrors.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
	return l
}

// pos is where a field was written in the file.
type pos struct{ line, col int }

// collector gathers errors against the positions recorded while decoding.
type collector struct {
	file string
	pos  map[string]pos
	errs ErrorList
	// bad holds the fields that failed to decode; validation stays quiet about them
	// and their children so that one mistake is reported once.
	bad map[string]bool
}

func (c *collector) at(line, col int, field, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{File: c.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// errf reports a problem with a field found after decoding, locating it by the
// position of the field, or of its nearest written parent when it was left out.
func (c *collector) errf(field, format string, args ...any) {
	for f := field; f != ""; f = parentPath(f) {
		if c.bad[f] {
			return
		}
	}
	p := c.lookup(field)
	c.at(p.line, p.col, field, format, args...)
}

func (c *collector) lookup(field string) pos {
	for f := field; ; f = parentPath(f) {
		if p, ok := c.pos[f]; ok {
			return p
		}
		if f == "" {
			return pos{line: 1}
		}
	}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}
