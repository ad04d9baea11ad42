#!/usr/bin/env bash
# A key of the wrong type (damage fsck names: a block that is a hash, a
# directory that is a set, another program's write into the prefix) does
# not stop the tools a user needs before repairing: copy snapshots it as it
# is (the damaged key with its type), dump writes the rest and says which
# key it left out and why (the dump format holds the schema's types only),
# rollback puts the snapshot back and keeps the damaged state, delete
# removes it all, and a mount of a damaged ORPHANS serves the files. A
# superblock of the wrong type is refused in one line naming it, by every
# tool that reads it and by the daemon, and changes nothing; copy and
# restore with --force replace it, delete removes it. No tool leaves a
# temporary prefix or a half-done move behind (redisfs-snap(1), copy and
# dump; redisfs(1), Damage).
REDIS_ARGS=(--enable-debug-command local)
. "$(dirname "$0")/../mount/lib.sh"

need_snap
need_tools jq

no_leftovers() {  # WHAT
  local left
  left=$(rcli --scan --pattern "*~*" | { grep -v '^redisfs~FILESYSTEMS$' || true; })
  [[ -z $left ]] || fail "$1: temporary keys left behind: $(head -5 <<<"$left")"
  left=$(rcli --scan --pattern "*:INSTALLING")
  [[ -z $left ]] || fail "$1: a move left half done: $left"
  left=$(rcli --scan --pattern "*:COW")
  [[ -z $left ]] || fail "$1: a snapshot's record left behind: $left"
}

# one_line RC WHAT CMD...: CMD exits RC, its stderr one line holding WHAT.
one_line() {
  local want=$1 what=$2 rc=0
  shift 2
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  ((rc == want)) || fail "$*: exit $rc, not $want: $(cat "$T/err")"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$*: not one line: $(cat "$T/err")"
  grep -qF -- "$what" "$T/err" || fail "$*: says '$(cat "$T/err")', not '$what'"
  ! grep -q "@user_script" "$T/err" || fail "$*: the server's script trailer shown: $(cat "$T/err")"
}

mount_fs
mkdir "$MNT/sub"
echo hello >"$MNT/hello.txt"
echo inner >"$MNT/sub/inner.txt"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.note", b"kept")' "$MNT/hello.txt"
head -c 20000 /dev/urandom >"$MNT/data.bin"
unmount_fs
snap -q fsck "$PREFIX"
snap -q copy "$PREFIX" BASE
hello=$(rcli hget "BASE:DIR:1" hello.txt)
sub=$(rcli hget "BASE:DIR:1" sub)

# Each case NAME KEY TYPE: a writable filesystem W-NAME and its snapshot
# W-NAME-S from before KEY (relative) was made a TYPE. The named ones,
# then a few of any inode, directory, xattr or block key (the root's
# too) made any other type, from a seed (SNAP_WRONG_TYPE_SEED=N runs them
# again).
specs=("blk BLK:$hello:0 hash" "dir DIR:$sub set" "inode INODE:$hello string" "xattr XATTR:$hello list"
  "orphans ORPHANS string" "sb SB string")
