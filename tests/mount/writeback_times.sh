#!/usr/bin/env bash
# writeback_times: on a writeback mount the kernel keeps regular files'
# mtime and ctime (on its coarse clock) and writes them back; the server
# must store those, so a remount shows the times the mount showed, after
# every kind of change: a second write within the kernel's clock tick
# (no write-back follows it), link and unlink of another name, rename,
# truncate, an open with O_TRUNC, chmod, an xattr set and removed, utimes
# then a write, fsync, tar's create, write, chown, chmod and utimes
# (gathered: one flush), and a create with nothing written that the mount
# answered itself (it sends the create later, with the times it showed).
. "$(dirname "$0")/lib.sh"

stamps() {  # DIR: one line per name: atime, mtime and ctime in ns, size
  python3 - "$1" <<'PY'
import os, sys
d = sys.argv[1]
for n in sorted(os.listdir(d)):
    s = os.lstat(os.path.join(d, n))
    print(n, s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns, s.st_size)
PY
}

mount_fs -o writeback
mkdir "$MNT/t"
python3 - "$MNT/t" <<'PY'
import os, sys, time
os.chdir(sys.argv[1])
def put(p, data, mode="ab"):
    with open(p, mode) as f:
        f.write(data)
for i in range(10):  # the directory's attributes held: the mount answers the create itself
    os.stat(".")
    os.close(os.open("empty%d" % i, os.O_WRONLY | os.O_CREAT, 0o644))
for i in range(20):  # the second write within a tick, mostly
    put("twice%d" % i, b"a", "wb"); put("twice%d" % i, b"b")
for i in range(10):
    put("link%d" % i, b"x", "wb"); os.link("link%d" % i, "link%d.2" % i); os.unlink("link%d.2" % i)
    put("move%d" % i, b"x", "wb"); os.rename("move%d" % i, "moved%d" % i)
    put("cut%d" % i, b"xyz", "wb"); os.truncate("cut%d" % i, 1)
    put("mode%d" % i, b"x", "wb"); os.chmod("mode%d" % i, 0o600)
    put("xattr%d" % i, b"x", "wb"); os.setxattr("xattr%d" % i, "user.a", b"1")
    put("unxattr%d" % i, b"x", "wb"); os.setxattr("unxattr%d" % i, "user.a", b"1"); os.removexattr("unxattr%d" % i, "user.a")
    put("rewrite%d" % i, b"xyz", "wb"); put("rewrite%d" % i, b"ab", "wb")  # O_TRUNC
    put("utime%d" % i, b"x", "wb"); os.utime("utime%d" % i, (1, 1)); put("utime%d" % i, b"y")
    with open("sync%d" % i, "wb") as f:
        f.write(b"x"); os.fsync(f.fileno()); f.write(b"y")
for i in range(3):
    put("later%d" % i, b"x", "wb"); time.sleep(0.02); put("later%d" % i, b"y")
PY
mkdir "$T/src"
for i in $(seq 1 30); do echo "file $i" >"$T/src/f$i"; chmod 640 "$T/src/f$i"; done
tar -C "$T" -cf "$T/src.tar" src
tar -C "$MNT/t" -xf "$T/src.tar"
stamps "$MNT/t" >"$T/shown"
stamps "$MNT/t/src" >>"$T/shown"
unmount_fs
mount_fs
stamps "$MNT/t" >"$T/stored"
stamps "$MNT/t/src" >>"$T/stored"
unmount_fs
[[ $(wc -l <"$T/shown") -eq 154 ]] || fail "expected 154 names, saw $(wc -l <"$T/shown")"
diff "$T/shown" "$T/stored" >"$T/delta" ||
  fail "$(grep -c '^<' "$T/delta") file(s) show other times after a remount: $(head -4 "$T/delta")"
check_consistency || fail "inconsistent"
