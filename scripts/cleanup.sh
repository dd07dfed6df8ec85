#!/usr/bin/env bash
# Removes every kvdb container and network: first through Terraform (so its
# state stays true), then anything still labelled app=kvdb through Docker.
# Safe to run twice, and when nothing was deployed.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"

usage() {
  cat >&2 <<USAGE
usage: scripts/cleanup.sh [--label KEY=VALUE]

Runs terraform destroy on terraform/ (if it has state), then removes every
container and network labelled app=kvdb (and KEY=VALUE, if given, to remove
only one test's or one project's resources).
USAGE
}

FILTERS=(--filter label=app=kvdb)
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --label) [ $# -ge 2 ] || { usage; exit 2; }; FILTERS+=(--filter "label=$2"); shift 2 ;;
    *) usage; exit 2 ;;
  esac
done
command -v docker >/dev/null || die "docker is not on PATH"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed)"

# 1. Terraform, only for a full cleanup and only if it has something.
state="$TF_DIR/terraform.tfstate"
if [ "${#FILTERS[@]}" -eq 2 ] && [ -s "$state" ] && grep -q '"terraform_data"' "$state"; then
  log "terraform destroy"
  if ! timeout 300 bash -c "source '$ROOT/scripts/common.sh'; tf init -input=false >/dev/null && tf destroy -auto-approve -input=false -no-color" >/dev/null 2>&1; then
    log "terraform destroy failed; removing with docker and forgetting the terraform state"
    mv -f "$state" "$state.stale" 2>/dev/null || true
  fi
fi

# 2. Whatever is left, by label.
mapfile -t containers < <(docker ps -aq "${FILTERS[@]}")
if [ "${#containers[@]}" -gt 0 ]; then
  log "removing ${#containers[@]} container(s)"
  docker rm -f -v "${containers[@]}" >/dev/null
fi
mapfile -t networks < <(docker network ls -q "${FILTERS[@]}")
if [ "${#networks[@]}" -gt 0 ]; then
  log "removing ${#networks[@]} network(s)"
  docker network rm "${networks[@]}" >/dev/null
fi

# 3. Terraform state that still lists resources now describes nothing.
if [ "${#FILTERS[@]}" -eq 2 ] && [ -s "$state" ] && grep -q '"terraform_data"' "$state"; then
  mv -f "$state" "$state.stale"
fi

left="$(docker ps -aq "${FILTERS[@]}")$(docker network ls -q "${FILTERS[@]}")"
[ -z "$left" ] || die "some kvdb containers or networks are still there: $left"
log "clean: no container or network labelled ${FILTERS[*]//--filter /}"
