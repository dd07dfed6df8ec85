#!/usr/bin/env bash
# Runs the measurement for the leaderless config (W=5 R=1) in containers:
# deploy each config with Terraform, wait until healthy, run `kvdb load` at
# write ratios 1%, 10%, 50% and 90%, collect the results and node logs, build
# the report (if `kvdb report` exists), and clean up.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"

usage() {
  cat >&2 <<USAGE
usage: scripts/run_leaderless.sh [CONFIG...]      (default: leaderless)

environment (all optional):
  DURATION=60                 seconds of load per write ratio
  QPS=20                      target request rate
  RATIOS="0.01 0.1 0.5 0.9"   write ratios
  OUT=results/docker-<time>   results folder
  DELAYS=paper                delay profile (paper, none, paper*0.1)
  BASE_PORT=8080              node1's host port (node2..5 follow)
  KEEP=1                      leave the last cluster running (default: clean up on exit)
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; -*) usage; exit 2 ;; esac
[ $# -gt 0 ] || set -- leaderless
run_configs leaderless "$@"
