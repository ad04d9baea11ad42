#!/usr/bin/env bash
# redisfs-snap fsck on hand-broken filesystems (issue 8): a field fsck
# cannot parse never costs a file its blocks; --repair --dry-run lists the
# repairs and marks those that delete data, and changes nothing; keys of the
# wrong type (an OPEN that is a string) are problems, not a WRONGTYPE exit;
# every line stays short whatever the key; a dead mount's orphan is left to
# the next mount, and the summary says so.
. "$(dirname "$0")/snap_lib.sh"

make_fs SKX

# A file of 200,000 bytes (49 blocks of 4 KiB), written by the key schema.
now=$(date +%s%N)
rcli hset SKX:INODE:6 type file mode 0644 uid 0 gid 0 size 200000 nlink 1 rdev 0 bytes 200000 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli hset SKX:DIR:1 big 6 >/dev/null
rcli hset SKX:INODE:3 bytes 8192 >/dev/null  # make_fs counts 8196
rcli hset SKX:SB inodes 6 bytes $((13 + 8192 + 200000)) >/dev/null
head -c 200000 /dev/urandom >"$T/big"
for ((i = 0; i < 49; i++)); do
  dd if="$T/big" bs=4096 skip=$i count=1 status=none | rcli -x set "SKX:BLK:6:$i" >/dev/null
done
snap -q fsck SKX || fail "the filesystem is not clean to start with"
before=$(fs_digest SKX)

# 1. A size that cannot be parsed: no block deleted; the repair sets it
#    from the blocks (where their data ends), which gives the file back.
for size in 18446744073709551615 9223372036854775808 lots -1 ''; do
  if [[ -z $size ]]; then
    rcli hdel SKX:INODE:6 size >/dev/null
  else
    rcli hset SKX:INODE:6 size "$size" >/dev/null
  fi
  expect_fail snap -q fsck SKX --repair --dry-run
  grep -q '^repair: bad inode: SKX:INODE:6: .*(the repair sets 200000, where the data of its blocks ends' "$T/out" ||
    fail "size '$size': the dry run: $(cat "$T/out")"
  if grep -q 'block past end of file\|DELETES DATA' "$T/out"; then
    fail "size '$size': the dry run would delete data: $(cat "$T/out")"
  fi
  snap -q fsck SKX --repair >"$T/out" || fail "size '$size': the repair failed: $(cat "$T/out")"
  if grep -q 'block past end of file\|deleted' "$T/out"; then
    fail "size '$size': repair deleted data: $(cat "$T/out")"
  fi
  [[ $(fs_digest SKX) == "$before" ]] || fail "size '$size': the repair did not give the file back as it was"
done
snap -q fsck SKX || fail "not clean after the repairs"

# 2. --dry-run lists data-deleting repairs as such and changes nothing;
#    --repair then says what it deleted.
printf 'zzz' | rcli -x set SKX:BLK:2:7 >/dev/null
rcli hset SKX:INODE:1 nlink 9 >/dev/null
broken=$(fs_digest SKX)
expect_fail snap fsck SKX --repair --dry-run
grep -q '^repair, DELETES DATA (a block of 3 bytes): block past end of file: SKX:BLK:2:7: ' "$T/out" ||
  fail "dry run: $(cat "$T/out")"
grep -q '^repair: wrong link count: SKX:INODE:1: ' "$T/out" || fail "dry run: $(cat "$T/out")"
grep -q 'would repair 2 (1 deleting data)' "$T/err" || fail "dry run summary: $(cat "$T/err")"
[[ $(fs_digest SKX) == "$broken" ]] || fail "the dry run changed the filesystem"
expect_fail snap fsck SKX
grep -q '^block past end of file: SKX:BLK:2:7: .* (--repair deletes a block of 3 bytes)$' "$T/out" ||
  fail "check: $(cat "$T/out")"
snap fsck SKX --repair >"$T/out" 2>"$T/err" || fail "repair failed: $(cat "$T/err")"
grep -q '^block past end of file: SKX:BLK:2:7: .* (repaired: deleted a block of 3 bytes)$' "$T/out" ||
  fail "repair: $(cat "$T/out")"
