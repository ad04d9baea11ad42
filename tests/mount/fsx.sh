#!/usr/bin/env bash
# fsx: file data through every write path, checked byte for byte (fsx.py:
# random writes, reads, truncates, appends, vectored writes, shared mmap,
# copy_file_range, fsync and reopens on three files, against a model). In
# the default mode (a new file's writes held until its close) and with
# --write-through, the writer moves between two mounts of the filesystem
# now and then, and each open must show what the other mount wrote
# (close-to-open); a writeback mount works alone. Small blocks (4K) put
# many block edges under the ops; 64K blocks are the default. Then, after
# unmounting, the server must hold what the model holds: a fresh mount
# reads every file as the model saved it, and the filesystem is
# consistent, nothing left behind.
. "$(dirname "$0")/lib.sh"

base=$PREFIX
run=0
# fsx_case SEED BLOCK MAX_SIZE MOUNTS [redisfs options...]
fsx_case() {
  local seed=$1 block=$2 max=$3 mounts=$4 i
  shift 4
  PREFIX=$base-$((++run))
  local args=(--seed "$seed" --ops 1500 --block "$block" --max-size "$max" --save "$T/model-$run")
  mkdir -p "$T/model-$run"
  for ((i = 0; i < mounts; i++)); do
    # the first mount makes the filesystem, with the block size asked
    mount_at "$T/m$i" --block-size "$block" "$@"
    args+=(--mount "$T/m$i")
  done
  python3 "$HERE/fsx.py" "${args[@]}" || fail "fsx found the file data wrong (seed $seed, ${block}-byte blocks, options: ${*:-none})"
  for ((i = 0; i < mounts; i++)); do
    unmount_fs "$T/m$i"
  done
  check_consistency --no-orphans || fail "inconsistent after fsx (seed $seed, options: ${*:-none})"
  mount_at "$T/m0"
  local f
  for f in "$T/model-$run"/*; do
    cmp "$f" "$T/m0/${f##*/}" || fail "after a remount ${f##*/} is not what was written (seed $seed, options: ${*:-none})"
  done
  unmount_fs "$T/m0"
}

fsx_case 1 4096 262144 2
fsx_case 2 65536 1048576 2
fsx_case 3 4096 262144 2 --write-through
fsx_case 4 4096 262144 1 -o writeback
fsx_case 5 65536 1048576 1 -o writeback
note "every write path read back as written, across mounts and after a remount"
