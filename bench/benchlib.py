"""Common helpers of the bench/workloads/* scripts.

bench/run sets the environment (see bench/README.md), starts the main
redis-server, mounts redisfs and a tmpfs, then runs each workload script.
A workload measures each figure on each target in the same run and records
it with result(); the table printer (table.py) takes the medians and the
ratios. Nothing here asserts on a timing: goal() only records a target that
the printer reports as met or missed.

Targets: "redisfs" (the mount), "passthrough" (libfuse's example
passthrough_ll, default options, over a directory of the private tmpfs: the
most a real FUSE filesystem does on this machine), "tmpfs" (a private
tmpfs), "raw" (the same bytes or operations straight to Redis, by raw_redis
or a Lua loop) and, for the metadata workload, "floor": fuse_floor.cpp, a
FUSE filesystem that answers from memory at once, mounted as redisfs is
(what FUSE alone costs).

daemon_stats() reads a redisfs daemon's own request and round-trip counters
(SIGUSR1, fs/op_stats.hpp) from the log of a Mount.

Mounts and servers a workload starts itself (Mount, RedisServer) register
under $BENCH_TMP/cleanup like those of bench/run, whose EXIT trap removes
whatever a crashed workload left behind.
"""
import json
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

from numfmt import fmt

QUICK = os.environ.get("BENCH_QUICK") == "1"
BIG = os.environ.get("BENCH_BIG") == "1"
REPS = int(os.environ.get("BENCH_REPS") or (1 if QUICK else 3))
TMP = os.environ["BENCH_TMP"]
FS = os.environ["BENCH_FS_DIR"]
TMPFS = os.environ["BENCH_TMPFS_DIR"]
STAGE = os.environ["BENCH_STAGE_DIR"]  # on the private tmpfs: not emptied by drop_caches
URL = os.environ["BENCH_REDIS_URL"]
SOCK = os.environ["BENCH_REDIS_SOCK"]
PREFIX = os.environ["BENCH_PREFIX"]
RAW = os.environ["BENCH_RAW_BIN"]
REDISFS = os.environ["REDISFS_BIN"]
SNAP = os.environ["REDISFS_SNAP_BIN"]
FLOOR = os.environ["BENCH_FLOOR_BIN"]
PT = os.environ["BENCH_PT_BIN"]
PT_DIR = os.environ["BENCH_PT_DIR"]  # passthrough_ll over $BENCH_TMPFS_ROOT/pt-source
TMPFS_ROOT = os.environ["BENCH_TMPFS_ROOT"]
RESULTS = os.environ["BENCH_RESULTS"]

MB = 1e6
KiB = 1024
MiB = 1024 * 1024
GiB = 1024 * MiB

# bench/run stops a workload with SIGTERM: exit through the `with` blocks so
# mounts and servers go away (subprocess.run kills its child on the way).
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

_workload = None
_tools_to_warm = ["ls", "du", "find", "tar", "sha256sum", "wc", "bash", "fio", "rm", "sync"]


def _write(record):
    with open(RESULTS, "a") as f:
        f.write(json.dumps(record) + "\n")


def begin(number, title, columns=None, ratios=None):
    """Starts workload `number`; every later record belongs to it. A
    workload whose targets are not the usual ones (redisfs, tmpfs, raw,
    floor) names its own: columns, [(target, header)]; ratios, [(target,
    baseline, header)] (see table.py)."""
    global _workload
    _workload = number
    rec = {"kind": "workload", "w": number, "title": title, "quick": QUICK, "reps": REPS}
    if columns:
        rec["columns"] = [list(c) for c in columns]
        rec["ratios"] = [list(r) for r in ratios or ()]
    _write(rec)
    log(f"workload {number}: {title}")


def result(row, target, value, unit, better="higher"):
    """One measurement (one repetition) of `row` on `target`."""
    _write({"kind": "result", "w": _workload, "row": row, "target": target, "value": value, "unit": unit,
            "better": better})
    log(f"  {row} [{target}]: {fmt(value)} {unit}")


