#!/usr/bin/env bash
# unlink_open: a file unlinked while open keeps working through its fd,
# stays in Redis as an orphan (nlink 0, listed in ORPHANS) while it is
# open, and leaves no key behind once it is closed. An unlinked file that
# no one has open goes at once. So does a fifo (or a device: the kernel
# opens them without asking the daemon) held open: fstat and fchmod through
# the fd work after its last name went, and it goes once closed.
. "$(dirname "$0")/lib.sh"

mount_fs

inode_keys() {  # ino: the keys of that inode (INODE, BLK, XATTR)
  { fs_keys "INODE:$1"; fs_keys "BLK:$1:*"; fs_keys "XATTR:$1"; } | sort
}

wait_no_keys() {  # ino: the purge follows the kernel's FORGET, a moment after close
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -z $(inode_keys "$1") && $(rcli hexists "$PREFIX:ORPHANS" "$1") == 0 ]] && return 0
    sleep 0.05
  done
  fail "inode $1 still has keys after close: $(inode_keys "$1" | tr '\n' ' ') orphan=$(rcli hget "$PREFIX:ORPHANS" "$1")"
}

exec 3<>"$MNT/f"
head -c 300000 /dev/urandom >"$T/data"
cat "$T/data" >&3
setfattr -n user.k -v v "$MNT/f"
ino=$(stat -c %i "$MNT/f")
rm "$MNT/f"
[[ ! -e $MNT/f ]] || fail "f still visible after rm"
[[ -z $(ls -A "$MNT") ]] || fail "listing not empty: $(ls -A "$MNT")"
printf 'tail' >&3
# read through the open fd (a new open of the same inode via /proc)
printf 'tail' >>"$T/data"
cmp "$T/data" "/proc/$$/fd/3" || fail "content read through the open fd differs"
[[ $(stat -L -c %h "/proc/$$/fd/3") == 0 ]] || fail "nlink of the open unlinked file is $(stat -L -c %h "/proc/$$/fd/3"), want 0"
[[ $(stat -L -c %s "/proc/$$/fd/3") == 300004 ]] || fail "size $(stat -L -c %s "/proc/$$/fd/3"), want 300004"

[[ $(rcli exists "$PREFIX:INODE:$ino") == 1 ]] || fail "INODE:$ino gone while the file is open"
[[ $(rcli hget "$PREFIX:INODE:$ino" nlink) == 0 ]] || fail "INODE:$ino nlink is $(rcli hget "$PREFIX:INODE:$ino" nlink)"
[[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 1 ]] || fail "inode $ino is not in ORPHANS while open"
[[ -n $(fs_keys "BLK:$ino:*") ]] || fail "no BLK keys while the file is open"
check_consistency -q

exec 3>&-
wait_no_keys "$ino"
note "orphan $ino purged after close"

# unlinked while closed: nothing to keep
head -c 100000 /dev/urandom >"$MNT/g"
ino=$(stat -c %i "$MNT/g")
rm "$MNT/g"
wait_no_keys "$ino"

# the last of two links goes while open through the other name
echo data >"$MNT/h"
ino=$(stat -c %i "$MNT/h")
ln "$MNT/h" "$MNT/h2"
exec 4<"$MNT/h2"
rm "$MNT/h"
[[ $(rcli hget "$PREFIX:INODE:$ino" nlink) == 1 ]] || fail "nlink after removing one of two links"
rm "$MNT/h2"
[[ $(cat <&4) == data ]] || fail "read after the last link went"
exec 4<&-
wait_no_keys "$ino"

# renamed over while open: the replaced inode is the orphan
echo old >"$MNT/victim"
echo new >"$MNT/winner"
ino=$(stat -c %i "$MNT/victim")
exec 5<"$MNT/victim"
mv "$MNT/winner" "$MNT/victim"
[[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 1 ]] || fail "the inode replaced by rename is not an orphan"
[[ $(cat <&5) == old ]] || fail "the replaced file reads wrong"
exec 5<&-
wait_no_keys "$ino"
[[ $(cat "$MNT/victim") == new ]] || fail "rename target content"

# a fifo held open loses its last name (by unlink, then by a rename over
# it): fstat and fchmod through the fd, as on a local filesystem
for how in rm mv; do
  mkfifo -m 0640 "$MNT/fifo"
  ino=$(stat -c %i "$MNT/fifo")
  exec 6<>"$MNT/fifo"
  if [[ $how == rm ]]; then
    rm "$MNT/fifo"
  else
    echo x >"$MNT/other" && mv "$MNT/other" "$MNT/fifo"
  fi
  [[ $(stat -L -c '%F %h %a' "/proc/$$/fd/6") == "fifo 0 640" ]] ||
    fail "fstat of a fifo held open after $how: $(stat -L -c '%F %h %a' "/proc/$$/fd/6" 2>&1)"
  chmod 0600 "/proc/$$/fd/6" || fail "fchmod of a fifo held open after $how"
  [[ $(stat -L -c %a "/proc/$$/fd/6") == 600 ]] || fail "the fifo's mode after fchmod ($how)"
  echo through >&6
  line=
  read -r -t 5 line <&6 || true
  [[ $line == through ]] || fail "the fifo carries no data after $how (read '$line')"
  exec 6<&-
  wait_no_keys "$ino"
  rm -f "$MNT/fifo"
done
mkfifo "$MNT/fifo2"
ino=$(stat -c %i "$MNT/fifo2")
rm "$MNT/fifo2"
wait_no_keys "$ino"
note "fifos held open keep their inode after the last name goes, purged after close"

unmount_fs
check_consistency --no-orphans
