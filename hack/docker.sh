#!/usr/bin/env bash
# docker.sh makes a Docker engine answer on this machine, for the kind provider:
# it installs Debian's docker.io when no engine is installed, starts dockerd when
# none answers, and waits for it. Users with Docker Desktop or a running engine
# never need it (it does nothing then).
#
# Hosts whose capability bounding set lacks a capability (some VMs and
# container hosts drop CAP_SYS_RESOURCE) cannot run `docker run --privileged`, which
# kind needs for its nodes: runc fails with "unable to apply caps". On those
# hosts only, it builds hack/runc-caps and registers it as dockerd's default
# runtime (/etc/docker/daemon.json), so that privileged containers get every
# capability the host can grant. See docs/kind.md.
#
# Environment:
#   DRILL_DOCKERD_LOG   where dockerd's output goes (default /var/log/drill-dockerd.log)
#   DRILL_NO_APT=1      never install packages, only report what is missing
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${DRILL_DOCKERD_LOG:-/var/log/drill-dockerd.log}"
wrapper=/usr/local/libexec/drill-runc-caps

die() {
	echo "docker.sh: $*" >&2
	exit 1
}

answers() { docker info >/dev/null 2>&1; }

# missing_caps prints the capabilities the bounding set lacks, as bit numbers.
missing_caps() {
	local bnd last i
	bnd=$((16#$(awk '/^CapBnd:/ {print $2}' /proc/self/status)))
	last=$(cat /proc/sys/kernel/cap_last_cap)
	for ((i = 0; i <= last; i++)); do
		if ((((bnd >> i) & 1) == 0)); then
			echo "$i"
		fi
	done
}

if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
	if answers; then
		exit 0 # a remote or desktop engine answers; nothing to start here
	fi
	if [[ "${DRILL_NO_APT:-}" == 1 || "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
		die "no Docker engine is installed; install Docker (Debian/Ubuntu: apt-get install docker.io) and run again"
	fi
	echo "docker.sh: installing Debian's docker.io ..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends docker.io >/dev/null ||
		die "apt-get install docker.io failed; install Docker by hand"
fi

missing="$(missing_caps)"
if [[ -n "$missing" ]]; then
	# Only hosts that need it get the runtime, and only when it changed.
	command -v go >/dev/null || die "this host lacks capabilities ($(echo "$missing" | tr '\n' ' ')) and building the runtime wrapper needs Go"
	tmp="$(mktemp)"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$tmp" ./hack/runc-caps) || die "building hack/runc-caps failed"
	if ! cmp -s "$tmp" "$wrapper" 2>/dev/null || ! grep -q drill-runc-caps /etc/docker/daemon.json 2>/dev/null; then
		echo "docker.sh: this host's capability bounding set lacks capability bits $(echo "$missing" | tr "\n" " ")(see capabilities(7)); registering $wrapper as dockerd's default runtime"
		install -D -m 0755 "$tmp" "$wrapper"
		"$wrapper" --register-in /etc/docker/daemon.json drill-runc-caps "$wrapper"
		if answers; then
			echo "docker.sh: restarting dockerd to use it"
			pkill -x dockerd || true
			for _ in $(seq 1 30); do pgrep -x dockerd >/dev/null || break; sleep 1; done
		fi
	fi
	rm -f "$tmp"
fi

if answers; then
	exit 0
fi
[[ "$(id -u)" == 0 ]] || die "no Docker engine answers and starting dockerd needs root; start it (sudo systemctl start docker) and run again"
echo "docker.sh: starting dockerd (log: $log) ..."
mkdir -p "$(dirname "$log")"
nohup dockerd >>"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
	if answers; then
		echo "docker.sh: $(docker version --format 'Docker {{.Server.Version}}') is up"
		exit 0
	fi
	sleep 1
done
tail -n 20 "$log" >&2 || true
die "dockerd did not answer within 60 s; its last log lines are above ($log)"