grep -q '1 repair deleted data' "$T/err" || fail "repair summary: $(cat "$T/err")"
[[ $(fs_digest SKX) == "$before" ]] || fail "the repair did not restore the filesystem"
expect_fail snap fsck SKX --dry-run
((LAST_RC == 2)) || fail "--dry-run without --repair: exit $LAST_RC"

# 3. Keys of the wrong type: problems, never a server error naming no key.
rcli set SKX:OPEN:2 junk >/dev/null
rcli rpush SKX:XATTR:2b x >/dev/null
rcli del SKX:XATTR:3 >/dev/null
rcli rpush SKX:XATTR:3 x >/dev/null
expect_fail snap -q fsck SKX
grep -q '^wrong key type: SKX:OPEN:2: a string, not a hash$' "$T/out" || fail "OPEN: $(cat "$T/out") $(cat "$T/err")"
grep -q '^wrong key type: SKX:XATTR:3: a list, not a hash' "$T/out" || fail "XATTR: $(cat "$T/out")"
if grep -qi wrongtype "$T/out" "$T/err"; then
  fail "a server error: $(cat "$T/err")"
fi
rcli del SKX:OPEN:2 SKX:XATTR:2b SKX:XATTR:3 >/dev/null
printf '\x00\xff\xfe binary' | rcli -x hset SKX:XATTR:3 user.raw >/dev/null

# wait_paused WHERE: until fsck, run with a REDISFS_FAULT pause, waits
wait_paused() {
  for ((i = 0; i < 200; i++)); do
    [[ $(rcli exists SKX:FSCK-PAUSED) == 1 ]] && return
    sleep 0.05
  done
  fail "fsck did not pause $1"
}

# 3b. What changes between the scan and the repair (a mount's changes
#     under --force; here the test's, while the repair waits for it:
#     REDISFS_FAULT=fsck-repair-pause) is left as it is and the line says
#     why (redisfs-snap(1), --repair); the next repair sets it right. A
#     block of a file grown since; a link count, a superblock counter and
#     a byte count changed since; an entry renamed over since; a block of
#     a file made since; a mount's session key refreshed since; a lost
#     file linked since; an inode with a wrong link count turned into a
#     string since (the line says so, not the server's WRONGTYPE).
snap -q fsck SKX || fail "not clean before 3b: $(cat "$T/out")"
clean=$(fs_digest SKX)
printf 'zzz' | rcli -x set SKX:BLK:2:7 >/dev/null
rcli hset SKX:INODE:1 nlink 9 >/dev/null
rcli hset SKX:SB inodes 99 >/dev/null
rcli hset SKX:INODE:6 bytes 7 >/dev/null
rcli hset SKX:DIR:1 ghost 999 >/dev/null
rcli set SKX:BLK:77:0 new >/dev/null
rcli set SKX:MOUNT:m9 'v1 host 1 /mnt' >/dev/null  # (no time to live: no running mount's)
rcli hset SKX:MOUNTS m9 'v1 host 1 /mnt' >/dev/null
rcli hset SKX:INODE:88 type file mode 0644 uid 0 gid 0 size 0 nlink 1 rdev 0 bytes 0 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli hset SKX:INODE:89 type file mode 0644 uid 0 gid 0 size 0 nlink 5 rdev 0 bytes 0 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli hset SKX:DIR:1 named89 89 >/dev/null
REDISFS_FAULT=fsck-repair-pause "$REDISFS_SNAP_BIN" --redis "$URL" fsck SKX --repair >"$T/out" 2>"$T/err" &
pid=$!
wait_paused "before its repair"
rcli hset SKX:INODE:2 size $((7 * 4096 + 3)) >/dev/null  # (the file reaches into block 7 now)
rcli hset SKX:INODE:1 nlink 10 >/dev/null
rcli hincrby SKX:SB inodes 1 >/dev/null
rcli hset SKX:INODE:6 bytes 0007 >/dev/null  # (the same count, other bytes)
rcli hset SKX:DIR:1 ghost 6 >/dev/null       # (big renamed over ghost)
rcli hdel SKX:DIR:1 big >/dev/null
rcli hset SKX:INODE:77 type file mode 0644 uid 0 gid 0 size 3 nlink 1 rdev 0 bytes 3 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli pexpire SKX:MOUNT:m9 30000 >/dev/null
rcli hset SKX:DIR:1 linked 88 >/dev/null # (as link.lua would: a name, and the count)
rcli hincrby SKX:INODE:88 nlink 1 >/dev/null
rcli del SKX:INODE:89 >/dev/null # (no hash any more)
rcli set SKX:INODE:89 x >/dev/null
rcli del SKX:FSCK-PAUSED >/dev/null
rc=0
wait "$pid" || rc=$?
((rc != 0)) || fail "a repair that left a problem exited 0: $(cat "$T/out")"
grep -q '^block past end of file: SKX:BLK:2:7: .* (repair failed: the file changed since the check: left as it is (run fsck again))' \
  "$T/out" || fail "a block of a file that changed: $(cat "$T/out")"
