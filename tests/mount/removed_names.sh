#!/usr/bin/env bash
# removed_names: what sqlite's journal costs (a file made, written, closed
# and removed at every commit) and what it may cost another mount:
#   - the kernel asks again (LOOKUP) for a name it saw removed; a name this
#     mount removed less than the entry timeout ago is answered absent
#     without a round trip (Store's RemovedNames);
#   - the unlink of a file closed a moment before costs one round trip: its
#     queued release travels in the unlink's pipeline (the release of a
#     file the unlink made an orphan too, when the kernel's RELEASE came
#     after the unlink: the mount loaded every script at its start, so no
#     script costs a NOSCRIPT round trip at its first use);
#   - another mount's create of such a name is seen here once the entry
#     timeout has passed (as behind any negative entry), and a create here
#     that meets it on the server opens it (EEXIST, then the VFS looks the
#     name up again, on the server).
. "$(dirname "$0")/lib.sh"

# journal N: N times, create j (O_EXCL), write, close, remove it
journal() {
  python3 - "$MNT/j" "$1" <<'PY'
import os, sys
for _ in range(int(sys.argv[2])):
    fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    os.write(fd, b"journal")
    os.close(fd)
    os.unlink(sys.argv[1])
PY
}

mount_fs -o entry_timeout=30
journal 3 # (the first changes of a mount may cost more: an inode allocation)
read -r lookups0 ltrips0 < <(trips lookup)
read -r unlinks0 utrips0 < <(trips unlink)
journal 5
read -r lookups1 ltrips1 < <(trips lookup)
read -r unlinks1 utrips1 < <(trips unlink)
((lookups1 - lookups0 >= 5)) || fail "5 creates of a removed name made $((lookups1 - lookups0)) LOOKUPs (nothing checked)"
((ltrips1 - ltrips0 == 0)) ||
  fail "5 lookups of a name this mount had just removed cost $((ltrips1 - ltrips0)) Redis round trips, not 0"
((unlinks1 - unlinks0 == 5)) || fail "5 unlinks made $((unlinks1 - unlinks0)) UNLINK requests"
((utrips1 - utrips0 <= 5)) ||
  fail "5 unlinks cost $((utrips1 - utrips0)) Redis round trips, not 5 (the queued release in a round trip of its own?)"
(($(error_count NOSCRIPT) == 0)) ||
  fail "the mount's scripts met NOSCRIPT $(error_count NOSCRIPT) times: not loaded at its start"

# another mount makes a name this one removed
B=$T/b
mount_at "$B" -o entry_timeout=30
echo gone >"$MNT/n"
rm "$MNT/n"
[[ ! -e $MNT/n ]] || fail "n is still there after rm"
echo theirs >"$B/n"
echo mine >>"$MNT/n" || fail "an append (O_CREAT) to a name the other mount made meanwhile failed"
[[ $(cat "$MNT/n") == $'theirs\nmine' ]] || fail "n holds '$(cat "$MNT/n")', not B's line and then ours"
unmount_fs "$B"

# ... seen once the entry timeout has passed
C=$T/c
mount_at "$C" -o entry_timeout=1,attr_timeout=1
echo x >"$C/m"
rm "$C/m"
[[ ! -e $C/m ]] || fail "m is still there after rm"
echo y >"$MNT/m"
sleep 1.5
[[ -e $C/m ]] || fail "another mount's create of a name this mount removed is unseen after the entry timeout"
[[ $(cat "$C/m") == y ]] || fail "m reads '$(cat "$C/m")' through the mount that removed it, not y"
unmount_fs "$C"

# A new name in a directory this mount made and fills costs no LOOKUP
# round trip (DirNames), and a refused rmdir of a directory in it that is
# not empty keeps it so: the refusal came before any change, and the names
# the mount knows still hold. (A failed or lost change drops them.)
mkdir "$MNT/filling" "$MNT/filling/full"
touch "$MNT/filling/full/x" "$MNT/filling/first"
read -r _ ltrips0 < <(trips lookup)
touch "$MNT/filling/second"
read -r _ ltrips1 < <(trips lookup)
((ltrips1 - ltrips0 == 0)) || fail "a new name in a directory this mount fills cost $((ltrips1 - ltrips0)) lookup round trips"
rmdir "$MNT/filling/full" 2>/dev/null && fail "rmdir of a directory that is not empty succeeded"
touch "$MNT/filling/third"
read -r _ ltrips2 < <(trips lookup)
((ltrips2 - ltrips1 == 0)) ||
  fail "after a refused rmdir, a new name in the directory cost $((ltrips2 - ltrips1)) lookup round trips: the names it knew were dropped"
[[ $(ls "$MNT/filling" | tr '\n' ' ') == "first full second third " ]] || fail "filling lists $(ls "$MNT/filling" | tr '\n' ' ')"
unmount_fs
