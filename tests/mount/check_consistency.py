#!/usr/bin/env python3
# check_consistency.py: reads every key of one filesystem straight from
# Redis and checks that the keys describe a sound tree. It trusts nothing
# the daemon says: it talks RESP to the server itself (a tiny client over
# the unix socket, or TCP), so a test can run it after a crash, a restart,
# or concurrent writes from two mounts.
#
# What must hold (the schema is core/store/keys.hpp):
#   * a superblock; a root inode 1 that is a directory;
#   * every key under the prefix is in the schema and has the right type;
#   * every directory entry names an inode that exists; names are non-empty,
#     at most 255 bytes, without '/', '.' or '..';
#   * a directory has exactly one entry naming it (the root none), its
#     `parent` field is that entry's directory, it is reachable from the
#     root, and its nlink is 2 + its subdirectories;
#   * any other inode's nlink is the number of entries naming it; an inode
#     no entry names has nlink 0 and is listed in ORPHANS (open somewhere,
#     or left by a crash) - anything else is a leak;
#   * DIR, XATTR and BLK keys belong to existing inodes of the right type;
#     no block holds bytes at or past the file size, none is longer than
#     the block size, and the `bytes` counters (per inode and in the
#     superblock) equal the bytes stored; the superblock's `inodes` equals
#     the number of inodes; every inode number is below `next_inode`.
#
# Exit status: 0 consistent, 1 not (one line per problem), 2 could not check.
#
# With --digest it only prints a hash of every filesystem key and value, to
# show that something (a read-only mount, say) changed nothing.
#
#   usage: check_consistency.py --socket PATH | --host H --port P
#                               --prefix P [--no-orphans] [-q] [--digest]
import argparse
import socket
import sys

TYPES = {"file", "dir", "symlink", "fifo", "chr", "blk", "sock"}
INODE_FIELDS = ("type", "mode", "uid", "gid", "size", "nlink", "rdev", "atime", "mtime", "ctime")


class RedisError(Exception):
    pass


class Redis:
    """Just enough RESP2 for SCAN, HGETALL, STRLEN and pipelines."""

    def __init__(self, path=None, host=None, port=None, password=None):
        if path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection((host, port))
        self.rf = self.sock.makefile("rb")
        if password:
            self.call("AUTH", password)

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = b"%d" % a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _read(self):
        line = self.rf.readline()
        if not line:
            raise RedisError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise RedisError("bad reply line %r" % line)

    def call(self, *args):
        self.sock.sendall(self._encode(args))
        r = self._read()
        if isinstance(r, RedisError):
            raise r
        return r

    def pipeline(self, commands, batch=1000):
        out = []
        for i in range(0, len(commands), batch):
            part = commands[i:i + batch]
            self.sock.sendall(b"".join(self._encode(c) for c in part))
            for _ in part:
                r = self._read()
                if isinstance(r, RedisError):
                    raise r
                out.append(r)
        return out

    def scan(self, pattern):
        cursor = b"0"
        keys = []
        while True:
            cursor, batch = self.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            keys.extend(batch)
            if cursor == b"0":
                return keys


def _pairs(flat):
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _int(v, default=None):
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