for what in 'wrong link count: SKX:INODE:1' 'wrong superblock counter: SKX:SB: inodes' 'dangling entry: SKX:DIR:1' \
  'stray key: SKX:BLK:77:0' 'mount session that never lapses: SKX:MOUNT:m9' 'lost inode: SKX:INODE:88' \
  'wrong link count: SKX:INODE:89'; do
  grep -q "^$what.* (repair failed: changed since the check: left as it is (run fsck again))" "$T/out" ||
    fail "$what, changed since the check: $(cat "$T/out")"
done
grep -q '^wrong byte count: SKX:INODE:6: .* (repaired)' "$T/out" ||
  fail "a byte count written alike since the check: $(cat "$T/out")"
grep -q "'SKX' has 8 problems left (changed while checked: run fsck again)" "$T/err" ||
  fail "the summary of repairs left for the next check: $(cat "$T/err")"
[[ $(rcli get SKX:BLK:2:7) == zzz ]] || fail "the repair cut a block of a file that changed"
[[ $(rcli hget SKX:INODE:1 nlink) == 10 ]] || fail "the repair overwrote a link count changed since the check"
[[ $(rcli hget SKX:SB inodes) == 100 ]] || fail "the repair overwrote a counter changed since the check"
[[ $(rcli hget SKX:DIR:1 ghost) == 6 ]] || fail "the repair removed an entry renamed over since the check"
[[ $(rcli get SKX:BLK:77:0) == new ]] || fail "the repair removed a block of a file made since the check"
[[ $(rcli pttl SKX:MOUNT:m9) -gt 0 && $(rcli hexists SKX:MOUNTS m9) == 1 ]] ||
  fail "the repair removed a session key refreshed since the check"
[[ $(rcli hget SKX:INODE:88 nlink) == 2 && $(rcli hexists SKX:DIR:1 lost+found) == 0 ]] ||
  fail "the repair reattached a file linked since the check, or made /lost+found for it"
[[ $(rcli get SKX:INODE:89) == x ]] || fail "the repair changed a key that turned into a string since the check"
rcli del SKX:MOUNT:m9 SKX:INODE:77 SKX:BLK:77:0 SKX:INODE:88 SKX:INODE:89 >/dev/null
rcli hdel SKX:DIR:1 linked named89 >/dev/null
rcli hdel SKX:MOUNTS m9 >/dev/null
rcli hset SKX:INODE:2 size 13 >/dev/null
rcli hset SKX:DIR:1 big 6 >/dev/null
rcli hdel SKX:DIR:1 ghost >/dev/null
snap fsck SKX --repair >"$T/out" 2>"$T/err" || fail "the next repair failed: $(cat "$T/out" "$T/err")"
[[ $(fs_digest SKX) == "$clean" ]] || fail "the next repair did not restore the filesystem"

