#!/usr/bin/env python3
"""Workload 12: incremental dumps (issue 11) against full ones.

A filesystem under prefix S12 is filled through a redisfs mount with 2 GiB
(64 MiB with --quick) of incompressible data in 64 MiB files (4 MiB with
--quick), snapshotted (S12-a), then 1% of its blocks are changed through the
mount (one 4 KiB write into each of that many blocks, chosen at random),
and snapshotted again (S12-b); the live filesystem is then deleted, so the
server holds the two snapshots. Per repetition:

  dump full         redisfs-snap dump S12-b -o FILE                 FILE on the private tmpfs
  dump incremental  redisfs-snap dump S12-b --since S12-a -o FILE
  restore full      redisfs-snap restore FILE --prefix R12          into a second private redis-server
  restore incr.     redisfs-snap restore FILE --prefix R12          onto a restored full dump of S12-a

and the incremental's size and time as a % of the full one's. Goals: size
<= 2%, time <= 10%.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

total = 64 * b.MiB if b.QUICK else 2 * b.GiB
file_size = 4 * b.MiB if b.QUICK else 64 * b.MiB
block = 64 * b.KiB  # the default block size
b.begin(12, "incremental dump vs full dump after changing 1% of the blocks (redisfs-snap)")

SRC, A, B, RESTORED = "S12", "S12-a", "S12-b", "R12"
mnt = os.path.join(b.TMP, "mnt-inc")
full_file = os.path.join(b.STAGE, "full.json")
inc_file = os.path.join(b.STAGE, "inc.json")
base_file = os.path.join(b.STAGE, "base.json")


def _snap(url, *args):
    return [b.SNAP, "--redis", url, "--quiet"] + list(args)


files = total // file_size
with b.Mount(SRC, mnt):
    for i in range(files):
        b.fill(os.path.join(mnt, f"f{i:03}"), file_size, 1200 + i)
b.run(_snap(b.URL, "copy", SRC, A))
blocks = total // block
changed = max(1, blocks // 100)
r = random.Random(12)
with b.Mount(SRC, mnt):
    for n in r.sample(range(blocks), changed):
        with open(os.path.join(mnt, f"f{n * block // file_size:03}"), "r+b", buffering=0) as f:
            f.seek(n * block % file_size + r.randrange(0, block - 4096))
            f.write(os.urandom(4096))
b.run(_snap(b.URL, "copy", SRC, B))
b.run(_snap(b.URL, "delete", SRC))
label = f"{total // b.MiB} MiB" if b.QUICK else f"{total // b.GiB} GiB"
b.note(f"{label} in {files} files, {blocks:,} blocks of 64 KiB, {changed:,} changed (1%)")

b.run(_snap(b.URL, "dump", A, "-o", base_file))  # what the incremental restores onto
with b.RedisServer(os.path.join(b.TMP, "redis-inc")) as second:
    for rep in range(b.REPS):
        full_s, full_rss = b.time_v(_snap(b.URL, "dump", B, "-o", full_file))
        inc_s, inc_rss = b.time_v(_snap(b.URL, "dump", B, "--since", A, "-o", inc_file))
        full_mb = os.path.getsize(full_file) / b.MB
        inc_mb = os.path.getsize(inc_file) / b.MB
        b.result(f"dump {label} full", "redisfs", full_s, "s", better="lower")
        b.result(f"dump {label} incremental", "redisfs", inc_s, "s", better="lower")
        b.result(f"dump {label} full, size", "redisfs", full_mb, "MB", better="lower")
        b.result(f"dump {label} incremental, size", "redisfs", inc_mb, "MB", better="lower")
        b.result(f"incremental dump size, % of full", "redisfs", 100 * inc_mb / full_mb, "%", better="lower")
        b.result(f"incremental dump time, % of full", "redisfs", 100 * inc_s / full_s, "%", better="lower")
        b.result(f"redisfs-snap peak RSS, incremental dump {label}", "redisfs", inc_rss, "MiB", better="lower")
        s, _ = b.time_v(_snap(second.url, "restore", full_file, "--prefix", RESTORED))
        b.result(f"restore {label} full", "redisfs", s, "s", better="lower")
        b.redis_cli(second.sock, "FLUSHALL")
        b.run(_snap(second.url, "restore", base_file, "--prefix", RESTORED))
        s, m = b.time_v(_snap(second.url, "restore", inc_file, "--prefix", RESTORED))
        b.result(f"restore {label} incremental (onto S12-a restored)", "redisfs", s, "s", better="lower")
        b.result(f"redisfs-snap peak RSS, incremental restore {label}", "redisfs", m, "MiB", better="lower")
        b.redis_cli(second.sock, "FLUSHALL")
        os.unlink(full_file)
        os.unlink(inc_file)
os.unlink(base_file)
b.goal("incremental dump size, % of full", "<= 2% of the full dump", "max", 2)
b.goal("incremental dump time, % of full", "<= 10% of the full dump's time", "max", 10)
b.goal(f"redisfs-snap peak RSS, incremental dump {label}", "<= 64 MiB", "max", 64)
b.goal(f"redisfs-snap peak RSS, incremental restore {label}", "<= 64 MiB", "max", 64)
b.run(_snap(b.URL, "delete", A))
b.run(_snap(b.URL, "delete", B))
