#!/usr/bin/env bash
# Installs Terraform v1.5.7 (the last MPL-licensed release) from source with
# `go install`, because no binary download or provider registry is reachable
# on our machines. The binary is cached in GOBIN (default $(go env GOPATH)/bin),
# so only the first run compiles (that takes several minutes).
#
# usage: terraform/install.sh            install if needed, print the path
#        TF_VERSION=1.5.7 GOBIN=/some/dir terraform/install.sh
set -euo pipefail

TF_VERSION="${TF_VERSION:-1.5.7}"

usage() {
  echo "usage: $0          install Terraform v${TF_VERSION} into GOBIN unless it is already there" >&2
  echo "       (env: TF_VERSION, GOBIN; prints the path of the terraform binary)" >&2
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) usage; exit 2 ;;
esac

command -v go >/dev/null 2>&1 || { echo "install.sh: go is not on PATH" >&2; exit 1; }

gobin="${GOBIN:-$(go env GOBIN)}"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
mkdir -p "$gobin"

has_version() { # $1 = terraform binary
  # Capture the whole output: head or grep -q would close the pipe early,
  # and terraform's SIGPIPE fails the pipeline under pipefail.
  local out
  [ -x "$1" ] && out="$("$1" version 2>/dev/null)" && [ "${out%%$'\n'*}" = "Terraform v${TF_VERSION}" ]
}

# Already installed: in GOBIN first, then anywhere on PATH.
if has_version "$gobin/terraform"; then
  echo "$gobin/terraform"
  exit 0
fi
if onpath="$(command -v terraform 2>/dev/null)" && has_version "$onpath"; then
  echo "$onpath"
  exit 0
fi

echo "install.sh: building Terraform v${TF_VERSION} with go install (takes a few minutes)..." >&2
# Build in a scratch dir so that no go.mod around us interferes.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && CGO_ENABLED=0 GOBIN="$gobin" GOFLAGS=-mod=mod go install -trimpath "github.com/hashicorp/terraform@v${TF_VERSION}")

has_version "$gobin/terraform" || { echo "install.sh: $gobin/terraform does not report v${TF_VERSION}" >&2; exit 1; }
echo "install.sh: installed $gobin/terraform" >&2
echo "$gobin/terraform"
