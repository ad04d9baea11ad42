#!/usr/bin/env bash
# snap_outage: redisfs-snap through a server outage (redisfs-snap(1),
# Outages): it waits through a restart for up to --timeout, then fails.
#
# 1. A copy (slowed: REDISFS_FAULT=copy-staging-slow) while the server is
#    SIGKILLed and started again on the same AOF (appendfsync always): the
#    steps whose reply the restart lost are the copier's (cow_copy.lua,
#    cow_refresh.lua), which are sent again (`--! resend`); and
#    a restore whose input stalls while the server is down: both exit 0
#    and hold what their source holds (their dumps' records, the
#    superblock aside), and fsck finds them clean; so do a restore and a
#    copy whose final move (slowed: REDISFS_FAULT=move-slow) the restart
#    interrupts, and whose move loses a batch's reply (a proxy drops it:
#    the batch is sent again); a restore from a file whose staging write
#    loses a reply resumes by itself; a delete whose batch loses a reply
#    finds what is left by SCAN; fsck --repair's removal of a key and cut
#    of a block, and the superblock marks of a restore and of a rollback,
#    whose reply is lost, are sent again. A dump whose output
#    stalls while the server is down exits 0, verifies, and holds those
#    records. And fsck --repair (slowed: REDISFS_FAULT=scan-slow) across a
#    restart scans again and deletes nothing. And a delete that finds its
#    keys by SCAN (the superblock is gone) across a restart walks again
#    and leaves no key behind; du's walk of a large directory, and a
#    dump's read of it, across a restart begin again and read it whole;
#    diff's fails and says to run it again.
# 2. With --timeout 2, a copy whose server goes away for about 6 s midway
#    fails with exit 1 and one line, which says its partial copy expires by
#    itself (it could not be removed); once the server is back nothing of
#    it stays under its target, what it left has a time to live, and the
#    next copy works.
# 3. Without -q, a copy that waits out an outage of about 2 s says so on
#    stderr (the reason it waits, then that the server answers again),
#    and ends complete.
# 4. A tool started while the server is LOADING (about 3 s) waits for it
#    and says so, as in 3; with -q it says nothing.
. "$(dirname "$0")/lib.sh"

need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN
need_tools jq

start_plain_redis_tcp s
URL=redis://127.0.0.1:${SRV_PORT[s]}
P=SO$RANDOM$RANDOM
M=$T/m

snap() {
  "$REDISFS_SNAP_BIN" --redis "$URL" "$@"
}

# records PREFIX: the records of a dump of PREFIX, the superblock aside
# (a copy's and a restore's record where they came from), sorted.
records() {
  snap -q dump "$1" -o "$T/$1.json" || fail "dump $1"
  records_of "$T/$1.json"
}

# records_of DUMP: the same of a dump file; a hash's fields sorted (a large
# hash comes in the order of the server's HSCAN, which a restart changes).
records_of() {
  jq -c '[.records[] | select(.key != "SB") | if has("hash") then .hash |= sort else . end] | sort_by(.key) | .[]' "$1"
}

# the filesystem: 1,500 small files in 3 directories (a copy of many pages)
fs_mount "$M" --redis "$URL" --prefix "$P"
python3 - "$M" <<'PY'
import os, sys
for d in range(3):
    os.mkdir(os.path.join(sys.argv[1], f"d{d}"))
    for i in range(500):
        with open(os.path.join(sys.argv[1], f"d{d}", f"f{i}"), "w") as f:
            f.write(f"file {d}/{i}\n" * 5)
PY
fs_unmount "$M"
records "$P" >"$T/want"
(($(wc -l <"$T/want") > 3000)) || fail "the filesystem has $(wc -l <"$T/want") records"

