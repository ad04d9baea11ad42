# shellcheck shell=bash
# topology.sh: production Redis topologies for the tests of issue 9, all
# on 127.0.0.1 with free TCP ports and private temp dirs:
#
#   start_sentinel_set   1 master + 2 replicas + 3 sentinels (quorum 2)
#   start_cluster        3 masters + 3 replicas (redis-cli --cluster create)
#
# plus helpers to break them (SIGSTOP, SIGKILL, failover, moving a slot),
# to watch them recover, to mount redisfs on them, and what the cluster
# cases share (pick_tag, fsck_clean, same_tree, records). A case sources it:
#
#   . "$(dirname "$0")/topology.sh"
#
# and gets a temp dir $T. Every process it starts (servers, sentinels,
# redisfs daemons, background jobs given to track_job) is recorded; the EXIT
# trap stops them all (SIGCONT first, for a stopped one), unmounts what was
# mounted and removes $T, pass or fail. Only recorded pids are ever signalled.
#
# Exit codes: 0 pass, 1 fail, 77 skipped (tests/common.sh). Run on its own
# (bash tests/prod/topology.sh [sentinel|cluster]) it checks itself: the
# topologies come up, fail over, move a slot and go away without a leftover.
TOPO_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/common.sh
. "$TOPO_HERE/../common.sh"

need_tools redis-server redis-cli python3
# sentinel resolve-hostnames needs 6.2; shutdown-timeout and
# enable-debug-command are 7.0's (left out before)
REDIS_VERSION=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r REDIS_MAJOR REDIS_MINOR <<<"${REDIS_VERSION:-0 0}"
((REDIS_MAJOR * 100 + REDIS_MINOR >= 602)) || skip "redis-server ${REDIS_MAJOR}.${REDIS_MINOR} is older than 6.2"

# the environment must not pick another server, filesystem or password
unset REDISFS_URL REDISFS_PREFIX REDISFS_PASSWORD

T=$(mktemp -d /tmp/redisfs-prod.XXXXXX)
route_sanitizer_reports
chmod 0755 "$T"
: >"$T/ports"               # every port handed out (shared with subshells)

declare -A NODE_PID=()      # port -> pid of the redis-server (or sentinel) on it
declare -A NODE_CONF=()     # port -> its config file (for restart_node)
declare -A NODE_ARGS=()     # port -> extra command-line arguments it started with
declare -A NODE_ENV=()      # port -> NAME=VALUE words its process starts with (env(1))
declare -A STOPPED=()       # port -> 1 while SIGSTOPped (never talk to it then)
ALL_PIDS=()                 # every server pid ever started, for the EXIT trap
JOB_PIDS=()                 # background jobs of the case (writers...)
DAEMON_PID=                # daemon of the last mount_at (for a case to signal)

now() { date +%s.%N; }

# "${ORPHAN_GUARD[@]}" COMMAND... &: COMMAND is SIGKILLed if this shell
# dies without running its EXIT trap (SIGKILL, a crash): never a server left
# behind. setpriv execs it, so $! is still COMMAND's pid.
ORPHAN_GUARD=()
if command -v setpriv >/dev/null && setpriv --pdeathsig KILL true 2>/dev/null; then
  ORPHAN_GUARD=(setpriv --pdeathsig KILL)
fi

since() {  # T0 (from now): seconds elapsed, one decimal
  awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# ------------------------------------------------------------------ ports

_port_free() {  # PORT: nothing listens on it and we can bind it on 127.0.0.1
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# free_port [--cluster]: prints a TCP port free on 127.0.0.1 and never
# handed out before by this case (with --cluster, port + 10000, the
# cluster bus, is free too).
free_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 35000))
    grep -qx "$p" "$T/ports" && continue
    [[ ${1:-} == --cluster ]] && grep -qx "$((p + 10000))" "$T/ports" && continue
    _port_free "$p" || continue
    if [[ ${1:-} == --cluster ]]; then
      _port_free "$((p + 10000))" || continue
      echo "$((p + 10000))" >>"$T/ports"
    fi
    echo "$p" >>"$T/ports"
    echo "$p"
    return 0
  done
  fail "no free TCP port found"
}

# ------------------------------------------------------------------ processes

rc_at() {  # PORT ARGS...: redis-cli on 127.0.0.1:PORT (never on a stopped one)
  local port=$1
  shift
  [[ -z ${STOPPED[$port]:-} ]] || fail "rc_at: $port is stopped (SIGSTOP); not talking to it"
  redis-cli -h 127.0.0.1 -p "$port" "$@"
}

