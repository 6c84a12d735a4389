#!/usr/bin/env bash
# kind-images.sh builds, with no container registry, the images drill's kind
# provider runs when DRILL_KIND_IMAGES=offline:
#
#   drill.local/kind-node:<k8s>   the kind node image: Debian bookworm with
#       systemd, containerd, runc and the CNI plugins (Debian's packages),
#       kind's own node files (entrypoint, units, containerd config, taken from
#       the kind module drill is built with), kubelet, kubeadm and kubectl built
#       from tools/kube, and preloaded in its containerd every image below;
#   registry.k8s.io/{kube-apiserver,kube-controller-manager,kube-scheduler,
#       kube-proxy,etcd,coredns/coredns,pause}: exactly the names and tags
#       `kubeadm config images list` gives for that Kubernetes version, built
#       from their Go modules (tools/kube, tools/kindimages);
#   drill.local/kind-cni:v1       drill's default CNI (hack/kind/default-cni.yaml);
#   drill.local/bookinfo/examples-bookinfo-<svc>-<version>:<tag>   drill's Go
#       Bookinfo (hack/bookinfo), one image per workload;
#   drill.local/istio/{pilot,proxyv2}:<tag>   Istio from the istio.io/istio
#       module tools/istio pins: pilot-discovery; pilot-agent with drill's
#       emulated Envoy (internal/envoyemu/cmd/envoy) as its envoy, since no
#       Envoy binary can be built here. istioctl of the same module goes to
#       the cache's bin/ (the kind provider runs it when offline);
#   quay.io/metallb/{controller,speaker}:<version>   MetalLB from its Go module
#       (hack/metallb-images.sh), and its manifest from the same module.
#
# Everything is cached: the Debian root filesystem and the binaries under
# ~/.cache/drill/kind-images, the images in the Docker engine, each labelled with the
# key of what it was built from; an image is rebuilt only when that key changes.
# It prints one line per step and nothing when there is nothing to do.
#
# Needs a Docker engine (make docker), Go, and debootstrap (installed with
# apt-get when missing and running as root).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${DRILL_KIND_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drill/kind-images}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
start=$SECONDS

die() {
	echo "kind-images: $*" >&2
	exit 1
}
step() { echo "kind-images: [$(((SECONDS - start) / 60)):$(printf %02d $(((SECONDS - start) % 60)))] $*"; }

command -v go >/dev/null || die "the Go toolchain is not on PATH"
docker info >/dev/null 2>&1 || die "no Docker engine answers; start one (make docker) and run again"

if command -v flock >/dev/null; then
	exec 9>"$cache/.lock"
	flock 9
fi

modversion() { (cd "$root/tools/$1" && go list -m -f '{{.Version}}' "$2"); }
moddir() { (cd "$root/tools/$1" && go list -m -f '{{.Dir}}' "$2"); }

kube_version="$(modversion kube k8s.io/kubernetes)"
kube_minor="$(echo "$kube_version" | cut -d. -f2)"
kind_dir="$(cd "$root" && go mod download -json sigs.k8s.io/kind | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$kind_dir/images/base/files" ]] || die "cannot find kind's node files in the kind module ($kind_dir)"

# key_of prints a short key over its arguments' contents (files) or values.
key_of() {
	local a
	for a in "$@"; do
		if [[ -f "$a" ]]; then sha256sum "$a" | cut -d' ' -f1; else echo "$a"; fi
	done | sha256sum | cut -c1-16
}

# image_key IMAGE prints the drill.key label of a local image, "" when absent.
image_key() { docker image inspect -f '{{index .Config.Labels "drill.key"}}' "$1" 2>/dev/null || true; }

# --- binaries -----------------------------------------------------------------
bin="$cache/bin"
mkdir -p "$bin"
kube_ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$kube_minor -X $p.gitTreeState=clean"
done

