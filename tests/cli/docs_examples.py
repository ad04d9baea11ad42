#!/usr/bin/env python3
"""Runs every command of README.md's shell blocks and of the man pages'
EXAMPLES, as written, against servers this test starts.

Each document runs in an environment of its own: a HOME (so `~/fs` and the
embedded default store are private), a PATH where `redisfs` and
`redisfs-snap` are the binaries under test, and the servers the text names
mapped to private ones: `db.example`, `db`, `backup`, `other` and `host`
become redis-servers on 127.0.0.1 ports picked free here (or a unix
socket), `ssh other CMD` runs CMD on the "other host" (another HOME, so
another embedded store), and `/mnt/...`, `/srv/...` and `/etc/redisfs/...`
become directories of the test. A command fails the test when it exits
non-zero; a server or path the mapping does not know fails it too, so a
new example in the docs is run or noticed, never skipped in silence.

Only the README's test commands are not run (SKIPPED below: this test is
part of them), nor the commands that need a server this test does not
start, a TLS server, Redis Sentinel or a Redis Cluster (NOT_RUN below:
the Production section's examples); each is named in the output. The quick start runs whole, from the repository: its build
is up to date by then, so it installs no package, its `cmake --install`
goes to a DESTDIR of the test (never /usr/local), and it mounts.

usage: docs_examples.py REPO_ROOT REDISFS_BIN REDISFS_SNAP_BIN
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT, REDISFS, SNAP = sys.argv[1:4]

# Lines that are documentation of how to run the tests themselves.
SKIPPED = {
    "ctest --test-dir build --output-on-failure": "the test command: this test runs inside it",
    "ctest --test-dir build -L unit": "the test command: this test runs inside it",
}

# Commands that need servers this test does not start, by what they need.
NOT_RUN = [
    (re.compile(r"rediss://|rediss-sentinel://|--tls"), "needs a TLS server"),
    (re.compile(r"redis-sentinel://|--sentinel"), "needs Redis Sentinel"),
    # (a quoted {...} in a jq program is an object, not a hash tag)
    (re.compile(r"^(?!jq )\S+.*'\{[^}']*\}"), "needs a Redis Cluster (a hash-tagged prefix)"),
]

T = tempfile.mkdtemp(prefix="redisfs-docs.")
os.chmod(T, 0o755)
servers = []  # (name, proc, sock or port)
failures = []


def note(msg):
    print(f"-- docs_examples: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(name, *extra, unix=False):
    d = os.path.join(T, "srv-" + name)
    os.makedirs(d)
    args = ["redis-server", "--save", "", "--appendonly", "no", "--dir", d, "--logfile", d + "/log"]
    if unix:
        args += ["--port", "0", "--unixsocket", d + "/redis.sock", "--unixsocketperm", "700"]
        where = d + "/redis.sock"
    else:
        port = free_port()
        args += ["--port", str(port), "--bind", "127.0.0.1"]
        where = port
    proc = subprocess.Popen(args + list(extra))
    servers.append((name, proc, where))
    for _ in range(200):
        if cli(where, "ping", check=False).stdout.strip() == "PONG" or b"NOAUTH" in cli(
                where, "ping", check=False, raw=True).stdout:
            return where
        time.sleep(0.05)
    raise SystemExit(f"redis-server {name} did not start")


def cli(where, *args, check=True, raw=False, password=None):
    base = ["redis-cli"] + (["-s", where] if isinstance(where, str) else ["-h", "127.0.0.1", "-p", str(where)])
    if password:
        base += ["--no-auth-warning", "-a", password]
    r = subprocess.run(base + list(args), capture_output=True, text=not raw)
    if check and r.returncode != 0:
        raise SystemExit(f"redis-cli {args} failed: {r.stderr}")
    return r


def mounts_under(prefix):
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mnt = line.split()[1].encode().decode("unicode_escape")
            if mnt.startswith(prefix):
                out.append(mnt)
    return out


def unmount_all():
    for mnt in sorted(mounts_under(T), key=len, reverse=True):
        subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
        for _ in range(100):
            if mnt not in mounts_under(mnt):
                break
            time.sleep(0.05)
        else:
            subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)


def wait_no_daemons(home_dirs, seconds=20):
    """The daemons exit after their unmount, and the last one stops its
    embedded store: wait for both so no process outlives the test."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not _processes_mentioning(T):
            return
        time.sleep(0.1)


