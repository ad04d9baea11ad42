#!/usr/bin/env bash
# A restore keeps the memory it frees for its next writes
# (core/util/heap.hpp): the page faults it takes do not grow with the
# dump. With glibc's defaults the memory of its pipeline (up to 8 MB of
# writes, staging_writes.cpp) went back to the kernel as the replies came
# and was faulted in again: 13,200 faults restoring 64 MiB, 25,000 for
# 128 MiB (about 10 us each on a virtual machine); about 4,000 now,
# whatever the size. Counted by the kernel (the child's ru_minflt), never
# timed.
. "$(dirname "$0")/snap_lib.sh"

skip_when_sanitized "a sanitizer's allocator is not glibc's"

# minflt CMD...: runs CMD (its output dropped) and prints the page faults
# it took (posix_spawn: no copy of python's memory is faulted in on its
# behalf, as a fork's would be; wait4 gives that one child's usage).
minflt() {
  python3 - "$@" <<'PY'
import os, sys
null = os.open(os.devnull, os.O_WRONLY)
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
_, status, usage = os.wait4(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"{sys.argv[1]} failed: {os.waitstatus_to_exitcode(status)}")
print(usage.ru_minflt)
PY
}

make_fs SKX
# 64 MiB in data.bin (inode 3), in blocks of 64 KiB (the default size)
blocks=1024 bs=65536
rcli hset SKX:SB block_size $bs bytes $((13 + blocks * bs)) >/dev/null
rcli del SKX:BLK:3:0 SKX:BLK:3:2 >/dev/null
python3 - "$blocks" "$bs" <<'PY' | redis-cli -s "$SOCK" --pipe >/dev/null
import os, sys
n, bs = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    key, val = b'SKX:BLK:3:%d' % i, os.urandom(bs)
    sys.stdout.buffer.write(b'*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' % (len(key), key, len(val), val))
PY
rcli hset SKX:INODE:3 size $((blocks * bs)) bytes $((blocks * bs)) >/dev/null
snap -q fsck SKX
snap -q dump SKX -o "$T/fs.json"
src=$(fs_digest SKX)

faults=$(minflt "$REDISFS_SNAP_BIN" --redis "$URL" -q restore "$T/fs.json" --prefix SKX2)
[[ $(fs_digest SKX2) == "$src" ]] || fail "the restored filesystem differs from its source"
note "restoring 64 MiB: $faults page faults"
((faults < 8000)) || fail "restoring 64 MiB took $faults page faults: freed memory went back to the kernel"
note ok
