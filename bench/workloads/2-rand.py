#!/usr/bin/env python3
"""Workload 2: random 4 KiB reads and writes inside a 256 MiB file (32 MiB
with --quick), a fixed number of operations (fio, psync, buffered, one job).

The file is laid out once (not timed). Before each random-read pass the page
cache is dropped; fio's random map visits every 4 KiB block at most once per
pass, so each read reaches the filesystem (redisfs, passthrough_ll, tmpfs). Random writes end with an fsync
that is counted. Raw baseline: GETRANGE/SETRANGE of 4 KiB at random offsets
of block keys of the filesystem's block size, one client, unpipelined.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

size = 32 * b.MiB if b.QUICK else 256 * b.MiB
io_bytes = 8 * b.MiB if b.QUICK else 64 * b.MiB
ops = io_bytes // (4 * b.KiB)
b.begin(2, f"random 4 KiB reads and writes in a {size // b.MiB} MiB file, {ops} ops per pass")

block_size = int(b.redis_cli(b.SOCK, "HGET", f"{b.PREFIX}:SB", "block_size") or 65536)
blocks = size // block_size
b.note(f"redisfs block size {block_size} B; raw baseline: {blocks} keys of {block_size} B")

paths = {}
for target, base in b.targets():
    paths[target] = os.path.join(b.workdir(base, "w2"), "rand")
    b.fio("layout", paths[target], "write", "1M", size)
b.raw("set", "RAW2", blocks, block_size)

common = [f"--io_size={io_bytes}", "--randrepeat=1", "--norandommap=0"]
for rep in range(b.REPS):
    for target, _ in b.targets():
        b.drop_caches()
        job = b.fio("randr", paths[target], "randread", "4k", size, common)
        b.result("random 4 KiB read", target, job["read"]["total_ios"] / b.fio_seconds(job), "IOPS")
        job = b.fio("randw", paths[target], "randwrite", "4k", size, common)
        seconds = b.fio_seconds(job) + b.fsync_seconds(paths[target])
        b.result("random 4 KiB write", target, job["write"]["total_ios"] / seconds, "IOPS")
    out = b.raw("getrange", "RAW2", blocks, block_size, ops, 4096)
    b.result("random 4 KiB read", "raw", out["ops"] / out["seconds"], "IOPS")
    out = b.raw("setrange", "RAW2", blocks, block_size, ops, 4096)
    b.result("random 4 KiB write", "raw", out["ops"] / out["seconds"], "IOPS")

for path in paths.values():
    os.unlink(path)
b.raw("delete", "RAW2")