# 3c. A mounted filesystem (--force) is checked twice, and only what both
#     checks found is repaired (redisfs-snap(1), --force): here damage
#     that appears between the checks (REDISFS_FAULT=fsck-recheck-pause),
#     as a change seen half done by the second check only would, is
#     reported and left; what both saw is repaired.
rcli set SKX:MOUNT:m1 x px 60000 >/dev/null  # (a live mount's session key has its TTL)
rcli hset SKX:MOUNTS m1 x >/dev/null
rcli hset SKX:SB inodes 99 >/dev/null
REDISFS_FAULT=fsck-recheck-pause "$REDISFS_SNAP_BIN" --redis "$URL" fsck SKX --repair --force --json >"$T/out" 2>"$T/err" &
pid=$!
wait_paused "between its checks"
rcli hset SKX:INODE:6 nlink 3 >/dev/null
rcli del SKX:FSCK-PAUSED >/dev/null
rc=0
wait "$pid" || rc=$?
((rc == 1)) || fail "a repair that left a problem seen once exited $rc: $(cat "$T/out" "$T/err")"
# (--json: "again" says which to run fsck again for)
jq -e '.problems | map(select(.kind == "wrong superblock counter")) | .[0].repaired and (.[0].again | not)' \
  "$T/out" >/dev/null || fail "a counter both checks found: $(cat "$T/out")"
jq -e '.problems | map(select(.key == "SKX:INODE:6")) | .[0] | (.repaired | not) and .again and (.detail ==
  "nlink is 3, but 1 entry names it (not repaired: one of two checks of the mounted filesystem saw it, so it may be a change in flight; run fsck again)")' \
  "$T/out" >/dev/null || fail "a link count one check found: $(cat "$T/out")"
grep -q "'SKX' has 1 problem left (changed while checked: run fsck again)" "$T/err" ||
  fail "the summary of a problem one check found: $(cat "$T/err")"
[[ $(rcli hget SKX:INODE:6 nlink) == 3 ]] || fail "the repair changed a link count one check found"
expect_fail snap -q fsck SKX --json
[[ $(jq -c '[.problems[] | [.kind, .repairable, .repaired, .again]]' "$T/out") == '[["wrong link count",true,false,false]]' ]] ||
  fail "fsck --json of a link count wrong: $(cat "$T/out")"
[[ $(rcli hget SKX:SB inodes) == 6 ]] || fail "the repair left the counter both checks found: $(rcli hget SKX:SB inodes)"
snap -q fsck SKX --repair --force >"$T/out" 2>"$T/err" || fail "the next repair of the mounted filesystem: $(cat "$T/out" "$T/err")"
rcli del SKX:MOUNT:m1 SKX:MOUNTS >/dev/null
[[ $(fs_digest SKX) == "$clean" ]] || fail "the repairs of the mounted filesystem did not restore it"

# 3d. A repair reserves the filesystem for the check and the repair (fsck
#     counts the mounts once it has: redisfs-snap(1), --repair): a mount
#     that starts meanwhile fails, and so do a restore into it and a
#     delete of it; the reservation ends with the repair. It repairs under
#     a snapshot's freeze: a snapshot begun during the repair
#     (REDISFS_FAULT=fsck-frozen-pause) waits for it, and holds the
#     repaired state, not a mix of both. A reservation or freeze no tool
#     holds (never lapsing, or no string) is replaced by the repair's own,
#     and reported repaired; a repair refused (mounted) leaves it.
snap -q dump SKX -o "$T/skx.json" || fail "dump SKX"
rcli hset SKX:SB inodes 99 >/dev/null
REDISFS_FAULT=fsck-repair-pause "$REDISFS_SNAP_BIN" --redis "$URL" fsck SKX --repair >"$T/fsck.out" 2>"$T/fsck.err" &
pid=$!
wait_paused "before its repair"
[[ $(rcli get SKX:RESERVED) == *" fsck --repair by "* ]] || fail "fsck --repair did not reserve SKX: $(rcli get SKX:RESERVED)"
mkdir -p "$T/mnt"
expect_fail timeout 20 "$REDISFS_BIN" -f --redis "$URL" --prefix SKX "$T/mnt"
grep -q "is reserved by a running fsck --repair by " "$T/err" || fail "a mount during a repair: $(cat "$T/err")"
[[ $(rcli hlen SKX:MOUNTS) == 0 ]] || fail "the refused mount stayed registered"
expect_fail snap delete SKX --force
grep -q "reserved by a running fsck --repair" "$T/err" || fail "a delete during a repair: $(cat "$T/err")"
expect_fail snap restore "$T/skx.json" --prefix SKX --force
grep -q "reserved by a running fsck --repair" "$T/err" || fail "a restore during a repair: $(cat "$T/err")"
rcli del SKX:FSCK-PAUSED >/dev/null
wait "$pid" || fail "the repair of 3d: $(cat "$T/fsck.out" "$T/fsck.err")"
[[ $(rcli exists SKX:RESERVED) == 0 ]] || fail "the repair's reservation outlived it"
[[ $(fs_digest SKX) == "$clean" ]] || fail "the repair of 3d did not restore the filesystem"
# (a reservation taken over while the check ran, as one that lapsed while
# fsck stalled would be: the server is asked before the first step)
rcli hset SKX:SB inodes 99 >/dev/null
REDISFS_FAULT=fsck-repair-pause "$REDISFS_SNAP_BIN" --redis "$URL" fsck SKX --repair >"$T/fsck.out" 2>"$T/fsck.err" &
pid=$!
wait_paused "before its repair"
rcli set SKX:RESERVED 'abc restore by elsewhere:1' px 30000 >/dev/null
rcli del SKX:FSCK-PAUSED >/dev/null
rc=0
wait "$pid" || rc=$?
((rc != 0)) && grep -q "expired or was taken over .*: nothing repaired; run fsck --repair again" "$T/fsck.err" ||
  fail "a repair under a reservation another tool took: exit $rc: $(cat "$T/fsck.out" "$T/fsck.err")"
