// The test hooks of fault.hpp.
#include "util/fault.hpp"

#include <cstdlib>
#include <string>

namespace redisfs {

bool fault_injected(std::string_view point) {
  const char* f = std::getenv("REDISFS_FAULT");
  return f != nullptr && point == f;
}

void crash_if_injected(std::string_view point) {
  const char* f = std::getenv("REDISFS_FAULT");
  if (f != nullptr && std::string(point) + "-crash" == f) {
    std::_Exit(137);  // as SIGKILL would end it
  }
}

}  // namespace redisfs
