#!/usr/bin/env bash
# Incremental dumps and restores on real mounts (issue 11; man
# redisfs-dump(5) INCREMENTAL): three snapshots of a mounted filesystem
# with deletes, renames, holes, a hole punched, a copy made by the server,
# xattr removal, truncation and new files in between; a full dump and two incrementals restored on a second
# redis-server give, after each step, the tree of the snapshot they were
# taken of (a tree digest: paths, types, modes, owners, sizes, content
# hashes, symlink targets, xattrs, hard-link groups). An incremental holds
# only the changed blocks. Applying one to the wrong base, to a modified
# base, or to a mounted one is refused with one line and leaves the server
# untouched, one to a base that was only read (atimes) applies; a dry run
# writes nothing; a restore killed before its apply leaves the base, one
# killed midway is finished by the next mount, copy or dump. The
# lineage is in `list --json`, a clone keeps its origin's, and fsck reports
# a malformed one. A version-1 dump (tests/cli/data/v1-dump.json, a full
# dump as redisfs-snap wrote it before incremental dumps) still restores.
. "$(dirname "$0")/../mount/lib.sh"

need_snap -q
need_tools jq setfattr getfattr fallocate
S2=$T/second.sock
snap2() {
  "$REDISFS_SNAP_BIN" -q --redis "unix://$S2" "$@"
}
r2() {
  redis-cli -s "$S2" "$@"
}