[[ $(rcli hget SKX:SB inodes) == 99 && $(rcli get SKX:RESERVED) == 'abc restore by elsewhere:1' ]] ||
  fail "a repair went on, or ended the reservation, after another tool took it"
rcli del SKX:RESERVED >/dev/null
snap -q fsck SKX --repair >/dev/null 2>&1 || fail "the repair after the taken reservation"
[[ $(fs_digest SKX) == "$clean" ]] || fail "the repair after the taken reservation did not restore the filesystem"
inodes=$(rcli hget SKX:SB inodes)
rcli hset SKX:SB inodes 99 >/dev/null
REDISFS_FAULT=fsck-frozen-pause "$REDISFS_SNAP_BIN" --redis "$URL" fsck SKX --repair >"$T/fsck.out" 2>"$T/fsck.err" &
pid=$!
wait_paused "in its repair"
snap -q copy SKX SKX3 >"$T/copy.out" 2>"$T/copy.err" &
copier=$!
sleep 1 # (time for a copy that did not wait to take its instant now)
rcli del SKX:FSCK-PAUSED >/dev/null
wait "$pid" || fail "the repair under a snapshot's freeze: $(cat "$T/fsck.out" "$T/fsck.err")"
wait "$copier" || fail "the snapshot begun during the repair: $(cat "$T/copy.err")"
[[ $(rcli hget SKX3:SB inodes) == "$inodes" ]] ||
  fail "the snapshot begun during the repair holds inodes $(rcli hget SKX3:SB inodes), not the repaired $inodes"
snap -q delete SKX3 --force >/dev/null 2>&1 || fail "delete SKX3"
rcli set SKX:RESERVED 'abc restore by gone:1' >/dev/null  # (no time to live: no running tool's)
snap fsck SKX --repair >"$T/out" 2>"$T/err" || fail "a repair past a reservation that never lapses: $(cat "$T/out" "$T/err")"
grep -q '^reservation that never lapses: SKX:RESERVED: a reservation that never expires refuses every mount, restore, copy and delete of it (replaced by this repair.s own reservation, which it removes at its end) (repaired)$' \
  "$T/out" || fail "the line of a reservation that never lapses: $(cat "$T/out")"
[[ $(rcli exists SKX:RESERVED) == 0 ]] || fail "the reservation that never lapsed is still there"
rcli hset SKX:RESERVED a b >/dev/null  # (no string: no tool's either)
snap fsck SKX --repair >"$T/out" 2>"$T/err" || fail "a repair past a reservation of the wrong type: $(cat "$T/out" "$T/err")"
grep -q "^wrong key type: SKX:RESERVED: a hash, not a string (replaced by this repair's own reservation, which it removes at its end) (repaired)$" \
  "$T/out" || fail "the line of a reservation of the wrong type: $(cat "$T/out")"
