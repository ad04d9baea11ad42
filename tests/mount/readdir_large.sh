#!/usr/bin/env bash
# readdir_large: a directory of 10,000 entries is read in many pages: ls
# counts them all, ls -l stats them all, every name comes back exactly once,
# also when entries are added and removed while a reader is half-way
# through (the ones present throughout must appear exactly once), and rm -rf
# empties it.
. "$(dirname "$0")/lib.sh"

mount_fs
mkdir "$MNT/big"
python3 - "$MNT/big" <<'PY'
import os, sys
d = sys.argv[1]
kids = []
for k in range(4):  # four creators at once: the daemon serves them in parallel
    pid = os.fork()
    if pid == 0:
        for i in range(k, 10000, 4):
            name = "file-%05d" % i if i % 10 else "a-much-longer-name-to-fill-the-pages-%05d-%s" % (i, "x" * 150)
            os.close(os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT, 0o644))
        os._exit(0)
    kids.append(pid)
if any(os.waitpid(pid, 0)[1] for pid in kids):
    sys.exit("readdir_large: a creator failed")
for i in range(20):
    os.mkdir(os.path.join(d, "dir-%02d" % i))
PY

n=$(ls "$MNT/big" | wc -l)
[[ $n == 10020 ]] || fail "ls counts $n entries, want 10020"
n=$(ls -f "$MNT/big" | wc -l)
[[ $n == 10022 ]] || fail "ls -f counts $n entries with . and .., want 10022"
ls -l "$MNT/big" >"$T/ls-l" || fail "ls -l failed"
n=$(grep -c '^-' "$T/ls-l")
[[ $n == 10000 ]] || fail "ls -l shows $n files, want 10000"
n=$(grep -c '^d' "$T/ls-l")
[[ $n == 20 ]] || fail "ls -l shows $n dirs, want 20"
[[ $(stat -c %h "$MNT/big") == 22 ]] || fail "nlink of big is $(stat -c %h "$MNT/big"), want 22"
dups=$(ls -f "$MNT/big" | sort | uniq -d | head -3)
[[ -z $dups ]] || fail "duplicate entries: $dups"

python3 - "$MNT/big" <<'PY'
import os, sys
d = sys.argv[1]
want = {"file-%05d" % i if i % 10 else "a-much-longer-name-to-fill-the-pages-%05d-%s" % (i, "x" * 150)
        for i in range(10000)} | {"dir-%02d" % i for i in range(20)}
got = os.listdir(d)
if len(got) != len(set(got)) or set(got) != want:
    sys.exit("readdir_large: names differ: missing %s, extra %s" % (sorted(want - set(got))[:5], sorted(set(got) - want)[:5]))
types = {e.name: e.is_dir() for e in os.scandir(d)}
if sum(types.values()) != 20:
    sys.exit("readdir_large: d_type says %d dirs" % sum(types.values()))

# a reader half-way through while names come and go
removed = {n for n in want if n.startswith("file-") and int(n[5:]) % 3 == 0}
it = os.scandir(d)
seen = [next(it).name for _ in range(2500)]
for n in removed:
    os.unlink(os.path.join(d, n))
for i in range(2000):
    os.close(os.open(os.path.join(d, "added-%05d" % i), os.O_WRONLY | os.O_CREAT, 0o644))
seen += [e.name for e in it]
it.close()
stable = want - removed
dup = [n for n in set(seen) if seen.count(n) > 1] if len(seen) != len(set(seen)) else []
missing = stable - set(seen)
bogus = set(seen) - want - {"added-%05d" % i for i in range(2000)}
if dup or missing or bogus:
    sys.exit("readdir_large: changing directory read: %d duplicated (%s), %d missing (%s), %d unknown" % (
        len(dup), sorted(dup)[:3], len(missing), sorted(missing)[:3], len(bogus)))
final = os.listdir(d)
if set(final) != stable | {"added-%05d" % i for i in range(2000)} or len(final) != len(set(final)):
    sys.exit("readdir_large: listing after the changes is wrong")
PY

check_consistency -q
rm -rf "$MNT/big"
[[ ! -e $MNT/big ]] || fail "big still exists after rm -rf"
[[ -z $(ls -A "$MNT") ]] || fail "root not empty: $(ls -A "$MNT" | head -3)"
unmount_fs
check_consistency --no-orphans
[[ $(fs_keys 'DIR:*' | wc -l) == 0 ]] || fail "DIR keys left: $(fs_keys 'DIR:*' | head -3)"
[[ $(fs_keys 'INODE:*' | wc -l) == 1 ]] || fail "inodes left besides the root: $(fs_keys 'INODE:*' | wc -l)"
