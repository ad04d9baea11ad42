#!/usr/bin/env bash
# cluster_snap: the ZFS-class snapshot tools on a Redis Cluster (3 masters,
# 1 replica each; tests/prod/topology.sh), each through a node that does
# not serve the filesystem's slot. '{snapfs}' (one slot) has snapshots that
# keep its tag ('{snapfs}-mon', -tue, -wed: its slot) and one that does not
# (a third tag on another master, copied through the client):
#   - a mount's .snapshots lists all of them (the register, read on its own
#     master) and reads each, the other slot's too;
#   - diff of two same-slot snapshots, of a snapshot and the live mounted
#     filesystem (a copy-on-write snapshot of its metadata, in its slot, no
#     staging key left) and of the other slot's snapshot and a same-slot
#     one: the same changes, as documented;
#   - dump --since within the slot (across the other slot's snapshot in the
#     lineage: every block compared; then by the change records alone), and
#     restore of the base and both incrementals, under a prefix in the same
#     slot and under one in another: the same records as a full dump;
#   - dump --since across two slots is refused (it compares blocks on the
#     server): one line, exit 1, no file, no staging key;
#   - list --json shows the snapshots under their origin, on every master;
#   - rollback to the other slot's snapshot (staged through the client) and
#     to a same-slot one: the filesystem is that state again, the replaced
#     state kept in its slot; --keep-as in another slot is refused (one
#     line, exit 1) with the filesystem and the server unchanged;
#   - fsck is clean everywhere.
. "$(dirname "$0")/topology.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 jq diff
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

start_cluster
P1="{snapfs}"
S1=$(slot_of "$P1")
M1=$(master_of_slot "$S1")
TAGX=$(pick_tag snapx "$M1")
PX="{$TAGX}"
MX=$(master_of_key "$PX")
TAGR=$(pick_tag snapr "$M1")
PR="{$TAGR}"
VIA=$(other_master "$S1")
note "$P1: slot $S1 on $M1; $PX on $MX; $PR on $(master_of_key "$PR"); tools through $VIA"
URL=redis://127.0.0.1:$VIA
snap() {
  "$REDISFS_SNAP_BIN" --redis "$URL" "$@"
}

# refused TEXT COMMAND...: COMMAND exits 1 with one line on stderr saying TEXT
refused() {
  local text=$1 rc=0
  shift
  "$@" >"$T/refused.out" 2>"$T/refused.err" || rc=$?
  ((rc == 1)) || fail "'$*' exited $rc, expected 1: $(cat "$T/refused.err")"
  [[ $(wc -l <"$T/refused.err") == 1 && $(cat "$T/refused.err") == *"$text"* ]] ||
    fail "'$*' did not say '$text' in one line: $(cat "$T/refused.err")"
}

# flip_byte FILE OFFSET: writes there the complement of the byte it holds
# (a fixed byte written over random ones is the same one time in 256, and
# the file would not change)
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

sb_of() {  # PREFIX: its superblock, field per line, sorted
  rc_at "$(master_of_key "$1")" hgetall "$1:SB" | paste - - | sort
}

# ------------------------------------------------------------------ MON, the other slot's snapshot
MNT=$T/fs
mount_at "$MNT" --redis "$URL" --prefix "$P1"
mkdir "$MNT/d"
echo keep >"$MNT/keep.txt"
echo del >"$MNT/del.txt"
echo ren >"$MNT/ren.txt"
printf 'aaaa' >"$MNT/chg.txt"
head -c 300000 /dev/urandom >"$MNT/big"
snap -q copy "$P1" "$P1-mon" || fail "copy $P1 $P1-mon (same slot)"
snap -q copy "$P1" "$PX" || fail "copy $P1 $PX (another slot)"
[[ $(rc_at "$MX" hget "$PX:SB" origin) == "$P1" ]] || fail "$PX is not a snapshot of $P1"

# ------------------------------------------------------------------ TUE
echo new >"$MNT/new.txt"
rm "$MNT/del.txt"
mv "$MNT/ren.txt" "$MNT/d/ren.txt"
printf 'bbbb' | dd of="$MNT/chg.txt" conv=notrunc status=none
flip_byte "$MNT/big" 70000
snap -q copy "$P1" "$P1-tue" || fail "copy $P1 $P1-tue"

