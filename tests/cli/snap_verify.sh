#!/usr/bin/env bash
# redisfs-snap verify: a dump checked without a server, by restore's rules.
# A sound dump exits 0 and prints nothing on stdout; one restore refuses
# exits 1 with one line per problem ("FILE: ..."), restore's message for a
# bad document or record, fsck's lines for a damaged filesystem inside (the
# same problems restore's fsck of its staging finds); 2 for a command line
# it cannot use or a file it cannot read. The hostile corpora
# (snap_hostile.sh, snap_hostile_gen.sh) check verify against restore dump
# by dump; here: output forms, several files, compression, orphans, a
# header's record_count that is wrong (only announced: accepted), and that
# no server is needed.
. "$(dirname "$0")/snap_lib.sh"

make_fs SKX
snap -q dump SKX -o "$T/good.json"
snap -q dump SKX -o "$T/good.json.zst"
snap -q dump SKX -o "$T/good.json.gz"
nosrv=(env -u REDISFS_URL "$REDISFS_SNAP_BIN" --redis "unix://$T/no-server.sock")

note "a sound dump, plain or compressed, with no server to ask"
for f in good.json good.json.zst good.json.gz; do
  "${nosrv[@]}" verify "$T/$f" >"$T/out" 2>"$T/err" || fail "verify $f: $(cat "$T/err")"
  [[ ! -s $T/out ]] || fail "verify $f printed problems: $(cat "$T/out")"
  grep -q "verify $T/$f: a .*dump of SKX (12 records, .*, 5 inodes), sound" "$T/err" || fail "summary: $(cat "$T/err")"
done
grep -q 'a zstd dump of SKX' <("${nosrv[@]}" verify "$T/good.json.zst" 2>&1) || fail "zstd not said"
# (the header's record_count only announces: nothing is checked against
# it, redisfs-dump(5); the trailer's count is)
jq -c '.record_count = 99999' "$T/good.json" >"$T/announced.json"
"${nosrv[@]}" verify "$T/announced.json" >"$T/out" 2>"$T/err" || fail "verify of a wrong record_count: $(cat "$T/out" "$T/err")"
snap -q restore "$T/announced.json" --prefix ANNOUNCED || fail "restore of a wrong record_count"
[[ $(fs_digest ANNOUNCED) == "$(fs_digest SKX)" ]] || fail "the dump with a wrong record_count restored another tree"
snap -q delete ANNOUNCED

note "restore --damaged takes a damaged filesystem, never a damaged dump"
# (the document is checked as always: a cut file, a bad checksum, a
# duplicate key, a FREEZE record are refused, and nothing is written)
head -c $(($(stat -c %s "$T/good.json") - 40)) "$T/good.json" >"$T/cut.json"
jq -c '.trailer.sha256 = ("0" * 64)' "$T/good.json" >"$T/badsum.json"
jq -c '.records += [.records[-1]]' "$T/good.json" >"$T/dupkey.json"
jq -c '.records += [{"key": "FREEZE", "type": "string", "value": "x"}]' "$T/good.json" >"$T/freeze.json"
for f in cut badsum dupkey freeze; do
  expect_fail snap restore --damaged "$T/$f.json" --prefix DMG
  [[ $LAST_RC == 1 && $(wc -l <"$T/err") == 1 ]] || fail "restore --damaged of $f.json exited $LAST_RC: $(cat "$T/err")"
  ! grep -q "damaged: " "$T/err" || fail "restore --damaged of $f.json took it for a damaged filesystem: $(cat "$T/err")"
  [[ $(key_count DMG) == 0 && -z $(rcli --scan --pattern 'DMG~*') ]] || fail "restore --damaged of $f.json wrote keys"
done

