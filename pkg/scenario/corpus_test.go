package scenario

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusCase is a wrong scenario of testdata/bad: its first lines say what drill
// validate reports (# drill: TEXT) and whether the JSON Schema rejects it too
// (# schema: rejects) or cannot (# schema: accepts (WHY)).
type corpusCase struct {
	file          string
	data          []byte
	drillSays     string
	schemaRejects bool
}

func badCorpus(t *testing.T) []corpusCase {
	t.Helper()
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad scenarios in testdata/bad: %v", err)
	}
	var cases []corpusCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{file: f, data: data}
		var schemaLine bool
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "#") {
				break
			}
			if v, ok := strings.CutPrefix(line, "# drill: "); ok {
				c.drillSays = v
			}
			if v, ok := strings.CutPrefix(line, "# schema: "); ok {
				schemaLine = true
				c.schemaRejects = v == "rejects"
				if !c.schemaRejects && !strings.HasPrefix(v, "accepts (") {
					t.Fatalf("%s: # schema: must be 'rejects' or 'accepts (why)', got %q", f, v)
				}
			}
		}
		if c.drillSays == "" || !schemaLine {
			t.Fatalf("%s: needs '# drill: MESSAGE' and '# schema: rejects|accepts (why)' lines first", f)
		}
		cases = append(cases, c)
	}
	return cases
}

// TestBadCorpus: drill validate rejects every scenario of testdata/bad with the
// message its header names, and the JSON Schema rejects exactly those marked
// "rejects": a rule the schema learns to express must be marked (and dropped from
// docs/schema.md's list of what only drill validate checks).
func TestBadCorpus(t *testing.T) {
	sch := compileSchema(t)
	rejected := 0
	for _, c := range badCorpus(t) {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			_, err := Parse(c.file, c.data)
			if err == nil {
				t.Fatalf("drill validate accepts it")
			}
			if !strings.Contains(err.Error(), c.drillSays) {
				t.Errorf("drill validate says\n%v\nwithout %q", err, c.drillSays)
			}
			serr := sch.Validate(yamlToJSON(t, c.data))
			switch {
			case c.schemaRejects && serr == nil:
				t.Errorf("the schema accepts it")
			case !c.schemaRejects && serr != nil:
				t.Errorf("marked as beyond JSON Schema, but the schema rejects it: %v", serr)
			}
			if serr != nil {
				rejected++
			}
		})
	}
	if rejected < 40 {
		t.Errorf("the schema rejects only %d wrong scenarios", rejected)
	}
}
