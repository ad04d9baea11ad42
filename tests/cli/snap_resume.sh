#!/usr/bin/env bash
# restore --resume: a `dump | restore` interrupted midway (the restore
# killed with SIGKILL; separately, the pipe broken) continues from its
# staging prefix and ends with the filesystem a plain restore gives. The
# errors: nothing to resume, a dump that differs from the interrupted one,
# a target that changed meanwhile. Prints how many records each resume did
# not write again.
. "$(dirname "$0")/snap_lib.sh"

# A filesystem of 2012 records: a file of 2000 more blocks and the small tree.
make_fs SRC
add_blocks SRC 3 3 2000
rcli hset SRC:INODE:3 size $((2003 * 4096)) bytes $((8192 + 2000 * 4096)) >/dev/null
rcli hset SRC:SB bytes $((13 + 8192 + 2000 * 4096)) >/dev/null
snap -q fsck SRC >/dev/null || fail "SRC is not clean: $(snap fsck SRC 2>&1 | head -3)"
snap -q copy SRC SRC-snap
snap -q dump SRC-snap -o "$T/full.json"
records=$(jq '.trailer.records' "$T/full.json")
size=$(stat -c %s "$T/full.json")
snap -q restore "$T/full.json" --prefix PLAIN
plain=$(fs_digest PLAIN)
plain_sb=$(sb_content PLAIN)

# same_as_plain PREFIX: the resumed restore gave what the plain one did.
same_as_plain() {
  [[ $(fs_digest "$1") == "$plain" ]] || fail "$1 differs from a plain restore"
  [[ $(sb_content "$1") == "$plain_sb" ]] || fail "$1's superblock differs from a plain restore's"
  snap -q fsck "$1" >/dev/null || fail "$1 is not clean"
}

# resumed PREFIX: restore --resume from the whole dump; prints what it skipped.
resumed() {
  snap restore --resume "$T/full.json" --prefix "$1" 2>"$T/resume.err" || fail "resume $1: $(cat "$T/resume.err")"
  grep -o 'resumed: .*' "$T/resume.err" || fail "resume $1 did not say what it skipped: $(cat "$T/resume.err")"
}

note "dump | restore, the pipe broken midway (the dump's end of it closed)"
rc=0
snap -q dump SRC-snap 2>"$T/dump.err" | head -c $((size / 2)) | snap -q restore - --prefix BROKEN 2>"$T/err" || rc=$?
grep -q 'writing to stdout failed: Broken pipe' "$T/dump.err" || fail "the dump did not see its pipe break: $(cat "$T/dump.err")"
((rc == 1)) || fail "the broken restore exited $rc"
grep -q "records staged are kept for 12 h: 'restore --resume'" "$T/err" || fail "no hint: $(cat "$T/err")"
[[ $(key_count BROKEN) == 0 ]] || fail "the broken restore wrote BROKEN"
staged=$(rcli hget 'BROKEN~resume' records)
((staged > 0 && staged < records)) || fail "checkpoint at $staged of $records records"
line=$(resumed BROKEN)
note "  $line"
[[ $line == "resumed: $staged of $records records"* ]] || fail "resume skipped other than the checkpoint: $line"
same_as_plain BROKEN
[[ -z $(rcli --scan --pattern 'BROKEN~*') ]] || fail "the resume left $(rcli --scan --pattern 'BROKEN~*' | head -3)"

note "dump | restore, the restore killed (SIGKILL) midway"
rm -f "$T/fifo"
mkfifo "$T/fifo"
# The writer stalls after 60% of the dump: the restore is then surely
# midway, and is killed there.
(head -c $((size * 6 / 10)) "$T/full.json"; sleep 30) >"$T/fifo" &
writer=$!
"$REDISFS_SNAP_BIN" --redis "$URL" -q restore "$T/fifo" --prefix KILLED 2>"$T/err" &
pid=$!
for ((i = 0; i < 1200; i++)); do  # until its second checkpoint (1024 records)
  n=$(rcli hget 'KILLED~resume' records)
  [[ -n $n ]] && ((n >= 1024)) && break
  sleep 0.05
done
kill -0 "$pid" 2>/dev/null || fail "the restore ended before it was killed: $(cat "$T/err")"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
kill "$writer" 2>/dev/null || true
wait "$writer" 2>/dev/null || true
staged=$(rcli hget 'KILLED~resume' records)
((staged > 0 && staged < records)) || fail "killed with its checkpoint at $staged of $records records"
[[ $(key_count KILLED) == 1 ]] || fail "KILLED holds more than its reservation"  # KILLED:RESERVED
# Until its reservation lapses (30 s after the kill) the resume is refused
# as reserved, with nothing changed; the test then lifts it instead of waiting.
expect_fail snap -q restore --resume "$T/full.json" --prefix KILLED
grep -q "reserved" "$T/err" && [[ $(wc -l <"$T/err") == 1 ]] || fail "resume under a live reservation: $(cat "$T/err")"
[[ $(rcli hget 'KILLED~resume' records) == "$staged" ]] || fail "the refused resume changed the checkpoint"
pttl=$(rcli pttl KILLED:RESERVED)
((pttl > 0 && pttl <= 30000)) || fail "the killed restore's reservation lapses in $pttl ms, not within 30 s"
rcli del KILLED:RESERVED >/dev/null
line=$(resumed KILLED)
note "  $line"
[[ $line == "resumed: $staged of $records records"* ]] || fail "resume skipped other than the checkpoint: $line"
same_as_plain KILLED

