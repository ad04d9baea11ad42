#!/usr/bin/env bash
# outage: a server outage costs latency, not errors (issue 9).
#
# 1. Two writers (outage_writer.py: files written, fsynced and stat'ed in
#    a loop, every other one copied within the mount and a hole punched
#    in the copy, each acknowledged one journaled) run on two mounts of one
#    filesystem, over TCP and over the unix socket, while the server is
#    killed (SIGKILL) and started again on the same port, socket and AOF
#    (appendfsync always) twice, then once more sitting in LOADING for
#    about 2 s. The writers must see no error at all; every acknowledged
#    file reads back intact after a remount; fsck is clean. The slowest
#    single call is printed, never asserted.
# 2. With --timeout 3 and the server down for about 8 s, calls fail with
#    EIO (not ENOENT, not a hang), the daemon logs why (that calls wait,
#    why, and that they failed), and once the server is back new calls
#    work on the same mount, without a remount, and the daemon says so.
# 3. Closes the server acknowledged and then lost with a restart (as a
#    master SIGKILLed before its replica had them): the mount saw the
#    server change, so at unmount it removes its open counts and frees the
#    orphan it still holds on the server; fsck is clean.
# 4. An open the server acknowledged and then lost with a restart: the
#    mount sees the new server while still mounted and counts its open
#    again, so another mount's unlink leaves the file to it (an orphan it
#    still reads), and its close frees it; fsck is clean.
# 5. A pipeline whose replies are all lost after the server ran it (a
#    proxy, tests/lost_reply_proxy.py, drops them and closes the
#    connection): each change's outcome is read back from its own record,
#    none fails as "ran, but its reply was lost". Two pipelines: a new
#    file's deferred chmod with its data at its close (a default mount),
#    and unlinks sent behind (a writeback mount).
# 6. A server at its limit of clients (maxclients: it answers "ERR max
#    number of clients reached" and closes) whose other clients go after
#    about 6 s: a call of a mount whose connections were closed waits for
#    a new one and succeeds; the daemon logs why it waits and that the
#    server answers again. A tool's first connection fails at once, saying
#    why.
. "$(dirname "$0")/lib.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN
W=$HERE/outage_writer.py

start_plain_redis_tcp s
PORT=${SRV_PORT[s]}
URL=redis://127.0.0.1:$PORT
P=O$RANDOM$RANDOM
M=$T/m     # mount over TCP
MU=$T/mu   # a second mount of the same filesystem, over the unix socket
STOP=$T/stop
declare -A WRITERS=()  # journal -> pid of its writer

oks() {  # JOURNAL: files acknowledged so far
  if [[ -f $1 ]]; then
    grep -c '^ok ' "$1" || true
  else
    echo 0
  fi
}

# wait_progress N WHY: until every writer has N more files acknowledged
# (it got through the outage); fails if one dies or is stuck for 120 s.
wait_progress() {
  local j i
  declare -A want=()
  for j in "${!WRITERS[@]}"; do
    want[$j]=$(($(oks "$j") + $1))
  done
  for j in "${!WRITERS[@]}"; do
    for ((i = 0; i < 2400; i++)); do
      (($(oks "$j") >= want[$j])) && break
      kill -0 "${WRITERS[$j]}" 2>/dev/null ||
        fail "the writer of ${j##*/} ended $2: $(tail -1 "$j.out"); first failure: $(grep -m1 '^err ' "$j")"
      sleep 0.05
    done
    (($(oks "$j") >= want[$j])) ||
      fail "the writer of ${j##*/} is stuck $2: $(oks "$j") files acknowledged; $(tail -3 "$j")"
  done
}

# ------------------------------------------------------------------ 1. restarts under writers
fs_mount "$M" --redis "$URL" --prefix "$P"
fs_mount "$MU" --redis "unix://${SRV_SOCK[s]}" --prefix "$P"
mkdir "$M/tcp" "$M/unix"
python3 "$W" write "$M/tcp" "$T/journal.tcp" "$STOP" >"$T/journal.tcp.out" 2>&1 &
WRITERS[$T/journal.tcp]=$!
python3 "$W" write "$MU/unix" "$T/journal.unix" "$STOP" >"$T/journal.unix.out" 2>&1 &
WRITERS[$T/journal.unix]=$!
wait_progress 10 "before any outage"

