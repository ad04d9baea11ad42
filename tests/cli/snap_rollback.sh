#!/usr/bin/env bash
# redisfs-snap rollback on real mounts: refused while mounted; with --force
# an open file and a cwd in the mount get ESTALE and a fresh mount sees the
# snapshot's state; the replaced state is kept as a read-only snapshot
# (default name, --keep-as) holding exactly that state and none of the
# mounts' bookkeeping (nor a file unlinked but open), or dropped (--discard); the hostile cases (SNAP
# missing, not a snapshot, of another filesystem, FS missing, keep-as name
# taken) are one line each and change nothing; an install that fails midway
# leaves FS exactly as it was, and one killed midway is finished by the next
# mount (REDISFS_FAULT); a snapshot an older redisfs made (no lineage) is
# taken by diff and rollback by its origin and created.
REDIS_ARGS=(--enable-debug-command local)
. "$(dirname "$0")/../mount/lib.sh"

need_snap
need_tools jq

# digest PREFIX: every key of the filesystem with DEBUG DIGEST-VALUE, but
# the running system's.
digest() {
  local k
  rcli --scan --pattern "$1:*" | sort -u | { grep -Ev ":(MOUNTS?|MOUNT:.*|OPLOG:.*|OPEN:.*|RESERVED|FREEZE)$" || true; } |
    while read -r k; do
      echo "$k $(rcli debug digest-value "$k")"
    done
}

no_temp_keys() {
  local left
  left=$(rcli --scan --pattern "*~*" | { grep -v '^redisfs~FILESYSTEMS$' || true; })
  [[ -z $left ]] || fail "keys left behind: $(head -5 <<<"$left")"
}

# refused WHAT CMD...: CMD fails (exit 1) with one line naming WHAT, and FS
# is unchanged.
refused() {
  local what=$1 rc=0 before
  shift
  before=$(digest "$PREFIX")
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  ((rc == 1)) || fail "$*: exit $rc, not 1 ($(cat "$T/err"))"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$*: not one line: $(cat "$T/err")"
  grep -q -- "$what" "$T/err" || fail "$*: says $(cat "$T/err"), not '$what'"
  [[ $(digest "$PREFIX") == "$before" ]] || fail "$*: the filesystem changed"
  no_temp_keys
}

sb() {  # PREFIX FIELD
  rcli hget "$1:SB" "$2"
}

mount_fs
mkdir "$MNT/d"
echo v1 >"$MNT/f"
echo x >"$MNT/d/x"
snap -q copy "$PREFIX" MON
echo v2 >"$MNT/f"
rm "$MNT/d/x"
echo new >"$MNT/n"

note "refused while mounted, and the hostile cases"
refused "is mounted" snap -q rollback "$PREFIX" MON
# a damaged mounts' register (not a hash) hides no mount: the session key
# says it is mounted (live_mounts finds it by SCAN)
mapfile -t register < <(rcli --raw hgetall "$PREFIX:MOUNTS")
rcli del "$PREFIX:MOUNTS" >/dev/null
rcli set "$PREFIX:MOUNTS" junk >/dev/null
refused "is mounted (1 live mount)" snap -q rollback "$PREFIX" MON
refused "is mounted" snap -q restore --force --prefix "$PREFIX" < <(snap -q dump MON)
rcli del "$PREFIX:MOUNTS" >/dev/null
rcli hset "$PREFIX:MOUNTS" "${register[@]}" >/dev/null
refused "no snapshot at prefix 'NOPE'" snap -q rollback "$PREFIX" NOPE
refused "no filesystem at prefix 'NOFS'" snap -q rollback NOFS MON
snap -q copy --writable "$PREFIX" CLONE
refused "'CLONE' is not a snapshot" snap -q rollback "$PREFIX" CLONE
rcli hset OTHER:SB format redisfs version 1 block_size 65536 root 1 next_inode 2 inodes 1 bytes 0 created 1 >/dev/null
rcli hset OTHER:INODE:1 type dir mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 1 \
  atime 1 mtime 1 ctime 1 >/dev/null
snap -q copy OTHER OTHER-MON
refused "is not a snapshot of '$PREFIX' (it is a snapshot of 'OTHER')" snap -q rollback "$PREFIX" OTHER-MON
# a snapshot of an earlier filesystem under the same name: its inode numbers
# mean other files
snap -q delete OTHER
rcli hset OTHER:SB format redisfs version 1 block_size 65536 root 1 next_inode 2 inodes 1 bytes 0 created 2 >/dev/null
rcli hset OTHER:INODE:1 type dir mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 1 \
  atime 1 mtime 1 ctime 1 >/dev/null
PREFIX=OTHER refused "'OTHER-MON' is not a snapshot of 'OTHER' (it was taken of an earlier filesystem under that name)" \
  snap -q rollback OTHER OTHER-MON
refused "is a read-only snapshot" snap -q rollback MON "$PREFIX"
refused "'CLONE' already holds keys" snap -q rollback --force --keep-as CLONE "$PREFIX" MON