# ------------------------------------------------------------------ .snapshots
want_views=$(printf '%s\n' "$P1-mon" "$P1-tue" "$PX" | LC_ALL=C sort)
views() {
  [[ $(ls -A "$MNT/.snapshots" | LC_ALL=C sort) == "$want_views" ]]
}
wait_for 10 ".snapshots of $P1 lists $(ls -A "$MNT/.snapshots" | paste -sd' '), not $want_views" views
[[ $(cat "$MNT/.snapshots/$P1-mon/chg.txt") == aaaa && $(cat "$MNT/.snapshots/$P1-tue/chg.txt") == bbbb ]] ||
  fail ".snapshots/$P1-mon or -tue shows the wrong chg.txt"
[[ $(cat "$MNT/.snapshots/$PX/ren.txt") == ren && ! -e $MNT/.snapshots/$PX/d/ren.txt ]] ||
  fail ".snapshots/$PX (another slot) is not the state it was taken at"
cmp -s "$MNT/.snapshots/$PX/big" "$MNT/.snapshots/$P1-mon/big" || fail ".snapshots/$PX/big differs from $P1-mon's"
! cmp -s "$MNT/.snapshots/$P1-tue/big" "$MNT/.snapshots/$P1-mon/big" || fail "big did not change between mon and tue"
note ".snapshots lists and reads the snapshots of both slots"

# ------------------------------------------------------------------ diff
cat >"$T/want.diff" <<'EOF'
M	.
M	big
M	chg.txt
M	d
R	ren.txt -> d/ren.txt
-	del.txt
+	new.txt
EOF
check_diff() {  # A B: the changes above, and no staging key left
  snap -q diff "$1" "$2" >"$T/diff" || fail "diff $1 $2"
  diff "$T/want.diff" "$T/diff" >&2 || fail "diff $1 $2 is not the changes made"
  no_temp_keys
}
check_diff "$P1-mon" "$P1-tue"
check_diff "$P1-mon" "$P1"  # live and mounted: through a copy-on-write snapshot
check_diff "$PX" "$P1"  # A in another slot, B live
snap -q diff --json "$P1-mon" "$P1-tue" | jq -r .path >"$T/paths" || fail "diff --json"
[[ $(wc -l <"$T/paths") == 7 ]] || fail "diff --json: $(cat "$T/paths")"
note "diff: same slot, live, another slot"

# ------------------------------------------------------------------ WED, incrementals
echo wed >>"$MNT/keep.txt"
flip_byte "$MNT/big" 200000
snap -q copy "$P1" "$P1-wed" || fail "copy $P1 $P1-wed"
snap -q dump "$P1-mon" -o "$T/mon.json" || fail "dump $P1-mon"
snap -q dump "$P1-tue" --since "$P1-mon" -o "$T/tue.json" || fail "dump $P1-tue --since $P1-mon"
snap -q dump "$P1-wed" --since "$P1-tue" -o "$T/wed.json" || fail "dump $P1-wed --since $P1-tue"
snap -q dump "$P1-wed" -o "$T/wed-full.json" || fail "dump $P1-wed"
for f in tue wed; do
  [[ $(jq -r .version "$T/$f.json") == 2 ]] || fail "$f.json is not an incremental dump"
done
# of big (five 64 KiB blocks, one byte changed) only the changed block
# travels: compared on the server, whether the change records were used
# (wed) or not (tue: $PX, in between, keeps its record in another slot)
big_blocks() {  # DUMP
  jq -c --arg k "BLK:$(stat -c %i "$MNT/big"):" '[.records[].key | select(startswith($k))]' "$1"
}
[[ $(big_blocks "$T/tue.json") == "[\"BLK:$(stat -c %i "$MNT/big"):1\"]" ]] ||
  fail "tue.json carries blocks $(big_blocks "$T/tue.json") of big, not block 1"
[[ $(big_blocks "$T/wed.json") == "[\"BLK:$(stat -c %i "$MNT/big"):3\"]" ]] ||
  fail "wed.json carries blocks $(big_blocks "$T/wed.json") of big, not block 3"
