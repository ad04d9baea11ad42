#!/usr/bin/env bash
# read_faults: reading a large file costs the daemon no page fault per
# page read. Each reply's blocks are copied into memory allocated for
# that reply and freed soon after; glibc's defaults gave that memory back
# to the kernel at once, so every read faulted it in anew (5,000-8,600
# faults for 64 MiB; about 10 us each on a virtual machine, most of a
# cat's time). The daemon keeps freed memory for the next reply
# (core/util/heap.hpp): once its heaps have grown to what a read needs,
# reading the file again faults almost nothing in. Counted by the kernel
# (/proc/PID/stat, minflt), never timed.
. "$(dirname "$0")/lib.sh"

if ldd "$REDISFS_BIN" 2>/dev/null | grep -Eq 'libasan|libtsan'; then
  note "skipped: a sanitizer's allocator is not glibc's"
  exit 0
fi
minflt() { awk '{print $10}' "/proc/$1/stat"; }

head -c $((64 << 20)) /dev/urandom >"$T/src"
mount_fs
pid=${MOUNT_PIDS[$MNT]}
# written through this very daemon: what its writes left in its heap is
# what its reads then find (a fresh daemon's heap hid the faults)
dd if="$T/src" of="$MNT/big" bs=1M conv=fsync status=none
uncache() { dd if="$MNT/big" iflag=nocache count=0 status=none; }  # the file's pages leave the kernel's cache
# the first reads: the threads' heaps grow to what a read needs, once
# (measured: some 200 faults, then some 850, then 0 or 1 a read; more
# reads when the reads land on threads whose heaps did not grow yet).
# Two at least, up to five, until one costs a quarter of the bound: with
# glibc's defaults (GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072:
# glibc.malloc.mmap_threshold=131072) every read after the first faults
# some 13,900 times, so the measured read below still fails.
for ((reads = 1; reads <= 5; reads++)); do
  uncache
  before=$(minflt "$pid")
  dd if="$MNT/big" bs=1M status=none | cmp - "$T/src" || fail "the file reads back wrong"
  ((reads >= 2 && $(minflt "$pid") - before < 256)) && break
done
note "warmed with $((reads > 5 ? 5 : reads)) reads"
uncache
before=$(minflt "$pid")
dd if="$MNT/big" bs=1M status=none | cmp - "$T/src" || fail "the file reads back wrong the second time"
faults=$(($(minflt "$pid") - before))
note "reading 64 MiB (16,384 pages) again: $faults page faults in the daemon"
((faults < 1024)) || fail "reading 64 MiB again cost the daemon $faults page faults: freed memory went back to the kernel"
unmount_fs
note ok
