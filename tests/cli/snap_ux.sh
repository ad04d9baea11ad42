#!/usr/bin/env bash
# redisfs-snap as a person meets it (issue 12): a prefix written with its
# trailing ':' is the same prefix in every subcommand; README's exit codes
# (0 done, 1 failed, 2 a command line it cannot use; fsck 1 while problems
# remain); one-line messages that say what to do (restore onto a taken
# name, a missing password, a server that can evict keys, an unknown
# command); --help naming URL/FILE/PREFIX; progress in a pseudo-terminal
# (script) and as plain lines in a pipe, and a dump piped into a restore
# on one terminal drawing one line, not two; the header's record_count;
# fsck checking the superblock first and naming what may be transient on a
# mounted filesystem; list's table and du; a report standard output cannot
# take is a failure (and verify --json of a file it cannot read is not
# sound).
. "$(dirname "$0")/snap_lib.sh"
need_tools script

# expect_rc RC CMD...: CMD exits with RC; stdout in $T/out, stderr in $T/err.
expect_rc() {
  local want=$1 rc=0
  shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  ((rc == want)) || fail "'$*' exited $rc, expected $want: $(cat "$T/err")"
}
# says TEXT: $T/err holds TEXT (fixed string).
says() {
  grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1': $(cat "$T/err")"
}

make_fs SKX

note "a trailing ':' is the same prefix, in every subcommand"
expect_rc 0 snap copy SKX: SKX2:
[[ $(rcli exists SKX2:SB) == 1 ]] || fail "copy SKX: SKX2: made no SKX2"
expect_rc 0 snap dump SKX2: -o "$T/skx2.json"
[[ $(jq -r .prefix "$T/skx2.json") == SKX2 ]] || fail "dump SKX2: wrote prefix $(jq -r .prefix "$T/skx2.json")"
expect_rc 0 snap restore "$T/skx2.json" --prefix SKX3:
[[ $(rcli exists SKX3:SB) == 1 ]] || fail "restore --prefix SKX3: made no SKX3"
expect_rc 0 snap fsck SKX3:
expect_rc 0 snap du SKX3:
expect_rc 0 snap delete SKX3:
[[ $(rcli exists SKX3:SB) == 0 ]] || fail "delete SKX3: left SKX3"
[[ $(rcli --scan --pattern 'SKX3:*' | wc -l) == 0 ]] || fail "delete SKX3: left keys"
[[ $(rcli --scan --pattern '*::*' | wc -l) == 0 ]] || fail "keys with '::' were made"

note "exit 2: a command line that cannot be used, one line naming the program"
expect_rc 2 snap copy 'a b' X
says "redisfs-snap: error: SRC: invalid prefix 'a b'"
expect_rc 2 snap fsck 'SKX::'
expect_rc 2 snap restore "$T/skx2.json" --prefix 'a*'
expect_rc 2 snap dump
says "redisfs-snap: error: "
note "an input that is not there: one line naming it once"
expect_rc 1 snap restore "$T/missing.json" --prefix SKX4
[[ $(cat "$T/err") == "redisfs-snap: error: cannot open $T/missing.json: No such file or directory" ]] ||
  fail "restore of a missing file: $(cat "$T/err")"
