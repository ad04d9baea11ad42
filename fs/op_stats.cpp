// OpStats: see op_stats.hpp.
#include "op_stats.hpp"

#include <cstdio>

#include "redis/redis.hpp"

namespace redisfs {

static constexpr std::array<const char*, static_cast<std::size_t>(OpId::Count)> k_names = {
#define REDISFS_OP_NAME(name, Id, Guard, Route) #name,
    REDISFS_FUSE_OPS(REDISFS_OP_NAME)
#undef REDISFS_OP_NAME
};

OpStats& op_stats() {
  static OpStats stats;
  return stats;
}

void OpStats::record(OpId op, std::chrono::steady_clock::duration spent, std::uint64_t round_trips) {
  Counter& c = m_ops[static_cast<std::size_t>(op)];
  const auto ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count());
  c.count.fetch_add(1, std::memory_order_relaxed);
  c.total_ns.fetch_add(ns, std::memory_order_relaxed);
  c.round_trips.fetch_add(round_trips, std::memory_order_relaxed);
  std::uint64_t max = c.max_ns.load(std::memory_order_relaxed);
  while (ns > max && !c.max_ns.compare_exchange_weak(max, ns, std::memory_order_relaxed)) {
  }
}

std::vector<std::string> OpStats::report(std::chrono::steady_clock::time_point since) const {
  using namespace std::chrono;
  const double up = duration<double>(steady_clock::now() - since).count();
  std::uint64_t requests = 0;
  for (const Counter& c : m_ops) {
    requests += c.count.load(std::memory_order_relaxed);
  }
  const RedisCounters redis = redis_counters();
  std::vector<std::string> lines;
  char buf[160];
  std::snprintf(buf, sizeof buf, "stats: %llu requests in %.0f s; redis: %llu round trips, %llu replies",
                static_cast<unsigned long long>(requests), up, static_cast<unsigned long long>(redis.round_trips),
                static_cast<unsigned long long>(redis.replies));
  lines.emplace_back(buf);
  for (std::size_t i = 0; i < m_ops.size(); ++i) {
    const std::uint64_t n = m_ops[i].count.load(std::memory_order_relaxed);
    if (n == 0) {
      continue;
    }
    const double mean_us = static_cast<double>(m_ops[i].total_ns.load(std::memory_order_relaxed)) / 1e3 /
                           static_cast<double>(n);
    const double max_us = static_cast<double>(m_ops[i].max_ns.load(std::memory_order_relaxed)) / 1e3;
    const double trips =
        static_cast<double>(m_ops[i].round_trips.load(std::memory_order_relaxed)) / static_cast<double>(n);
    std::snprintf(buf, sizeof buf, "stats: %-15s %9llu requests, mean %9.1f us, max %11.1f us, %.3f round trips",
                  k_names[i], static_cast<unsigned long long>(n), mean_us, max_us, trips);
    lines.emplace_back(buf);
  }
  return lines;
}

}  // namespace redisfs
