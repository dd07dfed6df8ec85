#!/usr/bin/env bash
# Runs the measurement for the leaderless config (W=5 R=1) in containers:
# deploy each config with Terraform, wait until healthy, run `kvdb load` at
# write ratios 1%, 10%, 50% and 90%, collect the results and node logs, build
# the report (if `kvdb report` exists), and clean up.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"

usage() {
  echo "usage: scripts/run_leaderless.sh [CONFIG...]      (default: leaderless)" >&2
  echo >&2
  run_env_usage
}
case "${1:-}" in -h|--help) usage; exit 0 ;; -*) usage; exit 2 ;; esac
[ $# -gt 0 ] || set -- leaderless
run_configs leaderless "$@"
