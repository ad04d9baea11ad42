# snap_lib.sh: what every redisfs-snap CLI case shares. A case sources it:
#
#   . "$(dirname "$0")/snap_lib.sh"
#
# and gets a temp dir $T, private redis-servers (start_server NAME: a unix
# socket $T/NAME.sock, no TCP port, no persistence; DEBUG allowed locally
# so values can be compared by DEBUG DIGEST-VALUE), `snap` (the binary
# under test with --redis on the first server), helpers to build a small
# filesystem with raw commands following the key schema, and an EXIT trap
# that stops every server and removes $T (remove_tmp: not with KEEP_TMP),
# pass or fail. A failing command is named with its line (ERR trap).
#
# Exit codes: 0 pass, 1 fail, 77 skipped (tests/common.sh). Sourced on its
# own (bash tests/cli/snap_lib.sh, with REDISFS_SNAP_BIN set), it checks
# itself: a server comes up and goes away.
# shellcheck source=tests/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

need_tools redis-server redis-cli jq python3
need_binary REDISFS_SNAP_BIN

unset REDISFS_URL REDISFS_PASSWORD REDISFS_PREFIX

T=$(mktemp -d /tmp/redisfs-snap-test.XXXXXX)
route_sanitizer_reports
SERVER_PIDS=()

cleanup() {
  local pid
  # Nothing here may end the cleanup early (the ERR trap would exit, and
  # leave the servers running): each step runs, whatever it returns.
  set +eE
  trap - ERR
  stop_jobs
  busy_scripts_stop
  for pid in ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}; do
    stop_pid "$pid"
  done
  remove_tmp  # (KEEP_TMP keeps it: the tools' stderr, for a sanitizer campaign)
}
trap cleanup EXIT
trap 'on_error $LINENO' ERR

# start_server NAME: a private redis-server on $T/NAME.sock.
start_server() {
  local name=$1 sock=$T/$1.sock i
  redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' --appendonly no \
    --enable-debug-command local --daemonize yes --pidfile "$T/$name.pid" --dir "$T" \
    --logfile "$T/$name.log" >/dev/null || fail "redis-server $name did not start"
  for ((i = 0; i < 200; i++)); do
    if [[ -S $sock ]] && [[ $(redis-cli -s "$sock" ping 2>/dev/null) == PONG ]] && [[ -s $T/$name.pid ]]; then
      SERVER_PIDS+=("$(cat "$T/$name.pid")")
      return 0
    fi
    sleep 0.05
  done
  fail "redis-server $name does not answer on $sock"
}

start_server main
SOCK=$T/main.sock
URL=unix://$SOCK

rcli() {
  redis-cli -s "$SOCK" "$@"
}

snap() {
  "$REDISFS_SNAP_BIN" --redis "$URL" "$@"
}

dbsize() {
  redis-cli -s "${1:-$SOCK}" dbsize
}

# fs_digest PREFIX [SOCK]: "relative-key digest" per key under PREFIX,
# sorted; SB and MOUNT/FREEZE/OPLOG keys left out (a copy changes its SB),
# and the WRITEBACK hold and CHANGED record (bookkeeping, not the tree).
fs_digest() {
  local prefix=$1 sock=${2:-$SOCK}
  redis-cli -s "$sock" --scan --pattern "$prefix:*" | sort -u |
    { grep -Ev "^$prefix:(SB|FREEZE|MOUNTS|MOUNT:.*|OPLOG:.*|WRITEBACK|CHANGED)\$" || true; } >"$T/digest.keys"
  [[ -s $T/digest.keys ]] || return 0
  # One redis-cli for every key (schema keys hold no spaces).
  paste -d' ' <(sed "s/^$prefix://" "$T/digest.keys") \
    <(sed 's/^/debug digest-value /' "$T/digest.keys" | redis-cli -s "$sock")
}

sb_digest() {
  redis-cli -s "${2:-$SOCK}" debug digest-value "$1:SB"
}

# sb_content PREFIX [SOCK]: the superblock's fields, sorted, without what a
# copy or restore records of where it came from (and a snapshot's identity).
sb_content() {
  redis-cli -s "${2:-$SOCK}" hgetall "$1:SB" | paste - - | sort |
    { grep -Ev $'^(restored_from|dumped|read_only|origin|snapshot_created|snapshot_id|lineage)\t' || true; }
}

key_count() {  # PREFIX [SOCK]
  redis-cli -s "${2:-$SOCK}" --scan --pattern "$1:*" | sort -u | wc -l
}

