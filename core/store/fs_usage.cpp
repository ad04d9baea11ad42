// df's numbers (see fs_usage.hpp).
#include "store/fs_usage.hpp"

#include <algorithm>

namespace redisfs {

FsUsage fs_usage(std::uint64_t fs_bytes, std::uint64_t used_memory, std::uint64_t maxmemory,
                 std::uint64_t total_system_memory) {
  std::uint64_t limit = maxmemory != 0 ? maxmemory : total_system_memory;
  if (limit == 0) {
    limit = std::max<std::uint64_t>(used_memory, 1) * 2;
  }
  FsUsage u;
  u.used = fs_bytes;
  u.free = limit > used_memory ? limit - used_memory : 0;
  u.size = u.used + u.free;
  return u;
}

}  // namespace redisfs
