# Shared helpers of the deploy and run scripts; source it, don't run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$ROOT/terraform"
CONFIGS=(w5r1 w1r5 w3r3 leaderless)

# Terraform must not phone home for version checks; we work offline.
export CHECKPOINT_DISABLE=1
export TF_IN_AUTOMATION=1
export TF_INPUT=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

is_config() {
  local c
  for c in "${CONFIGS[@]}"; do [ "$c" = "$1" ] && return 0; done
  return 1
}

# tf runs terraform 1.5.7 (installed by terraform/install.sh on first use)
# in the terraform directory.
TF_BIN=""
tf() {
  if [ -z "$TF_BIN" ]; then
    TF_BIN="$("$TF_DIR/install.sh")" || die "could not install terraform (see terraform/install.sh)"
  fi
  "$TF_BIN" -chdir="$TF_DIR" "$@"
}

# tf_vars prints the -var arguments taken from the environment.
tf_vars() {
  local -a v=()
  [ -n "${DELAYS:-}" ] && v+=(-var "delays=$DELAYS")
  [ -n "${BASE_PORT:-}" ] && v+=(-var "base_port=$BASE_PORT")
  [ -n "${RESP_BASE_PORT:-}" ] && v+=(-var "resp_base_port=$RESP_BASE_PORT")
  [ -n "${NAME_PREFIX:-}" ] && v+=(-var "name_prefix=$NAME_PREFIX")
  [ -n "${IMAGE:-}" ] && v+=(-var "image=$IMAGE")
  [ -n "${REQUEST_TIMEOUT:-}" ] && v+=(-var "request_timeout=$REQUEST_TIMEOUT")
  [ -n "${PUBLIC_HOST:-}" ] && v+=(-var "public_host=$PUBLIC_HOST")
  [ -n "${ELECTION_HEARTBEAT:-}" ] && v+=(-var "election_heartbeat=$ELECTION_HEARTBEAT")
  [ -n "${ELECTION_TIMEOUT:-}" ] && v+=(-var "election_timeout=$ELECTION_TIMEOUT")
  [ -n "${LEADER_LEASE:-}" ] && v+=(-var "leader_lease=$LEADER_LEASE")
  [ -n "${LEADER_CATCHUP_WAIT:-}" ] && v+=(-var "leader_catchup_wait=$LEADER_CATCHUP_WAIT")
  [ -n "${KVDB_CLUSTER_TOKEN:-}" ] && export TF_VAR_cluster_token="$KVDB_CLUSTER_TOKEN"
  [ "${#v[@]}" -gt 0 ] && printf '%s\n' "${v[@]}"
  return 0
}

# node_urls prints the deployed node URLs, comma-separated, node1 first
# (node1 leads first in leader-follower configs; followers redirect writes to
# whichever node leads).
node_urls() {
  tf output -json node_urls | tr -d '[]" \n' | sed 's/,$//'
}

# resp_addrs prints the deployed nodes' published Redis-protocol (RESP)
# addresses, host:port, comma-separated, node1 first; nothing when the
# cluster has no RESP listeners (RESP_BASE_PORT=0: Terraform keeps no null
# output, so `terraform output` fails).
resp_addrs() {
  { tf output -json resp_addrs 2>/dev/null || true; } | tr -d '[]" \n' | sed -e 's/,$//' -e 's/^null$//'
}

# resp_ping HOST:PORT sends PING over the Redis protocol (bash's /dev/tcp:
# no redis-cli needed) and succeeds if +PONG comes back within 2 seconds.
resp_ping() {
  # The script runs in a child bash (so timeout bounds the connect too);
  # its $0 and $1 are the host and the port.
  # shellcheck disable=SC2016
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "*1\r\n\$4\r\nPING\r\n" >&3 && IFS= read -r line <&3 && [[ "$line" == "+PONG"* ]]' \
    "${1%:*}" "${1##*:}" 2>/dev/null
}

# wait_resp HOST:PORT... polls every address with resp_ping until each
# answers PONG, for at most ${HEALTH_TIMEOUT:-60} seconds.
wait_resp() {
  local deadline=$(( $(date +%s) + ${HEALTH_TIMEOUT:-60} )) a
  for a in "$@"; do
    until resp_ping "$a"; do
      [ "$(date +%s)" -lt "$deadline" ] || die "RESP at $a did not answer PING within ${HEALTH_TIMEOUT:-60}s"
      sleep 0.5
    done
  done
  log "RESP answers PING: $*"
}

# wait_healthy URL... polls GET /health on every URL until each answers 200,
# for at most ${HEALTH_TIMEOUT:-60} seconds.
wait_healthy() {
  local deadline=$(( $(date +%s) + ${HEALTH_TIMEOUT:-60} )) u
  for u in "$@"; do
    until curl -fsS -m 2 -o /dev/null "$u/health" 2>/dev/null; do
      [ "$(date +%s)" -lt "$deadline" ] || die "$u/health did not answer 200 within ${HEALTH_TIMEOUT:-60}s"
      sleep 0.5
    done
  done
  log "healthy: $*"
}

# wait_leader URL... polls GET /health on the URLs until one of them reports
# that it leads and accepts writes (role leader, not leader_catching_up), for
# at most ${HEALTH_TIMEOUT:-60} seconds, and prints that node's URL.
wait_leader() {
  local deadline=$(( $(date +%s) + ${HEALTH_TIMEOUT:-60} )) u h
  while :; do
    for u in "$@"; do
      h="$(curl -fsS -m 2 "$u/health" 2>/dev/null || true)"
      case "$h" in
        *'"leader_catching_up":true'*) ;;
        *'"role":"leader"'*) printf '%s\n' "$u"; return 0 ;;
      esac
    done
    [ "$(date +%s)" -lt "$deadline" ] || die "no node leads and accepts writes within ${HEALTH_TIMEOUT:-60}s"
    sleep 0.2
  done
}