# survives_restart PID WHAT TARGET [KEY]: the command PID (WHAT, its
# stderr in $T/WHAT.err) runs a moment (or until KEY exists), the server is
# SIGKILLed and started again, and PID ends with 0, TARGET holding what the
# source holds, fsck-clean.
survives_restart() {
  local pid=$1 what=$2 target=$3 key=${4:-} rc=0 i
  if [[ -n $key ]]; then
    for ((i = 0; i < 400; i++)); do
      [[ $(rcli s exists "$key") == 1 ]] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  else
    sleep 1
  fi
  kill -0 "$pid" 2>/dev/null || fail "the $what ended before the restart: $(cat "$T/$what.err")"
  restart_redis s kill
  wait "$pid" || rc=$?
  ((rc == 0)) || fail "the $what through a restart exited $rc: $(cat "$T/$what.err")"
  # (its release went on a fresh connection: one idle across the restart
  # is closed, and a change sent on it would be lost, not sent again)
  [[ $(rcli s exists "$target:RESERVED") == 0 ]] || fail "the $what through a restart left $target reserved"
  records "$target" | diff "$T/want" - >"$T/delta" || fail "the $what through a restart differs: $(head -5 "$T/delta")"
  snap -q fsck "$target" || fail "fsck of the $what through a restart"
}

note "1. a copy through a restart"
# (the binary itself in the background: a function there would run the
# suite's ERR trap in the subshell when the command fails)
REDISFS_FAULT=copy-staging-slow "$REDISFS_SNAP_BIN" --redis "$URL" -q copy "$P" "$P-copy" 2>"$T/copy.err" &
survives_restart $! copy "$P-copy"

note "1. a restore through a restart (its input stalls while the server is down)"
size=$(stat -c %s "$T/$P.json")
(
  head -c $((size / 2)) "$T/$P.json"
  sleep 3
  tail -c +$((size / 2 + 1)) "$T/$P.json"
) | "$REDISFS_SNAP_BIN" --redis "$URL" -q restore - --prefix "$P-rest" 2>"$T/restore.err" &
survives_restart $! restore "$P-rest"

note "1. a restore and a copy whose final move (slowed: REDISFS_FAULT=move-slow) a restart interrupts"
REDISFS_FAULT=move-slow "$REDISFS_SNAP_BIN" --redis "$URL" -q restore "$T/$P.json" --prefix "$P-mv" 2>"$T/mvrestore.err" &
survives_restart $! mvrestore "$P-mv" "$P-mv:INSTALLING"
REDISFS_FAULT=move-slow "$REDISFS_SNAP_BIN" --redis "$URL" -q copy "$P" "$P-mvc" 2>"$T/mvcopy.err" &
survives_restart $! mvcopy "$P-mvc" "$P-mvc:INSTALLING"