class Checker:
    def __init__(self, redis, prefix):
        self.r = redis
        self.prefix = prefix.encode()
        self.problems = []
        self.warnings = []
        self.no_opens = False

    def bad(self, msg):
        self.problems.append(msg)

    def run(self, no_orphans):
        keys = self.r.scan(self.prefix + b":*")
        types = self.r.pipeline([("TYPE", k) for k in keys])
        sb = None
        inodes, dirs, xattrs, blocks = {}, {}, set(), {}
        orphans = {}
        plen = len(self.prefix) + 1
        for key, t in zip(keys, types):
            rel = key[plen:]
            parts = rel.split(b":")
            kind = parts[0]
            want = "hash"
            if kind == b"SB" and len(parts) == 1:
                sb = True
            elif kind == b"INODE" and len(parts) == 2 and _int(parts[1]):
                inodes[int(parts[1])] = None
            elif kind == b"DIR" and len(parts) == 2 and _int(parts[1]):
                dirs[int(parts[1])] = None
            elif kind == b"XATTR" and len(parts) == 2 and _int(parts[1]):
                xattrs.add(int(parts[1]))
            elif kind == b"BLK" and len(parts) == 3 and _int(parts[1]) and _int(parts[2]) is not None:
                blocks[(int(parts[1]), int(parts[2]))] = 0
                want = "string"
            elif kind == b"ORPHANS" and len(parts) == 1:
                orphans = None
            elif kind == b"FREEZE" and len(parts) == 1:
                self.warnings.append("a FREEZE key is present (a snapshot in progress, or one that died)")
                want = "string"
            elif kind == b"MOUNT" and len(parts) == 2:
                want = "string"
            elif kind == b"CHANGED" and len(parts) == 1:
                # change tracking (incremental dumps): a set, or the string
                # "overflow", "written" or "untracked"
                want = t.decode()
                if want == "string" and self.r.call("GET", key) not in (b"overflow", b"written", b"untracked"):
                    self.bad("change record %r is a string but not overflow, written or untracked" % key)
                elif want != "string":
                    want = "set"
            elif kind == b"MOUNTS" and len(parts) == 1:
                want = "hash"  # the mounts' register: session -> what MOUNT:<session> holds
            elif kind == b"WRITEBACK" and len(parts) == 1:
                # the writeback mount that holds the filesystem alone: it
                # lapses with that mount's session
                want = "string"
                if self.r.call("PTTL", key) < 0:
                    self.bad("writeback hold %r has no TTL" % key)
            elif kind == b"SYNC" and len(parts) == 1:
                # a snapshot's request that the writeback mount send what
                # it holds, or its answer: it lapses
                want = "string"
                if self.r.call("PTTL", key) < 0:
                    self.bad("sync request %r has no TTL" % key)
            elif kind == b"OPEN" and len(parts) == 2 and _int(parts[1]):
                # opens held by live (or crashed) mounts: not the filesystem
                if self.no_opens:
                    self.bad("open counts left in %r: %r" % (key, self.r.call("HGETALL", key)))
            elif kind == b"OPLOG" and len(parts) == 2:
                # a connection's outcome records (redis.hpp): they expire
                want = "hash"
                if self.r.call("PTTL", key) < 0:
                    self.bad("outcome record %r has no TTL" % key)
            elif kind == b"TMP" and len(parts) == 3:
                # bytes of a write in flight; one whose script never ran (a
                # killed daemon) expires by itself, so it must have a TTL
                want = "string"
                if self.r.call("PTTL", key) < 0:
                    self.bad("write data key %r has no TTL" % key)
            else:
                self.bad("unknown key %r" % key)
                continue
            if t.decode() != want:
                self.bad("key %r is a %s, not a %s" % (key, t.decode(), want))
        if not sb:
            self.bad("no superblock %s:SB" % self.prefix.decode())
            return
        sbf = _pairs(self.r.call("HGETALL", self.prefix + b":SB"))
        if sbf.get(b"format") != b"redisfs":
            self.bad("superblock format is %r" % sbf.get(b"format"))
        bs = _int(sbf.get(b"block_size"), 0)
        if bs <= 0:
            self.bad("superblock block_size is %r" % sbf.get(b"block_size"))
            bs = 1 << 62
        next_ino = _int(sbf.get(b"next_inode"), 0)

        inos = sorted(inodes)
        for ino, flat in zip(inos, self.r.pipeline([("HGETALL", self.prefix + b":INODE:%d" % i) for i in inos])):
            inodes[ino] = {k.decode(errors="replace"): v for k, v in _pairs(flat).items()}
        dnos = sorted(dirs)
        for ino, flat in zip(dnos, self.r.pipeline([("HGETALL", self.prefix + b":DIR:%d" % i) for i in dnos])):
            dirs[ino] = _pairs(flat)
        bkeys = sorted(blocks)
        for bk, n in zip(bkeys, self.r.pipeline([("STRLEN", self.prefix + b":BLK:%d:%d" % bk) for bk in bkeys])):
            blocks[bk] = n
        if orphans is None:
            orphans = {int(k): v for k, v in _pairs(self.r.call("HGETALL", self.prefix + b":ORPHANS")).items()}

        # the inodes themselves
        for ino, a in inodes.items():
            missing = [f for f in INODE_FIELDS if f not in a]
            if missing:
                self.bad("inode %d lacks %s" % (ino, ", ".join(missing)))
                continue
            t = a["type"].decode(errors="replace")
            if t not in TYPES:
                self.bad("inode %d has type %r" % (ino, t))
            mode = a["mode"]
            try:
                if int(mode, 8) > 0o7777:
                    self.bad("inode %d mode %r has more than permission bits" % (ino, mode))
            except ValueError:
                self.bad("inode %d mode %r is not octal" % (ino, mode))
            for f in ("uid", "gid", "size", "nlink", "rdev", "atime", "mtime", "ctime"):
                if _int(a[f]) is None:
                    self.bad("inode %d field %s=%r is not a number" % (ino, f, a[f]))
            if next_ino and ino >= next_ino:
                self.bad("inode %d is not below next_inode %d" % (ino, next_ino))
            if t == "symlink" and len(a.get("target", b"")) != _int(a["size"], -1):
                self.bad("symlink %d: size %r but target is %d bytes" % (ino, a["size"], len(a.get("target", b""))))
            if t == "dir" and "parent" not in a:
                self.bad("directory %d has no parent field" % ino)
        if 1 not in inodes:
            self.bad("no root inode 1")
        elif inodes[1] and inodes[1].get("type") != b"dir":
            self.bad("root inode 1 is not a directory")

        def itype(ino):
            a = inodes.get(ino)
            return a.get("type", b"").decode(errors="replace") if a else None

        # entries
        refs = {}
        subdirs = {}
        parent_of = {}
        n_entries = 0
        for d, entries in dirs.items():
            if itype(d) != "dir":
                self.bad("DIR:%d exists but inode %d is %s" % (d, d, itype(d) or "missing"))
                continue
            for name, child in entries.items():
                n_entries += 1
                c = _int(child)
                where = "entry %r in directory %d" % (name, d)
                if not name or b"/" in name or name in (b".", b"..") or len(name) > 255:
                    self.bad("%s: bad name" % where)
                if c is None or c not in inodes:
                    self.bad("%s names missing inode %r" % (where, child))
                    continue
                refs[c] = refs.get(c, 0) + 1
                if itype(c) == "dir":
                    subdirs[d] = subdirs.get(d, 0) + 1
                    if c in parent_of:
                        self.bad("directory %d has two entries (in %d and %d)" % (c, parent_of[c], d))
                    parent_of[c] = d
        for ino, a in inodes.items():
            if not a or "nlink" not in a:
                continue
            nlink = _int(a["nlink"], -1)
            t = itype(ino)
            named = refs.get(ino, 0)
            if t == "dir":
                if ino == 1:
                    if named:
                        self.bad("the root is named by %d entries" % named)
                    if _int(a.get("parent")) != 1:
                        self.bad("the root's parent is %r, not 1" % a.get("parent"))
                elif named == 0:
                    if nlink == 0 and ino in orphans and not no_orphans:
                        continue  # removed while a process had it open (rmdir always orphans): freed later
                    self.bad("directory %d is named by no entry (nlink %d)" % (ino, nlink))
                    continue
                elif _int(a.get("parent")) != parent_of.get(ino):
                    self.bad("directory %d: parent field %r but its entry is in %d" % (ino, a.get("parent"),
                                                                                        parent_of.get(ino)))
                want = 2 + subdirs.get(ino, 0)
                if nlink != want:
                    self.bad("directory %d: nlink %d, want %d (2 + %d subdirectories)" % (ino, nlink, want,
                                                                                           subdirs.get(ino, 0)))
            elif named:
                if nlink != named:
                    self.bad("inode %d (%s): nlink %d but %d entries name it" % (ino, t, nlink, named))
            else:
                if nlink != 0:
                    self.bad("inode %d (%s) is named by no entry but has nlink %d (leaked)" % (ino, t, nlink))
                elif ino not in orphans:
                    self.bad("inode %d (%s) has nlink 0 and is not in ORPHANS (leaked)" % (ino, t))
                elif no_orphans:
                    self.bad("inode %d is an orphan (session %r) but none should be left" % (ino, orphans[ino]))
        for ino, session in orphans.items():
            if ino not in inodes:
                self.bad("ORPHANS names inode %d, which does not exist" % ino)
            elif refs.get(ino):
                self.warnings.append("ORPHANS names inode %d, which has %d entries" % (ino, refs[ino]))
        if no_orphans and orphans:
            self.bad("ORPHANS is not empty: %s" % ", ".join("%d" % i for i in sorted(orphans)))

        # reachability: walk from the root
        seen = {1}
        todo = [1]
        while todo:
            d = todo.pop()
            for child in (dirs.get(d) or {}).values():
                c = _int(child)
                if c in inodes and itype(c) == "dir" and c not in seen:
                    seen.add(c)
                    todo.append(c)
        for ino in inodes:
            if itype(ino) == "dir" and ino not in seen and refs.get(ino):
                self.bad("directory %d is not reachable from the root (a cycle?)" % ino)

        # xattrs, blocks, counters
        for ino in xattrs:
            if ino not in inodes:
                self.bad("XATTR:%d belongs to no inode" % ino)
        stored = {}
        for (ino, idx), n in blocks.items():
            stored[ino] = stored.get(ino, 0) + n
            if itype(ino) != "file":
                self.bad("BLK:%d:%d belongs to %s" % (ino, idx, "no inode" if ino not in inodes else
                                                       "a " + itype(ino)))
                continue
            size = _int(inodes[ino].get("size"), 0)
            if n > bs:
                self.bad("BLK:%d:%d holds %d bytes, more than the block size %d" % (ino, idx, n, bs))
            if n and idx * bs + n > size:
                self.bad("BLK:%d:%d holds bytes up to %d, past the size %d" % (ino, idx, idx * bs + n, size))
            if n == 0:
                self.warnings.append("BLK:%d:%d is empty" % (ino, idx))
        total = 0
        for ino, a in inodes.items():
            if not a:
                continue
            b = _int(a.get("bytes", b"0"), 0)
            total += b
            if b != stored.get(ino, 0):
                self.bad("inode %d: bytes %d but its blocks hold %d" % (ino, b, stored.get(ino, 0)))
        sb_bytes = _int(sbf.get(b"bytes"), -1)
        if sb_bytes != sum(blocks.values()):
            self.bad("superblock bytes %d but the blocks hold %d" % (sb_bytes, sum(blocks.values())))
        sb_inodes = _int(sbf.get(b"inodes"), -1)
        if sb_inodes != len(inodes):
            self.bad("superblock inodes %d but there are %d" % (sb_inodes, len(inodes)))
        self.summary = "%d inodes, %d entries, %d blocks (%d bytes), %d orphans" % (
            len(inodes), n_entries, len(blocks), sum(blocks.values()), len(orphans))


