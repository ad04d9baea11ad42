#!/usr/bin/env bash
# writeback_unlink: a writeback mount answers the unlink of a file's last
# link at once, when the mount holds the file not open, and the rmdir of a
# directory it made and emptied, and a thread of the daemon sends them
# with those answered meanwhile (core/store/store_dirs.cpp); it lists a
# directory it made from what it knows (Store::readdir): rm -rf of a tree
# it wrote costs no round trip at all. What the mount shows does not change:
# the name is gone, the directory's listing, times and count follow, a name
# made again holds the new file, a file still open lives on (its unlink
# goes at once and leaves this mount's orphan), a file with another link
# keeps it. The server has each unlink before anything else the mount
# sends, after an fsync of the directory, in a snapshot, and at unmount;
# nothing is left behind. An unlink the server refuses when it is sent
# (the name names another inode: damage), or an rmdir (a name came behind
# the mount's back), is logged once and is the next directory fsync's EIO;
# a file linked behind the mount's back, as the kernel looked it up, is
# unlinked at once and its later changes reach the server.
. "$(dirname "$0")/lib.sh"
need_snap

# entry DIR NAME: the inode DIR's entry NAME names on the server, or ''
entry() {
  rcli hget "$PREFIX:DIR:$(stat -c %i "$1")" "$2"
}

# closed INO: waits (4 s at most) until the server has the close of INO
# (an unlink of a file still held goes at once)
closed() {
  local i
  for ((i = 0; i < 200; i++)); do
    [[ $(rcli exists "$PREFIX:OPEN:$1") == 0 ]] && return 0
    sleep 0.02
  done
}

mount_fs -o writeback
mkdir -p "$MNT/t/a/b" "$MNT/d"
for i in $(seq 1 100); do
  echo "file $i" >"$MNT/t/a/f$i"
  echo "file $i" >"$MNT/t/a/b/g$i"
done
sync -f "$MNT"

# rm -rf: no round trip an unlink, an rmdir or a listing (the names are
# those the mount made, the files' attributes those their close's flush
# brought back); nothing left of the tree, here or there
read -r n0 rt0 < <(trips unlink)
read -r d0 drt0 < <(trips rmdir)
read -r l0 lrt0 < <(trips readdirplus)
rm -rf "$MNT/t/a"
read -r n1 rt1 < <(trips unlink)
read -r d1 drt1 < <(trips rmdir)
read -r l1 lrt1 < <(trips readdirplus)
((n1 - n0 == 200)) || fail "rm -rf sent $((n1 - n0)) unlinks, not 200"
((rt1 - rt0 <= 20)) || fail "200 unlinks cost $((rt1 - rt0)) round trips on a writeback mount"
((d1 - d0 == 2 && drt1 == drt0)) || fail "rm -rf's $((d1 - d0)) rmdirs cost $((drt1 - drt0)) round trips, not 0"
((l1 > l0 && lrt1 == lrt0)) ||
  fail "rm -rf's $((l1 - l0)) listings of directories this mount made cost $((lrt1 - lrt0)) round trips"
[[ -z $(ls -A "$MNT/t") ]] || fail "the removed tree still shows: $(ls -A "$MNT/t")"
[[ -z $(rcli hkeys "$PREFIX:DIR:$(stat -c %i "$MNT/t")") ]] || fail "the server still names entries of t"

# the directory's count and times follow at once, and are the server's
touch "$MNT/d/x" "$MNT/d/y" "$MNT/d/z"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/d"
before=$(stat -c %Y "$MNT/d")
sleep 1.1
rm "$MNT/d/x"
shown=$(python3 -c 'import os, sys; print(os.stat(sys.argv[1]).st_mtime_ns)' "$MNT/d")
(( shown / 1000000000 > before )) || fail "the directory's mtime did not move with the unlink: $before then $shown"
[[ $(ls "$MNT/d" | tr '\n' ' ') == "y z " ]] || fail "the listing after an unlink: $(ls "$MNT/d")"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/d"
[[ $(rcli hget "$PREFIX:INODE:$(stat -c %i "$MNT/d")" mtime) == "$shown" ]] ||
  fail "the server's mtime of the directory is not the one the mount showed ($shown)"
[[ -z $(entry "$MNT/d" x) ]] || fail "fsync of the directory returned before its unlink was on the server"

# a name removed and made again: the new file, here and there
for i in $(seq 1 30); do
  echo "old $i" >"$MNT/d/again"
  rm "$MNT/d/again"
  echo "new $i" >"$MNT/d/again"
  [[ $(cat "$MNT/d/again") == "new $i" ]] || fail "round $i: the name made again reads $(cat "$MNT/d/again")"
done
sync -f "$MNT"
[[ $(entry "$MNT/d" again) == $(stat -c %i "$MNT/d/again") ]] || fail "the server's entry is not the new file's"

