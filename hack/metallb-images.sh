#!/usr/bin/env bash
# metallb-images.sh builds, with no container registry, MetalLB's two images
# for drill's offline kind clusters (DRILL_KIND_IMAGES=offline), and takes
# MetalLB's manifest from the same source:
#
#   quay.io/metallb/controller:<v>, quay.io/metallb/speaker:<v>   exactly the
#       names config/manifests/metallb-native.yaml of that release gives them,
#       built from the go.universe.tf/metallb module tools/metallb pins at
#       pkg/cluster/kind MetalLBVersion. As MetalLB's own Dockerfiles
#       (controller/Dockerfile, speaker/Dockerfile) lay them out, minus the
#       distroless base: one static binary at /controller or /speaker as the
#       entrypoint, LICENSE, running as root (the manifest runs the controller
#       as 65534 itself). The speaker's FRR helpers (cp-tool, frr-metrics,
#       frr-reloader.sh) are left out: only the FRR manifests use them, the
#       native (layer 2) one drill applies does not.
#   <cache>/metallb-native-<v>.yaml   that manifest, copied from the module
#       once its sha256 matches metallbManifestSHA256 (pkg/cluster/kind), which
#       is what the kind provider reads when offline.
#
# Cached like hack/kind-images.sh, and in the same place: the binaries under
# ~/.cache/drill/kind-images/bin, the images in the Docker engine labelled
# drill.key with the key of what they were built from; an image is rebuilt
# only when that key changes. With nothing to do it takes about a second.
# Quiet unless stderr is a terminal or something fails.
#
#   --list   print the two image names on stdout (hack/kind-images.sh
#            preloads them in the node image).
#
# Needs a Docker engine (make docker) and Go.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${DRILL_KIND_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drill/kind-images}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
start=$SECONDS

list=0
case "${1:-}" in
"") ;;
--list) list=1 ;;
*)
	echo "usage: $0 [--list]" >&2
	exit 2
	;;
esac

die() {
	echo "metallb-images: $*" >&2
	exit 1
}
step() {
	[[ -t 2 ]] || return 0
	echo "metallb-images: [$(((SECONDS - start) / 60)):$(printf %02d $(((SECONDS - start) % 60)))] $*" >&2
}

command -v go >/dev/null || die "the Go toolchain is not on PATH"
docker info >/dev/null 2>&1 || die "no Docker engine answers; start one (make docker) and run again"

# A lock of its own: hack/kind-images.sh, which runs this script, holds
# $cache/.lock while it does.
if command -v flock >/dev/null; then
	exec 8>"$cache/.lock-metallb"
	flock 8
fi

tools="$root/tools/metallb"
versions="$root/pkg/cluster/kind/versions.go"

# --- versions -----------------------------------------------------------------
want="$(sed -n 's/^[[:space:]]*MetalLBVersion[[:space:]]*=[[:space:]]*"\(.*\)"$/\1/p' "$versions")"
want_sha="$(sed -n 's/^const metallbManifestSHA256 = "\([0-9a-f]*\)"$/\1/p' "$versions")"
[[ -n "$want" && -n "$want_sha" ]] || die "cannot read MetalLBVersion and metallbManifestSHA256 from $versions"
mod_json="$(cd "$tools" && go mod download -json go.universe.tf/metallb)" ||
	die "cannot download the go.universe.tf/metallb module tools/metallb pins; check that the Go module proxy is reachable"
version="$(sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p' <<<"$mod_json")"
src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$mod_json")"
[[ "$version" == "$want" ]] ||
	die "tools/metallb pins go.universe.tf/metallb $version, pkg/cluster/kind/versions.go MetalLBVersion is $want; update tools/metallb/go.mod (go get go.universe.tf/metallb@$want && go mod tidy)"
[[ -d "$src" ]] || die "no directory for go.universe.tf/metallb@$version in the module cache"

# --- the manifest -------------------------------------------------------------
manifest="$src/config/manifests/metallb-native.yaml"
[[ -f "$manifest" ]] || die "the MetalLB $version module has no config/manifests/metallb-native.yaml"
sha="$(sha256sum "$manifest" | cut -d' ' -f1)"
[[ "$sha" == "$want_sha" ]] ||
	die "MetalLB $version's config/manifests/metallb-native.yaml in the module has sha256 $sha, not the pinned $want_sha (pkg/cluster/kind/versions.go)"
out="$cache/metallb-native-$version.yaml"
if ! cmp -s "$manifest" "$out"; then
	step "copying MetalLB's manifest to $out"
	install -m 0644 "$manifest" "$out.tmp"
	mv -f "$out.tmp" "$out"