expect_rc 2 "$REDISFS_SNAP_BIN" frob
says "redisfs-snap: error: unknown command 'frob'"
says "copy, dump, restore, list, delete, fsck, du"
expect_rc 2 "$REDISFS_SNAP_BIN"
says "redisfs-snap: error: no command given"
expect_rc 2 "$REDISFS_SNAP_BIN" --frob list
says "redisfs-snap: error: "
expect_rc 2 snap list --frob
says "redisfs-snap: error: The following argument was not expected: --frob"
says "redisfs-snap --help"
# server options that do not fit, as the daemon's (tests/mount/errors.sh)
expect_rc 2 snap --timeout 0 list
says "redisfs-snap: error: --timeout: the timeout must be more than 0 and at most 86400 seconds"
expect_rc 2 snap --tls list
says "--tls needs a TCP server"
expect_rc 2 snap --data-dir "$T/never" list
says "redisfs-snap: error: --data-dir names the embedded server's directory, but --redis names a server"
[[ ! -e $T/never ]] || fail "a refused list created the data directory it was given beside a server"
expect_rc 2 "$REDISFS_SNAP_BIN" --redis 'redis://:pass/word@127.0.0.1:1' list
says "an '@' after the host; a user name or password holding '/', '?', '@' or '%' must be percent-encoded"
! grep -q 'pass/word\|database' "$T/err" || fail "a password with a raw '/': $(cat "$T/err")"
expect_rc 2 "$REDISFS_SNAP_BIN" --redis 'ftp://x' list
says "redisfs-snap: error: --redis: invalid Redis URL: unknown scheme"
[[ $(wc -l <"$T/err") == 1 ]] || fail "a bad URL: not one line: $(cat "$T/err")"
expect_rc 0 "$REDISFS_SNAP_BIN" --version
version=$(sed -n 's/^project(redisfs VERSION \([0-9.]*\) .*/\1/p' "$REDISFS_TESTS_DIR/../CMakeLists.txt")
[[ -n $version && $(cat "$T/out") == "redisfs-snap $version" ]] || fail "--version: $(cat "$T/out")"
expect_rc 0 "$REDISFS_SNAP_BIN" --help
grep -q -- '--redis URL' "$T/out" || fail "--help does not show --redis URL"
grep -q -- '--password-file FILE' "$T/out" || fail "--help does not show --password-file FILE"
expect_rc 0 "$REDISFS_SNAP_BIN" copy --help
grep -q 'SRC PREFIX' "$T/out" || fail "copy --help does not show SRC PREFIX: $(cat "$T/out")"
expect_rc 0 "$REDISFS_SNAP_BIN" restore --help
grep -q 'FILE FILE\|--prefix PREFIX' "$T/out" || fail "restore --help: $(cat "$T/out")"
! grep -q 'TEXT' "$T/out" || fail "restore --help still says TEXT: $(cat "$T/out")"
expect_rc 0 "$REDISFS_SNAP_BIN" dump --help
grep -q -- '--output FILE' "$T/out" || fail "dump --help does not show --output FILE"
for cmd in "" copy dump restore list delete fsck du; do
  expect_rc 0 "$REDISFS_SNAP_BIN" $cmd --help
  ! grep -Eq 'TEXT|:INT|UINT' "$T/out" || fail "$cmd --help names a type, not a meaning: $(cat "$T/out")"
done

note "exit 1: the operation failed; fsck 1 while problems remain"
expect_rc 1 snap dump NOPE -o "$T/nope.json"
says "no filesystem at prefix 'NOPE'"
[[ ! -e $T/nope.json ]] || fail "a failed dump left its file"
expect_rc 0 snap list

note "restore onto a taken name: a plain refusal, not a parse error"
expect_rc 1 snap restore "$T/skx2.json"
says "redisfs-snap: error: refusing to restore over 'SKX2': it already holds a filesystem; add --force to replace it, or restore under another name with --prefix NAME"
! grep -q "at byte" "$T/err" || fail "the refusal reads as a parse error: $(cat "$T/err")"
expect_rc 1 snap restore - <"$T/skx2.json"
says "refusing to restore over 'SKX2'"
[[ $(wc -l <"$T/err") == 1 ]] || fail "more than one line: $(cat "$T/err")"