note "--force under a mount: an open file and a cwd get ESTALE"
exec 3<"$MNT/f"
# and a file unlinked but still open: the kept state drops it, as a copy does
echo "unlinked but open" >"$MNT/gone"
gone_ino=$(stat -c %i "$MNT/gone")
exec 4<"$MNT/gone"
rm "$MNT/gone"
[[ $(rcli hexists "$PREFIX:ORPHANS" "$gone_ino") == 1 ]] || fail "the unlinked open file is no orphan"
(
  cd "$MNT/d"
  while [[ ! -e $T/go ]]; do sleep 0.05; done
  rc=0
  ls . >/dev/null 2>"$T/cwd.err" || rc=$?
  echo "$rc" >"$T/cwd.rc"
) &
CWD_PID=$!
before=$(digest "$PREFIX")
snap -q rollback --force "$PREFIX" MON >"$T/kept"
KEPT=$(cat "$T/kept")
[[ $KEPT == "$PREFIX-before-rollback-"[0-9]*T[0-9]*Z ]] || fail "kept as '$KEPT'"
stale=
start=$(date +%s%N)
for ((i = 0; i < 200; i++)); do
  if ! cat <&3 >/dev/null 2>"$T/read.err"; then
    stale=1
    break
  fi
  sleep 0.05
done
[[ -n $stale ]] && grep -q "Stale file handle" "$T/read.err" || fail "the open file: $(cat "$T/read.err")"
# (redisfs-snap(1): "within two seconds", the mount's watch; printed, not
# asserted: the machine is shared)
note "the open file got ESTALE $((($(date +%s%N) - start) / 1000000)) ms after the rollback"
touch "$T/go"
wait "$CWD_PID"
[[ $(cat "$T/cwd.rc") != 0 ]] && grep -q "Stale file handle" "$T/cwd.err" || fail "the cwd: $(cat "$T/cwd.err")"
exec 3<&- 4<&-
unmount_fs
mount_fs
[[ $(cat "$MNT/f") == v1 && $(cat "$MNT/d/x") == x && ! -e $MNT/n ]] || fail "a fresh mount does not see MON's state"
[[ $(rcli exists "$KEPT:INODE:$gone_ino") == 0 && $(rcli hexists "$KEPT:ORPHANS" "$gone_ino") == 0 &&
  -z $(rcli --scan --pattern "$KEPT:BLK:$gone_ino:*") ]] ||
  fail "the kept state holds the unlinked open file: $(rcli --scan --pattern "$KEPT:*:$gone_ino*")"
no_temp_keys

note "the replaced state is kept: a read-only snapshot of that state, none of the mounts' keys"
[[ $(sb "$KEPT" read_only) == 1 && $(sb "$KEPT" origin) == "$PREFIX" ]] || fail "kept superblock: $(rcli hgetall "$KEPT:SB")"
id=$(sb "$KEPT" snapshot_id)
[[ $id =~ ^[0-9a-f]{32}$ && $(sb "$KEPT" lineage) == *"$id" ]] || fail "kept lineage: $(rcli hgetall "$KEPT:SB")"
[[ -z $(rcli --scan --pattern "$KEPT:MOUNT*") && -z $(rcli --scan --pattern "$KEPT:OPEN:*") ]] ||
  fail "the kept snapshot has the mounts' keys: $(rcli --scan --pattern "$KEPT:*")"
snap -q diff MON "$KEPT" >"$T/diff"
[[ $(sort "$T/diff") == $(printf 'M\t.\nM\td\n-\td/x\nM\tf\n+\tn\n' | sort) ]] || fail "diff MON kept: $(cat "$T/diff")"
snap -q fsck "$KEPT" >/dev/null || fail "fsck of the kept snapshot"
snap -q fsck "$PREFIX" >/dev/null || fail "fsck of the rolled-back filesystem"
[[ $(snap list --json | jq -r --arg p "$KEPT" '.[] | select(.prefix == $p) | .kind') == snapshot ]] ||
  fail "list: $(snap list)"
[[ -z $(sb "$PREFIX" snapshot_id) && $(sb "$PREFIX" read_only) == 0 && -n $(sb "$PREFIX" rolled_back) ]] ||
  fail "FS superblock: $(rcli hgetall "$PREFIX:SB")"
# FS has SNAP's lineage and its own origin (none: it is no copy)
[[ $(sb "$PREFIX" lineage) == "$(sb MON lineage)" && -z $(sb "$PREFIX" origin) ]] ||
  fail "FS's lineage and origin after the rollback: $(sb "$PREFIX" lineage) / $(sb MON lineage), origin '$(sb "$PREFIX" origin)'"
(($(sb "$PREFIX" next_inode) >= $(sb "$KEPT" next_inode))) || fail "next_inode went back"

