#!/usr/bin/env bash
# Runs "$@" against a private redis-server: a mktemp directory, a unix socket
# (no TCP port), no persistence. Exports
#   REDISFS_TEST_URL     unix://<dir>/redis.sock
#   REDISFS_TEST_TMPDIR  a scratch directory inside it (tests that start
#                        their own servers put their data directories there)
# and removes everything on exit, including any redis-server a test started
# under REDISFS_TEST_TMPDIR and left behind. Exit 77 (skip) without
# redis-server.
#
# A doctest listing (--list-test-cases, --list-test-suites) runs without a
# server: doctest_discover_tests lists the cases through this wrapper after
# each build (tests/CMakeLists.txt), also where redis-server is missing.
set -uo pipefail

for arg in "$@"; do
  case $arg in
    --list-test-cases | --list-test-suites) exec "$@" ;;
  esac
done

server=${REDISFS_REDIS_SERVER:-redis-server}
if ! command -v "$server" >/dev/null 2>&1; then
  echo "skipped: redis-server not found (apt-get install redis-server)" >&2
  exit 77
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/redisfs-test.XXXXXX") || exit 1
pid=

# Running, and not a zombie nobody reaps (the daemonized servers' parent is
# init, which in some containers never reaps).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  # Servers a test started (daemonized) and did not stop.
  while IFS= read -r -d '' pidfile; do
    leftover=$(cat "$pidfile" 2>/dev/null)
    if [ -n "$leftover" ] && alive "$leftover"; then
      echo "with_redis.sh: stopping a leftover redis-server (pid $leftover, $pidfile)" >&2
      kill "$leftover" 2>/dev/null
      for _ in $(seq 100); do
        alive "$leftover" || break
        sleep 0.1
      done
      alive "$leftover" && kill -9 "$leftover" 2>/dev/null
    fi
  done < <(find "$dir/tmp" -name redis.pid -print0 2>/dev/null)
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -m 700 "$dir/tmp"
sock=$dir/redis.sock
"$server" --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$dir" \
  --save '' --appendonly no --daemonize no --logfile "$dir/redis.log" &
pid=$!

ready=
for _ in $(seq 200); do
  if ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
  if [ -S "$sock" ]; then
    if ! command -v redis-cli >/dev/null 2>&1 || [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ]; then
      ready=1
      break
    fi
  fi
  sleep 0.05
done
if [ -z "$ready" ]; then
  echo "with_redis.sh: the private redis-server did not start:" >&2
  tail -n 5 "$dir/redis.log" >&2 2>/dev/null
  exit 1
fi

export REDISFS_TEST_URL="unix://$sock"
export REDISFS_TEST_TMPDIR="$dir/tmp"
"$@"
rc=$?
exit $rc