seed=${SNAP_WRONG_TYPE_SEED:-$RANDOM}
note "seed $seed (SNAP_WRONG_TYPE_SEED)"
RANDOM=$seed
mapfile -t base_keys < <(rcli --scan --pattern 'BASE:*' | sed 's/^BASE://' | grep -E '^(INODE|DIR|XATTR|BLK):' | sort)
types=(string hash list set zset)
for i in 1 2 3 4 5 6; do
  key=${base_keys[RANDOM % ${#base_keys[@]}]}
  right="hash"
  [[ $key != BLK:* ]] || right=string
  type=$right
  while [[ $type == "$right" ]]; do
    type=${types[RANDOM % ${#types[@]}]}
  done
  specs+=("any$i $key $type")
done
for spec in "${specs[@]}"; do
  read -r name key type <<<"$spec"
  F=W-$name
  note "$F: $key is a $type"
  snap -q copy --writable BASE "$F"
  snap -q copy "$F" "$F-S"
  rcli del "$F:$key" >/dev/null
  case $type in
    hash) rcli hset "$F:$key" a b >/dev/null ;;
    set) rcli sadd "$F:$key" x >/dev/null ;;
    list) rcli rpush "$F:$key" x >/dev/null ;;
    zset) rcli zadd "$F:$key" 1 x >/dev/null ;;
    string) rcli set "$F:$key" junk >/dev/null ;;
  esac
  want="hash"
  [[ $key != BLK:* ]] || want=string

  # list: the filesystem is listed; a superblock that is no hash is said so
  snap list --json >"$T/list.json"
  problem=$(jq -r --arg p "$F" '.[] | select(.prefix == $p) | .problem // ""' "$T/list.json")
  if [[ $name == sb ]]; then
    [[ $problem == *"$F:SB is not a hash"* ]] || fail "list of a string superblock: '$problem'"
  else
    [[ -z $problem ]] || fail "list: $F: $problem"
  fi

  if [[ $name == sb ]]; then
    for cmd in "copy $F $F-C" "dump $F -o $T/$F.json" "diff $F-S $F" "rollback $F $F-S" "du $F" \
      "dump $F --since $F-S -o $T/$F.json"; do
      read -ra argv <<<"$cmd"
      one_line 1 "the superblock $F:SB is not a hash" snap "${argv[@]}"
      no_leftovers "$cmd"
    done
    [[ $(rcli type "$F:SB") == string ]] || fail "the refusals changed the superblock"
    [[ $(rcli exists "$F-C:SB") == 0 ]] || fail "copy of a string superblock made a copy"
    compgen -G "$T/$F.json*" >/dev/null && fail "dump of a string superblock left a file: $(ls "$T")"
    rc=0
    "$REDISFS_BIN" --redis "unix://$SOCK" --prefix "$F" "$MNT" 2>"$T/err" || rc=$?
    # (its last line: a warning of the server's lack of persistence comes first)
    if ((rc != 1)) || [[ $(tail -1 "$T/err") != "redisfs: the superblock $F:SB is not a hash"* ]]; then
      fail "the mount of a string superblock: exit $rc: $(cat "$T/err")"
    fi
    ! is_mounted "$MNT" || fail "a string superblock was mounted"
    # what replaces it: copy --force, restore --force (and delete, below)
    snap -q copy --force "$F-S" "$F" 2>"$T/err" || fail "copy --force onto a string superblock: $(cat "$T/err")"
    snap -q fsck "$F" || fail "$F after copy --force is not clean"
    snap -q dump "$F-S" -o "$T/$F-S.json"
    rcli del "$F:SB" >/dev/null
    rcli set "$F:SB" junk >/dev/null
    snap -q restore --force --prefix "$F" "$T/$F-S.json" 2>"$T/err" ||
      fail "restore --force onto a string superblock: $(cat "$T/err")"
    snap -q fsck "$F" || fail "$F after restore --force is not clean"
    rcli del "$F:SB" >/dev/null
    rcli set "$F:SB" junk >/dev/null
    no_leftovers "copy and restore --force onto a string superblock"
    snap -q delete "$F"
    [[ $(rcli --scan --pattern "$F:*" | wc -l) == 0 ]] || fail "delete left keys of $F"
    snap -q delete "$F-S"
    continue
  fi

  # copy: a snapshot of the damage as it is
  snap -q copy "$F" "$F-C" 2>"$T/err" || fail "copy $F: $(cat "$T/err")"
  [[ $(rcli type "$F-C:$key") == "$type" ]] || fail "copy: $F-C:$key is a $(rcli type "$F-C:$key"), not a $type"
  no_leftovers "copy $F"

  # dump: everything but the key, said in a warning; the file is one
  # restore takes (--damaged when the left-out key leaves damage)
  snap dump "$F" -o "$T/$F.json" >/dev/null 2>"$T/err" || fail "dump $F: $(cat "$T/err")"
  grep -qF "1 key of the wrong type is not in the dump ($key is a $type, not a $want;" "$T/err" ||
    fail "dump $F: the warning does not name $key: $(cat "$T/err")"
  grep -qF "'redisfs-snap fsck $F' names it" "$T/err" || fail "dump $F: no fsck hint: $(cat "$T/err")"
  [[ $(jq --arg k "$key" '[.records[] | select(.key == $k)] | length' "$T/$F.json") == 0 ]] ||
    fail "dump $F holds $key"
  no_leftovers "dump $F"
  damaged=()
  if snap verify "$T/$F.json" >/dev/null 2>&1; then
    ! grep -q "is damaged" "$T/err" || fail "dump $F warned of damage verify does not find: $(cat "$T/err")"
  else
    grep -q "is damaged (restore refuses it)" "$T/err" || fail "dump $F: verify refuses it, no warning said so"
    damaged=(--damaged)
  fi
  snap -q restore "${damaged[@]}" --prefix "$F-R" "$T/$F.json" 2>"$T/err" || fail "restore of $F's dump: $(cat "$T/err")"
  snap fsck "$F-R" >"$T/out" 2>&1 || true
  ! grep -q "wrong key type" "$T/out" || fail "the restored dump of $F has a key of the wrong type: $(cat "$T/out")"
  no_leftovers "restore $F"

  if [[ $name == orphans ]]; then
    # a mount serves the files, and says what it could not do
    start_daemon 20 "$MNT" --redis "unix://$SOCK" --prefix "$F"
    [[ $(cat "$MNT/hello.txt") == hello ]] || fail "the mount of $F does not serve hello.txt"
    unmount_fs
    grep -qF "$F:ORPHANS is not a hash" "${MOUNT_LOGS[$MNT]}" ||
      fail "the mount of $F does not name ORPHANS: $(cat "${MOUNT_LOGS[$MNT]}")"
  fi

  # rollback: the snapshot's state back, the damaged one kept
  snap -q rollback "$F" "$F-S" >/dev/null 2>"$T/err" || fail "rollback $F: $(cat "$T/err")"
  no_leftovers "rollback $F"
  snap -q fsck "$F" || fail "$F after the rollback is not clean"
  kept=$(snap list --json | jq -r --arg p "$F-before-rollback-" '.[] | select(.prefix | startswith($p)) | .prefix')
  [[ -n $kept && $(rcli type "$kept:$key") == "$type" ]] || fail "the kept state of $F lost its damaged $key"

  for p in "$F" "$F-S" "$F-C" "$F-R" "$kept"; do
    snap -q delete "$p" 2>"$T/err" || fail "delete $p: $(cat "$T/err")"
    [[ $(rcli --scan --pattern "$p:*" | wc -l) == 0 ]] || fail "delete left keys of $p"
  done
  no_leftovers "delete"
done

# An install journal of the wrong type (each one is a string) journals no
# move: every tool and the mount refuse in one line naming it and the
# repair, fsck reports it, and fsck --repair removes it.
F=W-journal
note "$F: INSTALLING is a set"
snap -q copy --writable BASE "$F"
rcli sadd "$F:INSTALLING" x >/dev/null
snap -q dump BASE -o "$T/base.json"
want="$F:INSTALLING is a set, not a journal this redisfs wrote: \`redisfs-snap fsck --repair $F\` removes it"
for cmd in "copy $F $F-C" "dump $F -o $T/$F.json" "copy --force BASE $F" "restore --force --prefix $F $T/base.json" \
  "delete $F"; do
  read -ra argv <<<"$cmd"
  one_line 1 "$want" snap "${argv[@]}"
  ! grep -q "at byte" "$T/err" || fail "$cmd: the journal's refusal blames the dump: $(cat "$T/err")"
done
rc=0
"$REDISFS_BIN" --redis "unix://$SOCK" --prefix "$F" "$MNT" 2>"$T/err" || rc=$?
if ((rc != 1)) || [[ $(tail -1 "$T/err") != *"$want" ]]; then
  fail "the mount over a set journal: exit $rc: $(cat "$T/err")"
fi
snap fsck "$F" >"$T/out" 2>&1 && fail "fsck of a set journal: clean"
grep -qF "wrong key type: $F:INSTALLING: a set, not a string" "$T/out" || fail "fsck: $(cat "$T/out")"
snap -q fsck --repair "$F" 2>"$T/err" || fail "fsck --repair of a set journal: $(cat "$T/err")"
[[ $(rcli exists "$F:INSTALLING") == 0 ]] || fail "fsck --repair left the journal"
snap -q copy "$F" "$F-C" || fail "copy after the repair"
snap -q delete "$F-C"
snap -q delete "$F"
no_leftovers "the set journal"
note "ok"
