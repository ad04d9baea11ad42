#!/usr/bin/env bash
# writeback: a -o writeback mount holds its filesystem alone. While it is
# live the server refuses every other mount (read-write, read-only,
# writeback), and refuses it while another mount is live; the hold is one
# key with the mount session's TTL (keys.hpp, WRITEBACK), gone at unmount,
# lapsing like the session after a kill -9. The toolkit's delete, rollback
# and restore count it as mounted. What fsync and syncfs returned for is on
# the server: after a kill -9 of the daemon, a new mount reads it. The
# kernel's writeback cache is on (the INIT line of the debug log). A
# snapshot (copy, dump, diff) of the busy mount has every write made before it,
# also to a file still open. An rm sends no SETATTR of a freed file to the
# server.
. "$(dirname "$0")/lib.sh"
need_snap

# refused MOUNTPOINT TEXT [args...]: redisfs must exit 1 saying TEXT, and
# leave nothing mounted.
refused() {
  local mnt=$1 text=$2 rc=0 out
  shift 2
  mkdir -p "$mnt"
  out=$("$REDISFS_BIN" -f --redis "unix://$SOCK" --prefix "$PREFIX" "$@" "$mnt" 2>&1 </dev/null) || rc=$?
  ((rc == 1)) || fail "redisfs $* exited with $rc, not 1 (refused): $out"
  [[ $out == *"$text"* ]] || fail "redisfs $* was refused without saying '$text': $out"
  ! is_mounted "$mnt" || fail "a refused mount left $mnt mounted"
}

held="is held by the writeback mount"

# option conflicts are usage errors (exit 2)
rc=0
"$REDISFS_BIN" -f --redis "unix://$SOCK" --prefix "$PREFIX" -o writeback,ro "$MNT" >"$T/ro.out" 2>&1 || rc=$?
((rc == 2)) || fail "-o writeback,ro exited with $rc, not 2: $(cat "$T/ro.out")"
rc=0
"$REDISFS_BIN" -f --redis "unix://$SOCK" --prefix "$PREFIX" -o writeback,write_through "$MNT" >"$T/wt.out" 2>&1 || rc=$?
((rc == 2)) || fail "-o writeback,write_through exited with $rc, not 2: $(cat "$T/wt.out")"
grep -q "write_through" "$T/wt.out" || fail "-o writeback,write_through was refused without naming write_through: $(cat "$T/wt.out")"
! is_mounted "$MNT" || fail "a refused mount left $MNT mounted"

mount_fs -o writeback --log-level debug
grep -q 'init: .*writeback cache' "${MOUNT_LOGS[$MNT]}" || fail "the kernel's writeback cache is not on: $(grep init: "${MOUNT_LOGS[$MNT]}")"
session=$(rcli get "$PREFIX:WRITEBACK")
[[ -n $session && $(rcli exists "$PREFIX:MOUNT:$session") == 1 ]] || fail "WRITEBACK names no live session: '$session'"
ttl=$(rcli pttl "$PREFIX:WRITEBACK")
((ttl > 0 && ttl <= 30000)) || fail "WRITEBACK has no session TTL: $ttl"

refused "$T/b" "$held" --
refused "$T/b" "$held" --read-only
refused "$T/b" "$held" -o writeback
expect_fail "is mounted" snap delete "$PREFIX"
snap --quiet copy "$PREFIX" "$PREFIX-mon" || fail "copy of a writeback-mounted filesystem"
expect_fail "is mounted" snap rollback "$PREFIX" "$PREFIX-mon"
snap --quiet dump "$PREFIX-mon" -o "$T/mon.json" || fail "dump of the snapshot"
expect_fail "is mounted" snap restore "$T/mon.json" --prefix "$PREFIX"

