#!/usr/bin/env bash
# restore and copy never lose the filesystem they replace and never leave a
# partial one behind (core/snap/install.hpp):
#   * restore --force and copy --force whose swap fails midway (a fault
#     injected after the first batch of moves, REDISFS_FAULT), or a copy
#     --force that cannot freeze its source, leave the old filesystem
#     whole, byte for byte, and no staging or replaced keys;
#   * a key no filesystem names under the target is left alone by copy and
#     restore, and replaced (removed) with --force;
#   * a target is reserved for the whole restore: a mount, a copy and a
#     delete started meanwhile are refused, and no mkfs happens under it;
#   * a copy killed with SIGKILL leaves only expiring staging keys (shown by
#     list --all, under the source's name: copies are taken copy-on-write
#     there), nothing under the destination, and a later copy works;
#     killed while moving its keys in, it leaves a journal, and the next
#     mount finishes the move (so do the next restore or copy into it and
#     diff of it); so does a restore --force or copy --force
#     killed while it moves the old filesystem aside; if its staged keys expired first, the next
#     copy of the target, mount or delete puts the old filesystem back (and
#     says so) and goes on;
#   * a delete killed midway took the superblock first: list shows no
#     filesystem, copy finds none, list --all shows the keys left, and the
#     next delete removes them;
#   * list --all shows a prefix that has keys but no superblock;
#   * a restored dump mounts read-write and says where it came from;
#     restore --snapshot keeps it a read-only snapshot, and its origin
#     unless that is the name it is restored as; without --snapshot a
#     snapshot's dump loses origin and snapshot_created, and gets the
#     dump's prefix and time (restored_from, dumped).
. "$(dirname "$0")/../mount/lib.sh"

need_snap

# digest PREFIX: every key under PREFIX (SB included) with its value digest.
digest() {
  rcli --scan --pattern "$1:*" | sort -u | grep -v ':RESERVED$' >"$T/digest.keys" || true
  [[ -s $T/digest.keys ]] || return 0
  paste -d' ' "$T/digest.keys" <(sed 's/^/debug digest-value /' "$T/digest.keys" | rcli)
}

leftovers() {  # staging, replaced, reserved and journal keys anywhere
  rcli --scan --pattern '*~restore~*'
  rcli --scan --pattern '*~copy~*'
  rcli --scan --pattern '*~replaced~*'
  rcli --scan --pattern '*:RESERVED'
  rcli --scan --pattern '*:INSTALLING'
}

REDIS_ARGS=(--enable-debug-command local)
stop_redis
start_redis

note "two filesystems: OLD (to be replaced) and NEW (to replace it)"
PREFIX=OLD
mount_fs
mkdir "$MNT/old-dir"
head -c 300000 /dev/urandom >"$MNT/old-dir/data"
for i in $(seq 1 300); do echo "old $i" >"$MNT/old-dir/f$i"; done
unmount_fs
PREFIX=NEW
mount_fs
mkdir "$MNT/new-dir"
for i in $(seq 1 300); do echo "new $i" >"$MNT/new-dir/g$i"; done
head -c 3000000 /dev/urandom >"$MNT/new-dir/big"   # a dump larger than restore's 1 MiB reads
unmount_fs
snap -q dump NEW -o "$T/new.json"
old=$(digest OLD)
[[ -n $old ]] || fail "OLD is empty"

for point in install-aside install-swap; do
  note "restore --force failing at $point keeps OLD whole"
  rc=0
  REDISFS_FAULT=$point "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q restore "$T/new.json" --prefix OLD --force \
    2>"$T/err" || rc=$?
  [[ $rc == 1 ]] || fail "restore with a fault at $point exited $rc: $(cat "$T/err")"
  grep -q 'fault injected' "$T/err" || fail "restore did not say why: $(cat "$T/err")"
  [[ $(digest OLD) == "$old" ]] || fail "restore failing at $point changed OLD"
  [[ -z $(leftovers) ]] || fail "restore failing at $point left keys: $(leftovers | head -3)"

  note "copy --force failing at $point keeps OLD whole"
  rc=0
  REDISFS_FAULT=$point "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q copy NEW OLD --force 2>"$T/err" || rc=$?
  [[ $rc == 1 ]] || fail "copy with a fault at $point exited $rc: $(cat "$T/err")"
  [[ $(digest OLD) == "$old" ]] || fail "copy failing at $point changed OLD"
  [[ -z $(leftovers) ]] || fail "copy failing at $point left keys: $(leftovers | head -3)"
