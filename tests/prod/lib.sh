# shellcheck shell=bash
# lib.sh: what the "production Redis" cases share (issue 9: TLS, ACL
# users, outages). A case sources it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# and gets a private temp dir $T (mode 0755), and helpers for
#   - certificates: make_certs DIR (a CA, a server and a client cert signed
#     by it, and an unrelated CA with its own client cert);
#   - servers: start_tls_redis / start_plain_redis_tcp NAME, every one bound
#     to 127.0.0.1 only, on a port found free, in its own dir $T/NAME, with
#     AOF (appendfsync always) so a restart keeps every acknowledged write,
#     and a private unix socket for the case's own redis-cli (rcli NAME);
#     stop_server / start_server_again / restart_redis NAME, and a restart
#     that keeps the new server LOADING for a while;
#   - ACL: setup_fsuser, the restricted user redisfs documents (one place);
#   - mounts: fs_mount / fs_unmount, and expect_quick_fail for error cases;
#   - lost replies: start_reply_proxy / stop_reply_proxy (a proxy that
#     drops the replies of the call it is armed for).
#
# Nothing outlives the case: the EXIT trap unmounts every mount and kills
# every daemon and redis-server it started (only those: their pids are
# recorded), pass or fail; a watchdog does the same if the case itself is
# killed with SIGKILL. Servers run in the foreground as our children
# (never daemonized), so a runner that kills the process tree gets them too.
#
# Exit codes: 0 pass, 1 fail, 77 skipped (tests/common.sh). Run on its own
# (bash tests/prod/lib.sh), it checks itself: certificates, a TLS server
# reached by redis-cli, the ACL user, a restart keeping data, a LOADING
# window; no redisfs binary is needed for that.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/common.sh
. "$HERE/../common.sh"

need_tools redis-server redis-cli python3 openssl timeout

# the environment must not pick another server, filesystem, password or TLS setting
unset REDISFS_URL REDISFS_PREFIX REDISFS_PASSWORD REDISFS_TIMEOUT REDISFS_SENTINEL_PASSWORD \
  REDISFS_TLS_CA_CERT REDISFS_TLS_CA_CERT_DIR REDISFS_TLS_CERT REDISFS_TLS_KEY REDISFS_TLS_SERVER_NAME \
  REDISCLI_AUTH

T=$(mktemp -d "/tmp/redisfs-prod-$TEST_NAME.XXXXXX")
route_sanitizer_reports
chmod 0755 "$T"
: >"$T/pids"               # every pid we started, one a line (for the watchdog)

declare -A SRV_DIR=()      # name -> its directory (AOF, log, socket)
declare -A SRV_SOCK=()     # name -> unix socket, for rcli
declare -A SRV_PORT=()     # name -> TCP port (the TLS port of a TLS server)
declare -A SRV_PID=()      # name -> pid while running
declare -A SRV_AUTH=()     # name -> password of the default user (admin), if any
LAST_DAEMON_RC=

record_pid() {
  echo "$1" >>"$T/pids"
}

# ------------------------------------------------------------------ ports

# free_port: a TCP port nobody listens on (nor holds in TIME_WAIT) on
# 127.0.0.1, below the kernel's ephemeral range when possible (so an
# outgoing connection cannot take it while a server is down for a restart).
free_port() {
  python3 - <<'EOF'
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    low = 32768
top = low - 1 if low > 12000 else 60999
for _ in range(500):
    p = random.randrange(10000, top)
    ok = True
    for q in (p, p + 10000) if p + 10000 < 65536 else (p,):  # + a cluster bus port's
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        break
else:
    raise SystemExit("no free port found")
EOF
}

# ------------------------------------------------------------------ certificates

