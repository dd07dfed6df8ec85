#!/usr/bin/env bash
# CI for the deployment: lints the Terraform module and the scripts, builds
# the image, and runs the container fault tests and the Terraform
# apply/destroy test against the local Docker engine. .ci/run calls it when
# `docker info` answers; run it by hand the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/ci-docker.sh   (needs a Docker engine; installs Terraform 1.5.7 on first use)" >&2; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) usage; exit 2 ;; esac

GOBIN_DIR="$(go env GOBIN)"
PATH="${GOBIN_DIR:-$(go env GOPATH)/bin}:$PATH"
export PATH
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
docker info >/dev/null 2>&1 || { echo "ci-docker: the Docker engine does not answer (docker info failed)" >&2; exit 1; }

echo "--- terraform (install / fmt / validate)"
TERRAFORM="$(terraform/install.sh)"
export TERRAFORM
# The first line only; read it all (head would close the pipe early, and
# terraform's SIGPIPE fails the script under pipefail).
"$TERRAFORM" version 2>/dev/null | sed -n 1p
"$TERRAFORM" -chdir=terraform fmt -check -diff
"$TERRAFORM" -chdir=terraform init -input=false -backend=false >/dev/null
"$TERRAFORM" -chdir=terraform validate -no-color

if command -v shellcheck >/dev/null 2>&1; then
  echo "--- shellcheck"
  shellcheck -x scripts/common.sh scripts/deploy.sh scripts/cleanup.sh scripts/run_leader_follower.sh \
    scripts/run_leaderless.sh scripts/ci-docker.sh scripts/tools.sh terraform/install.sh
fi

echo "--- image (node-only build, -tags kvdb_node: see the Makefile's IMAGE_TAGS)"
make image
docker image inspect -f 'kvdb:latest {{.Size}} bytes, user {{.Config.User}}, healthcheck {{.Config.Healthcheck.Test}}' kvdb:latest

echo "--- container tests"
# If the run dies before its t.Cleanups (e.g. go test -timeout), remove what
# the tests left: they label everything kvdb.systemtest=1.
trap 'scripts/cleanup.sh --label kvdb.systemtest=1 >/dev/null 2>&1 || true' EXIT
KVDB_DOCKER_TESTS=1 go test -count=1 -timeout 20m -v ./internal/systemtest/
