#!/usr/bin/env bash
# build-tools.sh builds the control-plane binaries drill's local provider runs
# (kube-apiserver, kube-controller-manager, pilot-discovery) from their Go
# modules into bin/, copies Istio's CRDs next to them, and makes sure etcd is
# installed.
#
# It is idempotent: a binary is rebuilt only when it is missing or when the
# pinned versions it was built from (tools/*/go.mod, go.sum and the Go
# toolchain) changed. It prints nothing when there is nothing to do.
#
# Environment:
#   DRILL_BIN_DIR   where to put the binaries (default: <repo>/bin)
#   DRILL_NO_APT=1  never install etcd with apt-get, only report it missing
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${DRILL_BIN_DIR:-$root/bin}"
mkdir -p "$bin"
bin="$(cd "$bin" && pwd)"

die() {
	echo "build-tools: $*" >&2
	exit 1
}

# Static binaries, built exactly as hack/kind-images.sh builds the same commands
# for the kind node image, so that the two share the Go build cache.
export CGO_ENABLED=0

command -v go >/dev/null || die "the Go toolchain is not on PATH; install Go (see go.mod for the version) and run again"

# One build at a time: cold builds take minutes and use every core, and two
# concurrent runs would race on the same outputs.
if command -v flock >/dev/null; then
	exec 9>"$bin/.build-tools.lock"
	flock 9
fi

# stamp_of MODULE RECIPE prints the key a binary's stamp must match: the
# toolchain, the exact module graph it was built from and the recipe (package,
# flags). Editing this script's comments does not force a rebuild.
stamp_of() {
	local mod="$1" recipe="$2"
	{
		go env GOVERSION GOOS GOARCH CGO_ENABLED
		sha256sum "$root/tools/$mod/go.mod" "$root/tools/$mod/go.sum" | cut -d' ' -f1
		echo "$recipe"
	} | sha256sum | cut -d' ' -f1
}

up_to_date() {
	local out="$1" key="$2"
	[[ -x "$bin/$out" || -f "$bin/$out" ]] && [[ -f "$bin/.stamp-$out" ]] && [[ "$(cat "$bin/.stamp-$out")" == "$key" ]]
}

human_size() {
	local bytes
	bytes="$(stat -c %s "$1")"
	echo "$((bytes / 1024 / 1024)) MiB"
}

# build MODULE OUTPUT PACKAGE [LDFLAGS]
build() {
	local mod="$1" out="$2" pkg="$3" ldflags="${4:-}"
	local goflags="-trimpath"
	ldflags="-s -w $ldflags"
	local key
	key="$(stamp_of "$mod" "$pkg $goflags $ldflags")"
	if up_to_date "$out" "$key"; then
		return 0
	fi
	local start=$SECONDS
	echo "build-tools: building $out ($pkg, tools/$mod) ..."
	rm -f "$bin/.stamp-$out"
	if ! (cd "$root/tools/$mod" && go build $goflags -ldflags "$ldflags" -o "$bin/$out.tmp" "$pkg"); then
		rm -f "$bin/$out.tmp"
		die "building $out from tools/$mod failed (see the compiler output above); fix it or check that the Go module proxy is reachable"
	fi
	mv -f "$bin/$out.tmp" "$bin/$out"
	echo "$key" >"$bin/.stamp-$out"
	echo "build-tools: built $bin/$out in $((SECONDS - start))s ($(human_size "$bin/$out"))"
}

modversion() {
	(cd "$root/tools/$1" && go list -m -f '{{.Version}}' "$2")
}

# --- etcd -------------------------------------------------------------------
# etcd comes from Debian's etcd-server package (3.4.x), which kube-apiserver
# supports. A bin/etcd, if present, wins over the one on PATH.
if [[ ! -x "$bin/etcd" ]] && ! command -v etcd >/dev/null; then
	if [[ "${DRILL_NO_APT:-}" != 1 ]] && command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
		start=$SECONDS
		echo "build-tools: installing etcd (Debian package etcd-server) ..."
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }; then
			die "apt-get install etcd-server failed; install etcd 3.4 or later by hand and put it on PATH (or at $bin/etcd)"
		fi
		echo "build-tools: installed $(command -v etcd) ($(etcd --version 2>/dev/null | head -1)) in $((SECONDS - start))s"
	else
		die "etcd is not installed; install Debian's etcd-server package (apt-get install etcd-server) or any etcd 3.4+ on PATH or at $bin/etcd"
	fi
fi

# --- Kubernetes -------------------------------------------------------------
kube_version="$(modversion kube k8s.io/kubernetes)" || die "cannot read the k8s.io/kubernetes version from tools/kube/go.mod"
kube_minor="$(echo "$kube_version" | cut -d. -f2)"
# Without these the binaries report v0.0.0-master, which clients that check the
# server version (istiod among them) do not accept as a release.
kube_ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$kube_minor -X $p.gitTreeState=clean"
done
build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"

# --- vegeta -----------------------------------------------------------------
# The vegeta command, for the tests that read a drill's results file with it.
build vegeta vegeta github.com/tsenart/vegeta/v12

# --- Pushgateway -------------------------------------------------------------
# The Prometheus Pushgateway, for the test that pushes a run's metrics.prom to
# it (drill run --pushgateway) and reads them back.
build pushgateway pushgateway github.com/prometheus/pushgateway

# --- Istio ------------------------------------------------------------------
istio_version="$(modversion istio istio.io/istio)" || die "cannot read the istio.io/istio version from tools/istio/go.mod"
istio_rev="${istio_version##*-}"
build istio pilot-discovery istio.io/istio/pilot/cmd/pilot-discovery \
	"-X istio.io/istio/pkg/version.buildVersion=$istio_version -X istio.io/istio/pkg/version.buildGitRevision=$istio_rev -X istio.io/istio/pkg/version.buildStatus=Clean"

# Istio's CRDs with their OpenAPI schemas, from the istio.io/api version that
# istio.io/istio itself requires, so the API server validates objects exactly
# as the istiod we run expects them. Copied so drill needs no module cache at
# run time.
crds_key="$(stamp_of istio "istio.io/api kubernetes/customresourcedefinitions.gen.yaml")"
if ! up_to_date istio-crds.yaml "$crds_key"; then
	api_dir="$(cd "$root/tools/istio" && go mod download -json istio.io/api | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[[ -n "$api_dir" && -f "$api_dir/kubernetes/customresourcedefinitions.gen.yaml" ]] ||
		die "cannot find kubernetes/customresourcedefinitions.gen.yaml in the istio.io/api module; check that the Go module proxy is reachable"
	cp -f "$api_dir/kubernetes/customresourcedefinitions.gen.yaml" "$bin/istio-crds.yaml"
	chmod 0644 "$bin/istio-crds.yaml"
	echo "$crds_key" >"$bin/.stamp-istio-crds.yaml"
	echo "build-tools: copied Istio CRDs ($(modversion istio istio.io/api)) to $bin/istio-crds.yaml"
fi
