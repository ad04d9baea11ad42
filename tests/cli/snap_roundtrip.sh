#!/usr/bin/env bash
# redisfs-snap end to end: copy -> dump -> restore (same server, another
# server through a pipe) -> list -> delete, comparing every key's value by
# DEBUG DIGEST-VALUE; the dump file's mode (umask); refusals and --force;
# --dry-run; --quiet; exit codes.
. "$(dirname "$0")/snap_lib.sh"

make_fs SKX
# Siblings whose names extend the prefix: never touched by SKX's commands.
make_fs SKX2x
rcli set SKXA:BLK:1:0 sibling >/dev/null
rcli set SKX:MOUNT:dead-mount alive px 60000 >/dev/null
rcli hset SKX:MOUNTS dead-mount alive >/dev/null  # a mount registers in MOUNTS
src=$(fs_digest SKX)
sibling=$(fs_digest SKX2x)

note "usage errors exit 2, --help 0"
snap --help >/dev/null
"$REDISFS_SNAP_BIN" --version | grep -q '^redisfs-snap '
expect_fail snap
[[ $LAST_RC == 2 ]] || fail "no subcommand: exit $LAST_RC"
expect_fail snap copy SKX
[[ $LAST_RC == 2 ]] || fail "missing DST: exit $LAST_RC"
expect_fail snap dump SKX --no-such-option
[[ $LAST_RC == 2 ]] || fail "unknown option: exit $LAST_RC"
expect_fail snap frobnicate
[[ $LAST_RC == 2 ]] || fail "unknown subcommand: exit $LAST_RC"

note "copy"
snap copy SKX SNAP1 2>"$T/err"
grep -q '^copied SKX -> SNAP1 (read-only snapshot): 12 keys' "$T/err" || fail "copy summary: $(cat "$T/err")"
[[ $(fs_digest SNAP1) == "$src" ]] || fail "SNAP1 differs from SKX"
[[ $(rcli hget SNAP1:SB read_only) == 1 ]] || fail "SNAP1 is not read-only"
[[ $(rcli hget SNAP1:SB origin) == SKX ]] || fail "SNAP1 has no origin"
[[ -n $(rcli hget SNAP1:SB snapshot_created) ]] || fail "SNAP1 has no snapshot_created"
[[ $(rcli hget SNAP1:SB block_size) == 4096 ]] || fail "SNAP1's superblock lost fields"
[[ $(rcli --scan --pattern 'SNAP1:MOUNT:*' | wc -l) == 0 ]] || fail "a MOUNT key was copied"
[[ $(fs_digest SKX2x) == "$sibling" ]] || fail "SKX2x changed"
[[ $(rcli get SKXA:BLK:1:0) == sibling ]] || fail "SKXA changed"
[[ $(key_count SNAP1) == 12 ]] || fail "SNAP1 has $(key_count SNAP1) keys"

expect_fail snap copy SKX SNAP1
[[ $LAST_RC == 1 ]] || fail "existing DST: exit $LAST_RC"
grep -q -- '--force' "$T/err" || fail "the refusal does not mention --force: $(cat "$T/err")"
[[ $(wc -l <"$T/err") == 1 ]] || fail "error is not one line: $(cat "$T/err")"
expect_fail snap copy NOPE SNAP9
grep -q "no filesystem at prefix 'NOPE'" "$T/err" || fail "missing SRC: $(cat "$T/err")"
[[ $(key_count SNAP9) == 0 ]] || fail "a failed copy left keys"
expect_fail snap copy SKX 'bad*name'
snap -q copy --force --writable SKX SNAP1 2>"$T/err"
[[ ! -s $T/err ]] || fail "--quiet printed: $(cat "$T/err")"
[[ $(rcli hget SNAP1:SB read_only) == 0 ]] || fail "--writable left read_only set"
[[ $(fs_digest SNAP1) == "$src" ]] || fail "forced copy differs"

note "dump"
snap dump SKX -o "$T/skx.json" 2>"$T/err"
grep -q '^dumped SKX to ' "$T/err" || fail "dump summary: $(cat "$T/err")"
jq -e '.format == "redisfs-dump" and .version == 1 and .prefix == "SKX"' "$T/skx.json" >/dev/null
[[ $(jq -r .tool "$T/skx.json") == "$("$REDISFS_SNAP_BIN" --version)" ]] || fail "dump's tool: $(jq -r .tool "$T/skx.json")"
[[ $(jq '.records | length' "$T/skx.json") == 12 ]] || fail "dump has $(jq '.records | length' "$T/skx.json") records"
[[ $(jq -r '.records[0].key' "$T/skx.json") == SB ]] || fail "SB is not first"
[[ $(jq '.trailer.records' "$T/skx.json") == 12 ]] || fail "trailer count"
[[ $(jq -r '.records[] | select(.key == "BLK:2:0") | .string' "$T/skx.json") == "hello, world" ]] ||
  fail "text block not readable with jq"
