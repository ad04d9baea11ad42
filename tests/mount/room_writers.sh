#!/usr/bin/env bash
# A copy or a restore on a server with too little free memory stops
# before it takes the room the mounts' writes need (redisfs-snap(1),
# PRODUCTION REDIS, Memory; core/snap/room.hpp), even on a small server
# whose margin is less than a batch of blocks (the batches shrink with the
# room); a dump, which stages the metadata only, works there. And a dump
# whose output stalls while a writer rewrites more than the server has
# room for (each block's first write copies it for the dump's snapshot)
# stops, its snapshot ended before those copies fill the server. A copy
# begun while a dump stalls is not handed the dump's snapshot when the
# server has no room for the blocks the dump has not read: it waits for
# the dump, which works, then stops for want of room itself. A writer
# on a mount of the same server, writing all along, never gets ENOSPC,
# nothing staged is left, and the filesystem is consistent.
. "$(dirname "$0")/lib.sh"
need_snap -q

mount_fs
dd if=/dev/urandom of="$MNT/big" bs=1M count=8 status=none
sync -f "$MNT"
snap dump "$PREFIX" -o "$T/full.json"
used=$(rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
# room for a fraction of a copy of the 8 MiB file, and plenty for the writer
rcli config set maxmemory $((used + (5 << 20))) >/dev/null

python3 - "$MNT/w" "$T/writer.out" <<'PY' &
import os, sys, time
d, out = sys.argv[1], sys.argv[2]
os.mkdir(d)
n, errors = 0, []
end = time.time() + 6
while time.time() < end:
    try:
        with open(os.path.join(d, 'f%d' % (n % 50)), 'wb') as f:
            f.write(b'x' * 2048)
        n += 1
    except OSError as e:
        errors.append(f'{e.strerror} after {n} writes')
    time.sleep(0.005)
open(out, 'w').write(('\n'.join(errors) or 'ok %d' % n) + '\n')
PY
writer=$!
sleep 1
for cmd in "copy $PREFIX $PREFIX-c" "restore $T/full.json --prefix $PREFIX-r"; do
  read -ra argv <<<"$cmd"
  rc=0
  snap "${argv[@]}" 2>"$T/err" || rc=$?
  ((rc == 1)) || fail "$cmd exited $rc: $(cat "$T/err")"
  grep -q "stopped: the server is nearly out of memory" "$T/err" || fail "$cmd: $(cat "$T/err")"
  note "$(cat "$T/err")"
done
snap dump "$PREFIX" -o "$T/d.json" 2>"$T/err" || fail "the dump with 5 MiB free: $(cat "$T/err")"
snap verify "$T/d.json" >/dev/null || fail "the dump with 5 MiB free does not verify"
wait "$writer"
[[ $(cat "$T/writer.out") == ok* ]] || fail "the writer failed while the tools ran: $(cat "$T/writer.out")"
note "writer: $(cat "$T/writer.out")"
left=$(rcli --scan --pattern "${PREFIX}[~-]*" | head -3)
[[ -z $left ]] || fail "the tools left keys behind: $left"

note "a dump whose output stalls $((10 + 2)) s while a writer rewrites the 8 MiB file, 5 MiB free"
rcli config set maxmemory 0 >/dev/null
used=$(rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
rcli config set maxmemory $((used + (5 << 20))) >/dev/null
(
  rc=0
  REDISFS_FAULT=dump-stream-stall snap dump "$PREFIX" -o "$T/stalled.json" 2>"$T/err" || rc=$?
  echo "$rc" >"$T/dump.rc"
) &
dumper=$!
wait_snapshot "$PREFIX" dump >/dev/null
sleep 1
# 64 KiB every 50 ms: about 1.3 MB/s, so the keeper's look (every 100 ms
# on a server this small) comes before the copies pass the margin
python3 - "$MNT/big" "$T/rewriter.out" <<'PY'
import os, sys, time
path, out = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY)
err = 'ok'
for i in range(128):
    try:
        os.pwrite(fd, os.urandom(65536), i * 65536)
    except OSError as e:
        err = f'{e.strerror} at block {i}'
        break
    time.sleep(0.05)
os.close(fd)
open(out, 'w').write(err + '\n')
PY
[[ $(cat "$T/rewriter.out") == ok ]] || fail "the writer failed while the dump's output stalled: $(cat "$T/rewriter.out")"
wait "$dumper"
[[ $(cat "$T/dump.rc") == 1 ]] || fail "the stalled dump exited $(cat "$T/dump.rc"): $(cat "$T/err")"
grep -q "dump $PREFIX: the dump stopped: the server is nearly out of memory" "$T/err" || fail "the stalled dump: $(cat "$T/err")"
note "$(cat "$T/err")"
[[ ! -e $T/stalled.json ]] || fail "a stopped dump wrote its file"
left=$(rcli --scan --pattern "${PREFIX}[~-]*" | head -3)
[[ -z $left ]] || fail "the stopped dump left keys behind: $left"
[[ $(rcli exists "$PREFIX:COW") == 0 ]] || fail "the stopped dump left its snapshot record"

note "a copy begun while a dump stalls, with no room for the blocks the dump has not read: no handover"
rcli config set maxmemory 0 >/dev/null
used=$(rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
rcli config set maxmemory $((used + (5 << 20))) >/dev/null
REDISFS_FAULT=dump-stream-stall snap dump "$PREFIX" -o "$T/kept.json" 2>"$T/err" &
dumper=$!
staging=$(wait_snapshot "$PREFIX" dump)
(
  rc=0
  snap copy "$PREFIX" "$PREFIX-c2" 2>"$T/copy.err" || rc=$?
  echo "$rc" >"$T/copy.rc"
) &
copier=$!
sleep 3
[[ $(rcli hget "$PREFIX:COW" staging) == "$staging" ]] || fail "the dump handed its snapshot over without room: $(cat "$T/err") $(rcli hgetall "$PREFIX:COW" | tr "\n" " ")"
[[ $(rcli hget "$PREFIX:COW" wanted) == 1 ]] || fail "the waiting copy did not ask for the snapshot"
kill -0 "$copier" 2>/dev/null || fail "the copy did not wait for the dump: $(cat "$T/copy.err")"
wait "$dumper" || fail "the dump that kept its snapshot failed: $(cat "$T/err")"
snap verify "$T/kept.json" >/dev/null || fail "the dump that kept its snapshot does not verify"
wait "$copier"
if [[ $(cat "$T/copy.rc") != 1 ]] || ! grep -q "the copy stopped: the server is nearly out of memory" "$T/copy.err"; then
  fail "the copy after the dump: exit $(cat "$T/copy.rc"): $(cat "$T/copy.err")"
fi
left=$(rcli --scan --pattern "${PREFIX}[~-]*" | head -3)
[[ -z $left ]] || fail "the dump and the copy left keys behind: $left"
rcli config set maxmemory 0 >/dev/null
unmount_fs
check_consistency
note "ok"