# make_certs DIR: in DIR (created), PEM files:
#   ca.crt ca.key                the CA the servers trust and clients verify with
#   server.crt server.key        signed by it, CN=localhost, SAN IP:127.0.0.1 + DNS:localhost
#   client.crt client.key        signed by it, CN=fsuser (clientAuth)
#   other-ca.crt other-ca.key    an unrelated CA ("wrong CA")
#   other-client.crt/.key        a client cert signed by the unrelated CA
#   cadir/                       ca.crt under its hash name (for --tls-ca-cert-dir)
# EC P-256 keys (quick to make), valid two days.
make_certs() {
  local d=$1
  mkdir -p "$d"
  (
    set -e
    cd "$d"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj "/CN=redisfs test CA" 2>/dev/null
    openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.crt -days 2 -subj "/CN=redisfs unrelated CA" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >client.ext
    _leaf() {  # name CN ca ext
      openssl req -new "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 2 \
        -extfile "$4.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr"
    }
    _leaf server localhost ca server
    _leaf client fsuser ca client
    _leaf other-client fsuser other-ca client
    chmod 0644 ./*.crt ./*.key  # the servers and clients here all run as us
    mkdir -p cadir
    cp ca.crt cadir/
    openssl rehash cadir 2>/dev/null || c_rehash cadir >/dev/null
    openssl verify -CAfile ca.crt server.crt client.crt >/dev/null
  ) || fail "make_certs $d failed"
}

# ------------------------------------------------------------------ servers

# rcli NAME ARGS...: redis-cli on NAME's private unix socket, as its admin.
rcli() {
  local name=$1
  shift
  if [[ -n ${SRV_AUTH[$name]:-} ]]; then
    REDISCLI_AUTH=${SRV_AUTH[$name]} redis-cli -s "${SRV_SOCK[$name]}" "$@"
  else
    redis-cli -s "${SRV_SOCK[$name]}" "$@"
  fi
}

# _srv_args NAME: the server's saved command line, into the array ARGS.
_srv_args() {
  mapfile -d '' ARGS <"${SRV_DIR[$1]}/args"
}

# _launch NAME [EXTRA...]: starts NAME's redis-server (saved args + EXTRA,
# the latter for this run only) as our child and waits until it answers on
# its unix socket: PONG, or -LOADING when LAUNCH_ALLOW_LOADING=1.
# Returns 2 when the port was taken meanwhile (the caller picks another).
_launch() {
  local name=$1 dir=${SRV_DIR[$1]} i out pid
  shift
  local ARGS
  _srv_args "$name"
  rm -f "${SRV_SOCK[$name]}"
  local before=0
  [[ -f $dir/redis.log ]] && before=$(wc -l <"$dir/redis.log")
  redis-server "${ARGS[@]}" "$@" </dev/null >>"$dir/stdout" 2>&1 &
  pid=$!
  record_pid "$pid"
  SRV_PID[$name]=$pid
  for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      unset "SRV_PID[$name]"
      if tail -n +$((before + 1)) "$dir/redis.log" 2>/dev/null | grep -q 'Address already in use'; then
        return 2
      fi
      fail "redis-server $name exited at start: $(tail -n +$((before + 1)) "$dir/redis.log" 2>/dev/null | tail -5) $(tail -3 "$dir/stdout")"
    fi
    if [[ -S ${SRV_SOCK[$name]} ]]; then
      out=$(rcli "$name" ping 2>&1) || true
      [[ $out == PONG ]] && return 0
      [[ ${LAUNCH_ALLOW_LOADING:-0} == 1 && $out == LOADING* ]] && return 0
    fi
    sleep 0.05
  done
  fail "redis-server $name does not answer on ${SRV_SOCK[$name]} after 30 s: $(tail -5 "$dir/redis.log")"
}

# _start_server NAME KIND [redis-server args...]: KIND is tcp or tls
# (the TLS variant's args come from the caller).
_start_server() {
  local name=$1 kind=$2 attempt rc port
  shift 2
  [[ -z ${SRV_DIR[$name]:-} ]] || fail "server $name already exists"
  local dir=$T/$name
  mkdir -p "$dir"
  SRV_DIR[$name]=$dir
  SRV_SOCK[$name]=$dir/redis.sock
  for ((attempt = 0; attempt < 5; attempt++)); do
    port=$(free_port)
    local base=(--bind 127.0.0.1 --unixsocket "$dir/redis.sock" --unixsocketperm 700
      --dir "$dir" --logfile "$dir/redis.log" --daemonize no --pidfile ''
      --save '' --appendonly yes --appendfsync always --auto-aof-rewrite-percentage 0
      --enable-debug-command local --aclfile "$dir/users.acl")
    # (no automatic AOF rewrite: a SIGKILL during one would orphan its child)
    : >"$dir/users.acl"
    if [[ $kind == tls ]]; then
      base+=(--port 0 --tls-port "$port")
    else
      base+=(--port "$port")
    fi
    printf '%s\0' "${base[@]}" "$@" >"$dir/args"
    SRV_PORT[$name]=$port
    rc=0
    _launch "$name" || rc=$?
    ((rc == 0)) && return 0
    ((rc == 2)) || fail "redis-server $name did not start"
    note "port $port was taken meanwhile; trying another"
  done
  fail "redis-server $name: no free port after 5 attempts"
}

# start_plain_redis_tcp NAME [redis-server args...]: plain TCP on
# 127.0.0.1:${SRV_PORT[NAME]}, plus the unix socket ${SRV_SOCK[NAME]}.
start_plain_redis_tcp() {
  local name=$1
  shift
  _start_server "$name" tcp "$@"
}

# start_tls_redis NAME CERTDIR [AUTH [redis-server args...]]: TLS only
# (--port 0) on 127.0.0.1:${SRV_PORT[NAME]} with CERTDIR's server cert;
# AUTH is --tls-auth-clients: yes (default: client certs required),
# optional or no. Plus the plain unix socket for rcli.
start_tls_redis() {
  local name=$1 certs=$2 auth=${3:-yes}
  shift $(($# < 3 ? $# : 3))
  [[ -f $certs/server.crt ]] || fail "start_tls_redis: no certificates in $certs (make_certs)"
  _start_server "$name" tls --tls-cert-file "$certs/server.crt" --tls-key-file "$certs/server.key" \
    --tls-ca-cert-file "$certs/ca.crt" --tls-auth-clients "$auth" --tls-replication no "$@"
}

# tls_cli NAME CERTDIR ARGS...: redis-cli over TLS to NAME's port with the
# client certificate (what a remote client would do).
tls_cli() {
  local name=$1 certs=$2
  shift 2
  redis-cli --tls --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key" \
    -h 127.0.0.1 -p "${SRV_PORT[$name]}" "$@"
}

# stop_server NAME [kill|shutdown|term]: kill: SIGKILL (a crash; AOF with
# appendfsync always keeps every acknowledged write); shutdown: SHUTDOWN
# NOSAVE; term: SIGTERM (default: kill).
stop_server() {
  local name=$1 how=${2:-kill} pid=${SRV_PID[$1]:-}
  [[ -n $pid ]] || return 0
  case $how in
    kill) kill -KILL "$pid" 2>/dev/null || true ;;
    term) kill -TERM "$pid" 2>/dev/null || true ;;
    shutdown) rcli "$name" shutdown nosave >/dev/null 2>&1 || true ;;
    *) fail "stop_server: unknown way '$how'" ;;
  esac
  # (stderr: bash announces a child killed by a signal, "Killed", when it reaps it)
  if ! wait_gone "$pid" 20 2>/dev/null; then
    echo "warning: redis-server $name ($pid) survives '$how'; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || true
  fi
  { wait "$pid"; } 2>/dev/null || true  # no "Killed" job notice
  unset "SRV_PID[$name]"
}

# start_server_again NAME [redis-server args...]: the same server (port,
# dir, AOF, socket) again; the extra args are for this run only.
start_server_again() {
  local name=$1 rc=0
  shift
  [[ -z ${SRV_PID[$name]:-} ]] || fail "start_server_again: $name is running"
  _launch "$name" "$@" || rc=$?
  ((rc == 0)) || fail "redis-server $name cannot listen on its port ${SRV_PORT[$name]} again (taken)"
}

# restart_redis NAME [kill|shutdown|term]: stop then start again at once.
restart_redis() {
  stop_server "$1" "${2:-kill}"
  start_server_again "$1"
}

# is_loading NAME: the server says loading:1 (INFO works while loading).
is_loading() {
  [[ $(rcli "$1" info persistence 2>/dev/null | tr -d '\r' | sed -n 's/^loading://p') == 1 ]]
}

# prepare_loading NAME SECONDS: makes NAME's next start sit in LOADING for
# about SECONDS: filler keys (filler:<n>, outside every filesystem) are
# written and the AOF is rewritten, so they are in its RDB base, which the
# next start loads key by key with key-load-delay.
prepare_loading() {
  local name=$1 i
  LOADING_KEYS=2000
  LOADING_DELAY_US=$(python3 -c "print(max(1, int($2 * 1e6 / $LOADING_KEYS)))")
  rcli "$name" debug populate "$LOADING_KEYS" filler 16 >/dev/null
  rcli "$name" bgrewriteaof >/dev/null
  for ((i = 0; i < 600; i++)); do
    if rcli "$name" info persistence | tr -d '\r' |
      grep -qx 'aof_rewrite_in_progress:0' && ! rcli "$name" info persistence | tr -d '\r' | grep -qx 'aof_rewrite_scheduled:1'; then
      return 0
    fi
    sleep 0.05
  done
  fail "prepare_loading: the AOF rewrite of $name does not finish"
}

# restart_loading NAME [kill|shutdown|term]: after prepare_loading: stop,
# start again with key-load-delay, and return while it is LOADING (checked
# with INFO: loading:1); the next start (restart_redis) loads at full speed.
# Sets LOADING_SEEN=1 when loading:1 was observed.
restart_loading() {
  local name=$1
  stop_server "$name" "${2:-kill}"
  LAUNCH_ALLOW_LOADING=1 start_server_again "$name" --key-load-delay "${LOADING_DELAY_US:?prepare_loading first}" \
    --loading-process-events-interval-bytes 1024
  LOADING_SEEN=0
  if is_loading "$name"; then
    LOADING_SEEN=1
  fi
}

# wait_loaded NAME: until the server answers PING (loading done).
wait_loaded() {
  local i
  for ((i = 0; i < 1200; i++)); do
    [[ $(rcli "$1" ping 2>/dev/null) == PONG ]] && return 0
    sleep 0.05
  done
  fail "$1 still loading after 60 s"
}

# ------------------------------------------------------------------ ACL

# FSUSER_ACL_COMMANDS: the restricted user's commands (tests/common.sh).

# What that ACL must refuse (one command a line, checked with ACL DRYRUN by
# acl_refuses): server-wide harm or another tenant's keys. (SELECT stays:
# the URL's /db needs it, and the key patterns hold in every db.)
FSUSER_ACL_FORBIDDEN=('flushall' 'flushdb' 'swapdb 0 1' 'client kill id 1' 'client pause 10'
  'client no-evict on' 'client list' 'script flush' 'script kill' 'function flush' 'config set maxmemory 1'
  'shutdown' 'debug digest-value P1:x' 'monitor' 'keys *' 'acl list' 'module list' 'save' 'bgrewriteaof'
  'replicaof no one' 'failover' 'publish c m' 'subscribe c' 'function delete x' 'fcall f 0')

# fsuser_acl_rules PASSWORD PREFIX...: the ACL SETUSER rules (one a line).
fsuser_acl_rules() {
  local pw=$1 p
  shift
  printf '%s\n' on ">$pw" resetkeys
  for p in "$@"; do
    printf '%s\n' "~$p:*" "~$p~*"
  done
  printf '%s\n' "${FSUSER_ACL_COMMANDS[@]}"
}

# setup_fsuser NAME USER PASSWORD PREFIX...: creates (or resets) USER on
# server NAME with the restricted ACL for PREFIX...
setup_fsuser() {
  local name=$1 user=$2 pw=$3 rules
  shift 3
  mapfile -t rules < <(fsuser_acl_rules "$pw" "$@")
  rcli "$name" acl deluser "$user" >/dev/null
  [[ $(rcli "$name" acl setuser "$user" "${rules[@]}") == OK ]] || fail "ACL SETUSER $user failed"
  [[ $(rcli "$name" acl save) == OK ]] || fail "ACL SAVE failed"
}

# acl_refuses NAME USER PREFIX: every FSUSER_ACL_FORBIDDEN command (P1 in
# it replaced by PREFIX) and a key of another prefix are refused to USER
# (ACL DRYRUN, run by the admin); prints what is allowed and fails.
acl_refuses() {
  local name=$1 user=$2 p=$3 c out bad=
  for c in "${FSUSER_ACL_FORBIDDEN[@]}" "get x$p:SB" "hset x$p:SB a b" "copy $p:SB x$p:SB" "eval return 1 1 x$p:SB"; do
    c=${c//P1/$p}
    # shellcheck disable=SC2086  # a command's words
    out=$(rcli "$name" acl dryrun "$user" $c 2>&1)
    [[ $out == OK ]] && bad+="'$c' "
  done
  [[ -z $bad ]] || fail "the ACL of $user allows: $bad"
}

# set_admin_password NAME PASSWORD: the default user (what rcli uses) needs
# PASSWORD from now on. Users live in the server's ACL file (ACL SAVE), so
# they survive restarts.
set_admin_password() {
  local name=$1 pw=$2
  [[ $(rcli "$name" acl setuser default on resetpass ">$pw") == OK ]] || fail "cannot set the admin password"
  SRV_AUTH[$name]=$pw
  [[ $(rcli "$name" acl save) == OK ]] || fail "ACL SAVE failed"
}

# prefix_digest NAME PREFIX: "key type ttl digest" of every key under
# PREFIX: (and PREFIX~*), sorted: equal output = byte-identical keys.
prefix_digest() {
  local name=$1 p=$2 k
  { rcli "$name" --scan --pattern "$p:*"; rcli "$name" --scan --pattern "$p~*"; } | sort -u |
    while IFS= read -r k; do
      printf '%s %s %s %s\n' "$k" "$(rcli "$name" type "$k")" "$(rcli "$name" pttl "$k" | sed 's/^[0-9]\{1,\}$/ttl/')" \
        "$(rcli "$name" debug digest-value "$k")"
    done
}

# ------------------------------------------------------------------ mounts

# fs_mount MOUNTPOINT ARGS...: `redisfs -f ARGS MOUNTPOINT` in the
# background (output in ${MOUNT_LOGS[MOUNTPOINT]}); returns once mounted.
# ARGS carry --redis, --prefix, TLS and password options.
fs_mount() {
  local mnt=$1
  shift
  need_binary REDISFS_BIN
  start_daemon 60 "$mnt" "$@"
}

# ------------------------------------------------------------------ lost replies

# start_reply_proxy NAME ARM: tests/lost_reply_proxy.py in front of server
# NAME's port, armed by the file ARM (see the proxy); sets PROXY_PORT and
# PROXY_PID, and returns once it listens. stop_reply_proxy ends it.
start_reply_proxy() {
  local i
  PROXY_PORT=$(free_port)
  python3 "$HERE/../lost_reply_proxy.py" "$PROXY_PORT" "${SRV_PORT[$1]}" "$2" &
  PROXY_PID=$!
  record_pid "$PROXY_PID"
  for ((i = 0; i < 100; i++)); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' "$PROXY_PORT" \
      2>/dev/null && return 0
    sleep 0.05
  done
  fail "the reply proxy does not listen on port $PROXY_PORT"
}

stop_reply_proxy() {
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
}

# start_reply_armer ARM [N]: arms the proxy every 10 to 90 ms to lose the
# reply of the next script call; with N, every Nth time the call itself.
# stop_reply_armer ends it. connections_taken NAME: how many connections
# server NAME has taken (the proxy's broken ones among them).
start_reply_armer() {
  rm -f "$T/armer-stop"
  (
    n=0
    while [[ -d $T && ! -e $T/armer-stop ]]; do
      if [[ -n ${2:-} ]] && ((++n % $2 == 0)); then
        echo -n '-EVALSHA [0-9a-f]' >"$1" 2>/dev/null
      else
        echo -n 'EVALSHA [0-9a-f]' >"$1" 2>/dev/null
      fi
      sleep "0.0$((RANDOM % 9 + 1))"
    done
  ) &
  ARMER=$!
  record_pid $ARMER
}

stop_reply_armer() {
  touch "$T/armer-stop"
  wait "$ARMER"
  rm -f "$1"
}

connections_taken() {
  rcli "$1" info stats | tr -d '\r' | sed -n 's/^total_connections_received://p'
}



# ------------------------------------------------------------------ checks

# expect_quick_fail LIMIT REGEX CMD...: CMD must exit non-zero on its own
# within LIMIT seconds (a permanent error is not retried until --timeout;
# give CMD a --timeout well above LIMIT), with a one-line message in which
# REGEX (grep -Ei; $T's path taken out) matches. The time taken is printed,
# not asserted. Output in $T/fail.out.
expect_quick_fail() {
  local limit=$1 re=$2 rc=0 t0 t1 lines
  shift 2
  t0=$(date +%s.%N)
  # (CMD may be a shell function: run it in the background, kill its tree on time-out)
  (
    set +eE
    trap - ERR EXIT
    "$@"
  ) </dev/null >"$T/fail.out" 2>&1 &
  local pid=$! i
  for ((i = 0; i < limit * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    _kill_tree "$pid"
    rc=124
    wait "$pid" 2>/dev/null || true
  else
    wait "$pid" || rc=$?
  fi
  t1=$(date +%s.%N)
  # a mount command that succeeded would still be mounted: take it down
  local a
  for a in "$@"; do
    if [[ -d $a ]] && is_mounted "$a"; then
      fusermount3 -u "$a" 2>/dev/null || fusermount3 -uz "$a" 2>/dev/null || true
    fi
  done
  ((rc != 0)) || fail "expected a failure: $*: $(head -5 "$T/fail.out")"
  ((rc != 124)) || fail "still running after ${limit} s (retrying a permanent error?): $*: $(head -5 "$T/fail.out")"
  ((rc < 128)) || fail "killed by signal $((rc - 128)): $*"
  # a refused command line proves nothing about the case
  ! grep -Eq 'arguments? (was|were) not expected|Run with --help|^Usage:' "$T/fail.out" ||
    fail "the command line was refused ($rc), not the connection: $*: $(head -3 "$T/fail.out")"
  # match the message, not our paths (the case's name is in $T: "tls")
  sed "s|$T|<T>|g" "$T/fail.out" >"$T/fail.msg"
  grep -Eiq -- "$re" "$T/fail.msg" || fail "failed ($rc) without a message matching '$re': $*: $(head -5 "$T/fail.out")"
  lines=$(grep -c . "$T/fail.out" || true)
  ((lines == 1)) || fail "a $lines-line message, want one line: $*: $(head -8 "$T/fail.out")"
  note "fails in $(python3 -c "print('%.2f' % ($t1 - $t0))") s (exit $rc): $(grep -Ei -m1 -- "$re" "$T/fail.msg")"
}

# ------------------------------------------------------------------ cleanup

# _kill_tree PID: SIGKILL PID and every process below it (by parent pid).
_kill_tree() {
  local kids p
  kids=$(awk -v pp="$1" '{ sub(/^.*\) /, ""); if ($2 == pp) print FILENAME }' /proc/[0-9]*/stat 2>/dev/null |
    sed 's|/proc/||; s|/stat||') || true
  kill -STOP "$1" 2>/dev/null || true
  for p in $kids; do
    _kill_tree "$p"
  done
  kill -KILL "$1" 2>/dev/null || true
}

