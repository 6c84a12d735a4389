package scenario

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// SchemaID is the $id of the scenario file's JSON Schema: where the schema of
// this API version is published, for editors' modelines
// (# yaml-language-server: $schema=<SchemaID>) and for validators that fetch it.
const SchemaID = "https://raw.githubusercontent.com/meshdrill/drill/main/docs/schema/scenario.schema.json"

// Patterns of the scalar forms, for editors and validators. They accept what the
// parser accepts; the parser remains the authority (it also checks references).
const (
	durationPattern = `^\s*([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+\s*$`
	freqPattern     = `^\s*0*[1-9][0-9]*\s*(/\s*(s|m|h|ms|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)\s*)?$`
	instantPattern  = `^\s*(([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\s*\+\s*([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)?)\s*$`
	percentPattern  = `^\s*[0-9]+(\.[0-9]+)?\s*%\s*$`
	amountPattern   = `^\s*([0-9]+(\.[0-9]+)?|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)\s*$`
	triggerPattern  = `^\s*(failover-detected|failback-detected|outlier-ejection|host-ejected|priority-changed)(\s+after\s+[a-z0-9]([-a-z0-9]*[a-z0-9])?)?(\s*\+\s*([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)?\s*$`
	// namePattern is a DNS label (RFC 1123), as nameRE and Kubernetes check it.
	namePattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// hostnamePattern is a DNS subdomain (RFC 1123), as Kubernetes checks it.
	hostnamePattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// nonZeroPattern finds a digit other than 0: with durationPattern, a
	// duration above zero.
	nonZeroPattern = `[1-9]`
)