note "a password missing or wrong: the hint names --password-file"
start_server locked
rl() { redis-cli -s "$T/locked.sock" "$@"; }
rl config set requirepass 'sesame' >/dev/null
expect_rc 1 "$REDISFS_SNAP_BIN" --redis "unix://$T/locked.sock" list
says "NOAUTH"
says "--password-file FILE or REDISFS_PASSWORD"
! grep -q "redis: .*redis: " "$T/err" || fail "'redis:' twice: $(cat "$T/err")"
echo wrong >"$T/pw"
expect_rc 1 "$REDISFS_SNAP_BIN" --redis "unix://$T/locked.sock" --password-file "$T/pw" list
says "WRONGPASS"
says "--password-file"
printf '\nsesame\n' >"$T/pw"
expect_rc 1 "$REDISFS_SNAP_BIN" --redis "unix://$T/locked.sock" --password-file "$T/pw" list
says "password file $T/pw begins with an empty line (the password is its first line)"
: >"$T/pw"
expect_rc 1 "$REDISFS_SNAP_BIN" --redis "unix://$T/locked.sock" --password-file "$T/pw" list
says "password file $T/pw is empty (the password is its first line)"
expect_rc 1 "$REDISFS_SNAP_BIN" --redis "unix://$T/locked.sock" --password-file "$T" list
says "cannot read password file $T: Is a directory"
echo sesame >"$T/pw"
expect_rc 0 "$REDISFS_SNAP_BIN" --redis "unix://$T/locked.sock" --password-file "$T/pw" list
expect_rc 0 env REDISFS_PASSWORD=sesame "$REDISFS_SNAP_BIN" --redis "unix://$T/locked.sock" list

note "a server that closes the connection: 'redis:' once"
python3 - "$T/closer.sock" >"$T/closer.log" 2>&1 <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
s.settimeout(30)
try:
    while True:
        c, _ = s.accept()
        c.recv(100)
        c.close()
except OSError:
    pass
PY
CLOSER=$!
for ((i = 0; i < 100; i++)); do [[ -S $T/closer.sock ]] && break; sleep 0.05; done
expect_rc 1 "$REDISFS_SNAP_BIN" --redis "unix://$T/closer.sock" --timeout 1 list
kill "$CLOSER" 2>/dev/null || true
wait "$CLOSER" 2>/dev/null || true
says "redisfs-snap: error: redis: "
! grep -q "redis: .*redis: " "$T/err" || fail "'redis:' twice: $(cat "$T/err")"

note "a server older than 6.2: refused (tests/fake_redis.py answers INFO as one)"
python3 "$(dirname "$0")/../fake_redis.py" "$T/old.sock" 6.0.9 &
OLD=$!
for ((i = 0; i < 100; i++)); do [[ -S $T/old.sock ]] && break; sleep 0.05; done
expect_rc 1 "$REDISFS_SNAP_BIN" --redis "unix://$T/old.sock" list
says "redisfs-snap: error: the Redis server is version 6.0.9; redisfs needs 6.2 or newer"
kill "$OLD" 2>/dev/null || true
wait "$OLD" 2>/dev/null || true
python3 "$(dirname "$0")/../fake_redis.py" "$T/new.sock" 6.2.0 &
NEW=$!
for ((i = 0; i < 100; i++)); do [[ -S $T/new.sock ]] && break; sleep 0.05; done
rc=0
"$REDISFS_SNAP_BIN" --redis "unix://$T/new.sock" --timeout 2 list >/dev/null 2>"$T/err" || rc=$?
! grep -q "needs 6.2" "$T/err" || fail "a 6.2 server was refused for its version: $(cat "$T/err")"
kill "$NEW" 2>/dev/null || true
wait "$NEW" 2>/dev/null || true

note "a server that can evict keys: warned, copy and restore refused without --allow-evicting-server"
rcli config set maxmemory-policy allkeys-lru >/dev/null
expect_rc 0 snap list
says "redisfs-snap: warning: the server's maxmemory-policy is allkeys-lru"
expect_rc 1 snap copy SKX SKX4
says "refusing to copy: the server's maxmemory-policy is allkeys-lru"
says "--allow-evicting-server"
[[ $(rcli exists SKX4:SB) == 0 ]] || fail "a refused copy made SKX4"
expect_rc 1 snap restore "$T/skx2.json" --prefix SKX4
says "refusing to restore: the server's maxmemory-policy is allkeys-lru"
expect_rc 0 snap restore --dry-run "$T/skx2.json" --prefix SKX4
expect_rc 0 snap --allow-evicting-server copy SKX SKX4
expect_rc 0 snap delete SKX4
expect_rc 0 snap restore "$T/skx2.json" --prefix SKX4 --allow-evicting-server
expect_rc 0 snap delete SKX4
rcli config set maxmemory-policy noeviction >/dev/null
expect_rc 0 snap list
[[ ! -s $T/err ]] || fail "a noeviction server is warned of: $(cat "$T/err")"