# make_fs PREFIX [SOCK]: a small filesystem written with raw commands by the
# key schema (core/store/keys.hpp): root with a text file, a binary file of two
# blocks with a hole, a subdirectory, a symlink and xattrs.
make_fs() {
  local p=$1 sock=${2:-$SOCK} now
  now=$(date +%s%N)
  local r=(redis-cli -s "$sock")
  "${r[@]}" hset "$p:SB" format redisfs version 1 block_size 4096 root 1 next_inode 100 inodes 5 bytes 8205 \
    created "$now" >/dev/null
  "${r[@]}" hset "$p:INODE:1" type dir mode 0755 uid 0 gid 0 size 0 nlink 3 rdev 0 bytes 0 parent 1 \
    atime "$now" mtime "$now" ctime "$now" >/dev/null
  "${r[@]}" hset "$p:DIR:1" hello.txt 2 data.bin 3 sub 4 link 5 >/dev/null
  "${r[@]}" hset "$p:INODE:2" type file mode 0644 uid 1000 gid 1000 size 13 nlink 1 rdev 0 bytes 13 \
    atime "$now" mtime "$now" ctime "$now" >/dev/null
  printf 'hello, world\n' | "${r[@]}" -x set "$p:BLK:2:0" >/dev/null
  "${r[@]}" hset "$p:INODE:3" type file mode 0600 uid 1000 gid 1000 size 12288 nlink 1 rdev 0 bytes 8192 \
    atime "$now" mtime "$now" ctime "$now" >/dev/null
  head -c 4096 /dev/urandom | "${r[@]}" -x set "$p:BLK:3:0" >/dev/null
  head -c 4096 /dev/urandom | "${r[@]}" -x set "$p:BLK:3:2" >/dev/null
  "${r[@]}" hset "$p:INODE:4" type dir mode 0700 uid 1000 gid 1000 size 0 nlink 2 rdev 0 bytes 0 parent 1 \
    atime "$now" mtime "$now" ctime "$now" >/dev/null
  "${r[@]}" hset "$p:INODE:5" type symlink mode 0777 uid 0 gid 0 size 8 nlink 1 rdev 0 bytes 0 target data.bin \
    atime "$now" mtime "$now" ctime "$now" >/dev/null
  "${r[@]}" sadd 'redisfs~FILESYSTEMS' "$p" >/dev/null  # registered, as mkfs's mount does
  "${r[@]}" hset "$p:XATTR:2" user.comment "a text file" >/dev/null
  printf '\x00\xff\xfe binary' | "${r[@]}" -x hset "$p:XATTR:3" user.raw >/dev/null
}

# add_blocks PREFIX INO FIRST N: N blocks of 4096 random bytes, BLK:INO:FIRST
# on, in one pipe to the server (the caller sets the inode's size and bytes).
add_blocks() {
  python3 - "$@" <<'PY' | redis-cli -s "$SOCK" --pipe >/dev/null
import os, sys
prefix, ino, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = sys.stdout.buffer
for i in range(first, first + n):
    key = b'%s:BLK:%d:%d' % (prefix.encode(), ino, i)
    val = os.urandom(4096)
    out.write(b'*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' % (len(key), key, len(val), val))
PY
}

# expect_fail CMD...: CMD must exit non-zero (not by a signal, not 2 unless
# asked); its stderr goes to $T/err.
expect_fail() {
  local rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  if ((rc == 0)); then
    fail "expected failure: $* (stderr: $(cat "$T/err"))"
  fi
  if ((rc > 128)); then
    fail "killed by a signal ($rc): $*"
  fi
  LAST_RC=$rc
}

# same_reason RESTORE_ERR VERIFY_OUT FILE: restore (its stderr) and verify
# (its stdout) refused FILE for the same reason. A bad document or record:
# verify's one line is restore's message, where included (the byte offset
# and record: restore learns of a duplicate from the server a batch later,
# and names the duplicate's record all the same, dump::fault_at). A
# damaged filesystem inside: restore names the
# first problem fsck found in its staging (for an incremental dump: in what
# it would leave) and how many more; verify lists them all (fsck's order
# follows SCAN, so only the set compares).
same_reason() {
  local err=$1 out=$2 file=$3 msg first n=1 damaged
  msg=$(sed -e 's/^redisfs-snap: error: //' "$err")
  msg=${msg#"$file: "}
  for damaged in "dump: the filesystem in the dump is damaged: " \
    "dump: the incremental dump would leave a damaged filesystem: "; do
    [[ $msg == "$damaged"* ]] && break
  done
  if [[ $msg == "$damaged"* ]]; then
    first=${msg#"$damaged"}
    first=${first%" (restore --damaged restores it as it is"*}
    if [[ $first =~ ^(.*)\ \(and\ ([0-9]+)\ more\ problems?\)$ ]]; then
      first=${BASH_REMATCH[1]}
      n=$((BASH_REMATCH[2] + 1))
    fi
    grep -qxF -- "$file: $first" "$out" && [[ $(wc -l <"$out") == "$n" ]]
    return
  fi
  [[ $(wc -l <"$out") == 1 ]] && [[ $msg == "$(sed -e "s|^$file: ||" "$out")" ]]
}

if [[ $TEST_NAME == snap_lib ]]; then
  make_fs SELF
  [[ $(key_count SELF) == 12 ]] || fail "make_fs wrote $(key_count SELF) keys"
  [[ $(fs_digest SELF | wc -l) == 11 ]] || fail "fs_digest"
  note "ok"
fi