def goal(row, label, kind, limit, ref_row=None, ref_target="raw", show="value", floor=False, round_trips=0,
         perf=False, target="redisfs", bounds=()):
    """A target to report: the redisfs median of `row` (divided by the median
    of `ref_row` on `ref_target` when given) must be >= limit ("min") or
    <= limit ("max"). perf: compare instead redisfs's performance on `row`
    with ref_target's as the ratio columns do (rates: fs/base, times:
    base/fs). show: "pct", "x" or "value" (with the row's unit).
    floor: also show what the FUSE floor scores on the same goal.
    round_trips: for a rate compared with a raw one-round-trip rate, also
    show the best any design could score that needs what the FUSE floor
    costs plus this many server round trips per operation. target: the
    column judged, when not redisfs (e.g. a redisfs mounted otherwise).
    bounds: [(target, label)], targets whose values are the best any
    implementation could reach under the semantics `label` names (bound.py):
    the Goals line shows each as a ratio to ref_target, and a missed goal
    whose bound is below the limit as unreachable (perf goals)."""
    _write({"kind": "goal", "w": _workload, "row": row, "label": label, "goal": kind, "limit": limit,
            "ref_row": ref_row, "ref_target": ref_target, "show": show, "floor": floor,
            "round_trips": round_trips, "perf": perf, "target": target, "bounds": [list(x) for x in bounds]})


def note(text):
    _write({"kind": "note", "w": _workload, "text": text})
    log(f"  note: {text}")


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} [bench] {msg}", file=sys.stderr, flush=True)


def targets(passthrough=True):
    """The filesystem targets: (name, directory)."""
    pt = [("passthrough", PT_DIR)] if passthrough else []
    return [("redisfs", FS)] + pt + [("tmpfs", TMPFS)]


def workdir(base, name):
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=True)
    return path


def drop_caches():
    """Writes back and drops the page cache, dentries and inodes, then warms
    the tools the workloads run (their binaries live on the disk)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    for tool in _tools_to_warm:
        subprocess.run([tool, "--version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(argv, **kw):
    """Runs a command that must succeed; returns its stdout (text)."""
    shell = isinstance(argv, str)
    p = subprocess.run(argv, shell=shell, executable="/bin/bash" if shell else None, capture_output=True, text=True,
                       **kw)
    if p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {argv}\n{p.stderr.strip()[-2000:]}")
    return p.stdout


def timed(argv, **kw):
    """Runs a command that must succeed; returns (seconds, stdout)."""
    t0 = time.perf_counter()
    out = run(argv, **kw)
    return time.perf_counter() - t0, out


def time_v(argv, stdout=None):
    """Runs argv under /usr/bin/time -v, its stdout going to the file
    `stdout` (discarded when None): (seconds, peak RSS in MiB)."""
    stats = os.path.join(TMP, "time-v.txt")
    with open(stdout or os.devnull, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", "-o", stats] + [str(a) for a in argv], stdout=out,
                           stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {argv}\n{p.stderr.strip()[-2000:]}")
    rss_kib = 0
    with open(stats) as f:
        for line in f:
            if "Maximum resident set size" in line:
                rss_kib = int(line.rsplit(":", 1)[1])
    return seconds, rss_kib / 1024


def fio(name, filename, rw, bs, size, extra=()):
    """One fio job (psync, buffered); returns the job's JSON."""
    argv = ["fio", f"--name={name}", f"--filename={filename}", f"--rw={rw}", f"--bs={bs}", f"--size={size}",
            "--ioengine=psync", "--fallocate=none", "--output-format=json"] + list(extra)
    out = run(argv)
    return json.loads(out[out.index("{"):])["jobs"][0]


def fio_seconds(job):
    """The job's run time in seconds."""
    return job["job_runtime"] / 1000.0


def fsync_seconds(path):
    """Time to fsync `path` (the dirty pages a write job left behind): added
    to a write job's time, so no fio option's accounting is relied on."""
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def settle():
    """Lets the main server hand freed memory back (jemalloc purge), so every
    repetition starts from the same state."""
    redis_cli(SOCK, "MEMORY", "PURGE")


