#!/bin/bash
# The FUSE floor of bench/run (bench/fuse_floor.cpp) makes, with --redis,
# the round trips bench/bound.py counts as forced, and only those: workload
# 8's measured bounds (columns floor+rt, floor+rt pt) are only bounds if it
# waits for the server exactly where close-to-open makes redisfs wait.
# Each step below is counted in the server's EVALSHA and EXEC calls (with
# --store a close is a MULTI ... EXEC: one round trip).
. "$(dirname "$0")/lib.sh"
need_binary FUSE_FLOOR_BIN

FM=$T/floor

floor_mount() {  # floor_mount OPTION...: fuse_floor on $FM, in the background
  mkdir -p "$FM"
  "$FUSE_FLOOR_BIN" "$@" "$FM" >"$T/floor.log" 2>&1 &
  MOUNT_PIDS[$FM]=$!
  local i
  for ((i = 0; i < 200; i++)); do
    is_mounted "$FM" && return 0
    sleep 0.05
  done
  fail "fuse_floor $* did not mount: $(cat "$T/floor.log")"
}

round_trips() { echo $(($(command_calls evalsha) + $(command_calls exec))); }

# trips N WHAT CMD...: CMD makes exactly N round trips
trips() {
  local want=$1 what=$2 before after
  shift 2
  before=$(round_trips)
  "$@"
  after=$(round_trips)
  (( after - before == want )) || fail "$what: $((after - before)) round trips, not $want"
}

py() { python3 -c "import os, sys; $1" "$FM"; }

# stored KIND NAME: the key --store keeps for what NAME is (I: its inode,
# D: its entries, B: the prefix of its blocks' keys)
stored() { echo "fuse_floor:${MOUNT_PIDS[$FM]}:$1:$(stat -c %i "$FM/$2")"; }

