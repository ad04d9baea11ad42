#!/usr/bin/env bash
# redisfs-snap dump checks the filesystem it writes, as verify would check
# the dump (redisfs-snap(1), dump): a filesystem restore would refuse is
# said at dump time, in one warning naming the first problem, how many
# fsck --repair repairs and how to check the server, the dump still
# written whole (exit 0). A sound filesystem, or one whose only odd keys
# are orphans restore drops, gets no warning. The check rides the stream
# (a dump to a pipe is checked too): the records come as it takes them,
# the superblock, ORPHANS, every inode, then the rest.
. "$(dirname "$0")/snap_lib.sh"

# no_warning ERRFILE WHAT
no_warning() {
  ! grep -q 'warning' "$1" || fail "$2: $(cat "$1")"
}

note "a sound filesystem, and one with an orphan restore drops: no warning"
make_fs SKX
snap dump SKX -o "$T/good.json" 2>"$T/err" >/dev/null || fail "dump SKX: $(cat "$T/err")"
no_warning "$T/err" "a sound dump warned"
now=$(date +%s%N)
rcli hset SKX:INODE:9 type file mode 0644 uid 0 gid 0 size 5 nlink 0 rdev 0 bytes 5 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
printf 'gone!' | rcli -x set SKX:BLK:9:0 >/dev/null
rcli hset SKX:ORPHANS 9 deadmount >/dev/null
rcli hincrby SKX:SB inodes 1 >/dev/null
rcli hincrby SKX:SB bytes 5 >/dev/null
snap dump SKX -o "$T/orph.json" 2>"$T/err" >/dev/null || fail "dump of an orphan: $(cat "$T/err")"
no_warning "$T/err" "the dump of an orphan restore drops warned"
snap verify "$T/orph.json" 2>/dev/null || fail "verify of the orphan's dump: $(cat "$T/out")"

note "the records come as the check takes them: SB, ORPHANS, the inodes, the rest"
order=$(jq -r '[.records[].key | if . == "SB" then 0 elif . == "ORPHANS" then 1 elif startswith("INODE:") then 2 else 3 end]
  | (. == sort) and .[0] == 0 and .[1] == 1' "$T/orph.json")
[[ $order == true ]] || fail "records out of order: $(jq -c '[.records[].key]' "$T/orph.json")"

note "a damaged filesystem: the warning says what restore will refuse, as verify says it"
make_fs BAD
rcli hset BAD:INODE:2 nlink 5 >/dev/null # wrong link count
rcli hset BAD:DIR:4 ghost 77 >/dev/null  # dangling entry
snap dump BAD -o "$T/bad.json" 2>"$T/err" >/dev/null || fail "dump of a damaged filesystem failed: $(cat "$T/err")"
[[ $(grep -c warning "$T/err") == 1 ]] || fail "not one warning: $(cat "$T/err")"
grep -q "warning: .*the filesystem in the dump is damaged (restore refuses it): .* (and 1 more problem) \
(restore --damaged restores it as it is, for fsck --repair, which repairs both); 'redisfs-snap fsck BAD' checks it on \
the server$" "$T/err" || fail "the warning: $(cat "$T/err")"
first=$(grep -o 'restore refuses it): [^(]*' "$T/err" | sed 's/^restore refuses it): //; s/ $//')
expect_fail snap verify "$T/bad.json"
[[ $(wc -l <"$T/out") == 2 ]] || fail "verify found other problems: $(cat "$T/out")"
grep -qF "$T/bad.json: $first" "$T/out" || fail "the warning's problem ($first) is not verify's: $(cat "$T/out")"
expect_fail snap restore "$T/bad.json" --prefix BADCOPY
grep -qF "$first" "$T/err" || fail "restore refuses another problem than the warning's: $(cat "$T/err")"

note "to a pipe: checked as it streams"
snap dump BAD 2>"$T/err" | cat >"$T/piped.json"
grep -qF "the filesystem in the dump is damaged (restore refuses it): " "$T/err" ||
  fail "a dump to a pipe was not checked: $(cat "$T/err")"
cmp <(jq -S '.records | sort_by(.key)' "$T/piped.json") <(jq -S '.records | sort_by(.key)' "$T/bad.json") || fail "the piped dump holds other records"

note "damage fsck --repair cannot repair: said so"
make_fs WORSE
rcli hdel WORSE:INODE:5 target >/dev/null
snap dump WORSE -o "$T/worse.json" 2>"$T/err" >/dev/null || fail "dump WORSE: $(cat "$T/err")"
grep -q "warning: .*: bad inode: INODE:5: inode 5: a symlink without a target .*(restore --damaged restores it as \
it is; fsck --repair cannot repair it: fix it by hand)" "$T/err" || fail "the warning of a by-hand problem: $(cat "$T/err")"
note "ok"