class PeakMemory:
    """The main server's highest used_memory while the block runs (INFO
    memory every 10 ms over a socket of its own; Redis 7.0's
    used_memory_peak cannot be reset), less its used_memory before, in
    bytes: `with PeakMemory() as p: ...; p.above_base`."""

    def __init__(self, sock=None):
        self._sock = sock or SOCK
        self.above_base = 0

    @staticmethod
    def _used(conn):
        conn.sendall(b"INFO memory\r\n")
        data = b""
        while b"\r\n" not in data:
            data += conn.recv(65536)
        header, rest = data.split(b"\r\n", 1)
        need = int(header[1:]) + 2
        while len(rest) < need:
            rest += conn.recv(65536)
        return int(re.search(rb"^used_memory:(\d+)", rest, re.M).group(1))

    def __enter__(self):
        import threading
        self._conn = socket.socket(socket.AF_UNIX)
        self._conn.connect(self._sock)
        self._base = self._peak = self._used(self._conn)
        self._stop = threading.Event()

        def watch():
            while not self._stop.wait(0.01):
                self._peak = max(self._peak, self._used(self._conn))
        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._used(self._conn))
        self._conn.close()
        self.above_base = max(0, self._peak - self._base)
        return False


def raw(*args):
    """Runs the raw_redis baseline client on the main server."""
    return json.loads(run([RAW, SOCK] + [str(a) for a in args]))


def redis_cli(sock, *args):
    return run(["redis-cli", "-s", sock] + [str(a) for a in args]).strip()


def key_count(prefix, sock=None):
    return json.loads(run([RAW, sock or SOCK, "count", prefix]))["ops"]


def median(values):
    return statistics.median(values)


def rng(seed):
    return random.Random(seed)


def _is_mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _wait_gone(proc, seconds):
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


class Mount:
    """redisfs of `prefix` mounted on `mnt` (daemon in the foreground, our
    child) for the length of a `with` block; with `argv`, that command
    (another FUSE daemon in the foreground) instead of redisfs."""

    def __init__(self, prefix, mnt, url=None, options=(), argv=None):
        self.prefix, self.mnt = prefix, mnt
        self.argv = argv or [REDISFS, "-f", "--redis", url or URL, "--prefix", prefix] + list(options) + [mnt]
        self.log = os.path.join(TMP, "logs", f"redisfs-{prefix}-{os.path.basename(mnt)}.log")
        self.proc = None
        self.reg = None

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        os.makedirs(os.path.join(TMP, "logs"), exist_ok=True)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        logf.close()
        self.reg = os.path.join(TMP, "cleanup", f"mount-{self.prefix}-{self.proc.pid}")
        with open(self.reg, "w") as f:
            f.write(f"{self.mnt}\n{self.proc.pid}\n")
        deadline = time.monotonic() + 10
        while not _is_mounted(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"redisfs did not mount {self.mnt} (see {TMP}/logs)")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        for attempt in range(50):
            if not _is_mounted(self.mnt):
                break
            if subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        if self.proc and not _wait_gone(self.proc, 10):
            self.proc.terminate()
            if not _wait_gone(self.proc, 5):
                self.proc.kill()
                self.proc.wait()
        if self.reg and os.path.exists(self.reg):
            os.unlink(self.reg)
        return False


def floor_mount(mnt, options=()):
    """The fuse_floor filesystem mounted on `mnt` (a `with` block), with its
    `options` (e.g. ("--redis", SOCK, "--xattrs")): see fuse_floor.cpp."""
    return Mount("floor", mnt, argv=[FLOOR] + list(options) + [mnt])


def passthrough_mount(source, mnt, options=()):
    """libfuse's passthrough_ll (default options, or `options` such as
    ("-o", "writeback")) mirroring directory `source` on `mnt` (a `with`
    block). It keeps an open file descriptor per
    inode the kernel holds (RLIMIT_NOFILE: 20,000 here), so a workload keeps
    the number of files it touches per mount well below that."""
    os.makedirs(source, exist_ok=True)
    return Mount("passthrough_ll", mnt, argv=[PT, "-f", "-o", f"source={source}"] + list(options) + [mnt])


