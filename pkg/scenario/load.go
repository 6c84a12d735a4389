package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Load reads: a scenario is a page of YAML, and a huge file
// is a mistake (a log, a binary) that should fail fast, not exhaust memory.
const maxFileSize = 1 << 20

// Load reads, decodes, defaults and validates the scenario file at path. A file that
// is not a valid scenario yields an ErrorList naming every problem by file, line and
// field.
func Load(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read scenario %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes; is it a scenario?", maxFileSize)}}
	}
	return Parse(path, data)
}

// Parse decodes, defaults and validates a scenario held in memory; file names it in
// messages.
func Parse(file string, data []byte) (*Scenario, error) {
	c := &collector{file: file, pos: map[string]pos{}}
	s := &Scenario{File: file, pos: c.pos}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			c.at(1, 0, "", "file is empty; a scenario starts with 'apiVersion: %s'", APIVersion)
		} else {
			c.at(yamlErrorLine(err), 0, "", "invalid YAML: %s", yamlErrorText(err))
		}
		return nil, c.errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		c.at(extra.Line, extra.Column, "", "a scenario file holds one YAML document; found another here")
	} else if !errors.Is(err, io.EOF) {
		c.at(yamlErrorLine(err), 0, "", "invalid YAML: %s", yamlErrorText(err))
	}

	d := &decoder{collector: c}
	d.decode(&doc, reflect.ValueOf(s).Elem(), "")
	decodeErrs := len(c.errs)

	applyDefaults(s)
	validate(s, c, decodeErrs)
	if len(c.errs) > 0 {
		return nil, c.errs.sorted()
	}
	return s, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func yamlErrorLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func yamlErrorText(err error) string {
	msg := err.Error()
	if loc := yamlLineRE.FindStringIndex(msg); loc != nil {
		return msg[loc[1]:]
	}
	return msg
}

// Pos returns the line and column at which a field path (e.g. "spec.steps[0].at")
// was written, or of its nearest written parent.
func (s *Scenario) Pos(field string) (line, col int) {
	c := collector{pos: s.pos}
	p := c.lookup(field)
	return p.line, p.col
}