def _processes_mentioning(text):
    """redisfs daemons whose command line mentions `text` (a /proc walk:
    no procps needed)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        cmd = b" ".join(argv).decode(errors="replace")
        if os.path.basename(argv[0].decode(errors="replace")) == "redisfs" and text in cmd:
            found.append(pid)
    return found


def blocks(path):
    """(heading, [commands]) of each ```sh block of a markdown file, with
    backslash continuations joined and comments dropped."""
    text = open(path).read()
    out = []
    heading = ""
    for m in re.finditer(r"^(#+ [^\n]*)$|^```sh\n(.*?)^```", text, re.M | re.S):
        if m.group(1):
            heading = m.group(1).lstrip("# ")
            continue
        out.append((heading, _commands(m.group(2))))
    return out


def man_examples(path):
    """The commands between .nf and .fi in a man page's EXAMPLES."""
    text = open(path).read()
    m = re.search(r"^\.SH EXAMPLES\n(.*?)(?=^\.SH )", text, re.M | re.S)
    if not m:
        return []
    cmds = []
    for block in re.findall(r"^\.nf\n(.*?)^\.fi", m.group(1), re.M | re.S):
        block = block.replace("\\-", "-").replace("\\e", "\\").replace("\\(aq", "'")
        cmds += _commands(block)
    return cmds


def _commands(block):
    lines = []
    pending = ""
    for raw in block.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        # A trailing comment: " #" outside single quotes.
        cut = line.find(" #")
        if cut >= 0 and line[:cut].count("'") % 2 == 0:
            line = line[:cut]
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


class Env:
    """One document's world: its HOME, PATH and servers."""

    def __init__(self, name, mapping):
        self.name = name
        self.home = os.path.join(T, name, "home")
        self.work = os.path.join(T, name, "work")
        os.makedirs(self.home)
        os.makedirs(self.work)
        os.makedirs(os.path.join(T, name, "mnt"))
        bindir = os.path.join(T, "bin")
        os.makedirs(bindir, exist_ok=True)
        for exe, target in (("redisfs", REDISFS), ("redisfs-snap", SNAP)):
            link = os.path.join(bindir, exe)
            if not os.path.exists(link):
                os.symlink(target, link)
        self.env = dict(os.environ)
        for var in ("REDISFS_URL", "REDISFS_PREFIX", "REDISFS_PASSWORD", "XDG_DATA_HOME"):
            self.env.pop(var, None)
        self.env["HOME"] = self.home
        self.env["PATH"] = bindir + ":" + self.env["PATH"]
        self.mapping = [(re.compile(a), b.replace("$M", os.path.join(T, name, "mnt"))) for a, b in mapping]
        self.mapping.append((re.compile(r"ssh (other|host) "),
                             "env HOME=" + os.path.join(T, name, "other") + " "))
        os.makedirs(os.path.join(T, name, "other"))

    def translate(self, cmd):
        for pat, rep in self.mapping:
            cmd = pat.sub(rep, cmd)
        leftover = re.search(r"rediss?://(?!(\w+@)?127\.0\.0\.1)\S*|(?<![\w>])/(mnt|srv|etc)/\S*|ssh \S+",
                             cmd.replace(T, "<T>"))
        if leftover:
            raise SystemExit(f"{self.name}: the test does not know how to run '{leftover.group(0)}' in: {cmd}")
        return cmd

    def run(self, cmd):
        if cmd in SKIPPED:
            note(f"{self.name}: not run: {cmd} ({SKIPPED[cmd]})")
            return
        for pattern, why in NOT_RUN:
            if pattern.search(cmd):
                note(f"{self.name}: not run: {cmd} ({why})")
                return
        real = self.translate(cmd)
        words = shlex.split(real)
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        is_mount = bool(words) and words[0] == "redisfs"
        background = is_mount and ("-d" in words or "-f" in words)
        if is_mount:
            # Examples show alternatives: a mount point in use is freed first.
            target = words[-1].replace("~", self.home, 1) if words[-1].startswith("~") else words[-1]
            target = target if target.startswith("/") else os.path.join(self.work, target)
            os.makedirs(target, exist_ok=True)
            if target in mounts_under(target):
                subprocess.run(["fusermount3", "-u", target], capture_output=True)
                time.sleep(0.3)
        note(f"{self.name}: $ {cmd}")
        if background:
            proc = subprocess.Popen(["bash", "-c", real], cwd=self.work, env=self.env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(200):
                if target in mounts_under(target):
                    return
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            failures.append(f"{self.name}: '{cmd}' did not mount: {proc.stderr.read().decode()[-500:]}")
            return
        r = subprocess.run(["bash", "-o", "pipefail", "-c", real], cwd=self.work, env=self.env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            failures.append(f"{self.name}: '{cmd}' exited {r.returncode}: {(r.stderr or r.stdout).strip()[-500:]}")


def main():
    a = start_server("db")
    b = start_server("backup")
    c = start_server("unix", unix=True)
    cli(a, "ACL", "SETUSER", "app", "on", ">secret", "~*", "&*", "+@all")
    d_pw = "docs-example-password"
    d = start_server("db-password", "--requirepass", d_pw)
    with open(os.path.join(T, "pw"), "w") as f:
        f.write(d_pw + "\n")

    readme = Env("readme", [
        (r"redis://db\.example:6379", f"redis://127.0.0.1:{a}"),
        (r"redis://app@db:6379", f"redis://app@127.0.0.1:{a}"),
        (r"redis://backup:6379", f"redis://127.0.0.1:{b}"),
        (r"(?<![\w.])/mnt/", "$M/"),
    ])
    for heading, cmds in blocks(os.path.join(ROOT, "README.md")):
        for cmd in cmds:
            if cmd.startswith("./quickstart.sh"):
                # The quick start as written, from the repository (its build
                # is up to date, so it only mounts).
                note(f"readme: $ {cmd}")
                qs_env = dict(readme.env, DESTDIR=os.path.join(T, "destdir"))
                r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=qs_env, capture_output=True, text=True,
                                   timeout=900)
                if r.returncode != 0:
                    failures.append(f"readme: '{cmd}' exited {r.returncode}: {r.stderr.strip()[-500:]}")
                elif not mounts_under(os.path.join(readme.home, "redisfs")):
                    failures.append("readme: the quick start did not leave a mount on ~/redisfs")
                elif not os.access(os.path.join(T, "destdir", "usr", "local", "bin", "redisfs"), os.X_OK):
                    failures.append("readme: the quick start did not install redisfs (cmake --install)")
                continue
            readme.run(cmd)
    # What the session promises: the restored dump mounts read-write.
    restored = os.path.join(T, "readme", "mnt", "restored")
    if restored in mounts_under(restored):
        try:
            with open(os.path.join(restored, "written-after-restore"), "w") as f:
                f.write("ok")
        except OSError as e:
            failures.append(f"readme: the restored filesystem is not writable: {e}")
    else:
        failures.append("readme: the restored filesystem is not mounted")
    unmount_all()
    wait_no_daemons(())

    for page, extra in (("redisfs.1", []), ("redisfs-snap.1", []), ("redisfs-dump.5", ["redisfs-snap dump SKX -o fs.json"])):
        for srv in (a, b, c):
            cli(srv, "FLUSHALL")
        cli(d, "FLUSHALL", password=d_pw)
        env = Env(page.replace(".", "-"), [
            (r"redis://db\.example:6379", f"redis://127.0.0.1:{d}"),
            (r"/etc/redisfs/pw", os.path.join(T, "pw")),
            (r"unix:///tmp/r/redis\.sock", f"unix://{c}"),
            (r"(?<![\w.])/mnt/", "$M/"),
            (r"(?<![\w.])/srv/", "$M/srv-"),
        ])
        cmds = man_examples(os.path.join(ROOT, "man", page))
        if not cmds:
            failures.append(f"{page}: no EXAMPLES found")
        # Examples work on an existing filesystem SKX with a file in it.
        env.run("redisfs ~/setup")
        env.run("echo hello > ~/setup/greeting")
        env.run("fusermount3 -u ~/setup")
        time.sleep(0.5)
        for cmd in extra + cmds:
            env.run(cmd)
        unmount_all()
        wait_no_daemons(())

    for f in failures:
        print("FAIL: " + f, flush=True)
    return 1 if failures else 0


try:
    rc = main()
finally:
    unmount_all()
    wait_no_daemons(())
    for name, proc, _ in servers:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    # An embedded store a failed example left running.
    for root, _, files in os.walk(T):
        if "redis.sock" in files and "srv-" not in root:
            subprocess.run(["redis-cli", "-s", os.path.join(root, "redis.sock"), "shutdown", "nosave"],
                           capture_output=True)
    shutil.rmtree(T, ignore_errors=True)
sys.exit(rc)
