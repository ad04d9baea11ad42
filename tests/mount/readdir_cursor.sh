#!/usr/bin/env bash
# readdir_cursor: a directory listing is a cursor (core/store/dir_reader.hpp),
# not a copy, and hands the kernel attributes so a walk needs no LOOKUP.
# - seekdir to telldir values of a 3,000-name directory (many pages) goes
#   on with exactly the names that followed; rewinddir lists them again;
# - 20 listings through one mount, while two churners on a second mount
#   add and remove other names (the hash grows and rehashes under the
#   listings), each return every one of the 3,000 stable names once;
# - du -s of it on a fresh mount sends fewer than 50 LOOKUPs (the daemon's
#   counters, SIGUSR1): every entry came with its attributes;
# - rm -rf's opendirs of directories the kernel knows make no round trip,
#   ".." still names the parent, and a listing of a directory another
#   mount removed fails with ENOENT; a listing has another mount's new and
#   removed names at once; rm -rf's second listing of a directory takes
#   no round trip of its own (the getattr after its opendir reads its
#   first page: store/first_pages.hpp), and the purges of the directories
#   it removed none of their own;
# - a listing whose first page was read before this mount renamed one of
#   its names (the getattr after its opendir), or that holds a page across
#   getdents(2) calls with renames between, does not make the kernel show
#   an old name (default and writeback mounts);
# - four handles on a directory of 50,000 names (written on the server
#   directly, as a restore would), read to the end and held open together,
#   grow the daemon's RSS by less than 4 MB once the kernel knows the
#   inodes (a first listing hands it 50,000 lookups, which the daemon
#   counts): the old handle kept every entry, some 270 B each.
. "$(dirname "$0")/lib.sh"

DIRLIST=$HERE/dirlist.py

# Whether listing directory $1 fails with ENOENT.
listing_fails_enoent() {
  python3 - "$1" <<'PY'
import errno, os, sys
try:
    os.listdir(sys.argv[1])
except OSError as e:
    sys.exit(0 if e.errno == errno.ENOENT else 1)
sys.exit(1)
PY
}

mount_fs
B=$T/b
mount_at "$B"
mkdir "$MNT/many"
python3 "$DIRLIST" make "$MNT/many" f- 3000

python3 "$DIRLIST" seek "$MNT/many" || fail "seekdir/telldir"

touch "$T/churning"
churn() {  # on the second mount: add 3,000 names, remove them, again
  python3 - "$B/many" "$1" "$T/churning" <<'PY'
import os, sys
d, me, flag = sys.argv[1:]
while os.path.exists(flag):
    names = [os.path.join(d, "churn-%s-%05d" % (me, i)) for i in range(1500)]
    for n in names:
        os.close(os.open(n, os.O_WRONLY | os.O_CREAT, 0o644))
    for n in names:
        os.unlink(n)
PY
}
churn a &
C1=$!
churn b &
C2=$!
python3 "$DIRLIST" stable "$MNT/many" 20 || fail "listings while the directory changes"
rm -f "$T/churning"
wait "$C1" || fail "churner a failed"
wait "$C2" || fail "churner b failed"
[[ $(ls "$MNT/many" | grep -c '^churn-' || true) == 0 ]] || fail "churn names left behind"

# a walk with stat on a fresh mount (empty kernel caches): no LOOKUP per entry
W=$T/w
mount_at "$W"
du -s "$W/many" >/dev/null || fail "du -s"
read -r n _ < <(op_stats "$DAEMON_PID" "${MOUNT_LOGS[$W]}" lookup)
((n < 50)) || fail "du -s of 3,000 entries sent $n LOOKUPs, want fewer than 50"
note "du -s of 3,000 entries: $n LOOKUPs"
unmount_fs "$W"

# rm -rf opens every directory (twice): an opendir of a directory the kernel
# knows reads nothing from the server (its parent, for "..", comes with the
# first page); a listing of one that another mount removed fails ENOENT
for d in a a/b a/b/c a/d; do
  mkdir "$MNT/$d"
  touch "$MNT/$d/f1" "$MNT/$d/f2"
done
mkdir "$MNT/gone"
mount_at "$W"
[[ $(cd "$W/a/b" && ls -a | tr '\n' ' ') == ". .. c f1 f2 " ]] || fail "listing of a/b: $(ls -a "$W/a/b")"
[[ $(stat -c %i "$W/a/b/..") == $(stat -c %i "$W/a") ]] || fail "a/b/.. is not a"
ls "$W/gone" >/dev/null
rmdir "$MNT/gone"
listing_fails_enoent "$W/gone" || fail "a listing of a directory removed by another mount did not fail with ENOENT"
# ... also while a process on MNT still holds it (MNT cannot purge it
# yet): W fails it alike, and the holder on MNT still fstat's it (nlink 0)
mkdir "$MNT/held"
ls "$W/held" >/dev/null
exec 5<"$MNT/held"
rmdir "$MNT/held"
listing_fails_enoent "$W/held" || fail "a directory another mount removed and still holds: W did not fail it with ENOENT"
[[ $(python3 -c 'import os; print(os.fstat(5).st_nlink)') == 0 ]] || fail "the holder of a removed directory cannot fstat it"
exec 5<&-
# a listing reads the names every time: W lists a directory, MNT adds and
# removes names in it, and W's next listing, at once, has them
mkdir "$MNT/fresh"
touch "$MNT/fresh/old1" "$MNT/fresh/old2"
[[ $(ls -l "$W/fresh" | awk 'NR > 1 {print $NF}' | tr '\n' ' ') == "old1 old2 " ]] || fail "listing of fresh"
touch "$MNT/fresh/new"
rm "$MNT/fresh/old1"
[[ $(ls -l "$W/fresh" | awk 'NR > 1 {print $NF}' | tr '\n' ' ') == "new old2 " ]] ||
  fail "W's second listing missed MNT's changes: $(ls "$W/fresh" | tr '\n' ' ')"
