#!/usr/bin/env bash
# basic: the POSIX parity suite. posix_parity.py makes every call on the
# mount and on a native directory and fails on any errno or stat mismatch;
# allow_other lets its forked children (other uids) reach the mount. The
# keys left behind must then form a consistent filesystem.
. "$(dirname "$0")/lib.sh"

mount_fs -o allow_other
python3 "$HERE/posix_parity.py" "$MNT"
check_consistency
unmount_fs
check_consistency --no-orphans
