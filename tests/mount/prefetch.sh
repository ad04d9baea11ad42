#!/usr/bin/env bash
# prefetch: an open for reading brings a small file's first bytes in its
# own round trip (core/store/prefetch.hpp), and the first READ answers
# from them only while that is what a read of the server would answer:
# - files of every size around the block and the read-ahead limits read
#   back byte for byte, cold (a fresh mount, no size known) and after a
#   listing; after the listing, the READs of the files up to 128 KiB make
#   no round trip of their own (the daemon's counters, SIGUSR1);
# - a write through another descriptor of this mount, after the open and
#   before the read, is in what the read returns;
# - a change another mount closed after this open, once attr_timeout has
#   passed since the open, is in what the read returns (the bytes read
#   ahead are as fresh as the attributes the kernel holds);
# - a file unlinked between its open and its read still reads whole;
# - on a writeback mount (which keeps file pages across opens) the files
#   read back alike, their READs make no round trip of their own, and
#   reading them again (the pages are in the kernel's cache) reads
#   nothing ahead: no GETRANGE reaches the server but a READ's.
. "$(dirname "$0")/lib.sh"

SIZES=(0 1 4095 4096 5000 65535 65536 65537 100000 131072 131073 300000)
mount_fs
mkdir "$MNT/d" "$T/src"
for n in "${SIZES[@]}"; do
  head -c "$n" /dev/urandom >"$T/src/f$n"
  cp "$T/src/f$n" "$MNT/d/f$n"
done
unmount_fs

mount_fs
for n in "${SIZES[@]}"; do  # cold: each name looked up, no size known
  cmp "$T/src/f$n" "$MNT/d/f$n" || fail "a cold read of a file of $n bytes differs"
done
unmount_fs

mount_fs
ls -l "$MNT/d" >/dev/null  # the listing hands the sizes over
read -r reads0 trips0 < <(trips read)
for n in "${SIZES[@]}"; do
  ((n <= 131072)) || continue
  cmp "$T/src/f$n" "$MNT/d/f$n" || fail "a read after a listing of a file of $n bytes differs"
done
read -r reads1 trips1 < <(trips read)
note "reads of the files up to 128 KiB after a listing: $((reads1 - reads0)) READs, $((trips1 - trips0)) round trips"
((reads1 - reads0 >= 8)) || fail "8 files with bytes read with $((reads1 - reads0)) READs (nothing checked)"
((trips1 - trips0 == 0)) || fail "the READs of the files up to 128 KiB cost $((trips1 - trips0)) round trips, want none"
for n in "${SIZES[@]}"; do
  ((n > 131072)) || continue
  cmp "$T/src/f$n" "$MNT/d/f$n" || fail "a read after a listing of a file of $n bytes differs"
done

# A write through another descriptor between the open and the read.
python3 - "$MNT/d/f5000" <<'PY' || fail "a read after a write of this mount, behind the open, missed it"
import sys
r = open(sys.argv[1], "rb", buffering=0)
with open(sys.argv[1], "r+b", buffering=0) as w:
    w.write(b"NEW")
assert r.read(8192)[:3] == b"NEW"
PY

# Another mount's change, closed after the open, once attr_timeout (1 s)
# has passed: the read asks the server.
B=$T/b
mount_at "$B"
python3 - "$MNT/d/f4095" "$B/d/f4095" <<'PY' || fail "a read 1.5 s after the open missed another mount's change closed before it"
import sys, time
r = open(sys.argv[1], "rb", buffering=0)
time.sleep(1.5)
with open(sys.argv[2], "r+b", buffering=0) as w:
    w.write(b"THEIRS")
assert r.read(8192)[:6] == b"THEIRS"
PY
unmount_fs "$B"

# Unlinked between the open and the read: the open holds it.
python3 - "$MNT/d/f65536" "$T/src/f65536" <<'PY' || fail "a file unlinked after its open did not read whole"
import os, sys
r = open(sys.argv[1], "rb", buffering=0)
os.unlink(sys.argv[1])
data = b""
while True:
    b = r.read(1 << 20)
    if not b:
        break
    data += b
assert data == open(sys.argv[2], "rb").read()
PY
unmount_fs

# (what the cases above wrote, in the sources too)
printf NEW | dd of="$T/src/f5000" conv=notrunc status=none
printf THEIRS | dd of="$T/src/f4095" conv=notrunc status=none
mount_fs -o writeback
ls -l "$MNT/d" >/dev/null
read -r reads0 trips0 < <(trips read)
for n in "${SIZES[@]}"; do
  ((n <= 131072)) || continue
  [[ $n == 65536 ]] && continue # (unlinked above)
  cmp "$T/src/f$n" "$MNT/d/f$n" || fail "a read on a writeback mount of a file of $n bytes differs"
done
read -r reads1 trips1 < <(trips read)
((reads1 - reads0 >= 7)) || fail "a writeback mount read 7 files with bytes with $((reads1 - reads0)) READs (nothing checked)"
((trips1 - trips0 == 0)) || fail "on a writeback mount, the READs of the small files cost $((trips1 - trips0)) round trips, want none"
ranges0=$(command_calls getrange)
read -r reads0 trips0 < <(trips read)
for n in "${SIZES[@]}"; do
  ((n <= 131072 && n != 65536)) || continue
  cmp "$T/src/f$n" "$MNT/d/f$n" || fail "a second read on a writeback mount of a file of $n bytes differs"
done
ranges1=$(command_calls getrange)
read -r reads1 trips1 < <(trips read)
# (The kernel may have dropped some pages meanwhile: a shared machine's
# reclaim, DAMON's here. A READ of those asks the server in a round trip of
# its own, as it should; a range read ahead by the open comes with no
# such round trip.)
note "reading the cached files again: $((ranges1 - ranges0)) block ranges read, READs made $((trips1 - trips0)) round trips"
((ranges1 == ranges0 || trips1 > trips0)) ||
  fail "reading cached files again on a writeback mount read $((ranges1 - ranges0)) block ranges ahead"
unmount_fs