note "exit 2: no file, stdin, a file that cannot be read"
expect_fail snap verify
[[ $LAST_RC == 2 ]] || fail "verify without FILE exited $LAST_RC"
expect_fail snap verify -
[[ $LAST_RC == 2 ]] || fail "verify - exited $LAST_RC"
grep -q 'not stdin' "$T/err" || fail "verify -: $(cat "$T/err")"
expect_fail snap verify "$T/missing.json"
[[ $LAST_RC == 2 ]] || fail "verify of a missing file exited $LAST_RC"
[[ $(cat "$T/err") == "redisfs-snap: error: cannot open $T/missing.json: No such file or directory" ]] ||
  fail "missing file: $(cat "$T/err")"
# A directory cannot be read either (a stream opens one, then fails to
# read it): said so, as a file it cannot read, by verify and restore.
mkdir "$T/adir"
expect_fail snap verify "$T/adir"
[[ $LAST_RC == 2 && $(cat "$T/err") == "redisfs-snap: error: cannot open $T/adir: Is a directory" ]] ||
  fail "verify of a directory exited $LAST_RC: $(cat "$T/err")"
expect_fail snap restore "$T/adir" --prefix ADIR
[[ $LAST_RC == 1 && $(cat "$T/err") == "redisfs-snap: error: cannot open $T/adir: Is a directory" ]] ||
  fail "restore of a directory exited $LAST_RC: $(cat "$T/err")"
expect_fail snap restore --prefix ADIR <"$T/adir"
[[ $(cat "$T/err") == "redisfs-snap: error: stdin: dump: read failed: Is a directory" ]] ||
  fail "restore of a directory on stdin: $(cat "$T/err")"

note "a damaged filesystem inside: fsck's lines, and restore refuses the same problems"
make_fs BAD
rcli hset BAD:INODE:2 nlink 5 >/dev/null         # wrong link count
rcli hset BAD:DIR:4 ghost 77 >/dev/null          # dangling entry
snap -q dump BAD -o "$T/bad.json"
expect_fail "${nosrv[@]}" verify "$T/bad.json"
[[ $LAST_RC == 1 ]] || fail "verify of a damaged dump exited $LAST_RC"
cp "$T/out" "$T/vout"
grep -qx "$T/bad.json: wrong link count: INODE:2: nlink is 5, but 1 entry names it" "$T/out" ||
  fail "verify lines: $(cat "$T/out")"
grep -qx "$T/bad.json: dangling entry: DIR:4: 'ghost' names inode 77, which does not exist" "$T/out" ||
  fail "verify lines: $(cat "$T/out")"
[[ $(wc -l <"$T/out") == 2 ]] || fail "verify found $(wc -l <"$T/out") problems: $(cat "$T/out")"
hint="(restore --damaged restores it as it is, for fsck --repair, which repairs both)"
grep -qF "2 problems restore refuses $hint" "$T/err" || fail "summary: $(cat "$T/err")"
expect_fail snap restore "$T/bad.json" --prefix BADCOPY
same_reason "$T/err" "$T/vout" "$T/bad.json" || fail "restore and verify disagree: $(cat "$T/err") / $(cat "$T/out")"
[[ $(cat "$T/err") == *" $hint" ]] || fail "no hint: $(cat "$T/err")"

note "the hint says what fsck --repair cannot repair"
make_fs WORSE
rcli hdel WORSE:INODE:5 target >/dev/null         # by hand (a symlink without its target)
rcli hset WORSE:INODE:3 nlink 7 >/dev/null        # repairable
snap -q dump WORSE -o "$T/worse.json"
expect_fail "${nosrv[@]}" verify "$T/worse.json"
hint="(restore --damaged restores it as it is, for fsck --repair, which repairs 1 of the 2 (fix the rest by hand))"
grep -qF "2 problems restore refuses $hint" "$T/err" || fail "summary of a dump fsck repairs in part: $(cat "$T/err")"
rcli hset WORSE:INODE:3 nlink 1 >/dev/null
snap -q dump WORSE -o "$T/worse.json"
expect_fail snap restore "$T/worse.json" --prefix WORSECOPY
[[ $(cat "$T/err") == *" (restore --damaged restores it as it is; fsck --repair cannot repair it: fix it by hand)" ]] ||
  fail "restore of a dump fsck cannot repair: $(cat "$T/err")"