note "1. a restore and a copy whose final move or freeze loses a reply (tests/lost_reply_proxy.py): sent again"
# (the batch ran, its reply did not come: sent again, it moves nothing
# twice and answers 2 for the keys its first run moved, which count as
# moved, or the install would find too few)
start_reply_proxy s "$T/arm"
# (and a freeze whose reply was lost: sent again, it finds its own)
# lost_reply WHAT COMMAND EXPR: WHAT (restore or copy) into $P-lost<n>,
# the proxy losing the reply to the first COMMAND that matches EXPR, where
# @ stands for the target's name.
lost_reply() {
  local what=$1 target=$P-lost$((++lost_n)) rc=0
  echo -n "$2 ${3//@/$target}" >"$T/arm"
  rm -f "$T/arm.fired"
  if [[ $what == restore ]]; then
    "$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$PROXY_PORT" restore "$T/$P.json" --prefix "$target" 2>"$T/lost.err" ||
      rc=$?
  else
    "$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$PROXY_PORT" -q copy "$P" "$target" 2>"$T/lost.err" || rc=$?
  fi
  [[ -e $T/arm.fired ]] || fail "the proxy lost no reply of the $what (armed with $2 $3)"
  ((rc == 0)) || fail "a $what that lost a reply (armed with $2 $3) exited $rc: $(cat "$T/lost.err")"
  [[ $(rcli s exists "$target:FREEZE") == 0 ]] || fail "a $what that lost a reply (armed with $2 $3) left its target frozen"
  [[ $(rcli s exists "$target:RESERVED") == 0 ]] ||
    fail "a $what that lost a reply (armed with $2 $3) left its target reserved"
  records "$target" | diff "$T/want" - >"$T/delta" || fail "the $what that lost a reply differs: $(head -5 "$T/delta")"
  snap -q fsck "$target" || fail "fsck of the $what that lost a reply (armed with $2 $3)"
}
lost_n=0
lost_reply restore EVALSHA @:INODE:
lost_reply copy EVALSHA @:INODE:
lost_reply restore EVALSHA @:COW
# (a copy's instant, cow_begin.lua, the one script of ten keys with FREEZE
# first: sent again, it finds its own instant and answers it again)
lost_reply copy EVALSHA '\r\n\$2\r\n10\r\n\$[0-9]+\r\n'"$P"':FREEZE\r\n'
# (the end of a freeze, freeze_release.lua, and of a copy's snapshot,
# cow_end.lua, are not sent again blindly: a second run would find its key
# gone and say the freeze or snapshot lapsed. The key tells whether the
# first ran (a lease extended less than half its life ago cannot have
# lapsed meanwhile): a copy whose cow_end ran goes on; a freeze_release
# lost on its way is sent again, or the target stayed frozen for 10 s)
token_end='\r\n\$1\r\n1\r\n\$[0-9]+\r\nKEY\r\n\$32\r\n[0-9a-f]{32}\r\n\Z'  # (one key, one token, last)
lost_reply copy EVALSHA "${token_end/KEY/$P:COW}"
lost_reply restore -EVALSHA "${token_end/KEY/@:FREEZE}"
# (and the end of its reservation, the same script on <target>:RESERVED,
# whose token is "<hex> restore by <host>:<pid>": lost on its way, the
# target stayed reserved for 30 s, refusing every mount)
lost_reply restore -EVALSHA '\r\n\$1\r\n1\r\n\$[0-9]+\r\n@:RESERVED\r\n\$[0-9]+\r\n[0-9a-f]{16} restore by [^\r]*\r\n\Z'
if grep -q "a reply of its writes was lost" "$T/lost.err"; then
  fail "a restore that lost no reply of its writes says it did: $(cat "$T/lost.err")"
fi
# (a reply of its staging writes: SET NX and RPUSH are not sent again;
# from a file, the restore resumes from its last checkpoint by itself)
lost_reply restore RPUSH '@~restore~'
grep -q "a reply of its writes was lost 1 time (a server restart or failover?): it resumed from its last checkpoint" \
  "$T/lost.err" || fail "a restore that resumed by itself does not say so: $(cat "$T/lost.err")"
# (a delete's batch: unlink_named.lua is not sent again, and SCAN finds
# what is left)
snap -q copy "$P" "$P-lostdel" || fail "copy $P $P-lostdel"
echo -n "EVALSHA $P-lostdel:INODE:" >"$T/arm"
rm -f "$T/arm.fired"
rc=0
"$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$PROXY_PORT" -q delete "$P-lostdel" 2>"$T/lost.err" || rc=$?
[[ -e $T/arm.fired ]] || fail "the proxy lost no reply of the delete"
((rc == 0)) || fail "a delete that lost a reply exited $rc: $(cat "$T/lost.err")"
left=$(rcli s --scan --pattern "$P-lostdel:*" | wc -l)
((left == 0)) || fail "a delete that lost a reply left $left keys: $(rcli s --scan --pattern "$P-lostdel:*" | head -3)"

