#!/usr/bin/env bash
# Deploys a five-node kvdb cluster on the local Docker engine with Terraform
# (terraform/), waits until every node answers /health, and prints the node
# URLs and Redis-protocol (RESP) addresses. Re-running with another config
# replaces the containers in place.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"

usage() {
  cat >&2 <<USAGE
usage: scripts/deploy.sh CONFIG

CONFIG is one of: ${CONFIGS[*]}
  w5r1        leader-follower, W=5 R=1 (writes wait for every copy, reads are local)
  w1r5        leader-follower, W=1 R=5 (writes acknowledged by the leader alone, reads ask all five)
  w3r3        leader-follower, W=3 R=3 (majority quorums)
  leaderless  leaderless, W=5 R=1 (any node coordinates)

environment (all optional):
  DELAYS=paper|none|paper*0.1   delay profile (default paper)
  BASE_PORT=8080                node1's host port; node2..node5 follow (published on 127.0.0.1)
  RESP_BASE_PORT=6379           node1's Redis-protocol (RESP) host port; node2..node5 follow
                                (published on 127.0.0.1; 0: no RESP listener)
  NAME_PREFIX=kvdb              container and network name prefix
  IMAGE=kvdb:latest             image tag (built from this checkout during apply)
  REQUEST_TIMEOUT=5s            bound on one client request
  PUBLIC_HOST=127.0.0.1         host clients reach the published ports at (node URLs, where
                                followers redirect writes when that node leads, and the RESP
                                address their READONLY answer names; default: host_ip)
leader-follower failover (raft over each node's HTTP port; defaults are the node's):
  ELECTION_HEARTBEAT=500ms      a follower that hears no leader for this long (x1-2) starts an election
  ELECTION_TIMEOUT=500ms        a candidate without enough votes tries again after this (x1-2)
  LEADER_LEASE=250ms            a leader cut off from the majority this long stops acknowledging writes
  LEADER_CATCHUP_WAIT=500ms     a new leader that cannot copy N-W+1 nodes accepts writes after this,
                                reporting possible loss of acknowledged writes (/health possible_loss)
  KVDB_CLUSTER_TOKEN=...        shared secret for /internal/ and PUT /config (default: a random
                                one generated at the first deploy and kept in the Terraform state;
                                the nodes need one, they talk over the Docker network, not loopback)
  HEALTH_TIMEOUT=60             seconds to wait for /health (and for RESP to answer PING)
  VERBOSE=1                     show Terraform's whole output
USAGE
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") usage; exit 2 ;;
esac
[ $# -eq 1 ] || { usage; exit 2; }
CONFIG="$1"
is_config "$CONFIG" || { echo "deploy.sh: unknown config '$CONFIG'" >&2; usage; exit 2; }
command -v docker >/dev/null || die "docker is not on PATH"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed)"

mapfile -t VARS < <(tf_vars)
tf init -input=false >/dev/null

# terraform_data cannot see containers removed behind its back (e.g. by
# cleanup.sh's docker fallback or a test): replace whatever the state lists
# but Docker no longer has.
REPLACE=()
if tf state list 2>/dev/null | grep '^terraform_data.node' >/dev/null; then
  if ! net="$(tf output -raw network 2>/dev/null)" || ! docker network inspect "$net" >/dev/null 2>&1; then
    REPLACE+=(-replace=terraform_data.network)
  fi
  while IFS='=' read -r id name; do
    [ -n "$id" ] || continue
    if [ "$(docker container inspect -f '{{.State.Running}}' "$name" 2>/dev/null || true)" != true ]; then
      REPLACE+=("-replace=terraform_data.node[\"$id\"]")
    fi
  done < <(tf output -json containers 2>/dev/null | tr -d '{}" \n' | tr ',' '\n' | sed 's/:/=/')
  [ "${#REPLACE[@]}" -eq 0 ] || log "recreating what Docker no longer has: ${REPLACE[*]}"
  # The readiness check runs again whenever anything is replaced.
  [ "${#REPLACE[@]}" -eq 0 ] || REPLACE+=(-replace=terraform_data.ready)
fi

log "deploying $CONFIG (delays ${DELAYS:-paper}, base port ${BASE_PORT:-8080}, RESP base port ${RESP_BASE_PORT:-6379})"
start=$(date +%s)
# Terraform's full output goes to a log (shown on failure, or with VERBOSE=1).
tflog="$(mktemp)"
trap 'rm -f "$tflog"' EXIT
if [ "${VERBOSE:-0}" = 1 ]; then
  tf apply -auto-approve -input=false -no-color -var-file="$CONFIG.tfvars" "${VARS[@]}" "${REPLACE[@]}" >&2
elif ! tf apply -auto-approve -input=false -no-color -var-file="$CONFIG.tfvars" "${VARS[@]}" "${REPLACE[@]}" >"$tflog" 2>&1; then
  grep -v -e '^$' "$tflog" | tail -n 60 >&2
  die "terraform apply failed (VERBOSE=1 shows all its output)"
fi
grep -E '^(Apply complete|terraform_data.ready \(local-exec\): kvdb:)' "$tflog" >&2 || true
URLS="$(node_urls)"
IFS=',' read -r -a U <<<"$URLS"
wait_healthy "${U[@]}"
RESP="$(resp_addrs)"
R=()
if [ -n "$RESP" ]; then
  IFS=',' read -r -a R <<<"$RESP"
  wait_resp "${R[@]}"
fi
leader=""
if [ "$CONFIG" != leaderless ]; then
  # Writes need an elected leader that has caught up (apply waits for one;
  # a re-apply that changed nothing does not, so check again).
  leader="$(wait_leader "${U[@]}")"
fi
log "deployed $CONFIG in $(( $(date +%s) - start ))s"
echo "config:    $CONFIG"
echo "nodes:     $URLS"
[ "${#R[@]}" -eq 0 ] || echo "resp:      $RESP (Redis protocol, node1..node5)"
# The RESP address of the node that leads now (node1 in leaderless: any
# node coordinates).
lead=0
if [ -n "$leader" ]; then
  echo "leader:    $leader (elected; a follower redirects writes there with 307: curl -L follows)"
  echo "try:       curl -L -X POST ${U[1]}/set -d '{\"key\":\"k\",\"value\":\"v\"}'; curl ${U[2]}/get/k"
  for i in "${!U[@]}"; do [ "${U[$i]}" = "$leader" ] && lead=$i; done
else
  echo "try:       curl -X POST ${U[0]}/set -d '{\"key\":\"k\",\"value\":\"v\"}'; curl ${U[1]}/get/k"
fi
if [ "${#R[@]}" -gt 0 ]; then
  # A write through the leader, a read through another node (a follower
  # would answer the write with READONLY naming the leader's address).
  other="${R[$(( (lead + 1) % ${#R[@]} ))]}"
  echo "redis-cli: redis-cli -h ${R[$lead]%:*} -p ${R[$lead]##*:} set k v; redis-cli -h ${other%:*} -p ${other##*:} get k"
fi
token="$(tf output -raw cluster_token 2>/dev/null || true)"
# A follower redirects PUT /config to the leader too; --location-trusted
# keeps the token across the redirect (-L drops it for another port).
[ -n "$token" ] && echo "W and R:   curl --location-trusted -X PUT ${U[0]}/config -H 'Authorization: Bearer $token' -d '{\"w\":3,\"r\":3}'"