snap -q delete WORSE

note "restore --dry-run of a damaged dump refuses it as restore does; --damaged restores it as it is, for fsck"
expect_fail snap restore --dry-run "$T/bad.json" --prefix BADCOPY
same_reason "$T/err" "$T/vout" "$T/bad.json" || fail "the dry run and verify disagree: $(cat "$T/err")"
snap restore --dry-run - --prefix BADCOPY <"$T/bad.json" 2>"$T/err" >/dev/null || fail "a dry run from stdin: $(cat "$T/err")"
grep -q "warning: the filesystem in the dump is not checked when it is read from a stream" "$T/err" ||
  fail "a dry run from stdin does not say that the filesystem is not checked: $(cat "$T/err")"
snap restore --dry-run --damaged "$T/bad.json" --prefix BADCOPY 2>"$T/err" >/dev/null ||
  fail "a dry run with --damaged: $(cat "$T/err")"
grep -q "warning: the filesystem in the dump is damaged: .*; it would be restored as it is" "$T/err" ||
  fail "a dry run with --damaged: $(cat "$T/err")"
[[ $(key_count BADCOPY) == 0 ]] || fail "a dry run wrote $(key_count BADCOPY) keys"
snap restore --damaged "$T/bad.json" --prefix BADCOPY 2>"$T/err" >/dev/null || fail "restore --damaged: $(cat "$T/err")"
grep -q "warning: the filesystem in the dump is damaged: .*; restored as it is: 'redisfs-snap fsck BADCOPY --repair' repairs both$" \
  "$T/err" || fail "restore --damaged: $(cat "$T/err")"
expect_fail snap -q fsck BADCOPY
[[ $(sort "$T/out" | cut -d: -f1 | paste -sd,) == "dangling entry,wrong link count" ]] ||
  fail "fsck of what restore --damaged restored: $(cat "$T/out")"
snap -q fsck BADCOPY --repair >/dev/null || fail "fsck --repair of what restore --damaged restored"
snap -q fsck BADCOPY || fail "not clean after fsck --repair"
snap -q delete BADCOPY

note "several files: each verified, lines name their file; --json"
expect_fail "${nosrv[@]}" verify "$T/good.json" "$T/bad.json" "$T/good.json.gz"
[[ $LAST_RC == 1 ]] || fail "verify good bad good exited $LAST_RC"
[[ $(grep -c "^$T/bad.json: " "$T/out") == 2 && $(wc -l <"$T/out") == 2 ]] || fail "lines: $(cat "$T/out")"
grep -q '1 of 3 dumps are not sound' "$T/err" || fail "several files: $(cat "$T/err")"
"${nosrv[@]}" -q verify --json "$T/good.json" "$T/bad.json" >"$T/json" || true
[[ $(jq -r '.sound' "$T/json") == false ]] || fail "json: $(cat "$T/json")"
[[ $(jq -r '.files[0].sound, .files[0].records, .files[0].prefix' "$T/json" | tr '\n' ' ') == "true 12 SKX " ]] ||
  fail "json file 0: $(jq -c '.files[0]' "$T/json")"
[[ $(jq -r '.files[1].problems | map(.kind) | sort | join(",")' "$T/json") == "dangling entry,wrong link count" ]] ||
  fail "json file 1: $(jq -c '.files[1]' "$T/json")"
# every member redisfs-snap(1) names, and the values a sound plain dump has
want='bytes chain compression file incremental inodes prefix problems records refusal sha256 sound'
[[ $(jq -r '.files[0] | keys | join(" ")' "$T/json") == "$want" && $(jq -r 'keys | join(" ")' "$T/json") == "errors files sound" ]] ||
  fail "json members: $(jq -c '[keys, (.files[0] | keys)]' "$T/json")"