note "the dump's header announces its record count (jq reads the header members)"
[[ $(jq .record_count "$T/skx2.json") == $(jq .trailer.records "$T/skx2.json") ]] ||
  fail "record_count $(jq .record_count "$T/skx2.json") != trailer $(jq .trailer.records "$T/skx2.json")"
jq -e '{format, version, prefix, created, tool, record_count} | all(. != null)' "$T/skx2.json" >/dev/null ||
  fail "a header member is missing"
# a dump without it (an older redisfs-snap's) still restores
jq -c 'del(.record_count)' "$T/skx2.json" >"$T/old.json"
expect_rc 0 snap restore "$T/old.json" --prefix OLD
expect_rc 0 snap delete OLD

note "progress in a pseudo-terminal: copy shows a total and a percentage, redrawn in place"
export REDISFS_PROGRESS_SECONDS=0  # draw at every update: no timing in this test
q() { printf '%q ' "$@"; }
script -qec "$(q "$REDISFS_SNAP_BIN" --redis "$URL" copy SKX SKX5)" /dev/null >"$T/tty" </dev/null
grep -q $'\rcopy SKX -> SKX5: [0-9]* of about [0-9]* keys ([0-9]*%)' "$T/tty" ||
  fail "copy drew no total and percentage: $(cat -v "$T/tty")"
grep -q "copied SKX -> SKX5" "$T/tty" || fail "no summary: $(cat -v "$T/tty")"
script -qec "$(q "$REDISFS_SNAP_BIN" --redis "$URL" dump SKX -o "$T/tty.json")" /dev/null >"$T/tty" </dev/null
grep -q $'\rdump SKX: [0-9]* of [0-9]* keys ([0-9]*%)' "$T/tty" || fail "dump drew no total: $(cat -v "$T/tty")"

note "dump | restore on one terminal: only the restore draws, with the header's total"
script -qec "$(q "$REDISFS_SNAP_BIN" --redis "$URL" dump SKX) | $(q "$REDISFS_SNAP_BIN" --redis "$URL" restore --prefix SKX6)" \
  /dev/null >"$T/tty" </dev/null
grep -q $'\rrestore: [0-9]* of 12 keys ([0-9]*%)' "$T/tty" || fail "restore from a pipe drew no total: $(cat -v "$T/tty")"
! grep -q $'\rdump SKX:' "$T/tty" || fail "dump drew on the restore's terminal: $(cat -v "$T/tty")"
grep -q "dumped SKX to stdout" "$T/tty" || fail "no dump summary: $(cat -v "$T/tty")"
grep -q "restored stdin (dump of SKX) as SKX6" "$T/tty" || fail "no restore summary: $(cat -v "$T/tty")"

note "progress in a pipe: plain lines, no carriage return"
snap copy SKX SKX7 2>&1 >/dev/null | cat >"$T/plain"
grep -q '^copy SKX -> SKX7: [0-9]* of about [0-9]* keys' "$T/plain" || fail "no plain progress line: $(cat -v "$T/plain")"
! grep -q $'\r' "$T/plain" || fail "a carriage return in a pipe: $(cat -v "$T/plain")"
! grep -q $'\e' "$T/plain" || fail "an escape sequence in a pipe: $(cat -v "$T/plain")"
snap dump SKX -o "$T/plain.json" 2>"$T/plain"
grep -q '^dump SKX: 12 of 12 keys (100%)' "$T/plain" || fail "dump's plain lines: $(cat -v "$T/plain")"
# no ETA before a tenth of the work is done (it would be a guess)
! head -2 "$T/plain" | grep -q ETA || fail "an ETA before any estimate: $(cat -v "$T/plain")"
unset REDISFS_PROGRESS_SECONDS
snap dump SKX -o "$T/plain.json" 2>"$T/plain"
[[ $(wc -l <"$T/plain") == 1 ]] || fail "a short dump printed more than its summary: $(cat -v "$T/plain")"
expect_rc 0 snap --quiet copy SKX SKX8
[[ ! -s $T/err ]] || fail "--quiet printed: $(cat "$T/err")"

