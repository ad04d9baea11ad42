// OpStats: what a mount has been asked, and how long the answers took.
//
// Every FUSE request is counted per kind, with the time the daemon spent
// in its handler (mean and max) and the Redis round trips the handler's
// thread made (what a request of that kind costs; work done later by
// another thread, such as a queued release, is not in it), next to the
// round trips and replies of the whole process. `kill -USR1 <daemon pid>` logs the table (to syslog
// for a daemonized mount, to stderr with -f), and a -d mount logs it at
// unmount: the first thing to look at when a production mount is slow
// (which requests, how many, how many round trips each).
//
// The cost is two clock reads and four relaxed atomic updates per request.
// make_ops() installs the counting through Timed<>, one wrapper per op.
#pragma once

#include <fuse_lowlevel.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "op_list.hpp"
#include "redis/trip_count.hpp"

namespace redisfs {

// One per request of op_list.hpp, in its order.
enum class OpId {
#define REDISFS_OP_ID(name, Id, Guard, Route) Id,
  REDISFS_FUSE_OPS(REDISFS_OP_ID)
#undef REDISFS_OP_ID
  Count,
};

class OpStats {
 public:
  void record(OpId op, std::chrono::steady_clock::duration spent, std::uint64_t round_trips);
  // One line per kind of request seen, then one for Redis; `since` is when
  // the mount began.
  std::vector<std::string> report(std::chrono::steady_clock::time_point since) const;

 private:
  struct Counter {
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> total_ns{0};
    std::atomic<std::uint64_t> max_ns{0};
    std::atomic<std::uint64_t> round_trips{0};
  };
  std::array<Counter, static_cast<std::size_t>(OpId::Count)> m_ops;
};

OpStats& op_stats();

// Timed<Id, fn>::call has fn's signature: it runs fn and counts it as Id.
template <OpId Id, auto Fn>
struct Timed;

template <OpId Id, class... Args, void (*Fn)(Args...)>
struct Timed<Id, Fn> {
  static void call(Args... args) {
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t trips = redis_thread_round_trips();
    Fn(args...);
    op_stats().record(Id, std::chrono::steady_clock::now() - start, redis_thread_round_trips() - trips);
  }
};

}  // namespace redisfs
