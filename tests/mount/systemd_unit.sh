#!/usr/bin/env bash
# systemd_unit: the redisfs@.service that `cmake --install` puts in
# lib/systemd/system is valid (systemd-analyze verify of an instance says
# nothing, when the machine has systemd-analyze), names the installed
# binary, and its ExecStart, run as systemd would (the instance's
# environment file read, %f the mount point, NOTIFY_SOCKET set), mounts,
# tells systemd READY=1 once the mount serves, and on SIGTERM (systemctl
# stop) says STOPPING=1, unmounts and exits 0.
. "$(dirname "$0")/lib.sh"

install_to "$T/root"
unit=$T/root/lib/systemd/system/redisfs@.service
[[ -f $unit && -f $T/root/lib/systemd/user/redisfs@.service ]] || fail "no unit installed"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[[ $exec_start == "$T/root/bin/redisfs "* ]] || fail "ExecStart does not name the installed binary: $exec_start"
grep -qx "Type=notify" "$unit" || fail "the unit is not Type=notify"
# (the environment file: %E is /etc for the system's unit and
# ~/.config for a user's, redisfs(1); the user unit is the same file)
grep -qx 'EnvironmentFile=-%E/redisfs/%i.conf' "$unit" || fail "the unit reads no %E/redisfs/%i.conf: $(grep Environment "$unit")"
cmp -s "$unit" "$T/root/lib/systemd/user/redisfs@.service" || fail "the user unit is not the system's"

if command -v systemd-analyze >/dev/null; then
  instance=$(systemd-escape -p "$MNT")
  mkdir -p "$T/units"
  cp "$unit" "$T/units/redisfs@$instance.service"
  out=$(systemd-analyze verify --man=no "$T/units/redisfs@$instance.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
  [[ -z $out ]] || fail "systemd-analyze verify complains: $out"
  note "systemd-analyze verify redisfs@$instance.service: clean"
else
  note "no systemd-analyze here: the unit is checked by running its ExecStart only"
fi

# The instance's environment file, as the unit's comment shows it (quoted:
# systemd and bash both read it).
cat >"$T/instance.conf" <<CONF
REDISFS_URL=unix://$SOCK
REDISFS_PREFIX=$PREFIX
REDISFS_OPTIONS="--timeout 10 -o noatime"
CONF
# A stand-in for systemd's notify socket: it records each datagram, and
# gives up by itself after 120 s without one (a case that failed early).
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        log.write(msg + "\n")
        if "STOPPING=1" in msg:
            break
PY
listener=$!
for ((i = 0; i < 100; i++)); do [[ -S $T/notify.sock ]] && break; sleep 0.05; done
command=${exec_start//%f/$MNT}
(
  set -a
  . "$T/instance.conf"
  set +a
  export NOTIFY_SOCKET=$T/notify.sock
  # shellcheck disable=SC2086  # systemd splits $REDISFS_OPTIONS on blanks too
  eval "exec $command"
) >"$T/unit.out" 2>&1 </dev/null &
pid=$!
MOUNT_PIDS[$MNT]=$pid
MOUNT_LOGS[$MNT]=$T/unit.out
for ((i = 0; i < 400; i++)); do
  grep -q READY=1 "$T/notify.log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || fail "ExecStart exited: $(cat "$T/unit.out")"
  sleep 0.05
done
grep -q READY=1 "$T/notify.log" || fail "no READY=1 from ExecStart: $(cat "$T/unit.out")"
is_mounted "$MNT" || fail "READY=1 before the mount"
grep -q "^redisfs:$PREFIX $MNT .*noatime" /proc/self/mounts || fail "the unit's options did not reach the mount: $(grep "$MNT" /proc/self/mounts)"
echo via-unit >"$MNT/f"
kill -TERM "$pid"
wait_gone "$pid" 30 || fail "SIGTERM did not stop the daemon"
rc=0
wait "$pid" || rc=$?
unset "MOUNT_PIDS[$MNT]"
((rc == 0)) || fail "the daemon exited $rc after SIGTERM: $(cat "$T/unit.out")"
! is_mounted "$MNT" || fail "still mounted after SIGTERM"
wait_gone "$listener" 10 || fail "no STOPPING=1: $(cat "$T/notify.log")"
note "ExecStart: $command; notify: $(tr '\n' ' ' <"$T/notify.log")"
mount_fs
[[ $(cat "$MNT/f") == via-unit ]] || fail "the unit's mount wrote nowhere"
unmount_fs
