#!/usr/bin/env python3
"""Workload 6: two mounts of the same prefix at once.

Prefix M6 is mounted twice (two daemons). One process creates N empty files
in a shared directory through mount A alone; then two processes create N
files each in one shared directory at the same time, one through each
mount. The figure is creates per second of all processes together (total
files / time from the first start to the last end). passthrough_ll: the
same through one, then two passthrough_ll mounts of one tmpfs directory
(mounted afresh each repetition); tmpfs: the same with one directory;
raw: SET of small keys from one client, then two clients.
On this machine the clients, the daemons and redis-server share 2 cores.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

n = 500 if b.QUICK else 5000
b.begin(6, f"two mounts of one prefix: {n:,} creates per process")

_CREATOR = r"""
import os, sys, time
d, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.time()
for i in range(n):
    os.close(os.open(os.path.join(d, f"{tag}-{i:06d}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
print(t0, time.time())
"""


def _creates(jobs):
    """jobs: [(directory, tag)], run at once: files per second, all together."""
    procs = [subprocess.Popen([sys.executable, "-c", _CREATOR, d, str(n), tag], stdout=subprocess.PIPE, text=True)
             for d, tag in jobs]
    spans = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("a create process failed")
        spans.append([float(x) for x in out.split()])
    return n * len(jobs) / (max(e for _, e in spans) - min(s for s, _ in spans))


def _raw_sets(prefixes):
    procs = [subprocess.Popen([b.RAW, b.SOCK, "set", p, str(n), "0"], stdout=subprocess.PIPE, text=True)
             for p in prefixes]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    for p in prefixes:
        b.raw("delete", p)
    return sum(o["ops"] for o in outs) / max(o["seconds"] for o in outs)


mnt_a, mnt_b = os.path.join(b.TMP, "mnt-6a"), os.path.join(b.TMP, "mnt-6b")
pt_a, pt_b = os.path.join(b.TMP, "pt-6a"), os.path.join(b.TMP, "pt-6b")
with b.Mount("M6", mnt_a), b.Mount("M6", mnt_b):
    tdir = b.workdir(b.TMPFS, "w6")
    for rep in range(b.REPS):
        one, two = f"one-{rep}", f"two-{rep}"
        os.mkdir(os.path.join(mnt_a, one))
        os.mkdir(os.path.join(mnt_a, two))
        b.result("creates, one mount", "redisfs", _creates([(os.path.join(mnt_a, one), "a")]), "ops/s")
        b.result("creates, two mounts together", "redisfs",
                 _creates([(os.path.join(mnt_a, two), "a"), (os.path.join(mnt_b, two), "b")]), "ops/s")
        os.mkdir(os.path.join(tdir, one))
        os.mkdir(os.path.join(tdir, two))
        b.result("creates, one mount", "tmpfs", _creates([(os.path.join(tdir, one), "a")]), "ops/s")
        b.result("creates, two mounts together", "tmpfs",
                 _creates([(os.path.join(tdir, two), "a"), (os.path.join(tdir, two), "b")]), "ops/s")
        src = os.path.join(b.TMPFS_ROOT, f"pt6-{rep}")
        with b.passthrough_mount(src, pt_a), b.passthrough_mount(src, pt_b):
            os.mkdir(os.path.join(pt_a, one))
            os.mkdir(os.path.join(pt_a, two))
            b.result("creates, one mount", "passthrough", _creates([(os.path.join(pt_a, one), "a")]), "ops/s")
            b.result("creates, two mounts together", "passthrough",
                     _creates([(os.path.join(pt_a, two), "a"), (os.path.join(pt_b, two), "b")]), "ops/s")
        b.result("creates, one mount", "raw", _raw_sets(["RAW6A"]), "ops/s")
        b.result("creates, two mounts together", "raw", _raw_sets(["RAW6A", "RAW6B"]), "ops/s")
    entries = len(os.listdir(os.path.join(mnt_b, f"two-{b.REPS - 1}")))
    b.note(f"mount B lists {entries:,} entries in the shared directory (expected {2 * n:,})")
b.raw("delete", "M6")