note "1. fsck --repair, a restore and a rollback whose transaction or block cut loses its reply: sent again"
# (fsck's removal of a key of the wrong type, the marks a restore or a
# rollback sets on the superblock it staged: MULTI of writes of given
# values, which Connection::transaction sends again after a lost reply;
# fsck's cut of a block, fsck_trim.lua, which decides from the file's size
# at each run, its removal of a stray key, fsck_del.lua, and its change of
# a field, fsck_field.lua, each done when it finds the key or field as it
# leaves it; redisfs-snap(1), Outages)
# lost_tx WHAT COMMAND EXPR ARGS...: redisfs-snap ARGS through the proxy,
# which loses the reply of the first COMMAND (MULTI: a transaction)
# matching EXPR
lost_tx() {
  local what=$1 expr="$2 $3" rc=0
  shift 3
  echo -n "$expr" >"$T/arm"
  rm -f "$T/arm.fired"
  "$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$PROXY_PORT" "$@" >"$T/lost.out" 2>"$T/lost.err" || rc=$?
  [[ -e $T/arm.fired ]] || fail "the proxy lost no reply of the $what (armed with $expr)"
  ((rc == 0)) || fail "a $what that lost a reply exited $rc: $(cat "$T/lost.err")"
}
snap -q copy "$P" "$P-tx" || fail "copy $P $P-tx"
d0=$(rcli s hget "$P-tx:DIR:1" d0)
f0=$(rcli s hget "$P-tx:DIR:$d0" f0)
[[ $f0 =~ ^[0-9]+$ ]] || fail "no inode for d0/f0 in $P-tx: '$f0'"
rcli s set "$P-tx:OPEN:$f0" junk >/dev/null
lost_tx fsck MULTI '[\s\S]*\r\n'"$P-tx:OPEN:$f0"'\r\n' -q fsck "$P-tx" --repair
[[ $(rcli s exists "$P-tx:OPEN:$f0") == 0 ]] || fail "fsck --repair whose removal lost a reply left the key of the wrong type"
rcli s set "$P-tx:BLK:987654:0" stray >/dev/null
lost_tx fsck EVALSHA '[\s\S]*\r\n'"$P-tx:BLK:987654:0"'\r\n' -q fsck "$P-tx" --repair
[[ $(rcli s exists "$P-tx:BLK:987654:0") == 0 ]] || fail "fsck --repair whose removal lost a reply left the stray key"
rcli s set "$P-tx:BLK:$f0:7" past-the-end >/dev/null
lost_tx fsck EVALSHA '[\s\S]*\r\n'"$P-tx:BLK:$f0:7"'\r\n' -q fsck "$P-tx" --repair
[[ $(rcli s exists "$P-tx:BLK:$f0:7") == 0 ]] || fail "fsck --repair whose block cut lost a reply left the block"
gen=$(rcli s hget "$P-tx:INODE:1" gen)
rcli s hset "$P-tx:DIR:1" ghost 987654 >/dev/null
lost_tx fsck EVALSHA '[\s\S]*\r\n'"$P-tx:DIR:1"'\r\n[\s\S]*\r\nghost\r\n' -q fsck "$P-tx" --repair
[[ $(rcli s hexists "$P-tx:DIR:1" ghost) == 0 ]] || fail "fsck --repair whose entry removal lost a reply left the entry"
[[ $(rcli s hget "$P-tx:INODE:1" gen) == $((gen + 1)) ]] ||
  fail "an entry removal sent again counted the change $(($(rcli s hget "$P-tx:INODE:1" gen) - gen)) times"
rcli s hset "$P-tx:INODE:1" gen "$gen" >/dev/null  # (as in the records the test compares)
snap -q fsck "$P-tx" || fail "fsck after repairs that lost a reply"
records "$P-tx" | diff "$T/want" - >"$T/delta" || fail "the repairs that lost a reply changed more: $(head -5 "$T/delta")"
lost_tx restore MULTI '[\s\S]*\r\nrestored_from\r\n' -q restore "$T/$P.json" --prefix "$P-txr"
[[ $(rcli s hget "$P-txr:SB" restored_from) == "$P" ]] ||
  fail "a restore whose marks lost a reply: restored_from is '$(rcli s hget "$P-txr:SB" restored_from)'"
records "$P-txr" | diff "$T/want" - >"$T/delta" || fail "the restore whose marks lost a reply differs: $(head -5 "$T/delta")"
snap -q fsck "$P-txr" || fail "fsck of the restore whose marks lost a reply"
snap -q copy "$P-txr" "$P-txr-snap" || fail "copy $P-txr $P-txr-snap"
rcli s del "$P-txr:DIR:$d0" >/dev/null  # (what the rollback puts back)
lost_tx rollback MULTI '[\s\S]*\r\nrolled_back\r\n' -q rollback --discard "$P-txr" "$P-txr-snap"
[[ $(rcli s hget "$P-txr:SB" rolled_back) =~ ^[0-9]+$ ]] || fail "a rollback whose marks lost a reply: no rolled_back"
[[ $(rcli s hget "$P-txr:SB" read_only) == 0 ]] || fail "a rollback whose marks lost a reply left the filesystem read-only"
records "$P-txr" | diff "$T/want" - >"$T/delta" || fail "the rollback whose marks lost a reply differs: $(head -5 "$T/delta")"
snap -q fsck "$P-txr" || fail "fsck of the rollback whose marks lost a reply"

