package report

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// SchemaID is the $id of report.json's JSON Schema, published next to the
// scenario file's.
const SchemaID = "https://raw.githubusercontent.com/meshdrill/drill/main/docs/schema/report.schema.json"

// JSONSchema returns the JSON Schema (draft 2020-12) of report.json, generated from
// Report's types as encoding/json writes them: a field without omitempty is
// required, every object is closed (a field added to Report is added here by
// the same build), verdicts and statuses are enums, times are RFC 3339.
func JSONSchema() ([]byte, error) {
	root := reportSchema(reflect.TypeFor[Report]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "drill report.json"
	root["description"] = "The judged record of one drill, schema " + Schema + "; docs/reports.md describes each field. Durations are seconds."
	root["properties"].(map[string]any)["schema"] = map[string]any{"const": Schema}
	return json.MarshalIndent(root, "", "  ")
}

// reportSchema is the schema of values of type t as encoding/json writes them.
func reportSchema(t reflect.Type) map[string]any {
	switch t {
	case reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}
	case reflect.TypeFor[Verdict]():
		return map[string]any{"enum": []Verdict{Pass, Fail, Inconclusive, Aborted, Error}}
	case reflect.TypeFor[Status]():
		return map[string]any{"enum": []Status{StatusPass, StatusFail, StatusError, StatusInconclusive}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return reportSchema(t.Elem())
	case reflect.Struct:
		props := map[string]any{}
		required := []string{}
		reportFields(t, props, &required)
		o := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
		if len(required) > 0 {
			o["required"] = required
		}
		return o
	case reflect.Slice:
		return map[string]any{"type": "array", "items": reportSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": reportSchema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}

// reportFields adds t's JSON fields to props (embedded structs' fields are
// flattened, as encoding/json does) and the ones always written to required.
func reportFields(t reflect.Type, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			reportFields(ft, props, required)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s := reportSchema(f.Type)
		omitempty := strings.Contains(opts, "omitempty")
		// encoding/json writes a nil pointer, slice or map without omitempty as null.
		if k := f.Type.Kind(); !omitempty && (k == reflect.Pointer || k == reflect.Slice || k == reflect.Map) {
			s = map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
		}
		if !omitempty {
			*required = append(*required, name)
		}
		props[name] = s
	}
}
