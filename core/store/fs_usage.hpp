// What `df` shows for one filesystem (statfs): its own usage, and room
// that is really there on a server other tenants may share.
//
//   used = the filesystem's file data: the superblock's `bytes` counter
//          (the bytes its blocks hold; Redis's per-key overhead and the
//          metadata hashes are not counted);
//   free = what the server can still hold: limit - used_memory (0 when
//          the server is over it), where limit is `maxmemory`, or, when
//          maxmemory is 0 (no limit), the server machine's memory
//          (INFO memory total_system_memory); when neither is known, as
//          much again as the server uses;
//   size = used + free, so it is never more than the limit (used is part
//          of used_memory), and df's "Used" is this filesystem's data, not
//          the server's whole memory.
#pragma once

#include <cstdint>

namespace redisfs {

struct FsUsage {
  std::uint64_t size = 0;
  std::uint64_t used = 0;
  std::uint64_t free = 0;
};

// `fs_bytes` is the superblock's bytes counter; the rest are INFO memory's
// fields (0 when absent).
FsUsage fs_usage(std::uint64_t fs_bytes, std::uint64_t used_memory, std::uint64_t maxmemory,
                 std::uint64_t total_system_memory);

}  // namespace redisfs