// Schema returns the JSON Schema (draft 2020-12) of the scenario file, generated from
// the same types the parser decodes into, so the two cannot drift apart: each
// field's `doc` tag is its description, its `schema` tag its constraints
// (required, ranges, enums, name patterns), and schemaRules the rules that tie
// fields of one object together (exactly one action per step, one check per
// expectation). What JSON Schema cannot say — references between clusters, steps
// and failover services, unique names, min not above max — only drill validate
// checks (docs/schema.md lists them).
func Schema() ([]byte, error) {
	g := schemaGen{}
	root := g.object(reflect.TypeFor[Scenario]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "drill scenario"
	root["description"] = "A drill: clusters, failover policy, load, a timeline of faults, and expectations. See `drill help`, the README and docs/schema.md."
	props := root["properties"].(map[string]any)
	props["apiVersion"] = map[string]any{"const": APIVersion, "description": "Must be " + APIVersion + "."}
	props["kind"] = map[string]any{"const": Kind, "description": "Must be " + Kind + "."}
	return json.MarshalIndent(root, "", "  ")
}

// exactlyOne is a oneOf of objects each requiring one of fields: exactly one
// of them is written.
func exactlyOne(fields ...string) map[string]any {
	alts := make([]any, len(fields))
	for i, f := range fields {
		alts[i] = map[string]any{"required": []string{f}}
	}
	return map[string]any{"oneOf": alts}
}

// atLeastOne is an anyOf of objects each requiring one of fields.
func atLeastOne(fields ...string) map[string]any {
	alts := make([]any, len(fields))
	for i, f := range fields {
		alts[i] = map[string]any{"required": []string{f}}
	}
	return map[string]any{"anyOf": alts}
}

// notBoth forbids writing every one of fields together.
func notBoth(fields ...string) map[string]any {
	return map[string]any{"not": map[string]any{"required": fields}}
}

// schemaRules are the constraints across the fields of one object, by type; each
// becomes one entry of the object's allOf. They mirror validate.go.
var schemaRules = map[reflect.Type][]map[string]any{
	reflect.TypeFor[Spec](): {
		// Degraded answers are counted only when the load says what one is.
		{
			"if":   map[string]any{"required": []string{"expect"}, "properties": map[string]any{"expect": map[string]any{"type": "array", "contains": map[string]any{"type": "object", "properties": map[string]any{"degraded": true}, "required": []string{"degraded"}}}}},
			"then": map[string]any{"properties": map[string]any{"load": map[string]any{"type": "object", "properties": map[string]any{"degradedWhen": true}, "required": []string{"degradedWhen"}}}},
		},
	},
	reflect.TypeFor[Mesh](): {
		// With strategy locality a service fails over within its own host.
		{
			"if":   map[string]any{"required": []string{"strategy"}, "properties": map[string]any{"strategy": map[string]any{"const": string(StrategyLocality)}}},
			"then": map[string]any{"properties": map[string]any{"trafficPolicies": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{"trafficShift": false}}}}},
		},
	},
	reflect.TypeFor[TrafficPolicy](): {
		atLeastOne("outlierDetection", "trafficShift", "retries", "timeout", "localityFailover"),
		notBoth("trafficShift", "localityFailover"),
		// Istio fails over between localities only where outlier detection ejects.
		{"dependentRequired": map[string]any{"localityFailover": []string{"outlierDetection"}}},
	},
	reflect.TypeFor[LocalityFailover](): {notBoth("failoverPriority", "failover")},
	reflect.TypeFor[Rate]():             {exactlyOne("constant", "ramp", "steps")},
	reflect.TypeFor[Ramp]():             {atLeastOne("from", "to")},
	reflect.TypeFor[Degraded]():         {atLeastOne("bodyContains", "bodyMatches")},
	reflect.TypeFor[Step](): {
		exactlyOne("at", "after", "when"),
		exactlyOne("fault", "revert", "wait", "apply"),
		{
			"if":   map[string]any{"required": []string{"keep"}, "properties": map[string]any{"keep": map[string]any{"const": true}}},
			"then": map[string]any{"required": []string{"fault"}},
		},
	},
	reflect.TypeFor[Wait](): {exactlyOne("for", "ready")},
	// A target by exactly one of app label, Deployment name and label selector
	// (inlined in scale, deletePods and httpFault, whose objects get it too).
	reflect.TypeFor[WorkloadRef]():     {exactlyOne("workload", "deployment", "selector")},
	reflect.TypeFor[Fault]():           {exactlyOne("scale", "deletePods", "httpFault", "gatewayLoss", "controlPlaneLoss", "partition", "zoneLoss")},
	reflect.TypeFor[DeletePodsFault](): {notBoth("count", "percent")},
	// An httpFault selects pods by labels, never a Deployment by name.
	reflect.TypeFor[HTTPFault]():         {notBoth("deployment"), atLeastOne("abort", "delay")},
	reflect.TypeFor[SteadyState]():       {atLeastOne("errorRatio", "degradedRatio", "failedRatio", "latency")},
	reflect.TypeFor[Guard]():             {exactlyOne("errorRatio", "degradedRatio", "failedRatio", "latency", "upstream5xx")},
	reflect.TypeFor[GuardLatency]():      {exactlyOne("p50", "p90", "p99")},
	reflect.TypeFor[Expectation]():       {exactlyOne("upstream5xx", "errors", "degraded", "latency", "failover", "failback", "recovery", "availability", "ejection", "regression", "share")},
	reflect.TypeFor[RegressionExpect]():  {atLeastOne("maxIncrease", "maxIncreaseBy")},
	reflect.TypeFor[Upstream5xxExpect](): {atLeastOne("max", "min")},
	reflect.TypeFor[CountExpect]():       {atLeastOne("max", "min")},
	reflect.TypeFor[Bounds]():            {atLeastOne("max", "min")},
	reflect.TypeFor[ShareExpect]():       {atLeastOne("max", "min")},
	reflect.TypeFor[LatencyExpect]():     {atLeastOne("p50", "p90", "p99", "max")},
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
	var required []string
	var rules []map[string]any
	g.fields(t, props, &required, &rules)
	o := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	rules = append(rules, schemaRules[t]...)
	if len(rules) > 0 {
		all := make([]any, len(rules))
		for i, r := range rules {
			all[i] = r
		}
		o["allOf"] = all
	}
	return o
}

