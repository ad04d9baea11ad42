#!/usr/bin/env bash
# atime: relatime, as Linux mounts by default, decided by the server
# (touch_atime.lua) in the read's own round trip (Store::read_pieces):
#   - a read records an access when the last one is not newer than the
#     last change, and not again until the file changes (or a day passes);
#   - a read costs one Redis round trip (the daemon's counters, SIGUSR1),
#     also when it records an access (a small file's, with its open's:
#     store/prefetch.hpp); reads after one that found the
#     access recorded send no script, until the file changes (also
#     through another mount: the read's own reply shows it);
#   - the GETATTR the kernel sends after a write or a read of a file is
#     answered from the script's reply (AttrCache), with the server's
#     size and times, without a round trip;
#   - a noatime mount never writes an atime (a --read-only one neither:
#     readonly.sh).
. "$(dirname "$0")/lib.sh"

mount_fs
printf 'hello\n' >"$MNT/f"
ino=$(stat -c %i "$MNT/f")
atime() { rcli HGET "$PREFIX:INODE:$ino" atime; }
mtime=$(rcli HGET "$PREFIX:INODE:$ino" mtime)
a0=$(atime)
((a0 <= mtime)) || fail "a new file's atime $a0 is after its mtime $mtime"

# reads (each open drops the page cache of a read-write mount: one READ each)
read_file() { python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$MNT/f"; }
# (a warm-up: the first reads of a mount may cost more; counted from here)
printf 'x\n' >"$MNT/warm"
for _ in 1 2 3 4 5 6; do python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$MNT/warm"; done
read -r reads0 trips0 < <(trips read)
read -r opens0 otrips0 < <(trips open)
read_file
a1=$(atime)
((a1 > mtime)) || fail "a read of a file changed since its last access left atime at $a1 (mtime $mtime)"
read_file
[[ $(atime) == "$a1" ]] || fail "a second read moved atime from $a1 to $(atime): relatime records one access per change"
printf 'more\n' >>"$MNT/f"
read_file
a2=$(atime)
((a2 > a1 && a2 > $(rcli HGET "$PREFIX:INODE:$ino" mtime))) || fail "a read after a write left atime at $a2"

read -r reads1 trips1 < <(trips read)
read -r opens1 otrips1 < <(trips open)
((reads1 - reads0 == 3)) || fail "3 reads of a small file made $((reads1 - reads0)) READ requests"
# (each read in its open's round trip: store/prefetch.hpp)
((trips1 - trips0 == 0)) || fail "3 reads of a small file cost $((trips1 - trips0)) round trips of their own, want none"
# (4 opens: the 3 reads' and the append's)
((opens1 - opens0 == 4 && otrips1 - otrips0 == 4)) ||
  fail "$((opens1 - opens0)) opens, 3 of them read (2 recording an access), cost $((otrips1 - otrips0)) Redis round trips, want 4 opens in 4 (the access time in a round trip of its own?)"

# fstat after a write (to the server at once: the file is not new) and
# after a read: what the scripts read back, no round trip
read -r getattrs0 gtrips0 < <(trips getattr)
python3 - "$MNT/f" >"$T/seen" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(3):
    os.pwrite(fd, b"abc", 100 + i)
    st = os.fstat(fd)
    assert st.st_size == 103 + i, st
    os.pread(fd, 10, 0)
    os.fstat(fd)
print(os.fstat(fd).st_mtime_ns, os.fstat(fd).st_atime_ns)
os.close(fd)
PY
read -r getattrs1 gtrips1 < <(trips getattr)
((getattrs1 > getattrs0)) || fail "the kernel sent no GETATTR after writes and reads (nothing checked)"
# (at most one: the root's own, when the open's path walk finds its
# attributes expired; without the replies, 3 writes and 3 reads cost 6)
((gtrips1 - gtrips0 <= 1)) || fail "$((getattrs1 - getattrs0)) GETATTRs after writes and reads cost $((gtrips1 - gtrips0)) round trips"
read -r seen_m seen_a <"$T/seen"
[[ $seen_m == $(rcli HGET "$PREFIX:INODE:$ino" mtime) && $seen_a == $(atime) ]] ||
  fail "fstat after a write and a read showed mtime/atime $seen_m/$seen_a, the server has $(rcli HMGET "$PREFIX:INODE:$ino" mtime atime | tr '\n' /)"
unmount_fs

# Reads of a file after one that found its access recorded send no
# touch_atime.lua (the server's EVALSHA count), until the file changes; a
# change by another mount (B) between two reads of an open file is seen in
# the read's own reply, and that read records the access.
mount_fs
B=$T/b
mount_at "$B"
dd if=/dev/zero of="$MNT/big" bs=64k count=16 status=none
ino=$(stat -c %i "$MNT/big")
big_times() { rcli HMGET "$PREFIX:INODE:$ino" atime mtime | paste -sd' '; }
python3 - "$MNT/big" "$SOCK" "$B/big" >"$T/reads" <<'PY'
import os, subprocess, sys
def evalshas():
    out = subprocess.run(["redis-cli", "-s", sys.argv[2], "INFO", "commandstats"], capture_output=True, text=True).stdout
    line = [l for l in out.split("\n") if l.startswith("cmdstat_evalsha:")]
    return int(line[0].split("calls=")[1].split(",")[0]) if line else 0
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # one READ a pread, no readahead
os.pread(fd, 4096, 0)  # records the access
n0 = evalshas()
for i in range(1, 8):
    os.pread(fd, 4096, i * 131072)
n1 = evalshas()
with open(sys.argv[3], "r+b") as other:  # another mount changes the file
    other.seek(100)
    other.write(b"x")
os.pread(fd, 4096, 65536)
os.close(fd)
print(n1 - n0)
PY
read -r scripts <"$T/reads"
((scripts <= 2)) || fail "7 reads of a file whose access was recorded sent $scripts scripts (the access time recorded again and again?)"
read -r a m < <(big_times)
((a > m)) || fail "a read after another mount's write left atime at $a (mtime $m)"
unmount_fs "$B"
unmount_fs

# noatime: reads never write an atime
mount_fs -o noatime
printf 'x\n' >"$MNT/g"
ino=$(stat -c %i "$MNT/g")
a0=$(atime)
read_file() { python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$MNT/g"; }
read_file
[[ $(atime) == "$a0" ]] || fail "a noatime mount moved atime from $a0 to $(atime)"
unmount_fs