note "fsck: the superblock first"
expect_rc 1 snap fsck NOPE
says "no filesystem at prefix 'NOPE' (no superblock NOPE:SB): nothing checked"
rcli hset STRAY:INODE:5 type file >/dev/null
rcli hset STRAY:DIR:1 a 5 >/dev/null
expect_rc 1 snap fsck STRAY
says "no superblock STRAY:SB, although keys remain under it"
[[ ! -s $T/out ]] || fail "fsck listed problems without a superblock: $(cat "$T/out")"

note "fsck of a mounted filesystem names what may be passing"
rcli hset SKX:SB inodes 6 >/dev/null  # a counter a change in flight shows wrong
rcli set SKX:MOUNT:m1 x px 30000 >/dev/null  # (a live mount's session key has its TTL)
rcli hset SKX:MOUNTS m1 x >/dev/null
expect_rc 1 snap fsck SKX
says "it is mounted (1 live mount) and was checked while it may change: 1 of the 1 problem"
says "redisfs-snap copy SKX SKX-check && redisfs-snap fsck SKX-check"
says "(all may be passing: see above)"
! grep -q "run fsck --repair" "$T/err" || fail "a mounted filesystem is sent to --repair: $(cat "$T/err")"
expect_rc 1 snap fsck --repair SKX
says "'SKX' is mounted (1 live mount): unmount it before --repair, or add --force to repair it anyway"
[[ $(rcli hget SKX:SB inodes) == 6 ]] || fail "--repair of a mounted filesystem changed it"
rcli del SKX:MOUNT:m1 SKX:MOUNTS >/dev/null
expect_rc 1 snap fsck SKX
says "(run fsck --repair)"
expect_rc 0 snap fsck --repair SKX
[[ $(rcli hget SKX:SB inodes) == 5 ]] || fail "--repair left inodes $(rcli hget SKX:SB inodes)"
note "fsck --repair --force repairs a mounted filesystem"
rcli hset SKX:SB inodes 6 >/dev/null
rcli set SKX:MOUNT:m1 x px 30000 >/dev/null
rcli hset SKX:MOUNTS m1 x >/dev/null
expect_rc 0 snap fsck --repair --force SKX
[[ $(rcli hget SKX:SB inodes) == 5 ]] || fail "--repair --force of a mounted filesystem left inodes $(rcli hget SKX:SB inodes)"
rcli del SKX:MOUNT:m1 SKX:MOUNTS >/dev/null

note "list: a table with human sizes and ages, copies under their origin; --json raw numbers"
expect_rc 0 snap list
head -1 "$T/out" | grep -q '^NAME  *KIND  *SIZE  *INODES  *CREATED  *STATE' || fail "list header: $(cat "$T/out")"
# (made at the start of this case: "just now" under 10 s, "N s ago" or
# "N min ago" on a slow run, an ASan build's say; the formats are
# human_age's case in tests/redis/test_snapshot.cpp)
grep -qE '^SKX  *filesystem  *8.0 KiB  *5  *(just now|[0-9]+ s ago|[0-9]+ min ago)  ' "$T/out" ||
  fail "SKX row: $(cat "$T/out")"