[[ -z $(ls "$T" | grep 'tmp-') ]] || fail "temporary dump file left behind"
# The file's mode is 0666 less the caller's umask, also over an old file.
for mask_mode in 027:640 077:600 002:664; do
  (umask "${mask_mode%%:*}" && snap -q dump SKX -o "$T/umask.json")
  [[ $(stat -c %a "$T/umask.json") == "${mask_mode##*:}" ]] ||
    fail "dump under umask ${mask_mode%%:*} made mode $(stat -c %a "$T/umask.json")"
done
cmp <(jq -c '.records | sort_by(.key)' "$T/umask.json") <(jq -c '.records | sort_by(.key)' "$T/skx.json")
[[ -z $(ls "$T" | grep 'tmp-') ]] || fail "temporary dump file left behind"
[[ $(rcli --scan --pattern '*~dump~*' | wc -l) == 0 ]] || fail "temporary dump keys left behind"
snap -q dump SKX >"$T/stdout.json"
snap -q dump SKX -o - >"$T/dash.json"
jq -e . "$T/stdout.json" >/dev/null
# jq -S sorts keys, not arrays: compare records sorted by key.
cmp <(jq -c '.records | sort_by(.key)' "$T/stdout.json") <(jq -c '.records | sort_by(.key)' "$T/skx.json")
cmp <(jq -c '.records | sort_by(.key)' "$T/dash.json") <(jq -c '.records | sort_by(.key)' "$T/skx.json")
# Into something that is not a regular file: written to, never replaced.
snap -q dump SKX -o /dev/null
[[ -c /dev/null ]] || fail "dump -o /dev/null replaced the device"
mkfifo "$T/pipe"
cat "$T/pipe" >"$T/from-fifo.json" &
snap -q dump SKX -o "$T/pipe"
wait $!
[[ -p $T/pipe ]] || fail "dump -o FIFO replaced the FIFO"
jq -e '.trailer.records == 12' "$T/from-fifo.json" >/dev/null || fail "dump through a FIFO is incomplete"
expect_fail snap dump NOPE -o "$T/nope.json"
[[ ! -e $T/nope.json ]] || fail "a failed dump left its file"
[[ -z $(ls "$T" | grep 'nope.json.tmp') ]] || fail "a failed dump left its temporary file"
expect_fail snap dump SKX -o "$T/no/such/dir/x.json"

note "restore"
before=$(dbsize)
snap restore "$T/skx.json" --prefix R1 2>"$T/err"
grep -q '^restored .* as R1' "$T/err" || fail "restore summary: $(cat "$T/err")"
[[ $(fs_digest R1) == "$src" ]] || fail "R1 differs from SKX"
[[ $(sb_content R1) == "$(sb_content SKX)" ]] || fail "R1's superblock differs"
# A restored dump is a filesystem of its own that remembers its dump.
[[ $(rcli hget R1:SB read_only) == 0 ]] || fail "R1 is not writable"
[[ $(rcli hget R1:SB restored_from) == SKX ]] || fail "R1 does not say it came from SKX"
[[ $(rcli hget R1:SB dumped) =~ ^[1-9][0-9]{18}$ ]] || fail "R1 does not say when SKX was dumped"
[[ $(dbsize) == $((before + 12)) ]] || fail "restore wrote $(($(dbsize) - before)) keys"
[[ $(rcli pttl R1:BLK:3:2) == -1 ]] || fail "a restored key kept a TTL"
[[ $(rcli --scan --pattern '*~restore~*' | wc -l) == 0 ]] || fail "staging keys left behind"
snap -q restore --prefix R2 <"$T/skx.json"
snap -q restore - --prefix R3 <"$T/skx.json"
[[ $(fs_digest R2) == "$src" && $(fs_digest R3) == "$src" ]] || fail "restore from stdin differs"
# Re-encoded by jq (other whitespace, other escapes), a dump stays valid.
jq . "$T/skx.json" | snap -q restore - --prefix JQ
[[ $(fs_digest JQ) == "$src" ]] || fail "restore of a jq-reformatted dump differs"

before=$(dbsize)
expect_fail snap restore "$T/skx.json" --prefix R1
[[ $LAST_RC == 1 ]] || fail "restore over existing: exit $LAST_RC"
grep -q -- '--force' "$T/err" || fail "restore refusal: $(cat "$T/err")"
expect_fail snap restore "$T/skx.json"  # the header's prefix, SKX, exists
[[ $(dbsize) == "$before" ]] || fail "refused restores changed the server"
rcli hset R1:DIR:1 stray 77 >/dev/null
snap -q restore "$T/skx.json" --prefix R1 --force
[[ $(fs_digest R1) == "$src" ]] || fail "forced restore differs"
rcli set R1:MOUNT:m alive px 60000 >/dev/null
rcli hset R1:MOUNTS m alive >/dev/null
expect_fail snap restore "$T/skx.json" --prefix R1 --force
grep -q 'mounted' "$T/err" || fail "restore over a mounted fs: $(cat "$T/err")"
rcli del R1:MOUNT:m R1:MOUNTS >/dev/null

