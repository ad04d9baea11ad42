#!/usr/bin/env bash
# punch_race: a hole punched in steps (more than 1024 blocks: redisfs(1),
# NOTES, Sparse files) while another mount writes into the range. Each step
# is atomic, so each write lands before or after the step that covers its
# block, never inside it:
# - every block ends either all zeros or holding the last write made to
#   it, whole (a block is never torn, never holds an older write, never
#   the punched file's old bytes);
# - a write made after the punch returned is there;
# - the file's size stays, and the byte counts of the inode and of the
#   superblock (df) are the blocks' (fsck).
# How many writes overlapped the punch is printed, not asserted (the
# machine's timing decides), and the round is run three times.
. "$(dirname "$0")/lib.sh"
need_tools cmp

BLOCKS=6000 # about six steps of 1024
A=$T/a
B=$T/b
mount_at "$A" --block-size 4096
mount_at "$B"

race() {
  local round=$1
  head -c $((BLOCKS * 4096)) /dev/urandom >"$A/f$round"
  python3 - "$A/f$round" "$B/f$round" "$BLOCKS" "$T/log$round" <<'PY'
import ctypes, os, random, sys, threading, time
a_path, b_path, blocks, log_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
PUNCH_KEEP = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
log, stop, rng = [], threading.Event(), random.Random(int(log_path[-1]))
fb = os.open(b_path, os.O_WRONLY)

def writer():
    seq = 0
    while not stop.is_set():
        seq += 1
        k = rng.randrange(blocks)
        start = time.monotonic()
        os.pwrite(fb, (b'%08d' % seq) * 512, k * 4096)  # one whole block
        log.append((seq, k, start, time.monotonic()))

w = threading.Thread(target=writer)
w.start()
while len(log) < 100:
    time.sleep(0.001)
fa = os.open(a_path, os.O_WRONLY)
t0 = time.monotonic()
if libc.fallocate(fa, PUNCH_KEEP, 0, blocks * 4096) != 0:
    sys.exit('punch: ' + os.strerror(ctypes.get_errno()))
t1 = time.monotonic()
os.close(fa)
after = len(log)
while len(log) < after + 100:
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

check() {
  local round=$1
  python3 - "$MNT/f$round" "$BLOCKS" "$T/log$round" <<'PY'
import sys
path, blocks, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(log_path) as f:
    t0, t1 = map(float, f.readline().split())
    writes = [l.split() for l in f]
last = {}
overlapped = 0
for seq, k, start, end in writes:
    last[int(k)] = (int(seq), float(start))
    if float(start) < t1 and float(end) > t0:
        overlapped += 1
data = open(path, 'rb').read()
if len(data) != blocks * 4096:
    sys.exit('the file is %d bytes after the punch, %d before' % (len(data), blocks * 4096))
zero = bytes(4096)
kept = zeroed = 0
for k in range(blocks):
    got = data[k * 4096:(k + 1) * 4096]
    if k not in last:
        if got != zero:
            sys.exit('block %d, never written during the race, is not zeros after the punch' % k)
        continue
    seq, start = last[k]
    if got == (b'%08d' % seq) * 512:
        kept += 1
    elif got == zero:
        if start > t1:
            sys.exit('block %d: write #%d, made after the punch returned, is lost' % (k, seq))
        zeroed += 1
    else:
        sys.exit('block %d holds neither zeros nor its last write (#%d): %r...' % (k, seq, got[:16]))
print('%d writes, %d of them while the punch ran (%.0f ms); %d blocks kept their last write, %d punched after it'
      % (len(writes), overlapped, (t1 - t0) * 1000, kept, zeroed))
PY
}

for round in 1 2 3; do
  race "$round" || fail "round $round: the race did not run"
done
unmount_fs "$A"
unmount_fs "$B"
check_consistency || fail "inconsistent after the punches and writes"
mount_fs
for round in 1 2 3; do
  out=$(check "$round") || fail "round $round: $out"
  note "round $round: $out"
done
unmount_fs
check_consistency || fail "inconsistent at the end"