grep -q '^├─ SKX2  *snapshot' "$T/out" || fail "SKX2 not under SKX: $(cat "$T/out")"
grep -q '─ SKX8  *snapshot' "$T/out" || fail "SKX8 not under SKX: $(cat "$T/out")"
grep -q '^SKX6  *restored .*from a dump of SKX' "$T/out" || fail "SKX6's note: $(cat "$T/out")"
expect_rc 0 snap list --json
[[ $(jq -r '.[] | select(.prefix == "SKX") | .bytes' "$T/out") == 8205 ]] || fail "list --json bytes: $(cat "$T/out")"
[[ $(jq -r '.[] | select(.prefix == "SKX2") | .origin' "$T/out") == SKX ]] || fail "list --json origin"
# every member redisfs-snap(1) names, in each object
want="block_size bytes created dumped inodes kind lineage mounts origin prefix problem progress read_only restored_from"
want+=" snapshot_created snapshot_id temporary version"
[[ $(jq -r '[.[] | keys | join(" ")] | unique | join("|")' "$T/out") == "$want" ]] ||
  fail "list --json members: $(jq -c '[.[] | keys] | unique' "$T/out")"
[[ $(jq -r '.[] | select(.prefix == "SKX2") | [.kind, .read_only, .temporary, .block_size, .version, (.snapshot_created != null)] | join(" ")' "$T/out") == "snapshot true false 4096 2 true" ]] ||
  fail "list --json SKX2: $(jq -c '.[] | select(.prefix == "SKX2")' "$T/out")"

note "du: the directories holding the most bytes"
p=DU now=$(date +%s%N)
rcli hset $p:SB format redisfs version 1 block_size 4096 root 1 next_inode 100 inodes 6 bytes 7000 created "$now" >/dev/null
for d in 1:0 2:1 3:2; do
  rcli hset $p:INODE:${d%%:*} type dir mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 1 \
    atime "$now" mtime "$now" ctime "$now" >/dev/null
