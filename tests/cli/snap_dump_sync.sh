#!/usr/bin/env bash
# dump -o FILE is durable in order (dump_io.cpp, dump_to_path): under
# strace, the temporary file's data is fsynced, then it is renamed over
# FILE, then a descriptor opened on FILE's directory (O_DIRECTORY) is
# fsynced, for a FILE with a directory part and for a bare name (the
# directory is then "."). The only tool output written by a rename: a
# restore's resume state lives on the server (restore_resume.hpp).
. "$(dirname "$0")/snap_lib.sh"

need_tools strace

make_fs SKX
mkdir "$T/out"

# check_order TRACE TMP-GLOB FILE DIR: the three steps, in that order, in
# the strace -f output TRACE (calls split by another thread are joined).
check_order() {
  python3 - "$@" <<'PY'
import fnmatch, re, sys
trace, tmp_glob, final, directory = sys.argv[1:]
calls, pending = [], {}
for line in open(trace):
    pid, _, rest = line.rstrip("\n").partition(" ")
    rest = rest.strip()
    if rest.endswith("<unfinished ...>"):
        pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
        continue
    m = re.match(r"<\.\.\. \w+ resumed>(.*)", rest)
    if m:
        rest = pending.pop(pid, "") + m.group(1)
    m = re.match(r"(\w+)\((.*)\)\s+=\s+(-?\d+)", rest)
    if m:
        calls.append((m.group(1), m.group(2), int(m.group(3))))

def fail(why):
    sys.exit("dump -o %s: %s\n%s" % (final, why, "\n".join("%s(%s) = %d" % c for c in calls)))

def opened(i, pred):  # index and fd of the first successful openat at or after i matching pred
    for j in range(i, len(calls)):
        name, args, ret = calls[j]
        if name == "openat" and ret >= 0:
            path = re.search(r'"([^"]*)"', args).group(1)
            if pred(path, args):
                return j, ret
    return None, None

def synced(i, fd):  # index of fsync/fdatasync(fd) after i, before fd is closed
    for j in range(i + 1, len(calls)):
        name, args, ret = calls[j]
        if name in ("fsync", "fdatasync") and args == str(fd) and ret == 0:
            return j
        if name == "close" and args == str(fd):
            return None
    return None

renames = [j for j, (n, a, r) in enumerate(calls) if n.startswith("rename") and r == 0 and '"%s"' % final in a]
if len(renames) != 1:
    fail("%d renames onto it" % len(renames))
ren = renames[0]
tmp = re.findall(r'"([^"]*)"', calls[ren][1])[0]
if not fnmatch.fnmatch(tmp, tmp_glob):
    fail("renamed from %s, not a temporary file %s" % (tmp, tmp_glob))
data = None
j = 0
while data is None:
    j, fd = opened(j, lambda p, a: p == tmp)
    if j is None or j > ren:
        fail("the temporary file's data is not fsynced before the rename")
    s = synced(j, fd)
    data = s if s is not None and s < ren else None
    j += 1
j, fd = opened(ren, lambda p, a: p == directory and "O_DIRECTORY" in a)
if j is None:
    fail("no descriptor opened on %s after the rename" % directory)
if synced(j, fd) is None:
    fail("the descriptor on %s (fd %d) is not fsynced after the rename" % (directory, fd))
PY
}

traced() {  # TRACE COMMAND...
  local out=$1
  shift
  # (LeakSanitizer cannot run under ptrace: an ASan build's tool would fail
  # at exit; the other sanitizers stay on)
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -qq -o "$out" -e trace=fsync,fdatasync,rename,renameat,renameat2,openat,close "$@"
}

traced "$T/trace1" "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q dump SKX -o "$T/out/fs.json"
check_order "$T/trace1" "$T/out/fs.json.tmp-*" "$T/out/fs.json" "$T/out" || fail "dump -o DIR/FILE: see above"
jq -e '.trailer' "$T/out/fs.json" >/dev/null

(cd "$T/out" && traced "$T/trace2" "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q dump SKX -o fs.json.zst)
check_order "$T/trace2" "fs.json.zst.tmp-*" "fs.json.zst" "." || fail "dump -o FILE (no directory part): see above"
zstd -dc "$T/out/fs.json.zst" | jq -e '.trailer' >/dev/null
[[ -z $(find "$T/out" -name '*.tmp-*') ]] || fail "a temporary file is left: $(ls "$T/out")"
note "dump -o: data fsync, rename, directory fsync, in that order"
