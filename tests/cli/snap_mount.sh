#!/usr/bin/env bash
# redisfs-snap on real mounts: copies and dumps taken while a writer renames
# files between two directories and appends records through FUSE show one
# instant (every file exactly once, only whole records); a snapshot mounts
# read-only (and refuses a read-write mount; writes there fail with EROFS;
# --writable-snapshot waits until no read-only mount keeps what it read,
# and one that keeps it stops once fsck --repair --force changed it),
# and a quiet filesystem's copy, its dump -> restore, and its dump restored
# into a second redis-server mount as the same tree (content, modes,
# owners, times, hard links, symlinks, xattrs, fifos, sparse, empty and
# 50 MB files, nested directories, odd names); a restore --damaged mounts,
# failing with EIO only the calls that need its damaged key. Uses the
# real-mount harness of tests/mount/lib.sh.
. "$(dirname "$0")/../mount/lib.sh"

need_snap

N=16
mount_fs

note "populate"
mkdir "$MNT/a" "$MNT/b" "$MNT/filler" "$MNT/misc"
for ((k = 0; k < N; k++)); do
  echo "file $k" >"$MNT/a/f$k"
done
python3 - "$MNT/filler" <<'PY'
import os, sys
for i in range(1500):
    with open(os.path.join(sys.argv[1], f'x{i}'), 'w') as f:
        f.write(str(i))
PY
: >"$MNT/log"
head -c 3000000 /dev/urandom >"$MNT/misc/random.bin"
truncate -s 5000000 "$MNT/misc/sparse"
printf 'tail' | dd of="$MNT/misc/sparse" bs=1 seek=4000000 conv=notrunc status=none
ln "$MNT/misc/random.bin" "$MNT/misc/hardlink"
ln -s ../a/f1 "$MNT/misc/symlink"
mkfifo "$MNT/misc/fifo"
chmod 0640 "$MNT/misc/random.bin"
chmod 2750 "$MNT/misc"
touch -d '2001-02-03 04:05:06.123456789' "$MNT/misc/sparse"
if command -v setfattr >/dev/null; then
  setfattr -n user.comment -v "snapshot me" "$MNT/misc/random.bin"
  setfattr -n user.binary -v 0xff00fe "$MNT/misc"
fi
mkdir -p "$MNT/nested/one/two/three/four"
: >"$MNT/nested/one/two/three/four/empty"
head -c $((50 * 1024 * 1024 + 12345)) /dev/urandom >"$MNT/nested/large.bin"
printf 'spaces' >"$MNT/misc/name with spaces"
printf 'newline' >"$MNT/misc/"$'new\nline'
printf 'bytes' >"$MNT/misc/"$'\xff\xfe-not-utf8'
long=$(printf 'L%.0s' {1..255})
printf 'long' >"$MNT/misc/$long"
chown 1234:5678 "$MNT/misc/name with spaces"
chmod 4711 "$MNT/nested/one"

