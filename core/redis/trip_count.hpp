// The Redis round trips the calling thread has made (a command, or a
// pipeline up to its first reply), counted by Connection: the daemon's op
// statistics (fs/op_stats.hpp) take the difference over one request to
// tell what each kind of request costs. redis_counters() (redis.hpp) has
// the totals of the process.
#pragma once

#include <cstdint>

namespace redisfs {

std::uint64_t redis_thread_round_trips();

}  // namespace redisfs
