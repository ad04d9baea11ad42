#!/usr/bin/env python3
"""Workload 5: the snapshot toolkit on a filesystem of mixed files.

A filesystem under prefix S5 is filled through a redisfs mount with 1 GiB of
file data (32 MiB with --quick): a quarter in many small files (1-64 KiB,
500 per directory), the rest in 64 MiB files (4 MiB with --quick). It is then
unmounted, so the measures see a quiet source. Per repetition:

  copy      redisfs-snap copy S5 S5C             raw: SCAN + a Lua loop of COPY, 1000 keys per EVAL
  dump      redisfs-snap dump S5 > /dev/null     (stdout)
  dump      redisfs-snap dump S5 -o FILE         FILE on the private tmpfs (the tool's fsync is then free)
  dump      redisfs-snap dump S5 -o FILE.zst     zstd level 3; and -o FILE.gz (gzip level 6, first size only:
                                                 it is slow); their size as a % of the plain FILE's
  restore   redisfs-snap restore FILE --prefix R5 into a second private redis-server; and FILE.zst

MB/s counts file data, keys/s the keys of the filesystem; peak RSS is
/usr/bin/time -v's. "Server memory during dump" is the main server's
highest used_memory while the dump runs (benchlib.PeakMemory) less its
used_memory before: what the dump staged (the metadata, and the blocks
it has in flight), which must not grow with the file data. Then a second 1 GiB is added and everything is measured
again at 2 GiB (one repetition unless BENCH_REPS_SNAP2 says otherwise: it is
there to show that the RSS does not grow with the size; its throughput goals
are checked only with 3 repetitions or more).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

step = 32 * b.MiB if b.QUICK else b.GiB
large_size = 4 * b.MiB if b.QUICK else 64 * b.MiB
reps_2 = int(os.environ.get("BENCH_REPS_SNAP2") or 1)
b.begin(5, "snapshot toolkit on mixed files (redisfs column: redisfs-snap; raw column: Lua COPY loop)")

SRC, COPY, LUA, RESTORED = "S5", "S5C", "S5L", "R5"
mnt = os.path.join(b.TMP, "mnt-snap")
dump_file = os.path.join(b.STAGE, "snap.json")
zst_file = dump_file + ".zst"
gz_file = dump_file + ".gz"


def _snap(url, *args):
    return [b.SNAP, "--redis", url, "--quiet"] + list(args)


def _measure(label, data_bytes, reps, second, throughput_goals, gzip):
    keys = b.key_count(SRC)
    b.note(f"{label}: {data_bytes / b.MB:,.0f} MB of file data, {keys:,} keys, {reps} repetition(s)")
    rss = {"copy": [], "dump": [], "restore": []}
    for rep in range(reps):
        s, m = b.time_v(_snap(b.URL, "copy", SRC, COPY))
        b.result(f"copy {label}", "redisfs", data_bytes / s / b.MB, "MB/s")
        b.result(f"copy {label}, keys/s", "redisfs", keys / s, "keys/s")
        rss["copy"].append(m)
        b.raw("delete", COPY)
        b.settle()
        out = b.raw("copy", SRC, LUA, 1000)
        b.result(f"copy {label}", "raw", data_bytes / out["seconds"] / b.MB, "MB/s")
        b.result(f"copy {label}, keys/s", "raw", out["ops"] / out["seconds"], "keys/s")
        b.raw("delete", LUA)
        b.settle()

        with b.PeakMemory() as peak:
            s, m = b.time_v(_snap(b.URL, "dump", SRC))
        b.result(f"server memory during dump {label}", "redisfs", peak.above_base / b.MiB, "MiB", better="lower")
        b.result(f"dump {label} > /dev/null", "redisfs", data_bytes / s / b.MB, "MB/s")
        b.result(f"dump {label} > /dev/null, keys/s", "redisfs", keys / s, "keys/s")
        rss["dump"].append(m)
        s, m = b.time_v(_snap(b.URL, "dump", SRC, "-o", dump_file))
        b.result(f"dump {label} -o file", "redisfs", data_bytes / s / b.MB, "MB/s")
        rss["dump"].append(m)
        dump_mb = os.path.getsize(dump_file) / b.MB
        # Compressed, against the plain dump just taken.
        s, m = b.time_v(_snap(b.URL, "dump", SRC, "-o", zst_file))
        b.result(f"dump {label} -o .zst", "redisfs", data_bytes / s / b.MB, "MB/s")
        rss["dump"].append(m)
        zst_mb = os.path.getsize(zst_file) / b.MB
        b.result(f"dump {label} | zstd size ratio", "redisfs", 100 * zst_mb / dump_mb, "% of plain", better="lower")
        if gzip:
            s, m = b.time_v(_snap(b.URL, "dump", SRC, "-o", gz_file))
            b.result(f"dump {label} -o .gz", "redisfs", data_bytes / s / b.MB, "MB/s")
            rss["dump"].append(m)
            gz_mb = os.path.getsize(gz_file) / b.MB
            b.result(f"dump {label} | gzip size ratio", "redisfs", 100 * gz_mb / dump_mb, "% of plain",
                     better="lower")
            os.unlink(gz_file)

        s, m = b.time_v(_snap(second.url, "restore", dump_file, "--prefix", RESTORED))
        b.result(f"restore {label}", "redisfs", data_bytes / s / b.MB, "MB/s")
        b.result(f"restore {label}, keys/s", "redisfs", keys / s, "keys/s")
        rss["restore"].append(m)
        restored = b.key_count(RESTORED, second.sock)
        b.redis_cli(second.sock, "FLUSHALL")
        os.unlink(dump_file)
        s, m = b.time_v(_snap(second.url, "restore", zst_file, "--prefix", RESTORED))
        b.result(f"restore {label} from .zst", "redisfs", data_bytes / s / b.MB, "MB/s")
        rss["restore"].append(m)
        if b.key_count(RESTORED, second.sock) != restored:
            raise SystemExit(f"restore of the .zst dump gave {b.key_count(RESTORED, second.sock)} keys, not {restored}")
        b.redis_cli(second.sock, "FLUSHALL")
        os.unlink(zst_file)
    b.note(f"{label}: dump file {dump_mb:,.0f} MB, {zst_mb:,.0f} MB as .zst; restored {restored:,} keys "
           f"(source {keys:,})")
    for tool, values in rss.items():
        for v in values:
            b.result(f"redisfs-snap peak RSS, {tool} {label}", "redisfs", v, "MiB", better="lower")
        b.goal(f"redisfs-snap peak RSS, {tool} {label}", "<= 64 MiB", "max", 64)
    b.goal(f"server memory during dump {label}", "<= 64 MiB", "max", 64)
    if throughput_goals:
        b.goal(f"copy {label}", ">= 50% of the Lua COPY baseline", "min", 0.5, ref_row=f"copy {label}", show="pct")
        b.goal(f"dump {label} > /dev/null", ">= 200 MB/s of file data", "min", 200)
        b.goal(f"dump {label} -o file", ">= 200 MB/s of file data", "min", 200)
        b.goal(f"restore {label}", ">= 150 MB/s of file data", "min", 150)


with b.RedisServer(os.path.join(b.TMP, "redis-restore")) as second:
    total_files = total_bytes = 0
    for n, seed in ((1, 51), (2, 52)):
        t0 = time.perf_counter()
        with b.Mount(SRC, mnt):
            files, written = b.populate_mixed(os.path.join(mnt, f"set-{n}"), step, seed, large_size)
        total_files += files
        total_bytes += written
        b.log(f"  populated set {n}: {files:,} files, {written / b.MB:,.0f} MB in {time.perf_counter() - t0:.1f} s")
        label = f"{total_bytes // b.MiB} MiB" if b.QUICK else f"{total_bytes // b.GiB} GiB"
        reps = b.REPS if n == 1 else reps_2
        _measure(label, total_bytes, reps, second, throughput_goals=(n == 1 or reps >= 3), gzip=(n == 1))
    b.raw("delete", SRC)