note "1. a dump through a restart (its output stalls while the server is down)"
# (what is left to read then comes from the restarted server; its
# directories, of 500 entries, come in one HSCAN page each, so no walk
# begins again here: ScanWalk's restart is the delete's test below)
(
  rc=0
  "$REDISFS_SNAP_BIN" --redis "$URL" -q dump "$P" 2>"$T/dump.err" || rc=$?
  echo "$rc" >"$T/dump.rc"
) | python3 -c '
import sys, time
i, o = sys.stdin.buffer, sys.stdout.buffer
o.write(i.read(int(sys.argv[1]))); o.flush(); time.sleep(3); o.write(i.read())' $((size / 2)) >"$T/through.json" &
pid=$!
sleep 1
kill -0 "$pid" 2>/dev/null || fail "the dump ended before the restart: $(cat "$T/dump.err")"
restart_redis s kill
wait "$pid" || fail "the dump's reader failed"
[[ $(cat "$T/dump.rc") == 0 ]] || fail "the dump through a restart exited $(cat "$T/dump.rc"): $(cat "$T/dump.err")"
snap -q verify "$T/through.json" || fail "the dump through a restart does not verify"
records_of "$T/through.json" | diff "$T/want" - >"$T/delta" ||
  fail "the dump through a restart differs: $(head -5 "$T/delta")"
[[ -z $(rcli s --scan --pattern '*~dump~*') ]] || fail "the dump through a restart left its staging keys"

# through_restart NAME CMD...: runs CMD slowed (REDISFS_FAULT=scan-slow:
# 300 ms before each page of a walk after the first) in the background,
# its output in $T/NAME.out and $T/NAME.err; a second in, SIGKILLs the
# server and starts it again; sets rc to CMD's exit status.
through_restart() {
  local name=$1 pid
  shift
  REDISFS_FAULT=scan-slow "$@" >"$T/$name.out" 2>"$T/$name.err" &
  pid=$!
  sleep 1
  kill -0 "$pid" 2>/dev/null || fail "$name ended before the restart: $(cat "$T/$name.out" "$T/$name.err")"
  restart_redis s kill
  rc=0
  wait "$pid" || rc=$?
}

note "1. fsck --repair through a restart: it scans again, finds the filesystem clean and deletes nothing"
# (a SCAN cursor means nothing to the restarted server: a scan across the
# restart missed keys, and took blocks for strays)
keys_before=$(rcli s --scan --pattern "$P-copy:*" | wc -l)
through_restart fsck env REDISFS_PROGRESS_SECONDS=0 "$REDISFS_SNAP_BIN" --redis "$URL" fsck --repair "$P-copy"
((rc == 0)) || fail "fsck --repair through a restart exited $rc: $(head -5 "$T/fsck.out" "$T/fsck.err")"
# (its progress counts again from nothing when the scan starts over)
grep -q "^fsck $P-copy: [0-9]* of [0-9]* keys" "$T/fsck.err" || fail "fsck through a restart showed no progress: $(head -3 "$T/fsck.err")"
over=$(awk -v p="fsck $P-copy:" 'index($0, p) == 1 && $4 == "of" && $3 + 0 > $5 + 0 { print; exit }' "$T/fsck.err")
[[ -z $over ]] || fail "fsck's progress through a restart passed the whole: $over"
[[ $(rcli s --scan --pattern "$P-copy:*" | wc -l) == "$keys_before" ]] || fail "fsck --repair through a restart deleted keys"
records "$P-copy" | diff "$T/want" - >"$T/delta" || fail "fsck --repair through a restart changed the copy: $(head -5 "$T/delta")"