done

note "copy --force that cannot freeze its source leaves the destination alone"
rcli set NEW:FREEZE someone-else PX 60000 >/dev/null
rc=0
snap -q copy NEW OLD --force 2>"$T/err" || rc=$?
[[ $rc == 1 ]] && grep -q 'frozen' "$T/err" || fail "copy with a frozen source: $rc $(cat "$T/err")"
[[ $(digest OLD) == "$old" ]] || fail "a copy that could not freeze its source changed OLD"
rcli del NEW:FREEZE >/dev/null
[[ -z $(leftovers) ]] || fail "the refused copy left keys: $(leftovers | head -3)"

note "restore --force without a fault replaces OLD, and only then removes it"
snap -q restore "$T/new.json" --prefix OLD --force
[[ -z $(leftovers) ]] || fail "restore left keys: $(leftovers | head -3)"
PREFIX=OLD
mount_fs
[[ -f $MNT/new-dir/g300 && ! -e $MNT/old-dir ]] || fail "OLD does not hold NEW's tree"
echo change >"$MNT/new-dir/changed"   # a restored dump is writable
unmount_fs
[[ $(rcli hget OLD:SB restored_from) == NEW ]] || fail "OLD does not say it was restored from NEW"
snap list | grep -q '^OLD .*restored .*dump of NEW' || fail "list does not show where OLD came from: $(snap list)"

note "a target holding only a key no filesystem names: left alone without --force, replaced with it"
for tool in copy restore; do
  rcli set STRAY:BLK:999:0 stray >/dev/null
  if [[ $tool == copy ]]; then
    snap -q copy NEW STRAY
  else
    snap -q restore "$T/new.json" --prefix STRAY
  fi
  [[ $(rcli get STRAY:BLK:999:0) == stray ]] || fail "$tool without --force removed a key it does not name"
  snap -q delete STRAY
  rcli set STRAY:BLK:999:0 stray >/dev/null
  if [[ $tool == copy ]]; then
    snap -q copy --force NEW STRAY
  else
    snap -q restore --force "$T/new.json" --prefix STRAY
  fi
  [[ $(rcli exists STRAY:BLK:999:0) == 0 ]] || fail "$tool --force left a key of the prefix it replaced"
  snap -q fsck STRAY || fail "$tool --force over a stray key: $(snap fsck STRAY 2>&1 | head -3)"
  [[ -z $(leftovers) ]] || fail "$tool --force over a stray key left keys: $(leftovers | head -3)"
  snap -q delete STRAY
done

note "the target of a running restore is reserved"
mkfifo "$T/slow"
(head -c 2000000 "$T/new.json"; sleep 3; tail -c +2000001 "$T/new.json") >"$T/slow" &
feeder=$!
snap -q restore "$T/slow" --prefix RSV 2>"$T/restore.err" &
restorer=$!
for ((i = 0; i < 100; i++)); do
  [[ -n $(rcli exists RSV:RESERVED | grep 1) ]] && break
  sleep 0.05
done
[[ $(rcli exists RSV:RESERVED) == 1 ]] || fail "restore did not reserve its target"
rcli pttl RSV:RESERVED | grep -qv -- '-1' || fail "the reservation has no TTL"
mkdir -p "$T/rsv"
expect_fail "reserved" timeout 20 "$REDISFS_BIN" -f --redis "unix://$SOCK" --prefix RSV "$T/rsv"
[[ $(rcli exists RSV:SB) == 0 ]] || fail "a mount ran mkfs on a reserved prefix"
expect_fail "reserved" snap copy NEW RSV
expect_fail "reserved" snap copy NEW RSV --force
expect_fail "reserved" snap delete RSV --force
expect_fail "reserved" snap fsck RSV --repair --force
wait "$feeder"
wait "$restorer" || fail "the reserved restore failed: $(cat "$T/restore.err")"
[[ $(rcli exists RSV:RESERVED) == 0 ]] || fail "the reservation outlived the restore"
[[ $(rcli hget RSV:SB restored_from) == NEW ]] || fail "RSV was not restored"

note "restore --snapshot keeps it a read-only snapshot, and says of what"
snap -q restore "$T/new.json" --prefix SNAP --snapshot
[[ $(rcli hget SNAP:SB read_only) == 1 ]] || fail "restore --snapshot is not read-only"
mkdir -p "$T/snap"
expect_fail "read-only snapshot restored from a dump of 'NEW'" \
  timeout 20 "$REDISFS_BIN" -f --redis "unix://$SOCK" --prefix SNAP "$T/snap"