# ordinary work, and what reaches the server: fsync'd and syncfs'd data
printf 'appended\n' >"$MNT/log"
printf 'more\n' >>"$MNT/log"
[[ $(cat "$MNT/log") == $'appended\nmore' ]] || fail "append through the writeback cache: $(cat "$MNT/log")"
python3 - "$MNT" <<'PY'
import os, sys
m = sys.argv[1]
fd = os.open(os.path.join(m, "fsynced"), os.O_WRONLY | os.O_CREAT, 0o640)
os.write(fd, b"x" * 300000)
os.fsync(fd)  # then the daemon is killed with the file still open
PY
mkdir "$MNT/tree"
for i in 1 2 3; do printf 'file %s\n' "$i" >"$MNT/tree/f$i"; done
chmod 600 "$MNT/tree/f2"
sync -f "$MNT"
kill_daemon

# the hold outlives the killed daemon until its TTL ends
refused "$T/b" "$held" --
rcli pexpire "$PREFIX:WRITEBACK" 1 >/dev/null
expire_sessions
mount_fs
[[ $(stat -c %s "$MNT/fsynced") == 300000 ]] || fail "fsync'd data lost with the daemon: size $(stat -c %s "$MNT/fsynced")"
[[ $(cat "$MNT/tree/f3") == "file 3" && $(stat -c %a "$MNT/tree/f2") == 600 ]] || fail "syncfs'd files lost with the daemon"
[[ $(cat "$MNT/log") == $'appended\nmore' ]] || fail "log: $(cat "$MNT/log")"

# a writeback mount is refused while another mount is live
refused "$T/b" "cannot mount '$PREFIX' with -o writeback: it is mounted by" -o writeback
unmount_fs
mount_fs -o writeback
unmount_fs
[[ $(rcli exists "$PREFIX:WRITEBACK") == 0 ]] || fail "the hold outlives its unmount"
mount_fs
unmount_fs

# A snapshot of a busy writeback mount has every write made before it:
# copy and dump ask the mount to send what it holds (keys.hpp, SYNC), the
# pages the kernel's writeback cache keeps of a file still open included.
mount_fs -o writeback
head -c 200000 /dev/urandom >"$T/held.1"
head -c 70000 /dev/urandom >"$T/held.2"
# (a process of its own holds the only descriptor: hold_open, lib.sh)
hold_open "$T/holder" "$MNT/held" "$T/held.1" "$T/held.2"
printf 'closed\n' >"$MNT/closed"
held_ino=$(stat -c %i "$MNT/held")
[[ $(rcli hget "$PREFIX:INODE:$held_ino" size) == 0 ]] ||
  fail "the bytes of a file still open reached the server before a snapshot asked: this case tests nothing"
snap --quiet copy "$PREFIX" "$PREFIX-busy" 2>"$T/busy.err" || fail "copy of a busy writeback mount: $(cat "$T/busy.err")"
[[ ! -s $T/busy.err ]] || fail "the copy of a busy writeback mount warned: $(cat "$T/busy.err")"
touch "$T/holder.go2"
hold_wait "$T/holder.2"
snap --quiet diff "$PREFIX-busy" "$PREFIX" >"$T/busy.diff" 2>"$T/busy.err" || fail "diff of a busy writeback mount: $(cat "$T/busy.err")"
[[ ! -s $T/busy.err ]] || fail "the diff of a busy writeback mount warned: $(cat "$T/busy.err")"
grep -qx $'M\theld' "$T/busy.diff" || fail "the diff misses what was written to a file still open: $(cat "$T/busy.diff")"
snap --quiet dump "$PREFIX" -o "$T/busy.json" 2>"$T/busy.err" || fail "dump of a busy writeback mount: $(cat "$T/busy.err")"
[[ ! -s $T/busy.err ]] || fail "the dump of a busy writeback mount warned: $(cat "$T/busy.err")"
hold_end "$T/holder"
(($(grep -c 'sent what this writeback mount held' "${MOUNT_LOGS[$MNT]}") == 3)) ||
  fail "the mount did not answer the copy's, the diff's and the dump's requests: $(grep -i snapshot "${MOUNT_LOGS[$MNT]}")"