note "1. a delete by SCAN through a restart: its walk starts again and leaves no key behind"
# (a walk that went on with its old cursor on the restarted server missed
# keys: they stayed under the deleted prefix)
snap -q copy "$P" "$P-del" || fail "copy $P $P-del"
rcli s del "$P-del:SB" >/dev/null
for i in $(seq 6000); do echo "SET $P-del:BLK:999999:$i x"; done | rcli s >/dev/null
through_restart delete "$REDISFS_SNAP_BIN" --redis "$URL" -q delete "$P-del"
((rc == 0)) || fail "the delete through a restart exited $rc: $(cat "$T/delete.err")"
left=$(rcli s --scan --pattern "$P-del:*" | wc -l)
((left == 0)) || fail "the delete through a restart left $left keys: $(rcli s --scan --pattern "$P-del:*" | head -3)"

# A filesystem of one directory of 10,000 empty files: its entries come in
# about ten HSCAN pages (COUNT 1000), slowed to 300 ms each by
# REDISFS_FAULT=scan-slow.
B=$P-big
fs_mount "$T/mb" --redis "$URL" --prefix "$B"
fs_unmount "$T/mb"
python3 "$HERE/../mount/dirlist.py" tree "$B" 100000000 1 10000 | rcli s --pipe >/dev/null

note "1. du through a restart: its walk of a large directory starts again and counts every file"
# (the pages after the restart, read with the old cursor, missed files)
snap -q du --json "$B" >"$T/du.want" || fail "du $B"
want_inodes=$(jq .inodes "$T/du.want")
((want_inodes == 10002)) || fail "du $B: $want_inodes inodes, not the root, the directory and its 10,000 files"
through_restart du env REDISFS_PROGRESS_SECONDS=0 "$REDISFS_SNAP_BIN" --redis "$URL" du --json "$B"
((rc == 0)) || fail "du through a restart exited $rc: $(cat "$T/du.err")"
diff "$T/du.want" "$T/du.out" >"$T/du.delta" || fail "du through a restart counted otherwise: $(head -5 "$T/du.delta")"
# (and its progress counts again from nothing: never more than the whole)
grep -q "^du $B: [0-9]* of 10002 inodes" "$T/du.err" || fail "du through a restart showed no progress: $(head -3 "$T/du.err")"
over=$(awk -v p="du $B:" 'index($0, p) == 1 && $4 == "of" && $3 + 0 > $5 + 0 { print; exit }' "$T/du.err")
[[ -z $over ]] || fail "du's progress through a restart passed the whole: $over"

note "1. list --all through a restart: its walk of the server starts again and names every filesystem"
# (a SCAN that went on with its old cursor on the restarted server missed
# superblocks, and their filesystems with them: 1,000 superblocks, copies
# of $P's, among 200,000 keys of another tenant; list --all SCANs 20,000
# keys a page, about ten pages, slowed to 300 ms each)
names() { awk 'NR > 1 { print $1 }' "$1" | sort; }
{
  seq 200000 | sed 's/.*/SET tenant:& x/'
  seq 1000 | sed "s/.*/COPY $P:SB $P-sb&:SB/"
} | rcli s --pipe >/dev/null
snap list --all >"$T/list.want" || fail "list --all"
grep -q "^$B " "$T/list.want" && (($(names "$T/list.want" | wc -l) > 1000)) ||
  fail "list --all does not name $B and the 1,000 copies: $(head -5 "$T/list.want")"
through_restart list "$REDISFS_SNAP_BIN" --redis "$URL" list --all
((rc == 0)) || fail "list --all through a restart exited $rc: $(cat "$T/list.err")"
diff <(names "$T/list.want") <(names "$T/list.out") >"$T/list.delta" ||
  fail "list --all through a restart named other filesystems: $(head -5 "$T/list.delta")"
# (gone again, from the register too, where list put them)
rcli s eval "for _, k in ipairs(redis.call('KEYS', 'tenant:*')) do redis.call('DEL', k) end
  for i = 1, 1000 do redis.call('DEL', ARGV[1] .. i .. ':SB'); redis.call('SREM', KEYS[1], ARGV[1] .. i) end" \
  1 'redisfs~FILESYSTEMS' "$P-sb" >/dev/null
[[ -z $(rcli s --scan --pattern "$P-sb*") && $(rcli s smembers 'redisfs~FILESYSTEMS' | grep -c -- "^$P-sb") == 0 ]] ||
  fail "the 1,000 copies' keys or names were left"

