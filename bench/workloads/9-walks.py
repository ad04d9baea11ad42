#!/usr/bin/env python3
"""Workload 9: walks that must stay linear (issue 10).

A filesystem of N empty files in 1,000 directories, N = 100,000, and also
1,000,000 with --big (5,000 and 20,000 with --quick). Creating a million
files through FUSE takes long, so it is written straight into Redis in the
key schema of core/store/keys.hpp: the superblock, root, directory and file
hashes are copies of those a real mount made for a template filesystem
(mkdir + one empty file, prefix W9T), with the inode numbers, link counts
and counters of the bigger tree, sent with `redis-cli --pipe`.
`redisfs-snap fsck` must find the result clean before anything is measured
(the workload fails otherwise); its time and peak RSS per inode are
reported, and its peak RSS on an empty filesystem (a root alone, generated
the same way), so that the growth per inode, (peak at N - peak empty) / N,
shows what fsck keeps per inode apart from its fixed few MiB of libraries
and buffers.

Per N and repetition, each walk cold: redisfs mounted afresh and the page
cache, dentries and inodes dropped before each of `du -s`, `find | wc -l`
and Python's os.walk + os.lstat of every file, seconds. The tmpfs column
is the same tree made with mknod on the private tmpfs (dropping caches
leaves a tmpfs's dentries in memory: a reference for the tools' own cost,
not a cold walk). passthrough_ll is not run: it keeps an open file
descriptor per inode the kernel knows, and RLIMIT_NOFILE here is 20,000.
The daemon's counters (SIGUSR1) give its FUSE requests and Redis round
trips per inode of each walk (a note).

Then one directory of 200,000 entries (5,000 with --quick, generated the
same way), through a fresh mount: the daemon's VmRSS before and after
`ls -f` of it, then after `ls -l` (growth from before the first listing).

Goals (reported, never asserted): 10x the inodes costs at most 11x the time
(with --big); du -s at most 2x find; listing memory bounded by a page of
entries (growth under 10 MiB); fsck's peak RSS growth under 100 B per inode
at the largest N.
"""
import contextlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

N_DIRS = 1000
if b.QUICK:
    sizes = [5000] + ([20000] if b.BIG else [])
    n_wide = 5000
else:
    sizes = [100_000] + ([1_000_000] if b.BIG else [])
    n_wide = 200_000

b.begin(9, f"walks of {' and '.join(f'{n:,}' for n in sizes)} empty files in {N_DIRS:,} dirs; "
           f"listing a {n_wide:,}-entry dir", columns=[("redisfs", "redisfs"), ("tmpfs", "tmpfs")],
        ratios=[("redisfs", "tmpfs", "vs tmpfs")])

mnt = os.path.join(b.TMP, "mnt-9")


def _hgetall(key):
    out = b.run(["redis-cli", "-s", b.SOCK, "--raw", "HGETALL", key]).split("\n")
    if out and out[-1] == "":
        out.pop()
    if not out or len(out) % 2:
        raise RuntimeError(f"template key {key}: unexpected HGETALL reply {out[:6]}")
    return dict(zip(out[0::2], out[1::2]))


def _template():
    """Superblock, root, directory and file hashes as a mount makes them."""
    with b.Mount("W9T", mnt):
        os.mkdir(os.path.join(mnt, "d"))
        with open(os.path.join(mnt, "d", "f"), "wb"):
            pass
    names = {"sb": "W9T:SB", "root": "W9T:INODE:1"}
    dir_ino = b.redis_cli(b.SOCK, "HGET", "W9T:DIR:1", "d")
    file_ino = b.redis_cli(b.SOCK, "HGET", f"W9T:DIR:{dir_ino}", "f")
    names.update({"dir": f"W9T:INODE:{dir_ino}", "file": f"W9T:INODE:{file_ino}"})
    t = {what: _hgetall(key) for what, key in names.items()}
    b.raw("delete", "W9T")
    return t


def _bulk(a):
    a = a if isinstance(a, bytes) else str(a).encode()
    return b"$%d\r\n%s\r\n" % (len(a), a)


def _hset(key, fields):
    """HSET key field value... in RESP."""
    return b"*%d\r\n" % (2 + 2 * len(fields)) + _bulk("HSET") + _bulk(key) + \
        b"".join(_bulk(x) for kv in fields.items() for x in kv)


