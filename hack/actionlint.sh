#!/usr/bin/env bash
# Lints the GitHub Actions workflows under .github/workflows with actionlint,
# pinned: the first run installs it with `go install` into bin/ (a few seconds
# from the Go module proxy), later runs use that binary. actionlint checks each
# `run:` script with shellcheck when shellcheck is on PATH (it is on GitHub's
# runners). Extra arguments go to actionlint, e.g. hack/actionlint.sh -verbose.
set -euo pipefail

ACTIONLINT_VERSION=v1.7.12

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${DRILL_BIN_DIR:-$root/bin}"
actionlint="$bin/actionlint-$ACTIONLINT_VERSION"

if [[ ! -x "$actionlint" ]]; then
	echo "installing actionlint $ACTIONLINT_VERSION into $bin" >&2
	mkdir -p "$bin"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	if ! GOBIN="$tmp" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"; then
		echo "hack/actionlint.sh: could not install actionlint $ACTIONLINT_VERSION with go install;" \
			"it needs Go and the Go module proxy (or GOFLAGS=-mod=mod with a GOPROXY mirror)" >&2
		exit 2
	fi
	mv "$tmp/actionlint" "$actionlint"
fi

if ! command -v shellcheck >/dev/null 2>&1; then
	echo "hack/actionlint.sh: shellcheck is not on PATH; run: scripts are not checked" >&2
fi

cd "$root"
exec "$actionlint" "$@"