// fields adds t's fields to props, the names of its required fields to
// required, and the rules of inlined structs to rules.
func (g schemaGen) fields(t reflect.Type, props map[string]any, required *[]string, rules *[]map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" {
			inner := map[string]any{}
			g.fields(f.Type, inner, required, rules)
			for k, v := range inner {
				if _, taken := props[k]; !taken {
					props[k] = v
				}
			}
			*rules = append(*rules, schemaRules[f.Type]...)
			continue
		}
		s := g.of(f.Type)
		if doc := f.Tag.Get("doc"); doc != "" {
			s["description"] = doc
		}
		if g.constrain(s, f, f.Tag.Get("schema")) {
			*required = append(*required, name)
		}
		props[name] = s
	}
}

// constrain adds the keywords of a field's schema tag to its schema s and
// reports whether the field is required. On a list the keywords constrain its
// items, except minItems and unique, which constrain the list. Keywords:
//
//	required        the field must be written
//	name            a DNS label: lowercase letters, digits and '-', at most 63
//	label           the same, for namespaces
//	hostname        a DNS subdomain, at most 253 characters, not *.svc.cluster.local
//	locality        region, region/zone or region/zone/subzone
//	positive        a duration above zero
//	min=N, max=N    inclusive bounds; xmax=N an exclusive upper bound
//	minLength=N     at least N characters
//	minItems=N      a list of at least N items
//	unique          a list without repeated items
//	enum=a|b        one of the values
//	not=a|b         none of the values
//	pattern=path    a request path (starts with /); pattern=method an HTTP method
func (g schemaGen) constrain(s map[string]any, f reflect.StructField, tag string) bool {
	if tag == "" {
		return false
	}
	target := s
	if f.Type.Kind() == reflect.Slice {
		target = s["items"].(map[string]any)
	}
	required := false
	for _, kw := range strings.Split(tag, ",") {
		key, val, _ := strings.Cut(kw, "=")
		switch key {
		case "required":
			required = true
		case "name", "label":
			target["pattern"] = namePattern
			target["maxLength"] = 63
		case "hostname":
			target["pattern"] = hostnamePattern
			target["maxLength"] = 253
			target["not"] = map[string]any{"pattern": `\.svc\.cluster\.local$`}
		case "locality":
			target["pattern"] = `^[^/\s]+(/[^/\s]+){0,2}$`
		case "positive":
			target["allOf"] = []any{map[string]any{"pattern": nonZeroPattern}}
		case "min", "max", "xmax", "minLength", "minItems":
			n, err := strconv.ParseFloat(val, 64)
			if err != nil {
				panic(fmt.Sprintf("scenario: %s.%s: schema tag %q: %v", f.Type, f.Name, kw, err))
			}
			switch key {
			case "min":
				target["minimum"] = n
			case "max":
				target["maximum"] = n
			case "xmax":
				target["exclusiveMaximum"] = n
			case "minLength":
				target["minLength"] = n
			case "minItems":
				s["minItems"] = n
			}
		case "unique":
			s["uniqueItems"] = true
		case "enum":
			target["enum"] = strings.Split(val, "|")
		case "not":
			target["not"] = map[string]any{"enum": strings.Split(val, "|")}
		case "pattern":
			switch val {
			case "path":
				target["pattern"] = `^/`
			case "method":
				target["pattern"] = `^[A-Z]+$`
			default:
				panic(fmt.Sprintf("scenario: %s.%s: unknown pattern %q", f.Type, f.Name, val))
			}
		default:
			panic(fmt.Sprintf("scenario: %s.%s: unknown schema keyword %q", f.Type, f.Name, key))
		}
	}
	return required
}
