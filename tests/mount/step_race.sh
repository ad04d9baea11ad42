#!/usr/bin/env bash
# step_race: a hole punch of more than 1024 blocks and a copy_file_range
# of more than 1024 pieces go in steps (redisfs(1), NOTES, Sparse files
# and Copies), each atomic: another mount's write into the range lands
# before or after the step that covers its block, never inside it.
# A writer on a second mount writes whole blocks at random into the file
# while the first mount punches its whole range, or copies it to another
# file:
# - punch: every block ends either all zeros or holding the last write
#   made to it, whole (never torn, never an older write, never the file's
#   old bytes); a write made after the punch returned is there;
# - copy: every block of the copy is what the source's block held at one
#   instant of the copy (its bytes before the copy when no write to it
#   ended before the copy began, or a write to it that began before the
#   copy returned), whole;
# - the sizes stay, and the byte counts of the inodes and of the
#   superblock (df) are the blocks' (fsck).
# How many writes overlapped each punch or copy is printed, not asserted
# (the machine's timing decides); each kind runs three rounds.
. "$(dirname "$0")/lib.sh"

BLOCKS=6000 # about six steps of 1024
A=$T/a
B=$T/b
mount_at "$A" --block-size 4096
mount_at "$B"

# race KIND ROUND: the file f<ROUND> (its bytes kept in $T/orig<ROUND>),
# written through B while A punches it or copies it to f<ROUND>.copy; the
# times and the writes go to $T/log<ROUND>
race() {
  local kind=$1 round=$2
  head -c $((BLOCKS * 4096)) /dev/urandom >"$T/orig$round"
  cp "$T/orig$round" "$A/f$round"
  python3 - "$kind" "$A/f$round" "$B/f$round" "$BLOCKS" "$T/log$round" <<'PY'
import ctypes, os, random, sys, threading, time
kind, a_path, b_path, blocks, log_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
PUNCH_KEEP = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
log, stop, rng = [], threading.Event(), random.Random(log_path)
fb = os.open(b_path, os.O_WRONLY)

def writer():
    seq = 0
    while not stop.is_set():
        seq += 1
        k = rng.randrange(blocks)
        start = time.monotonic()
        os.pwrite(fb, (b'%08d' % seq) * 512, k * 4096)  # one whole block
        log.append((seq, k, start, time.monotonic()))

def act():
    if kind == 'punch':
        fa = os.open(a_path, os.O_WRONLY)
        if libc.fallocate(fa, PUNCH_KEEP, 0, blocks * 4096) != 0:
            sys.exit('punch: ' + os.strerror(ctypes.get_errno()))
        os.close(fa)
        return
    fi = os.open(a_path, os.O_RDONLY)
    fo = os.open(a_path + '.copy', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    done = 0
    while done < blocks * 4096:
        got = os.copy_file_range(fi, fo, blocks * 4096 - done, done, done)
        if got == 0:
            sys.exit('copy: the source ended at %d bytes' % done)
        done += got
    os.close(fo)
    os.close(fi)

w = threading.Thread(target=writer)
w.start()
while len(log) < 100:
    time.sleep(0.001)
t0 = time.monotonic()
try:
    act()
finally:
    t1 = time.monotonic()
    after = len(log)
    while w.is_alive() and len(log) < after + 100:
        time.sleep(0.001)
    stop.set()
    w.join()
os.close(fb)
with open(log_path, 'w') as out:
    out.write('%r %r\n' % (t0, t1))
    for seq, k, start, end in log:
        out.write('%d %d %r %r\n' % (seq, k, start, end))
PY
}

# check KIND ROUND: the blocks after the race, read through a fresh mount
check() {
  local kind=$1 round=$2 file
  file=$MNT/f$round
  [[ $kind == copy ]] && file=$MNT/f$round.copy
  python3 - "$kind" "$file" "$T/orig$round" "$BLOCKS" "$T/log$round" <<'PY'
import sys
kind, path, orig_path, blocks, log_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
with open(log_path) as f:
    t0, t1 = map(float, f.readline().split())
    writes = [(int(s), int(k), float(a), float(b)) for s, k, a, b in (l.split() for l in f)]
by_block = {}
for w in writes:
    by_block.setdefault(w[1], []).append(w)
overlapped = sum(1 for _, _, start, end in writes if start < t1 and end > t0)
data = open(path, 'rb').read()
orig = open(orig_path, 'rb').read()
if len(data) != blocks * 4096:
    sys.exit('%s is %d bytes after the %s, %d expected' % (path, len(data), kind, blocks * 4096))
marker = lambda seq: (b'%08d' % seq) * 512
zero = bytes(4096)
counts = {}
def count(what):
    counts[what] = counts.get(what, 0) + 1
for k in range(blocks):
    got = data[k * 4096:(k + 1) * 4096]
    ws = by_block.get(k, [])
    if kind == 'punch':
        if not ws:
            if got != zero:
                sys.exit('block %d, never written during the race, is not zeros after the punch' % k)
            continue
        seq, _, start, _ = ws[-1]
        if got == marker(seq):
            count('kept their last write')
        elif got == zero:
            if start > t1:
                sys.exit('block %d: write #%d, made after the punch returned, is lost' % (k, seq))
            count('punched after their last write')
        else:
            sys.exit('block %d holds neither zeros nor its last write (#%d): %r...' % (k, seq, got[:16]))
        continue
    # copy: what the source block held at one instant of [t0, t1]
    before = [w for w in ws if w[3] <= t0]
    allowed = {marker(before[-1][0]) if before else orig[k * 4096:(k + 1) * 4096]}
    allowed |= {marker(seq) for seq, _, start, end in ws if end > t0 and start < t1}
    if got not in allowed:
        sys.exit('block %d of the copy is not what the source held at an instant of the copy: %r...' % (k, got[:16]))
    if any(end > t0 and start < t1 for _, _, start, end in ws):
        count('copied while written')
print('%d writes, %d of them while the %s ran (%.0f ms); blocks: %s' % (
    len(writes), overlapped, kind, (t1 - t0) * 1000,
    ', '.join('%d %s' % (n, what) for what, n in sorted(counts.items())) or 'none written meanwhile'))
PY
}

kinds=(punch punch punch copy copy copy)
for round in "${!kinds[@]}"; do
  race "${kinds[$round]}" "$round" || fail "round $round (${kinds[$round]}): the race did not run"
done
unmount_fs "$A"
unmount_fs "$B"
check_consistency || fail "inconsistent after the races"
mount_fs
for round in "${!kinds[@]}"; do
  out=$(check "${kinds[$round]}" "$round") || fail "round $round (${kinds[$round]}): $out"
  note "round $round, ${kinds[$round]}: $out"
done
unmount_fs