done
rcli hset $p:DIR:1 small 2 big 3 top.txt 4 >/dev/null
rcli hset $p:DIR:2 s.txt 5 >/dev/null
rcli hset $p:DIR:3 b.txt 6 >/dev/null
for f in 4:1000 5:2000 6:4000; do
  rcli hset $p:INODE:${f%%:*} type file mode 0644 uid 0 gid 0 size ${f##*:} nlink 1 rdev 0 bytes ${f##*:} \
    atime "$now" mtime "$now" ctime "$now" >/dev/null
done
expect_rc 0 snap du DU
says "du DU: 6 inodes, 6.8 KiB in files"
[[ $(sed -n 2p "$T/out" | awk '{print $NF}') == / ]] || fail "du's first row is not /: $(cat "$T/out")"
[[ $(sed -n 3p "$T/out" | awk '{print $NF}') == /big ]] || fail "du's second row is not /big: $(cat "$T/out")"
[[ $(sed -n 4p "$T/out" | awk '{print $NF}') == /small ]] || fail "du's third row is not /small: $(cat "$T/out")"
expect_rc 0 snap du DU --json
[[ $(jq -c '[.top[] | [.path, .bytes, .files]]' "$T/out") == '[["/",7000,3],["/big",4000,1],["/small",2000,1]]' ]] ||
  fail "du --json: $(cat "$T/out")"
expect_rc 0 snap du DU --top 1
[[ $(wc -l <"$T/out") == 2 ]] || fail "du --top 1: $(cat "$T/out")"
rcli hset E1:SB format redisfs version 1 block_size 4096 root 1 next_inode 2 inodes 1 bytes 0 created "$now" >/dev/null
rcli hset E1:INODE:1 type dir mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 1 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
expect_rc 0 snap du E1
says "du E1: 1 inode, 0 B in files"
note "du: a file with two links counted once; --depth"
rcli hset $p:DIR:2 b-link.txt 6 >/dev/null
rcli hset $p:INODE:6 nlink 2 >/dev/null
rcli hset $p:DIR:3 deep 7 >/dev/null
rcli hset $p:INODE:7 type dir mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 3 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli hset $p:DIR:7 d.txt 8 >/dev/null
rcli hset $p:INODE:8 type file mode 0644 uid 0 gid 0 size 500 nlink 1 rdev 0 bytes 500 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli hset $p:SB inodes 8 bytes 7500 >/dev/null
expect_rc 0 snap du DU --json
# (as du(1): b.txt's 4000 bytes in the directory the walk reaches it in first)
[[ $(jq -c '[.top[] | select(.path == "/" or .path == "/big/deep") | [.path, .bytes, .files]]' "$T/out") == \
  '[["/",7500,4],["/big/deep",500,1]]' ]] || fail "du --json with a hard link and a deeper directory: $(cat "$T/out")"
[[ $(jq -c '[.top[] | select(.path == "/small" or .path == "/big")] | [(map(.bytes) | add), (map(.files) | add)]' \
  "$T/out") == '[6500,3]' ]] || fail "du counted the file with two links twice, or not at all: $(cat "$T/out")"
expect_rc 0 snap du DU --json --depth 1
[[ $(jq -c '[.top[] | .path]' "$T/out") == '["/","/small","/big"]' ]] || fail "du --depth 1: $(cat "$T/out")"
# (without --top: the 20 largest; 30 directories here, each with a file)
python3 - <<'PY' | rcli >/dev/null
now = 1700000000000000000
attrs = "mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 1 atime %d mtime %d ctime %d" % (now, now, now)
print("hset DU2:SB format redisfs version 1 block_size 4096 root 1 next_inode 100 inodes 61 bytes %d created %d"
      % (sum(range(1, 31)) * 10, now))
print("hset DU2:INODE:1 type dir " + attrs.replace("nlink 2", "nlink 32"))
for i in range(1, 31):
    d, f = 1 + i, 31 + i
    print("hset DU2:DIR:1 d%d %d" % (i, d))
    print("hset DU2:INODE:%d type dir %s" % (d, attrs))
    print("hset DU2:DIR:%d f %d" % (d, f))
    print("hset DU2:INODE:%d type file %s" % (f, attrs.replace("0755", "0644").replace("size 0", "size %d" % (i * 10))
                                                    .replace("nlink 2", "nlink 1").replace("bytes 0", "bytes %d" % (i * 10))))
    print("set DU2:BLK:%d:0 %s" % (f, "x" * (i * 10)))
PY
snap -q fsck DU2 >"$T/fsck.out" 2>&1 || fail "du's second filesystem is not clean: $(head -3 "$T/fsck.out")"
expect_rc 0 snap du DU2 --json
[[ $(jq -c '[.top | length, .[1].path, .[-1].path]' "$T/out") == '[20,"/d30","/d12"]' ]] ||
  fail "du without --top: $(jq -c '[.top[] | .path]' "$T/out")"
expect_rc 1 snap du NOPE
says "no filesystem at prefix 'NOPE'"
# a key of the wrong type (damage fsck names): du, an incremental dump and
# diff fail in one line that names the key (the server's WRONGTYPE names
# none; diff's, read through a snapshot, as the user knows it) and where to
# look (a full dump leaves the key out and says so: snap_wrong_type.sh)
make_fs WT
snap -q copy WT WT-MON
rcli del WT:INODE:2 >/dev/null
rcli set WT:INODE:2 junk >/dev/null
snap -q copy WT WT-TUE 2>/dev/null  # (the damage goes with it, said in a warning)
for cmd in "du WT" "diff WT-MON WT" "dump WT-TUE --since WT-MON -o $T/wt-inc.json"; do
  read -ra argv <<<"$cmd"
  expect_rc 1 snap -q "${argv[@]}"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$cmd over a key of the wrong type: not one line: $(cat "$T/err")"
  case $cmd in
    diff*) says "diff WT-MON WT: redis: WRONGTYPE" && says " of 'WT:INODE:2') (a key of the filesystem is of the wrong type: \`redisfs-snap fsck WT-MON\` or \`redisfs-snap fsck WT\` names it)" ;;
    *TUE*) says "the structure of 'WT-TUE' disagrees with its superblock (INODE:2 is not a hash)" && says "\`redisfs-snap fsck WT-TUE\`" ;; # (its walk names the key)
    *) says "du WT: redis: WRONGTYPE" && says " of 'WT:INODE:2') (a key of the filesystem is of the wrong type: \`redisfs-snap fsck WT\` names it)" ;;
  esac