note "dry run writes nothing"
before=$(dbsize)
snap restore --dry-run "$T/skx.json" --prefix DRY 2>"$T/err"
grep -q 'dry run' "$T/err" || fail "dry-run summary: $(cat "$T/err")"
[[ $(dbsize) == "$before" ]] || fail "--dry-run wrote keys"
expect_fail snap restore --dry-run "$T/skx.json" --prefix R1
head -c 300 "$T/skx.json" >"$T/short.json"
expect_fail snap restore --dry-run "$T/short.json" --prefix DRY
[[ $(dbsize) == "$before" ]] || fail "--dry-run wrote keys"

note "dump | restore into a second server"
start_server second
SOCK2=$T/second.sock
snap -q dump SKX | "$REDISFS_SNAP_BIN" -q --redis "unix://$SOCK2" restore - --prefix COPY
[[ $(fs_digest COPY "$SOCK2") == "$src" ]] || fail "the second server's copy differs"
[[ $(sb_content COPY "$SOCK2") == "$(sb_content SKX)" ]] || fail "the second server's superblock differs"
[[ $(dbsize "$SOCK2") == 13 ]] || fail "the second server holds $(dbsize "$SOCK2") keys"  # and the register
[[ $(redis-cli -s "$SOCK2" smembers 'redisfs~FILESYSTEMS') == COPY ]] || fail "COPY is not registered"
# A dump of the copy restores back to the original's content.
"$REDISFS_SNAP_BIN" -q --redis "unix://$SOCK2" dump COPY | snap -q restore --prefix BACK
[[ $(fs_digest BACK) == "$src" ]] || fail "round trip through two servers differs"

note "list"
snap list >"$T/list.txt"
head -1 "$T/list.txt" | grep -q '^NAME  *KIND' || fail "list header: $(head -1 "$T/list.txt")"
grep -q '^SKX ' "$T/list.txt" || fail "list lacks SKX"
snap -q copy SKX SNAP2
snap list --json >"$T/list.json"
jq -e 'type == "array"' "$T/list.json" >/dev/null
[[ $(jq -r '.[] | select(.prefix == "SKX") | .kind' "$T/list.json") == filesystem ]] || fail "SKX kind"
[[ $(jq -r '.[] | select(.prefix == "SKX") | .mounts' "$T/list.json") == 1 ]] || fail "SKX mounts"
[[ $(jq -r '.[] | select(.prefix == "SKX") | .inodes' "$T/list.json") == 5 ]] || fail "SKX inodes"
[[ $(jq -r '.[] | select(.prefix == "SNAP2") | .kind' "$T/list.json") == snapshot ]] || fail "SNAP2 kind"
[[ $(jq -r '.[] | select(.prefix == "SNAP2") | .origin' "$T/list.json") == SKX ]] || fail "SNAP2 origin"
[[ $(jq -r '.[] | select(.prefix == "SNAP1") | .kind' "$T/list.json") == clone ]] || fail "SNAP1 kind"
jq -r '.[] | select(.prefix == "SNAP2") | .created' "$T/list.json" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' ||
  fail "created is not an ISO time"
rcli hset 'SKX~dump~0123456789abcdef:SB' format redisfs >/dev/null
[[ $(snap list --json | jq '[.[] | select(.prefix | contains("~dump~"))] | length') == 0 ]] ||
  fail "temporary prefixes listed without --all"
[[ $(snap list --json --all | jq -r '.[] | select(.prefix | contains("~dump~")) | .kind') == dump-temp ]] ||
  fail "--all does not show temporary prefixes"
snap -q delete 'SKX~dump~0123456789abcdef'

note "delete"
expect_fail snap delete SKX  # mounted (SKX:MOUNT:dead-mount)
grep -q 'mounted' "$T/err" || fail "delete of a mounted fs: $(cat "$T/err")"
[[ $(key_count SKX) == 15 ]] || fail "a refused delete removed keys"  # 12, MOUNT:dead-mount, MOUNTS, CHANGED
snap delete SNAP2 2>"$T/err"
grep -q '^deleted SNAP2: 13 keys' "$T/err" || fail "delete summary: $(cat "$T/err")"  # 12 and CHANGED (the record of SKX since SNAP1)
[[ $(key_count SNAP2) == 0 ]] || fail "SNAP2 not deleted"
snap -q delete --force SKX
[[ $(key_count SKX) == 0 ]] || fail "SKX not deleted"
[[ $(fs_digest SKX2x) == "$sibling" ]] || fail "deleting SKX touched SKX2x"
[[ $(rcli get SKXA:BLK:1:0) == sibling ]] || fail "deleting SKX touched SKXA"
expect_fail snap delete SKX
grep -q "no key under prefix 'SKX'" "$T/err" || fail "delete of nothing: $(cat "$T/err")"

note "ok"
