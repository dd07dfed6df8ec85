#!/usr/bin/env bash
# bench-peers.sh — the peers `kvdb bench` compares kvdb with, on loopback only:
#   * Redis: one primary and 4 replicas (replicaof), no persistence
#     (--save '' --appendonly no);
#   * etcd: a 5-member cluster whose data directories live on a tmpfs.
#
# usage:
#   scripts/bench-peers.sh start [--dir DIR] [redis] [etcd]   (default: both)
#   scripts/bench-peers.sh stop  [--dir DIR]
#   scripts/bench-peers.sh status [--dir DIR]
#
# DIR holds the pid files, logs, ports and etcd's data; it must be on a
# tmpfs (default /dev/shm/kvdb-bench-peers, or $KVDB_PEERS_DIR). `start`
# prints the endpoints on stdout as KEY=VALUE lines (also saved in DIR/env):
#   REDIS_ADDRS=127.0.0.1:P1,...      (primary first)
#   ETCD_ENDPOINTS=http://127.0.0.1:C1,...
# Ports are free high ports picked at start ($KVDB_PEERS_BASE_PORT to start
# the search elsewhere). The packages redis-server and etcd-server are
# installed with apt-get when missing. `stop` kills only the processes whose
# pid files this script wrote (and only if they still are redis-server or
# etcd), removes DIR, and is safe to run twice.
set -euo pipefail

DIR="${KVDB_PEERS_DIR:-/dev/shm/kvdb-bench-peers}"
N=5

log() { printf '[bench-peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ensure_packages installs the Debian packages that provide the given
# commands; `apt-get update` only when a plain install fails.
ensure_packages() {
  local -a pkgs=()
  local want
  for want in "$@"; do
    case "$want" in
      redis) command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server) ;;
      etcd) command -v etcd >/dev/null || pkgs+=(etcd-server) ;;
    esac
  done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "need ${pkgs[*]} and there is no apt-get"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q "${pkgs[@]}" >&2; then
    log "install failed; running apt-get update once and retrying"
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q "${pkgs[@]}" >&2
  fi
}

