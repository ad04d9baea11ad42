#!/usr/bin/env bash
# rollback --force under a writer (issue 11): a process appends to a file
# of the snapshot through a real mount while `rollback --force` replaces
# the filesystem; the install holds its freeze a second longer
# (REDISFS_FAULT=install-frozen-pause), so the writer's change is surely
# waiting behind it (FROZEN, retried) when the swap ends. Every change of
# a mount carries the identity of the filesystem it opened and refuses with
# ESTALE, in its own script, once the superblock holds another (outcome.inc,
# Connection::set_identity): so the writer gets ESTALE (or EIO), never a
# silent success on the new state, and the rolled-back filesystem is the
# snapshot exactly (a tree digest of both, mounted read-only, and `diff`).
# A mount that asks, while the old filesystem is aside and the new one not
# yet in (no superblock), whether its filesystem is there waits for the
# install's outcome, and logs 'replaced', not 'deleted'.
REDIS_ARGS=(--enable-debug-command local)
. "$(dirname "$0")/../mount/lib.sh"

need_snap

# tree DIR: a line per path: type and mode, size, content hash, link target.
tree() {
  python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
for d, dirs, files in sorted(os.walk(root)):
    for name in sorted(dirs + files):
        p = os.path.join(d, name)
        st = os.lstat(p)
        what = ''
        if stat.S_ISREG(st.st_mode):
            with open(p, 'rb') as f:
                what = hashlib.sha256(f.read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            what = '-> ' + os.readlink(p)
        print(os.path.relpath(p, root), oct(st.st_mode), st.st_size if not stat.S_ISDIR(st.st_mode) else '-', what)
PY
}

# logged_replaced: within 5 s (each look a lookup that finds nothing, which
# makes the mount ask), the mount of $MNT logs that its filesystem was
# replaced, and never that it was deleted.
logged_replaced() {
  local log=${MOUNT_LOGS[$MNT]} i
  for ((i = 0; i < 100; i++)); do
    grep -q "the filesystem under this mount was replaced by another one" "$log" && break
    stat "$MNT/after-$i" >/dev/null 2>&1 || true
    sleep 0.05
  done
  grep -q "the filesystem under this mount was replaced by another one" "$log" ||
    fail "the mount did not log that its filesystem was replaced: $(cat "$log")"
  ! grep -q "was deleted" "$log" || fail "the mount took the rollback for a delete: $(cat "$log")"
}

mount_fs
mkdir "$MNT/d"
echo x >"$MNT/d/x"
echo v1 >"$MNT/f"
seq 1 5 >"$MNT/log"
ln -s f "$MNT/s"
snap -q copy "$PREFIX" MON
echo v2 >"$MNT/f"

note "a writer appends to log through the mount during rollback --force"
# It writes until a write fails or $T/stop appears; $T/writer.out then
# says how it ended: "errno E after N writes", or "ok N".
python3 - "$MNT/log" "$T/writer.out" "$T/stop" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
n, end = 0, None
while not os.path.exists(sys.argv[3]):
    try:
        os.write(fd, b'%d\n' % n)
    except OSError as e:
        end = 'errno %d after %d writes' % (e.errno, n)
        break
    n += 1
    time.sleep(0.002)
with open(sys.argv[2], 'w') as f:
    f.write(end or 'ok %d' % n)
PY
WRITER=$!
for ((i = 0; i < 200; i++)); do
  (($(wc -l <"$MNT/log") > 20)) && break
  sleep 0.05
done
(($(wc -l <"$MNT/log") > 20)) || fail "the writer did not start"
REDISFS_FAULT=install-frozen-pause snap -q rollback --force --discard "$PREFIX" MON >/dev/null
for ((i = 0; i < 200; i++)); do
  [[ -s $T/writer.out ]] && break
  sleep 0.05
done
touch "$T/stop"
wait "$WRITER" || fail "the writer failed: $(cat "$T/writer.out" 2>/dev/null)"
out=$(cat "$T/writer.out")
[[ $out == "errno 116 after "* || $out == "errno 5 after "* ]] ||
  fail "the writer ended with '$out', not ESTALE or EIO: its writes went on in the rolled-back filesystem"
# (while the install moves the snapshot in, the superblock is gone for a
# moment: a mount that looks then waits for the outcome, not 'deleted')
logged_replaced
unmount_fs

note "the rolled-back filesystem is the snapshot exactly"
snap -q diff MON "$PREFIX" >"$T/diff"
[[ ! -s $T/diff ]] || fail "diff MON $PREFIX: $(head -5 "$T/diff")"
mkdir -p "$T/mon"
PREFIX=MON mount_at "$T/mon" --read-only
mount_fs --read-only
tree "$T/mon" >"$T/mon.tree"
tree "$MNT" >"$T/fs.tree"
unmount_fs "$T/mon"
unmount_fs
diff "$T/mon.tree" "$T/fs.tree" >&2 || fail "the rolled-back tree is not MON's"
[[ $(grep -c . "$T/fs.tree") == 5 ]] || fail "the tree: $(cat "$T/fs.tree")"
snap -q fsck "$PREFIX" >/dev/null || fail "fsck of the rolled-back filesystem"

note "a mount that looks while the superblock is gone waits for the install's outcome"
mount_fs
snap -q copy "$PREFIX" MON2
REDISFS_FAULT=install-aside-pause snap -q rollback --force --discard "$PREFIX" MON2 >/dev/null &
rb=$!
# lookups of a name the mount never saw reach the server, and an ENOENT
# makes the mount ask whether its filesystem is still there
for ((i = 0; i < 60; i++)); do
  stat "$MNT/absent-$i" >/dev/null 2>&1 || true
  sleep 0.05
done
wait "$rb" || fail "rollback --force with the aside pause failed"
logged_replaced
unmount_fs
note "ok"
