#!/usr/bin/env python3
"""Workload 11: what a snapshot costs the writers (copy-on-write).

A server of its own holds a filesystem, prefix P11, of 4 GiB of file data
(256 MiB with --quick; --big: 8 GiB), a quarter in small files (1-64 KiB),
the rest in 64 MiB files, mounted. A writer on the mount loops over: an
append of a timestamped line to one of 8 logs (round robin), a 4 KiB write
at a random place of a big file, and every 8th time a new small file;
each operation is timed. Per repetition:

  copy      redisfs-snap copy P11 P11S while the writer runs: the copy's
            time, and the writer's longest operation while it ran (a write
            that meets a key not copied yet copies that key first, in its
            own script: the pause is that, not the size of the filesystem)
  dump      redisfs-snap dump P11 > /dev/null, the same way

Then P11S is deleted. The goal is issue 10's: writers pause <= 100 ms
whatever the size. Before copy-on-write, writers waited for the whole
server-side copy: about 1 s per GiB with big files, 6-12 s per GiB with
small ones (issue 10). The "ops during" rows count the writer's operations
while the snapshot ran (a frozen filesystem would allow none).
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

SIZE = 256 * b.MiB if b.QUICK else (8 if b.BIG else 4) * b.GiB
SRC, SNAP_DST = "P11", "P11S"
b.begin(11, f"snapshot pauses: a writer during copy and dump of a {SIZE / b.GiB:g} GiB filesystem")
mnt = os.path.join(b.TMP, "mnt-pause")


def _snap(url, *args):
    return [b.SNAP, "--redis", url, "--quiet"] + list(args)


class Writer:
    """The writer above, timing each operation."""

    def __init__(self, root, big_files):
        self.root = root
        self.big = big_files
        self.stop = threading.Event()
        self.window = None  # (start, end) of the snapshot, perf_counter
        self.longest = 0.0
        self.during = 0

    def __enter__(self):
        logs = os.path.join(self.root, "logs")
        os.makedirs(logs, exist_ok=True)
        self.logs = [os.open(os.path.join(logs, f"{k}"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                     for k in range(8)]
        self.bigs = [os.open(p, os.O_WRONLY) for p in self.big]
        os.makedirs(os.path.join(self.root, "new"), exist_ok=True)
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        return self

    def _op(self, i, r, block):
        if i % 3 == 0:
            os.write(self.logs[i % 8], b"%d %.6f\n" % (i, time.time()))
        elif i % 3 == 1:
            fd = self.bigs[r.randrange(len(self.bigs))]
            os.pwrite(fd, block, r.randrange(0, 64 * b.MiB - 4096) & ~4095)
        elif i % 24 == 2:
            with open(os.path.join(self.root, "new", f"n{i}"), "wb", buffering=0) as f:
                f.write(block[:1000])

    def _run(self):
        r = b.rng(11)
        block = os.urandom(4096)
        i = 0
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self._op(i, r, block)
            t1 = time.perf_counter()
            w = self.window
            if w is not None and t1 >= w[0] and t0 <= w[1]:
                self.longest = max(self.longest, t1 - t0)
                self.during += 1
            i += 1
            time.sleep(0.0005)

    def measure(self, argv, out=subprocess.DEVNULL):
        """Runs argv with the writer's window open: (seconds, longest op s, ops)."""
        self.longest, self.during = 0.0, 0
        start = time.perf_counter()
        self.window = (start, float("inf"))
        subprocess.run(argv, check=True, stdout=out)
        end = time.perf_counter()
        self.window = (start, end)
        time.sleep(0.2)  # an operation that began inside the window ends
        return end - start, self.longest, self.during

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        for fd in self.logs + self.bigs:
            os.close(fd)
        return False


with b.RedisServer(os.path.join(b.TMP, "redis-pause")) as srv:
    with b.Mount(SRC, mnt, url=srv.url):
        t0 = time.perf_counter()
        files, written = b.populate_mixed(os.path.join(mnt, "data"), SIZE, 11, 64 * b.MiB)
        keys = int(b.redis_cli(srv.sock, "DBSIZE"))
        b.note(f"filesystem {SRC}: {written / b.GiB:.2f} GiB in {files:,} files, {keys:,} keys "
               f"(filled in {time.perf_counter() - t0:.0f} s)")
        big = sorted(os.path.join(mnt, "data", "large", n) for n in os.listdir(os.path.join(mnt, "data", "large")))
        with Writer(mnt, big[:4]) as writer:
            time.sleep(0.5)
            for rep in range(b.REPS):
                s, longest, n = writer.measure(_snap(srv.url, "copy", SRC, SNAP_DST))
                b.result("copy", "redisfs", s, "s", better="lower")
                b.result("longest writer operation during the copy", "redisfs", longest * 1000, "ms", better="lower")
                b.result("writer operations during the copy", "redisfs", n, "ops")
                subprocess.run(_snap(srv.url, "delete", SNAP_DST), check=True, stdout=subprocess.DEVNULL)
                s, longest, n = writer.measure(_snap(srv.url, "dump", SRC))
                b.result("dump > /dev/null", "redisfs", s, "s", better="lower")
                b.result("longest writer operation during the dump", "redisfs", longest * 1000, "ms", better="lower")
                b.result("writer operations during the dump", "redisfs", n, "ops")

b.goal("longest writer operation during the copy", "<= 100 ms (writers' pause)", "max", 100)
b.goal("longest writer operation during the dump", "<= 100 ms (writers' pause)", "max", 100)
