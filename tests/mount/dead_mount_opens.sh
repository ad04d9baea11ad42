#!/usr/bin/env bash
# dead_mount_opens: what a mount killed with files open leaves on the server
# (its open counts, <prefix>:OPEN:<n>, and the orphans it held) is cleared
# by a mount that stays alive, with its heartbeat, once the dead mount's
# session has expired; not only by a mount started later. And the last
# close of an unlinked file frees it, whichever mount unlinked it.
. "$(dirname "$0")/lib.sh"

A=$T/a
B=$T/b
mount_at "$A"
mount_at "$B"
a_pid=${MOUNT_PIDS[$A]}
b_pid=${MOUNT_PIDS[$B]}

# the session key of the mount whose daemon is PID
session_of() {
  local k
  for k in $(fs_keys 'MOUNT:*'); do
    [[ $(rcli get "$k") == *" pid $1 "* ]] && { echo "$k"; return 0; }
  done
  return 1
}

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds
wait_until() {
  local limit=$1 i
  shift
  for ((i = 0; i < limit * 10; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
no_key() { [[ $(rcli exists "$1") == 0 ]]; }

# --- the last close frees it, whichever mount unlinked it
head -c 360000 /dev/urandom >"$A/u"
ino=$(stat -c %i "$A/u")
# A's kernel keeps the inode (an O_PATH descriptor: no open reaches the
# daemon, so A never purges it while it lasts); B holds it open
python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_PATH)
sys.stdout.write("ready\n"); sys.stdout.flush()
time.sleep(60)
' "$A/u" >"$T/opath.out" 2>&1 </dev/null &
opath=$!
wait_until 5 grep -q ready "$T/opath.out" || fail "the O_PATH holder did not start"
exec 3<"$B/u"
rm "$A/u"
[[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 1 ]] || fail "u is not an orphan after its unlink"
exec 3<&-
wait_until 5 no_key "$PREFIX:INODE:$ino" || fail "B's last close did not free the orphan A unlinked: $(rcli hgetall "$PREFIX:ORPHANS" | tr '\n' ' ')"
kill "$opath" 2>/dev/null || true
wait "$opath" 2>/dev/null || true

# --- B is killed holding two files open, one of them unlinked by A
echo kept >"$A/kept"
head -c 200000 /dev/urandom >"$A/gone"
kept=$(stat -c %i "$A/kept")
gone=$(stat -c %i "$A/gone")
exec 4<"$B/kept" 5<"$B/gone"
rm "$A/gone"
wait_until 5 no_key "$PREFIX:OPEN:$kept" && fail "B's open of kept is not counted"
b_session=$(session_of "$b_pid") || fail "no session key of B: $(fs_keys 'MOUNT:*')"
a_session=$(session_of "$a_pid") || fail "no session key of A"
kill_daemon "$B"
exec 4<&- 5<&-
[[ $(rcli exists "$PREFIX:OPEN:$kept") == 1 ]] || fail "B's open count went away with B (nothing to test)"
# B's session expires (30 s without a heartbeat; here at once); A, alive
# all along, clears what B left at one of its next heartbeats
rcli pexpire "$b_session" 1 >/dev/null
wait_until 5 no_key "$b_session" || fail "B's session key does not expire"
wait_until 25 no_key "$PREFIX:OPEN:$kept" || fail "A did not clear B's open count: $(rcli hgetall "$PREFIX:OPEN:$kept" | tr '\n' ' ')"
wait_until 5 no_key "$PREFIX:INODE:$gone" || fail "A did not free the orphan B held"
[[ $(rcli exists "$a_session") == 1 ]] || fail "A's session is gone"
grep -q "cleared what dead mounts left" "${MOUNT_LOGS[$A]}" || fail "A did not log what it cleared"
[[ $(cat "$A/kept") == kept ]] || fail "kept is damaged"
unmount_fs "$A"
check_consistency --no-orphans --no-opens