done
expect_rc 1 snap fsck WT
grep -q 'WT:INODE:2' "$T/out" || fail "fsck does not name the key du and dump point to: $(cat "$T/out")"

note "a report that cannot be written (standard output a full device) is a failure, in one line"
snap -q dump SKX -o "$T/full-dev.json"
snap -q copy SKX UXD
rcli hset UXD:INODE:2 mtime 1 >/dev/null  # (a change for diff to print)
for cmd in "list" "list --json" "du SKX" "fsck --json SKX" "diff UXD SKX" "dump SKX" \
  "verify --json $T/full-dev.json"; do
  read -ra argv <<<"$cmd"
  rc=0
  "$REDISFS_SNAP_BIN" --redis "$URL" -q "${argv[@]}" >/dev/full 2>"$T/err" || rc=$?
  want=1
  [[ $cmd == verify* ]] && want=2  # (1 is "not sound")
  ((rc == want)) || fail "$cmd > /dev/full exited $rc, not $want: $(cat "$T/err")"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$cmd > /dev/full: not one line: $(cat "$T/err")"
  says "writing to stdout failed"
done
note "a dump that cannot write says why, and where"
expect_rc 1 snap dump SKX -o /dev/full
says "dump SKX: writing to /dev/full failed: No space left on device"
expect_rc 2 snap dump SKX -o ""
says "redisfs-snap: error: option '-o' has an empty value"
note "the form of a tool's temporary prefix is no name for a filesystem"
for cmd in "copy SKX SKX~dump~0123abcd" "restore $T/full-dev.json --prefix SKX~copy~00ff" \
  "rollback SKX SKX2 --keep-as SKX~replaced~0a"; do
  read -ra argv <<<"$cmd"
  expect_rc 2 snap "${argv[@]}"  # (a command line that cannot be used: read before the dump or the server)
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$cmd: not one line: $(cat "$T/err")"
  says "is the form of a tool's temporary prefix"
  ! grep -qF "$T/full-dev.json" "$T/err" || fail "$cmd: the refusal of a name blames the dump: $(cat "$T/err")"
done
[[ -z $(rcli --scan --pattern 'SKX~*') ]] || fail "a refused temporary name left keys: $(rcli --scan --pattern 'SKX~*' | head -3)"

note "verify --json of a file that cannot be read: not sound, and the file's error in the document"
rc=0
"$REDISFS_SNAP_BIN" verify --json "$T/full-dev.json" "$T/no-such.json" >"$T/out" 2>"$T/err" || rc=$?
((rc == 2)) || fail "verify --json of a missing file exited $rc: $(cat "$T/err")"
[[ $(jq -r '.sound' "$T/out") == false && $(jq -r '.files | length' "$T/out") == 1 ]] ||
  fail "verify --json of a missing file: $(cat "$T/out")"
jq -r '.errors[0]' "$T/out" | grep -qF "no-such.json" || fail "verify --json does not name the missing file: $(cat "$T/out")"

note "a restore whose server goes away before the dump's header came: the server's line, not the dump's"
start_server gone
(sleep 3; cat "$T/skx2.json") | "$REDISFS_SNAP_BIN" --redis "unix://$T/gone.sock" --timeout 2 -q restore - \
  --prefix GONE >"$T/out" 2>"$T/err" &
restoring=$!
sleep 1
redis-cli -s "$T/gone.sock" shutdown nosave >/dev/null 2>&1 || true
rc=0
wait "$restoring" || rc=$?
((rc == 1)) || fail "the restore exited $rc: $(cat "$T/err")"
[[ $(wc -l <"$T/err") == 1 ]] || fail "not one line: $(cat "$T/err")"
says "redis: cannot connect to $T/gone.sock"
! grep -qE 'dump: at byte|refusing' "$T/err" || fail "the server's failure is told as the dump's or a refusal: $(cat "$T/err")"
note "ok"