_STATS_TOTAL = re.compile(r"stats: (\d+) requests in .*redis: (\d+) round trips, (\d+) replies")
_STATS_OP = re.compile(r"stats: (\w+)\s+(\d+) requests, mean.*?(?:([\d.]+) round trips)?$")


def daemon_stats(mount):
    """The counters of the redisfs daemon of `mount` (a Mount of redisfs, in
    the foreground: it logs them to its stderr on SIGUSR1, fs/op_stats.hpp):
    {"requests", "round_trips", "replies", "ops": {kind: count}}, counted
    since it mounted."""

    def blocks():
        with open(mount.log, errors="replace") as f:
            return f.read().split("\n")

    before = sum(1 for line in blocks() if _STATS_TOTAL.search(line))
    os.kill(mount.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    size = -1
    while True:
        lines = blocks()
        heads = [i for i, line in enumerate(lines) if _STATS_TOTAL.search(line)]
        # the report is complete once a new header is there and the log has
        # stopped growing (the daemon writes it in one burst)
        if len(heads) > before and os.path.getsize(mount.log) == size:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon logged no statistics after SIGUSR1 (see {mount.log})")
        size = os.path.getsize(mount.log)
        time.sleep(0.05)
    m = _STATS_TOTAL.search(lines[heads[-1]])
    stats = {"requests": int(m.group(1)), "round_trips": int(m.group(2)), "replies": int(m.group(3)), "ops": {},
             "op_trips": {}}
    for line in lines[heads[-1] + 1:]:
        op = _STATS_OP.search(line)
        if not op:
            break
        stats["ops"][op.group(1)] = int(op.group(2))
        if op.group(3) is not None:  # the round trips its handlers made, per request
            stats["op_trips"][op.group(1)] = float(op.group(3)) * int(op.group(2))
    return stats


def stats_per(before, after, n, what):
    """One line: what the daemon did between two daemon_stats() readings,
    per one of `n` units (`what`, e.g. "entry"), its commonest requests
    first."""
    ops = {k: after["ops"].get(k, 0) - before["ops"].get(k, 0) for k in after["ops"]}
    trips = {k: after["op_trips"][k] - before["op_trips"].get(k, 0) for k in after.get("op_trips", {})}
    top = sorted(((v, k) for k, v in ops.items() if v > 0), reverse=True)[:6]
    per = lambda v: f"{v / n:.3g}"  # noqa: E731
    # each kind: its requests, and the round trips its handlers made [in brackets]
    shown = lambda k, v: f"{k} {per(v)}" + (f" [{per(trips[k])}]" if k in trips else "")  # noqa: E731
    return (f"{per(after['requests'] - before['requests'])} FUSE requests, "
            f"{per(after['round_trips'] - before['round_trips'])} Redis round trips, "
            f"{per(after['replies'] - before['replies'])} Redis replies per {what} "
            f"({', '.join(shown(k, v) for v, k in top)})")


def vm_rss_mib(pid):
    """The resident set size of process `pid` (VmRSS), MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port(cluster=False):
    """A TCP port nothing listens on at 127.0.0.1, below the ephemeral
    range (with cluster=True, its cluster bus port, + 10000, is free too)."""
    r = random.Random()
    for _ in range(500):
        port = r.randrange(20000, 30000)
        try:
            for p in (port, port + 10000) if cluster else (port,):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free TCP port on 127.0.0.1")


class RedisServer:
    """A private redis-server without persistence in `directory`, on a unix
    socket; with `port`, also on that TCP port of 127.0.0.1. `args`: more
    redis-server arguments (TLS, cluster mode...)."""

    def __init__(self, directory, port=0, args=()):
        self.dir = directory
        self.sock = os.path.join(directory, "redis.sock")
        self.url = f"unix://{self.sock}"
        self.port = port
        self.args = [str(a) for a in args]
        self.proc = None
        self.reg = None

    def __enter__(self):
        os.makedirs(self.dir, exist_ok=True)
        bind = ["--bind", "127.0.0.1"] if self.port else []
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port)] + bind +
                                     ["--unixsocket", self.sock, "--unixsocketperm",
                                      "700", "--dir", self.dir, "--save", "", "--appendonly", "no", "--daemonize",
                                      "no", "--logfile", os.path.join(self.dir, "redis.log")] + self.args,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.reg = os.path.join(TMP, "cleanup", f"server-{self.proc.pid}")
        with open(self.reg, "w") as f:
            f.write(f"{self.proc.pid}\n")
        deadline = time.monotonic() + 10
        while True:
            if os.path.exists(self.sock):
                p = subprocess.run(["redis-cli", "-s", self.sock, "ping"], capture_output=True, text=True)
                if p.stdout.strip() == "PONG":
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                try:
                    with open(os.path.join(self.dir, "redis.log")) as f:
                        last = "".join(f.readlines()[-5:])
                except OSError:
                    last = ""
                raise RuntimeError(f"redis-server did not start in {self.dir}\n{last}")
            time.sleep(0.05)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if not _wait_gone(self.proc, 10):
                self.proc.kill()
                self.proc.wait()
        if self.reg and os.path.exists(self.reg):
            os.unlink(self.reg)
        return False


def create_files(d, names, data=b""):
    """Creates each of `names` in directory `d` (O_CREAT|O_EXCL), writing
    `data` into it; returns the seconds taken."""
    t0 = time.perf_counter()
    for name in names:
        fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        if data:
            os.write(fd, data)
        os.close(fd)
    return time.perf_counter() - t0


def sqlite_commits(path, n):
    """A new sqlite database at `path` (python3's sqlite3, default journal
    mode and synchronous setting), a table, then n inserts, each its own
    transaction: seconds."""
    t0 = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.commit()
    for i in range(n):
        db.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
        db.commit()
    db.close()
    return time.perf_counter() - t0


def stat_files(d, names):
    """stat of each of `names` in `d`: the seconds taken."""
    t0 = time.perf_counter()
    for name in names:
        os.stat(os.path.join(d, name))
    return time.perf_counter() - t0


def unlink_files(d, names):
    """Deletes each of `names` in `d`: the seconds taken."""
    t0 = time.perf_counter()
    for name in names:
        os.unlink(os.path.join(d, name))
    return time.perf_counter() - t0


def populate_mixed(root, total, seed, large_size):
    """Writes `total` bytes of file data under `root`: a quarter in small
    files (1-64 KiB, 500 per directory), the rest in files of `large_size`.
    Returns (files, bytes)."""
    r = rng(seed)
    block = memoryview(os.urandom(8 * MiB))
    files = written = 0
    small_total = total // 4
    d = None
    while written < small_total:
        if files % 500 == 0:
            d = os.path.join(root, f"small-{files // 500:04d}")
            os.makedirs(d)
        n = min(int(2 ** r.uniform(10, 16)), small_total - written)
        off = r.randrange(0, 4 * MiB)
        with open(os.path.join(d, f"f{files:06d}"), "wb", buffering=0) as f:
            f.write(block[off:off + n])
        files += 1
        written += n
    os.makedirs(os.path.join(root, "large"))
    i = 0
    while written < total:
        n = min(large_size, total - written)
        with open(os.path.join(root, "large", f"large-{i:03d}"), "wb", buffering=0) as f:
            left = n
            while left:
                m = min(left, MiB)
                off = r.randrange(0, 4 * MiB)
                f.write(block[off:off + m])
                left -= m
        files += 1
        written += n
        i += 1
    return files, written


def fill(path, size, seed):
    """Writes `size` bytes of incompressible data to `path`, 1 MiB at a time."""
    block = _random_block()
    r = random.Random(seed)
    with open(path, "wb", buffering=0) as f:
        left = size
        while left > 0:
            off = r.randrange(0, len(block) // 2)
            n = min(left, MiB)
            f.write(block[off:off + n])
            left -= n


_block = None


def _random_block():
    global _block
    if _block is None:
        _block = os.urandom(4 * MiB)
    return _block
