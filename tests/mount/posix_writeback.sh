#!/usr/bin/env bash
# posix_writeback: the POSIX parity suite (posix_parity.py, as basic.sh
# runs it) on a -o writeback mount: the kernel's writeback cache, long
# attribute and entry timeouts and the writeback mount's close must not
# change what any call returns. The keys left behind must then form a
# consistent filesystem, before and after the unmount.
. "$(dirname "$0")/lib.sh"

mount_fs -o writeback,allow_other
python3 "$HERE/posix_parity.py" "$MNT"
sync -f "$MNT"
check_consistency
unmount_fs
check_consistency --no-orphans