note "restart 1: SIGKILL, down 1 s"
stop_server s kill
sleep 1
start_server_again s
wait_progress 10 "after restart 1"

note "restart 2: SIGKILL, at once"
restart_redis s kill
wait_progress 10 "after restart 2"

note "restart 3: SIGKILL, then LOADING for about 2 s"
prepare_loading s 2
wait_progress 3 "during the AOF rewrite"
restart_loading s kill
((LOADING_SEEN == 1)) || fail "the restarted server was not LOADING (INFO loading:1 not seen)"
n=$(($(oks "$T/journal.tcp") + $(oks "$T/journal.unix")))
wait_loaded s
note "server loaded; the writers acknowledged $(($(oks "$T/journal.tcp") + $(oks "$T/journal.unix") - n)) file(s) while it was LOADING"
wait_progress 10 "after the LOADING restart"

touch "$STOP"
errors=
for j in "$T/journal.tcp" "$T/journal.unix"; do
  wait "${WRITERS[$j]}" || fail "the writer of ${j##*/} exited with $?: $(cat "$j.out")"
  echo "${j##*.}: $(cat "$j.out")"
  if grep -q '^err ' "$j"; then
    errors+="${j##*.}: $(grep -c '^err ' "$j") failed call(s), e.g.: $(grep '^err ' "$j" | head -3 | tr '\n' '|') "
  fi
done
[[ -z $errors ]] || fail "the writers saw errors through the restarts: $errors"
fs_unmount "$MU"
fs_unmount "$M"

# every acknowledged file, read back through a new mount
fs_mount "$M" --redis "$URL" --prefix "$P" --read-only
python3 "$W" verify "$M/tcp" "$T/journal.tcp" || fail "acknowledged files (TCP mount) were lost or changed"
python3 "$W" verify "$M/unix" "$T/journal.unix" || fail "acknowledged files (unix socket mount) were lost or changed"
fs_unmount "$M"
"$REDISFS_SNAP_BIN" --redis "$URL" fsck "$P" || fail "fsck after the restarts"

# ------------------------------------------------------------------ 2. an outage longer than --timeout
fs_mount "$M" --redis "$URL" --prefix "$P" --timeout 3
LOG=${MOUNT_LOGS[$M]}
echo before >"$M/before-outage"
sync
lines=$(wc -l <"$LOG")
note "server down for about 8 s under a mount with --timeout 3"
t0=$(date +%s.%N)
stop_server s kill
python3 "$W" probe "$M" down >"$T/probe.out" 2>&1 || fail "probe: $(cat "$T/probe.out")"
elapsed=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$(date +%s.%N)")
rest=$(python3 -c "print(max(0.0, 8 - $elapsed))")
sleep "$rest"
start_server_again s
sed 's/^/-- probe while down: /' "$T/probe.out"
while read -r call err secs; do
  ((err != 0)) || fail "$call succeeded while the server was down"
  ((err == 5)) || fail "$call failed with errno $err, want EIO (5), after $secs s"
done <"$T/probe.out"
sleep 0.3
new_log=$(tail -n +$((lines + 1)) "$LOG")
# a line for the calls that failed (EIO), not just any complaint about the server
FAILED_RE='Input/output|EIO|timeout|timed out|gave up'
grep -Eiq "$FAILED_RE" <<<"$new_log" || fail "the daemon logged nothing about the failed calls: $new_log"
note "daemon log: $(grep -Ei -m1 "$FAILED_RE" <<<"$new_log")"

