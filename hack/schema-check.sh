#!/usr/bin/env bash
# Checks drill's JSON Schemas with a validator other than the one drill's Go tests
# use: ajv (draft 2020-12, strict mode), pinned in hack/schema/package.json and
# installed by the first run with npm ci into hack/schema/node_modules.
#
#   - both schemas (drill schema, drill schema --report) compile, and the copies
#     published under docs/schema/ are current;
#   - every scenario in scenarios/ validates;
#   - every wrong scenario in pkg/scenario/testdata/bad/ is rejected by drill
#     validate, and by ajv exactly when its header says "# schema: rejects"
#     (the others break rules JSON Schema cannot express: docs/schema.md);
#   - every report.json under pkg/report/testdata/ validates.
#
# Without node and npm it says so and exits 0: the Go tests check the same with
# github.com/santhosh-tekuri/jsonschema. make lint runs it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "hack/schema-check.sh: SKIPPED: node and npm are not on PATH (apt-get install nodejs npm);" \
		"the schemas are checked by the Go tests only" >&2
	exit 0
fi

deps=hack/schema
if [[ ! -x "$deps/node_modules/.bin/ajv" || "$deps/package-lock.json" -nt "$deps/node_modules/.package-lock.json" ]]; then
	echo "installing ajv into $deps/node_modules (npm ci)" >&2
	(cd "$deps" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
ajv=("$root/$deps/node_modules/.bin/ajv")
opts=(--spec=draft2020 --strict=true -c ajv-formats)
# strictRequired wants every property a "required" names declared next to it;
# the schemas' oneOf alternatives ("exactly one of at, after, when") name
# properties their object declares once, which is valid JSON Schema.
opts+=(--strict-required=false)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/drill" ./cmd/drill
"$tmp/drill" schema >"$tmp/scenario.schema.json"
"$tmp/drill" schema --report >"$tmp/report.schema.json"

fail=0
for s in scenario report; do
	if ! cmp -s "$tmp/$s.schema.json" "docs/schema/$s.schema.json"; then
		echo "docs/schema/$s.schema.json is not what drill schema prints; run: go run ./cmd/drill schema$([[ $s == report ]] && echo " --report") > docs/schema/$s.schema.json" >&2
		fail=1
	fi
	"${ajv[@]}" compile "${opts[@]}" -s "$tmp/$s.schema.json" >/dev/null
done

# validate prints "FILE valid" or "FILE invalid" for each data file.
verdicts() { # schema, data glob
	"${ajv[@]}" validate "${opts[@]}" -s "$1" -d "$2" 2>&1 | grep -E ' (valid|invalid)$' || true
}

n=0
while read -r file verdict; do
	n=$((n + 1))
	if [[ $verdict != valid ]]; then
		echo "ajv rejects $file:" >&2
		"${ajv[@]}" validate "${opts[@]}" --errors=text -s "$tmp/scenario.schema.json" -d "$file" >&2 || true
		fail=1
	fi
done < <(verdicts "$tmp/scenario.schema.json" "scenarios/*.yaml"; verdicts "$tmp/scenario.schema.json" "scenarios/conformance/*.yaml")
((n > 0)) || { echo "no scenario in scenarios/ was validated" >&2; exit 1; }
echo "ajv: $n scenarios in scenarios/ and scenarios/conformance/ valid"

n=0
rejected=0
while read -r file verdict; do
	n=$((n + 1))
	if "$tmp/drill" validate -q "$file" >/dev/null 2>&1; then
		echo "drill validate accepts $file" >&2
		fail=1
	fi
	if grep -q '^# schema: rejects$' "$file"; then
		rejected=$((rejected + 1))
		[[ $verdict == invalid ]] || { echo "ajv accepts $file, which the schema should reject" >&2; fail=1; }
	else
		[[ $verdict == valid ]] || { echo "ajv rejects $file, marked as beyond JSON Schema: mark it '# schema: rejects' and update docs/schema.md" >&2; fail=1; }
	fi
done < <(verdicts "$tmp/scenario.schema.json" "pkg/scenario/testdata/bad/*.yaml")
((n > 0)) || { echo "no wrong scenario in pkg/scenario/testdata/bad/ was checked" >&2; exit 1; }
echo "ajv: $rejected of $n wrong scenarios rejected by the schema, all $n by drill validate"

n=0
while read -r file verdict; do
	n=$((n + 1))
	if [[ $verdict != valid ]]; then
		echo "ajv rejects $file:" >&2
		"${ajv[@]}" validate "${opts[@]}" --errors=text -s "$tmp/report.schema.json" -d "$file" >&2 || true
		fail=1
	fi
done < <(verdicts "$tmp/report.schema.json" "pkg/report/testdata/*/report.json")
((n > 0)) || { echo "no report.json under pkg/report/testdata was validated" >&2; exit 1; }
echo "ajv: $n report.json files valid"

exit "$fail"