fi

# The images, as the manifest names them.
image_of() {
	local name
	name="$(sed -n "s|^[[:space:]]*image:[[:space:]]*\(\"\?\)\([^\"[:space:]]*/$1:[^\"[:space:]]*\)\1[[:space:]]*$|\2|p" "$manifest" | sort -u)"
	[[ -n "$name" && "$name" != *$'\n'* ]] || die "metallb-native.yaml names no single $1 image"
	[[ "${name##*:}" == "$version" ]] || die "metallb-native.yaml's $1 image $name is not tagged $version"
	echo "$name"
}
controller_image="$(image_of controller)"
speaker_image="$(image_of speaker)"

# --- binaries -----------------------------------------------------------------
bin="$cache/bin"
mkdir -p "$bin"
log="$cache/metallb-build.log"
goenv="$(go env GOVERSION GOOS GOARCH)"

# gobuild OUT PACKAGE: static, as hack/kind-images.sh builds its tools modules'
# commands (so they share the Go build cache). Keyed by the toolchain,
# tools/metallb's go.mod and go.sum and the recipe.
gobuild() {
	local out="$1" pkg="$2" flags="-trimpath -ldflags=-s -w" key
	key="$({ echo "$goenv" "$pkg" "$flags" CGO_ENABLED=0; sha256sum "$tools/go.mod" "$tools/go.sum" | cut -d' ' -f1; } | sha256sum | cut -c1-16)"
	if [[ -x "$bin/$out" && "$(cat "$bin/.key-$out" 2>/dev/null)" == "$key" ]]; then
		return 0
	fi
	step "building $out ($pkg $version; a few minutes the first time)"
	if ! (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/$out.tmp" "$pkg") >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$bin/$out.tmp"
		die "building $out failed (see above)"
	fi
	mv -f "$bin/$out.tmp" "$bin/$out"
	echo "$key" >"$bin/.key-$out"
}
gobuild metallb-controller go.universe.tf/metallb/controller
gobuild metallb-speaker go.universe.tf/metallb/speaker

# --- images -------------------------------------------------------------------
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

# What distroless/static, MetalLB's base, gives besides the binary that a
# process might look for: root and nobody (65534, the controller's user),
# and a world-writable /tmp.
passwd='root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin'
group='root:x:0:
nobody:x:65534:'

# make_image NAME BINARY ENTRYPOINT: NAME from scratch with the binary at
# ENTRYPOINT, unless an image of that name carries the key of what it would
# be built from.
make_image() {
	local name="$1" binary="$2" entry="$3" key old new
	key="$({
		echo "$version" "$entry"
		echo "$passwd" "$group"
		sha256sum "$bin/$binary" "$src/LICENSE" | cut -d' ' -f1
	} | sha256sum | cut -c1-16)"
	old="$(docker image inspect -f '{{index .Config.Labels "drill.key"}} {{.Id}}' "$name" 2>/dev/null || true)"
	if [[ "${old% *}" == "$key" ]]; then
		return 0
	fi
	step "building $name"
	rm -rf "${ctx:?}"/*
	mkdir -p "$ctx/root/etc" "$ctx/root/tmp"
	chmod 1777 "$ctx/root/tmp"
	cp "$bin/$binary" "$ctx/root$entry"
	cp "$src/LICENSE" "$ctx/root/LICENSE"
	chmod 0755 "$ctx/root$entry"
	chmod 0644 "$ctx/root/LICENSE"
	echo "$passwd" >"$ctx/root/etc/passwd"
	echo "$group" >"$ctx/root/etc/group"
	tar -C "$ctx/root" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - . |
		docker import \
			-c "ENTRYPOINT [\"$entry\"]" \
			-c "LABEL drill.key=$key" \
			-c "LABEL org.opencontainers.image.source=go.universe.tf/metallb@$version" \
			-c "LABEL org.opencontainers.image.version=$version" \
			- "$name" >"$log" 2>&1 || {
		cat "$log" >&2
		die "docker import of $name failed"
	}
	# The image of ours this one replaces, now without a name (unless other
	# names or containers still use it). One not built here (say the real
	# image, pulled) is left alone.
	new="$(docker image inspect -f '{{.Id}}' "$name")"
	if [[ -n "$old" && "${old% *}" != "<no value>" && -n "${old% *}" && "${old##* }" != "$new" ]]; then
		docker rmi "${old##* }" >/dev/null 2>&1 || true
	fi
}
make_image "$controller_image" metallb-controller /controller
make_image "$speaker_image" metallb-speaker /speaker

if ((list)); then
	echo "$controller_image"
	echo "$speaker_image"
fi