note "resumed from a new dump of the same snapshot: the same records, in the same order"
# (While the server runs: after a restart a big hash's fields, and so the
# walk, may come in another order; the digest check would refuse it.)
expect_fail snap -q restore - --prefix REDUMP < <(head -c $((size / 3)) "$T/full.json")
snap -q dump SRC-snap -o "$T/again.json"
[[ $(jq -c .trailer "$T/again.json") == "$(jq -c .trailer "$T/full.json")" ]] ||
  fail "a second dump of SRC-snap differs: $(jq -c .trailer "$T/again.json" "$T/full.json")"
snap restore --resume "$T/again.json" --prefix REDUMP 2>"$T/err" || fail "resume from a new dump: $(cat "$T/err")"
note "  $(grep -o 'resumed: .*' "$T/err")"
same_as_plain REDUMP

note "the errors: nothing to resume, another dump, the target changed"
expect_fail snap restore --resume "$T/full.json" --prefix NOTHING
[[ $(cat "$T/err") == "redisfs-snap: error: nothing to resume: no interrupted restore into 'NOTHING'"* ]] ||
  fail "nothing to resume: $(cat "$T/err")"
expect_fail snap restore --resume --dry-run "$T/full.json" --prefix NOTHING
[[ $LAST_RC == 2 ]] || fail "--resume --dry-run exited $LAST_RC"

# (Input from a pipe, as `dump | restore` gives it: cut short, it is kept.)
expect_fail snap -q restore - --prefix OTHER < <(head -c $((size / 2)) "$T/full.json")
staged=$(rcli hget 'OTHER~resume' records)
((staged > 0)) || fail "nothing staged for OTHER"
# A resume refreshes the TTL of what was staged: shorten one to see it.
first=$(rcli hget 'OTHER~resume' staging):$(rcli lindex "$(rcli hget 'OTHER~resume' staging)~index" 0)
rcli pexpire "$first" 600000 >/dev/null
# Another dump with the same records in another order: its digest at the checkpoint differs.
python3 - "$(dirname "$0")" "$T/full.json" "$T/other.json" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from hostile_gen import read_dump, write_dump
header, records = read_dump(sys.argv[2])
write_dump(sys.argv[3], header, records[:1] + records[1:][::-1])
PY
expect_fail snap restore --resume "$T/other.json" --prefix OTHER
grep -q "other.json: cannot resume: the dump differs from the interrupted one (digest mismatch at record $staged); the $staged records staged are kept" \
  "$T/err" || fail "digest mismatch: $(cat "$T/err")"
[[ $(rcli hget 'OTHER~resume' records) == "$staged" ]] || fail "a refused resume dropped the checkpoint"
(($(rcli pttl "$first") > 3600000)) || fail "the resume did not refresh the TTL of $first: $(rcli pttl "$first")"
# A dump with fewer records than were staged.
head -c $((size / 10)) "$T/full.json" >"$T/short.json"
expect_fail snap restore --resume "$T/short.json" --prefix OTHER
[[ $(rcli hget 'OTHER~resume' records) == "$staged" ]] || fail "a truncated file dropped the checkpoint"
# The target taken meanwhile.
make_fs OTHER
expect_fail snap restore --resume "$T/full.json" --prefix OTHER
grep -q "cannot resume the restore into 'OTHER': the target changed meanwhile: refusing to restore over 'OTHER'" \
  "$T/err" || fail "target changed: $(cat "$T/err")"
# With --force the resume goes on, replacing it.
snap -q restore --resume --force "$T/full.json" --prefix OTHER
same_as_plain OTHER

note "a restore without --resume over a leftover staging prefix starts again, as before"
expect_fail snap -q restore - --prefix AGAIN < <(head -c $((size / 2)) "$T/full.json")
old=$(rcli hget 'AGAIN~resume' staging)
snap restore "$T/full.json" --prefix AGAIN 2>"$T/err"
grep -q resumed "$T/err" && fail "a plain restore resumed: $(cat "$T/err")"
same_as_plain AGAIN
[[ -z $(rcli exists 'AGAIN~resume' | grep 1) ]] || fail "the checkpoint outlived the restore"
[[ $(rcli exists "$old~index") == 1 ]] || fail "the plain restore removed the leftover staging (it expires by itself)"
[[ $(rcli pttl "$old~index") -gt 0 ]] || fail "the leftover staging has no TTL"

note "a restore from a file that ends early removes what it staged (bad input, not a broken pipe)"
expect_fail snap restore "$T/short.json" --prefix FILECUT
[[ -z $(rcli --scan --pattern 'FILECUT~*') ]] || fail "a truncated file left staging keys"
note "ok"
