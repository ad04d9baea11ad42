#!/usr/bin/env bash
# redisfs as README.md's "redisfs options" states it: exit status 0 after a
# clean unmount, 1 when mounting failed, 2 for a command line it cannot use
# (an unknown option, an invalid prefix, an empty argument); and a prefix
# written with its trailing ':' (as the keys spell it, "SKX:") is the same prefix, from
# --prefix and from REDISFS_PREFIX; --version; --help; -s serves alone
# (creates, unlinks of open files, renames) and ignores max_idle_threads;
# -o max_idle_threads=N reaches the FUSE loop, and a value out of 1..1000
# exits 2, as do an attr_timeout or entry_timeout that is not a finite
# number of seconds up to a year and a sync_replicas that is not a plain
# number; the caches' default times (1 s; 3600 s on a writeback mount and a
# snapshot's read-only one), and what the options make of them; a signal
# ignored at start stays ignored. (redisfs-snap's side: tests/cli/snap_ux.sh.)
. "$(dirname "$0")/lib.sh"

# expect_rc RC CMD...: CMD exits with RC; its output in $T/out.
expect_rc() {
  local want=$1 rc=0
  shift
  "$@" >"$T/out" 2>&1 || rc=$?
  ((rc == want)) || fail "'$*' exited $rc, expected $want: $(cat "$T/out")"
}

note "0: --version names the project's version and libfuse's"
version=$(sed -n 's/^project(redisfs VERSION \([0-9.]*\) .*/\1/p' "$HERE/../../CMakeLists.txt")
[[ -n $version ]] || fail "no version in CMakeLists.txt"
expect_rc 0 "$REDISFS_BIN" --version
[[ $(cat "$T/out") == "redisfs $version (libfuse "[0-9]*")" ]] ||
  fail "--version says: $(cat "$T/out")"
for help in --help -h; do # (a summary, with no mount point needed)
  expect_rc 0 "$REDISFS_BIN" $help
  grep -q '^Usage: redisfs ' "$T/out" && grep -q -- '--single-threaded' "$T/out" || fail "$help says: $(head -5 "$T/out")"
done

note "2: a command line redisfs cannot use"
expect_rc 2 "$REDISFS_BIN" --no-such-option "$MNT"
expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" --prefix 'a b' "$MNT"
grep -q "invalid prefix" "$T/out" || fail "no reason for the prefix: $(cat "$T/out")"
expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" --prefix 'SKX::' "$MNT"
expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" --block-size 1000 "$MNT"
# an empty value is no value the parser may drop: not the embedded store,
# not a new filesystem under the default prefix
expect_rc 2 "$REDISFS_BIN" --redis "" "$MNT"
grep -q "^redisfs: option '--redis' has an empty value" "$T/out" || fail "an empty --redis: $(cat "$T/out")"
expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" "" "$MNT"
grep -q "^redisfs: argument 3 is empty" "$T/out" || fail "an empty mount source: $(cat "$T/out")"
[[ -z $(rcli --scan --pattern 'SKX:*') ]] || fail "an empty mount source made a filesystem"
# an option libfuse refuses: a command line error, said in one line before
# the daemon connects to anything (no server here to connect to)
expect_rc 2 "$REDISFS_BIN" --redis "unix://$T/nothing.sock" -o bogusopt "$MNT"
[[ $(cat "$T/out") == "redisfs: -o: unknown option(s): \`-o bogusopt'" ]] || fail "an unknown -o option: $(cat "$T/out")"
expect_rc 2 "$REDISFS_BIN" --redis "unix://$T/nothing.sock" -o max_read=abc "$MNT"
[[ $(wc -l <"$T/out") == 1 ]] || fail "a malformed -o value: $(cat "$T/out")"
# options that contradict each other
expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" --read-only --writable-snapshot "$MNT"
grep -q "^redisfs: --writable-snapshot asks for a read-write mount, --read-only" "$T/out" ||
  fail "--read-only --writable-snapshot: $(cat "$T/out")"
expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" -o ro,writable_snapshot "$MNT"
# a tool's temporary prefix is mounted read-only, if at all (none is made)
expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" --prefix 'T~dump~0123' "$MNT"
grep -q "is the form of a tool's temporary prefix" "$T/out" || fail "a temporary prefix mounted: $(cat "$T/out")"
[[ -z $(rcli --scan --pattern 'T~dump~0123:*') ]] || fail "a refused temporary prefix got a filesystem"
for bad in 0 1001 -1 ten 4x ''; do
  expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" -o "max_idle_threads=$bad" "$MNT"
  [[ $(cat "$T/out") == "redisfs: -o max_idle_threads: not a number of threads from 1 to 1000: '$bad'" ]] ||
    fail "max_idle_threads=$bad: $(cat "$T/out")"
