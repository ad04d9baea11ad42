#!/usr/bin/env python3
"""Workload 1: sequential write then read of one big file (1 GiB; 64 MiB with
--quick), with 1 MiB and with 128 KiB requests (fio, psync, buffered), and
a cp of it within the filesystem (copy_file_range: redisfs copies on the
server, passthrough_ll hands it to the filesystem under it).

Each repetition writes a fresh file (then an fsync, counted in the time),
drops the page cache so the read really reaches the filesystem, reads it
back, copies it (1 MiB round: cp, then an fsync of the copy, counted) and
deletes both, on redisfs, passthrough_ll and the tmpfs. The raw baseline does the same bytes from one client:
SET of distinct keys of the request size, unpipelined, then GET of them.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

size = 64 * b.MiB if b.QUICK else b.GiB
b.begin(1, f"sequential write/read of a {size // b.MiB} MiB file")

for bs_name, bs in (("1 MiB", b.MiB), ("128 KiB", 128 * b.KiB)):
    w_row, r_row = f"seq write, {bs_name} requests", f"seq read, {bs_name} requests"
    for rep in range(b.REPS):
        for target, base in b.targets():
            path = os.path.join(b.workdir(base, "w1"), "big")
            job = b.fio("seqw", path, "write", bs, size)
            b.result(w_row, target, size / (b.fio_seconds(job) + b.fsync_seconds(path)) / b.MB, "MB/s")
            b.drop_caches()
            job = b.fio("seqr", path, "read", bs, size)
            b.result(r_row, target, size / b.fio_seconds(job) / b.MB, "MB/s")
            if bs == b.MiB:
                b.drop_caches()
                seconds, _ = b.timed(["cp", path, path + ".copy"])
                seconds += b.fsync_seconds(path + ".copy")
                b.result("cp within the filesystem", target, size / seconds / b.MB, "MB/s")
                os.unlink(path + ".copy")
            os.unlink(path)
            b.settle()
        count = size // bs
        out = b.raw("set", "RAW1", count, bs)
        b.result(w_row, "raw", out["bytes"] / out["seconds"] / b.MB, "MB/s")
        out = b.raw("get", "RAW1", count)
        b.result(r_row, "raw", out["bytes"] / out["seconds"] / b.MB, "MB/s")
        b.raw("delete", "RAW1")
        b.settle()
    if bs == b.MiB:
        b.goal(w_row, ">= 40% of raw SET (1 MiB values, one client)", "min", 0.40, ref_row=w_row, show="pct")
        b.goal(r_row, ">= 40% of raw GET (1 MiB values, one client)", "min", 0.40, ref_row=r_row, show="pct")
