#!/usr/bin/env bash
# bench-load.sh checks that drill's load keeps up with the standalone `vegeta attack`
# command at the same target and rate. It builds vegeta v12.13.0 (the version drill
# links) into bin/, starts a loopback server, and at each rate runs `vegeta attack` and
# drill's pkg/load (through hack/benchload) for DURATION each, one after the other or
# both at once. Both write vegeta's gob results; both files are read with vegeta's own
# metrics, so the two columns are measured the same way. It prints, per rate and round,
# the achieved rates, the median and p99 latencies, the ratios drill/vegeta, and the
# CPU time per request each load generator used when /usr/bin/time is there.
#
# Run from anywhere in the repository (make bench-load calls it).
#
# Environment:
#   RATES      requests per second to try (default "500 2000 5000")
#   DURATION   length of each attack (default 5s)
#   ROUNDS     how many times to run each pair (default 2)
#   MODE       "alternate": one after the other, rounds alternating which goes first
#              (default); "together": both at once, so that on a busy machine both
#              meet the same contention (the server then answers twice the rate)
#   DEGRADED   text drill's degraded matcher looks for in every body, as scenarios
#              set it; empty to run drill without a matcher (default: Bookinfo's)
#   BODY       bytes in each answer of the server (default 2048)
set -euo pipefail

die() {
	echo "bench-load: $*" >&2
	exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="$root/bin"
mkdir -p "$bin"

rates="${RATES:-500 2000 5000}"
duration="${DURATION:-5s}"
rounds="${ROUNDS:-2}"
degraded="${DEGRADED-product reviews are currently unavailable}"
body="${BODY:-2048}"
mode="${MODE:-alternate}"
[[ "$mode" == alternate || "$mode" == together ]] || die "MODE must be alternate or together, not $mode"
vegeta_version=v12.13.0

command -v go >/dev/null || die "the Go toolchain is not on PATH"

# vegeta's CLI at the version drill links, rebuilt only when missing or another version.
if ! go version -m "$bin/vegeta" 2>/dev/null | grep -q "mod[[:space:]]*github.com/tsenart/vegeta/v12[[:space:]]*$vegeta_version"; then
	echo "bench-load: building vegeta $vegeta_version into bin/" >&2
	GOBIN="$bin" go install "github.com/tsenart/vegeta/v12@$vegeta_version"
fi
go build -o "$bin/benchload" ./hack/benchload

work="$(mktemp -d)"
server_pid=""
cleanup() {
	if [[ -n "$server_pid" ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

"$bin/benchload" server -addr-file "$work/addr" -body "$body" &
server_pid=$!
for _ in $(seq 100); do
	[[ -s "$work/addr" ]] && break
	kill -0 "$server_pid" 2>/dev/null || die "the loopback server exited"
	sleep 0.1
done
[[ -s "$work/addr" ]] || die "the loopback server did not start within 10s"
url="http://$(cat "$work/addr")/productpage"

# timed FILE CMD… runs CMD, writing its user and system CPU seconds to FILE.
timed() {
	local out="$1"
	shift
	if [[ -x /usr/bin/time ]]; then
		/usr/bin/time -f '%U %S' -o "$out" "$@"
	else
		"$@"
	fi
}

run_vegeta() {
	echo "GET $url" | timed "$work/vegeta-$1.cpu" "$bin/vegeta" attack -rate="$1/s" -duration="$duration" -output="$work/vegeta-$1.bin"
}

run_drill() {
	timed "$work/drill-$1.cpu" "$bin/benchload" drill -url "$url" -rate "$1" -duration "$duration" \
		-degraded "$degraded" -output "$work/drill-$1.bin"
}

echo "bench-load: $url, $duration per attack, $mode, $body-byte answers, drill matcher: ${degraded:-none}; load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?') on $(nproc 2>/dev/null || echo '?') cores"
"$bin/benchload" header
for round in $(seq "$rounds"); do
	for rate in $rates; do
		if [[ "$mode" == together ]]; then
			run_vegeta "$rate" &
			vegeta_pid=$!
			run_drill "$rate" || die "drill's load failed"
			wait "$vegeta_pid" || die "vegeta attack failed"
		elif ((round % 2)); then
			run_vegeta "$rate"
			run_drill "$rate"
		else
			run_drill "$rate"
			run_vegeta "$rate"
		fi
		"$bin/benchload" compare -rate "$rate" -vegeta-cpu "$work/vegeta-$rate.cpu" -drill-cpu "$work/drill-$rate.cpu" \
			"$work/vegeta-$rate.bin" "$work/drill-$rate.bin"
	done
done
