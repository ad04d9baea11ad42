#!/usr/bin/env bash
# killpriv: FUSE_HANDLE_KILLPRIV_V2 (fs/killpriv.hpp). The filesystem, not
# the kernel, drops a file's privileges, by the kernel's rules, on the
# server and as this mount sees it, in the default mode and -o writeback:
#   - a write by a caller without CAP_FSETID (here: uid 65534) drops
#     setuid, and setgid only of a group-executable file; root's keeps them;
#   - so do a truncate and an O_TRUNC open by such a caller;
#   - a chown of a non-directory drops them whoever asks (root too), a
#     chown of a directory keeps its setgid;
#   - security.capability is gone after a write, a truncate, a chown;
#   - and the kernel no longer asks for security.capability before every
#     write(2): 20 writes make at most one GETXATTR (the first; the daemon's
#     counters), a new file's as an existing one's (main's binary: 20).
. "$(dirname "$0")/lib.sh"
need_tools setpriv setcap getcap truncate

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
mode_of() { stat -c %a "$1"; }
server_mode() { rcli HGET "$PREFIX:INODE:$(stat -c %i "$1")" mode; }
# expect FILE MODE WHAT: this mount and the server show MODE (octal, as stat %a)
expect() {
  local seen server
  seen=$(mode_of "$1")
  server=$(server_mode "$1")
  [[ $seen == "$2" ]] || fail "$3: mode $seen here, expected $2"
  ((8#$server == 8#$2)) || fail "$3: mode $server on the server, expected $2"
}
fresh() {  # fresh NAME MODE: a file with some bytes and that mode
  printf 'data\n' >"$MNT/$1"
  chmod "$2" "$MNT/$1"
}
write_as_nobody() { as_nobody sh -c 'printf more >>"$1"' sh "$1"; }

privilege_cases() {
  local label=$1
  fresh suid 4777
  write_as_nobody "$MNT/suid"
  expect "$MNT/suid" 777 "$label: a write by uid 65534 of a 4777 file"
  fresh sgid_x 2777
  write_as_nobody "$MNT/sgid_x"
  expect "$MNT/sgid_x" 777 "$label: a write by uid 65534 of a 2777 file (group-executable)"
  fresh sgid_nox 2666
  write_as_nobody "$MNT/sgid_nox"
  expect "$MNT/sgid_nox" 2666 "$label: a write by uid 65534 of a 2666 file (setgid without group execute stays)"
  fresh both 6777
  write_as_nobody "$MNT/both"
  expect "$MNT/both" 777 "$label: a write by uid 65534 of a 6777 file"
  fresh root_w 6777
  printf more >>"$MNT/root_w"
  expect "$MNT/root_w" 6777 "$label: root's write (CAP_FSETID)"

  fresh trunc 6777
  as_nobody truncate -s 2 "$MNT/trunc"
  expect "$MNT/trunc" 777 "$label: truncate by uid 65534"
  [[ $(stat -c %s "$MNT/trunc") == 2 ]] || fail "$label: truncate by uid 65534 left $(stat -c %s "$MNT/trunc") bytes"
  fresh otrunc 4777
  as_nobody sh -c ': >"$1"' sh "$MNT/otrunc"
  expect "$MNT/otrunc" 777 "$label: an O_TRUNC open by uid 65534"
  fresh root_t 4777
  truncate -s 1 "$MNT/root_t"
  expect "$MNT/root_t" 4777 "$label: root's truncate"

  fresh chowned 6755
  chown 65534 "$MNT/chowned"
  expect "$MNT/chowned" 755 "$label: chown of a 6755 file by root"
  mkdir -p "$MNT/sgid_dir"
  chmod 2755 "$MNT/sgid_dir"
  chown 65534 "$MNT/sgid_dir"
  expect "$MNT/sgid_dir" 2755 "$label: chown of a setgid directory"

  local what
  for what in write truncate chown; do
    fresh "cap_$what" 755
    setcap cap_net_raw+ep "$MNT/cap_$what"
    [[ -n $(getcap "$MNT/cap_$what") ]] || fail "$label: setcap left no capability (nothing checked)"
    case $what in
      write) printf more >>"$MNT/cap_$what" ;;
      truncate) truncate -s 1 "$MNT/cap_$what" ;;
      chown) chown 65534 "$MNT/cap_$what" ;;
    esac
    [[ -z $(getcap "$MNT/cap_$what") ]] || fail "$label: a $what by root left the capability: $(getcap "$MNT/cap_$what")"
    [[ $(rcli HEXISTS "$PREFIX:XATTR:$(stat -c %i "$MNT/cap_$what")" security.capability) == 0 ]] ||
      fail "$label: a $what left security.capability on the server"
  done
}

# getxattrs OP: the GETXATTR requests so far (the daemon's counters)
getxattrs() {
  local n rt
  read -r n rt < <(op_stats "$DAEMON_PID" "${MOUNT_LOGS[$MNT]}" getxattr)
  echo "$n"
}

# 20 writes of one open file, new (gathered) or existing: at most one
# GETXATTR (the kernel asks once, then marks the inode S_NOSEC)
count_cases() {
  local label=$1 kind before after
  printf 'x\n' >"$MNT/$label-existing"
  for kind in new existing; do
    before=$(getxattrs)
    python3 - "$MNT/$label-$kind" "$kind" <<'PY'
import os, sys
flags = os.O_WRONLY | (os.O_CREAT | os.O_EXCL if sys.argv[2] == "new" else 0)
fd = os.open(sys.argv[1], flags, 0o644)
for i in range(20):
    os.pwrite(fd, b"abc", 3 * i)
os.close(fd)
PY
    after=$(getxattrs)
    ((after - before <= 1)) ||
      fail "$label: 20 writes of the $kind file made $((after - before)) GETXATTRs (security.capability before each write?)"
  done
}

mount_fs -o allow_other
count_cases default
privilege_cases default
unmount_fs

mount_fs -o writeback,allow_other
count_cases writeback
privilege_cases writeback
unmount_fs
