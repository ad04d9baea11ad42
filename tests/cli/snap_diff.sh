#!/usr/bin/env bash
# redisfs-snap diff on real mounts: between two snapshots after creates,
# deletes, renames (a file, a directory), hard links, an xattr change, a
# chmod, a same-size content change, a symlink replaced, a type change and
# an atime-only change, each listed as documented (redisfs-snap.1), odd
# bytes escaped zfs-style and base64 in --json; against the live
# filesystem while a writer renames files and appends, the diff is one
# instant and leaves no staging key; a diff reads and copies no block (a
# MONITOR of two diffs names none); unrelated filesystems are refused
# (one line) unless --force.
. "$(dirname "$0")/../mount/lib.sh"

need_snap
need_tools jq setfattr

# no_temp_keys: nothing of a diff's staging prefix is left on the server.
no_temp_keys() {
  local left
  left=$(rcli --scan --pattern "*~*" | { grep -v '^redisfs~FILESYSTEMS$' || true; })
  [[ -z $left ]] || fail "keys left behind: $(head -5 <<<"$left")"
}

mount_fs

note "populate, snapshot MON"
mkdir "$MNT/d1" "$MNT/d1/sub" "$MNT/gone-dir"
echo keep >"$MNT/keep.txt"
echo del >"$MNT/del.txt"
echo ren >"$MNT/ren.txt"
printf 'aaaa' >"$MNT/chg.txt"
echo mode >"$MNT/chmod.txt"
echo attr >"$MNT/xattr.txt"
echo read >"$MNT/read.txt"
echo hard >"$MNT/hard.txt"
echo inner >"$MNT/d1/sub/inner.txt"
echo gone >"$MNT/gone-dir/file"
echo was-a-file >"$MNT/typechg"
ln -s keep.txt "$MNT/sym"
printf 'odd' >"$MNT/odd name"$'\n'"x"
snap -q copy "$PREFIX" MON

note "change everything"
echo new >"$MNT/new.txt"
printf 'bytes' >"$MNT/"$'\xff\xfe'
rm "$MNT/del.txt"
rm -r "$MNT/gone-dir"
mv "$MNT/ren.txt" "$MNT/d1/renamed.txt"
mv "$MNT/d1" "$MNT/d1-renamed"
printf 'bbbb' | dd of="$MNT/chg.txt" conv=notrunc status=none
chmod 0600 "$MNT/chmod.txt"
setfattr -n user.k -v v "$MNT/xattr.txt"
ln "$MNT/hard.txt" "$MNT/hard2.txt"
rm "$MNT/sym"
ln -s new.txt "$MNT/sym"
rm "$MNT/typechg"
mkdir "$MNT/typechg"
echo more >>"$MNT/odd name"$'\n'"x"
cat "$MNT/read.txt" >/dev/null
rcli hset "$PREFIX:INODE:$(stat -c %i "$MNT/read.txt")" atime 1000000000 >/dev/null  # a read, as relatime records it
snap -q copy "$PREFIX" TUE

note "diff MON TUE"
snap -q diff MON TUE >"$T/diff"
cat >"$T/want" <<'EOF'
M	.
M	chg.txt
M	chmod.txt
R	d1 -> d1-renamed
M	d1-renamed
R	ren.txt -> d1-renamed/renamed.txt
-	del.txt
-	gone-dir
-	gone-dir/file
+	hard2.txt
M	hard.txt
+	new.txt
M	odd\0040name\0012x
-	sym
+	sym
-	typechg
+	typechg
M	xattr.txt
+	\0377\0376
EOF
diff <(sort "$T/want") <(sort "$T/diff") >"$T/delta" || fail "diff MON TUE differs from the expected (< expected, > got):
$(cat "$T/delta")"
# Sorted by path (the new one of a rename).
sed 's/^R\t.* -> /R\t/; s/^.\t//' "$T/diff" | grep -v '\\' | LC_ALL=C sort -c || fail "not sorted by path: $(cat "$T/diff")"

note "--json: one object per line, a path that is not UTF-8 in base64"
snap -q diff --json MON TUE >"$T/json"
[[ $(wc -l <"$T/json") == $(wc -l <"$T/diff") ]] || fail "--json has $(wc -l <"$T/json") lines, not $(wc -l <"$T/diff")"
jq -e -s 'all(.[]; .change and .type and .path)' "$T/json" >/dev/null || fail "--json objects: $(head -3 "$T/json")"
[[ $(jq -r 'select(.change == "R" and .type == "d") | .from + " " + .path' "$T/json") == "d1 d1-renamed" ]] ||
  fail "--json rename: $(grep '"R"' "$T/json")"
[[ $(jq -r 'select(.path | type == "object") | .path.base64' "$T/json") == "//4=" ]] ||
  fail "--json non-UTF-8 path: $(grep base64 "$T/json" || true)"
[[ $(jq -r 'select(.path == "odd name\nx") | .change' "$T/json") == M ]] || fail "--json odd name: $(cat "$T/json")"

note "the reverse, and a state against itself"
snap -q diff TUE MON >"$T/rev"
grep -qx $'R\td1-renamed -> d1' "$T/rev" || fail "reverse diff: $(cat "$T/rev")"
grep -qx $'+\tdel.txt' "$T/rev" || fail "reverse diff: $(cat "$T/rev")"
snap -q copy TUE TUE2
snap -q diff TUE TUE2 >"$T/none"
[[ ! -s $T/none ]] || fail "two copies of one state differ: $(cat "$T/none")"

