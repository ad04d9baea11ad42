#!/usr/bin/env bash
# readonly: a --read-only mount refuses every change with EROFS, shows ro
# in /proc/mounts, serves reads, and changes no key at all (not even an
# atime, nor an open count of a file it holds open).
. "$(dirname "$0")/lib.sh"

mount_fs
mkdir -p "$MNT/dir/sub"
printf 'content\n' >"$MNT/file"
setfattr -n user.a -v 1 "$MNT/file"
ln -s file "$MNT/link"
touch -d '2000-01-01' "$MNT/file"
unmount_fs
before=$(check_consistency --digest)

mount_fs --read-only
opts=$(awk -v m="$MNT" '$2 == m { print $4 }' /proc/self/mounts)
[[ ,$opts, == *,ro,* ]] || fail "/proc/mounts shows '$opts' for a --read-only mount"
mount | grep -F " $MNT " | grep -q '[(,]ro[,)]' || fail "mount(8) does not show ro: $(mount | grep -F " $MNT ")"

python3 - "$MNT" <<'PY'
import errno, os, sys
m = sys.argv[1]
p = lambda *a: os.path.join(m, *a)
def fd_write():
    fd = os.open(p("file"), os.O_WRONLY)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
ops = {
    "create": lambda: os.open(p("new"), os.O_WRONLY | os.O_CREAT, 0o644),
    "open for writing": fd_write,
    "open O_TRUNC": lambda: os.open(p("file"), os.O_WRONLY | os.O_TRUNC),
    "append": lambda: os.open(p("file"), os.O_WRONLY | os.O_APPEND),
    "truncate": lambda: os.truncate(p("file"), 0),
    "mkdir": lambda: os.mkdir(p("newdir")),
    "rmdir": lambda: os.rmdir(p("dir", "sub")),
    "unlink": lambda: os.unlink(p("file")),
    "unlink symlink": lambda: os.unlink(p("link")),
    "rename": lambda: os.rename(p("file"), p("moved")),
    "rename dir": lambda: os.rename(p("dir"), p("moved")),
    "link": lambda: os.link(p("file"), p("hard")),
    "symlink": lambda: os.symlink("x", p("sym")),
    "mkfifo": lambda: os.mkfifo(p("fifo")),
    "mknod": lambda: os.mknod(p("node"), 0o100644),
    "chmod": lambda: os.chmod(p("file"), 0o600),
    "chown": lambda: os.chown(p("file"), 1234, 1234),
    "utime": lambda: os.utime(p("file"), (1, 1)),
    "touch (utime now)": lambda: os.utime(p("file")),
    "setxattr": lambda: os.setxattr(p("file"), "user.b", b"2"),
    "replace xattr": lambda: os.setxattr(p("file"), "user.a", b"2"),
    "removexattr": lambda: os.removexattr(p("file"), "user.a"),
    "chmod dir": lambda: os.chmod(p("dir"), 0o700),
}
bad = []
for label, op in ops.items():
    try:
        op()
        bad.append("%s: succeeded" % label)
    except OSError as e:
        if e.errno != errno.EROFS:
            bad.append("%s: %s, want EROFS" % (label, errno.errorcode.get(e.errno, e.errno)))
# reads work
assert open(p("file"), "rb").read() == b"content\n"
assert os.getxattr(p("file"), "user.a") == b"1"
assert sorted(os.listdir(m)) == ["dir", "file", "link"], os.listdir(m)
assert os.readlink(p("link")) == "file"
assert os.statvfs(m).f_flag & os.ST_RDONLY, "statvfs does not say read-only"
for b in bad:
    print("readonly: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
expect_fail "Read-only file system" touch "$MNT/new"
expect_fail "Read-only file system" sh -c "echo x >>'$MNT/file'"
expect_fail "Read-only file system" setfattr -n user.z -v 1 "$MNT/file"
cat "$MNT/file" "$MNT/link" >/dev/null
# (the digest leaves out the running system's keys: a read-only mount
# records no open, and writes no outcome or temporary key, while a file is
# held open and read: only its session key is its own)
exec 7<"$MNT/file"
head -c 3 <&7 >/dev/null
keys=$(rcli --scan --pattern "$PREFIX:*" | grep -E ":(OPEN|OPLOG|TMP):|:ORPHANS$" || true)
exec 7<&-
[[ -z $keys ]] || fail "a read-only mount wrote keys while a file was open: $keys"
unmount_fs
after=$(check_consistency --digest)
[[ $before == "$after" ]] || fail "a read-only mount changed keys: $before -> $after"
check_consistency --no-orphans