note "1. diff through a restart while it reads a large directory: it fails, and says to run it again"
# (what it compared may not be taken back; run again, it finds the copy
# the same)
snap -q copy "$B" "$B-2" || fail "copy $B $B-2"
through_restart diff "$REDISFS_SNAP_BIN" --redis "$URL" diff "$B" "$B-2"
((rc == 1)) || fail "diff through a restart exited $rc: $(cat "$T/diff.out" "$T/diff.err")"
grep -q "the Redis server changed (a restart or a failover) while diff read $B[^ ]*:DIR:[0-9]*: run it again" \
  "$T/diff.err" || fail "diff through a restart says otherwise: $(cat "$T/diff.err")"
[[ -z $(rcli s --scan --pattern "$B~*") ]] || fail "diff through a restart left its copies: $(rcli s --scan --pattern "$B~*" | head -3)"
[[ -z $(snap diff "$B" "$B-2") ]] || fail "diff of $B and its copy, run again, shows changes"

note "1. a dump through a restart while it streams a large directory: it reads the rest from the start, and all of it"
# (its pages after the restart, read with the old cursor, missed fields:
# the dump failed, "fields read but HLEN says")
records "$B" >"$T/big.want"
REDISFS_FAULT=scan-slow REDISFS_PROGRESS_SECONDS=0 "$REDISFS_SNAP_BIN" --redis "$URL" dump "$B" -o "$T/big.json" \
  2>"$T/big.err" &
pid=$!
# Its progress line is drawn as the copy ends and the stream begins (the
# second line), then at each key written: the directory comes among the
# last few keys (dump writes SB, ORPHANS, every inode, then the rest: the
# 10,000 inodes take a tenth of a second), 2.7 s long. The restart comes
# in between.
progress_lines() {  # the dump's progress lines so far
  grep "^dump $B: [0-9]* of " "$T/big.err" || true
}
for ((i = 0; i < 1200; i++)); do
  (($(progress_lines | wc -l) < 2)) || break
  kill -0 "$pid" 2>/dev/null || fail "the dump ended before the restart: $(cat "$T/big.err")"
  sleep 0.05
done
sleep 1
streamed=$(progress_lines | tail -1 | sed 's/^dump [^ ]*: \([0-9]*\) of .*/\1/')
total=$(progress_lines | tail -1 | sed 's/^dump [^ ]*: [0-9]* of \([0-9]*\) keys.*/\1/')
[[ -n $streamed && -n $total ]] && ((streamed < total && total - streamed <= 3)) ||
  fail "the dump's stream was not at its directory when the server restarted: $(tail -3 "$T/big.err")"
restart_redis s kill
rc=0
wait "$pid" || rc=$?
((rc == 0)) || fail "the dump through a restart exited $rc: $(tail -3 "$T/big.err")"
records_of "$T/big.json" | diff "$T/big.want" - >"$T/delta" ||
  fail "the dump through a restart differs: $(head -5 "$T/delta")"

note "2. a copy whose server is away for longer than --timeout fails, and leaves nothing that lasts"
REDISFS_FAULT=copy-staging-slow "$REDISFS_SNAP_BIN" --redis "$URL" -q --timeout 2 copy "$P" "$P-late" 2>"$T/late.err" &
pid=$!
sleep 1
kill -0 "$pid" 2>/dev/null || fail "the copy ended before the outage: $(cat "$T/late.err")"
stop_server s kill
t0=$(date +%s)
rc=0
wait "$pid" || rc=$?
t1=$(date +%s)
note "  failed after $((t1 - t0)) s: $(cat "$T/late.err")"
((rc == 1)) || fail "the copy through a long outage exited $rc, not 1: $(cat "$T/late.err")"
[[ $(wc -l <"$T/late.err") == 1 ]] || fail "the copy through a long outage said more than one line: $(cat "$T/late.err")"
grep -q "the partial copy could not be removed: .*; its keys expire within 12 h" "$T/late.err" ||
  fail "the copy through a long outage does not say what became of its partial copy: $(cat "$T/late.err")"
