#!/usr/bin/env bash
# eio_logged: every EIO the daemon answers has a log line naming the op, the
# inode and the cause, also when the kernel itself would have refused our
# answer (and failed the call with EIO, saying nothing): a size past 2^63-1,
# a root that is not a directory, an entry naming the root, a cycle of
# directory parents, a block key of the wrong type (which must never be
# read back as the file's bytes). A damaged inode does not hide its
# directory: the listing shows every name, and only the damaged one's stat
# fails. Names the kernel cannot take are left out of a listing, logged.
. "$(dirname "$0")/lib.sh"
need_snap

mount_fs -o attr_timeout=0,entry_timeout=0
log=${MOUNT_LOGS[$MNT]}
mkdir -p "$MNT/d/sub" "$MNT/x"
echo small >"$MNT/f"
head -c 200000 /dev/urandom >"$MNT/blocks"
f=$(stat -c %i "$MNT/f")
d=$(stat -c %i "$MNT/d")
b=$(stat -c %i "$MNT/blocks")

# expect_eio PATTERN COMMAND...: COMMAND fails with EIO, and a new line of
# the daemon's log matches PATTERN (grep -E)
expect_eio() {
  local pattern=$1 before out rc=0
  shift
  before=$(wc -l <"$log")
  out=$("$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "'$*' succeeded, want EIO"
  [[ $out == *"Input/output error"* ]] || fail "'$*' failed without EIO: $out"
  sleep 0.2
  tail -n +$((before + 1)) "$log" | grep -Eq "$pattern" ||
    fail "'$*' failed with EIO and no log line matching '$pattern': $(tail -n +$((before + 1)) "$log")"
  tail -n +$((before + 1)) "$log" | grep -E "$pattern" | head -1 | sed 's/^/-- log: /'
}

rcli hset "$PREFIX:INODE:$f" size 18446744073709551615 >/dev/null
expect_eio "Input/output error.*inode $f: size 18446744073709551615" stat "$MNT/f"
# read again and again (a monitor): the same line is not logged again
# within a minute (the next one counts those held back: unit tests)
before=$(wc -l <"$log")
for i in 1 2 3; do
  stat "$MNT/f" >/dev/null 2>&1 && fail "stat of a damaged inode succeeded"
done
sleep 0.2
n=$(tail -n +$((before + 1)) "$log" | grep -c "inode $f: size 18446744073709551615" || true)
((n == 0)) || fail "the same damage read again was logged $n more times within a minute"
rcli hset "$PREFIX:INODE:$f" size 6 >/dev/null

rcli del "$PREFIX:BLK:$b:1" >/dev/null
rcli hset "$PREFIX:BLK:$b:1" x y >/dev/null
expect_eio "read ino=$b.*block 1" cat "$MNT/blocks"
out=$(dd if="$MNT/blocks" bs=65536 skip=1 count=1 2>/dev/null | head -c 200 || true)
[[ $out != *WRONGTYPE* ]] || fail "a block of the wrong type was read as file data"

rcli hset "$PREFIX:DIR:$d" root-alias 1 >/dev/null
expect_eio "ino=1.*names the root" stat "$MNT/d/root-alias"
rcli hdel "$PREFIX:DIR:$d" root-alias >/dev/null

rcli hset "$PREFIX:INODE:$d" parent "$d" >/dev/null
expect_eio "rename ino=1 name=\"x\".*parent" mv "$MNT/x" "$MNT/d/sub/"
rcli hset "$PREFIX:INODE:$d" parent 1 >/dev/null

rcli hset "$PREFIX:INODE:$d" parent "$f" >/dev/null
expect_eio "rename ino=1 name=\"x\".*inode $f in its chain of parents is a file" mv "$MNT/x" "$MNT/d/sub/"
rcli hset "$PREFIX:INODE:$d" parent 1 >/dev/null

# a type changed under the kernel (it keeps the inode's old type)
echo typed >"$MNT/p"
p=$(stat -c %i "$MNT/p")
exec 3<"$MNT/p"
rcli hset "$PREFIX:INODE:$p" type sock >/dev/null
expect_eio "getattr ino=$p.*is a sock now.*knows it as a file" python3 -c 'import os; os.fstat(3)'
exec 3<&-
rcli hset "$PREFIX:INODE:$p" type file >/dev/null

rcli hset "$PREFIX:INODE:1" type file >/dev/null
expect_eio "getattr ino=1.*root.*not a directory" stat "$MNT"
rcli hset "$PREFIX:INODE:1" type dir >/dev/null

# one damaged inode in a directory: a key of the wrong type, a malformed
# field. The directory lists all its names (with attributes for the sound
# ones), the listing logs the damaged one, and its stat fails with EIO.
mkdir "$MNT/many"
for n in a b c d; do echo "$n" >"$MNT/many/$n"; done
wb=$(stat -c %i "$MNT/many/b")
wc_=$(stat -c %i "$MNT/many/c")
rcli del "$PREFIX:INODE:$wb" >/dev/null
rcli sadd "$PREFIX:INODE:$wb" x >/dev/null
rcli hset "$PREFIX:INODE:$wc_" mode bogus >/dev/null
before=$(wc -l <"$log")
names=$(ls "$MNT/many" 2>&1) || fail "a damaged inode failed its directory's listing: $names"
[[ $(echo $names) == "a b c d" ]] || fail "the listing with damaged inodes: $names"
sleep 0.2
tail -n +$((before + 1)) "$log" | grep -Eq "readdirplus ino=[0-9]+ name=\"b\".*INODE:$wb.*WRONGTYPE" ||
  fail "the listing did not log the inode of the wrong type: $(tail -n +$((before + 1)) "$log")"
tail -n +$((before + 1)) "$log" | grep -Eq "readdirplus ino=[0-9]+ name=\"c\".*inode $wc_.*mode" ||
  fail "the listing did not log the malformed inode: $(tail -n +$((before + 1)) "$log")"
for n in a d; do
  [[ $(cat "$MNT/many/$n") == "$n" ]] || fail "$n, beside the damaged inodes, does not read"
done
expect_eio "ino=$wb|INODE:$wb" stat "$MNT/many/b"
expect_eio "inode $wc_.*mode" stat "$MNT/many/c"

# a listing logs each damaged name once, also where a name did not fit one
# reply and opens the next (every name here is damaged, and long: a reply
# holds about a hundred, so the name that did not fit is one of them)
mkdir "$MNT/worse"
python3 -c 'import sys
for i in range(300): open(sys.argv[1] + "/damaged-%03d-" % i + "x" * 180, "w").close()' "$MNT/worse"
for ino in $(stat -c %i "$MNT/worse"/*); do
  echo "HSET $PREFIX:INODE:$ino mode bogus"
done | rcli >/dev/null
before=$(wc -l <"$log")
n=$(ls -f "$MNT/worse" | wc -l)
((n == 302)) || fail "a directory of 300 damaged inodes listed $n names (with . and ..), want 302"
sleep 0.2
logged=$(tail -n +$((before + 1)) "$log" | grep -c 'readdirplus .*name="damaged-')
((logged == 300)) || fail "one listing of 300 damaged names logged $logged lines, want one a name"

# names the kernel cannot take, written on the server by someone else: an
# entry's (empty, ".", "..", with a '/', over 255 bytes) or an attribute's
# (empty, no namespace, over 255 bytes). One would fail the whole listing
# (readdir, listxattr) with EIO and list "." twice; they are left out, the
# rest listed, and the listing logs what it left out. A symlink target the
# kernel refuses and an attribute value over 64 KiB are EIO, logged.
mkdir "$MNT/names"
echo kept >"$MNT/names/good"
g=$(stat -c %i "$MNT/names/good")
n=$(stat -c %i "$MNT/names")
for bad in "" . .. a/b "$(printf 'L%.0s' {1..300})"; do
  rcli hset "$PREFIX:DIR:$n" "$bad" "$g" >/dev/null
done
before=$(wc -l <"$log")
listed=$(ls -a "$MNT/names" 2>&1) || fail "unusable names failed their directory's listing: $listed"
[[ ${listed//$'\n'/ } == ". .. good" ]] || fail "the listing with unusable names: $listed"
sleep 0.2
tail -n +$((before + 1)) "$log" | grep -Eq "readdirplus ino=$n.*not a usable file name.*left out, with 4 other\(s\); fsck --repair" ||
  fail "the listing did not log the names it left out: $(tail -n +$((before + 1)) "$log")"
setfattr -n user.ok -v 1 "$MNT/names/good"
for bad in "" plain "user.$(printf 'a%.0s' {1..260})"; do
  rcli hset "$PREFIX:XATTR:$g" "$bad" v >/dev/null
done
rcli hset "$PREFIX:XATTR:$g" user.big "$(head -c 70000 /dev/zero | tr '\0' v)" >/dev/null
before=$(wc -l <"$log")
attrs=$(python3 -c 'import os, sys; print(" ".join(sorted(os.listxattr(sys.argv[1]))))' "$MNT/names/good" 2>&1) ||
  fail "unusable attribute names failed the list: $attrs"
[[ $attrs == "user.big user.ok" ]] || fail "listxattr with unusable names: $attrs"
sleep 0.2
tail -n +$((before + 1)) "$log" | grep -Eq "listxattr ino=$g.*not a usable attribute name.*left out, with 2 other\(s\)" ||
  fail "listxattr did not log the names it left out: $(tail -n +$((before + 1)) "$log")"
[[ $(getfattr --only-values -n user.ok "$MNT/names/good") == 1 ]] || fail "user.ok, beside the unusable names, does not read"
expect_eio "getxattr ino=$g name=\"user.big\".*70000 bytes" getfattr -n user.big "$MNT/names/good"
ln -s good "$MNT/names/link"
l=$(stat -c %i "$MNT/names/link")
rcli hset "$PREFIX:INODE:$l" target "$(printf 't%.0s' {1..5000})" >/dev/null
expect_eio "(readlink|lookup) ino=[0-9]+.*inode $l: symlink target of 5000 bytes" readlink -v "$MNT/names/link"
rcli hset "$PREFIX:INODE:$l" target good >/dev/null  # (fsck leaves a target to the hand)
# (the damage above stays beside them: the repair's exit says problems remain)
snap -q fsck --repair --force "$PREFIX" >"$T/repair" 2>&1 || true
grep -E "(DIR:$n|XATTR:$g)[^0-9]" "$T/repair" | grep -v '(repaired' && fail "names or attributes left unrepaired"
left=$(snap fsck "$PREFIX" 2>&1 | grep -E "(DIR:$n|XATTR:$g|INODE:$l)[^0-9]") && fail "after the repair: $left"
[[ $(ls -a "$MNT/names" | paste -sd ' ') == ". .. good link" ]] || fail "after the repair: $(ls -a "$MNT/names")"
[[ $(python3 -c 'import os, sys; print(" ".join(os.listxattr(sys.argv[1])))' "$MNT/names/good") == user.ok ]] ||
  fail "the attributes after the repair"

[[ $(cat "$MNT/f") == small ]] || fail "f does not read after its size was put back"
unmount_fs