# the same rules, through both mounts bench/run measures and floors.sh's
# floor+store
for options in "--xattrs" "--no-default-permissions" "--xattrs --store"; do
  floor_mount --redis "$SOCK" $options
  trips 2 "create, write, close" py "fd = os.open(sys.argv[1] + '/a', os.O_CREAT | os.O_EXCL | os.O_WRONLY); os.write(fd, b'x'); os.close(fd)"
  if [[ $options == *--store* ]]; then
    # the writes were made: the entry, the inode, the bytes
    [[ $(rcli hget "fuse_floor:${MOUNT_PIDS[$FM]}:D:1" a) == "$(stat -c %i "$FM/a")" ]] || fail "--store: no entry a"
    [[ $(rcli hmget "$(stored I a)" type size nlink | tr '\n' ' ') == "file 1 1 " ]] ||
      fail "--store: inode of a: $(rcli hgetall "$(stored I a)" | tr '\n' ' ')"
    [[ $(rcli get "$(stored B a):0") == x ]] || fail "--store: bytes of a: $(rcli get "$(stored B a):0")"
    [[ $(cat "$FM/a") == x ]] || fail "--store: a reads back as $(cat "$FM/a")"
    # 64 KiB blocks; a sync sends those written since the last, and a
    # truncation removes the blocks past the end
    head -c 200000 /dev/urandom >"$T/big"
    trips 2 "create, write 200 KB, close" cp "$T/big" "$FM/big"
    cmp -s "$T/big" "$FM/big" || fail "--store: big does not read back"
    for i in 0 1 2 3; do
      key="$(stored B big):$i"
      cmp -s <(rcli --raw get "$key" | head -c "$(rcli strlen "$key")") <(dd if="$T/big" bs=65536 skip=$i count=1 status=none) ||
        fail "--store: block $i of big"
    done
    s0=$(command_calls set)
    trips 1 "write in block 1, close" dd if=/dev/zero of="$FM/big" bs=1 count=10 seek=70000 conv=notrunc status=none
    (( $(command_calls set) - s0 == 1 )) || fail "--store: $(( $(command_calls set) - s0 )) SETs for one block written"
    trips 1 "truncate, close" truncate -s 70000 "$FM/big"
    [[ $(rcli exists "$(stored B big):2" "$(stored B big):3") == 0 ]] || fail "--store: blocks past the end left"
    [[ $(rcli strlen "$(stored B big):1") == 4464 ]] || fail "--store: last block: $(rcli strlen "$(stored B big):1") bytes"
    big_keys=("$(stored I big)" "$(stored B big):0" "$(stored B big):1")
    trips 1 unlink rm "$FM/big"
    [[ $(rcli exists "${big_keys[@]}") == 0 ]] || fail "--store: big's keys left after rm"
  fi
  trips 1 "create, close" py "os.close(os.open(sys.argv[1] + '/b', os.O_CREAT | os.O_WRONLY))"
  trips 0 "open, read, close" py "fd = os.open(sys.argv[1] + '/a', os.O_RDONLY); os.read(fd, 10); os.close(fd)"
  trips 0 "open for writing, close" py "os.close(os.open(sys.argv[1] + '/a', os.O_WRONLY))"
  trips 0 "chmod, chown, utimes by path" py "p = sys.argv[1] + '/a'; os.chmod(p, 0o600); os.chown(p, 1, 1); os.utime(p, (1, 1))"
  trips 1 "open, fchmod, close" py "fd = os.open(sys.argv[1] + '/a', os.O_RDONLY); os.fchmod(fd, 0o644); os.close(fd)"
  trips 1 "write, fsync, close" py "fd = os.open(sys.argv[1] + '/a', os.O_WRONLY); os.write(fd, b'y'); os.fsync(fd); os.close(fd)"
  trips 2 "write, fsync, write, close" py "fd = os.open(sys.argv[1] + '/a', os.O_WRONLY); os.write(fd, b'y'); os.fsync(fd); os.write(fd, b'z'); os.close(fd)"
  trips 1 mkdir mkdir "$FM/d"
  trips 1 mknod mkfifo "$FM/d/fifo"
  trips 1 symlink ln -s a "$FM/s"
  [[ $(readlink "$FM/s") == a ]] || fail "readlink: $(readlink "$FM/s")"
  trips 1 link ln "$FM/a" "$FM/d/a2"
  [[ $(stat -c %h "$FM/a") == 2 ]] || fail "link count after ln: $(stat -c %h "$FM/a")"
  trips 1 rename mv "$FM/b" "$FM/d/b"
  trips 0 "stat, readdir" ls -laR "$FM" >/dev/null
  # --store reads a listing's names on the server: one HSCAN a directory listed
  h0=$(command_calls hscan)
  ls -a "$FM" "$FM/d" >/dev/null
  (( $(command_calls hscan) - h0 == $([[ $options == *--store* ]] && echo 2 || echo 0) )) ||
    fail "$options: $(( $(command_calls hscan) - h0 )) HSCANs for two listings"
  trips 4 "unlink, unlink, unlink, rmdir" rm -r "$FM/d"
  if [[ $options == *--store* ]]; then
    [[ $(rcli hget "$(stored I a)" nlink) == 1 ]] || fail "--store: nlink of a after its link went"
    [[ $(rcli hget "$(stored I .)" nlink) == 2 ]] || fail "--store: the root's nlink after rmdir"
    a_keys=("$(stored I a)" "$(stored B a):0")
  fi
  trips 2 "unlink, unlink" rm "$FM/a" "$FM/s"
  [[ -z $(ls -A "$FM") ]] || fail "left after rm: $(ls -A "$FM")"
  if [[ $options == *--store* ]]; then
    # what was removed is gone from the server: the root's inode is left
    [[ $(rcli exists "${a_keys[@]}") == 0 ]] || fail "--store: a's keys left after rm"
    [[ $(rcli --scan --pattern 'fuse_floor:*') == "fuse_floor:${MOUNT_PIDS[$FM]}:I:1" ]] ||
      fail "--store: keys left after rm: $(rcli --scan --pattern 'fuse_floor:*' | tr '\n' ' ')"
  fi
  unmount_at "$FM"
  [[ -z $(rcli --scan --pattern 'fuse_floor:*') ]] || fail "$options: keys left after unmount"
done

