#!/usr/bin/env bash
# Installs the project's pinned developer tools with `go install` (the Go
# module proxy is the one registry our machines reach) and prints the path
# of the one asked for. A tool is cached in GOBIN (default
# $(go env GOPATH)/bin, outside the work tree, so fresh clones and CI runs
# on the same machine reuse it) and rebuilt only when the binary there does
# not report the pinned version.
#
# usage: scripts/tools.sh staticcheck      install if needed, print the path
#        GOBIN=/some/dir scripts/tools.sh staticcheck
#
# Pinned versions (change them here only):
#   staticcheck  honnef.co/go/tools v0.8.2 (staticcheck 2026.2.2, builds with Go 1.26)
set -euo pipefail

STATICCHECK_VERSION="0.8.2"

usage() {
  echo "usage: $0 staticcheck     install the pinned tool into GOBIN unless it is there, print its path" >&2
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  staticcheck) ;;
  *) usage; exit 2 ;;
esac

command -v go >/dev/null 2>&1 || { echo "tools.sh: go is not on PATH" >&2; exit 1; }

gobin="${GOBIN:-$(go env GOBIN)}"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
mkdir -p "$gobin"

# staticcheck -version prints e.g. "staticcheck 2026.2.2 (0.8.2)".
has_version() { # $1 = binary
  [ -x "$1" ] && "$1" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION})"
}

bin="$gobin/staticcheck"
if ! has_version "$bin"; then
  echo "tools.sh: installing staticcheck v${STATICCHECK_VERSION} into $gobin" >&2
  # Build outside the repository so that neither module's go.mod is involved.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && GOBIN="$gobin" GOFLAGS=-mod=mod go install "honnef.co/go/tools/cmd/staticcheck@v${STATICCHECK_VERSION}")
  has_version "$bin" || { echo "tools.sh: $bin does not report v${STATICCHECK_VERSION}" >&2; exit 1; }
fi
echo "$bin"