out=$(timeout 20 "$REDISFS_BIN" -f --redis "unix://$SOCK" --prefix SNAP "$T/snap" 2>&1 || true)
[[ $out != *"snapshot of 'SNAP'"* ]] || fail "a filesystem called a snapshot of itself: $out"
# (its origin too, unless that is the name it is restored as)
snap -q copy NEW ORIG --writable
snap -q copy ORIG ORIG-SNAP
snap -q dump ORIG-SNAP -o "$T/orig-snap.json"
snap -q restore "$T/orig-snap.json" --prefix ELSEWHERE --snapshot
[[ $(rcli hget ELSEWHERE:SB origin) == ORIG && $(rcli hget ELSEWHERE:SB read_only) == 1 ]] ||
  fail "restore --snapshot of a snapshot of ORIG: origin '$(rcli hget ELSEWHERE:SB origin)'"
# without --snapshot: a writable filesystem that remembers only its dump
# (no origin nor the instant of a copy; restored_from and dumped, the
# header's prefix and time)
snap -q restore "$T/orig-snap.json" --prefix PLAIN
created_ms=$(date -d "$(jq -r .created "$T/orig-snap.json")" +%s%3N)
[[ $(rcli hexists PLAIN:SB origin) == 0 && $(rcli hexists PLAIN:SB snapshot_created) == 0 &&
  $(rcli hget PLAIN:SB read_only) == 0 && $(rcli hget PLAIN:SB restored_from) == ORIG-SNAP &&
  $(rcli hget PLAIN:SB dumped) == "${created_ms}000000" ]] ||
  fail "restore of a snapshot's dump without --snapshot: $(rcli hgetall PLAIN:SB | paste -sd' ') (dump created ${created_ms} ms)"
snap -q delete PLAIN
snap -q delete ORIG
snap -q restore "$T/orig-snap.json" --prefix ORIG --snapshot
[[ $(rcli hexists ORIG:SB origin) == 0 && $(rcli hget ORIG:SB read_only) == 1 ]] ||
  fail "restore --snapshot as its own origin kept origin '$(rcli hget ORIG:SB origin)'"
snap -q delete ORIG
snap -q delete ORIG-SNAP
snap -q delete ELSEWHERE

note "a copy killed with SIGKILL leaves only expiring staging keys"
# A long copy: NEW gets /many, a file of 150,000 one-byte blocks (inode
# 999999, block size 64 KiB), made straight on the server.
python3 - <<'PY' | rcli --pipe >/dev/null
import sys, time
out = sys.stdout.buffer
def cmd(*args):
    out.write(b'*%d\r\n' % len(args))
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.write(b'$%d\r\n%s\r\n' % (len(a), a))
for i in range(150000):
    cmd('SET', 'NEW:BLK:999999:%d' % i, 'x')
now = time.time_ns()
cmd('HSET', 'NEW:INODE:999999', 'type', 'file', 'mode', '0644', 'uid', 0, 'gid', 0, 'size', 150000 * 65536,
    'nlink', 1, 'rdev', 0, 'bytes', 150000, 'atime', now, 'mtime', now, 'ctime', now)
