#!/usr/bin/env python3
# manifest.py: prints one line per path under ROOT (sorted) with what must
# survive an unmount, a restart or a restore: type, mode, nlink, uid, gid,
# size, inode number, mtime and ctime in ns, a hash of the content or the
# symlink target, and every xattr. atime is left out (reads may move it).
# Two manifests of the same tree are equal line for line.
#
#   usage: manifest.py ROOT [--no-ino] [--no-ctime]
import argparse
import hashlib
import os
import stat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--no-ino", action="store_true")
    ap.add_argument("--no-ctime", action="store_true")
    a = ap.parse_args()
    root = os.fsencode(a.root)
    paths = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            paths.append(os.path.join(d, n))
    for p in sorted(paths):
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        fields = [repr(rel), oct(st.st_mode), "nlink=%d" % st.st_nlink, "uid=%d" % st.st_uid,
                  "gid=%d" % st.st_gid]
        fields.append("mtime=%d" % st.st_mtime_ns)
        if not a.no_ctime:
            fields.append("ctime=%d" % st.st_ctime_ns)
        if not a.no_ino:
            fields.append("ino=%d" % st.st_ino)
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            fields += ["size=%d" % st.st_size, "sha256=%s" % h.hexdigest()[:24]]
        elif stat.S_ISLNK(st.st_mode):
            fields.append("target=%r" % os.readlink(p))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            fields.append("rdev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
            for x in sorted(os.listxattr(p, follow_symlinks=False)):
                fields.append("xattr %s=%s" % (x, hashlib.sha256(os.getxattr(p, x, follow_symlinks=False)).hexdigest()[:16]))
        print(" ".join(fields))


if __name__ == "__main__":
    main()