# kvdb_bin builds bin/kvdb (once per script run) and prints its path.
KVDB_BIN=""
kvdb_bin() {
  if [ -z "$KVDB_BIN" ]; then
    make -s -C "$ROOT" build >&2 || die "make build failed"
    KVDB_BIN="$ROOT/bin/kvdb"
  fi
  printf '%s\n' "$KVDB_BIN"
}

# run_configs MODE CONFIG... deploys each config in turn, runs `kvdb load` at
# every write ratio against it, collects the results and node logs under
# $OUT, and builds the report if `kvdb report` exists. MODE is the load
# tester's -mode (leader or leaderless).
run_configs() {
  local mode="$1"; shift
  local duration="${DURATION:-60}" qps="${QPS:-20}" ratios="${RATIOS:-0.01 0.1 0.5 0.9}"
  local out="${OUT:-$ROOT/results/docker-$(date +%Y%m%d-%H%M%S)}"
  local kvdb failed=0 config ratio dir urls i
  command -v docker >/dev/null || die "docker is not on PATH"
  docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed)"
  command -v curl >/dev/null || die "curl is not on PATH"
  [[ "$duration" =~ ^[0-9]+$ ]] || die "DURATION must be whole seconds, got '$duration'"
  [[ "$qps" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "QPS must be a number, got '$qps'"
  for ratio in $ratios; do
    [[ "$ratio" =~ ^(0([.][0-9]+)?|1([.]0+)?)$ ]] || die "write ratios must be in 0..1, got '$ratio'"
  done
  kvdb="$(kvdb_bin)"
  "$kvdb" load -h >/dev/null 2>&1 || die "'kvdb load' is not available in this build (kvdb load -h failed)"
  for config in "$@"; do is_config "$config" || die "unknown config '$config' (want: ${CONFIGS[*]})"; done

  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  if [ "${KEEP:-0}" != 1 ]; then
    # shellcheck disable=SC2064
    trap "'$ROOT/scripts/cleanup.sh' || true" EXIT
  fi
  # The manifest `kvdb report` reads (experiment.json): configs in the
  # canonical order, including those an earlier run left in the same folder.
  local listed="" ratio_list="" c r
  for c in "${CONFIGS[@]}"; do
    if [ -d "$out/$c" ] || [[ " $* " == *" $c "* ]]; then listed="${listed:+$listed, }\"$c\""; fi
  done
  for r in $ratios; do ratio_list="${ratio_list:+$ratio_list, }$r"; done
  printf '{"started": "%s", "configs": [%s], "ratios": [%s], "delays": "%s", "duration_s": %s, "qps": %s}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$listed" "$ratio_list" "${DELAYS:-paper}" "$duration" "$qps" >"$out/experiment.json"
  log "results go to $out"

  for config in "$@"; do
    "$ROOT/scripts/deploy.sh" "$config" >&2
    urls="$(node_urls)"
    for ratio in $ratios; do
      dir="$out/$config/write-$ratio"
      mkdir -p "$dir"
      log "$config: kvdb load -mode $mode -write-ratio $ratio -duration $duration -qps $qps"
      if ! "$kvdb" load -mode "$mode" -write-ratio "$ratio" -duration "$duration" -qps "$qps" \
        -nodes "$urls" -out "$dir" >"$dir/load.log" 2>&1; then
        failed=$((failed + 1))
        log "$config write ratio $ratio: kvdb load failed (see $dir/load.log)"
        tail -n 5 "$dir/load.log" >&2 || true
      fi
    done
    # Node state and logs, for the record.
    mkdir -p "$out/$config/nodes"
    IFS=',' read -r -a U <<<"$urls"
    for i in "${!U[@]}"; do
      curl -fsS -m 5 "${U[$i]}/health" >"$out/$config/nodes/node$((i + 1)).health.json" 2>/dev/null || true
      curl -fsS -m 5 "${U[$i]}/metrics" >"$out/$config/nodes/node$((i + 1)).metrics.txt" 2>/dev/null || true
    done
    while IFS='=' read -r id name; do
      if [ -n "$id" ]; then docker logs "$name" >"$out/$config/nodes/$id.log" 2>&1 || true; fi
    done < <(tf output -json containers | tr -d '{}" \n' | tr ',' '\n' | sed 's/:/=/')
  done

  if "$kvdb" report -h >/dev/null 2>&1; then
    log "building the report: kvdb report $out"
    "$kvdb" report "$out" || { log "kvdb report failed"; failed=$((failed + 1)); }
  else
    log "kvdb report is not available in this build; skipping the report (results are in $out)"
  fi
  [ "$failed" -eq 0 ] || die "$failed step(s) failed; results in $out"
  log "done: $out"
}

# run_env_usage documents the environment the run scripts read.
run_env_usage() {
  cat >&2 <<USAGE
environment (all optional):
  DURATION=60                 seconds of load per write ratio
  QPS=20                      target request rate
  RATIOS="0.01 0.1 0.5 0.9"   write ratios
  OUT=results/docker-<time>   results folder
  DELAYS=paper                delay profile (paper, none, paper*0.1)
  BASE_PORT=8080              node1's host port (node2..5 follow)
  RESP_BASE_PORT=6379         node1's Redis-protocol host port (node2..5 follow; 0: none)
  and every other variable scripts/deploy.sh -h lists (election timings, ...)
  KEEP=1                      leave the last cluster running (default: clean up on exit)
USAGE
}