note "a diff reads no block of file data, nor copies one for its instant (redisfs-snap(1), diff)"
[[ -n $(rcli --scan --pattern "$PREFIX:BLK:*" | head -1) ]] || fail "no block to leave alone"
redis-cli -s "$SOCK" monitor >"$T/monitor" &
monitor=$!
sleep 0.3
snap -q diff MON "$PREFIX" >/dev/null
snap -q diff MON TUE >/dev/null
sleep 0.3
kill "$monitor"
wait "$monitor" 2>/dev/null || true
grep -q '"HSCAN"' "$T/monitor" || fail "the monitor saw nothing of the diffs: $(head -3 "$T/monitor")"
if grep -q ':BLK:' "$T/monitor"; then
  fail "a diff named a block: $(grep -m3 ':BLK:' "$T/monitor" | cut -c1-200)"
fi

note "a file renamed and changed, a removed hard link, special files"
mv "$MNT/chg.txt" "$MNT/chg-moved.txt"
echo more >>"$MNT/chg-moved.txt"
rm "$MNT/hard2.txt"
mkfifo "$MNT/fifo"
mknod "$MNT/chr" c 1 3
mknod "$MNT/blk" b 7 0
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$MNT/sock"
snap -q copy "$PREFIX" THU
snap -q diff TUE THU >"$T/thu"
printf '%s\n' $'M\t.' $'R\tchg.txt -> chg-moved.txt' $'M\tchg-moved.txt' $'-\thard2.txt' $'M\thard.txt' \
  $'+\tfifo' $'+\tchr' $'+\tblk' $'+\tsock' >"$T/want"
diff <(sort "$T/want") <(sort "$T/thu") >"$T/delta" || fail "diff TUE THU differs from the expected (< expected, > got):
$(cat "$T/delta")"
# R, then M under the new path
[[ $(grep -F 'chg-moved.txt' "$T/thu" | cut -c1 | tr -d '\n') == RM ]] ||
  fail "a file renamed and changed is not R then M: $(cat "$T/thu")"
snap -q diff --json TUE THU >"$T/json"
for t in fifo:p chr:c blk:b sock:s chg-moved.txt:f; do
  [[ $(jq -r --arg p "${t%%:*}" 'select(.path == $p and .change != "R") | .type' "$T/json") == "${t##*:}" ]] ||
    fail "--json type of ${t%%:*}: $(grep -F "${t%%:*}" "$T/json")"
done
rm "$MNT/fifo" "$MNT/chr" "$MNT/blk" "$MNT/sock"

note "unrelated filesystems are refused unless --force; a missing one is named"
rcli hset OTHER:SB format redisfs version 1 block_size 65536 root 1 next_inode 2 inodes 1 bytes 0 created 1 >/dev/null
rcli hset OTHER:INODE:1 type dir mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 1 \
  atime 1 mtime 1 ctime 1 >/dev/null
rc=0
snap -q diff MON OTHER >"$T/out" 2>"$T/err" || rc=$?
((rc == 1)) || fail "unrelated: exit $rc"
[[ $(wc -l <"$T/err") == 1 && ! -s $T/out ]] && grep -q "not two states of one filesystem" "$T/err" ||
  fail "unrelated: $(cat "$T/err")"
snap -q diff --force MON OTHER >"$T/out" || fail "--force"
grep -q $'^-\tkeep.txt$' "$T/out" || fail "--force diff: $(cat "$T/out")"
rc=0
snap -q diff MON NOPE 2>"$T/err" || rc=$?
((rc == 1)) && grep -q "no filesystem at prefix 'NOPE'" "$T/err" || fail "missing B: exit $rc, $(cat "$T/err")"
no_temp_keys

note "diff MON against the live filesystem while a writer renames and appends: one instant"
N=40
mkdir "$MNT/a" "$MNT/b"
for ((k = 0; k < N; k++)); do
  echo "file $k" >"$MNT/a/f$k"
done
: >"$MNT/log"
snap -q copy "$PREFIX" WED
rename_writer "$N" &
WRITER=$!
sleep 0.5
for round in 1 2 3; do
  snap -q diff WED "$PREFIX" >"$T/live"
  # At any instant every file is in a/ or in b/, once: renamed or not,
  # never deleted, created or twice.
  if grep -E $'^[-+]\t[ab]/' "$T/live"; then
    fail "round $round: a file was seen in neither or both directories"
  fi
  moved=$(grep -cE $'^R\ta/f[0-9]+ -> b/f[0-9]+$' "$T/live" || true)
  note "round $round: $moved of $N files in b/ at the instant"
  no_temp_keys
done
touch "$T/stop"
wait "$WRITER"
snap -q diff WED "$PREFIX" >"$T/live"
ls "$MNT/b" | sed 's|^|R\ta/|; s|\(f[0-9]*\)$|\1 -> b/\1|' | sort >"$T/want"
# the writer may stop with b/ empty: no R line is then the right answer
{ grep -E $'^R\ta/' "$T/live" || true; } | sort >"$T/got"
diff "$T/want" "$T/got" >/dev/null || fail "quiet diff: $(diff "$T/want" "$T/got" || true)"
grep -qx $'M\tlog' "$T/live" || fail "the appended log is not M: $(cat "$T/live")"
no_temp_keys

unmount_fs
note "ok"