sleep $((t0 + 6 - $(date +%s) > 0 ? t0 + 6 - $(date +%s) : 0))
start_server_again s
[[ -z $(rcli s --scan --pattern "$P-late:*" | grep -v ':RESERVED$') ]] ||
  fail "the failed copy left keys under its target: $(rcli s --scan --pattern "$P-late:*" | head -3)"
while read -r key; do
  [[ -z $key ]] && continue
  ttl=$(rcli s pttl "$key")
  ((ttl > 0)) || fail "$key, left by the failed copy, has no time to live ($ttl)"
done < <(rcli s --scan --pattern '*~copy~*'; rcli s --scan --pattern "$P-late:*"; rcli s --scan --pattern "$P:COW")
rcli s del "$P-late:RESERVED" >/dev/null # (would lapse within 30 s)
snap -q copy "$P" "$P-late" || fail "a copy after the failed one"
records "$P-late" | diff "$T/want" - >"$T/delta" || fail "the copy after the failed one differs: $(head -5 "$T/delta")"
[[ -z $(rcli s --scan --pattern '*~copy~*') ]] || fail "staging keys outlived the next copy"
note "ok"

note "3. a copy that waits out an outage says so (not with -q)"
REDISFS_FAULT=copy-staging-slow "$REDISFS_SNAP_BIN" --redis "$URL" copy "$P" "$P-said" 2>"$T/said.err" &
pid=$!
sleep 1
kill -0 "$pid" 2>/dev/null || fail "the copy ended before the outage: $(cat "$T/said.err")"
stop_server s kill
sleep 2
start_server_again s
rc=0
wait "$pid" || rc=$?
((rc == 0)) || fail "the copy through an outage of 2 s exited $rc: $(cat "$T/said.err")"
grep -q "^redisfs-snap: warning: calls wait for the server, each up to 30 s (--timeout): redis: .*127\.0\.0\.1:${SRV_PORT[s]}" \
  "$T/said.err" || fail "the copy did not say it waited for the server, and why: $(cat "$T/said.err")"
grep -q "^redisfs-snap: the server answers again, [0-9.]* s after the first call that waited for it$" "$T/said.err" ||
  fail "the copy did not say the server answered again: $(cat "$T/said.err")"
records "$P-said" | diff "$T/want" - >"$T/delta" || fail "the copy that waited differs: $(head -5 "$T/delta")"
note "  $(grep -m1 'calls wait' "$T/said.err")"

note "4. a tool started while the server is loading its data waits for it, and says so (not with -q)"
# (a server of its own: s holds this case's filesystems, whose keys would
# each load as slowly as the filler's)
start_plain_redis_tcp l
rcli l sadd 'redisfs~FILESYSTEMS' LOADED >/dev/null
rcli l hset LOADED:SB format redisfs version 1 block_size 4096 root 1 next_inode 2 inodes 1 bytes 0 >/dev/null
prepare_loading l 3
for quiet in "" -q; do
  restart_loading l kill
  ((LOADING_SEEN == 1)) || fail "the restarted server was not LOADING (INFO loading:1 not seen)"
  # shellcheck disable=SC2086  # ($quiet: nothing, or -q)
  "$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:${SRV_PORT[l]}" $quiet list >"$T/loading.out" 2>"$T/loading.err" ||
    fail "list started while the server loads (${quiet:-not -q}): $(cat "$T/loading.err")"
  grep -q "^LOADED " "$T/loading.out" || fail "list started while the server loads: $(cat "$T/loading.out")"
  if [[ -n $quiet ]]; then
    [[ ! -s $T/loading.err ]] || fail "-q printed: $(cat "$T/loading.err")"
    continue
  fi
  grep -q "^redisfs-snap: warning: calls wait for the server, each up to 30 s (--timeout): redis: LOADING" "$T/loading.err" ||
    fail "the tool did not say it waited for the server, and why: $(cat "$T/loading.err")"
  grep -q "^redisfs-snap: the server answers again, [0-9.]* s after the first call that waited for it$" \
    "$T/loading.err" || fail "the tool did not say the server answered again: $(cat "$T/loading.err")"
  note "  $(grep -m1 'calls wait' "$T/loading.err")"
done
note "ok"