def generate(prefix, tree, template):
    """Writes filesystem `prefix` straight into Redis: a root holding the
    directories of `tree`, [(name, number of empty files)], then checks it
    with fsck (which must find it clean): (fsck seconds, fsck peak RSS in
    MiB, inodes)."""
    t0 = time.perf_counter()
    pipe = subprocess.Popen(["redis-cli", "-s", b.SOCK, "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    # every file's hash is the template's: only the key differs
    file_head = b"*%d\r\n" % (2 + 2 * len(template["file"])) + _bulk("HSET")
    file_tail = b"".join(_bulk(x) for kv in template["file"].items() for x in kv)
    next_ino = 2 + len(tree)
    entries = {}
    for i, (name, n) in enumerate(tree):
        d = 2 + i
        entries[name] = d
        pipe.stdin.write(_hset(f"{prefix}:INODE:{d}", dict(template["dir"], parent="1", nlink="2")))
        first = next_ino
        next_ino += n
        for k in range(first, next_ino, 1000):
            inos = range(k, min(k + 1000, next_ino))
            pipe.stdin.write(b"".join(file_head + _bulk(f"{prefix}:INODE:{i}") + file_tail for i in inos))
            pipe.stdin.write(_hset(f"{prefix}:DIR:{d}", {f"f{i - first:07d}": i for i in inos}))
    inodes = next_ino - 1
    if entries:  # an empty root has no entry hash (Redis keeps no empty hash)
        pipe.stdin.write(_hset(f"{prefix}:DIR:1", {k: str(v) for k, v in entries.items()}))
    pipe.stdin.write(_hset(f"{prefix}:INODE:1", dict(template["root"], nlink=str(2 + len(tree)))))
    pipe.stdin.write(_hset(f"{prefix}:SB", dict(template["sb"], next_inode=str(next_ino), inodes=str(inodes))))
    out, _ = pipe.communicate()
    out = out.decode(errors="replace")
    if pipe.returncode != 0 or "errors: 0," not in out:
        raise RuntimeError(f"redis-cli --pipe failed for {prefix}: {out.strip()[-500:]}")
    b.log(f"  generated {prefix}: {inodes:,} inodes in {time.perf_counter() - t0:.1f} s")
    report = os.path.join(b.TMP, f"fsck-{prefix}.txt")
    try:
        seconds, rss = b.time_v([b.SNAP, "--redis", b.URL, "fsck", prefix], stdout=report)
    except RuntimeError as e:
        with open(report, errors="replace") as f:
            raise RuntimeError(f"the generated filesystem {prefix} is not clean: {e}\n{f.read()[-2000:]}") from None
    return seconds, rss, inodes


def _walk(top):
    """os.walk + os.lstat of every file: (seconds, files)."""
    t0 = time.perf_counter()
    n = 0
    for root, _, files in os.walk(top):
        for f in files:
            os.lstat(os.path.join(root, f))
            n += 1
    return time.perf_counter() - t0, n


def _walks(target, top, n, label, mount=None):
    """The three cold walks of `top` (n files); mount: a function that
    mounts it afresh (redisfs), else the caches are only dropped."""
    rows = {}
    for what in ("du -s", "find | wc -l", "os.walk + lstat"):
        row = f"{what}, {label}, cold"
        rows[what] = row
        with mount() if mount else contextlib.nullcontext() as m:
            b.drop_caches()
            os.stat(top)
            s0 = b.daemon_stats(m) if m else None
            if what == "du -s":
                seconds, _ = b.timed(["du", "-s", top])
            elif what == "find | wc -l":
                seconds, out = b.timed(f"find {top} | wc -l")
                if int(out) != n + N_DIRS + 1:
                    raise RuntimeError(f"find counts {int(out):,} entries in {top}, expected {n + N_DIRS + 1:,}")
            else:
                seconds, files = _walk(top)
                if files != n:
                    raise RuntimeError(f"os.walk finds {files:,} files in {top}, expected {n:,}")
            if m:
                walk_stats[(what, label)] = b.stats_per(s0, b.daemon_stats(m), n + N_DIRS, "inode")
        b.result(row, target, seconds, "s", better="lower")
    return rows


template = _template()
walk_stats = {}
walk_rows = []
_, fsck_empty_rss, _ = generate("W9E", [], template)
b.raw("delete", "W9E")
b.result("fsck peak RSS, empty filesystem", "redisfs", fsck_empty_rss, "MiB", better="lower")
for n in sizes:
    label = f"{n:,} files"
    prefix = f"W9N{n}"
    fsck_s, fsck_rss, inodes = generate(prefix, [(f"d{i:04d}", n // N_DIRS) for i in range(N_DIRS)], template)
    b.result(f"fsck, {label}", "redisfs", fsck_s, "s", better="lower")
    b.result(f"fsck peak RSS per inode, {label}", "redisfs", fsck_rss * b.MiB / inodes, "B", better="lower")
    b.result(f"fsck peak RSS growth per inode, {label}", "redisfs", (fsck_rss - fsck_empty_rss) * b.MiB / inodes, "B",
             better="lower")
    tdir = os.path.join(b.TMPFS, "w9")
    t0 = time.perf_counter()
    for i in range(N_DIRS):
        d = os.path.join(tdir, f"d{i:04d}")
        os.makedirs(d)
        for j in range(n // N_DIRS):
            os.mknod(os.path.join(d, f"f{j:07d}"), 0o644)
    b.log(f"  made {n:,} files on the tmpfs in {time.perf_counter() - t0:.1f} s")
    for rep in range(b.REPS):
        rows = _walks("redisfs", mnt, n, label, mount=lambda: b.Mount(prefix, mnt))
        _walks("tmpfs", tdir, n, label)
    walk_rows.append((n, rows))
    b.goal(rows["du -s"], "<= 2x find | wc -l", "max", 2.0, ref_row=rows["find | wc -l"], ref_target="redisfs",
           show="x")
    b.run(["rm", "-rf", tdir])
    b.raw("delete", prefix)
    b.settle()
if len(walk_rows) == 2:
    (n1, small), (n2, large) = walk_rows
    for what in large:
        b.goal(large[what], f"<= {1.1 * n2 / n1:.0f}x the time at {n1:,} files ({n2 / n1:.0f}x the inodes)", "max",
               1.1 * n2 / n1, ref_row=small[what], ref_target="redisfs", show="x")
else:
    b.note("run with --big for the 1,000,000-file walks and the linearity goal (10x inodes <= 11x time)")
if not b.QUICK:  # at a few thousand inodes the tool's fixed few MiB dominate
    b.goal(f"fsck peak RSS growth per inode, {sizes[-1]:,} files", "< 100 B per inode (peak less an empty fsck's)",
           "max", 100)
for (what, label), line in walk_stats.items():
    b.note(f"redisfs {what}, {label}: {line}")

# listing memory
wide_label = f"{n_wide:,}-entry dir"
generate("W9W", [("wide", n_wide)], template)
wide = os.path.join(mnt, "wide")
for rep in range(b.REPS):
    with b.Mount("W9W", mnt) as m:
        b.drop_caches()
        os.stat(wide)
        before = b.vm_rss_mib(m.proc.pid)
        seconds, _ = b.timed(f"ls -f {wide} > /dev/null")
        b.result(f"ls -f of the {wide_label}, cold", "redisfs", seconds, "s", better="lower")
        after_f = b.vm_rss_mib(m.proc.pid)
        seconds, _ = b.timed(f"ls -l {wide} > /dev/null")
        b.result(f"ls -l of the {wide_label}, after ls -f", "redisfs", seconds, "s", better="lower")
        after_l = b.vm_rss_mib(m.proc.pid)
    b.result(f"daemon RSS growth, ls -f of the {wide_label}", "redisfs", after_f - before, "MiB", better="lower")
    b.result(f"daemon RSS growth, then ls -l of it", "redisfs", after_l - before, "MiB", better="lower")
    b.note(f"daemon VmRSS (repetition {rep + 1}): {before:.1f} MiB before, {after_f:.1f} after ls -f, "
           f"{after_l:.1f} after ls -l")
for row in (f"daemon RSS growth, ls -f of the {wide_label}", "daemon RSS growth, then ls -l of it"):
    b.goal(row, "< 10 MiB (a page of entries, not the directory)", "max", 10)
b.raw("delete", "W9W")