# the server is back: new calls work on the same mount
python3 "$W" probe "$M" back >"$T/probe.out" 2>&1 || fail "probe: $(cat "$T/probe.out")"
sed 's/^/-- probe after: /' "$T/probe.out"
read -r call err secs < <(grep '^create ' "$T/probe.out")
((err == 0)) || fail "after the server came back, creating a file failed with errno $err"
read -r call err secs < <(grep '^stat ' "$T/probe.out")
((err == 2)) || fail "after the server came back, stat of a missing name gave errno $err, want ENOENT (2)"
[[ $(cat "$M/before-outage") == before && $(cat "$M/probe-new-back") == probe ]] || fail "reads after the outage"
new_log=$(tail -n +$((lines + 1)) "$LOG")
grep -q "warning: calls wait for the server, each up to 3 s (--timeout): redis: " <<<"$new_log" ||
  fail "the daemon did not log that calls wait for the server: $new_log"
grep -q "redisfs: the server answers again, [0-9.]* s after the first call that waited for it$" <<<"$new_log" ||
  fail "the daemon did not log that the server answers again: $new_log"
fs_unmount "$M"
"$REDISFS_SNAP_BIN" --redis "$URL" fsck "$P" || fail "fsck after the long outage"
note "calls failed with EIO during the long outage and work again after it"

# ------------------------------------------------------------------ 3. closes the restart lost
# The server comes back from its AOF as it was before two closes it had
# acknowledged: a plain file's (its open count is back) and the last
# close of an orphan (the unlinked file is back, held by this mount).
fs_mount "$M" --redis "$URL" --prefix "$P"
LOG=${MOUNT_LOGS[$M]}
echo held >"$M/held"
echo orphan >"$M/orphan"
held=$(stat -c %i "$M/held")
orphan=$(stat -c %i "$M/orphan")
exec 7<"$M/held" 8<"$M/orphan"
rm "$M/orphan"
[[ $(rcli s hlen "$P:OPEN:$held") == 1 && $(rcli s hexists "$P:ORPHANS" "$orphan") == 1 ]] ||
  fail "no open count for the held file (inode $held), or the orphan (inode $orphan) is not one"
AOF=${SRV_DIR[s]}/appendonlydir
rm -rf "$T/aof-before"
cp -a "$AOF" "$T/aof-before"
exec 7<&- 8<&-
for ((i = 0; i < 200; i++)); do
  [[ $(rcli s exists "$P:OPEN:$held" "$P:INODE:$orphan") == 0 ]] && break
  sleep 0.05
done
[[ $(rcli s exists "$P:OPEN:$held" "$P:INODE:$orphan") == 0 ]] || fail "the closes did not reach the server"
stop_server s kill
rm -rf "$AOF"
cp -a "$T/aof-before" "$AOF"
start_server_again s
[[ $(rcli s exists "$P:OPEN:$held" "$P:INODE:$orphan") == 2 ]] || fail "the restart did not bring back the state before the closes"
fs_unmount "$M"
grep -q "the server changed during the mount" "$LOG" || fail "the daemon did not see the restart: $(tail -5 "$LOG")"
[[ $(rcli s exists "$P:OPEN:$held" "$P:OPEN:$orphan" "$P:INODE:$orphan") == 0 ]] ||
  fail "what the restart brought back outlived the unmount (OPEN of $held, OPEN and INODE of $orphan)"
[[ $(rcli s hexists "$P:ORPHANS" "$orphan") == 0 ]] || fail "the orphan is still listed in ORPHANS"
"$REDISFS_SNAP_BIN" --redis "$URL" fsck "$P" || fail "fsck after closes the restart lost"
note "closes lost with a restart: the unmount removed the open count and freed the orphan"

# ------------------------------------------------------------------ 4. an open the restart lost
# The server comes back from its AOF as it was before an open it had
# acknowledged. The file's data was written through the other mount, so
# what this one reads after the unlink comes from the server, not from its
# page cache.
fs_mount "$M" --redis "$URL" --prefix "$P"
fs_mount "$MU" --redis "unix://${SRV_SOCK[s]}" --prefix "$P"
LOG=${MOUNT_LOGS[$M]}
head -c 300000 /dev/urandom >"$T/kept.data"
cp "$T/kept.data" "$MU/kept"
kept=$(stat -c %i "$MU/kept")
for ((i = 0; i < 200; i++)); do
  [[ $(rcli s exists "$P:OPEN:$kept") == 0 ]] && break
  sleep 0.05
