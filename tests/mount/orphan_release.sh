#!/usr/bin/env bash
# orphan_release: a file removed while open here (an orphan: unlinked, or
# replaced by a rename) is freed by its last release, in the release's own
# round trip, so the kernel's FORGET that follows costs none (it used to
# purge the orphan: at least one more round trip, five when it overtook the
# release); nothing of it is left on the server; the same on a -o
# writeback mount; and a file open on another mount lives until that
# mount's last close.
. "$(dirname "$0")/lib.sh"

# orphans DIR N: N times, make DIR/o with data, remove it while open (an
# unlink, or a rename of another file over it), read it back, close it
orphans() {
  python3 - "$1" "$2" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    path = os.path.join(d, "o")
    with open(path, "wb") as f:
        f.write(b"orphan %d" % i)
    fd = os.open(path, os.O_RDONLY)
    if i % 2:
        with open(path + ".new", "wb") as f:
            f.write(b"new")
        os.rename(path + ".new", path)
    else:
        os.unlink(path)
    assert os.pread(fd, 100, 0) == b"orphan %d" % i, "an orphan's data is gone while it is open"
    os.close(fd)
PY
}

# forget_trips_after MNT N: runs orphans N in MNT, waits for the kernel's
# FORGETs, and prints the round trips they made
forget_trips_after() {
  local mnt=$1 n0 rt0 n1 rt1 i
  read -r n0 rt0 < <(trips forget "$mnt")
  orphans "$mnt" "$2"
  for ((i = 0; i < 50; i++)); do
    read -r n1 rt1 < <(trips forget "$mnt")
    ((n1 - n0 >= $2 / 2)) && break
    sleep 0.1
  done
  ((n1 - n0 >= $2 / 2)) || fail "the kernel forgot $((n1 - n0)) of $2 orphans (nothing checked)"
  echo $((rt1 - rt0))
}

# no_orphans_left: no ORPHANS record, no open count, and only the inodes
# of the root and of the named files
no_orphans_left() {
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -z $(fs_keys ORPHANS) && -z $(fs_keys 'OPEN:*') ]] && break
    sleep 0.1
  done
  [[ -z $(fs_keys ORPHANS) ]] || fail "orphans left on the server: $(rcli hgetall "$PREFIX:ORPHANS" | tr '\n' ' ')"
  [[ -z $(fs_keys 'OPEN:*') ]] || fail "open counts left on the server: $(fs_keys 'OPEN:*' | tr '\n' ' ')"
  local inodes
  inodes=$(fs_keys 'INODE:*' | wc -l)
  ((inodes == $1)) || fail "$inodes inodes on the server, not $1: $(fs_keys 'INODE:*' | tr '\n' ' ')"
}

mount_fs
orphans "$MNT" 4 # (a warm-up: the first changes of a mount may cost more)
t=$(forget_trips_after "$MNT" 10)
((t == 0)) || fail "the FORGETs of 10 orphans freed by their last release cost $t Redis round trips, not 0"
no_orphans_left 2 # the root and o
[[ $(cat "$MNT/o") == new ]] || fail "o reads '$(cat "$MNT/o")', not the file renamed over it"

# another mount holds the file open: it lives until that mount closes it
B=$T/b
mount_at "$B"
echo shared >"$MNT/s"
exec {fd}<"$B/s"
rm "$MNT/s"
sleep 0.3
[[ $(cat <&$fd) == shared ]] || fail "a file open on another mount lost its data when this one removed it"
[[ -n $(fs_keys ORPHANS) ]] || fail "a file open on another mount is not kept as an orphan"
exec {fd}<&-
no_orphans_left 2
unmount_fs "$B"
unmount_fs

# the same on a writeback mount (the kernel's RELEASE comes later there)
mount_fs -o writeback
orphans "$MNT" 4
t=$(forget_trips_after "$MNT" 10)
((t == 0)) || fail "-o writeback: the FORGETs of 10 orphans cost $t Redis round trips, not 0"
no_orphans_left 2
unmount_fs
check_consistency
