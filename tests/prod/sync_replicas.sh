#!/usr/bin/env bash
# sync_replicas: fsync means what it says on a replicated server (issue 9).
#
# 1. A master with no replica and a mount with --sync-replicas 1 --timeout 2:
#    writes succeed (they are on the master), fsync fails with EIO after
#    the timeout (of a file, and of a directory), and the daemon logs why
#    (and warned at the mount that the server had too few replicas).
# 2. A replica attaches: the same mount's fsync succeeds, and what it
#    confirmed is on the replica (read there).
# 3. Without --sync-replicas, the default is the server's
#    min-replicas-to-write: the mount says so in its log, and fsync waits.
# 4. --sync-replicas 0 (or a server asking for none): fsync needs nothing.
# Also: a read-only mount of the replica reads what fsync confirmed, and
# after the master restarts (another run_id) the next fsync is EIO: what
# the old process acknowledged may be lost.
. "$(dirname "$0")/lib.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 python3
need_binary REDISFS_BIN

start_plain_redis_tcp m
PORT=${SRV_PORT[m]}
URL="redis://127.0.0.1:$PORT"
P=R$RANDOM$RANDOM
MNT=$T/mnt

# fsync_file PATH TEXT: writes TEXT, fsyncs; prints "ok" or the errno name.
# fsync_file DIR: fsyncs the directory.
fsync_file() {
  python3 - "$1" "${2:-}" <<'EOF'
import errno, os, sys
if os.path.isdir(sys.argv[1]):
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
else:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, sys.argv[2].encode())
try:
    os.fsync(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
os.close(fd)
EOF
}

note "no replica, --sync-replicas 1: writes work, fsync is EIO"
fs_mount "$MNT" --redis "$URL" --prefix "$P" --sync-replicas 1 --timeout 2
out=$(fsync_file "$MNT/a" "first")
[[ $out == EIO ]] || fail "fsync without a replica: want EIO, got $out"
[[ $(cat "$MNT/a") == first ]] || fail "the write itself was lost"
grep -q 'fsync.*0 of 1 replicas confirmed' "${MOUNT_LOGS[$MNT]}" ||
  fail "no log line about the failed fsync: $(tail -3 "${MOUNT_LOGS[$MNT]}")"
grep -q 'warning: the server has 0 connected replicas, fewer than the 1 fsync waits for' "${MOUNT_LOGS[$MNT]}" ||
  fail "the mount did not warn that the server has too few replicas: $(head -5 "${MOUNT_LOGS[$MNT]}")"
# (a directory's fsync, after a rename in it, waits for the replicas too)
mv "$MNT/a" "$MNT/a2"
out=$(fsync_file "$MNT")
[[ $out == EIO ]] || fail "fsync of a directory without a replica: want EIO, got $out"
mv "$MNT/a2" "$MNT/a"

note "a replica attaches: fsync succeeds, and the data is on the replica"
start_plain_redis_tcp r --replicaof 127.0.0.1 "$PORT"
for ((i = 0; i < 200; i++)); do
  [[ $(rcli m info replication | tr -d '\r' | grep -c '^slave0:.*state=online') == 1 ]] && break
  sleep 0.05
done
out=$(fsync_file "$MNT/b" "second")
[[ $out == ok ]] || fail "fsync with a replica: $out"
ino=$(stat -c %i "$MNT/b")
[[ $(rcli r getrange "$P:BLK:$ino:0" 0 5) == second ]] ||
  fail "what fsync confirmed is not on the replica: '$(rcli r getrange "$P:BLK:$ino:0" 0 5)'"

note "a read-only mount of the replica reads what fsync confirmed, and changes nothing"
fs_mount "$T/ro" --redis "redis://127.0.0.1:${SRV_PORT[r]}" --prefix "$P" --read-only
[[ $(cat "$T/ro/b") == second ]] || fail "the replica's mount reads '$(cat "$T/ro/b")'"
if echo x 2>"$T/ro.err" >"$T/ro/new"; then
  fail "a read-only mount of a replica wrote a file"
fi
grep -q 'Read-only file system' "$T/ro.err" || fail "write on the replica's mount: $(cat "$T/ro.err")"
fs_unmount "$T/ro"

note "the master restarts: the next fsync says changes may be lost (EIO), later ones pass"
restart_redis m
out=$(fsync_file "$MNT/e" "fifth")
[[ $out == EIO ]] || fail "fsync after the master restarted: want EIO, got $out"
grep -q 'master changed since the last sync' "${MOUNT_LOGS[$MNT]}" ||
  fail "no log line about the master change: $(tail -3 "${MOUNT_LOGS[$MNT]}")"
for ((i = 0; i < 50; i++)); do
  out=$(fsync_file "$MNT/f" "sixth")
  [[ $out == ok ]] && break
  sleep 0.2
done
[[ $out == ok ]] || fail "fsync once the replica is back: $out"
fs_unmount "$MNT"

note "default: the server's min-replicas-to-write"
rcli m config set min-replicas-to-write 1 >/dev/null
fs_mount "$MNT" --redis "$URL" --prefix "$P"
grep -q 'fsync waits until 1 replica' "${MOUNT_LOGS[$MNT]}" ||
  fail "the mount did not take min-replicas-to-write: $(cat "${MOUNT_LOGS[$MNT]}")"
[[ $(fsync_file "$MNT/c" "third") == ok ]] || fail "fsync with the default and a replica"
fs_unmount "$MNT"
rcli m config set min-replicas-to-write 0 >/dev/null

note "--sync-replicas 0 with the replica stopped: fsync needs nothing"
stop_server r
fs_mount "$MNT" --redis "$URL" --prefix "$P" --sync-replicas 0 --timeout 2
[[ $(fsync_file "$MNT/d" "fourth") == ok ]] || fail "fsync with --sync-replicas 0"
fs_unmount "$MNT"
note "ok"
