#!/usr/bin/env bash
# acl: everything a restricted ACL user (setup_fsuser: keys ~P1:* ~P1~* and
# ~P1S:* ~P1S~* only) does with redisfs and redisfs-snap works, and what
# it may not touch is refused with a clean error and left byte-identical.
#
# The server's default user (the admin) has a password; the admin makes a
# second filesystem P2 and a snapshot of it. As fsuser, with the password
# from --password-file, from REDISFS_PASSWORD and over TCP and the unix
# socket (unix://fsuser@/path.sock): a first mount makes P1, mount / write /
# read, copy P1 -> P1S while its own mount appends (copy-on-write: the
# mount's scripts write the staging prefix P1~copy~...; the copy is one
# instant of the writer), list (P2 is there but unreadable: list must not
# fail, and leaves P2 out rather than calling it damaged; the admin sees
# it), fsck, dump, delete, restore into P1S, mount P1S read-only and
# compare. Refused: a wrong password; copy to, dump of and restore into a
# prefix outside the ACL. Finally P2, its snapshot and every other key are
# byte-identical to what they were before fsuser ran anything. The ACL is
# the one README.md and redisfs(1) recommend, checked word for word.
. "$(dirname "$0")/lib.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 cmp sha256sum diff jq
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

# The ACL the tests give fsuser is the one README.md and redisfs(1)
# recommend, word for word (FSUSER_ACL_COMMANDS, prod/lib.sh).
python3 - "$HERE/../../README.md" "$HERE/../../man/redisfs.1" "${FSUSER_ACL_COMMANDS[*]}" <<'EOF' ||
import re, shlex, sys
readme, man, ours = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
want = "on >PASSWORD resetkeys ~P:* ~P~* " + ours
line = [l for l in readme.splitlines() if l.startswith("ACL SETUSER fsuser ")]
m = re.search(r"\nredis\\-cli ACL SETUSER fsuser (.*?)\n\.fi", man, re.S)
if len(line) != 1 or not m:
    sys.exit("no recommended ACL line in README.md (%d) or redisfs(1) (%s)" % (len(line), bool(m)))
said = {"README.md": line[0][len("ACL SETUSER fsuser "):]}
text = m.group(1).replace("\\(aq", "'").replace("\\-", "-").replace("\\e\n", " ")
said["redisfs(1)"] = " ".join(shlex.split(text))
for where, rules in said.items():
    if " ".join(rules.split()) != want:
        sys.exit("%s recommends: %s\nthe tests use:       %s" % (where, rules, want))
EOF
  fail "the recommended ACL and the tests' differ"

start_plain_redis_tcp s
set_admin_password s adminpw
SOCK=${SRV_SOCK[s]}
PORT=${SRV_PORT[s]}
P1=A$RANDOM$RANDOM
P1S=${P1}S
P2=B$RANDOM$RANDOM
OUT=X$RANDOM$RANDOM   # outside the ACL
# The ACL README.md and redisfs(1) recommend is the one this test runs.
want="${FSUSER_ACL_COMMANDS[*]}"
root=$REDISFS_TESTS_DIR/..
readme=$(grep -m1 '^ACL SETUSER fsuser ' "$root/README.md" | sed 's/.* resetchannels /resetchannels /')
[[ $readme == "$want" ]] || fail "README.md's ACL differs from the tested one: '$readme' vs '$want'"
man=$(sed -n '/^redis\\-cli ACL SETUSER fsuser/,/^\.fi/p' "$root/man/redisfs.1" |
  sed -e 's/\\e$//' -e 's/\\(aq//g' -e 's/\\-/-/g' | tr -s ' \n' ' ' | sed -e 's/.* resetchannels /resetchannels /' -e 's/ \.fi.*//')
[[ $man == "$want" ]] || fail "redisfs(1)'s ACL differs from the tested one: '$man' vs '$want'"
setup_fsuser s fsuser userpw "$P1" "$P1S"
acl_refuses s fsuser "$P1"  # the documented ACL really is restricted (ACL DRYRUN)
printf 'userpw\n' >"$T/pw"
chmod 0600 "$T/pw"
printf 'wrong\n' >"$T/badpw"

TCP_URL=redis://fsuser@127.0.0.1:$PORT
UNIX_URL=unix://fsuser@$SOCK
ADMIN_URL=unix://$SOCK

# as fsuser, password from the file (the default) or the environment
snap_user() {
  "$REDISFS_SNAP_BIN" --redis "$TCP_URL" --password-file "$T/pw" "$@"
}
snap_user_env() {
  REDISFS_PASSWORD=userpw "$REDISFS_SNAP_BIN" --redis "$UNIX_URL" "$@"
}
snap_admin() {
  REDISFS_PASSWORD=adminpw "$REDISFS_SNAP_BIN" --redis "$ADMIN_URL" "$@"
}