[[ $(rcli exists "$PREFIX:SYNC") == 0 ]] || fail "the answered request is left: $(rcli get "$PREFIX:SYNC")"
unmount_fs
snap --quiet restore "$T/busy.json" --prefix "$PREFIX-dumped" || fail "restore of the busy dump"
PREFIX=$PREFIX-busy mount_at "$T/busy" --read-only
cmp -s "$T/held.1" "$T/busy/held" || fail "the copy lacks what was written to a file still open ($(stat -c %s "$T/busy/held") bytes)"
[[ $(cat "$T/busy/closed") == closed ]] || fail "the copy lacks a file closed before it"
unmount_fs "$T/busy"

# A claim that no live mount holds (a crash left it, or it never lapses):
# nothing to wait for; copy and dump go on at once and say why, naming the
# repair, and leave no request behind
rcli set "$PREFIX:WRITEBACK" ghost-session >/dev/null
snap --quiet copy "$PREFIX" "$PREFIX-ghost" 2>"$T/ghost.err" || fail "copy under a stale claim: $(cat "$T/ghost.err")"
grep -q "WRITEBACK names session 'ghost-session', which no live mount has: no writeback mount to wait for (if the claim never lapses, \`redisfs-snap fsck --repair $PREFIX\` removes it)" "$T/ghost.err" ||
  fail "copy under a stale claim: $(cat "$T/ghost.err")"
rcli del "$PREFIX:WRITEBACK" >/dev/null
rcli sadd "$PREFIX:WRITEBACK" ghost-session >/dev/null
snap --quiet dump "$PREFIX" -o "$T/ghost.json" 2>"$T/ghost.err" || fail "dump under a damaged claim: $(cat "$T/ghost.err")"
grep -q "WRITEBACK is no string (.*): no writeback mount to wait for; \`redisfs-snap fsck --repair $PREFIX\` removes it" "$T/ghost.err" ||
  fail "dump under a damaged claim: $(cat "$T/ghost.err")"
[[ $(rcli exists "$PREFIX:SYNC") == 0 ]] || fail "a request was left for no mount: $(rcli get "$PREFIX:SYNC")"
rcli del "$PREFIX:WRITEBACK" >/dev/null
PREFIX=$PREFIX-dumped mount_at "$T/dumped" --read-only
cat "$T/held.1" "$T/held.2" >"$T/held.12"
cmp -s "$T/held.12" "$T/dumped/held" || fail "the dump lacks what was written to a file still open ($(stat -c %s "$T/dumped/held") bytes)"
unmount_fs "$T/dumped"
snap --quiet delete --force "$PREFIX-busy"
snap --quiet delete --force "$PREFIX-dumped"

# rm on a writeback mount: the kernel writes every unlinked file's times
# back (a SETATTR right after the unlink). Those of files the unlink freed
# are answered without the server; a file still open is an orphan, and its
# data stays readable.
mount_fs -o writeback
mkdir "$MNT/rm"
for i in $(seq 40); do printf 'file %s\n' "$i" >"$MNT/rm/f$i"; done
unmount_fs
mount_fs -o writeback
rm "$MNT"/rm/f*[0-9]
read -r n rt < <(op_stats "$DAEMON_PID" "${MOUNT_LOGS[$MNT]}" setattr)
((n >= 40)) || fail "rm of 40 files on a writeback mount: the kernel sent $n SETATTRs, not one a file"
awk -v rt="$rt" 'BEGIN {exit !(rt == 0)}' || fail "the SETATTRs of 40 freed files made $rt round trips each, want none"
# (the attributes a writeback mount keeps for its listings: 32,768 inodes at most, README)
grep -Eq 'stats: caches: attributes of [0-9]+ of 32768 inodes' "${MOUNT_LOGS[$MNT]}" ||
  fail "a writeback mount's attribute cache is not bounded at 32,768: $(grep 'stats: caches' "${MOUNT_LOGS[$MNT]}")"
printf 'kept\n' >"$MNT/rm/open"
exec 3<"$MNT/rm/open"
rm "$MNT/rm/open"
[[ $(cat <&3) == kept ]] || fail "an unlinked file still open lost its data"
exec 3<&-
[[ -z $(ls -A "$MNT/rm") ]] || fail "files left after rm: $(ls -A "$MNT/rm")"
unmount_fs
check_consistency --no-orphans