# port_in_use reports whether something accepts connections on the port.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_ports COUNT sets PORTS to COUNT free loopback ports, none picked
# before in this run.
PICKED=" "
PORTS=()
pick_ports() {
  local p=$NEXT_PORT
  PORTS=()
  while [ ${#PORTS[@]} -lt "$1" ]; do
    [ "$p" -gt 65000 ] && die "no free ports left"
    if [[ "$PICKED" != *" $p "* ]] && ! port_in_use "$p"; then
      PORTS+=("$p")
      PICKED+="$p "
    fi
    p=$((p + 1))
  done
  NEXT_PORT=$p
}

# alive PIDFILE NAME: the pid in PIDFILE runs a process whose command is NAME.
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$what not ready after ${secs}s (logs in $DIR)"
}

# etcd_healthy PORT: GET /health answers {"health":"true"} (bash only, no
# curl; a subshell, so that a refused connection cannot end the script).
etcd_healthy() (
  exec 4<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&4
  reply=$(timeout 2 cat <&4 || true)
  [[ "$reply" == *'"health":"true"'* ]]
)

# started PIDFILE NAME: the process just started is running as NAME.
started() {
  sleep 0.05
  alive "$1" "$2" || die "$2 exited at start (pid file $1; logs in $DIR)"
}

redis_replicas_up() {
  [ "$(redis-cli -h 127.0.0.1 -p "$1" info replication | tr -d '\r' | grep -c '^slave[0-9]*:.*state=online')" -ge $((N - 1)) ]
}

start_redis() {
  pick_ports $N
  local -a ports=("${PORTS[@]}")
  mkdir -p "$DIR/redis"
  local i port
  for i in "${!ports[@]}"; do
    port=${ports[$i]}
    local -a args=(--port "$port" --bind 127.0.0.1 --protected-mode yes
      --save '' --appendonly no --dir "$DIR/redis" --dbfilename "dump-$port.rdb"
      --daemonize no --logfile "$DIR/redis/redis-$port.log")
    [ "$i" -gt 0 ] && args+=(--replicaof 127.0.0.1 "${ports[0]}")
    setsid redis-server "${args[@]}" </dev/null >/dev/null 2>&1 &
    echo $! >"$DIR/redis/redis-$port.pid"
    started "$DIR/redis/redis-$port.pid" redis-server
    wait_for 10 "redis on port $port" redis-cli -h 127.0.0.1 -p "$port" ping
  done
  wait_for 30 "redis replication (4 replicas online)" redis_replicas_up "${ports[0]}"
  REDIS_ADDRS=$(printf '127.0.0.1:%s,' "${ports[@]}")
  REDIS_ADDRS=${REDIS_ADDRS%,}
  log "redis: primary 127.0.0.1:${ports[0]}, replicas on ${ports[*]:1}"
}

start_etcd() {
  pick_ports $N
  local -a client=("${PORTS[@]}")
  pick_ports $N
  local -a peer=("${PORTS[@]}")
  mkdir -p "$DIR/etcd"
  local fs
  fs=$(stat -f -c %T "$DIR/etcd")
  [ "$fs" = tmpfs ] || log "warning: $DIR is on $fs, not tmpfs: etcd's fsyncs will hit a disk"
  local i cluster=""
  for i in $(seq 0 $((N - 1))); do
    cluster+="m$((i + 1))=http://127.0.0.1:${peer[$i]},"
  done
  cluster=${cluster%,}
  local token="kvdb-bench-$$-$RANDOM"
  for i in $(seq 0 $((N - 1))); do
    local name="m$((i + 1))"
    setsid etcd --name "$name" --data-dir "$DIR/etcd/$name" \
      --listen-client-urls "http://127.0.0.1:${client[$i]}" \
      --advertise-client-urls "http://127.0.0.1:${client[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer[$i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${peer[$i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "$token" \
      --logger zap --log-level warn --log-outputs stderr \
      </dev/null >"$DIR/etcd/$name.log" 2>&1 &
    echo $! >"$DIR/etcd/$name.pid"
    started "$DIR/etcd/$name.pid" etcd
  done
  for i in $(seq 0 $((N - 1))); do
    wait_for 30 "etcd member m$((i + 1))" etcd_healthy "${client[$i]}"
  done
  ETCD_ENDPOINTS=$(printf 'http://127.0.0.1:%s,' "${client[@]}")
  ETCD_ENDPOINTS=${ETCD_ENDPOINTS%,}
  log "etcd: 5 members, clients on ${client[*]}, data in $DIR/etcd (tmpfs)"
}

# stop_all kills what this script started in DIR, by pid file only.
stop_all() {
  [ -d "$DIR" ] || { log "nothing to stop in $DIR"; return 0; }
  local f name pid
  local -a pids=()
  for f in "$DIR"/redis/*.pid "$DIR"/etcd/*.pid; do
    [ -e "$f" ] || continue
    case "$f" in */redis/*) name=redis-server ;; *) name=etcd ;; esac
    if alive "$f" "$name"; then
      pid=$(cat "$f")
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$f"
  done
  local i
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  [ ${#pids[@]} -gt 0 ] && log "stopped ${#pids[@]} processes"
  rm -rf "$DIR"
}

# on_start_exit stops what a failed start left behind.
on_start_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || stop_all
  exit "$rc"
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
want=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    redis | etcd) want+=("$1"); shift ;;
    -h | --help) usage ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
[ ${#want[@]} -gt 0 ] || want=(redis etcd)

case "$cmd" in
  start)
    if [ -d "$DIR" ] && compgen -G "$DIR/*/*.pid" >/dev/null; then
      die "$DIR holds a running set of peers; run '$0 stop --dir $DIR' first"
    fi
    ensure_packages "${want[@]}"
    mkdir -p "$DIR"
    NEXT_PORT=${KVDB_PEERS_BASE_PORT:-$((20000 + RANDOM % 20000))}
    REDIS_ADDRS="" ETCD_ENDPOINTS=""
    # On any failure, stop what was started.
    trap on_start_exit EXIT
    for w in "${want[@]}"; do
      case "$w" in
        redis) start_redis ;;
        etcd) start_etcd ;;
      esac
    done
    trap - EXIT
    {
      [ -n "$REDIS_ADDRS" ] && echo "REDIS_ADDRS=$REDIS_ADDRS"
      [ -n "$ETCD_ENDPOINTS" ] && echo "ETCD_ENDPOINTS=$ETCD_ENDPOINTS"
      true
    } | tee "$DIR/env"
    ;;
  stop) stop_all ;;
  status)
    [ -d "$DIR" ] || { echo "no peers in $DIR"; exit 0; }
    for f in "$DIR"/redis/*.pid "$DIR"/etcd/*.pid; do
      [ -e "$f" ] || continue
      case "$f" in */redis/*) name=redis-server ;; *) name=etcd ;; esac
      if alive "$f" "$name"; then echo "running: $(basename "$f" .pid) pid $(cat "$f")"; else echo "dead: $(basename "$f" .pid)"; fi
    done
    [ -f "$DIR/env" ] && cat "$DIR/env"
    ;;
  *) usage ;;
esac