# ------------------------------------------------------------------ the admin's filesystem P2
REDISFS_PASSWORD=adminpw fs_mount "$T/m2" --redis "$ADMIN_URL" --prefix "$P2"
mkdir "$T/m2/dir"
echo "admin data" >"$T/m2/dir/f"
head -c 300000 /dev/urandom >"$T/m2/blob"
setfattr -n user.k -v v "$T/m2/blob" 2>/dev/null || true
fs_unmount "$T/m2"
snap_admin -q copy "$P2" "${P2}snap"
rcli s set unrelated:key value >/dev/null
[[ -z $(rcli s --scan --pattern "$P2:MOUNT:*") ]] || fail "the admin's session key outlived its unmount"

# every key that is not fsuser's, with its digest
others_digest() {
  rcli s --scan | { grep -Ev "^($P1|$P1S)[:~]" || true; } | sort |
    while IFS= read -r k; do
      printf '%s %s %s\n' "$k" "$(rcli s type "$k")" "$(rcli s debug digest-value "$k")"
    done
}
before=$(others_digest)
[[ $(grep -c "^$P2:" <<<"$before") -ge 4 ]] || fail "P2 has too few keys: $before"

# ------------------------------------------------------------------ what the user can do
out=$(redis-cli --user fsuser --pass userpw --no-auth-warning -s "$SOCK" get "$P2:SB" 2>&1) || true
[[ $out == *NOPERM* ]] || fail "the ACL lets fsuser read $P2: $out"

# a first mount makes the filesystem (TCP, --password-file)
fs_mount "$T/m1" --redis "$TCP_URL" --password-file "$T/pw" --prefix "$P1"
[[ $(rcli s exists "$P1:SB") == 1 ]] || fail "mounting as fsuser did not make $P1"
mkdir -p "$T/m1/a/b"
echo hello >"$T/m1/a/b/hello"
head -c 3000000 /dev/urandom >"$T/big"
cp "$T/big" "$T/m1/a/big"
mv "$T/m1/a/b/hello" "$T/m1/a/hello2"
ln -s hello2 "$T/m1/a/link"
[[ $(cat "$T/m1/a/hello2") == hello ]] || fail "read back"
cmp "$T/big" "$T/m1/a/big" || fail "3 MB file differs"
sync
fs_unmount "$T/m1"
note "mount as fsuser over TCP with --password-file: made $P1, wrote and read it"

# again over the unix socket, REDISFS_PASSWORD and unix://fsuser@/path
REDISFS_PASSWORD=userpw fs_mount "$T/m1" --redis "$UNIX_URL" --prefix "$P1"
cmp "$T/big" "$T/m1/a/big" || fail "3 MB file differs after a remount"
[[ $(readlink "$T/m1/a/link") == hello2 ]] || fail "symlink"
echo more >"$T/m1/more"
sync
fs_unmount "$T/m1"
note "mount as fsuser over unix://fsuser@ with REDISFS_PASSWORD"

# a wrong password: a clean error, quickly
expect_quick_fail 30 'WRONGPASS|password|auth' \
  "$REDISFS_BIN" -f --redis "$TCP_URL" --password-file "$T/badpw" --prefix "$P1" "$T/m1"
expect_quick_fail 30 'WRONGPASS|password|auth' snap_user_env --password-file "$T/badpw" list

# ------------------------------------------------------------------ snapshots as fsuser
# copy to a prefix outside the ACL: refused, nothing written, P1 not left frozen
expect_quick_fail 60 'NOPERM|permission|denied|ACL|not allowed' snap_user copy "$P1" "$OUT"
[[ -z $(rcli s --scan --pattern "$OUT*") ]] || fail "a refused copy left keys: $(rcli s --scan --pattern "$OUT*" | head)"
[[ $(rcli s exists "$P1:FREEZE") == 0 && $(rcli s exists "$P1:COW") == 0 ]] || fail "a refused copy left $P1 frozen"
# copy of a filesystem it may not read: refused
expect_quick_fail 60 'NOPERM|permission|denied|ACL|not allowed' snap_user copy "$P2" "$P1S"
[[ -z $(rcli s --scan --pattern "$P1S*") ]] || fail "a refused copy of $P2 wrote $P1S"

