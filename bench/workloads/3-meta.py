#!/usr/bin/env python3
"""Workload 3: metadata.

Part A, per repetition: create 10,000 empty files (1,000 with --quick) in a
fresh directory (open O_CREAT|O_EXCL + close each), stat them all, `ls -l`
the directory, delete them (on redisfs, passthrough_ll and the tmpfs). The page cache, dentries and inodes are dropped
before the stats and before `ls -l` so they reach the filesystem. Raw
baseline for creates: SET of small keys, one client, unpipelined. Part A
also runs on the FUSE floor (fuse_floor.cpp: a FUSE filesystem with nothing
behind it): what the kernel and /dev/fuse alone cost on this machine.

Part B: one directory of 100,000 entries (5,000 with --quick) next to 100
directories of 10 entries (made once with mknod). After dropping the caches
and looking up the directories themselves, a lookup is one stat of a name
not in the kernel's cache: the first one alone, then 1,000 distinct names
(from the big directory; all the names of the small ones) for a steadier
mean. Then `ls` (readdir only) of the big and of a small directory, cold.
Part B does not run on passthrough_ll: it keeps an open file descriptor
per inode the kernel knows, and 100,000 entries are more than this
machine's RLIMIT_NOFILE (20,000) lets it hold.
On redisfs, each repetition of part B looks through a second mount of the
same prefix, made for it: "cold" then also means nothing in the daemon's
own cache of names it saw (the mount that made the entries remembers up to
65,536 of them, so it would answer the small directories from that cache
and not the big one, which measures the cache, not the directory size).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

n_files = 1000 if b.QUICK else 10000
n_big = 5000 if b.QUICK else 100000
n_batch = 1000
b.begin(3, f"metadata: {n_files:,} files create/stat/ls -l/delete; lookup in {n_big:,} vs 10 entries")


names = [f"file-{i:06d}" for i in range(n_files)]
ls_row = f"ls -l of {n_files:,} entries, cold"
floor_mnt = os.path.join(b.TMP, "floor")
for rep in range(b.REPS):
    with b.floor_mount(floor_mnt):
        for target, base in b.targets() + [("floor", floor_mnt)]:
            d = os.path.join(b.workdir(base, "w3"), f"flat-{rep}")
            os.mkdir(d)
            b.result("create empty file", target, n_files / b.create_files(d, names), "ops/s")
            b.drop_caches()
            os.stat(d)
            b.result("stat, cold", target, n_files / b.stat_files(d, names), "ops/s")
            b.drop_caches()
            seconds, _ = b.timed(["ls", "-l", d])
            b.result(ls_row, target, seconds, "s", better="lower")
            seconds, _ = b.timed(["ls", "-l", d])
            b.result(f"ls -l of {n_files:,} entries, warm", target, seconds, "s", better="lower")
            b.result("unlink", target, n_files / b.unlink_files(d, names), "ops/s")
            os.rmdir(d)
    out = b.raw("set", "RAW3", n_files, 0)
    b.result("create empty file", "raw", out["ops"] / out["seconds"], "ops/s")
    b.raw("delete", "RAW3")
# A create is a negative LOOKUP, then the CREATE. In a directory the mount
# made and fills (as here) the LOOKUP is answered without the server, but
# the CREATE is one round trip on top of what FUSE costs, at the least.
b.goal("create empty file", ">= 25% of raw SET ops/s (one client, unpipelined)", "min", 0.25, ref_row="create empty file",
       show="pct", floor=True, round_trips=1)
if not b.QUICK:
    b.goal(ls_row, "< 0.3 s", "max", 0.3, floor=True)

# Part B
big_names = [f"entry-{i:07d}" for i in range(n_big)]
small_names = [f"entry-{i:07d}" for i in range(10)]
n_small_dirs = n_batch // 10
dirs = {}
for target, base in b.targets(passthrough=False):
    big = os.path.join(b.workdir(base, "w3"), "big")
    os.mkdir(big)
    t0 = time.perf_counter()
    for name in big_names:
        os.mknod(os.path.join(big, name), 0o644)
    b.result(f"mknod into the {n_big:,}-entry dir (setup)", target, n_big / (time.perf_counter() - t0), "ops/s")
    smalls = []
    for i in range(n_small_dirs):
        small = os.path.join(b.workdir(base, "w3"), f"small-{i:03d}")
        os.mkdir(small)
        for name in small_names:
            os.mknod(os.path.join(small, name), 0o644)
        smalls.append(small)
    dirs[target] = (big, smalls)


def _lookups(paths):
    """Mean seconds of a stat of each path (their directories are cached)."""
    t0 = time.perf_counter()
    for path in paths:
        os.stat(path)
    return (time.perf_counter() - t0) / len(paths)


def _measure(target, big, smalls, batch):
    cases = ((f"{n_big:,}-entry dir", f"{n_big:,}-entry dir", [big], [os.path.join(big, n) for n in batch]),
             ("10-entry dir", "10-entry dirs", smalls, [os.path.join(d, n) for n in small_names for d in smalls]))
    for one_label, batch_label, parents, paths in cases:
        b.drop_caches()
        for d in parents:
            os.stat(d)
        b.result(f"one lookup, {one_label}", target, _lookups(paths[:1]) * 1e6, "us", better="lower")
        b.result(f"lookup (mean of {n_batch:,}), {batch_label}", target, _lookups(paths[1:]) * 1e6, "us",
                 better="lower")
    for label, d in ((f"{n_big:,}-entry dir", big), ("10-entry dir", smalls[0])):
        b.drop_caches()
        seconds, _ = b.timed(["ls", d])
        b.result(f"ls of the {label}, cold", target, seconds, "s", better="lower")


r = b.rng(3)
fresh = os.path.join(b.TMP, "fresh")
for rep in range(b.REPS):
    batch = r.sample(big_names, n_batch + 1)
    for target, (big, smalls) in dirs.items():
        if target != "redisfs":
            _measure(target, big, smalls, batch)
            continue
        with b.Mount(b.PREFIX, fresh):
            moved = [os.path.join(fresh, os.path.relpath(p, b.FS)) for p in [big] + smalls]
            _measure(target, moved[0], moved[1:], batch)
b.goal(f"lookup (mean of {n_batch:,}), {n_big:,}-entry dir", "within 2x of the 10-entry dirs", "max", 2.0,
       ref_row=f"lookup (mean of {n_batch:,}), 10-entry dirs", ref_target="redisfs", show="x")
b.goal(f"one lookup, {n_big:,}-entry dir", "within 2x of the 10-entry dir", "max", 2.0,
       ref_row="one lookup, 10-entry dir", ref_target="redisfs", show="x")
b.note(f"the {n_big:,}-entry dir and the {n_small_dirs} 10-entry dirs stay in place until the end of the run")
b.note("part B on redisfs: looked up through a new mount of the same prefix at each repetition")
b.note("part B does not run on passthrough_ll (an open fd per known inode; RLIMIT_NOFILE is below the entries)")