for p in "$P1-r" "$PR"; do
  snap -q restore "$T/mon.json" --prefix "$p" || fail "restore mon.json --prefix $p"
  snap -q restore "$T/tue.json" --prefix "$p" || fail "restore tue.json onto $p"
  snap -q restore "$T/wed.json" --prefix "$p" || fail "restore wed.json onto $p"
  snap -q dump "$p" -o "$T/again.json" || fail "dump $p"
  cmp <(records "$T/wed-full.json") <(records "$T/again.json") || fail "base + incrementals under $p are not $P1-wed"
done
no_temp_keys
note "dump --since and incremental restores: same slot and another slot"

# across two slots: refused, nothing written
refused "different cluster slots" snap -q dump "$P1-tue" --since "$PX" -o "$T/cross.json"
[[ -z $(find "$T" -maxdepth 1 -name 'cross.json*') ]] || fail "a refused dump left $(ls "$T"/cross.json*)"
no_temp_keys

# ------------------------------------------------------------------ list
snap list --json >"$T/list.json" || fail "list --json"
for p in "$P1-mon" "$P1-tue" "$P1-wed" "$PX"; do
  jq -e --arg p "$p" --arg o "$P1" 'any(.[]; .prefix == $p and .origin == $o and .read_only)' "$T/list.json" \
    >/dev/null || fail "list does not show $p as a snapshot of $P1: $(cat "$T/list.json")"
done
snap list >"$T/list.txt" || fail "list"
grep -qF "$PX" "$T/list.txt" || fail "list's table lacks $PX: $(cat "$T/list.txt")"

# ------------------------------------------------------------------ rollback
fs_unmount "$MNT"
# --keep-as in another slot: refused, and nothing changed
sb_of "$P1" >"$T/sb.before"
keys_before=$(rc_at "$M1" cluster countkeysinslot "$S1")
refused "hash tag" snap -q rollback "$P1" "$P1-mon" --keep-as "$PR-kept"
sb_of "$P1" | diff "$T/sb.before" - >&2 || fail "a refused rollback changed $P1's superblock"
[[ $(rc_at "$M1" cluster countkeysinslot "$S1") == "$keys_before" ]] || fail "a refused rollback changed slot $S1"
[[ $(rc_at "$(master_of_key "$PR")" exists "$PR-kept:SB" "$PR-kept:RESERVED") == 0 ]] || fail "$PR-kept was written"
no_temp_keys

# to the other slot's snapshot: staged through the client, installed in P1's slot
snap -q rollback "$P1" "$PX" >"$T/kept" || fail "rollback $P1 $PX"
kept=$(cat "$T/kept")
[[ $kept == "$P1-before-rollback-"* ]] || fail "rollback printed '$kept', not the kept name"
[[ $(rc_at "$M1" exists "$kept:SB") == 1 ]] || fail "the kept state $kept is not in $P1's slot on $M1"
[[ -z $(snap -q diff "$PX" "$P1") ]] || fail "after rollback to $PX: $(snap -q diff "$PX" "$P1")"
snap -q diff "$P1-wed" "$kept" >"$T/diff" || fail "diff $P1-wed $kept"
[[ ! -s $T/diff ]] || fail "the kept state is not the replaced one: $(cat "$T/diff")"
# to a same-slot snapshot, keeping the replaced state under a name of the slot
snap -q rollback "$P1" "$P1-tue" --keep-as "$P1-kept" >/dev/null || fail "rollback $P1 $P1-tue"
[[ -z $(snap -q diff "$P1-tue" "$P1") ]] || fail "after rollback to $P1-tue: $(snap -q diff "$P1-tue" "$P1")"
[[ -z $(snap -q diff "$PX" "$P1-kept") ]] || fail "$P1-kept is not the state rolled back from"
no_temp_keys
mount_at "$MNT" --redis "$URL" --prefix "$P1" --read-only
[[ $(cat "$MNT/chg.txt") == bbbb && $(cat "$MNT/d/ren.txt") == ren && $(cat "$MNT/keep.txt") == keep ]] ||
  fail "the mount after rollback does not show $P1-tue's files"
cmp "$MNT/big" "$MNT/.snapshots/$P1-tue/big" || fail "big after rollback"
fs_unmount "$MNT"
note "rollback: to another slot's snapshot and to a same-slot one; --keep-as in another slot refused"

fsck_clean "$P1" "$P1-mon" "$P1-tue" "$P1-wed" "$PX" "$P1-r" "$PR" "$kept" "$P1-kept"
note "ok"
