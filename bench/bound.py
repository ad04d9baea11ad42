"""The round-trip bound of bench/run's workload 8 (issue 10): how close to
passthrough_ll any filesystem with redisfs's multi-host semantics could
come, measured within the run (bench/README.md, "Bounds", argues why each
figure is an upper bound).

forced_round_trips() counts, from an strace of the workload run on the
private tmpfs, the server round trips that close-to-open semantics force
onto the callers' path, by these rules (calls on paths and descriptors
under the workload's directory, that succeeded):
  - a file created by open(2) (O_CREAT, with O_EXCL or of a name the trace
    has not seen exist): 1, decided on the server before open returns;
  - close(2) of a descriptor written to, truncated or given attributes
    (fchmod, fchown, futimens, fsetxattr) since its open or its last fsync:
    1, its data and attributes on the server before close returns;
  - fsync(2)/fdatasync(2) of such a descriptor: 1 (of a clean one: none);
  - mkdir, mknod, symlink, link, rename, unlink, rmdir (any *at form): 1,
    on the server before the call returns.
Nothing else counts (reads, stats, chmod/chown/utimes by path, writes
before a close): fewer counted round trips only raise the bound. Round
trips of one thread are one after another; those of different threads may
overlap, so the count that bounds the time is the largest of any thread.

time_bound() and the stream bounds turn counts and measured prices into the
best time or rate any implementation could reach (see the README).
"""
import os
import re

# what strace is asked to trace (-e trace=...): the calls the rules read
TRACED = ("open,openat,creat,close,write,writev,pwrite64,pwritev,pwritev2,ftruncate,fallocate,fchmod,fchown,"
          "utimensat,fsetxattr,fremovexattr,copy_file_range,sendfile,fsync,fdatasync,mkdir,mkdirat,mknod,mknodat,"
          "symlink,symlinkat,link,linkat,rename,renameat,renameat2,unlink,unlinkat,rmdir")

_LINE = re.compile(r"^(\d+\.\d+) (\w+)\((.*)\) += (-?\d+)(?:<(.*)>)?")
# a descriptor with its path (strace -y), or a quoted string
_TOKEN = re.compile(r'(?:\d+|AT_FDCWD)<([^>]*)>|"((?:[^"\\]|\\.)*)"')
_DIRTYING = {"write", "writev", "pwrite64", "pwritev", "pwritev2", "ftruncate", "fallocate", "fchmod", "fchown",
             "fsetxattr", "fremovexattr"}
_NAMING = {"mkdir", "mkdirat", "mknod", "mknodat", "symlink", "symlinkat", "link", "linkat", "rename", "renameat",
           "renameat2", "unlink", "unlinkat", "rmdir"}


def _fd(args):
    """The leading descriptor of `args` with its path (strace -y), or None."""
    m = re.match(r"(\d+)<([^>]*)>", args)
    return (int(m.group(1)), m.group(2)) if m else None


def _paths(args):
    """The paths named by args, in order: a descriptor's (strace -y) or a
    string joined to the descriptor before it (openat(4</d>, "f") is
    /d/f), or a string alone (relative to nothing we know: kept as is)."""
    out = []
    base = None
    for m in _TOKEN.finditer(args):
        if m.group(1) is not None:
            base = m.group(1)
            out.append(base)
        else:
            name = m.group(2)
            full = name if name.startswith("/") or base is None else os.path.join(base, name)
            if base is not None and out and out[-1] == base:
                out[-1] = os.path.normpath(full)
            else:
                out.append(os.path.normpath(full))
            base = None
    return out


class _Thread:
    def __init__(self):
        self.dirty = set()  # (descriptor, path) with changes the server does not have yet
        self.trips = 0


def _under(path, root):
    return path == root or path.startswith(root + "/")


def _step(t, call, args, ret, ret_path, root, known):
    """Applies one successful call of thread t."""
    if call in ("open", "openat", "creat"):
        path = ret_path or ""
        creating = call == "creat" or "O_CREAT" in args
        if _under(path, root) and creating and ("O_EXCL" in args or path not in known):
            t.trips += 1
        known.add(path)
    elif call == "close":
        if _fd(args) in t.dirty:
            t.trips += 1
        t.dirty.discard(_fd(args))
    elif call in ("fsync", "fdatasync"):
        if _fd(args) in t.dirty:
            t.trips += 1
            t.dirty.discard(_fd(args))
    elif call in _DIRTYING or (call == "utimensat" and re.match(r"\d+<[^>]*>, NULL", args)):
        fd = _fd(args)
        if fd and _under(fd[1], root) and (call not in ("write", "writev") or ret > 0):
            t.dirty.add(fd)
    elif call in ("copy_file_range", "sendfile"):
        fds = re.findall(r"(\d+)<([^>]*)>", args)
        fd = fds[1] if call == "copy_file_range" else fds[0]
        if _under(fd[1], root) and ret > 0:
            t.dirty.add((int(fd[0]), fd[1]))
    elif call in _NAMING:
        paths = _paths(args)
        if call in ("symlink", "symlinkat"):
            paths = paths[1:]  # the first string is the link's target, not a path of ours
        if any(_under(p, root) for p in paths):
            t.trips += 1
        if call.startswith(("unlink", "rmdir", "rename")):
            known.discard(paths[0])
        if not call.startswith(("unlink", "rmdir")):
            known.add(paths[-1])


def forced_round_trips(traces, root):
    """traces: {thread id: text of its strace -ttt -y output}. Returns
    (largest count of one thread, sum over the threads)."""
    lines = []
    for tid, text in traces.items():
        for line in text.splitlines():
            m = _LINE.match(line)
            if m and int(m.group(4)) >= 0:
                lines.append((float(m.group(1)), tid, m))
    lines.sort(key=lambda x: (x[0], x[1]))
    threads = {tid: _Thread() for tid in traces}
    known = set()
    root = os.path.normpath(root)
    for _, tid, m in lines:
        _step(threads[tid], m.group(2), m.group(3), int(m.group(4)), m.group(5), root, known)
    counts = [t.trips for t in threads.values()] or [0]
    return max(counts), sum(counts)


def read_traces(prefix):
    """The files strace -ff -o PREFIX wrote: {thread id: text}."""
    directory, base = os.path.split(prefix)
    out = {}
    for name in os.listdir(directory):
        if name.startswith(base + "."):
            with open(os.path.join(directory, name), errors="replace") as f:
                out[int(name.rsplit(".", 1)[1])] = f.read()
    return out


def time_bound(base, tmpfs, trips, price):
    """The least time a workload could take with `trips` forced round trips
    at `price` seconds each, everything else costing what passthrough_ll's
    time `base` less the tmpfs's own time `tmpfs` (the same calls with no
    FUSE) costs: the kernel's FUSE traffic of passthrough_ll."""
    return max(base - tmpfs, 0.0) + trips * price


def overlapped_stream_bound(base, tmpfs, server):
    """The highest rate (MB/s) when the server's work overlaps FUSE's
    entirely: the slower of the two."""
    fuse = max(1.0 / base - 1.0 / tmpfs, 1e-12)
    return 1.0 / max(fuse, 1.0 / server)
