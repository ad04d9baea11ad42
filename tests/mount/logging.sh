#!/usr/bin/env bash
# logging: where the daemon's log goes, and what it keeps.
#   - --log-file FILE: the mount line, a provoked failure (a write into a
#     full server: ENOSPC) and the unmount line land in FILE, stamped with
#     the time, pid and level; the daemon's last word on the terminal names
#     FILE;
#   - without --log-file a daemon says its log goes to syslog;
#   - -f logs to stderr (and to FILE as well when one is given);
#   - --log-level / -o log_level= drop the lines below the level: warning
#     keeps warnings but not the info mount line, debug adds debug lines
#     without -d; -d (in the foreground) adds every FUSE request, the
#     routine errors and the statistics at unmount;
#   - a log file that cannot be opened is one line and exit 1; a level
#     that does not exist is exit 2.
. "$(dirname "$0")/lib.sh"

R=(--redis "unix://$SOCK" --prefix "$PREFIX")

mount_daemon_at "$MNT" "${R[@]}" --log-file "$T/a.log"
out=$(cat "${MOUNT_LOGS[$MNT]}")
[[ $out == *"mounted $PREFIX on $MNT; log: $T/a.log"* ]] || fail "the terminal was not told where the log goes: $out"
mode=$(printf '%o' $((0640 & ~0$(umask))))  # (0640 less this shell's umask, which the daemon inherits)
[[ $(stat -c %a "$T/a.log") == "$mode" ]] || fail "--log-file made $T/a.log with mode $(stat -c %a "$T/a.log"), not $mode"
# has_line FILE REGEX: the daemon writes its mount line as it starts
# serving, after the mount point appears: wait up to 10 s for it.
has_line() {
  local i
  for ((i = 0; i < 100; i++)); do
    grep -Eq "$2" "$1" && return 0
    sleep 0.1
  done
  return 1
}
has_line "$T/a.log" "^[0-9-]{10}T[0-9:.]{12}Z redisfs\[$DAEMON_PID\]: info: mounted $PREFIX on $MNT$" ||
  fail "no mount line in the log file: $(cat "$T/a.log")"
# a failure: the server is full (noeviction is the default policy)
used=$(rcli info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
rcli config set maxmemory $((used - 1024 * 1024)) >/dev/null
out=$(dd if=/dev/zero of="$MNT/big" bs=64k count=64 oflag=sync 2>&1) && fail "a write into a full server succeeded"
rcli config set maxmemory 0 >/dev/null
grep -q "warning: .*No space left on device" "$T/a.log" || fail "the ENOSPC is not in the log file: $(cat "$T/a.log")"
rm -f "$MNT/big"
unmount_fs
grep -q "info: unmounted $MNT" "$T/a.log" || fail "no unmount line in the log file: $(cat "$T/a.log")"
note "log file: $(wc -l <"$T/a.log") lines; $(grep -m1 'No space' "$T/a.log")"

mount_daemon_at "$MNT" "${R[@]}"
[[ $(cat "${MOUNT_LOGS[$MNT]}") == *"; log: syslog"* ]] || fail "a daemon without --log-file does not say syslog: $(cat "${MOUNT_LOGS[$MNT]}")"
unmount_fs

# -f: stderr, and the file too
mount_fs --log-file "$T/f.log"
has_line "${MOUNT_LOGS[$MNT]}" "^redisfs: mounted $PREFIX on $MNT" || fail "-f does not log to stderr: $(cat "${MOUNT_LOGS[$MNT]}")"
has_line "$T/f.log" "info: mounted $PREFIX on $MNT" || fail "-f --log-file: no mount line in the file"
unmount_fs

# levels (the server has no persistence: a warning at every mount)
mount_daemon_at "$MNT" "${R[@]}" -o "log_file=$T/w.log,log_level=warning"
unmount_fs
grep -q "warning: .*no persistence" "$T/w.log" || fail "log_level=warning dropped a warning: $(cat "$T/w.log")"
! grep -q "info: \|debug: " "$T/w.log" || fail "log_level=warning kept info or debug lines: $(cat "$T/w.log")"
mount_daemon_at "$MNT" "${R[@]}" --log-file "$T/d.log" --log-level debug
ls "$MNT" >/dev/null
unmount_fs
grep -q "debug: fuse options: " "$T/d.log" || fail "--log-level debug has no debug line: $(cat "$T/d.log")"
! grep -q "debug: " "$T/a.log" || fail "the default level kept debug lines"
# -d: in the foreground, every FUSE request, the routine errors (ENODATA
# of an attribute that is not there), and the statistics at unmount
start_daemon 20 "$MNT" "${R[@]}" -d
touch "$MNT/d-file"
getfattr -n user.none "$MNT/d-file" >/dev/null 2>&1 || true
unmount_fs
dlog=${MOUNT_LOGS[$MNT]}
grep -q 'debug: unique: [0-9]*, opcode: CREATE' "$dlog" || fail "-d shows no FUSE request: $(head -5 "$dlog")"
grep -q 'debug: getxattr ino=[0-9]* name="user.none": No data available' "$dlog" ||
  fail "-d does not log a routine error: $(grep -v unique: "$dlog" | tail -5)"
grep -q 'debug: stats: [0-9]* requests in ' "$dlog" || fail "-d logs no statistics at unmount: $(tail -3 "$dlog")"

# errors
rc=0
out=$("$REDISFS_BIN" "${R[@]}" --log-file "$T/no/such/dir/x.log" "$MNT" 2>&1) || rc=$?
((rc == 1)) && [[ $out == "redisfs: --log-file $T/no/such/dir/x.log: No such file or directory" ]] ||
  fail "an unwritable log file: exit $rc: $out"
! is_mounted "$MNT" || fail "mounted despite the log file error"
rc=0
out=$("$REDISFS_BIN" "${R[@]}" --log-level chatty "$MNT" 2>&1) || rc=$?
((rc == 2)) && [[ $out == "redisfs: --log-level: 'chatty' is not one of error, warning, info, debug" ]] ||
  fail "a bad level: exit $rc: $out"