# verify_instant DIR: the a/b split holds every file once, and the log only
# whole, consecutive 64-byte records.
verify_instant() {
  local dir=$1 count uniq
  count=$(find "$dir/a" "$dir/b" -type f | wc -l)
  uniq=$(find "$dir/a" "$dir/b" -type f -printf '%f\n' | sort -u | wc -l)
  [[ $count == "$N" && $uniq == "$N" ]] || fail "$dir: $count files ($uniq names) in a+b, expected $N"
  python3 - "$dir/log" <<'PY' || fail "$dir: the log is torn"
import sys
data = open(sys.argv[1], 'rb').read()
assert len(data) % 64 == 0, f'log size {len(data)} is not a multiple of 64'
for i in range(len(data) // 64):
    rec = data[i * 64:(i + 1) * 64]
    assert rec.startswith(b'%08d ' % i) and rec.endswith(b'\n'), f'record {i}: {rec!r}'
PY
}

note "copy and dump while a writer renames and appends"
rename_writer "$N" &
writer_pid=$!
while (($(stat -c %s "$MNT/log") < 64 * 20)); do
  sleep 0.05
done
for round in 1 2; do
  snap -q copy "$PREFIX" "SNAP$round"
  snap -q dump "$PREFIX" -o "$T/live$round.json"
done
touch "$T/stop"
wait "$writer_pid"
(($(stat -c %s "$MNT/log") > 64 * 20)) || fail "the writer made no progress"

for round in 1 2; do
  snap -q restore "$T/live$round.json" --prefix "LIVE$round"
  PREFIX=SNAP$round mount_at "$T/snap$round" --read-only
  PREFIX=LIVE$round mount_at "$T/live$round" --read-only
  verify_instant "$T/snap$round"
  verify_instant "$T/live$round"
  unmount_fs "$T/snap$round"
  unmount_fs "$T/live$round"
done

note "a snapshot refuses a read-write mount"
mkdir -p "$T/rw"
expect_fail "read-only" "$REDISFS_BIN" --redis "unix://$SOCK" --prefix SNAP1 "$T/rw"
! is_mounted "$T/rw" || fail "a snapshot was mounted read-write"

note "--writable-snapshot is refused while a read-only mount keeps what it read of the snapshot"
PREFIX=SNAP1 mount_at "$T/snap1" --read-only
[[ $(cat "$T/snap1/misc/name with spaces") == spaces ]] || fail "the snapshot's file"
expect_fail "keeps what it read for an hour" "$REDISFS_BIN" --redis "unix://$SOCK" --prefix SNAP1 --writable-snapshot "$T/rw"
! is_mounted "$T/rw" || fail "a snapshot was mounted writable under a read-only mount of it"
[[ $(rcli get SNAP1:CHANGED 2>/dev/null) != written ]] || fail "the refused mount marked SNAP1 written"
# A reader killed without unmounting counts until its session lapses (30 s
# without a heartbeat): the refusals say so, the mount's and the toolkit's.
kill_daemon "$T/snap1"
expect_fail "counts until its session lapses, within " \
  "$REDISFS_BIN" --redis "unix://$SOCK" --prefix SNAP1 --writable-snapshot "$T/rw"
expect_fail "counts until its session lapses, within " "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" delete SNAP1
expect_fail "counts until its session lapses, within " "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" fsck --repair SNAP1
PREFIX=SNAP1 expire_sessions
PREFIX=SNAP1 mount_at "$T/snap1" --read-only
unmount_fs "$T/snap1"
PREFIX=SNAP1 mount_at "$T/rw" --writable-snapshot
[[ $(rcli get SNAP1:CHANGED) == written ]] || fail "SNAP1's record after a writable mount: $(rcli type SNAP1:CHANGED)"
PREFIX=SNAP1 mount_at "$T/snap1" --read-only  # (beside it: read as a live mount is)
[[ $(cat "$T/snap1/misc/name with spaces") == spaces ]] || fail "the snapshot's file, read-only"
printf 'changed by the writable mount' >"$T/rw/misc/name with spaces"
got=$(cat "$T/snap1/misc/name with spaces")
[[ $got == 'changed by the writable mount' ]] || fail "a read-only mount beside a writable one shows '$got'"
unmount_fs "$T/snap1"
unmount_fs "$T/rw"

note "a quiet filesystem's copy and restored dump are the same tree"
snap -q copy "$PREFIX" QUIET
snap -q dump "$PREFIX" -o "$T/quiet.json"
snap -q restore "$T/quiet.json" --prefix RESTORED
PREFIX=QUIET mount_at "$T/quiet" --read-only
PREFIX=RESTORED mount_at "$T/restored" --read-only

listing() {  # everything but atime, which reading changes
  (cd "$1" && find . -printf '%p %y %m %U %G %s %n %T@ %C@ %l\n' | sort)
}
listing "$MNT" >"$T/orig.list"
for d in "$T/quiet" "$T/restored"; do
  listing "$d" >"$T/copy.list"
  diff "$T/orig.list" "$T/copy.list" >&2 || fail "$d: metadata differs from the original"
  diff -r --no-dereference -x fifo "$MNT" "$d" >&2 || fail "$d: content differs from the original"
  [[ $(stat -c %i "$d/misc/random.bin") == $(stat -c %i "$d/misc/hardlink") ]] || fail "$d: hard link broken"
  [[ $(readlink "$d/misc/symlink") == ../a/f1 ]] || fail "$d: symlink target"
  [[ -p $d/misc/fifo ]] || fail "$d: fifo lost"
  [[ $(stat -c %s "$d/misc/sparse") == 5000000 ]] || fail "$d: sparse size"
  if command -v getfattr >/dev/null; then
    [[ $(getfattr --absolute-names --only-values -n user.comment "$d/misc/random.bin") == "snapshot me" ]] || fail "$d: xattr lost"
  fi
  grep -q ' ro[ ,]' <(awk -v m="$d" '$2 == m' /proc/self/mounts) || fail "$d is not mounted ro"
done

note "dump -> restore into a second server -> mount: the same tree"
redis-server --port 0 --unixsocket "$T/second.sock" --unixsocketperm 700 --save '' --appendonly no \
  --daemonize yes --dir "$T" --logfile "$T/second.log" --pidfile "$T/second.pid" || fail "second server"
EXTRA_SOCKS+=("$T/second.sock")
for ((i = 0; i < 100; i++)); do
  [[ $(redis-cli -s "$T/second.sock" ping 2>/dev/null) == PONG ]] && break
  sleep 0.05
done
snap -q dump "$PREFIX" | "$REDISFS_SNAP_BIN" -q --redis "unix://$T/second.sock" restore --prefix ELSEWHERE
SOCK=$T/second.sock PREFIX=ELSEWHERE mount_at "$T/elsewhere"
listing "$T/elsewhere" >"$T/copy.list"
diff "$T/orig.list" "$T/copy.list" >&2 || fail "second server: metadata differs from the original"
diff -r --no-dereference -x fifo "$MNT" "$T/elsewhere" >&2 || fail "second server: content differs"
printf 'writable' >"$T/elsewhere/restored-is-writable" || fail "the restored filesystem is not writable"
unmount_fs "$T/elsewhere"

note "writes on read-only mounts fail with EROFS"
for d in "$T/quiet" "$T/restored"; do
  for attempt in "touch $d/new" "mkdir $d/newdir" "rm $d/misc/random.bin" "mv $d/a $d/moved" \
                 "chmod 600 $d/misc/random.bin" "truncate -s 0 $d/misc/random.bin" "ln -s x $d/sl" \
                 "sh -c 'echo x >> $d/log'"; do
    out=$(eval "$attempt" 2>&1) && fail "'$attempt' succeeded on a read-only mount"
    [[ $out == *"Read-only file system"* ]] || fail "'$attempt' failed without EROFS: $out"
  done
done

note "list and refusals while mounted"
[[ $(snap list --json | jq -r --arg p "$PREFIX" '.[] | select(.prefix == $p) | .mounts') -ge 1 ]] ||
  fail "list shows no mount of $PREFIX"
[[ $(snap list --json | jq -r '.[] | select(.prefix == "QUIET") | .kind') == snapshot ]] || fail "QUIET kind"
expect_fail "mounted" snap delete "$PREFIX"
expect_fail "mounted" snap copy --force "$PREFIX" QUIET
expect_fail "mounted" snap restore --force "$T/quiet.json" --prefix RESTORED
[[ -f $MNT/misc/random.bin && -f $T/quiet/misc/random.bin ]] || fail "a refused command removed files"

note "a read-only mount that keeps what it read stops once fsck --repair --force changed the snapshot"
cat "$T/quiet/misc/random.bin" >/dev/null
rcli hset QUIET:SB inodes 99999 >/dev/null
snap fsck --repair --force QUIET >"$T/out" 2>&1 || fail "fsck --repair --force QUIET: $(cat "$T/out")"
grep -q '(repaired)' "$T/out" || fail "fsck repaired nothing: $(cat "$T/out")"
for ((i = 0; i < 100; i++)); do  # (its next heartbeat, within 10 s)
  out=$(stat "$T/quiet/misc/random.bin" 2>&1) || break
  sleep 0.2
done
[[ $out == *"Stale file handle"* ]] || fail "the frozen mount of QUIET serves on after the repair: $out"
grep -q "QUIET.*was changed under it" "${MOUNT_LOGS[$T/quiet]}" ||
  fail "the frozen mount's log: $(tail -3 "${MOUNT_LOGS[$T/quiet]}")"

unmount_fs "$T/quiet"
unmount_fs "$T/restored"
unmount_fs
for p in SNAP1 LIVE1 QUIET RESTORED; do
  python3 "$HERE/check_consistency.py" --socket "$SOCK" --prefix "$p" -q || fail "$p is not consistent"
done
snap -q delete QUIET
[[ -z $(rcli --scan --pattern 'QUIET:*') ]] || fail "QUIET not deleted"

note "restore --damaged: a mount fails with EIO only the calls that need the damaged key"
PREFIX=HURT mount_at "$T/hurt"
mkdir "$T/hurt/d"
echo sound >"$T/hurt/d/good"
echo hurt >"$T/hurt/d/bad"
bad_ino=$(stat -c %i "$T/hurt/d/bad")
unmount_fs "$T/hurt"
rcli hset "HURT:INODE:$bad_ino" size "not a size" >/dev/null  # (damage: dump writes it as it is)
snap -q dump HURT -o "$T/hurt.json" 2>/dev/null
expect_fail "damaged" snap restore "$T/hurt.json" --prefix HURT2
snap -q restore --damaged "$T/hurt.json" --prefix HURT2 2>/dev/null || fail "restore --damaged refused the dump"
PREFIX=HURT2 mount_at "$T/hurt2"
[[ $(cat "$T/hurt2/d/good") == sound ]] || fail "the undamaged file of a --damaged restore does not read"
ls "$T/hurt2/d" >/dev/null || fail "the directory of a --damaged restore does not list"
out=$(cat "$T/hurt2/d/bad" 2>&1) && fail "the damaged file read: $out"
[[ $out == *"Input/output error"* ]] || fail "the damaged file's read: $out (not EIO)"
echo new >"$T/hurt2/d/new" && [[ $(cat "$T/hurt2/d/new") == new ]] || fail "a --damaged restore does not take a new file"
unmount_fs "$T/hurt2"
snap -q delete HURT
snap -q delete HURT2
[[ -z $(rcli --scan --pattern '*~*' | grep -vx 'redisfs~FILESYSTEMS') ]] || fail "temporary keys left behind"
note "ok"
