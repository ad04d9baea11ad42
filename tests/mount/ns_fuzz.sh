#!/usr/bin/env bash
# ns_fuzz: random namespace and metadata operations (ns_fuzz.py: creates,
# mkdir, rmdir, unlink, renames with their flags, links, symlinks, fifos,
# chmod with set-id bits, chown, utimes, xattrs, listings, writes, files
# held open across the rest, odd names; some made as other users, in the
# file's group or not) made both in the mount and in a native directory,
# and every answer, errno or value, must be the same; so must the two
# whole trees, checked as it goes. Every mount is allow_other, for the
# other users. Four modes: the default (the mount's own caches and the
# changes it holds until a close), two mounts of one filesystem taking
# turns (timeouts 0), --write-through with 4 KiB blocks (writes and
# snapshots meet many block edges), and a writeback mount.
#
# In each, but on the writeback mount (whose kernel holds changes back),
# snapshots are taken while the fuzz goes on (copy-on-write: operations
# change what the copy has not reached yet, a test hook slows it): each
# shows the native tree of its instant, and so does a chain of dumps (the
# first full, then each --since the one before) restored up to it. After
# unmounting, the filesystem is consistent with nothing left behind (and
# fsck agrees); a snapshot of it and a dump restored show the native tree;
# a fresh mount goes on agreeing with the native directory, and the
# snapshot still shows the old tree after that. Last the filesystem is
# rolled back to the snapshot (the state replaced is kept, and shows the
# later tree), and a mount goes on answering as a copy of the native tree
# of the snapshot's instant does.
#   NS_FUZZ_SEED=N NS_FUZZ_OPS=N: other seeds, more operations (campaigns).
. "$(dirname "$0")/lib.sh"
need_snap -q

seed0=${NS_FUZZ_SEED:-1}
ops=${NS_FUZZ_OPS:-1500}
base=$PREFIX
run=0
live=0
# fuzz_case SEED MOUNTS [redisfs options...]
fuzz_case() {
  local seed=$1 mounts=$2 i what
  shift 2
  what="seed $seed, $mounts mount(s), options: ${*:-none}"
  PREFIX=$base-$((++run))
  local native=$T/native-$run args=()
  mkdir "$native"
  for ((i = 0; i < mounts; i++)); do
    mount_at "$T/m$i" -o allow_other "$@"
    args+=(--mount "$T/m$i")
  done
  if [[ $* != *writeback* ]]; then
    # live snapshots: what the mount answered is on the server (not so
    # on a writeback mount, whose kernel holds changes back)
    mkdir "$T/snaps"
    args+=(--snap-every 400 --redis-socket "$SOCK" --prefix "$PREFIX" --snap-dir "$T/snaps"
      --snap-cmd "env REDISFS_FAULT=copy-staging-slow $REDISFS_SNAP_BIN -q --redis unix://$SOCK copy $PREFIX $PREFIX-l{n}")
  fi
  python3 "$HERE/ns_fuzz.py" --others --seed "$seed" --ops "$ops" --native "$native" "${args[@]}" ||
    fail "the mount answered otherwise than a native directory ($what)"
  for ((i = 0; i < mounts; i++)); do
    unmount_fs "$T/m$i"
  done
  check_consistency --no-orphans || fail "inconsistent after the fuzz ($what)"
  snap fsck "$PREFIX" >"$T/fsck" 2>&1 || fail "fsck finds damage after the fuzz ($what): $(cat "$T/fsck")"
  local since=
  for ((i = 0; i < ops / 400; i++)); do
    [[ -d $T/snaps/native-$i ]] || continue  # (not begun: a file was held open)
    shows_native "$PREFIX-l$i" "$T/snaps/native-$i" "snapshot $i, taken while the fuzz went on ($what)"
    ((++live))
    # the chain of backups: a full dump of the first, then what changed
    snap dump "$PREFIX-l$i" ${since:+--since "$since"} -o "$T/chain.json"
    snap restore "$T/chain.json" --prefix "$PREFIX-c"
    shows_native "$PREFIX-c" "$T/snaps/native-$i" "the chain restored up to snapshot $i ($what)"
    since=$PREFIX-l$i
  done
  rm -rf "$T/snaps"
  cp -a "$native" "$T/at-snapshot"
  snap copy "$PREFIX" "$PREFIX-s"
  snap dump "$PREFIX" -o "$T/dump.json"
  snap restore "$T/dump.json" --prefix "$PREFIX-r"
  shows_native "$PREFIX-r" "$native" "restored from a dump ($what)"
  mount_at "$T/m0" -o allow_other
  python3 "$HERE/ns_fuzz.py" --others --seed $((seed + 7919)) --ops $((ops / 3)) --native "$native" --mount "$T/m0" ||
    fail "after a remount the mount answered otherwise than a native directory ($what)"
  unmount_fs "$T/m0"
  check_consistency --no-orphans || fail "inconsistent after the fuzz and a remount ($what)"
  shows_native "$PREFIX-s" "$T/at-snapshot" "a snapshot, after the filesystem changed ($what)"
  # rolled back to that snapshot: its tree, the one replaced kept aside,
  # and a mount goes on answering as the native copy of the snapshot does
  snap rollback "$PREFIX" "$PREFIX-s" --keep-as "$PREFIX-before" >/dev/null
  shows_native "$PREFIX-before" "$native" "the state a rollback replaced ($what)"
  mount_at "$T/m0" -o allow_other
  python3 "$HERE/ns_fuzz.py" --others --seed $((seed + 104729)) --ops $((ops / 5)) --native "$T/at-snapshot" \
    --mount "$T/m0" || fail "after a rollback the mount answered otherwise than a native directory ($what)"
  unmount_fs "$T/m0"
  check_consistency --no-orphans || fail "inconsistent after a rollback and more fuzz ($what)"
  rm -rf "$native" "$T/at-snapshot" "$T/dump.json"
}

# shows_native PREFIX DIR WHAT: PREFIX is consistent (check_consistency.py
# and fsck say so) and, mounted read-only, shows DIR's tree.
shows_native() {
  local p=$1 dir=$2 what=$3
  PREFIX=$p check_consistency -q || fail "inconsistent: $what"
  snap fsck "$p" >"$T/fsck" 2>&1 || fail "fsck finds damage: $what: $(cat "$T/fsck")"
  PREFIX=$p mount_at "$T/v" -o allow_other --read-only
  python3 "$HERE/ns_fuzz.py" --ops 0 --native "$dir" --mount "$T/v" || fail "another tree than the native one: $what"
  unmount_fs "$T/v"
}

fuzz_case "$seed0" 1
fuzz_case $((seed0 + 1)) 2 -o attr_timeout=0,entry_timeout=0
fuzz_case $((seed0 + 2)) 1 --write-through --block-size 4096
fuzz_case $((seed0 + 3)) 1 -o writeback
((live > 0)) || fail "no snapshot was taken while the fuzz went on"
note "$((run * (ops + ops / 3 + ops / 5))) operations answered as a native directory answers them, in four modes; snapshots ($live taken during the fuzz), dumps and restores showed the same trees"