cmd('HSET', 'NEW:DIR:1', 'many', 999999)
cmd('HINCRBY', 'NEW:SB', 'inodes', 1)
cmd('HINCRBY', 'NEW:SB', 'bytes', 150000)
cmd('HSET', 'NEW:SB', 'next_inode', 1000000)
PY
# check_killed: whatever the moment a copy to KILLED died, KILLED holds
# nothing but its reservation and maybe the journal of its last step, and
# its staging keys all expire.
check_killed() {
  local left staged key ttl
  if [[ $(rcli exists KILLED:INSTALLING) == 1 || $(rcli exists KILLED:SB) == 1 ]]; then
    return 1  # it had reached its last step (tested below) or finished
  fi
  left=$(rcli --scan --pattern 'KILLED:*' | grep -v ':RESERVED$' || true)
  [[ -z $left ]] || fail "a killed copy left keys under KILLED: $(head -3 <<<"$left")"
  staged=$(rcli --scan --pattern 'NEW~copy~*' | sed -n 1,50p)  # (made from the source's name)
  [[ -n $staged ]] || return 1  # killed before it began
  while read -r key; do
    ttl=$(rcli pttl "$key")
    # twelve hours (redisfs-snap(1)), less what the copy took
    ((ttl > 43200000 - 600000 && ttl <= 43200000)) || fail "staging key $key has a TTL of $ttl ms, not twelve hours"
  done <<<"$staged"
  return 0
}
clean_killed() {
  rcli del KILLED:RESERVED >/dev/null
  [[ $(rcli exists KILLED:SB) == 0 && $(rcli exists KILLED:INSTALLING) == 0 ]] || snap -q delete KILLED
  for key in $(rcli --scan --pattern 'NEW~copy~*'); do rcli unlink "$key" >/dev/null; done
  rcli del NEW:COW >/dev/null  # (else the next copy waits for it to lapse, and removes the keys itself)
}
# A real SIGKILL, at whatever moment it lands.
"$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q copy NEW KILLED 2>/dev/null &   # the binary itself, not a subshell
pid=$!
for ((i = 0; i < 400; i++)); do
  [[ $(rcli exists NEW:COW) == 1 ]] && break   # the copy runs while its snapshot is alive
  sleep 0.01
done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
check_killed || true
clean_killed
# And one that dies, as SIGKILL would, in the middle of copying.
rc=0
REDISFS_FAULT=copy-staging-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q copy NEW KILLED 2>/dev/null || rc=$?
[[ $rc == 137 ]] || fail "the crash fault did not end the copy ($rc)"
check_killed || fail "a copy that died while copying left no staging keys, or reached its last step"
snap list --all | grep -q 'NEW~copy~[0-9a-f]* *copy-staging' ||
  fail "list --all hides the staging keys: $(snap list --all)"
clean_killed
# The dead copy's reservation expires within 30 s; the next copy waits for
# nothing else.
rcli del KILLED:RESERVED >/dev/null
snap -q copy NEW KILLED --force
[[ $(rcli hget KILLED:SB origin) == NEW ]] || fail "the copy after a killed one did not work"
snap -q delete KILLED

note "a copy killed while moving its keys in is finished by the next mount"
rc=0
REDISFS_FAULT=install-swap-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q copy NEW CRASHED 2>/dev/null || rc=$?
[[ $rc == 137 ]] || fail "the crash fault did not crash the copy ($rc)"
[[ $(rcli exists CRASHED:INSTALLING) == 1 ]] || fail "no journal left by the crashed copy"
[[ $(rcli exists CRASHED:SB) == 0 ]] || fail "the crashed copy's superblock arrived early"
expect_fail "reserved" snap copy NEW CRASHED --force   # its reservation is still alive
rcli del CRASHED:RESERVED >/dev/null                   # as its 30 s TTL would
# fsck --repair does not repair half a move: the next mount finishes it
crashed_keys=$(rcli --scan --pattern 'CRASHED*' | sort | md5sum)
expect_fail "was interrupted while moving its keys (CRASHED:INSTALLING): mount it once to finish that move first" \
  snap fsck CRASHED --repair
[[ $(rcli --scan --pattern 'CRASHED*' | sort | md5sum) == "$crashed_keys" ]] || fail "fsck --repair changed a half-moved copy"
PREFIX=CRASHED
mount_fs --read-only
[[ $(cat "$MNT/new-dir/g300") == "new 300" ]] || fail "the finished copy lacks files"
unmount_fs
[[ $(rcli exists CRASHED:INSTALLING) == 0 ]] || fail "the journal outlived the move"
[[ -z $(rcli --scan --pattern 'CRASHED~*') ]] || fail "staging keys left after the move was finished"
[[ $(rcli --scan --pattern 'CRASHED:*' | grep -c ':BLK:999999:') == 150000 ]] || fail "the finished copy lost blocks"
snap -q delete CRASHED