# tree_digest DIR: one line per path (but the root), sorted.
tree_digest() {
  python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
first = {}
lines = []
for d, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        p = os.path.join(d, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        what = ""
        if stat.S_ISREG(kind):
            with open(p, "rb") as f:
                what = hashlib.sha256(f.read()).hexdigest()
            key = st.st_ino
            what += " link-of=" + first.setdefault(key, rel)
        elif stat.S_ISLNK(kind):
            what = "-> " + os.readlink(p)
        xattrs = sorted((a, os.getxattr(p, a, follow_symlinks=False).hex())
                        for a in os.listxattr(p, follow_symlinks=False))
        lines.append(f"{rel!r} {oct(st.st_mode)} {st.st_uid}:{st.st_gid} {st.st_size if not stat.S_ISDIR(kind) else '-'} {what} {xattrs}")
print("\n".join(sorted(lines)))
PY
}

# same_tree PREFIX-ON-MAIN PREFIX-ON-SECOND: mounted read-only, the same tree.
same_tree() {
  mkdir -p "$T/a" "$T/b"
  PREFIX=$1 mount_at "$T/a" --read-only
  SOCK=$S2 PREFIX=$2 mount_at "$T/b" --read-only
  tree_digest "$T/a" >"$T/a.tree"
  tree_digest "$T/b" >"$T/b.tree"
  unmount_fs "$T/a"
  unmount_fs "$T/b"
  diff "$T/a.tree" "$T/b.tree" >&2 || fail "$2 on the second server is not the tree of $1"
  (($(wc -l <"$T/a.tree") > 10)) || fail "the tree of $1 is too small to tell anything"
}

# Records of a dump: blocks written, deletions.
blocks_in() { jq '[.records[] | select((.key | startswith("BLK:")) and has("string"))] | length' "$1"; }
deletes_in() { jq '[.records[] | select(has("delete"))] | length' "$1"; }

mount_fs
B=65536
note "populate"
mkdir -p "$MNT/docs/old" "$MNT/data" "$MNT/gone/deep"
for i in $(seq 1 20); do echo "note $i" >"$MNT/docs/n$i.txt"; done
head -c $((40 * B)) /dev/urandom >"$MNT/data/big.bin"
head -c $((3 * B + 100)) /dev/urandom >"$MNT/data/shrink.bin"
truncate -s $((10 * B)) "$MNT/data/sparse.bin"
printf 'start' | dd of="$MNT/data/sparse.bin" conv=notrunc status=none
echo "to be deleted" >"$MNT/gone/deep/x"
echo "renamed later" >"$MNT/docs/old/r.txt"
ln "$MNT/data/big.bin" "$MNT/data/big.link"
ln -s ../data/big.bin "$MNT/docs/big.sym"
setfattr -n user.keep -v "kept" "$MNT/data/big.bin"
setfattr -n user.drop -v "dropped later" "$MNT/data/big.bin"
setfattr -n user.dir -v "on a dir" "$MNT/docs"
BIG=$(stat -c %i "$MNT/data/big.bin")
snap copy "$PREFIX" MON

note "round 1: a block changed, a file deleted, renamed, extended past a hole, truncated, an xattr removed, 700 new files"
printf 'CHANGED' | dd of="$MNT/data/big.bin" bs=1 seek=$((7 * B + 5)) conv=notrunc status=none
rm -r "$MNT/gone"
mv "$MNT/docs/old/r.txt" "$MNT/docs/r-renamed.txt"
printf 'far' | dd of="$MNT/data/sparse.bin" bs=1 seek=$((20 * B)) conv=notrunc status=none
truncate -s $((B + 10)) "$MNT/data/shrink.bin"
setfattr -x user.drop "$MNT/data/big.bin"
mkdir "$MNT/many"
for i in $(seq 1 700); do echo "$i" >"$MNT/many/f$i"; done
snap copy "$PREFIX" TUE

note "round 2: a directory renamed, a hard link removed, a file emptied, a new sparse file, chmod, a hole punched, a copy"
mv "$MNT/many" "$MNT/many-renamed"
rm "$MNT/data/big.link"
: >"$MNT/docs/n1.txt"
truncate -s $((5 * B)) "$MNT/data/new-sparse.bin"
printf 'mid' | dd of="$MNT/data/new-sparse.bin" bs=1 seek=$((2 * B)) conv=notrunc status=none
chmod 0600 "$MNT/docs/n2.txt"
setfattr -n user.keep -v "changed" "$MNT/data/big.bin"
fallocate --punch-hole -o $((2 * B + 10)) -l $((3 * B)) "$MNT/data/big.bin" # 2 cut, 3 and 4 gone, 5 zeroed
cp "$MNT/data/big.bin" "$MNT/data/big.copy" # (copy_file_range: the server copies the 38 blocks)
snap copy "$PREFIX" WED
unmount_fs

note "lineage: list --json, a clone, the refusals of dump --since"
snap list --json >"$T/list.json"
id_of() { jq -r --arg p "$1" '.[] | select(.prefix == $p) | .snapshot_id' "$T/list.json"; }
lineage_of() { jq -r --arg p "$1" '.[] | select(.prefix == $p) | .lineage | join(" ")' "$T/list.json"; }
MON_ID=$(id_of MON)
TUE_ID=$(id_of TUE)
WED_ID=$(id_of WED)
[[ $MON_ID =~ ^[0-9a-f]{32}$ && $TUE_ID =~ ^[0-9a-f]{32}$ && $MON_ID != "$TUE_ID" ]] || fail "snapshot ids: $MON_ID $TUE_ID"
[[ $(lineage_of MON) == "$MON_ID" ]] || fail "MON's lineage: $(lineage_of MON)"
[[ $(lineage_of WED) == "$MON_ID $TUE_ID $WED_ID" ]] || fail "WED's lineage: $(lineage_of WED)"
[[ $(id_of "$PREFIX") == null && $(lineage_of "$PREFIX") == "$MON_ID $TUE_ID $WED_ID" ]] ||
  fail "the live filesystem's lineage: $(lineage_of "$PREFIX")"
snap copy --writable "$PREFIX" CLONE
snap list --json >"$T/list.json"
[[ $(id_of CLONE) == null && $(lineage_of CLONE) == "$MON_ID $TUE_ID $WED_ID" ]] || fail "a clone's lineage"
expect_fail "does not descend from 'TUE'" snap dump MON --since TUE -o "$T/x.json"
expect_fail "no snapshot id" snap dump WED --since "$PREFIX" -o "$T/x.json"
expect_fail "no snapshot id" snap dump "$PREFIX" --since MON -o "$T/x.json"
[[ ! -e $T/x.json ]] || fail "a refused dump left a file"

note "dumps: a full one and two incrementals"
snap dump MON -o "$T/mon.json"
snap dump TUE --since MON -o "$T/tue.json"
snap dump WED --since TUE -o "$T/wed.json"
[[ $(jq .version "$T/mon.json") == 1 && $(jq .version "$T/tue.json") == 2 ]] || fail "dump versions"
[[ $(jq -r .base_snapshot_id "$T/tue.json") == "$MON_ID" && $(jq -r .base_snapshot_id "$T/wed.json") == "$TUE_ID" ]] ||
  fail "the header's base"
# round 1's blocks: one of big.bin, sparse.bin's new one, shrink.bin's cut
# boundary block, and one per new file; its deletions: shrink.bin's two
# last blocks, gone/ (2 dirs, 1 file and its block: 5 keys with the
# file's INODE, the dirs' INODE and DIR), big.bin's XATTR stays (user.keep)
[[ $(jq '[.records[] | select(.key | startswith("BLK:'"$BIG"':"))] | length' "$T/tue.json") == 1 ]] ||
  fail "tue.json carries more than the one changed block of big.bin"
[[ $(blocks_in "$T/tue.json") == $((3 + 700)) ]] || fail "tue.json: $(blocks_in "$T/tue.json") blocks, expected 703"
[[ $(jq '[.records[] | select(has("delete") and (.key | startswith("BLK:")))] | length' "$T/tue.json") == 3 ]] ||
  fail "tue.json: the deleted blocks (2 of shrink.bin, 1 of gone/deep/x)"
# round 2: new-sparse.bin's one block, big.bin's two the punch cut and
# zeroed, big.copy's 38; n1.txt emptied and the two blocks the punch
# removed (deletions)
[[ $(blocks_in "$T/wed.json") == $((3 + 38)) ]] || fail "wed.json: $(blocks_in "$T/wed.json") blocks, expected 41"
[[ $(jq '[.records[] | select(has("delete") and (.key | startswith("BLK:'"$BIG"':")))] | length' "$T/wed.json") == 2 ]] ||
  fail "wed.json: the blocks of big.bin the punch removed are not deleted"
(($(deletes_in "$T/wed.json") >= 3)) || fail "wed.json: $(deletes_in "$T/wed.json") deletions, 3 at least expected"
(($(stat -c %s "$T/tue.json") < $(stat -c %s "$T/mon.json"))) || fail "the incremental is not smaller than the full dump"

note "verify: an incremental alone, a chain, and broken chains, without a server"
# expect_verify_fail TEXT FILE...: exit 1 and exactly one problem line on
# stdout, saying TEXT.
expect_verify_fail() {
  local text=$1 out rc=0
  shift
  out=$("$REDISFS_SNAP_BIN" -q verify "$@" 2>/dev/null) || rc=$?
  ((rc == 1)) || fail "verify $* exited $rc, expected 1"
  [[ $(printf '%s\n' "$out" | grep -c .) == 1 && $out == *"$text"* ]] || fail "verify $*: expected one line saying '$text': $out"
}
err=$("$REDISFS_SNAP_BIN" verify "$T/tue.json" 2>&1 >/dev/null) || fail "verify of an incremental alone"
[[ $err == *"incremental dump of TUE since snapshot $MON_ID"*sound* ]] || fail "verify summary: $err"
[[ $(grep -c "its base, snapshot $MON_ID, is not checked" <<<"$err") == 1 ]] || fail "verify alone must say its base is unchecked: $err"
out=$("$REDISFS_SNAP_BIN" verify "$T/mon.json" "$T/tue.json" "$T/wed.json" 2>"$T/verify.err") || fail "verify of the chain: $out"
[[ -z $out ]] || fail "verify of a sound chain printed problems: $out"
! grep -q "not checked" "$T/verify.err" || fail "a checked chain says a base is unchecked: $(cat "$T/verify.err")"
[[ $("$REDISFS_SNAP_BIN" verify --json "$T/mon.json" "$T/tue.json" "$T/wed.json" 2>/dev/null |
  jq -c '[.sound, [.files[] | .base_checked]]') == '[true,[null,true,true]]' ]] || fail "verify --json of the chain"
expect_verify_fail "$T/wed.json: its base is snapshot '$TUE_ID', but $T/mon.json leaves snapshot '$MON_ID'" \
  "$T/mon.json" "$T/wed.json"
expect_verify_fail "$T/wed.json: its base is snapshot '$TUE_ID', but $T/mon.json leaves snapshot '$MON_ID'" \
  "$T/mon.json" "$T/wed.json" "$T/tue.json"
# one byte of a block changed: the checksum says so
sed 's/"BLK:\([0-9]*\):0","string":"./"BLK:\1:0","string":"Q/' "$T/tue.json" >"$T/tue-modified.json"
! cmp -s "$T/tue.json" "$T/tue-modified.json" || fail "the modified dump is the same"
expect_verify_fail "$T/tue-modified.json: dump: checksum mismatch" "$T/mon.json" "$T/tue-modified.json" "$T/wed.json"

note "a chain restored on a second server gives each snapshot's tree"
redis-server --port 0 --unixsocket "$S2" --unixsocketperm 700 --save '' --appendonly no --enable-debug-command local \
  --daemonize yes --dir "$T" --logfile "$T/second.log" --pidfile "$T/second.pid" || fail "second server"
EXTRA_SOCKS+=("$S2")
for ((i = 0; i < 100; i++)); do
  [[ $(r2 ping 2>/dev/null) == PONG ]] && break
  sleep 0.05
done
snap2 restore "$T/mon.json" --prefix COPY
same_tree MON COPY
expect_fail "applies to snapshot $TUE_ID" snap2 restore "$T/wed.json" --prefix COPY
snap2 restore --dry-run "$T/tue.json" --prefix COPY
expect_fail "an incremental dump cannot be resumed" snap2 restore --resume "$T/tue.json" --prefix COPY
expect_fail "--damaged takes a full dump" snap2 restore --damaged "$T/tue.json" --prefix COPY
snap2 restore "$T/tue.json" --prefix COPY
same_tree TUE COPY
"$REDISFS_SNAP_BIN" -q --redis "unix://$S2" restore - --prefix COPY <"$T/wed.json"
same_tree WED COPY
snap2 fsck COPY >/dev/null || fail "fsck of the restored chain"
[[ $(r2 hget COPY:SB snapshot_id) == "$WED_ID" ]] || fail "the restored chain is not snapshot WED"

note "a base that was only read (its atimes moved) still takes its incremental"
snap2 -q restore "$T/mon.json" --prefix READ
mkdir -p "$T/read"
SOCK=$S2 PREFIX=READ mount_at "$T/read"
cat "$T/read/docs/n3.txt" "$T/read/data/big.bin" >/dev/null
unmount_fs "$T/read"
# (what a read records is the atime alone, under relatime only when it is
# due: moved here by hand as well, for sure)
for ino in $(r2 --scan --pattern 'READ:INODE:*' | head -5); do
  r2 hset "$ino" atime 1700000000000000000 >/dev/null
done
# (--force is not needed, and replaces nothing: the incremental applies)
snap2 restore "$T/tue.json" --prefix READ --force >"$T/out" 2>&1 ||
  fail "an incremental onto a base whose atimes moved was refused: $(cat "$T/out")"
! grep -q 'replacing' "$T/out" || fail "an incremental restore with --force says it replaced: $(cat "$T/out")"
same_tree TUE READ

note "wrong, modified, mounted or missing bases are refused; the server is untouched"
snap2 restore "$T/mon.json" --prefix BASE
before=$(r2 debug digest)
expect_fail "applies to snapshot $TUE_ID" snap2 restore "$T/wed.json" --prefix BASE
expect_fail "applies to snapshot $TUE_ID" snap2 restore --dry-run "$T/wed.json" --prefix BASE
expect_fail "there is no filesystem there" snap2 restore "$T/tue.json" --prefix NOWHERE
[[ $(r2 debug digest) == "$before" ]] || fail "a refused incremental restore changed the server"
mkdir -p "$T/base"
SOCK=$S2 PREFIX=BASE mount_at "$T/base"
expect_fail "mounted" snap2 restore "$T/tue.json" --prefix BASE
echo "edit" >>"$T/base/docs/n3.txt"
unmount_fs "$T/base"
# a registered mount whose session key never lapses: no mount's, and the
# refusal names the repair
r2 hset BASE:MOUNTS ghost "v2 host:1 /mnt" >/dev/null
r2 set BASE:MOUNT:ghost "v2 host:1 /mnt" >/dev/null
expect_fail "BASE:MOUNT:ghost never lapses, as no running tool's or mount's does: \`redisfs-snap fsck --repair BASE\` removes it" \
  snap2 restore "$T/tue.json" --prefix BASE
# (and the repair it names does so: the ghost is no live mount to refuse
# a repair for)
snap2 -q fsck --repair BASE >"$T/ghost.out" 2>&1 || fail "fsck --repair of the ghost mount: $(cat "$T/ghost.out")"
[[ $(r2 exists BASE:MOUNT:ghost) == 0 ]] || fail "fsck --repair left the session key that never lapses"
[[ $(r2 hexists BASE:MOUNTS ghost) == 0 ]] || fail "fsck --repair left the registration of the session it removed"
before=$(r2 debug digest)
expect_fail "has changed since snapshot $MON_ID" snap2 restore "$T/tue.json" --prefix BASE
[[ $(r2 debug digest) == "$before" ]] || fail "a refused incremental restore changed the server"

note "a restore killed before its apply leaves the base; one killed midway is finished by the next mount"
snap2 restore "$T/mon.json" --prefix KILLED
before=$(r2 debug digest)
rc=0
REDISFS_FAULT=restore-incremental-staged-crash snap2 restore "$T/tue.json" --prefix KILLED || rc=$?
((rc == 137)) || fail "the fault did not end the restore ($rc)"
r2 del KILLED:RESERVED >/dev/null  # as its TTL would
r2 --scan --pattern 'KILLED~restore~*' | xargs -r redis-cli -s "$S2" del >/dev/null  # as their TTL would
[[ $(r2 debug digest) == "$before" ]] || fail "a restore killed before its apply changed the base"
same_tree MON KILLED
rc=0
REDISFS_FAULT=install-delta-crash snap2 restore "$T/tue.json" --prefix KILLED || rc=$?
((rc == 137)) || fail "the fault did not end the apply ($rc)"
[[ $(r2 get KILLED:INSTALLING) == delta* ]] || fail "no journal after a crash midway"
r2 del KILLED:RESERVED >/dev/null  # as its TTL would
same_tree TUE KILLED
[[ $(r2 exists KILLED:INSTALLING) == 0 ]] || fail "the journal is left"
[[ -z $(r2 --scan --pattern 'KILLED~*') ]] || fail "staging keys are left: $(r2 --scan --pattern 'KILLED~*' | head -3)"

note "an apply killed midway keeps what it staged until it is finished: a copy or dump of it finishes it first"
for target in KILLED2 KILLED3; do
  snap2 -q restore "$T/mon.json" --prefix $target
  rc=0
  REDISFS_FAULT=install-delta-crash snap2 restore "$T/tue.json" --prefix $target || rc=$?
  ((rc == 137)) || fail "the fault did not end the apply into $target ($rc)"
  r2 del $target:RESERVED >/dev/null # as its TTL would
  # (the old state is changed in place: the staged keys no longer expire,
  # so the move can end whenever the next tool or mount comes)
  staged=$(r2 --scan --pattern "$target~restore~*" | grep -E ':(SB|INODE:[0-9]+|DIR:[0-9]+|XATTR:[0-9]+|BLK:[0-9]+:[0-9]+)$' || true)
  index=$(r2 --scan --pattern "$target~restore~*~index")
  [[ -n $staged && -n $index ]] || fail "nothing staged, or no index, is left by the apply killed midway"
  for key in $staged $index; do
    [[ $(r2 pttl "$key") == -1 ]] || fail "$key still expires ($(r2 pttl "$key") ms)"
  done
done
snap2 copy KILLED2 K2 >"$T/out" 2>"$T/err" || fail "a copy of a half-applied restore: $(cat "$T/err")"
grep -q "warning: finished the interrupted restore, copy or rollback into 'KILLED2' first" "$T/err" ||
  fail "the copy does not say it finished the move: $(cat "$T/err")"
same_tree TUE K2
snap2 -q dump KILLED3 -o "$T/killed3.json" 2>"$T/err" || fail "a dump of a half-applied restore: $(cat "$T/err")"
grep -q "warning: finished the interrupted restore, copy or rollback into 'KILLED3' first" "$T/err" ||
  fail "the dump does not say it finished the move: $(cat "$T/err")"
snap2 -q restore "$T/killed3.json" --prefix K3
same_tree TUE K3
for p in KILLED2 KILLED3; do
  [[ $(r2 exists $p:INSTALLING) == 0 && -z $(r2 --scan --pattern "$p~*") ]] || fail "the move into $p left keys"
done

note "a version-1 dump as the old redisfs-snap wrote it still restores"
V1=$REDISFS_TESTS_DIR/cli/data/v1-dump.json
[[ $(jq .version "$V1") == 1 ]] || fail "the fixture is not version 1"
snap2 restore "$V1" --prefix OLD
snap2 fsck OLD >/dev/null || fail "fsck of the version-1 dump"
mkdir -p "$T/old"
SOCK=$S2 PREFIX=OLD mount_at "$T/old" --read-only
[[ $(cat "$T/old/hello.txt") == "hello, world" ]] || fail "the version-1 dump's file"
unmount_fs "$T/old"
snap2 list --json | jq -e '.[] | select(.prefix == "OLD") | .snapshot_id == null and .lineage == []' >/dev/null ||
  fail "a filesystem from before lineage has an empty one"

note "fsck reports a malformed lineage"
rcli hset MON:SB lineage "not-an-id" >/dev/null
expect_fail "lineage" snap fsck MON
rcli hset MON:SB lineage "$TUE_ID" >/dev/null
expect_fail "does not end with" snap fsck MON
