package scenario

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarDecoder is implemented by types written as a single YAML scalar, such as a
// duration ("30s"), a rate ("50/s") or a step reference ("reviews-down + 60s").
// Types that are also structs accept both the scalar shorthand and the mapping form.
type scalarDecoder interface {
	decodeScalar(s string) error
}

// decoder turns a yaml.Node tree into the scenario types. Unlike yaml.v3's own
// decoder it keeps going after the first problem, so that an SRE sees every mistake
// in a file at once, and it records where each field was written so that validation
// after decoding can still point at a line.
type decoder struct {
	*collector
	// visits counts nodes decoded. Aliases are expanded as they are decoded, so a
	// small file of nested aliases can stand for an exponential tree ("billion
	// laughs"); a scenario is a few hundred nodes, so stop far above that.
	visits int
}

const maxVisits = 200_000

var scalarDecoderType = reflect.TypeFor[scalarDecoder]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.visits++
	if d.visits == maxVisits {
		d.at(n.Line, n.Column, path, "the document expands to more than %d values (aliases nested too deep?); a scenario is far smaller", maxVisits)
	}
	if d.visits >= maxVisits {
		return
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		d.decode(n.Content[0], v, path)
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = pos{n.Line, n.Column}
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if n.Kind == yaml.ScalarNode && v.CanAddr() && v.Addr().Type().Implements(scalarDecoderType) {
		if isNull(n) {
			return
		}
		if err := v.Addr().Interface().(scalarDecoder).decodeScalar(n.Value); err != nil {
			d.at(n.Line, n.Column, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.at(n.Line, n.Column, path, "must be a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.at(n.Line, n.Column, path, "must be a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.at(k.Line, k.Column, path, "keys must be plain strings")
				continue
			}
			if seen[k.Value] {
				d.at(k.Line, k.Column, path+"."+k.Value, "duplicate key")
				continue
			}
			seen[k.Value] = true
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, path+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			return
		}
		if v.CanAddr() && v.Addr().Type().Implements(scalarDecoderType) {
			d.at(n.Line, n.Column, path, "must be a string or a mapping, got %s", describe(n))
		} else {
			d.at(n.Line, n.Column, path, "must be a mapping, got %s", describe(n))
		}
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.at(k.Line, k.Column, path, "keys must be plain strings")
			continue
		}
		fp := k.Value
		if path != "" {
			fp = path + "." + k.Value
		}
		f, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, fieldNames(fields)); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += fmt.Sprintf(" (known fields: %s)", strings.Join(fieldNames(fields), ", "))
			}
			d.at(k.Line, k.Column, fp, "%s", msg)
			continue
		}
		if seen[k.Value] {
			d.at(k.Line, k.Column, fp, "duplicate field")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.FieldByIndex(f), fp)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.at(n.Line, n.Column, path, "must be a %s, got %s", kindName(v.Kind()), describe(n))
		return
	}
	if isNull(n) {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			d.at(n.Line, n.Column, path, "must be true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.at(n.Line, n.Column, path, "must be a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.at(n.Line, n.Column, path, "must be a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Every type in the scenario is one of the above; reaching here is a bug in
		// drill, reported as an error rather than a panic.
		d.at(n.Line, n.Column, path, "drill cannot decode a field of type %s", v.Type())
	}
}

// structFields maps YAML names to field indexes, descending into ",inline" fields.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" {
			// A field of the outer struct wins over an inlined one of the same name,
			// as in encoding/json.
			for k, idx := range structFields(f.Type) {
				if _, taken := out[k]; !taken || len(out[k]) > 1 {
					out[k] = append([]int{i}, idx...)
				}
			}
			continue
		}
		if name == "" {
			continue
		}
		out[name] = []int{i}
	}
	return out
}

func fieldNames(fields map[string][]int) []string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "whole number"
	case reflect.Float64:
		return "number"
	}
	return k.String()
}

// suggest returns the known name closest to a misspelt one, if any is close enough.
func suggest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(got), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