[[ $(rcli exists SKX:RESERVED) == 0 ]] || fail "the reservation of the wrong type is still there"
# (a repair refused for a live mount refuses before it replaces anything)
rcli set SKX:MOUNT:m1 x px 60000 >/dev/null
rcli hset SKX:MOUNTS m1 x >/dev/null
rcli set SKX:RESERVED 'abc restore by gone:1' >/dev/null
expect_fail snap fsck SKX --repair
grep -q "'SKX' is mounted (1 live mount): unmount it before --repair" "$T/err" || fail "a repair of a mounted filesystem: $(cat "$T/err")"
[[ $(rcli get SKX:RESERVED) == 'abc restore by gone:1' && $(rcli pttl SKX:RESERVED) == -1 ]] ||
  fail "a refused repair changed the reservation it did not take: $(rcli get SKX:RESERVED)"
rcli del SKX:MOUNT:m1 SKX:MOUNTS SKX:RESERVED >/dev/null
for freeze in 'set SKX:FREEZE x' 'hset SKX:FREEZE a b'; do # (likewise a freeze)
  rcli $freeze >/dev/null
  snap fsck SKX --repair >"$T/out" 2>"$T/err" || fail "a repair past a dead freeze ($freeze): $(cat "$T/out" "$T/err")"
  grep -q "^freeze that never lapses: SKX:FREEZE: .* (replaced by this repair's own freeze, which it removes at its end) (repaired)$" \
    "$T/out" || fail "the line of a dead freeze ($freeze): $(cat "$T/out")"
  [[ $(rcli exists SKX:FREEZE) == 0 ]] || fail "the dead freeze ($freeze) is still there"
done
[[ $(fs_digest SKX) == "$clean" ]] || fail "the repairs of 3d did not restore the filesystem"

# 4. One bounded line per problem, whatever the key or name.
python3 - "$SOCK" <<'PY'
import socket, sys
def cmd(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
huge = b'k' * (1 << 20)
s.sendall(cmd(b'SET', b'SKX:' + huge, b'1') + cmd(b'HSET', b'SKX:DIR:1', huge + b'\n', b'999'))
got = b''
while got.count(b'\r\n') < 2:
    got += s.recv(100)
PY
expect_fail snap -q fsck SKX
[[ $(wc -l <"$T/out") == 2 ]] || fail "expected 2 problems: $(head -c 2000 "$T/out")"
while IFS= read -r line; do
  ((${#line} < 2048)) || fail "a line of ${#line} bytes"
done <"$T/out"
while IFS= read -r line; do
  ((${#line} < 2048)) || fail "a stderr line of ${#line} bytes"
done <"$T/err"

# 5. A dead mount's orphan is the next read-write mount's to free, and the
# summary says so rather than "repair it by hand"; one whose inode is bad
# waits for the inode's fix.
make_fs DEAD
now=$(date +%s%N)
rcli hset DEAD:INODE:6 type file mode 0644 uid 0 gid 0 size 0 nlink 0 rdev 0 bytes 0 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli hset DEAD:ORPHANS 6 gone-mount >/dev/null
rcli hset DEAD:SB inodes 6 >/dev/null
expect_fail snap fsck DEAD --repair
grep -q "^orphan of a dead mount: DEAD:ORPHANS: inode 6 .*the next read-write mount frees it" "$T/out" ||
  fail "the dead mount's orphan: $(cat "$T/out")"
grep -q "'DEAD' has 1 problem left (the next read-write mount frees it)$" "$T/err" ||
  fail "the summary of a dead mount's orphan: $(cat "$T/err")"
expect_fail snap -q fsck DEAD --json
[[ $(jq -c '[.problems[] | [.kind, .repairable, .mount_frees]]' "$T/out") == '[["orphan of a dead mount",false,true]]' ]] ||
  fail "fsck --json of a dead mount's orphan: $(cat "$T/out")"
rcli hset DEAD:INODE:6 type x >/dev/null
expect_fail snap fsck DEAD
grep -q "a read-write mount frees it once the inode is fixed" "$T/out" || fail "a bad orphan: $(cat "$T/out")"
grep -q "'DEAD' has 2 problems (repair them by hand)$" "$T/err" ||
  fail "the summary of a bad inode's orphan (no mount frees it yet): $(cat "$T/err")"
note "ok"