_kill_recorded() {  # the watchdog's and the trap's last resort
  local pid comm
  while read -r pid; do
    [[ -n $pid ]] || continue
    comm=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    [[ $comm == *redis-server* || $comm == *redisfs* ]] || continue
    kill -KILL "$pid" 2>/dev/null || true
  done <"$T/pids"
}

_cleanup() {
  local rc=$?
  set +eE
  trap - ERR
  cd /
  exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  local mnt name
  # helpers the case ran in the background (writers...)
  local j
  for j in $(jobs -pr); do
    [[ $j == "${WATCHDOG_PID:-}" ]] && continue
    grep -qx "$j" "$T/pids" 2>/dev/null && continue
    kill -TERM "$j" 2>/dev/null
  done
  unmount_everything
  show_daemon_logs "$rc"
  for name in "${!SRV_PID[@]}"; do
    stop_server "$name" term
  done
  _kill_recorded
  [[ -n ${WATCHDOG_PID:-} ]] && kill -TERM "$WATCHDOG_PID" 2>/dev/null && wait "$WATCHDOG_PID" 2>/dev/null
  remove_tmp
  exit "$rc"
}

# The watchdog: if this shell dies without running its EXIT trap (SIGKILL),
# kill what it started, detach its mounts and remove $T.
_watchdog() {
  local me=$1
  trap 'exit 0' TERM
  while kill -0 "$me" 2>/dev/null; do
    sleep 1 &
    wait $! || true
  done
  _kill_recorded
  local mnt
  while read -r _ mnt _; do
    [[ $mnt == "$T"/* ]] && fusermount3 -uz "$mnt" 2>/dev/null
  done </proc/self/mounts
  rm -rf "$T"
}

trap _cleanup EXIT
trap 'on_error $LINENO' ERR
( set +eE; trap - ERR EXIT; _watchdog $$ ) </dev/null >/dev/null 2>&1 &
WATCHDOG_PID=$!
cd "$T"

# ------------------------------------------------------------------ self-test
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  make_certs "$T/certs"
  C=$T/certs
  start_tls_redis tls "$C" yes
  [[ $(tls_cli tls "$C" ping) == PONG ]] || fail "redis-cli over TLS with a client cert"
  out=$(redis-cli --tls --cacert "$C/ca.crt" -h 127.0.0.1 -p "${SRV_PORT[tls]}" ping 2>&1) || true
  [[ $out != PONG ]] || fail "a TLS client without a certificate was let in"
  out=$(redis-cli --tls --cacert "$C/other-ca.crt" --cert "$C/client.crt" --key "$C/client.key" \
    -h 127.0.0.1 -p "${SRV_PORT[tls]}" ping 2>&1) || true
  [[ $out != PONG ]] || fail "the wrong CA verified the server"
  out=$(redis-cli -h 127.0.0.1 -p "${SRV_PORT[tls]}" ping 2>&1) || true
  [[ $out != PONG ]] || fail "plain TCP answered on the TLS port"
  note "TLS server on ${SRV_PORT[tls]}: client cert needed, wrong CA and plain TCP refused"

  start_plain_redis_tcp plain
  [[ $(redis-cli -h 127.0.0.1 -p "${SRV_PORT[plain]}" ping) == PONG ]] || fail "plain TCP"
  set_admin_password plain adminpw
  setup_fsuser plain fsuser userpw P1
  [[ $(redis-cli --user fsuser --pass userpw --no-auth-warning -s "${SRV_SOCK[plain]}" set P1:x 1) == OK ]] ||
    fail "fsuser cannot write its prefix"
  out=$(redis-cli --user fsuser --pass userpw --no-auth-warning -s "${SRV_SOCK[plain]}" set P2:x 1 2>&1)
  [[ $out == *NOPERM* ]] || fail "fsuser may write another prefix: $out"
  rcli plain set P2:x admin >/dev/null
  restart_redis plain kill
  [[ $(rcli plain get P1:x) == 1 && $(rcli plain get P2:x) == admin ]] || fail "a kill -9 restart lost data"
  acl_refuses plain fsuser P1
  [[ $(redis-cli --user fsuser --pass userpw --no-auth-warning -s "${SRV_SOCK[plain]}" get P1:x) == 1 ]] ||
    fail "fsuser lost across the restart"
  note "restart keeps data and ACL"

  prepare_loading tls 2
  restart_loading tls kill
  ((LOADING_SEEN == 1)) || fail "no LOADING window"
  out=$(tls_cli tls "$C" get anything 2>&1) || true
  [[ $out == LOADING* ]] || fail "a client during loading got: $out"
  wait_loaded tls
  note "LOADING observed, then loaded"
  echo "lib.sh: ok"
fi