# and the attributes W's own change left show in its next listing
chmod 600 "$W/fresh/old2"
[[ $(ls -l "$W/fresh" | awk '$NF == "old2" {print $1}') == "-rw-------" ]] || fail "W's chmod not in its listing"
rm -r "$W/fresh"
# rm -rf: the second listing of each directory (it opens each twice) takes
# the attributes the first one read (AttrCache) and the first page the
# getattr after its opendir read in its round trip (FirstPages): none of
# its own, where it took one (the HSCAN); that getattr still asks the server (one a
# directory: the test above needs it); and the purge of each directory it removed
# (the kernel forgets it at once) goes in front of its next rmdir, not in a
# round trip of its own
read -r _ rd0 < <(trips readdirplus "$W")
read -r _ ga0 < <(trips getattr "$W")
read -r _ fg0 < <(trips forget "$W")
rm -rf "$W/a"
[[ ! -e $W/a && -z $(rcli hget "$PREFIX:DIR:1" a) ]] || fail "rm -rf left a"
read -r n rt < <(op_stats "$DAEMON_PID" "${MOUNT_LOGS[$W]}" opendir)
((n >= 8)) || fail "rm -rf of 4 directories sent $n OPENDIRs, want 8 or more"
awk -v rt="$rt" 'BEGIN {exit !(rt == 0)}' || fail "an opendir of a known directory made $rt round trips, want none"
read -r _ rd1 < <(trips readdirplus "$W")
read -r _ ga1 < <(trips getattr "$W")
read -r _ fg1 < <(trips forget "$W")
note "rm -rf of 4 directories: readdirplus $((rd1 - rd0)), getattr $((ga1 - ga0)), forget $((fg1 - fg0)) round trips"
((rd1 - rd0 <= 8)) || fail "rm -rf of 4 directories: $((rd1 - rd0)) readdirplus round trips, want 2 a directory at most (the first listing's)"
((ga1 - ga0 <= 4)) || fail "rm -rf of 4 directories: $((ga1 - ga0)) getattr round trips, want 4 at most"
((fg1 - fg0 == 0)) || fail "rm -rf of 4 directories: $((fg1 - fg0)) forget round trips, want none"
for ((i = 0; i < 100; i++)); do
  [[ -z $(fs_keys ORPHANS) ]] && break
  sleep 0.05
done
[[ -z $(fs_keys ORPHANS) ]] || fail "orphans left after rm -rf: $(rcli hgetall "$PREFIX:ORPHANS" | tr '\n' ' ')"
unmount_fs "$W"

# A first page the getattr after an opendir read, then a rename of one of
# its names by this mount before the first readdir, and a page a listing
# holds between two getdents(2) calls, renamed from meanwhile: the listing
# must not hand the kernel an old name with its inode (readdirplus links
# it: a second name of a file that has one, which an unlink then "removes").
for mode in default writeback; do
  S=$T/stale-$mode
  if [[ $mode == writeback ]]; then
    PREFIX=$PREFIX-wb mount_at "$S" -o writeback  # (the only mount of its filesystem)
  else
    mount_at "$S"
  fi
  mkdir "$S/d" "$S/e"
  for i in 0 1 2 3; do echo "$i" >"$S/d/f$i"; done
  mkdir "$S/big"
  python3 "$DIRLIST" make "$S/big" b 300
  python3 "$DIRLIST" renamed "$S" || fail "$mode mount: a listing showed a name renamed after its opendir"
  unmount_fs "$S"
done

# 50,000 names in d0000, written on the server as a restore would
python3 "$DIRLIST" tree "$PREFIX" $(($(rcli hget "$PREFIX:SB" next_inode) + 1000000)) 1 50000 | rcli --pipe >/dev/null
[[ $(rcli hlen "$PREFIX:DIR:$(rcli hget "$PREFIX:DIR:1" d0000)") == 50000 ]] || fail "the 50,000 names are not on the server"

rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
pid=${MOUNT_PIDS[$MNT]}
ls -f "$MNT" >/dev/null
before=$(rss "$pid")
n=$(ls -f "$MNT/d0000" | wc -l)
[[ $n == 50002 ]] || fail "ls -f lists $n entries, want 50002"
note "a first ls -f of 50,000 names: daemon RSS $before kB -> $(rss "$pid") kB (the kernel's new inodes)"
# the kernel knows every inode now: what more listings cost is theirs
grown=$(python3 "$DIRLIST" hold "$MNT/d0000" "$pid" 4) || fail "listing through 4 handles"
note "4 open handles read to the end: daemon RSS grew $grown kB"
((grown < 4096)) || fail "4 open handles on 50,000 names grew the daemon by $grown kB, want under 4096"
n=$(python3 -c 'import os, sys; print(len(set(os.listdir(sys.argv[1]))))' "$MNT/d0000")
[[ $n == 50000 ]] || fail "os.listdir gives $n distinct names, want 50000"

unmount_fs "$B"
unmount_fs
check_consistency -q