# gobuild MODULE_DIR OUT PACKAGE [LDFLAGS]: static. A tools module's command
# is pinned by its go.mod and go.sum, so its key is those, the toolchain and the
# recipe; drill's own commands (hack/...) change with their sources, so they go
# through go build every time, which leaves an up-to-date binary untouched.
gobuild() {
	local dir="$1" out="$2" pkg="$3" ldflags="${4:-}" key
	key="$(key_of "$(go env GOVERSION)" "$dir/go.mod" "$dir/go.sum" "$pkg" "$ldflags")"
	if [[ "$dir" == "$root" ]]; then
		(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$out" "$pkg") ||
			die "building $out failed (see above)"
		return 0
	fi
	if [[ -x "$bin/$out" && "$(cat "$bin/.key-$out" 2>/dev/null)" == "$key" ]]; then
		return 0
	fi
	step "building $out ($pkg)"
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$out.tmp" "$pkg") ||
		die "building $out failed (see above)"
	mv -f "$bin/$out.tmp" "$bin/$out"
	echo "$key" >"$bin/.key-$out"
}

for c in kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
	gobuild "$root/tools/kube" "$c" "k8s.io/kubernetes/cmd/$c" "$kube_ldflags"
done
gobuild "$root" runc-caps ./hack/runc-caps
gobuild "$root" pause ./hack/pause
gobuild "$root" bookinfo ./hack/bookinfo

# The images kubeadm of this version pulls, as it names them.
mapfile -t kubeadm_images < <("$bin/kubeadm" config images list --kubernetes-version "$kube_version" 2>/dev/null)
((${#kubeadm_images[@]})) || die "kubeadm config images list gave nothing"
image_of() {
	local i
	for i in "${kubeadm_images[@]}"; do
		if [[ "${i%:*}" == */"$1" ]]; then
			echo "$i"
			return
		fi
	done
	die "kubeadm $kube_version lists no $1 image"
}
etcd_image="$(image_of etcd)"
coredns_image="$(image_of coredns)"
pause_image="$(image_of pause)"
# registry.k8s.io's etcd tags are <etcd version>-<build>.
etcd_version="v${etcd_image##*:}"
etcd_version="${etcd_version%-*}"
coredns_version="${coredns_image##*:}"
gobuild "$root/tools/kindimages" etcd go.etcd.io/etcd/server/v3
gobuild "$root/tools/kindimages" coredns github.com/coredns/coredns
etcd_have="$(cd "$root/tools/kindimages" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
coredns_have="$(cd "$root/tools/kindimages" && go list -m -f '{{.Version}}' github.com/coredns/coredns)"
[[ "$etcd_have" == "$etcd_version" ]] || step "note: kubeadm asks for etcd $etcd_version; tools/kindimages builds $etcd_have under that tag"
[[ "$coredns_have" == "$coredns_version" ]] || step "note: kubeadm asks for CoreDNS $coredns_version; tools/kindimages builds $coredns_have under that tag"

# --- the Debian root filesystem -----------------------------------------------
# What kind's base image installs (images/base/Dockerfile), with Debian's
# containerd, runc and CNI plugins instead of kind's own builds.
packages="systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,jq,procps,containerd,runc,containernetworking-plugins,socat,ebtables"
base_key="$(key_of bookworm "$packages")"
base_image="drill.local/kind-base:$base_key"
if ! docker image inspect "$base_image" >/dev/null 2>&1; then
	if ! command -v debootstrap >/dev/null; then
		if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
			die "debootstrap is missing; install it (apt-get install debootstrap)"
		fi
		step "installing debootstrap"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	rootfs="$cache/rootfs-$base_key"
	if [[ ! -f "$rootfs/.complete" ]]; then
		rm -rf "$rootfs"
		step "debootstrap bookworm with kind's packages (a few minutes)"
		mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
		debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >"$cache/debootstrap.log" 2>&1 ||
			die "debootstrap failed; its log is $cache/debootstrap.log"
		rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
		touch "$rootfs/.complete"
	fi
	step "importing the root filesystem as $base_image"
	tar -C "$rootfs" --exclude=./.complete -c . | docker import -c "LABEL drill.key=$base_key" - "$base_image" >/dev/null
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

# build_image NAME KEY DOCKERFILE: builds NAME from the context in $ctx unless
# an image of that name carries KEY.
build_image() {
	local name="$1" key="$2" dockerfile="$3"
	if [[ "$(image_key "$name")" == "$key" ]]; then
		return 1
	fi
	step "building $name"
	printf '%s\n' "$dockerfile" "LABEL drill.key=$key" >"$ctx/Dockerfile"
	DOCKER_BUILDKIT=0 docker build -q -t "$name" "$ctx" >"$cache/build.log" 2>&1 || {
		cat "$cache/build.log" >&2
		die "docker build of $name failed"
	}
	return 0
}

# scratch_image NAME BINARY ENTRYPOINT...: one static binary, nothing else.
scratch_image() {
	local name="$1" binary="$2"
	shift 2
	local entry
	entry="$(printf '"%s",' "$@")"
	rm -rf "${ctx:?}"/*
	cp "$bin/$binary" "$ctx/$binary"
	build_image "$name" "$(key_of "$bin/$binary" "$*")" "FROM scratch
COPY $binary /usr/local/bin/$binary
ENV PATH=/usr/local/bin:/usr/bin:/bin
ENTRYPOINT [${entry%,}]" || true
}

images=() # preloaded in the node image
pushed=() # in the local registry
for c in kube-apiserver kube-controller-manager kube-scheduler; do
	scratch_image "$(image_of "$c")" "$c" "/usr/local/bin/$c"
	images+=("$(image_of "$c")")
done
scratch_image "$etcd_image" etcd /usr/local/bin/etcd
scratch_image "$coredns_image" coredns /usr/local/bin/coredns
scratch_image "$pause_image" pause /usr/local/bin/pause
images+=("$etcd_image" "$coredns_image" "$pause_image")

# kube-proxy runs iptables and conntrack: on the Debian root filesystem.
rm -rf "${ctx:?}"/*
cp "$bin/kube-proxy" "$ctx/"
build_image "$(image_of kube-proxy)" "$(key_of "$base_key" "$bin/kube-proxy")" "FROM $base_image
COPY kube-proxy /usr/local/bin/kube-proxy
ENTRYPOINT [\"/usr/local/bin/kube-proxy\"]" || true
images+=("$(image_of kube-proxy)")

cni_image=drill.local/kind-cni:v1
rm -rf "${ctx:?}"/*
build_image "$cni_image" "$(key_of "$base_key" cni-v1)" "FROM $base_image" || true
images+=("$cni_image")

# Bookinfo: the tag the kind provider installs (internal/bookinfo Tag).
bookinfo_tag="$(sed -n 's/^[[:space:]]*Tag[[:space:]]*=[[:space:]]*"\(.*\)"$/\1/p' "$root/internal/bookinfo/images.go")"
for w in productpage:v1 details:v1 reviews:v1 reviews:v2 reviews:v3 ratings:v1; do
	svc="${w%%:*}" ver="${w##*:}"
	name="drill.local/bookinfo/examples-bookinfo-$svc-$ver:$bookinfo_tag"
	scratch_image "$name" bookinfo /usr/local/bin/bookinfo "$svc" "$ver"
	pushed+=("$name")
done

# Istio, as Istio's own Dockerfiles lay it out (docker/Dockerfile.base,
# pilot/docker/Dockerfile.pilot and Dockerfile.proxyv2): pilot-discovery as
# user 1337; pilot-agent as the entrypoint of proxyv2, Envoy's bootstrap
# template where pilot-agent reads it, the istio-proxy user (uid 1337, which
# istio-init's iptables rules exempt) and iptables for istio-init.
istio_version="$(modversion istio istio.io/istio)"
istio_dir="$(moddir istio istio.io/istio)"
istio_rev="${istio_version##*-}"
istio_tag="$(cat "$istio_dir/VERSION")-dev.$istio_rev"
istio_hub=drill.local/istio
istio_ldflags=""
for kv in "buildVersion=$istio_tag" "buildGitRevision=$istio_rev" buildStatus=Clean "buildTag=$istio_tag" "buildHub=$istio_hub"; do
	istio_ldflags+=" -X istio.io/istio/pkg/version.$kv"
done
for c in pilot-discovery pilot-agent istioctl; do
	p=pilot/cmd/$c
	[[ "$c" == istioctl ]] && p=istioctl/cmd/istioctl
	gobuild "$root/tools/istio" "$c" "istio.io/istio/$p" "$istio_ldflags"
done
gobuild "$root" envoy ./internal/envoyemu/cmd/envoy
cp -f "$bin/istioctl" "$cache/istioctl-$istio_tag"
rm -rf "${ctx:?}"/*
cp "$bin/pilot-discovery" "$ctx/"
build_image "$istio_hub/pilot:$istio_tag" "$(key_of "$base_key" "$bin/pilot-discovery")" "FROM $base_image
COPY pilot-discovery /usr/local/bin/pilot-discovery
USER 1337:1337
ENTRYPOINT [\"/usr/local/bin/pilot-discovery\"]" || true
rm -rf "${ctx:?}"/*
cp "$bin/pilot-agent" "$bin/envoy" "$istio_dir/tools/packaging/common/envoy_bootstrap.json" "$ctx/"
chmod u+w "$ctx/envoy_bootstrap.json"
build_image "$istio_hub/proxyv2:$istio_tag" "$(key_of "$base_key" "$bin/pilot-agent" "$bin/envoy" "$ctx/envoy_bootstrap.json")" "FROM $base_image
RUN useradd -m --uid 1337 istio-proxy && mkdir -p /etc/istio/proxy /var/lib/istio/envoy && chown -R 1337:1337 /etc/istio/proxy
COPY envoy_bootstrap.json /var/lib/istio/envoy/envoy_bootstrap_tmpl.json
COPY envoy /usr/local/bin/envoy
COPY pilot-agent /usr/local/bin/pilot-agent
ENV ISTIO_META_ISTIO_PROXY_SHA=drill-emulated-envoy
ENTRYPOINT [\"/usr/local/bin/pilot-agent\"]" || true
pushed+=("$istio_hub/pilot:$istio_tag" "$istio_hub/proxyv2:$istio_tag")

# MetalLB, from its Go module at the pinned version (hack/metallb-images.sh).
# shellcheck disable=SC2207
pushed+=($("$root/hack/metallb-images.sh" --list))

# --- the local registry -------------------------------------------------------
# The images above that are not Kubernetes' own go to a registry of drill's, as
# a registry would serve them: the nodes pull them (hack/kind/certs.d), so a new
# build of one of them needs no new node image. It is the distribution project's
# registry (tools/registry), run as the container drill-registry with its
# storage on a volume, on the host's loopback for pushes; the kind provider
# connects it to the kind network, where the nodes reach it.
registry_version="$(modversion registry github.com/distribution/distribution/v3)"
registry_image="drill.local/registry:$registry_version"
gobuild "$root/tools/registry" registry github.com/distribution/distribution/v3/cmd/registry
rm -rf "${ctx:?}"/*
cp "$bin/registry" "$root/hack/kind/registry.yml" "$ctx/"
build_image "$registry_image" "$(key_of "$bin/registry" "$root/hack/kind/registry.yml")" "FROM scratch
COPY registry /bin/registry
COPY registry.yml /etc/distribution/config.yml
VOLUME [\"/var/lib/registry\"]
EXPOSE 5000
ENTRYPOINT [\"/bin/registry\"]
CMD [\"serve\", \"/etc/distribution/config.yml\"]" || true
registry_container=drill-registry
registry_push=127.0.0.1:5001
want_id="$(docker image inspect -f '{{.Id}}' "$registry_image")"
have_id="$(docker container inspect -f '{{.Image}}' "$registry_container" 2>/dev/null || true)"
running="$(docker container inspect -f '{{.State.Running}}' "$registry_container" 2>/dev/null || true)"
if [[ "$have_id" != "$want_id" || "$running" != true ]]; then
	step "starting the local registry ($registry_container, $registry_image)"
	docker rm -f "$registry_container" >/dev/null 2>&1 || true
	docker run -d --restart=always --name "$registry_container" --label drill.registry=1 \
		-p "$registry_push:5000" -v drill-registry:/var/lib/registry "$registry_image" >/dev/null
fi
for _ in $(seq 1 50); do
	curl -fsS -o /dev/null "http://$registry_push/v2/" 2>/dev/null && break
	sleep 0.2
done
curl -fsS -o /dev/null "http://$registry_push/v2/" || {
	docker logs "$registry_container" 2>&1 | tail -n 20 >&2
	die "the local registry does not answer at http://$registry_push/v2/"
}
# push_image IMAGE [AS]: pushes IMAGE to the registry under its repository
# path without the registry host (drill.local/istio/proxyv2:T → istio/proxyv2:T,
# which the nodes ask drill-registry:5000 for), unless this image was pushed
# there before and the registry still has it.
push_image() {
	local src="$1" path="${2:-${1#*/}}" id mark
	id="$(docker image inspect -f '{{.Id}}' "$src")"
	mark="$cache/.pushed-$(echo "$path" | tr '/:' '__')"
	if [[ "$(cat "$mark" 2>/dev/null)" == "$id" ]] &&
		curl -fsS -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
			"http://$registry_push/v2/${path%:*}/manifests/${path##*:}" 2>/dev/null; then
		return 0
	fi
	step "pushing $src to the local registry as $path"
	docker tag "$src" "$registry_push/$path"
	docker push -q "$registry_push/$path" >"$cache/push.log" 2>&1 || {
		cat "$cache/push.log" >&2
		die "pushing $src to the local registry failed"
	}
	echo "$id" >"$mark"
}
for i in "${pushed[@]}"; do push_image "$i"; done

# --- the node image -----------------------------------------------------------
node_image="drill.local/kind-node:$kube_version"
keys=()
for i in "${images[@]}"; do keys+=("$(image_key "$i")"); done
node_key="$(key_of "$base_key" "$kube_version" "$bin/kubelet" "$bin/kubeadm" "$bin/kubectl" "$bin/runc-caps" \
	"$root/hack/kind/default-cni.yaml" "$root/hack/kind/default-storage.yaml" "$root/hack/kind/node.Dockerfile" \
	"$root/hack/kind/certs.d/drill.local/hosts.toml" "$root/hack/kind/certs.d/quay.io/hosts.toml" \
	"$kind_dir" "${images[*]}" "${keys[*]}")"
if [[ "$(image_key "$node_image")" != "$node_key" ]]; then
	rm -rf "${ctx:?}"/*
	mkdir -p "$ctx/kind-files" "$ctx/bin" "$ctx/manifests"
	cp -r "$kind_dir/images/base/files/." "$ctx/kind-files/"
	chmod -R u+w "$ctx/kind-files"
	cp "$bin/kubelet" "$bin/kubeadm" "$bin/kubectl" "$bin/runc-caps" "$ctx/bin/"
	cp "$root/hack/kind/default-cni.yaml" "$root/hack/kind/default-storage.yaml" "$ctx/manifests/"
	cp -r "$root/hack/kind/certs.d" "$ctx/certs.d"
	echo "$kube_version" >"$ctx/version"
	step "building $node_image (without its images)"
	sed -e "s|@BASE@|$base_image|" -e "s|@PAUSE@|$pause_image|" "$root/hack/kind/node.Dockerfile" >"$ctx/Dockerfile"
	DOCKER_BUILDKIT=0 docker build -t "$node_image-bare" "$ctx" >"$cache/build.log" 2>&1 || {
		tail -n 30 "$cache/build.log" >&2
		die "docker build of the node image failed"
	}

	# Preload: run the node as kind does, let its containerd import every
	# image, and commit. /var stays in the container's own filesystem here so
	# that the commit keeps containerd's store (a kind node mounts a volume
	# there, which Docker fills from the image).
	step "preloading ${#images[@]} images into the node's containerd"
	builder="drill-kind-node-build-$$"
	docker rm -f "$builder" >/dev/null 2>&1 || true
	docker run -d --name "$builder" --privileged --tmpfs /tmp --tmpfs /run --cgroupns=private \
		--security-opt seccomp=unconfined --security-opt apparmor=unconfined "$node_image-bare" >/dev/null
	trap 'docker rm -f "$builder" >/dev/null 2>&1 || true; rm -rf "$ctx"' EXIT
	for _ in $(seq 1 60); do
		docker exec "$builder" ctr version >/dev/null 2>&1 && break
		sleep 1
	done
	docker exec "$builder" ctr version >/dev/null 2>&1 || {
		docker logs "$builder" 2>&1 | tail -n 20 >&2
		die "containerd did not start in the node image"
	}
	docker save "${images[@]}" | docker exec -i "$builder" ctr --namespace=k8s.io images import --no-unpack --digests - >/dev/null ||
		die "importing the images into the node's containerd failed"
	docker exec "$builder" systemctl stop kubelet containerd >/dev/null 2>&1 || true
	# The commit keeps the image's entrypoint, environment and stop signal.
	docker commit -c "LABEL drill.key=$node_key" "$builder" "$node_image" >/dev/null
	docker rm -f "$builder" >/dev/null
	docker rmi "$node_image-bare" >/dev/null 2>&1 || true
	step "built $node_image ($(docker image inspect -f '{{.Size}}' "$node_image" | awk '{printf "%d MiB", $1/1048576}'))"
fi

# The node image too: pushed, it has a registry digest, by which the kind
# provider's preflight pins it (docker image inspect: RepoDigests).
push_image "$node_image" "kind-node:$kube_version"

# Images of earlier builds that a rebuild left without a name (ours only).
docker image prune -f --filter "label=drill.key" >/dev/null