note "so does the next restore or copy into it, and the next diff of it"
for finisher in restore copy diff; do
  rc=0
  REDISFS_FAULT=install-swap-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q copy NEW FIN 2>/dev/null || rc=$?
  [[ $rc == 137 && $(rcli exists FIN:INSTALLING) == 1 ]] || fail "the crash fault did not leave a move half done ($rc)"
  rcli del FIN:RESERVED >/dev/null  # (as its TTL would)
  case $finisher in
    restore) snap restore --force "$T/new.json" --prefix FIN >"$T/out" 2>"$T/err" ;;
    copy) snap copy --force NEW FIN >"$T/out" 2>"$T/err" ;;
    diff) snap diff FIN NEW >"$T/out" 2>"$T/err" ;;
  esac || fail "$finisher after a move killed halfway: $(cat "$T/err")"
  grep -q "warning: finished the interrupted restore, copy or rollback into 'FIN' first" "$T/err" ||
    fail "$finisher does not say it finished the move: $(cat "$T/err")"
  [[ $(rcli exists FIN:INSTALLING) == 0 && -z $(leftovers) ]] || fail "$finisher left the move's keys: $(leftovers | head -3)"
  snap -q fsck FIN || fail "FIN after $finisher: $(snap fsck FIN 2>&1 | head -3)"
  snap -q delete FIN
done

# crash_over NAME: copy NEW over NAME --force, killed while moving its keys
# in, then its staged keys and reservation gone as their TTLs would end
# them (the journal stays: the move cannot end).
crash_over() {
  local rc=0
  REDISFS_FAULT=install-swap-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q copy NEW "$1" --force 2>/dev/null || rc=$?
  [[ $rc == 137 ]] || fail "the crash fault did not crash the copy over $1 ($rc)"
  [[ $(rcli get "$1:INSTALLING") == swap* ]] || fail "no journal left by the copy crashed over $1"
  rcli --scan --pattern 'NEW~copy~*' | xargs -r -n 1000 redis-cli -s "$SOCK" unlink >/dev/null
  rcli del "$1:RESERVED" >/dev/null
}
note "a move whose staged keys expired puts the old filesystem back: the next copy of it, mount or delete goes on"
PREFIX=HELD
mount_fs
mkdir "$MNT/held-dir"
echo held >"$MNT/held-dir/file"
unmount_fs
# (what a copy of HELD changes left out: it takes over HELD's change record
# and adds to its lineage)
tree() { digest HELD | sed 's/^HELD://' | grep -Ev '^(SB|CHANGED) '; rcli hmget HELD:SB inodes bytes created; }
held=$(tree)
crash_over HELD
snap copy HELD HELD-SNAP >"$T/out" 2>"$T/err" || fail "a copy of a filesystem a crashed move left: $(cat "$T/err")"
grep -q "warning: the interrupted restore, copy or rollback into 'HELD' could not be finished: .* (nothing changed: the old filesystem is back in place)" \
  "$T/err" || fail "the copy does not say what it did: $(cat "$T/err")"
[[ $(tree) == "$held" ]] || fail "HELD is not the filesystem it was before the crashed move"
[[ $(rcli exists HELD:INSTALLING) == 0 && -z $(leftovers | grep -v '^HELD-SNAP:') ]] ||
  fail "the move put back left keys: $(leftovers)"
[[ $(digest HELD-SNAP | grep -c ':BLK:') == $(digest HELD | grep -c ':BLK:') ]] || fail "the copy of HELD is not HELD"
crash_over HELD
mount_fs --read-only
[[ $(cat "$MNT/held-dir/file") == held && ! -e $MNT/new-dir ]] ||
  fail "the mount after a crashed move whose keys expired is not the old tree"
unmount_fs
grep -q "could not be finished: .*the old filesystem is back in place" "${MOUNT_LOGS[$MNT]}" ||
  fail "the mount does not log what it did: $(cat "${MOUNT_LOGS[$MNT]}")"
[[ $(tree) == "$held" ]] || fail "the mount did not put HELD back as it was"
crash_over HELD
snap delete HELD >"$T/out" 2>"$T/err" || fail "a delete of a filesystem a crashed move left: $(cat "$T/err")"
[[ -z $(rcli --scan --pattern 'HELD:*') && -z $(leftovers | grep -v '^HELD-SNAP:') ]] ||
  fail "the delete after a crashed move left keys: $(leftovers)"
snap -q delete HELD-SNAP