done
[[ $(rcli s exists "$P:OPEN:$kept") == 0 ]] || fail "the writer's close did not reach the server"
rm -rf "$T/aof-before"
cp -a "$AOF" "$T/aof-before"
exec 9<"$M/kept"
[[ $(rcli s hlen "$P:OPEN:$kept") == 1 ]] || fail "no open count for the file held open (inode $kept)"
stop_server s kill
rm -rf "$AOF"
cp -a "$T/aof-before" "$AOF"
start_server_again s 9<&-  # (a server that inherited the open file would hold it past its close)
# (The mount may count it again at once, as the server comes up: the log
# line says the restart had lost it, a count the server lacked.)
COUNTED_AGAIN="it counts again the 1 open file this mount holds (the server lacked 1 of the counts: opens it lost with the restart, or had not yet recorded)"
for ((i = 0; i < 400; i++)); do
  grep -qF "$COUNTED_AGAIN" "$LOG" && break
  sleep 0.05
done
grep -qF "$COUNTED_AGAIN" "$LOG" ||
  fail "the mount did not count again, within 20 s of the restart, the open the restart lost: $(tail -5 "$LOG")"
[[ $(rcli s hlen "$P:OPEN:$kept") == 1 ]] || fail "no open count for the file held open after the restart"
rm "$MU/kept"
[[ $(rcli s hexists "$P:ORPHANS" "$kept") == 1 ]] || fail "the other mount's unlink did not leave the held file an orphan"
cmp - "$T/kept.data" <&9 || fail "the file held open is not whole after another mount's unlink"
exec 9<&-
for ((i = 0; i < 200; i++)); do
  [[ $(rcli s exists "$P:INODE:$kept" "$P:OPEN:$kept") == 0 ]] && break
  sleep 0.05
done
[[ $(rcli s exists "$P:INODE:$kept" "$P:OPEN:$kept") == 0 ]] ||
  fail "the close did not free the orphan: OPEN $(rcli s hgetall "$P:OPEN:$kept" | tr '\n' ' '), INODE nlink $(rcli s hget "$P:INODE:$kept" nlink), ORPHANS $(rcli s hget "$P:ORPHANS" "$kept"); $(tail -5 "$LOG")"
fs_unmount "$MU"
fs_unmount "$M"
"$REDISFS_SNAP_BIN" --redis "$URL" fsck "$P" || fail "fsck after the open the restart lost"
note "an open lost with a restart: counted again, the file outlived another mount's unlink until its close"

# ------------------------------------------------------------------ 5. a pipeline's replies lost
start_reply_proxy s "$T/arm"
LOST_RE="reply was lost|reply lost|Input/output error"
# arm EXPR: the proxy loses the replies of the pipeline whose last EVALSHA
# matches EXPR (and closes the connection).
arm() {
  rm -f "$T/arm.fired"
  echo -n "EVALSHA $1" >"$T/arm"
}
fired() {
  [[ -e $T/arm.fired ]] || fail "the proxy lost no reply ($1)"
}

fs_mount "$M" --redis "redis://127.0.0.1:$PROXY_PORT" --prefix "$P"
LOG=${MOUNT_LOGS[$M]}
arm 'lost-pipeline-data'
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
os.fchmod(fd, 0o600)  # (held by the mount until the data goes, at the close)
os.write(fd, b"lost-pipeline-data")
os.close(fd)' "$M/chmodded" ||
  fail "the close whose pipeline lost its replies failed (a new file, chmodded and written while open)"
fired "of a close"
fs_unmount "$M"
! grep -Ei "$LOST_RE" "$LOG" || fail "a change of the close's pipeline failed: $(grep -Ei -m1 "$LOST_RE" "$LOG")"
fs_mount "$M" --redis "$URL" --prefix "$P"
[[ $(stat -c %a "$M/chmodded") == 600 && $(cat "$M/chmodded") == lost-pipeline-data ]] ||
  fail "the file whose close lost its pipeline's replies is $(stat -c %a "$M/chmodded") '$(cat "$M/chmodded")'"