# a file held open: its data lives on until the close; another link stays
echo "still here" >"$MNT/d/open"
echo "linked" >"$MNT/d/one"
ln "$MNT/d/one" "$MNT/d/two"
exec 7<"$MNT/d/open"
rm "$MNT/d/open" "$MNT/d/one"
[[ $(cat <&7) == "still here" ]] || fail "an open file lost its data to its unlink"
exec 7<&-
[[ $(cat "$MNT/d/two") == linked && $(stat -c %h "$MNT/d/two") == 1 ]] || fail "the other link of a removed name"

# a directory removed while a process works in it: it lives on, this
# mount's orphan, until the kernel forgets it (then purged: the unmount's
# check below finds no orphan)
mkdir "$MNT/d/cwd"
(cd "$MNT/d/cwd" && exec sleep 1) &
cwdpid=$!
for ((i = 0; i < 100; i++)); do
  [[ $(readlink "/proc/$cwdpid/cwd" 2>/dev/null) == "$MNT/d/cwd" ]] && break
  sleep 0.02
done
rmdir "$MNT/d/cwd" || fail "rmdir of a directory a process works in"
[[ ! -e $MNT/d/cwd ]] || fail "a removed directory still shows"
wait "$cwdpid"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/d"
[[ -z $(entry "$MNT/d" cwd) ]] || fail "fsync of the directory returned before its rmdir was on the server"

# anything else the mount sends goes after the unlinks; a snapshot has them
touch "$MNT/d/s1" "$MNT/d/s2"
sync -f "$MNT"
rm "$MNT/d/s1"
mkdir "$MNT/d/after"
[[ -z $(entry "$MNT/d" s1) ]] || fail "a mkdir reached the server before the unlink it followed"
rm "$MNT/d/s2"
snap --quiet copy "$PREFIX" "$PREFIX-snap" || fail "copy of the writeback mount"
[[ -z $(rcli hget "$PREFIX-snap:DIR:$(stat -c %i "$MNT/d")" s2) ]] || fail "the snapshot lacks an unlink made before it"
snap --quiet delete --force "$PREFIX-snap"

# refused when sent (the name names another inode now): logged once, the
# next directory fsync's EIO
touch "$MNT/d/r"
sync -f "$MNT"
rino=$(stat -c %i "$MNT/d/r")
closed "$rino"
sleep 0.1
refusal="writeback: unlink of 'r' in directory $(stat -c %i "$MNT/d") (sent after its unlink returned): "
python3 "$HERE/refused_once.py" "$MNT/d" "${MOUNT_LOGS[$MNT]}" "$refusal" "$SOCK" \
  "$PREFIX:DIR:$(stat -c %i "$MNT/d")" r 999999 unlink:r ||
  fail "an unlink refused when sent"
(($(grep -cF "$refusal" "${MOUNT_LOGS[$MNT]}") == 1)) || fail "a refused unlink was logged more than once"
[[ $(entry "$MNT/d" r) == 999999 ]] || fail "a refused unlink changed the entry"
rcli hset "$PREFIX:DIR:$(stat -c %i "$MNT/d")" r "$rino" >/dev/null  # (mended)
mkdir "$MNT/d/rd"
refusal="writeback: rmdir of 'rd' in directory $(stat -c %i "$MNT/d") (sent after its rmdir returned): "
python3 "$HERE/refused_once.py" "$MNT/d" "${MOUNT_LOGS[$MNT]}" "$refusal" "$SOCK" \
  "$PREFIX:DIR:$(stat -c %i "$MNT/d/rd")" stray 999999 rmdir:rd ||
  fail "an rmdir refused when sent"
(($(grep -cF "$refusal" "${MOUNT_LOGS[$MNT]}") == 1)) || fail "a refused rmdir was logged more than once"
[[ -n $(entry "$MNT/d" rd) ]] || fail "a refused rmdir removed the entry"
rcli hdel "$PREFIX:DIR:$(rcli hget "$PREFIX:DIR:$(stat -c %i "$MNT/d")" rd)" stray >/dev/null  # (mended)

# a link made behind the mount's back (damage, as it is the only mount),
# in a directory it does not know whole, which the kernel then looks up:
# the mount no longer takes the file for one with a single link (it made
# it), so its unlink goes at once, and the file's later changes reach the
# server (the times the kernel writes back after a write through the
# other name), not answered as a freed file's. (An unlink that waited and
# left links is heard of when it lands: Store::Landed::kept.)
touch "$MNT/d/l"
sync -f "$MNT"
lino=$(stat -c %i "$MNT/d/l")
closed "$lino"
rcli hset "$PREFIX:DIR:1" l-behind "$lino" >/dev/null
rcli hincrby "$PREFIX:INODE:$lino" nlink 1 >/dev/null
[[ $(stat -c %h "$MNT/l-behind") == 2 ]] || fail "the link made behind the mount's back"
read -r _ urt0 < <(trips unlink)
rm "$MNT/d/l"
read -r _ urt1 < <(trips unlink)
((urt1 > urt0)) || fail "the unlink waited: the mount took the file it made for one with a single link"
[[ -z $(entry "$MNT/d" l) && $(rcli hget "$PREFIX:INODE:$lino" nlink) == 1 ]] || fail "the unlink did not land"
sleep 0.01
echo more >>"$MNT/l-behind"
sync -f "$MNT"
shown=$(python3 -c 'import os, sys; print(os.stat(sys.argv[1]).st_mtime_ns)' "$MNT/l-behind")
[[ $(rcli hget "$PREFIX:INODE:$lino" mtime) == "$shown" ]] ||
  fail "the times of the file the unlink left did not reach the server: mtime $(rcli hget "$PREFIX:INODE:$lino" mtime), shown $shown"