# extended attributes: with --xattrs there are none (ENODATA), as on a
# filesystem that has them; without, the kernel is told there is no
# getxattr at all (EOPNOTSUPP from then on)
getx() { python3 -c "
import errno, os, sys
try:
    os.getxattr(sys.argv[1], 'user.x')
except OSError as e:
    names = {errno.ENODATA: 'ENODATA', errno.EOPNOTSUPP: 'EOPNOTSUPP'}
    print(names.get(e.errno, errno.errorcode.get(e.errno, e.errno)))" "$FM"; }
floor_mount --redis "$SOCK" --xattrs
[[ $(getx) == ENODATA ]] || fail "--xattrs: getxattr answered $(getx)"
unmount_at "$FM"
floor_mount
[[ $(getx) == EOPNOTSUPP ]] || fail "no --xattrs: getxattr answered $(getx)"
# without --redis nothing goes to a server
trips 0 "the floor without --redis" py "os.mkdir(sys.argv[1] + '/d'); fd = os.open(sys.argv[1] + '/d/f', os.O_CREAT | os.O_WRONLY); os.write(fd, b'x'); os.close(fd)"
unmount_at "$FM"

# --data: each write's bytes are on the server before the write is
# answered, one SET a write (the close still makes its one round trip),
# and the floor deletes them when it is unmounted
floor_mount --redis "$SOCK" --xattrs --data
head -c 3145728 /dev/urandom >"$T/src"
s0=$(command_calls set)
trips 2 "create, 3 writes of 1 MiB, close" dd if="$T/src" of="$FM/big" bs=1M status=none
(( $(command_calls set) - s0 == 3 )) || fail "--data: $(( $(command_calls set) - s0 )) SETs for 3 writes, not 3"
mapfile -t data_keys < <(rcli --scan --pattern 'fuse_floor:*' | sort -t: -k4 -n)
(( ${#data_keys[@]} == 3 )) || fail "--data: keys on the server: ${data_keys[*]}"
for ((i = 0; i < 3; i++)); do
  [[ ${data_keys[i]} == *":$((i * 1048576))" ]] || fail "--data: key ${data_keys[i]}, not of offset $((i * 1048576))"
  [[ $(rcli strlen "${data_keys[i]}") == 1048576 ]] || fail "--data: ${data_keys[i]} holds $(rcli strlen "${data_keys[i]}") bytes"
  cmp -s <(rcli --raw get "${data_keys[i]}" | head -c 1048576) <(dd if="$T/src" bs=1M skip=$i count=1 status=none) ||
    fail "--data: ${data_keys[i]} does not hold the bytes written at its offset"
done
unmount_at "$FM"
[[ -z $(rcli --scan --pattern 'fuse_floor:*') ]] || fail "--data: keys left after unmount: $(rcli --scan --pattern 'fuse_floor:*')"
# --writeback (floor wb): mounted as a writeback redisfs mount is, with no
# server: a tree made and removed, no round trip
floor_mount --writeback --xattrs
trips 0 "a tree made and removed on floor wb" bash -c "mkdir -p '$FM/t/d' && echo x >'$FM/t/d/f' && ln -s f '$FM/t/d/l' &&
  sync -f '$FM/t' && [[ \$(stat -c %s '$FM/t/d/f') == 2 ]] && rm -rf '$FM/t' && [[ ! -e '$FM/t' ]]"
unmount_at "$FM"
# --writeback --redis --store (floor wb+store): the writes of --store, and
# a round trip only where a writeback redisfs mount waits for the server.
# A new file's create goes with its first close, in the MULTI of its bytes
# (an EVALSHA and an EXEC, one round trip); removals are answered at once
# and land before whatever the mount sends next.
# calls N_EVALSHA N_EXEC WHAT CMD...: CMD makes exactly those calls
calls() {
  local want_e=$1 want_x=$2 what=$3 e0 x0 e1 x1
  shift 3
  e0=$(command_calls evalsha) x0=$(command_calls exec)
  "$@"
  e1=$(command_calls evalsha) x1=$(command_calls exec)
  (( e1 - e0 == want_e && x1 - x0 == want_x )) ||
    fail "wb+store, $what: $((e1 - e0)) EVALSHAs and $((x1 - x0)) EXECs, not $want_e and $want_x"
}
entry() { rcli hget "fuse_floor:${MOUNT_PIDS[$FM]}:D:$(stat -c %i "$FM/${1%/*}")" "${1##*/}"; }
# hold PATH: a child creates PATH, writes a byte and holds it open (the
# byte in the kernel's writeback cache: no request yet) until release_held
# closes it (any close of a descriptor is a FLUSH, so the shell's own
# would not do)
hold() {
  local line
  coproc HELD { python3 -u -c "import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY)
os.write(fd, b'x')
print('held')
sys.stdin.readline()
os.close(fd)" "$1"; }
  read -r line <&"${HELD[0]}"
  [[ $line == held ]] || fail "hold $1: $line"
}
release_held() {
  local pid=$HELD_PID
  echo >&"${HELD[1]}"
  wait "$pid"
}
floor_mount --writeback --xattrs --redis "$SOCK" --store
calls 1 0 mkdir mkdir "$FM/d"
calls 0 0 "create, write 1 byte" hold "$FM/d/f"
[[ -z $(entry d/f) ]] || fail "wb+store: a new file on the server before its close"
calls 1 1 "close of a new file" release_held
[[ $(entry d/f) == "$(stat -c %i "$FM/d/f")" ]] || fail "wb+store: no entry d/f after its close"
[[ $(rcli hget "$(stored I d/f)" size) == 1 && $(rcli get "$(stored B d/f):0") == x ]] ||
  fail "wb+store: d/f after its close: $(rcli hgetall "$(stored I d/f)" | tr '\n' ' ')"
calls 0 1 "write, fsync, close" py "fd = os.open(sys.argv[1] + '/d/f', os.O_WRONLY); os.write(fd, b'yz'); os.fsync(fd); os.close(fd)"
[[ $(rcli get "$(stored B d/f):0") == yz ]] || fail "wb+store: d/f after its fsync: $(rcli get "$(stored B d/f):0")"
[[ $(cat "$FM/d/f") == yz ]] || fail "wb+store: d/f reads back as $(cat "$FM/d/f")"
calls 1 0 symlink ln -s f "$FM/d/s"
f_keys=("$(stored I d/f)" "$(stored B d/f):0")
calls 3 0 "unlink, unlink, then a mkdir" bash -c "rm '$FM/d/f' '$FM/d/s' && mkdir '$FM/e'"
[[ -z $(entry d/f) && -z $(entry d/s) && $(rcli exists "${f_keys[@]}") == 0 ]] ||
  fail "wb+store: the unlinks had not landed when the next change was sent"
calls 0 0 "a new file written" hold "$FM/e/g"
calls 0 0 "its unlink while open" rm "$FM/e/g"
calls 0 0 "its close" release_held
calls 0 0 "a new file written" hold "$FM/e/h"
calls 2 0 "its rename while open (its create, then the rename)" mv "$FM/e/h" "$FM/e/i"
calls 0 1 "its close" release_held
[[ $(entry e/i) == "$(stat -c %i "$FM/e/i")" && -z $(entry e/h) ]] || fail "wb+store: e/i after its rename"
[[ $(rcli get "$(stored B e/i):0") == x ]] || fail "wb+store: e/i's bytes: $(rcli get "$(stored B e/i):0")"
calls 4 0 "rm -r of the rest, then a mkdir" bash -c "rm -r '$FM/d' '$FM/e' && mkdir '$FM/x'"
h0=$(command_calls hscan)
ls -a "$FM" >/dev/null
(( $(command_calls hscan) == h0 )) || fail "wb+store: a listing read the server"
want="fuse_floor:${MOUNT_PIDS[$FM]}:D:1 fuse_floor:${MOUNT_PIDS[$FM]}:I:1 fuse_floor:${MOUNT_PIDS[$FM]}:I:$(stat -c %i "$FM/x") "
[[ $(rcli --scan --pattern 'fuse_floor:*' | sort | tr '\n' ' ') == "$want" ]] ||
  fail "wb+store: keys left after rm -r: $(rcli --scan --pattern 'fuse_floor:*' | tr '\n' ' ')"
unmount_at "$FM"
[[ -z $(rcli --scan --pattern 'fuse_floor:*') ]] || fail "wb+store: keys left after unmount"

# (--data and --store need a server, and are one or the other; --writeback
# takes one only with --store)
for options in "--data" "--store" "--redis $SOCK --data --store" "--redis $SOCK --writeback"; do
  rc=0
  "$FUSE_FLOOR_BIN" $options "$FM" 2>"$T/err" || rc=$?
  (( rc == 2 )) || fail "$options: exit $rc, not 2"
done

# a server it cannot reach is one line and exit 1, not a mount
rc=0
"$FUSE_FLOOR_BIN" --redis "$T/no.sock" "$FM" 2>"$T/err" || rc=$?
(( rc == 1 )) || fail "an unreachable server: exit $rc"
grep -q "cannot load a script into the server at $T/no.sock" "$T/err" || fail "message: $(cat "$T/err")"
! is_mounted "$FM" || fail "mounted without its server"
echo "bench_floor: ok"
