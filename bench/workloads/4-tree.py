#!/usr/bin/env python3
"""Workload 4: a real tree. The tarball is made once per run from the
machine's /usr/include (/usr/include/linux with --quick) and kept on the
private tmpfs, which dropping the caches does not empty.

Per repetition and target (redisfs, passthrough_ll, tmpfs): extract it (`tar xf`, then syncfs of the target),
then with cold caches `du -s`, `find | wc -l` and `tar c --sort=name |
sha256sum` (of the extracted top directory, whose times tar restores). The
sorted archive must hash the same on every target and repetition (a
correctness check, reported as a note).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

src_parent, src_name = ("/usr/include", "linux") if b.QUICK else ("/usr", "include")
source = os.path.join(src_parent, src_name)
tarball = os.path.join(b.STAGE, "tree.tar")
b.run(["tar", "cf", tarball, "-C", src_parent, src_name])
tar_mb = os.path.getsize(tarball) / b.MB
entries = int(b.run(f"tar tf {tarball} | wc -l").strip())
b.begin(4, f"real tree: {source} ({tar_mb:.0f} MB tarball, {entries:,} entries)")

hashes, counts = {}, {}
for rep in range(b.REPS):
    for target, base in b.targets():
        d = os.path.join(b.workdir(base, "w4"), f"tree-{rep}")
        os.mkdir(d)
        b.drop_caches()
        seconds, _ = b.timed(f"tar xf {tarball} -C {d} && sync -f {d}")
        b.result("tar x (+ syncfs)", target, seconds, "s", better="lower")
        b.result("tar x throughput", target, tar_mb / seconds, "MB/s")
        b.drop_caches()
        seconds, _ = b.timed(["du", "-s", d])
        b.result("du -s, cold", target, seconds, "s", better="lower")
        b.drop_caches()
        seconds, out = b.timed(f"find {d} | wc -l")
        b.result("find | wc -l, cold", target, seconds, "s", better="lower")
        counts.setdefault(target, set()).add(int(out))
        b.drop_caches()
        seconds, out = b.timed(f"tar c --sort=name -C {d} {src_name} | sha256sum")
        b.result("tar c | sha256sum, cold", target, seconds, "s", better="lower")
        hashes.setdefault(target, set()).add(out.split()[0])

b.note("the extracted trees stay in place until the end of the run (deleting them is not measured)")
b.note("find counts: " + ", ".join(f"{t} {sorted(c)}" for t, c in counts.items()))
all_hashes = set().union(*hashes.values())
b.note("tar c | sha256sum: " + ("identical on every target and repetition" if len(all_hashes) == 1 else
                                 "DIFFERS: " + ", ".join(f"{t} {sorted(h)}" for t, h in hashes.items())))