rm "$MNT/l-behind"

# the unmount sends what waits; nothing is left behind
for i in $(seq 1 50); do touch "$MNT/d/u$i"; done
sync -f "$MNT"
rm "$MNT"/d/u*
unmount_fs
[[ -z $(rcli hget "$PREFIX:DIR:$(rcli hget "$PREFIX:DIR:1" d)" u50) ]] || fail "the unmount lost unlinks"
check_consistency --no-orphans || fail "inconsistent after the writeback mount's unlinks"

# the daemon killed in the middle of rm -rf: each file is whole or gone,
# and nothing is left behind
mount_fs -o writeback
mkdir "$MNT/k"
for i in $(seq 1 400); do echo "kept $i" >"$MNT/k/f$i"; done
sync -f "$MNT"
rm -rf "$MNT/k" 2>/dev/null &
rmpid=$!
for ((i = 0; i < 200; i++)); do
  (($({ ls "$MNT/k" 2>/dev/null || true; } | wc -l) < 300)) && break  # (gone: rm -rf was done)
  sleep 0.01
done
kill_daemon
wait "$rmpid" || true
rcli pexpire "$PREFIX:WRITEBACK" 1 >/dev/null  # (as its TTL would, within 30 s)
expire_sessions
check_consistency || fail "inconsistent after a writeback mount was killed in the middle of rm -rf"
mount_fs -o writeback
left=0
for f in "$MNT"/k/f*; do
  [[ -e $f ]] || continue
  ((++left))
  [[ $(cat "$f") == "kept ${f##*/f}" ]] || fail "$f, left by the killed rm -rf, reads $(cat "$f")"
done
note "the killed rm -rf left $left of 400 files"
rm -rf "$MNT/k"
unmount_fs
check_consistency --no-orphans || fail "inconsistent after the rm -rf that followed the crash"

# a tree an earlier mount made: a directory listed whole is known as one
# made here (Store::first_page_known), so rm -rf's second listing of it
# asks nothing, and every rmdir waits: the parent's attributes, which the
# rmdir's answer is made from, are those the lookup of the top one read
# (Store::read_inode), the listing brought, or the create below left. (An
# rmdir that found none went at once, after sending the unlinks waiting
# ahead of it: one or two round trips, as the sender had sent them or not.)
mount_fs -o writeback
mkdir -p "$MNT/old/a" "$MNT/old/b"
touch "$MNT"/old/a/f{1..50} "$MNT"/old/b/g{1..50}
unmount_fs
mount_fs -o writeback
touch "$MNT/new" # (a create: the server's clock, which what waits needs)
# The create's change of / waits too, and while a directory's attributes
# wait no removal does (one kind at a time, Store::removal_waits): its
# fsync sends it now, not at the heartbeat's next turn.
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT"
read -r d0 drt0 < <(trips rmdir)
read -r l0 lrt0 < <(trips readdirplus)
rm -rf "$MNT/old"
read -r d1 drt1 < <(trips rmdir)
read -r l1 lrt1 < <(trips readdirplus)
[[ ! -e $MNT/old && -z $(rcli hget "$PREFIX:DIR:1" old) ]] || fail "rm -rf of a tree an earlier mount made"
rm -f "$MNT/new"
((d1 - d0 == 3 && drt1 == drt0)) || fail "rm -rf's $((d1 - d0)) rmdirs in listed directories cost $((drt1 - drt0)) round trips"
note "rm -rf of a tree an earlier mount made: $((l1 - l0)) listings, $((lrt1 - lrt0)) round trips"
((lrt1 - lrt0 <= 7)) || fail "rm -rf's $((l1 - l0)) listings of 3 directories cost $((lrt1 - lrt0)) round trips"
unmount_fs
check_consistency --no-orphans || fail "inconsistent after rm -rf of a tree an earlier mount made"

# a default mount sends each unlink itself
mount_fs
touch "$MNT/d/u1"
read -r n0 rt0 < <(trips unlink)
rm "$MNT/d/u1"
read -r n1 rt1 < <(trips unlink)
((rt1 - rt0 == 1)) || fail "a default mount's unlink cost $((rt1 - rt0)) round trips, not 1"
unmount_fs
