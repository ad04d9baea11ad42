// See heap.hpp.
#include "util/heap.hpp"

#include <cstdlib>
#include <string_view>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace redisfs {

void keep_freed_memory(std::size_t trim_threshold) {
#if defined(__GLIBC__)
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr) {
    const std::string_view t(tunables);
    if (t.find("glibc.malloc.trim_threshold") != std::string_view::npos ||
        t.find("glibc.malloc.mmap_threshold") != std::string_view::npos) {
      return;
    }
  }
  // (Either call fixes both thresholds: glibc stops adapting the mmap one.)
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(k_mmap_threshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold));
#endif
}

}  // namespace redisfs