done
for opt in attr_timeout entry_timeout; do
  for bad in nan inf -inf -1 1e300 ten ''; do
    expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" -o "$opt=$bad" "$MNT"
    [[ $(cat "$T/out") == "redisfs: -o $opt: not a number of seconds: '$bad'" ]] || fail "$opt=$bad: $(cat "$T/out")"
  done
done
for bad in -0 -1 +1 ' 1' 99999999999 x; do
  expect_rc 2 "$REDISFS_BIN" --redis "unix://$SOCK" -o "sync_replicas=$bad" "$MNT"
  [[ $(cat "$T/out") == "redisfs: -o sync_replicas: not a number of replicas (0 or more): '$bad'" ]] ||
    fail "sync_replicas=$bad: $(cat "$T/out")"
done
! is_mounted "$MNT" || fail "a refused command line mounted"

note "1: mounting failed (no server there)"
expect_rc 1 "$REDISFS_BIN" -f --redis "unix://$T/nothing.sock" --timeout 1 "$MNT"
! is_mounted "$MNT" || fail "a failed mount is mounted"

note "'<prefix>:' is <prefix>: --prefix"
start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "$PREFIX:"
echo hello >"$MNT/greeting"
[[ $(rcli exists "$PREFIX:SB") == 1 ]] || fail "--prefix '$PREFIX:' did not make $PREFIX:SB"
[[ $(rcli --scan --pattern "$PREFIX::*" | wc -l) == 0 ]] || fail "keys under '$PREFIX::'"

note "0: a clean unmount"
unmount_at "$MNT" 20
[[ $LAST_DAEMON_RC == 0 ]] || fail "redisfs exited $LAST_DAEMON_RC after a clean unmount"

note "-o max_idle_threads=N: the FUSE loop keeps N idle threads"
start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "$PREFIX" --log-level debug -o max_idle_threads=3
readers=()
for i in 1 2 3 4 5 6; do
  cat "$MNT/greeting" >/dev/null &
  readers+=($!)
done
wait "${readers[@]}"  # not the daemon, also a child of this shell
[[ $(cat "$MNT/greeting") == hello ]] || fail "the mount with max_idle_threads=3 does not read"
grep -q "serving with at most 3 idle FUSE threads" "${MOUNT_LOGS[$MNT]}" ||
  fail "max_idle_threads=3 did not reach the FUSE loop: $(cat "${MOUNT_LOGS[$MNT]}")"
unmount_at "$MNT" 20
[[ $LAST_DAEMON_RC == 0 ]] || fail "redisfs -o max_idle_threads=3 exited $LAST_DAEMON_RC"
start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "$PREFIX" --log-level debug
[[ $(cat "$MNT/greeting") == hello ]] || fail "the mount does not read"  # served: the loop has started
grep -q "serving with at most 10 idle FUSE threads" "${MOUNT_LOGS[$MNT]}" ||
  fail "the default is not 10 idle threads: $(cat "${MOUNT_LOGS[$MNT]}")"
unmount_at "$MNT" 20

note "what the kernel caches, and for how long: 1 s by default, 3600 s on a writeback mount and a snapshot's read-only one, what attr_timeout and entry_timeout say"
# caches LINE ARGS...: a mount with ARGS logs LINE (at debug level).
caches() {
  local want=$1
  shift
  start_daemon 20 "$MNT" --redis "unix://$SOCK" --log-level debug "$@"
  unmount_at "$MNT" 20
  grep -q "debug: the kernel caches attributes for $want\$" "${MOUNT_LOGS[$MNT]}" ||
    fail "$*: $(grep 'kernel caches' "${MOUNT_LOGS[$MNT]}" || echo 'no line on the caches')"
}
caches "1 s and names for 1 s" --prefix "$PREFIX"
caches "2.5 s and names for 0 s" --prefix "$PREFIX" -o attr_timeout=2.5,entry_timeout=0
caches "2.5 s and names for 1 s" --prefix "$PREFIX" -o attr_timeout=2.5 # (entry_timeout: the same default, not attr_timeout's value)
caches "3600 s and names for 3600 s" --prefix "W$PREFIX" -o writeback
rcli hset "W$PREFIX:SB" read_only 1 >/dev/null # (a snapshot, as redisfs-snap copy marks one)
caches "3600 s and names for 3600 s" --prefix "W$PREFIX" --read-only
caches "1 s and names for 1 s" --prefix "$PREFIX" --read-only # (a live filesystem read-only: it changes)

note "-s: one request at a time, and everything still works (max_idle_threads ignored)"
start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "$PREFIX" --log-level debug -s -o max_idle_threads=3
python3 - "$MNT" <<'PY' || fail "a single-threaded mount failed its work"
import os, sys
m = sys.argv[1]
os.makedirs(os.path.join(m, "single/sub"))
paths = [os.path.join(m, "single", "f%d" % i) for i in range(20)]
for i, p in enumerate(paths):  # (new files: gathered until their close)
    with open(p, "wb") as f:
        f.write(b"x" * (i * 1000))
