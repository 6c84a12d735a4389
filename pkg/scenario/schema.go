package scenario

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Patterns of the scalar forms, for editors. They accept what the parser accepts;
// the parser remains the authority (it also checks references and ranges).
const (
	durationPattern = `^\s*([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+\s*$`
	freqPattern     = `^\s*[0-9]+\s*(/\s*(s|m|h|ms|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)\s*)?$`
	instantPattern  = `^\s*(([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\s*\+\s*([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)?)\s*$`
	percentPattern  = `^\s*[0-9]+(\.[0-9]+)?\s*%\s*$`
	amountPattern   = `^\s*([0-9]+(\.[0-9]+)?|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)\s*$`
	triggerPattern  = `^\s*[a-z-]+(\s+after\s+[a-z0-9]([-a-z0-9]*[a-z0-9])?)?(\s*\+\s*([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)?\s*$`
)

// Schema returns the JSON Schema (draft 2020-12) of the scenario file, generated from
// the same types the parser decodes into, so the two cannot drift apart.
func Schema() ([]byte, error) {
	g := schemaGen{}
	root := g.object(reflect.TypeFor[Scenario]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["title"] = "drill scenario"
	root["description"] = "A drill: clusters, failover policy, load, a timeline of faults, and expectations. See `drill help` and the README."
	root["required"] = []string{"apiVersion", "kind", "metadata", "spec"}
	props := root["properties"].(map[string]any)
	props["apiVersion"] = map[string]any{"const": APIVersion, "description": "Must be " + APIVersion + "."}
	props["kind"] = map[string]any{"const": Kind, "description": "Must be " + Kind + "."}
	return json.MarshalIndent(root, "", "  ")
}

type schemaGen struct{}

func (g schemaGen) of(t reflect.Type) map[string]any {
	switch t {
	case reflect.TypeFor[Duration]():
		return map[string]any{"type": "string", "pattern": durationPattern}
	case reflect.TypeFor[Freq]():
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": freqPattern},
			map[string]any{"type": "integer", "minimum": 1},
		}}
	case reflect.TypeFor[Instant]():
		return map[string]any{"type": "string", "pattern": instantPattern}
	case reflect.TypeFor[Percent]():
		return map[string]any{"type": "string", "pattern": percentPattern}
	case reflect.TypeFor[Amount]():
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": amountPattern},
			map[string]any{"type": "number", "minimum": 0},
		}}
	case reflect.TypeFor[Strategy]():
		return map[string]any{"enum": []string{string(StrategyAggregate), string(StrategyLocality)}}
	case reflect.TypeFor[Rate](), reflect.TypeFor[Wait]():
		scalar := g.of(reflect.TypeFor[Freq]())
		if t == reflect.TypeFor[Wait]() {
			scalar = g.of(reflect.TypeFor[Duration]())
		}
		return map[string]any{"anyOf": []any{scalar, g.object(t)}}
	case reflect.TypeFor[Trigger]():
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": triggerPattern},
			g.object(t),
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.of(t.Elem())
	case reflect.Struct:
		return g.object(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}

func (g schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	g.fields(t, props)
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}

func (g schemaGen) fields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" {
			inner := map[string]any{}
			g.fields(f.Type, inner)
			for k, v := range inner {
				if _, taken := props[k]; !taken {
					props[k] = v
				}
			}
			continue
		}
		s := g.of(f.Type)
		if doc := f.Tag.Get("doc"); doc != "" {
			s["description"] = doc
		}
		props[name] = s
	}
}