def digest(r, prefix):
    """sha256 of every filesystem key and value (MOUNT:*, MOUNTS, WRITEBACK, SYNC, OPEN:*, OPLOG:*, TMP:* and FREEZE left out)."""
    import hashlib
    prefix = prefix.encode()
    keys = sorted(k for k in r.scan(prefix + b":*")
                  if not k[len(prefix) + 1:].startswith((b"MOUNT:", b"MOUNTS", b"WRITEBACK", b"SYNC", b"FREEZE", b"TMP:", b"OPEN:", b"OPLOG:")))
    h = hashlib.sha256()
    types = r.pipeline([("TYPE", k) for k in keys])
    values = r.pipeline([("HGETALL", k) if t == b"hash" else ("GET", k) for k, t in zip(keys, types)])
    for k, t, v in zip(keys, types, values):
        h.update(b"%d:%s %s\n" % (len(k), k, t))
        if t == b"hash":
            for f, x in sorted(_pairs(v).items()):
                h.update(b"%d:%s=%d:%s\n" % (len(f), f, len(x), x))
        else:
            h.update(b"%d:%s\n" % (len(v or b""), v or b""))
    return "%s (%d keys)" % (h.hexdigest(), len(keys))


def main():
    ap = argparse.ArgumentParser(description="Check one redisfs filesystem's keys for consistency.")
    ap.add_argument("--socket")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--password")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--no-orphans", action="store_true", help="fail if any orphan is left")
    ap.add_argument("--no-opens", action="store_true",
                    help="fail if any OPEN key is left (nothing is mounted any more)")
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("--digest", action="store_true",
                    help="only print a digest of every filesystem key and value (to compare two states)")
    args = ap.parse_args()
    try:
        r = Redis(path=args.socket, host=args.host, port=args.port, password=args.password)
        if args.digest:
            print(digest(r, args.prefix))
            return 0
        c = Checker(r, args.prefix)
        c.no_opens = args.no_opens
        c.run(args.no_orphans)
    except (OSError, RedisError) as e:
        print("check_consistency: cannot check: %s" % e, file=sys.stderr)
        return 2
    for w in c.warnings:
        print("warning: %s" % w, file=sys.stderr)
    for p in c.problems:
        print("inconsistent: %s" % p, file=sys.stderr)
    if c.problems:
        print("check_consistency: %s: %d problem(s)" % (args.prefix, len(c.problems)), file=sys.stderr)
        return 1
    if not args.quiet:
        print("check_consistency: %s: consistent: %s" % (args.prefix, c.summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
