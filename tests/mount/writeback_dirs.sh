#!/usr/bin/env bash
# writeback_dirs: a writeback mount's attribute changes of a directory
# (chown, chmod, utimes: what tar and cp -a do last for each) wait in the
# daemon and reach the server together (core/store/store_dirs.cpp). The
# three cost no round trip and the mount shows them at once; the server
# has them before anything else the mount sends (a mkdir here), after an
# fsync of the directory, at unmount, in a snapshot, and within seconds
# when nothing else happens. A file and a directory made in a directory
# whose setgid bit waits take its group, here and on the server. A change
# the server refuses when it is sent (a damaged inode) is logged once and
# is the next fsync of a directory's EIO. A default mount sends each change
# at once.
. "$(dirname "$0")/lib.sh"
need_snap

# server INO: mode, uid, gid and mtime (seconds) of INO on the server
server() {
  local f=() field
  for field in mode uid gid mtime; do
    f+=("$(rcli hget "$PREFIX:INODE:$1" "$field")")
  done
  echo "${f[0]} ${f[1]} ${f[2]} $((${f[3]:-0} / 1000000000))"
}

# change DIR: tar's last step for a directory
change() {
  chown 1234:99 "$1"
  chmod 2750 "$1"
  touch -m -d @1000000000 "$1"
}
want="2750 1234 99 1000000000"

mount_fs -o writeback
mkdir "$MNT/a" "$MNT/b" "$MNT/c" "$MNT/d" "$MNT/g" "$MNT/h" "$MNT/r"
declare -A ino
for d in a b c d g h r; do
  ino[$d]=$(stat -c %i "$MNT/$d")
done

# the three changes: no round trip, shown at once
read -r n0 rt0 < <(trips setattr)
change "$MNT/a"
read -r n1 rt1 < <(trips setattr)
((n1 - n0 >= 3)) || fail "the changes sent $((n1 - n0)) setattrs, not 3"
((rt1 == rt0)) || fail "the changes of a directory cost $((rt1 - rt0)) round trips on a writeback mount, not 0"
[[ $(stat -c '%a %u %g %Y' "$MNT/a") == "$want" ]] || fail "the mount shows $(stat -c '%a %u %g %Y' "$MNT/a"), not $want"
# anything else the mount sends goes after them
mkdir "$MNT/e"
[[ $(server "${ino[a]}") == "$want" ]] || fail "a mkdir reached the server before the changes it followed: $(server "${ino[a]}")"

# fsync of the directory; the server has the very times the mount showed
change "$MNT/b"
touch -a "$MNT/b"
shown=$(python3 -c 'import os, sys; st = os.stat(sys.argv[1]); print(st.st_atime_ns, st.st_ctime_ns)' "$MNT/b")
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/b"
[[ $(server "${ino[b]}") == "$want" ]] || fail "fsync of the directory returned before its changes were on the server: $(server "${ino[b]}")"
stored="$(rcli hget "$PREFIX:INODE:${ino[b]}" atime) $(rcli hget "$PREFIX:INODE:${ino[b]}" ctime)"
[[ $stored == "$shown" ]] || fail "the mount showed atime and ctime $shown, the server has $stored"

# nothing else happens: on the server within seconds (the daemon's watch)
change "$MNT/c"
for ((i = 0; i < 200; i++)); do
  [[ $(server "${ino[c]}") == "$want" ]] && break
  sleep 0.1
done
[[ $(server "${ino[c]}") == "$want" ]] || fail "the changes of an idle mount never reached the server: $(server "${ino[c]}")"

# the setgid bit that waits: new nodes take the group, here and there
change "$MNT/g"
touch "$MNT/g/file"
mkdir "$MNT/g/sub"
[[ $(stat -c %g "$MNT/g/file") == 99 ]] || fail "a file made in a setgid directory has group $(stat -c %g "$MNT/g/file")"
[[ $(stat -c '%a %g' "$MNT/g/sub") == "2755 99" ]] || fail "a directory made in a setgid directory: $(stat -c '%a %g' "$MNT/g/sub")"
sync -f "$MNT"
[[ $(rcli hget "$PREFIX:INODE:$(stat -c %i "$MNT/g/file")" gid) == 99 ]] ||
  fail "the server gave the file of the setgid directory another group"

# a snapshot has them
change "$MNT/h"
snap --quiet copy "$PREFIX" "$PREFIX-snap" || fail "copy of the writeback mount"
got=$(PREFIX=$PREFIX-snap server "${ino[h]}")
[[ $got == "$want" ]] || fail "the snapshot lacks the changes made before it: $got"
snap --quiet delete --force "$PREFIX-snap"

# refused when sent (damage): logged once, the next directory fsync's EIO,
# and the server's attributes stand
mkdir "$MNT/r/sub"  # (its reply: what the mount holds of r, so that a change of r may wait)
rsize=$(rcli hget "$PREFIX:INODE:${ino[r]}" size)
refusal="writeback: attribute change of directory ${ino[r]} (sent after its setattr returned): "
python3 "$HERE/refused_once.py" "$MNT/r" "${MOUNT_LOGS[$MNT]}" "$refusal" "$SOCK" \
  "$PREFIX:INODE:${ino[r]}" size lots chmod:0700 ||
  fail "a directory change refused when sent"
python3 -c 'import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDONLY))' "$MNT/a" ||
  fail "an fsync of another directory after the refusal was taken"
(($(grep -cF "$refusal" "${MOUNT_LOGS[$MNT]}") == 1)) || fail "a refused directory change was logged more than once"
[[ $(rcli hget "$PREFIX:INODE:${ino[r]}" mode) == 0755 ]] || fail "a refused change changed the server's mode"
rcli hset "$PREFIX:INODE:${ino[r]}" size "$rsize" >/dev/null  # (mended)

# unmount sends them
change "$MNT/d"
unmount_fs
[[ $(server "${ino[d]}") == "$want" ]] || fail "the unmount lost the changes: $(server "${ino[d]}")"
check_consistency || fail "inconsistent after the writeback mount"

# a default mount sends each at once
mount_fs
mkdir "$MNT/f"
read -r n0 rt0 < <(trips setattr)
change "$MNT/f"
read -r n1 rt1 < <(trips setattr)
((rt1 - rt0 >= 3)) || fail "a default mount sent $((rt1 - rt0)) of a directory's 3 changes"
[[ $(server "$(stat -c %i "$MNT/f")") == "$want" ]] || fail "a default mount's changes are not on the server"
unmount_fs