note "unmounted, --keep-as, and back to the kept state"
echo v3 >"$MNT/f"
unmount_fs
[[ $(snap rollback --keep-as SAVED "$PREFIX" MON 2>/dev/null) == SAVED ]] || fail "--keep-as"
snap -q diff MON SAVED >"$T/diff"
grep -qx $'M\tf' "$T/diff" || fail "SAVED: $(cat "$T/diff")"
snap -q rollback --discard "$PREFIX" SAVED >"$T/out"
[[ ! -s $T/out ]] || fail "--discard kept: $(cat "$T/out")"
mount_fs
[[ $(cat "$MNT/f") == v3 ]] || fail "rolled back to the kept state: f is $(cat "$MNT/f")"
unmount_fs
n=$(snap list --json | jq length)
snap -q rollback --discard "$PREFIX" MON >/dev/null
[[ $(snap list --json | jq length) == "$n" ]] || fail "--discard left a filesystem: $(snap list)"

note "a failure midway leaves FS exactly as it was; a crash midway is finished by the next mount"
mount_fs
echo v4 >"$MNT/f"
unmount_fs
for point in install-aside install-swap; do
  before=$(digest "$PREFIX")
  rc=0
  REDISFS_FAULT=$point "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q rollback --keep-as K1 "$PREFIX" MON \
    >/dev/null 2>"$T/err" || rc=$?
  ((rc == 1)) || fail "$point: exit $rc ($(cat "$T/err"))"
  [[ $(digest "$PREFIX") == "$before" ]] || fail "$point: the filesystem changed: $(cat "$T/err")"
  [[ -z $(rcli --scan --pattern "K1:*") ]] || fail "$point: K1 has keys"
  no_temp_keys
done
for point in install-swap install-keep; do
  rc=0
  REDISFS_FAULT=$point-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q rollback --keep-as "K-$point" \
    "$PREFIX" MON >/dev/null 2>&1 || rc=$?
  ((rc == 137)) || fail "$point-crash: exit $rc"
  [[ -n $(rcli get "$PREFIX:INSTALLING") ]] || fail "$point-crash: no journal"
  rcli del "$PREFIX:RESERVED" "K-$point:RESERVED" >/dev/null  # (would expire: the tool died)
  expect_fail "mount it once to finish that move first" snap fsck --repair "$PREFIX"
  mount_fs
  [[ $(cat "$MNT/f") == v1 ]] || fail "$point-crash: the next mount sees f = $(cat "$MNT/f")"
  [[ -z $(rcli get "$PREFIX:INSTALLING") ]] || fail "$point-crash: the journal is left"
  snap -q diff MON "K-$point" >"$T/diff"
  grep -qx $'M\tf' "$T/diff" || fail "$point-crash: the kept state: $(cat "$T/diff")"
  snap -q fsck "K-$point" >/dev/null || fail "$point-crash: fsck of the kept state"
  echo v4 >"$MNT/f"
  unmount_fs
done
no_temp_keys

note "a keep-as name another filesystem took while the rollback was interrupted: nothing moves into it"
rc=0
REDISFS_FAULT=install-swap-crash "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q rollback --keep-as K-taken \
  "$PREFIX" MON >/dev/null 2>&1 || rc=$?
((rc == 137)) || fail "install-swap-crash: exit $rc"
rcli del "$PREFIX:RESERVED" "K-taken:RESERVED" >/dev/null # (would expire: the tool died)
snap -q copy MON K-taken >/dev/null
taken=$(digest K-taken)
expect_fail "'K-taken' was made since" "$REDISFS_BIN" --redis "unix://$SOCK" --prefix "$PREFIX" "$MNT"
! is_mounted "$MNT" || fail "a mount came up with its install unfinished"
expect_fail "'K-taken' was made since" snap -q delete "$PREFIX"
[[ $(digest K-taken) == "$taken" ]] || fail "the interrupted rollback changed the filesystem at K-taken"
[[ -n $(rcli get "$PREFIX:INSTALLING") ]] || fail "the journal went with its install unfinished"
# once the name is free again, the next mount keeps the replaced state there
snap -q delete K-taken
mount_fs
[[ $(cat "$MNT/f") == v1 ]] || fail "K-taken freed: the next mount sees f = $(cat "$MNT/f")"
unmount_fs
[[ -z $(rcli get "$PREFIX:INSTALLING") ]] || fail "K-taken freed: the journal is left"
snap -q diff MON K-taken >"$T/diff"
grep -qx $'M\tf' "$T/diff" || fail "K-taken freed: the kept state: $(cat "$T/diff")"
no_temp_keys

note "a snapshot an older redisfs made (no lineage): diff and rollback take it by origin and created"
snap -q copy "$PREFIX" OLDSTYLE
rcli hdel OLDSTYLE:SB snapshot_id lineage >/dev/null
mount_fs
echo v5 >"$MNT/f"
unmount_fs
snap -q diff OLDSTYLE "$PREFIX" >"$T/diff" || fail "diff of a snapshot without lineage: $(cat "$T/diff")"
grep -qx $'M\tf' "$T/diff" || fail "diff of a snapshot without lineage: $(cat "$T/diff")"
snap -q rollback --discard "$PREFIX" OLDSTYLE >/dev/null || fail "rollback to a snapshot without lineage"
mount_fs
[[ $(cat "$MNT/f") != v5 ]] || fail "the rollback to a snapshot without lineage changed nothing"
unmount_fs
snap -q delete OLDSTYLE
no_temp_keys
note "ok"
