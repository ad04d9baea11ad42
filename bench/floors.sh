#!/usr/bin/env bash
# floors.sh: tar x of /usr/include (+ sync -f) and rm -rf of the tree on
# libfuse's passthrough_ll, on the FUSE floor making the round trips
# close-to-open forces (fuse_floor.cpp --redis: "floor+rt pt" mounted as
# passthrough_ll is, "floor+rt" as redisfs is), on the FUSE floor making
# there the writes of each change instead (fuse_floor.cpp --store:
# "floor+store", the floor of any filesystem that keeps its metadata in
# Redis hashes and changes it atomically, mounted as redisfs is), on
# passthrough_ll -o writeback ("pt_wb"), on the FUSE floor mounted as a
# writeback redisfs mount is (fuse_floor.cpp --writeback --xattrs:
# "floor_wb", with no server), the same making the writes a writeback
# mount must wait for (--redis --store: "floor_wb+store", the bound of
# -o writeback: a new file's create, bytes and attributes at its close in
# one round trip, unlinks sent behind) and on each redisfs binary given,
# each mounted afresh in turn on one private
# redis-server, ROUNDS rounds alternating. Prints every time, then each target's median and its
# percentage of passthrough_ll's speed, and the CPU time the daemon and
# redis-server spent in each workload (medians of the rounds): where a
# target's time goes beyond its floor's.
#
# Why beside bench/run's workload 8: on this shared machine the floors
# move between runs as much as redisfs does; alternating the targets
# round by round in one run is what lets redisfs be compared with its
# floor (bench/RESULTS.md, session 22). Two binaries make an A/B. A
# target may carry mount options after a comma (passed as -o), so the
# same binary can be measured in two modes:
#
#   bench/floors.sh [ROUNDS [REDISFS_BIN[,OPTIONS]...]]    defaults: 5, build/fs/redisfs
#   bench/floors.sh 5 build/fs/redisfs build/fs/redisfs,writeback
#
# Nothing is asserted; nothing is recorded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
ROUNDS=${1:-5}
shift || true
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$root/build/fs/redisfs")
for b in "${BINS[@]}"; do
  [ -x "${b%%,*}" ] || bench_die "no redisfs binary at ${b%%,*} (build first)"
done
bench_build_baselines "${BENCH_BUILD_DIR:-$root/build-bench/bench}" "$here"

BENCH_TMP=$(mktemp -d /dev/shm/redisfs-floors.XXXXXX)
mkdir -p "$BENCH_TMP/cleanup" "$BENCH_TMP/pt" "$BENCH_TMP/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
bench_start_redis "$BENCH_TMP/redis" 1
SOCK=$BENCH_TMP/redis/redis.sock
RPID=$(cat "$BENCH_TMP/cleanup/server-1")
MNT=$BENCH_TMP/mnt
TARBALL=$BENCH_TMP/include.tar
tar cf "$TARBALL" -C /usr include
entries=$(tar tf "$TARBALL" | wc -l)

_cpu() {  # pid: user + system time so far, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Runs both workloads on what is mounted at $MNT (daemon $2) as target $1;
# appends "target tar-seconds rm-seconds daemon-ticks redis-ticks" (the
# ticks of tar x, then of rm -rf) to results.
_measure() {
  local target=$1 dpid=$2 d0 r0 d1 r1 t0 t1 t2
  mkdir "$MNT/tree"
  d0=$(_cpu "$dpid")
  r0=$(_cpu "$RPID")
  t0=$(date +%s.%N)
  tar xf "$TARBALL" -C "$MNT/tree"
  sync -f "$MNT/tree"
  t1=$(date +%s.%N)
  d1=$(_cpu "$dpid")
  r1=$(_cpu "$RPID")
  rm -rf "$MNT/tree"
  t2=$(date +%s.%N)
  echo "$target $(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc) $((d1 - d0)) $((r1 - r0)) $(($(_cpu "$dpid") - d1))" \
    "$(($(_cpu "$RPID") - r1))" | tee -a "$BENCH_TMP/results" >&2
}

# Mounts argv ($2...) on $MNT as target $1, measures, unmounts.
_round() {
  local target=$1 reg
  shift
  _bench_mount_daemon "$target" "$MNT" "$BENCH_TMP/logs/$target.log" "$@"
  reg=$(ls "$BENCH_TMP/cleanup/mount-$target-"*)
  _measure "$target" "$(sed -n 2p "$reg")"
  bench_unmount "$MNT" "$(sed -n 2p "$reg")"
  rm -f "$reg"
}

bench_log "$entries entries, $ROUNDS rounds, load average $(cut -d' ' -f1 /proc/loadavg)"
n=0
for ((r = 1; r <= ROUNDS; r++)); do
  _round passthrough_ll "$pt_bin" -f -o "source=$BENCH_TMP/pt" "$MNT"
  _round floor+rt_pt "$floor_bin" --redis "$SOCK" --no-default-permissions "$MNT"
  _round floor+rt "$floor_bin" --redis "$SOCK" --xattrs "$MNT"
  _round floor+store "$floor_bin" --redis "$SOCK" --xattrs --store "$MNT"
  _round pt_wb "$pt_bin" -f -o "source=$BENCH_TMP/pt,writeback" "$MNT"
  _round floor_wb "$floor_bin" --xattrs --writeback "$MNT"
  _round floor_wb+store "$floor_bin" --xattrs --writeback --redis "$SOCK" --store "$MNT"
  i=0
  for b in "${BINS[@]}"; do
    n=$((n + 1))
    i=$((i + 1))
    opts=()
    [[ $b != *,* ]] || opts=(-o "${b#*,}")
    _round "redisfs$i" "${b%%,*}" -f --redis "unix://$SOCK" --prefix "F$n" "${opts[@]}" "$MNT"
  done
done

python3 - "$BENCH_TMP/results" "$entries" "${BINS[@]}" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
bins = sys.argv[3:]
targets = list(dict.fromkeys(r[0] for r in rows))
med = {t: [statistics.median(float(r[k]) for r in rows if r[0] == t) for k in (1, 2)] for t in targets}
# CPU seconds a round (medians): the daemon's and redis-server's in tar x, then in rm -rf
cpu = {t: [statistics.median(int(r[k]) for r in rows if r[0] == t) / 100 for k in (3, 4, 5, 6)] for t in targets}
print(f"tar x of /usr/include ({sys.argv[2]} entries) + sync -f, then rm -rf; medians of "
      f"{sum(1 for r in rows if r[0] == 'passthrough_ll')} rounds; % of passthrough_ll's speed")
print(f"{'target':16} {'tar x s':>8} {'%':>5} {'rm -rf s':>9} {'%':>5}   CPU s a round, tar x: daemon, redis-server; "
      f"rm -rf: daemon, redis-server")
base = med["passthrough_ll"]
for t in targets:
    tar, rm = med[t]
    c = cpu[t]
    print(f"{t:16} {tar:8.2f} {100 * base[0] / tar:4.0f}% {rm:9.2f} {100 * base[1] / rm:4.0f}%   "
          f"{c[0]:5.2f} {c[1]:5.2f}   {c[2]:5.2f} {c[3]:5.2f}")
for i, b in enumerate(bins, 1):
    print(f"redisfs{i}: {b}")
EOF
