#!/usr/bin/env bash
# A copy, a dump or a restore on a server with too little free memory
# stops before it takes the room the mounts' writes need (redisfs-snap(1),
# PRODUCTION REDIS, Memory; core/snap/room.hpp), even on a small server
# whose margin is less than a batch of blocks (the batches shrink with the
# room): a writer on a mount of the same server, writing all along, never
# gets ENOSPC, nothing staged is left, and the filesystem is consistent.
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
for cmd in "copy $PREFIX $PREFIX-c" "dump $PREFIX -o $T/d.json" "restore $T/full.json --prefix $PREFIX-r"; do
  read -ra argv <<<"$cmd"
  rc=0
  snap "${argv[@]}" 2>"$T/err" || rc=$?
  ((rc == 1)) || fail "$cmd exited $rc: $(cat "$T/err")"
  grep -q "stopped: the server is nearly out of memory" "$T/err" || fail "$cmd: $(cat "$T/err")"
  note "$(cat "$T/err")"
done
wait "$writer"
[[ $(cat "$T/writer.out") == ok* ]] || fail "the writer failed while the tools ran: $(cat "$T/writer.out")"
note "writer: $(cat "$T/writer.out")"
left=$(rcli --scan --pattern "$PREFIX[~-]*" | head -3)
[[ -z $left ]] || fail "the tools left keys behind: $left"
rcli config set maxmemory 0 >/dev/null
unmount_fs
check_consistency
note "ok"
