// How the heap holds on to freed memory (glibc's malloc).
//
// By default glibc gives the free top of a heap back to the kernel once it
// passes 128 KiB (M_TRIM_THRESHOLD), and serves an allocation of 128 KiB
// or more with an mmap of its own, unmapped when freed (the threshold then
// adapts, up to the largest such block freed so far). The data blocks a
// read brings back (64 KiB by default, up to 4 MiB: superblock.hpp) are
// copied into memory allocated for each reply and freed soon after, so
// every read lands in memory the kernel must fault in again, a page at a
// time. Where a page fault is dear (a virtual machine: about 10 us a 4 KiB
// page on bench/RESULTS.md's), that was most of a cat's time: 33,000 page
// faults reading 256 MiB, about 0.3 s of its 0.5 s (0.18 s without them).
//
// keep_freed_memory() keeps it: allocations below k_mmap_threshold come
// from the heap, and up to `trim_threshold` of free memory at the top of a
// heap stays for the next use. The daemon keeps k_daemon_heap_keep a heap
// (a FUSE read's replies, 1 MiB at most, per thread); what a peak left
// behind is still given back where it matters: it trims its heap whole
// after a large listing and when the kernel forgets most of its inodes
// (fs/session.cpp, trim_heap). The toolkit keeps k_tool_heap_keep: a
// restore's pipeline holds up to 8 MB of writes (staging_writes.cpp),
// and with glibc's defaults it faulted in 13,200 pages restoring 64 MiB,
// 4,000 with this. A GLIBC_TUNABLES that sets either threshold is the
// user's choice and is left as it is.
#pragma once

#include <cstddef>

namespace redisfs {

inline constexpr std::size_t k_mmap_threshold = 8u << 20;    // above the largest block a reply carries
inline constexpr std::size_t k_daemon_heap_keep = 8u << 20;  // per heap (each thread's arena has one)
inline constexpr std::size_t k_tool_heap_keep = 16u << 20;

void keep_freed_memory(std::size_t trim_threshold);

}  // namespace redisfs