held = open(paths[0], "rb")  # unlinked while open: an orphan until closed
os.unlink(paths[0])
os.rename(paths[1], os.path.join(m, "single/sub/moved"))
assert sorted(os.listdir(os.path.join(m, "single"))) == sorted(["sub"] + ["f%d" % i for i in range(2, 20)])
assert os.path.getsize(os.path.join(m, "single/f7")) == 7000
held.close()
PY
[[ $(cat "$MNT/greeting") == hello ]] || fail "the single-threaded mount does not read"
if grep -q "idle FUSE threads" "${MOUNT_LOGS[$MNT]}"; then
  fail "a single-threaded mount started a thread pool: $(cat "${MOUNT_LOGS[$MNT]}")"
fi
unmount_at "$MNT" 20
[[ $LAST_DAEMON_RC == 0 ]] || fail "redisfs -s exited $LAST_DAEMON_RC"
[[ -z $(rcli --scan --pattern "$PREFIX:ORPHANS") ]] || fail "the single-threaded mount left an orphan"

note "'<prefix>:' is <prefix>: REDISFS_PREFIX"
REDISFS_PREFIX="$PREFIX:" start_daemon 20 "$MNT" --redis "unix://$SOCK"
[[ $(cat "$MNT/greeting") == hello ]] || fail "REDISFS_PREFIX='$PREFIX:' is not the filesystem $PREFIX"
unmount_fs

note "0: SIGINT and SIGHUP unmount and end the daemon, as SIGTERM does (systemd_unit.sh)"
# (a background job of this shell starts with SIGINT ignored, and a signal
# ignored at start stays so, as libfuse leaves it: the daemon starts here
# with it at its default, as from a terminal)
cat >"$T/redisfs" <<EOF
#!/usr/bin/env python3
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv("$REDISFS_BIN", ["$REDISFS_BIN"] + sys.argv[1:])
EOF
chmod +x "$T/redisfs"
for sig in INT HUP; do
  REDISFS_BIN=$T/redisfs start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "$PREFIX"
  [[ $(cat "$MNT/greeting") == hello ]] || fail "the mount does not read"
  pid=$DAEMON_PID
  kill -"$sig" "$pid"
  wait_gone "$pid" 30 || fail "SIG$sig did not stop the daemon"
  rc=0
  wait "$pid" || rc=$?
  ((rc == 0)) || fail "the daemon exited $rc after SIG$sig: $(tail -3 "${MOUNT_LOGS[$MNT]}")"
  ! is_mounted "$MNT" || fail "still mounted after SIG$sig"
  unset "MOUNT_PIDS[$MNT]"
done
# ... and a signal it was started with ignored stays ignored (redisfs(1)):
# SIGINT of this shell's background job, SIGHUP under nohup
cat >"$T/redisfs-ignoring" <<EOF
#!/usr/bin/env python3
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
os.execv("$REDISFS_BIN", ["$REDISFS_BIN"] + sys.argv[1:])
EOF
chmod +x "$T/redisfs-ignoring"
REDISFS_BIN=$T/redisfs-ignoring start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "$PREFIX"
pid=$DAEMON_PID
kill -INT "$pid"
kill -HUP "$pid"
sleep 1
[[ $(cat "$MNT/greeting") == hello ]] && kill -0 "$pid" || fail "SIGINT or SIGHUP, ignored at start, stopped the daemon"
unmount_at "$MNT" 20
[[ $LAST_DAEMON_RC == 0 ]] || fail "the daemon that ignored SIGINT and SIGHUP exited $LAST_DAEMON_RC"

note "--block-size: a new filesystem's; ignored, with a warning, for one that exists"
start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "B$PREFIX" --block-size 4K
[[ $(redis-cli -s "$SOCK" hget "B$PREFIX:SB" block_size) == 4096 ]] ||
  fail "--block-size 4K made block_size $(redis-cli -s "$SOCK" hget "B$PREFIX:SB" block_size)"
head -c 10000 /dev/urandom >"$T/data"
cp "$T/data" "$MNT/data"
unmount_fs
[[ $(redis-cli -s "$SOCK" --scan --pattern "B$PREFIX:BLK:*" | wc -l) == 3 ]] ||
  fail "10,000 bytes in 4 KiB blocks: $(redis-cli -s "$SOCK" --scan --pattern "B$PREFIX:BLK:*" | wc -l) blocks, not 3"
start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "B$PREFIX" --block-size 8K
grep -q -- "--block-size ignored: B$PREFIX exists with block size 4096" "${MOUNT_LOGS[$MNT]}" ||
  fail "no warning for --block-size of an existing filesystem: $(cat "${MOUNT_LOGS[$MNT]}")"
cmp "$T/data" "$MNT/data" || fail "the file reads back wrong after a remount with another --block-size"
unmount_fs
[[ $(redis-cli -s "$SOCK" hget "B$PREFIX:SB" block_size) == 4096 ]] || fail "the block size of an existing filesystem changed"
note "ok"