fs_unmount "$M"

fs_mount "$M" --redis "redis://127.0.0.1:$PROXY_PORT" --prefix "$P" -o writeback
LOG=${MOUNT_LOGS[$M]}
mkdir "$M/lost-rmdir"
for i in 1 2 3 4 5 6; do
  echo "$i" >"$M/lost-rmdir/$i"
done
sync -f "$M"
# (the server sleeps while the first unlink is on its way: the others and
# the rmdir wait for it, then go in one pipeline)
arm 'lost-rmdir'
rcli s debug sleep 1 >/dev/null &
sleep 0.2
rm "$M/lost-rmdir/"*
rmdir "$M/lost-rmdir"
wait $!
python3 -c 'import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDONLY))' "$M" ||
  fail "fsync of the directory whose removals lost their replies failed"
fired "of removals sent behind"
fs_unmount "$M"
! grep -Ei "$LOST_RE" "$LOG" || fail "a removal of the pipeline failed: $(grep -Ei -m1 "$LOST_RE" "$LOG")"
[[ $(rcli s hexists "$P:DIR:1" lost-rmdir) == 0 ]] || fail "the removed directory is still listed"
"$REDISFS_SNAP_BIN" --redis "$URL" fsck "$P" || fail "fsck after the pipelines whose replies were lost"
stop_reply_proxy
note "pipelines whose replies were lost: each change's outcome read back from its own record"

# ------------------------------------------------------------------ 6. a server at its limit of clients
fs_mount "$M" --redis "$URL" --prefix "$P"
LOG=${MOUNT_LOGS[$M]}
echo before >"$M/before-full"
lines=$(wc -l <"$LOG")
# Three clients hold the server (BLPOP of 6 s; the last then lifts the
# limit, on the connection it holds), the limit is set to them, and the
# mount's connections are closed.
holders=()
for i in 1 2; do
  rcli s blpop "$P:none" 6 >/dev/null 2>&1 &
  holders+=($!)
done
printf 'BLPOP %s 6\nCONFIG SET maxclients 10000\n' "$P:none" | rcli s >/dev/null 2>&1 &
holders+=($!)
for ((i = 0; i < 100; i++)); do
  (($(rcli s client list | grep -c 'cmd=blpop') == 3)) && break
  sleep 0.02
done
(($(rcli s client list | grep -c 'cmd=blpop') == 3)) || fail "the three clients holding the server did not all connect"
ids=$(rcli s client list | awk '/ name=redisfs:/ { sub("id=", "", $1); print $1 }')
[[ -n $ids ]] || fail "the mount holds no connection to close"
{
  echo "CONFIG SET maxclients 3"
  for id in $ids; do echo "CLIENT KILL ID $id"; done
} | rcli s >/dev/null
rc=0
out=$("$REDISFS_SNAP_BIN" --redis "$URL" list 2>&1) || rc=$?
((rc == 1)) || fail "list on a full server exited $rc: $out"
[[ $out == *"ERR max number of clients reached"* ]] || fail "list on a full server does not say why it failed: $out"
t0=$EPOCHREALTIME
echo after >"$M/after-full" || fail "a write on a full server failed"
note "a write on a server full for about 6 s took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
wait "${holders[@]}"
[[ $(cat "$M/after-full") == after ]] || fail "the write on a full server reads back as $(cat "$M/after-full")"
new_log=$(tail -n +$((lines + 1)) "$LOG")
grep -q "warning: calls wait for the server, each up to 30 s (--timeout): redis: .*ERR max number of clients reached" \
  <<<"$new_log" || fail "the daemon did not log why calls wait: $new_log"
grep -q "redisfs: the server answers again" <<<"$new_log" || fail "the daemon did not log that the server answers again: $new_log"
fs_unmount "$M"
[[ $(rcli s config get maxclients | tail -1) == 10000 ]] || fail "the server's limit of clients was not lifted"
note "a server at its limit of clients: calls wait, the daemon says why, and they succeed"