alive() {  # PORT: its process runs (stopped counts as running)
  local pid=${NODE_PID[$1]:-}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# answers PORT: alive, not stopped, and replies PONG
answers() {
  alive "$1" && [[ -z ${STOPPED[$1]:-} ]] &&
    [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

# _launch PORT: starts the server of NODE_CONF[PORT] in the background and
# waits for PONG. Returns 1 (the process gone) when the port was taken in
# the meantime, fails the case on any other trouble.
_launch() {
  local port=$1 conf=${NODE_CONF[$1]} dir pid i
  dir=$(dirname "$conf")
  # shellcheck disable=SC2086
  ${ORPHAN_GUARD[@]+"${ORPHAN_GUARD[@]}"} env ${NODE_ENV[$port]:-} redis-server "$conf" ${NODE_ARGS[$port]} \
    >>"$dir/stdout" 2>&1 &
  pid=$!
  disown "$pid"  # no job notices ("Killed") when a test SIGKILLs it
  NODE_PID[$port]=$pid
  ALL_PIDS+=("$pid")
  unset "STOPPED[$port]"
  for ((i = 0; i < 400; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -qi 'address already in use' "$dir/stdout" "$dir"/*.log 2>/dev/null; then
        return 1
      fi
      fail "redis-server on $port exited at once: $(tail -5 "$dir/stdout" "$dir"/*.log 2>/dev/null)"
    fi
    if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
      return 0
    fi
    sleep 0.05
  done
  fail "redis-server on $port does not answer after 20 s: $(tail -5 "$dir"/*.log 2>/dev/null)"
}

# start_node NAME KIND [CONFIG-LINE...]: a redis-server (KIND data or
# cluster) or sentinel (KIND sentinel) on a free port, config in
# $T/NAME/redis.conf; sets NODE_PORT. The config lines come last, so they
# override the defaults. Retries on another port if the one picked was
# taken before the server bound it. START_ENV (NAME=VALUE words) is the
# process's environment beyond the test's (kept for restart_node).
NODE_PORT=
start_node() {
  local name=$1 kind=$2 dir=$T/$1 conf attempt port
  shift 2
  mkdir -p "$dir"
  conf=$dir/redis.conf
  for ((attempt = 0; attempt < 5; attempt++)); do
    if [[ $kind == cluster ]]; then port=$(free_port --cluster); else port=$(free_port); fi
    rm -f "$dir"/*.log "$dir/stdout"
    {
      echo "port $port"
      echo "bind 127.0.0.1"
      echo "dir $dir"
      echo "logfile $dir/$kind.log"
      echo "daemonize no"
      if [[ $kind != sentinel ]]; then
        echo "appendonly yes"
        echo "appendfsync everysec"
        echo "save \"\""
        # small footprint: 12 servers on a 2-core CI box; noeviction, as
        # redisfs demands
        echo "maxmemory 256mb"
        echo "maxmemory-policy noeviction"
        echo "repl-diskless-sync yes"
        echo "repl-diskless-sync-delay 0"
        echo "repl-backlog-size 8mb"
        if ((REDIS_MAJOR >= 7)); then
          echo "shutdown-timeout 1"
          echo "enable-debug-command local"
        fi
        if [[ $kind == cluster ]]; then
          echo "cluster-enabled yes"
          echo "cluster-config-file $dir/nodes.conf"
          echo "cluster-node-timeout 2000"
        fi
      fi
      local line
      for line in "$@"; do echo "$line"; done
    } >"$conf"
    NODE_CONF[$port]=$conf
    NODE_ARGS[$port]=
    NODE_ENV[$port]=${START_ENV:-}
    [[ $kind != sentinel ]] || NODE_ARGS[$port]=--sentinel
    if _launch "$port"; then
      NODE_PORT=$port
      echo "$port" >"$dir/port"
      return 0
    fi
    unset "NODE_CONF[$port]" "NODE_PID[$port]" "NODE_ENV[$port]"
    echo "note: port $port was taken under us; trying another" >&2
  done
  fail "could not start $name: every port tried was taken"
}

# restart_node PORT [ARG...]: starts the server that ran on PORT again (same
# config and data dir: its AOF, its nodes.conf), with extra arguments such
# as --replicaof 127.0.0.1 P.
restart_node() {
  local port=$1
  shift
  ! alive "$port" || fail "restart_node: $port still runs"
  NODE_ARGS[$port]="$*"
  [[ ${NODE_CONF[$port]} != */sentinel*/* ]] || NODE_ARGS[$port]="--sentinel $*"
  _launch "$port" || fail "restart_node: port $port was taken while the server was down"
}

stop_node() {  # PORT: SIGSTOP (the process hangs, its sockets stay open)
  kill -STOP "${NODE_PID[$1]}"
  STOPPED[$1]=1
}

cont_node() {  # PORT: SIGCONT
  kill -CONT "${NODE_PID[$1]}"
  unset "STOPPED[$1]"
}

kill_node() {  # PORT: SIGKILL, and waits for the process to be gone
  local pid=${NODE_PID[$1]}
  kill -CONT "$pid" 2>/dev/null || true
  kill -KILL "$pid"
  wait_gone "$pid" 10 || fail "redis-server $pid on $1 survives SIGKILL"
  unset "STOPPED[$1]"
}

# track_job PID: a background job of the case, killed by the EXIT trap.
track_job() {
  JOB_PIDS+=("$1")
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND (every 0.1 s) until it
# succeeds; fails the case saying WHAT when it never does. A guard against
# hanging forever, not a timing assertion. WAIT_EXPLAIN (a command, set for
# the call) says what the topology looked like when it gave up: a failure
# of Redis's own failover seen once in CI must say what happened.
wait_for() {
  local secs=$1 what=$2 i state=""
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  [[ -z ${WAIT_EXPLAIN:-} ]] || state="; then: $({ $WAIT_EXPLAIN || true; } 2>&1 | paste -sd' ')"
  fail "$what (still not true after $secs s)$state"
}

# ------------------------------------------------------------------ replication

role_of() {  # PORT: master or slave
  rc_at "$1" role | sed -n 1p  # not head: it would leave early, a SIGPIPE under pipefail
}

# replica_synced PORT: a replica whose link to its master is up
replica_synced() {
  local info
  info=$(rc_at "$1" info replication | tr -d '\r')
  [[ $info == *role:slave* && $info == *master_link_status:up* && $info != *master_sync_in_progress:1* ]]
}

master_port_of_replica() {  # PORT
  rc_at "$1" info replication | tr -d '\r' | sed -n 's/^master_port://p'
}

# online_replicas PORT: number of replicas the master sees online
online_replicas() {
  rc_at "$1" info replication | tr -d '\r' | grep -c '^slave[0-9]*:.*state=online' || true
}

# ------------------------------------------------------------------ sentinel

SENTINEL_MASTER_NAME=
SENTINEL_PORTS=()
SENTINEL_DATA_PORTS=()

sentinel_cli() {  # SENTINEL-PORT ARGS...
  rc_at "$1" sentinel "${@:2}"
}

# sentinel_master_port [SENTINEL-PORT]: the master's port as that sentinel
# (default: the first one that answers) sees it.
sentinel_master_port() {
  local s
  for s in "${1:-}" "${SENTINEL_PORTS[@]}"; do
    [[ -n $s ]] && answers "$s" || continue
    sentinel_cli "$s" get-master-addr-by-name "$SENTINEL_MASTER_NAME" | sed -n 2p
    return 0
  done
  return 1
}

# _sentinel_field SENTINEL-PORT FIELD: a field of SENTINEL MASTER
_sentinel_field() {
  sentinel_cli "$1" master "$SENTINEL_MASTER_NAME" | awk -v f="$2" 'prev == f && !n++ { print } { prev = $0 }'
}

# sentinels_agree MASTER-PORT REPLICAS: every live sentinel names
# MASTER-PORT as the master, with flags just "master" (no failover going
# on), sees the 2 other sentinels, and at least REPLICAS replicas in good
# health; the master itself says so (ROLE) and has them online.
sentinels_agree() {
  local want=$1 replicas=$2 s addr ok
  [[ -z ${STOPPED[$want]:-} ]] && answers "$want" || return 1
  [[ $(role_of "$want") == master ]] || return 1
  (($(online_replicas "$want") >= replicas)) || return 1
  for s in "${SENTINEL_PORTS[@]}"; do
    alive "$s" || continue
    addr=$(sentinel_cli "$s" get-master-addr-by-name "$SENTINEL_MASTER_NAME" | paste -sd:)
    [[ $addr == "127.0.0.1:$want" ]] || return 1
    [[ $(_sentinel_field "$s" flags) == master ]] || return 1
    [[ $(_sentinel_field "$s" num-other-sentinels) == 2 ]] || return 1
    ok=$(sentinel_cli "$s" replicas "$SENTINEL_MASTER_NAME" |
      awk 'prev == "flags" && $0 == "slave" { n++ } { prev = $0 } END { print n + 0 }')
    ((ok >= replicas)) || return 1
  done
}

# start_sentinel_set [NAME]: 1 master + 2 replicas (appendonly) and 3
# sentinels watching them (quorum 2, down after 1 s). Exports
# SENTINEL_MASTER_NAME, SENTINEL_MASTER_PORT (the first master),
# SENTINEL_REPLICA_PORTS, SENTINEL_DATA_PORTS (all three), SENTINEL_PORTS,
# SENTINEL_ADDRS (host:port,... for --sentinel) and SENTINEL_URL
# (redis-sentinel://...). Returns once the sentinels agree.
start_sentinel_set() {
  SENTINEL_MASTER_NAME=${1:-redisfs-master}
  local m r i s
  start_node data-m data
  m=$NODE_PORT
  SENTINEL_DATA_PORTS=("$m")
  SENTINEL_REPLICA_PORTS=()
  for i in 1 2; do
    start_node "data-r$i" data "replicaof 127.0.0.1 $m"
    SENTINEL_DATA_PORTS+=("$NODE_PORT")
    SENTINEL_REPLICA_PORTS+=("$NODE_PORT")
  done
  for r in "${SENTINEL_REPLICA_PORTS[@]}"; do
    wait_for 30 "replica $r does not sync with $m" replica_synced "$r"
  done
  SENTINEL_PORTS=()
  for i in 1 2 3; do
    start_node "sentinel$i" sentinel \
      "sentinel resolve-hostnames no" \
      "sentinel announce-hostnames no" \
      "sentinel monitor $SENTINEL_MASTER_NAME 127.0.0.1 $m 2" \
      "sentinel down-after-milliseconds $SENTINEL_MASTER_NAME 1000" \
      "sentinel failover-timeout $SENTINEL_MASTER_NAME 4000" \
      "sentinel parallel-syncs $SENTINEL_MASTER_NAME 2"
    SENTINEL_PORTS+=("$NODE_PORT")
  done
  SENTINEL_MASTER_PORT=$m
  SENTINEL_ADDRS=
  for s in "${SENTINEL_PORTS[@]}"; do
    SENTINEL_ADDRS+=${SENTINEL_ADDRS:+,}127.0.0.1:$s
  done
  SENTINEL_URL=redis-sentinel://$SENTINEL_ADDRS/$SENTINEL_MASTER_NAME
  export SENTINEL_MASTER_NAME SENTINEL_MASTER_PORT SENTINEL_ADDRS SENTINEL_URL
  export SENTINEL_PORT1=${SENTINEL_PORTS[0]} SENTINEL_PORT2=${SENTINEL_PORTS[1]} SENTINEL_PORT3=${SENTINEL_PORTS[2]}
  wait_for 60 "the sentinels do not agree on master $m with 2 replicas and 3 sentinels" sentinels_agree "$m" 2
}

# sentinel_wait_failover OLD-MASTER-PORT [SECONDS]: waits until every live
# sentinel names one new master, which says it is a master; sets
# NEW_MASTER_PORT.
NEW_MASTER_PORT=
_failed_over() {
  local old=$1 s p first=""
  for s in "${SENTINEL_PORTS[@]}"; do
    alive "$s" || continue
    p=$(sentinel_cli "$s" get-master-addr-by-name "$SENTINEL_MASTER_NAME" | sed -n 2p)
    [[ -n $p && $p != "$old" ]] || return 1
    [[ -z $first || $first == "$p" ]] || return 1
    first=$p
  done
  [[ -n $first && -z ${STOPPED[$first]:-} ]] && answers "$first" && [[ $(role_of "$first") == master ]] || return 1
  NEW_MASTER_PORT=$first
}
sentinel_wait_failover() {
  wait_for "${2:-60}" "the sentinels did not fail over from $1" _failed_over "$1"
}

# ------------------------------------------------------------------ cluster

CLUSTER_PORTS=()
CLUSTER_MASTERS=()
CLUSTER_REPLICAS=()

# any_cluster_port: a node that answers (to ask about the cluster)
any_cluster_port() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    if answers "$p"; then
      echo "$p"
      return 0
    fi
  done
  fail "no cluster node answers"
}

# cluster_nodes [PORT]: CLUSTER NODES as PORT (default: any node) sees it
cluster_nodes() {
  rc_at "${1:-$(any_cluster_port)}" cluster nodes
}

# _slot_map [PORT]: "port first-last config-epoch" per slot range served by
# a master that is not failed, sorted: PORT's view of who serves what.
# (Readers of a pipe here read it to the end, never exit early: the writer
# would die of SIGPIPE, a failure under pipefail.)
_slot_map() {
  cluster_nodes "$@" | awk '
    $3 ~ /master/ && $3 !~ /fail/ {
      split($2, a, "[:@]"); port = a[2]
      for (i = 9; i <= NF; i++) {
        if ($i ~ /^\[/) continue
        n = split($i, r, "-"); print port, r[1] "-" (n > 1 ? r[2] : r[1]), $7
      }
    }' | sort
}

# master_of_slot SLOT [PORT]: port of the master serving SLOT
master_of_slot() {
  local slot=$1
  _slot_map "${@:2}" | awk -v s="$slot" '{ split($2, r, "-"); if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0 && !n++) print $1 }'
}

slot_of() {  # KEY: CLUSTER KEYSLOT
  rc_at "$(any_cluster_port)" cluster keyslot "$1"
}

node_id() {  # PORT
  rc_at "$1" cluster myid
}

# node_for_slot SLOT: node id of the master serving SLOT
node_for_slot() {
  node_id "$(master_of_slot "$1")"
}

master_of_key() {  # KEY: port of the master its slot lives on
  master_of_slot "$(slot_of "$1")"
}

# masters_now: ports of the masters serving slots, one a line
masters_now() {
  _slot_map | awk '{ print $1 }' | sort -u
}

# replica_of MASTER-PORT: port of a replica the master sees online (its
# own INFO replication: gossip may not have told the other nodes yet)
replica_of() {
  rc_at "$1" info replication | tr -d '\r' |
    sed -n 's/^slave[0-9]*:ip=[^,]*,port=\([0-9]*\),state=online.*/\1/p' | sed -n 1p
}

# other_master SLOT: a master that does not serve SLOT
other_master() {
  local owner
  owner=$(master_of_slot "$1")
  masters_now | grep -vx "$owner" | sed -n 1p
}

# cluster_agrees: every live node says cluster_state:ok, all 16384 slots
# served, and every node has the same slot map (no migration left open).
cluster_agrees() {
  local p ref="" map info
  for p in "${CLUSTER_PORTS[@]}"; do
    alive "$p" && [[ -z ${STOPPED[$p]:-} ]] || continue
    info=$(rc_at "$p" cluster info | tr -d '\r')
    [[ $info == *cluster_state:ok* && $info == *cluster_slots_ok:16384* ]] || return 1
    map=$(_slot_map "$p")
    if [[ -z $ref ]]; then
      ref=$map
    else
      [[ $map == "$ref" ]] || return 1
    fi
    [[ $(cluster_nodes "$p") != *'['* ]] || return 1  # no slot left importing/migrating
  done
  [[ -n $ref ]]
}

# replicas_synced: every live replica of the cluster has its link up
replicas_synced() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    alive "$p" && [[ -z ${STOPPED[$p]:-} ]] || continue
    [[ $(role_of "$p") == master ]] || replica_synced "$p" || return 1
  done
}

# start_cluster: 6 nodes, created by redis-cli --cluster create with one
# replica per master; returns once every node is ok and agrees. Exports
# CLUSTER_PORTS (all), CLUSTER_MASTERS, CLUSTER_REPLICAS (ports at start)
# and CLUSTER_URL (redis://127.0.0.1:<first master>). CLUSTER_NODE_ENV[i]
# (i 1..6): the START_ENV of node i (cluster1, ...; the first three are
# made masters).
declare -a CLUSTER_NODE_ENV=()
start_cluster() {
  local i addrs=()
  CLUSTER_PORTS=()
  for i in 1 2 3 4 5 6; do
    START_ENV=${CLUSTER_NODE_ENV[$i]:-} start_node "cluster$i" cluster
    CLUSTER_PORTS+=("$NODE_PORT")
    addrs+=("127.0.0.1:$NODE_PORT")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$T/cluster-create.log" 2>&1 ||
    fail "redis-cli --cluster create failed: $(tail -5 "$T/cluster-create.log")"
  wait_for 60 "the cluster does not reach cluster_state:ok on every node" cluster_agrees
  wait_for 60 "the cluster's replicas do not sync" replicas_synced
  mapfile -t CLUSTER_MASTERS < <(masters_now)
  CLUSTER_REPLICAS=()
  for i in "${CLUSTER_PORTS[@]}"; do
    [[ $(role_of "$i") == master ]] || CLUSTER_REPLICAS+=("$i")
  done
  ((${#CLUSTER_MASTERS[@]} == 3 && ${#CLUSTER_REPLICAS[@]} == 3)) ||
    fail "expected 3 masters and 3 replicas, got masters ${CLUSTER_MASTERS[*]}, replicas ${CLUSTER_REPLICAS[*]}"
  CLUSTER_URL=redis://127.0.0.1:${CLUSTER_MASTERS[0]}
  export CLUSTER_URL
}

# reshard_slot SLOT DST-PORT: moves one slot, with its keys, from its master
# to the master on DST-PORT, as redis-cli --cluster reshard would, but for
# that slot: SETSLOT IMPORTING/MIGRATING, MIGRATE ... KEYS in batches until
# the source holds none, SETSLOT NODE on the destination, the source and the
# other masters. BATCH keys a MIGRATE (default 100), PAUSE seconds between
# two (default 0: a test may stretch the migration so that clients meet
# ASK and TRYAGAIN). Sets MOVED_KEYS.
MOVED_KEYS=0
reshard_slot() {
  local slot=$1 dst=$2 batch=${3:-100} pause=${4:-0} src src_id dst_id keys m out
  src=$(master_of_slot "$slot")
  [[ -n $src ]] || fail "reshard_slot: nobody serves slot $slot"
  [[ $src != "$dst" ]] || fail "reshard_slot: $dst already serves slot $slot"
  src_id=$(node_id "$src")
  dst_id=$(node_id "$dst")
  [[ $(rc_at "$dst" cluster setslot "$slot" importing "$src_id") == OK ]] || fail "SETSLOT IMPORTING on $dst"
  [[ $(rc_at "$src" cluster setslot "$slot" migrating "$dst_id") == OK ]] || fail "SETSLOT MIGRATING on $src"
  MOVED_KEYS=0
  while :; do
    mapfile -t keys < <(rc_at "$src" cluster getkeysinslot "$slot" "$batch")
    ((${#keys[@]} > 0)) && [[ -n ${keys[0]} ]] || break
    out=$(rc_at "$src" migrate 127.0.0.1 "$dst" "" 0 10000 keys "${keys[@]}" 2>&1)
    [[ $out == OK || $out == NOKEY ]] || fail "MIGRATE of ${#keys[@]} keys of slot $slot from $src to $dst: $out"
    MOVED_KEYS=$((MOVED_KEYS + ${#keys[@]}))
    [[ $pause == 0 ]] || sleep "$pause"
  done
  [[ $(rc_at "$dst" cluster setslot "$slot" node "$dst_id") == OK ]] || fail "SETSLOT NODE on $dst"
  [[ $(rc_at "$src" cluster setslot "$slot" node "$dst_id") == OK ]] || fail "SETSLOT NODE on $src"
  for m in $(masters_now); do
    [[ $m == "$src" || $m == "$dst" ]] && continue
    rc_at "$m" cluster setslot "$slot" node "$dst_id" >/dev/null
  done
  wait_for 30 "the cluster does not agree after moving slot $slot to $dst" cluster_agrees
  [[ $(master_of_slot "$slot") == "$dst" ]] || fail "slot $slot is served by $(master_of_slot "$slot"), not $dst"
}

# cluster_failover MASTER-PORT: graceful failover (CLUSTER FAILOVER on its
# replica); waits until the replica serves the slots and everyone agrees.
# Sets NEW_MASTER_PORT.
cluster_failover() {
  local old=$1 rep slot
  rep=$(replica_of "$old")
  [[ -n $rep ]] || fail "cluster_failover: $old has no replica"
  slot=$(_slot_map | awk -v p="$old" '$1 == p && !n++ { split($2, r, "-"); print r[1] }')
  # a manual failover that cannot finish (an election lost to a vote
  # given just before, ...) gives up after 5 s: ask again
  local attempt i
  for ((attempt = 1; ; attempt++)); do
    [[ $(rc_at "$rep" cluster failover) == OK ]] || fail "CLUSTER FAILOVER on $rep"
    for ((i = 0; i < 150; i++)); do
      _serves "$rep" "$slot" && break 2
      sleep 0.1
    done
    ((attempt < 4)) || fail "replica $rep did not take over from $old after $attempt CLUSTER FAILOVERs"
    echo "note: CLUSTER FAILOVER on $rep did not complete in 15 s; again" >&2
  done
  wait_for 30 "the cluster does not agree after the failover to $rep" cluster_agrees
  wait_for 30 "$old does not become a replica of $rep" _replica_of_port "$old" "$rep"
  NEW_MASTER_PORT=$rep
}

_serves() {  # PORT SLOT
  [[ $(role_of "$1") == master && $(master_of_slot "$2" "$1") == "$1" ]]
}

_replica_of_port() {  # PORT MASTER-PORT: PORT replicates MASTER-PORT with its link up
  [[ $(role_of "$1") == slave && $(master_port_of_replica "$1") == "$2" ]] && replica_synced "$1"
}

# replication_state PORT...: each node's role, its master and link (INFO
# replication), and the master each live sentinel names: for a failure
# message.
replication_state() {
  local p s
  for p in "$@"; do
    if [[ -n ${STOPPED[$p]:-} ]]; then
      echo "$p: stopped (SIGSTOP)"
    elif answers "$p"; then
      echo "$p: $(rc_at "$p" info replication | tr -d '\r' |
        grep -E '^(role|master_port|master_link_status|master_sync_in_progress|connected_slaves):' | paste -sd,)"
    else
      echo "$p: not answering"
    fi
  done
  for s in "${SENTINEL_PORTS[@]}"; do
    if answers "$s"; then
      echo "sentinel $s names $(sentinel_cli "$s" get-master-addr-by-name "$SENTINEL_MASTER_NAME" | paste -sd:)"
    fi
  done
}

# cluster_kill_master MASTER-PORT: SIGKILL; waits until its replica has been
# elected and every live node agrees. Sets NEW_MASTER_PORT. The dead node
# stays down (restart_node brings it back, as a replica of the new master).
cluster_kill_master() {
  local old=$1 rep slot
  rep=$(replica_of "$old")
  [[ -n $rep ]] || fail "cluster_kill_master: $old has no replica"
  slot=$(_slot_map | awk -v p="$old" '$1 == p && !n++ { split($2, r, "-"); print r[1] }')
  kill_node "$old"
  wait_for 60 "replica $rep was not elected after $old was killed" _serves "$rep" "$slot"
  wait_for 60 "the cluster does not agree after $old was killed" cluster_agrees
  NEW_MASTER_PORT=$rep
}

# ------------------------------------------------------------------ cluster cases

MANIFEST=$TOPO_HERE/../mount/manifest.py

# no_temp_keys [WHAT]: no staging prefix (a '~' in its name) left on any
# master of the cluster; WHAT (the command) names the culprit otherwise.
no_temp_keys() {
  local m left
  for m in $(masters_now); do
    left=$(rc_at "$m" --scan --pattern '*~*' | { grep -v '^redisfs~FILESYSTEMS$' || true; })
    [[ -z $left ]] || fail "${1:-a tool} left keys behind on $m: $(head -5 <<<"$left")"
  done
}

# pick_tag BASE EXCLUDED-MASTER...: BASE, or BASE-a, BASE-b... : the first
# tag whose slot is served by none of the excluded masters.
pick_tag() {
  local base=$1 tag s m x
  shift
  for s in "" a b c d e f g h i j k l m n o p q r s t u v w x y z; do
    tag=$base${s:+-$s}
    m=$(master_of_key "{$tag}")
    for x in "$@"; do
      [[ $m != "$x" ]] || continue 2
    done
    echo "$tag"
    return 0
  done
  fail "no tag $base* hashes away from masters $*"
}

# fsck_clean PREFIX...: redisfs-snap fsck (the case's snap()) finds nothing
fsck_clean() {
  local p
  for p in "$@"; do
    snap fsck "$p" >"$T/fsck.out" 2>&1 || fail "fsck $p is not clean: $(cat "$T/fsck.out")"
  done
}

# same_tree A B: the same names, types, modes, owners, link counts, sizes,
# contents, symlink targets, xattrs and mtimes (tests/mount/manifest.py)
same_tree() {
  python3 "$MANIFEST" "$1" --no-ino --no-ctime >"$T/manifest.a"
  python3 "$MANIFEST" "$2" --no-ino --no-ctime >"$T/manifest.b"
  diff "$T/manifest.a" "$T/manifest.b" >&2 || fail "$2 differs from $1"
}

# records DUMP: its records but SB, sorted by key (a dump -> restore -> dump
# round trip keeps them)
records() {
  jq -c '[.records[] | select(.key != "SB")] | sort_by(.key)' "$1"
}

# ------------------------------------------------------------------ mounts

# mount_at MOUNTPOINT REDISFS-ARGS...: runs `$REDISFS_BIN -f ARGS MOUNTPOINT`
# in the background and returns once the mount is up (fails the case with
# the daemon's last words if it exits first).
mount_at() {
  local mnt=$1
  shift
  start_daemon 60 "$mnt" "$@"
}

# fs_unmount (common.sh) is the strict unmount here; unmount_at the
# lenient one the cleanup uses.

# expect_fail TEXT COMMAND...: COMMAND must fail (not by a signal) and say
# TEXT (case-insensitive) on stdout or stderr; it gets EXPECT_FAIL_SECS
# (default 120) before it is stopped (SIGTERM) and counted as a failure.
expect_fail() {
  local text=$1 out rc=0
  shift
  out=$(timeout "${EXPECT_FAIL_SECS:-120}" "$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "'$*' succeeded, expected a failure saying '$text'"
  ((rc < 124)) || fail "'$*' was killed or timed out ($rc): $out"
  [[ ${out,,} == *"${text,,}"* ]] || fail "'$*' failed ($rc) without saying '$text': $out"
}

# ------------------------------------------------------------------ cleanup

_topo_cleanup() {
  local rc=$? pid mnt p i
  set +eE
  trap - ERR
  cd /
  exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  for pid in ${JOB_PIDS[@]+"${JOB_PIDS[@]}"}; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in ${JOB_PIDS[@]+"${JOB_PIDS[@]}"}; do
    wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
  done
  unmount_everything
  show_daemon_logs "$rc"
  # servers and sentinels: wake the stopped ones, then SIGTERM all at once
  for pid in ${ALL_PIDS[@]+"${ALL_PIDS[@]}"}; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in ${ALL_PIDS[@]+"${ALL_PIDS[@]}"}; do
    if ! wait_gone "$pid" 10; then
      echo "warning: redis-server $pid ignored SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
      wait_gone "$pid" 5
    fi
  done
  wait 2>/dev/null
  remove_tmp
  exit "$rc"
}

trap _topo_cleanup EXIT
trap 'on_error $LINENO' ERR
# a CTest timeout (SIGTERM) or ^C still runs the EXIT trap
trap 'exit 143' TERM
trap 'exit 130' INT
cd "$T"

# ------------------------------------------------------------------ exercises
# The events the tests put their mounts through, on raw keys and watched
# with redis-cli only: the self-test below, and a test's infrastructure
# check (REDISFS_PROD_INFRA_ONLY=1), run them.

# exercise_sentinel_set: WAIT-acknowledged keys survive a SIGSTOPped master
# and then a SIGKILLed new master; the killed one comes back as a replica,
# the stopped one is woken and turned into a replica by the sentinels.
exercise_sentinel_set() {
  local m m2 m3 r t0 k=exercise:$RANDOM
  m=$(sentinel_master_port)
  [[ -n $m ]] || fail "no sentinel names a master"
  rc_at "$m" set "$k" v1 >/dev/null
  [[ $(rc_at "$m" wait 2 5000) == 2 ]] || fail "WAIT 2 on the master $m"
  for r in "${SENTINEL_DATA_PORTS[@]}"; do
    [[ $r == "$m" ]] && continue
    [[ $(role_of "$r") == slave && $(rc_at "$r" get "$k") == v1 ]] || fail "replica $r lacks $k"
  done
  t0=$(now)
  stop_node "$m"
  sentinel_wait_failover "$m"
  m2=$NEW_MASTER_PORT
  note "SIGSTOP $m: the sentinels promoted $m2 after $(since "$t0") s"
  [[ $(rc_at "$m2" get "$k") == v1 ]] || fail "the new master $m2 lost $k"
  rc_at "$m2" set "$k" v2 >/dev/null
  wait_for 30 "the other replica does not follow $m2" sentinels_agree "$m2" 1
  [[ $(rc_at "$m2" wait 1 5000) == 1 ]] || fail "WAIT 1 on $m2"
  t0=$(now)
  kill_node "$m2"
  sentinel_wait_failover "$m2"
  m3=$NEW_MASTER_PORT
  note "SIGKILL $m2: the sentinels promoted $m3 after $(since "$t0") s"
  [[ $m3 != "$m" ]] || fail "the stopped master was promoted"
  [[ $(rc_at "$m3" get "$k") == v2 ]] || fail "the second new master $m3 lost $k=v2"
  restart_node "$m2" --replicaof 127.0.0.1 "$m3"
  wait_for 30 "$m2 does not come back as a replica of $m3" _replica_of_port "$m2" "$m3"
  wait_for 30 "the sentinels do not agree on $m3 with a replica" sentinels_agree "$m3" 1
  cont_node "$m"
  wait_for 60 "the old master $m is not turned into a replica of $m3" _replica_of_port "$m" "$m3"
  wait_for 60 "the sentinels do not agree on $m3 with 2 replicas" sentinels_agree "$m3" 2
  rc_at "$m3" del "$k" >/dev/null
  note "sentinel set: ok (master $m3; $m and $m2 are its replicas)"
}

# exercise_cluster [TAG]: '{TAG}:...' keys (default fs1) land on the master
# of their slot and MOVED points there from the others; the slot moves to
# another master with its keys, fails over gracefully, and its master is
# SIGKILLed (a WAIT-acknowledged write survives) and comes back as a replica.
exercise_cluster() {
  local tag=${1:-fs1} slot owner p out i dst m m2 t0
  slot=$(slot_of "{$tag}:SB")
  [[ $slot == "$(slot_of "$tag")" ]] || fail "the tag does not decide the slot"
  owner=$(master_of_slot "$slot")
  rc_at "$owner" set "{$tag}:exercise" x >/dev/null
  for p in $(masters_now); do
    [[ $p == "$owner" ]] && continue
    out=$(rc_at "$p" get "{$tag}:exercise" 2>&1) || true
    [[ $out == "MOVED $slot 127.0.0.1:$owner" ]] || fail "GET on $p: '$out', expected MOVED to $owner"
  done
  [[ $(redis-cli -c -h 127.0.0.1 -p "$(other_master "$slot")" get "{$tag}:exercise") == x ]] || fail "redis-cli -c"
  for i in $(seq 1 250); do echo "set {$tag}:exercise:$i $i"; done | rc_at "$owner" >/dev/null
  dst=$(other_master "$slot")
  reshard_slot "$slot" "$dst" 20
  [[ $MOVED_KEYS -ge 251 ]] || fail "moved $MOVED_KEYS keys, expected 251 at least"
  [[ $(rc_at "$owner" cluster countkeysinslot "$slot") == 0 ]] || fail "keys left on $owner"
  [[ $(rc_at "$dst" get "{$tag}:exercise:77") == 77 ]] || fail "a value after MIGRATE"
  note "slot $slot moved from $owner to $dst with $MOVED_KEYS keys"
  cluster_failover "$dst"
  m=$NEW_MASTER_PORT
  [[ $(master_of_slot "$slot") == "$m" && $(rc_at "$m" get "{$tag}:exercise:77") == 77 ]] || fail "after CLUSTER FAILOVER"
  note "graceful failover: $dst -> $m"
  rc_at "$m" set "{$tag}:exercise" after >/dev/null
  [[ $(rc_at "$m" wait 1 5000) == 1 ]] || fail "WAIT 1 on $m"
  t0=$(now)
  cluster_kill_master "$m"
  m2=$NEW_MASTER_PORT
  note "SIGKILL $m: $m2 serves slot $slot after $(since "$t0") s"
  [[ $(rc_at "$m2" get "{$tag}:exercise") == after ]] || fail "the new master lost a WAITed write"
  restart_node "$m"
  wait_for 60 "$m does not come back as a replica of $m2" _replica_of_port "$m" "$m2"
  wait_for 30 "the cluster does not agree with $m back" cluster_agrees
  for i in $(seq 1 250); do echo "del {$tag}:exercise:$i"; done | rc_at "$m2" >/dev/null
  rc_at "$m2" del "{$tag}:exercise" >/dev/null
  note "cluster: ok ($m is a replica of $m2 again)"
}

# ------------------------------------------------------------------ self-test
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  what=${1:-all}
  if [[ $what == all || $what == sentinel ]]; then
    t0=$(now)
    start_sentinel_set
    note "sentinel set up in $(since "$t0") s: master $SENTINEL_MASTER_PORT," \
      "replicas ${SENTINEL_REPLICA_PORTS[*]}, sentinels ${SENTINEL_PORTS[*]}"
    exercise_sentinel_set
  fi
  if [[ $what == all || $what == cluster ]]; then
    t0=$(now)
    start_cluster
    note "cluster up in $(since "$t0") s: masters ${CLUSTER_MASTERS[*]}, replicas ${CLUSTER_REPLICAS[*]}"
    exercise_cluster fs1
  fi
fi