# aside_crash TOOL: restore --force (TOOL restore) or copy --force (copy)
# of NEW over ASIDE, a filesystem of its own, killed while it moves ASIDE
# aside: the journal stays, ASIDE's superblock went first (no tool takes
# the half that is left for a filesystem), and the next mount (restore) or
# copy of ASIDE (copy) finishes the move: NEW's tree, whole.
aside_crash() {
  local rc=0 i
  PREFIX=ASIDE
  mount_fs
  mkdir "$MNT/aside-dir"
  for i in $(seq 1 400); do echo "aside $i" >"$MNT/aside-dir/a$i"; done
  unmount_fs
  if [[ $1 == restore ]]; then
    REDISFS_FAULT=install-aside-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q restore "$T/new.json" \
      --prefix ASIDE --force 2>/dev/null || rc=$?
  else
    REDISFS_FAULT=install-aside-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q copy NEW ASIDE --force \
      2>/dev/null || rc=$?
  fi
  [[ $rc == 137 ]] || fail "the crash fault did not end the $1 while it moved ASIDE aside ($rc)"
  [[ $(rcli get ASIDE:INSTALLING) == aside* ]] || fail "no journal left by the $1 killed while moving ASIDE aside"
  [[ $(rcli exists ASIDE:SB) == 0 ]] || fail "the $1 killed while moving ASIDE aside left its superblock in place"
  rcli del ASIDE:RESERVED >/dev/null  # (as its TTL would)
  if [[ $1 == restore ]]; then
    mount_fs --read-only
    [[ $(cat "$MNT/new-dir/g300") == "new 300" && $(stat -c %s "$MNT/new-dir/big") == 3000000 && ! -e $MNT/aside-dir ]] ||
      fail "the mount after a restore killed while moving ASIDE aside is not NEW's tree"
    unmount_fs
    grep -q "finished the interrupted" "${MOUNT_LOGS[$MNT]}" || fail "the mount does not log the move it finished: $(cat "${MOUNT_LOGS[$MNT]}")"
  else
    snap copy ASIDE ASIDE-SNAP >"$T/out" 2>"$T/err" || fail "a copy of a filesystem a killed copy left aside: $(cat "$T/err")"
    grep -q "warning: finished the interrupted restore, copy or rollback into 'ASIDE' first" "$T/err" || fail "the copy does not say it finished a move: $(cat "$T/err")"
    [[ $(digest ASIDE-SNAP | grep -c ':BLK:') == $(digest NEW | grep -c ':BLK:') ]] || fail "the copy of ASIDE is not NEW"
    snap -q delete ASIDE-SNAP
  fi
  [[ $(rcli exists ASIDE:INSTALLING) == 0 && -z $(leftovers) ]] || fail "the finished move left keys: $(leftovers | head -3)"
  snap -q fsck ASIDE || fail "ASIDE after the finished move: $(snap fsck ASIDE 2>&1 | head -3)"
  snap -q delete ASIDE
}
for tool in restore copy; do
  note "$tool --force killed while it moves the old filesystem aside: the next tool or mount finishes the move"
  aside_crash "$tool"
done

note "a delete killed after its first batch took the superblock first: no tool takes the rest for a filesystem"
snap -q copy --writable NEW HALF
PREFIX=HALF
mount_fs
mkdir "$MNT/more"
for i in $(seq 1 1200); do : >"$MNT/more/e$i"; done  # (more keys than a batch of the walk's)
unmount_fs
rc=0
REDISFS_FAULT=delete-batch-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q delete HALF 2>/dev/null || rc=$?
[[ $rc == 137 ]] || fail "the crash fault did not end the delete ($rc)"
[[ $(rcli exists HALF:SB) == 0 ]] || fail "the killed delete left the superblock"
[[ -n $(rcli --scan --pattern 'HALF:INODE:*' | head -1) ]] || fail "the killed delete removed everything in one batch"
rcli del HALF:RESERVED >/dev/null  # (as its TTL would)
! snap list | grep -q '^HALF ' || fail "list shows what a killed delete left as a filesystem: $(snap list)"
snap list --all | grep -q '^HALF *incomplete' || fail "list --all does not show what the killed delete left: $(snap list --all)"
expect_fail "no filesystem at prefix 'HALF'" snap copy HALF HALF-C
snap -q delete HALF
[[ -z $(rcli --scan --pattern 'HALF:*') ]] || fail "the second delete left keys: $(rcli --scan --pattern 'HALF:*' | head -3)"

note "list --all shows keys without a superblock"
rcli hset JUNK:INODE:5 type file >/dev/null
snap list --all | grep -q '^JUNK *incomplete' || fail "list --all does not show JUNK: $(snap list --all)"
snap list | grep -q '^JUNK' && fail "plain list shows JUNK"
snap -q delete JUNK
[[ -z $(leftovers) ]] || fail "keys left behind: $(leftovers | head -3)"
note "ok"
