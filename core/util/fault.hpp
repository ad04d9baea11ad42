// Test hooks: REDISFS_FAULT names one point where a step fails, stalls or
// crashes, so the tests can do to a step what a healthy server never does
// (tests/*/snap_*.sh name the points they use).
#pragma once

#include <string_view>

namespace redisfs {

// True when REDISFS_FAULT names `point`.
bool fault_injected(std::string_view point);
// Ends the process as SIGKILL would when REDISFS_FAULT is "<point>-crash".
void crash_if_injected(std::string_view point);

}  // namespace redisfs
