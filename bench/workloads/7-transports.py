#!/usr/bin/env python3
"""Workload 7: what the transport to Redis costs (issue 9).

The same small FUSE workloads on redisfs mounted over four transports, one
column each:

  unix     a unix socket (the baseline of every other workload);
  tcp      plain TCP to 127.0.0.1;
  tls      TLS to 127.0.0.1 (rediss://), server certificate verified against
           a private CA and a client certificate required
           (--tls-auth-clients yes), as in tests/prod/tls.sh;
  cluster  a Redis Cluster of 3 masters (no replicas) on 127.0.0.1, plain
           TCP, prefix with a hash tag ({T7}: one slot, so one master);
           --redis names another master, so every mount and every
           redisfs-snap run finds the right one first (MOVED).

unix, tcp and tls reach one and the same private redis-server (it listens on
the three at once), so only the transport differs; the cluster's nodes are
started with the same settings (no persistence: --save '' --appendonly no)
plus cluster mode. Certificates come from tests/prod/lib.sh (make_certs:
EC P-256 keys).

Per repetition and transport, in turn (a fresh mount each time; each
repetition starts with the next transport, so none always goes first):
  - write a tree of small files (1-16 KiB, in 20 directories), files/s;
  - create, stat (cold: the kernel's page cache, dentries and inodes
    dropped; the daemon keeps its own cache of the names it made), unlink
    of N files of 1 KiB (N = 2,000; 500 with --quick), ops/s;
  - fio sequential write of a 64 MiB file (16 MiB with --quick), 1 MiB
    requests, + fsync, then a cold read of it, MB/s; the file is deleted;
  - after unmounting (the filesystem now holds the tree alone):
    `redisfs-snap copy` of it to another prefix and `redisfs-snap dump` of it
    to /dev/null, over the same transport, seconds.
The filesystem and its copy are deleted after each repetition.
The ratios are each transport's performance as a percentage of unix's and
of plain TCP's (higher is better). No timing is asserted.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

n_files = 500 if b.QUICK else 2000
seq_size = 16 * b.MiB if b.QUICK else 64 * b.MiB
tree_dirs, tree_per_dir = 20, (10 if b.QUICK else 25)
COLUMNS = [("unix", "unix"), ("tcp", "tcp"), ("tls", "tls"), ("cluster", "cluster")]
RATIOS = [("tcp", "unix", "tcp:unix"), ("tls", "unix", "tls:unix"), ("cluster", "unix", "cluster:unix"),
          ("tls", "tcp", "tls:tcp"), ("cluster", "tcp", "cluster:tcp")]
b.begin(7, f"transports: {n_files:,} files, a {seq_size // b.MiB} MiB file, copy/dump of "
           f"{tree_dirs * tree_per_dir} files", columns=COLUMNS, ratios=RATIOS)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
W7 = os.path.join(b.TMP, "w7")
CERTS = os.path.join(W7, "certs")


def _make_certs():
    """The CA, server and client certificates of tests/prod/lib.sh."""
    b.run(["bash", "-c", '. "$1/tests/prod/lib.sh" >/dev/null && make_certs "$2"', "make_certs", REPO, CERTS])


def _wait_cluster(nodes):
    for _ in range(600):
        if all("cluster_state:ok" in b.redis_cli(n.sock, "CLUSTER", "INFO") for n in nodes):
            return
        time.sleep(0.05)
    raise RuntimeError("the cluster does not reach cluster_state:ok")


def _serves(node, slot):
    """Whether the cluster node (a RedisServer) serves the slot."""
    for line in b.redis_cli(node.sock, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if "myself" in fields[2]:
            for r in fields[8:]:
                first, _, last = r.partition("-")
                if r[0] != "[" and int(first) <= slot <= int(last or first):
                    return True
    return False


def _tree_files():
    r = b.rng(7)
    return [(f"d{i:02d}", f"f{j:03d}", int(2 ** r.uniform(10, 14))) for i in range(tree_dirs)
            for j in range(tree_per_dir)]


def _write_tree(root, files):
    block = os.urandom(16 * b.KiB)
    t0 = time.perf_counter()
    for d, name, size in files:
        os.makedirs(os.path.join(root, d), exist_ok=True)
        with open(os.path.join(root, d, name), "wb", buffering=0) as f:
            f.write(block[:size])
    return time.perf_counter() - t0


def _one(transport):
    """One repetition of everything over one transport."""
    name, url, options, prefix, socks = transport
    mnt = os.path.join(W7, f"mnt-{name}")
    files = _tree_files()
    names = [f"file-{i:05d}" for i in range(n_files)]
    small = os.urandom(1024)
    with b.Mount(prefix, mnt, url=url, options=options):
        b.result("write a tree of small files", name, len(files) / _write_tree(os.path.join(mnt, "tree"), files),
                 "files/s")
        d = os.path.join(mnt, "meta")
        os.mkdir(d)
        b.result("create 1 KiB file", name, n_files / b.create_files(d, names, small), "ops/s")
        b.drop_caches()
        os.stat(d)
        b.result("stat, cold", name, n_files / b.stat_files(d, names), "ops/s")
        b.result("unlink", name, n_files / b.unlink_files(d, names), "ops/s")
        os.rmdir(d)
        path = os.path.join(mnt, "seq")
        job = b.fio("seqw", path, "write", b.MiB, seq_size)
        b.result(f"seq write {seq_size // b.MiB} MiB + fsync", name,
                 seq_size / (b.fio_seconds(job) + b.fsync_seconds(path)) / b.MB, "MB/s")
        b.drop_caches()
        job = b.fio("seqr", path, "read", b.MiB, seq_size)
        b.result(f"seq read {seq_size // b.MiB} MiB, cold", name, seq_size / b.fio_seconds(job) / b.MB, "MB/s")
        os.unlink(path)
    snap = [b.SNAP, "--redis", url, "--quiet"] + options
    seconds, _ = b.time_v(snap + ["copy", prefix, f"{prefix}-c"])
    b.result("redisfs-snap copy of the tree", name, seconds, "s", better="lower")
    seconds, _ = b.time_v(snap + ["dump", prefix])
    b.result("redisfs-snap dump of the tree", name, seconds, "s", better="lower")
    for sock in socks:
        for p in (prefix, f"{prefix}-c"):
            b.run([b.RAW, sock, "delete", p])
        b.redis_cli(sock, "MEMORY", "PURGE")


_make_certs()
tls_port = b.free_port()
tcp_port = b.free_port()
tls_args = ["--tls-port", tls_port, "--tls-cert-file", f"{CERTS}/server.crt", "--tls-key-file",
            f"{CERTS}/server.key", "--tls-ca-cert-file", f"{CERTS}/ca.crt", "--tls-auth-clients", "yes"]
cluster_ports = []
for _ in range(3):
    p = b.free_port(cluster=True)
    while p in cluster_ports or p in (tcp_port, tls_port):
        p = b.free_port(cluster=True)
    cluster_ports.append(p)

with b.RedisServer(os.path.join(W7, "single"), port=tcp_port, args=tls_args) as single, \
        b.RedisServer(os.path.join(W7, "node1"), port=cluster_ports[0],
                      args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]) as n1, \
        b.RedisServer(os.path.join(W7, "node2"), port=cluster_ports[1],
                      args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]) as n2, \
        b.RedisServer(os.path.join(W7, "node3"), port=cluster_ports[2],
                      args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]) as n3:
    nodes = [n1, n2, n3]
    b.run(["redis-cli", "--cluster", "create"] + [f"127.0.0.1:{p}" for p in cluster_ports] +
          ["--cluster-replicas", "0", "--cluster-yes"])
    _wait_cluster(nodes)
    tls_options = ["--tls-ca-cert", f"{CERTS}/ca.crt", "--tls-cert", f"{CERTS}/client.crt",
                   "--tls-key", f"{CERTS}/client.key"]
    # --redis names a node that does not serve the filesystem's slot: the
    # client finds the one that does (MOVED), as it must in production
    slot = int(b.redis_cli(n1.sock, "CLUSTER", "KEYSLOT", "{T7}"))
    owner = next(i for i, n in enumerate(nodes) if _serves(n, slot))
    entry = (owner + 1) % 3
    transports = [
        ("unix", single.url, [], "T7U", [single.sock]),
        ("tcp", f"redis://127.0.0.1:{tcp_port}", [], "T7T", [single.sock]),
        ("tls", f"rediss://127.0.0.1:{tls_port}", tls_options, "T7S", [single.sock]),
        ("cluster", f"redis://127.0.0.1:{cluster_ports[entry]}", [], "{T7}", [n.sock for n in nodes]),
    ]
    for rep in range(b.REPS):
        # each repetition starts with another transport: none is always first
        for transport in transports[rep % 4:] + transports[:rep % 4]:
            _one(transport)
b.note("unix, tcp, tls: one redis-server listening on all three; cluster: 3 masters, no replicas, "
       f"the filesystem's slot {slot} on node {owner + 1}, --redis names node {entry + 1}")
b.note("tls: certificates of a private CA (EC P-256), client certificate required (--tls-auth-clients yes)")
