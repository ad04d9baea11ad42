#!/usr/bin/env python3
"""Workload 8: everyday small-file work (issue 10), redisfs beside
passthrough_ll, the FUSE limit of this machine, with the tmpfs as a
reference.

redisfs is a mount of its own prefix (E8) on the main server, in two modes:
the default (multi-host, close-to-open) and -o writeback (the only mount of
its filesystem: the kernel's writeback cache, long caching; column
"redisfs wb"). passthrough_ll (libfuse's example) mirrors a fresh directory
of the private tmpfs, with its default options and, beside redisfs wb, with
its own -o writeback (the kernel's writeback cache too; column "pt wb");
tmpfs is a directory of the private tmpfs itself. Inputs are
made once and kept on the private tmpfs: a tarball of /usr/include
(/usr/include/linux with --quick), a copy of /usr/share/doc (of
/usr/share/doc/git with --quick) and a git repository holding one commit of
the first 3,000 files of /usr/include in name order (300 with --quick; fixed
author, committer and dates).

Per repetition and target, in a fresh mount:
  tar x      `tar xf` of the tarball, then `sync -f` (syncfs), seconds;
  rm -rf     of that extracted tree, seconds;
  creates    2,000 files (500 with --quick) in one directory from Python:
             open O_CREAT|O_EXCL, write 1 byte, close; files/s;
  dd         `dd if=/dev/zero of=F bs=1M count=256 conv=fsync` (32 with
             --quick), MB/s;
then unmounted and mounted again (redisfs: the same prefix; passthrough_ll:
the same directory), the page cache, dentries and inodes dropped (the
tmpfs: only dropped), and:
  cat        `cat F > /dev/null`, MB/s;
  sqlite     5,000 inserts (500 with --quick) with python3's sqlite3 in a new
             database, default journal mode (delete) and synchronous
             setting, one row per transaction (commit after each), seconds;
  git clone  `git clone --no-local` of the repository, seconds;
  cp -a      `cp -a` of the /usr/share/doc copy, seconds;
and everything is deleted (not timed) before the mount goes away.

For redisfs, the daemon's own counters (SIGUSR1, fs/op_stats.hpp) before
and after tar x and rm -rf give its FUSE requests and Redis round trips per
entry of the archive, and around cat per MiB (notes: the kernel's READs
are 1 MiB or 256 KiB, from one run to the next, and a run of 256 KiB
READs makes four times the requests). Goals (from issue 10, reported, never
asserted): redisfs's speed as a share of passthrough_ll's.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

n_creates = 500 if b.QUICK else 2000
dd_mib = 32 if b.QUICK else 256
n_inserts = 500 if b.QUICK else 5000
n_git = 300 if b.QUICK else 3000
src_parent, src_name = ("/usr/include", "linux") if b.QUICK else ("/usr", "include")
doc_source = "/usr/share/doc/git" if b.QUICK else "/usr/share/doc"
PREFIX = "E8"

COLUMNS = [("redisfs", "redisfs"), ("writeback", "redisfs wb"), ("passthrough", "passthrough_ll"),
           ("pt_wb", "pt wb"), ("tmpfs", "tmpfs")]
RATIOS = [("redisfs", "passthrough", "vs passthrough"), ("writeback", "passthrough", "wb vs passthrough"),
          ("writeback", "pt_wb", "wb vs pt wb"), ("redisfs", "tmpfs", "vs tmpfs")]

# inputs, once
w8 = b.workdir(b.STAGE, "w8")
tarball = os.path.join(w8, "tree.tar")
b.run(["tar", "cf", tarball, "-C", src_parent, src_name])
tar_mb = os.path.getsize(tarball) / b.MB
entries = int(b.run(f"tar tf {tarball} | wc -l").strip())
doc_copy = os.path.join(w8, "doc")
b.run(["cp", "-a", doc_source, doc_copy])
doc_entries = int(b.run(f"find {doc_copy} | wc -l").strip())
doc_mb = int(b.run(["du", "-s", "--block-size=1", doc_copy]).split()[0]) / b.MB
repo = os.path.join(w8, "repo")
git_env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@localhost",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@localhost",
               GIT_AUTHOR_DATE="2026-01-01T00:00:00Z", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
               GIT_CONFIG_NOSYSTEM="1", HOME=w8)
files = sorted(f for f in b.run(["find", "/usr/include", "-type", "f"]).split("\n") if f)[:n_git]
b.run(["git", "init", "-q", repo], env=git_env)
for path in files:
    dst = os.path.join(repo, os.path.relpath(path, "/usr"))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(path, "rb") as src, open(dst, "wb") as out:
        out.write(src.read())
b.run(["git", "-C", repo, "add", "-A"], env=git_env)
b.run(["git", "-C", repo, "commit", "-q", "-m", "bench"], env=git_env)
repo_mb = int(b.run(["du", "-s", "--block-size=1", os.path.join(repo, ".git")]).split()[0]) / b.MB

b.begin(8, f"everyday small-file work: {src_parent}/{src_name} ({tar_mb:.0f} MB, {entries:,} entries), "
           f"{n_creates:,} creates, {dd_mib} MiB dd, {n_inserts:,} sqlite commits, git clone, cp -a",
        columns=COLUMNS, ratios=RATIOS)
b.note(f"tar x: {src_parent}/{src_name}, {tar_mb:.0f} MB tarball, {entries:,} entries")
b.note(f"git clone: {n_git:,} files of /usr/include in one commit, .git {repo_mb:.0f} MB; "
       f"cp -a: {doc_source} ({doc_entries:,} entries, {doc_mb:.0f} MB), from a copy on the private tmpfs")

ROW_TAR, ROW_RM = "tar x (+ syncfs)", "rm -rf of the extracted tree"
ROW_CREATE = f"create + write 1 byte + close, {n_creates:,} files"
ROW_DD, ROW_CAT = f"dd {dd_mib} MiB, bs=1M, conv=fsync", "cat of that file after a remount"
ROW_SQL = f"sqlite, {n_inserts:,} inserts, one commit each"
ROW_GIT, ROW_CP = "git clone --no-local", f"cp -a {doc_source}"


def _sqlite(path):
    """n_inserts rows, each its own transaction: seconds."""
    t0 = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.commit()
    for i in range(n_inserts):
        db.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
        db.commit()
    db.close()
    return time.perf_counter() - t0


def _first_half(target, d, mount):
    """tar x, rm -rf, creates, dd in directory d; returns the dd file."""
    tree = os.path.join(d, "tree")
    os.mkdir(tree)
    counted = target in ("redisfs", "writeback")
    s0 = b.daemon_stats(mount) if counted else None
    seconds, _ = b.timed(f"tar xf {tarball} -C {tree} && sync -f {tree}")
    b.result(ROW_TAR, target, seconds, "s", better="lower")
    s1 = b.daemon_stats(mount) if counted else None
    seconds, _ = b.timed(["rm", "-rf", tree])
    b.result(ROW_RM, target, seconds, "s", better="lower")
    if counted:
        s2 = b.daemon_stats(mount)
        stats[f"{_stats_name(target)} tar x"] = b.stats_per(s0, s1, entries, "entry")
        stats[f"{_stats_name(target)} rm -rf"] = b.stats_per(s1, s2, entries, "entry")
    flat = os.path.join(d, "flat")
    os.mkdir(flat)
    names = [f"small-{i:05d}" for i in range(n_creates)]
    b.result(ROW_CREATE, target, n_creates / b.create_files(flat, names, b"x"), "files/s")
    big = os.path.join(d, "big")
    seconds, _ = b.timed(["dd", "if=/dev/zero", f"of={big}", "bs=1M", f"count={dd_mib}", "conv=fsync"])
    b.result(ROW_DD, target, dd_mib * b.MiB / seconds / b.MB, "MB/s")
    return big


def _second_half(target, d, big, mount=None):
    b.drop_caches()
    s0 = b.daemon_stats(mount) if mount else None
    seconds, _ = b.timed(f"cat {big} > /dev/null")
    b.result(ROW_CAT, target, dd_mib * b.MiB / seconds / b.MB, "MB/s")
    if mount:
        stats[f"{_stats_name(target)} cat"] = b.stats_per(s0, b.daemon_stats(mount), dd_mib, "MiB")
    b.result(ROW_SQL, target, _sqlite(os.path.join(d, "bench.sqlite")), "s", better="lower")
    seconds, _ = b.timed(["git", "clone", "-q", "--no-local", repo, os.path.join(d, "clone")], env=git_env)
    b.result(ROW_GIT, target, seconds, "s", better="lower")
    seconds, _ = b.timed(["cp", "-a", doc_copy, os.path.join(d, "doc")])
    b.result(ROW_CP, target, seconds, "s", better="lower")
    b.run(["rm", "-rf", "--one-file-system", d])


def _stats_name(target):
    return "redisfs -o writeback" if target == "writeback" else "redisfs"


def _redisfs_mount(options=()):
    return b.Mount(PREFIX, os.path.join(b.TMP, "mnt-8"), options=options)


WRITEBACK = ("-o", "writeback")
stats = {}
pt_mnt = os.path.join(b.TMP, "pt-8")
for rep in range(b.REPS):
    with _redisfs_mount() as m:
        d = b.workdir(m.mnt, f"rep-{rep}")
        big = _first_half("redisfs", d, m)
    with _redisfs_mount() as m:
        _second_half("redisfs", d, big, m)
    b.settle()
    with _redisfs_mount(WRITEBACK) as m:
        d = b.workdir(m.mnt, f"wb-{rep}")
        big = _first_half("writeback", d, m)
    with _redisfs_mount(WRITEBACK) as m:
        _second_half("writeback", d, big, m)
    b.settle()

    for target, options in (("passthrough", ()), ("pt_wb", WRITEBACK)):
        src = os.path.join(b.TMPFS_ROOT, f"pt8-{rep}")
        with b.passthrough_mount(src, pt_mnt, options) as m:
            d = b.workdir(pt_mnt, "w")
            big = _first_half(target, d, m)
        with b.passthrough_mount(src, pt_mnt, options):
            _second_half(target, d, big)
        os.rmdir(src)

    d = b.workdir(b.TMPFS, f"w8-{rep}")
    big = _first_half("tmpfs", d, None)
    _second_half("tmpfs", d, big)

for what, line in stats.items():
    b.note(f"{what}: {line}")
b.note("remount before cat: redisfs and passthrough_ll unmounted and mounted again; every target: caches dropped")
for target, label in (("redisfs", ""), ("writeback", " (redisfs -o writeback)")):
    for row, limit in ((ROW_TAR, 0.6), (ROW_RM, 0.6), (ROW_CREATE, 0.8), (ROW_DD, 0.8), (ROW_CAT, 0.8),
                       (ROW_SQL, 0.5)):
        b.goal(row, f">= {limit * 100:.0f}% of passthrough_ll's speed{label}", "min", limit,
               ref_target="passthrough", show="pct", perf=True, target=target)
b.raw("delete", PREFIX)
