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
// from the heap, and up to k_trim_threshold of free memory at the top of a
// heap stays for the next reply. What a peak left behind is still given
// back where it matters: the daemon trims its heap whole after a large
// listing and when the kernel forgets most of its inodes (fs/session.cpp,
// trim_heap). A GLIBC_TUNABLES that sets either threshold is the user's
// choice and is left as it is.
#pragma once

#include <cstddef>

namespace redisfs {

inline constexpr std::size_t k_mmap_threshold = 8u << 20;  // above the largest block a reply carries
inline constexpr std::size_t k_trim_threshold = 8u << 20;  // per heap (each thread's arena has one)

void keep_freed_memory();

}  // namespace redisfs