# while fsuser's own mount appends: its scripts copy into the snapshot's
# staging prefix ($P1~copy~..., which the ACL's ~P1~* allows)
fs_mount "$T/m1" --redis "$TCP_URL" --password-file "$T/pw" --prefix "$P1"
start_appender "$T/m1/log" "$T/stop"
writer=$appender_pid
REDISFS_FAULT=copy-staging-slow snap_user -q copy "$P1" "$P1S"
touch "$T/stop"
wait "$writer" || fail "fsuser's writer failed while $P1 was being copied"
fs_unmount "$T/m1"
REDISFS_PASSWORD=userpw fs_mount "$T/m1s" --redis "$UNIX_URL" --prefix "$P1S" --read-only
python3 - "$T/m1s/log" <<'PY' || fail "the copy of $P1 is not one instant of the writer"
import sys
nums = [int(x) for x in open(sys.argv[1], "rb").read().split()]
assert nums and nums == list(range(len(nums))), (len(nums), nums[-3:])
PY
fs_unmount "$T/m1s"
[[ $(rcli s hget "$P1S:SB" read_only) == 1 ]] || note "(the snapshot's read_only field: $(rcli s hget "$P1S:SB" read_only))"
note "copy $P1 -> $P1S as fsuser"

# list: shows fsuser's filesystems, and does not fail because P2 is forbidden
snap_user list >"$T/list.out" 2>"$T/list.err" || fail "list as fsuser failed: $(cat "$T/list.err")"
grep -q -- "$P1" "$T/list.out" || fail "list does not show $P1: $(cat "$T/list.out")"
grep -q -- "$P1S" "$T/list.out" || fail "list does not show $P1S: $(cat "$T/list.out")"
# $P2 and its snapshot are another tenant's: left out, never shown as damaged
! grep -q -- "$P2" "$T/list.out" || fail "list shows the forbidden $P2: $(grep -- "$P2" "$T/list.out" | head -2 | tr '\n' '|')"
! grep -q damaged "$T/list.out" || fail "list calls something damaged: $(cat "$T/list.out")"
[[ ! -s $T/list.err ]] || fail "list said on stderr: $(head -3 "$T/list.err" | tr '\n' '|')"
snap_user_env list --json >"$T/list.json" || fail "list --json as fsuser failed"
jq -e --arg p "$P1" 'map(select(.prefix == $p)) | length == 1' "$T/list.json" >/dev/null ||
  fail "list --json has no $P1: $(cat "$T/list.json")"
jq -e --arg p "$P2" 'all(.[]; (.prefix | startswith($p) | not) and .kind != "damaged")' "$T/list.json" >/dev/null ||
  fail "list --json shows the forbidden $P2, or something damaged: $(cat "$T/list.json")"
# the admin sees them all
snap_admin list --json >"$T/list-admin.json" || fail "list as the admin"
jq -e --arg a "$P2" --arg b "${P2}snap" '[.[] | select(.prefix == $a or .prefix == $b) | .kind] | sort == ["filesystem", "snapshot"]' \
  "$T/list-admin.json" >/dev/null || fail "the admin's list lacks $P2 or its snapshot: $(cat "$T/list-admin.json")"

snap_user fsck "$P1" || fail "fsck $P1 as fsuser"
snap_user_env fsck "$P1S" || fail "fsck $P1S as fsuser (REDISFS_PASSWORD)"

# dump, delete, restore into the allowed second prefix
snap_user -q dump -o "$T/p1.json" "$P1"
jq -e '.' "$T/p1.json" >/dev/null || fail "the dump is not JSON"
expect_quick_fail 60 'NOPERM|permission|denied|ACL|not allowed' snap_user dump -o "$T/p2.json" "$P2"
[[ ! -e $T/p2.json ]] || fail "a refused dump left its output file"
expect_quick_fail 60 'NOPERM|permission|denied|ACL|not allowed' snap_user restore --prefix "$OUT" "$T/p1.json"
[[ -z $(rcli s --scan --pattern "$OUT*") ]] || fail "a refused restore left keys"
snap_user_env -q delete "$P1S"
[[ -z $(rcli s --scan --pattern "$P1S*") ]] || fail "delete left keys of $P1S"
snap_user -q restore --prefix "$P1S" "$T/p1.json"
snap_user fsck "$P1S" || fail "fsck of the restored $P1S"
note "dump, delete, restore into $P1S as fsuser"

# the restored copy reads like the original (both mounted read-only)
fs_mount "$T/m1" --redis "$TCP_URL" --password-file "$T/pw" --prefix "$P1" --read-only
REDISFS_PASSWORD=userpw fs_mount "$T/m1s" --redis "$UNIX_URL" --prefix "$P1S" --read-only
diff -r --no-dereference "$T/m1" "$T/m1s" || fail "the restored filesystem differs from $P1"
cmp "$T/big" "$T/m1s/a/big" || fail "3 MB file differs in the restore"
fs_unmount "$T/m1s"
fs_unmount "$T/m1"

# ------------------------------------------------------------------ nothing else changed
after=$(others_digest)
if [[ $before != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") >&2 || true
  fail "keys outside fsuser's prefixes changed"
fi
[[ -z $(rcli s --scan --pattern "$P1~*") ]] || fail "temporary keys left under $P1~: $(rcli s --scan --pattern "$P1~*" | head -3)"
note "$P2, its snapshot and every other key are byte-identical"