[[ $(jq -r '.files[0] | [.file, .compression, .inodes, .incremental, .refusal, (.chain | length), (.errors // "")] | join(" ")' "$T/json") == "$T/good.json none 5 false  0 " ]] ||
  fail "json file 0 values: $(jq -c '.files[0]' "$T/json")"
[[ $(jq -r '.files[0].sha256' "$T/json") == $(jq -r '.trailer.sha256' "$T/good.json") &&
  $(jq -r '.files[0].bytes' "$T/json") == $(jq -r '.trailer.bytes' "$T/good.json") ]] ||
  fail "json file 0: sha256 and bytes are not the trailer's: $(jq -c '.files[0]' "$T/json")"
[[ $(jq -r '.files[1].problems[0] | has("key") and has("detail")' "$T/json") == true ]] ||
  fail "json problems: $(jq -c '.files[1].problems[0]' "$T/json")"
expect_fail "${nosrv[@]}" verify "$T/good.json" "$T/missing.json"
[[ $LAST_RC == 2 ]] || fail "a missing file among good ones exited $LAST_RC"

note "a bad document: restore's own message"
head -c 300 "$T/good.json" >"$T/cut.json"
expect_fail "${nosrv[@]}" verify "$T/cut.json"
[[ $LAST_RC == 1 ]] || fail "verify of a cut dump exited $LAST_RC"
grep -qx "$T/cut.json: dump: truncated at byte 300 (document ends before the trailer)" "$T/out" ||
  fail "cut: $(cat "$T/out")"

note "orphans: what restore drops is not a problem, what it keeps is judged"
make_fs ORPH
now=$(date +%s%N)
rcli hset ORPH:INODE:9 type file mode 0644 uid 0 gid 0 size 5 nlink 0 rdev 0 bytes 5 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
printf 'gone!' | rcli -x set ORPH:BLK:9:0 >/dev/null
rcli hset ORPH:XATTR:9 user.x y >/dev/null
rcli hset ORPH:ORPHANS 9 deadmount >/dev/null
rcli hincrby ORPH:SB inodes 1 >/dev/null
rcli hincrby ORPH:SB bytes 5 >/dev/null
snap -q dump ORPH -o "$T/orph.json"
# The dump puts ORPHANS first; a dump that names it last makes verify read
# the inodes again (three passes), with the same verdict.
python3 - "$(dirname "$0")" "$T/orph.json" "$T/orph-late.json" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from hostile_gen import read_dump, write_dump
header, records = read_dump(sys.argv[2])
records = [r for r in records if r[0] != 'ORPHANS'] + [r for r in records if r[0] == 'ORPHANS']
write_dump(sys.argv[3], header, records)
PY
for f in orph.json orph-late.json; do
  "${nosrv[@]}" verify "$T/$f" >"$T/out" 2>"$T/err" || fail "verify $f: $(cat "$T/out" "$T/err")"
  snap -q restore "$T/$f" --prefix ORPHCOPY || fail "restore $f"
  [[ $(rcli exists ORPHCOPY:INODE:9) == 0 ]] || fail "restore kept the orphan"
  snap -q delete ORPHCOPY
done
"${nosrv[@]}" verify --json "$T/orph-late.json" 2>/dev/null | jq -e '.files[0].sound' >/dev/null || fail "orph-late json"
# An orphan restore keeps (its nlink is not 0) is judged as fsck judges it.
rcli hset ORPH:INODE:9 nlink 1 >/dev/null
snap -q dump ORPH -o "$T/orph-kept.json"
expect_fail "${nosrv[@]}" verify "$T/orph-kept.json"
cp "$T/out" "$T/vout"
expect_fail snap restore "$T/orph-kept.json" --prefix ORPHCOPY
same_reason "$T/err" "$T/vout" "$T/orph-kept.json" || fail "orphan kept: $(cat "$T/err") / $(cat "$T/out")"
note "ok"
