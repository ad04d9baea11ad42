// RemovedNames: see removed_names.hpp for what an entry promises and when
// it goes.
#include "store/removed_names.hpp"

#include <algorithm>

#include "util/older_half.hpp"

namespace redisfs {

RemovedNames::RemovedNames(double ttl_seconds, std::size_t max)
    : m_ttl(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(ttl_seconds, 0.0)))),
      m_max(std::max<std::size_t>(max, 1)) {}

std::string RemovedNames::key(Ino dir, std::string_view name) {
  std::string k = std::to_string(dir);
  k += '/';
  k += name;
  return k;
}

void RemovedNames::removed(Ino dir, std::string_view name, Clock::time_point sent) {
  if (!enabled()) {
    return;
  }
  std::string k = key(dir, name);
  std::lock_guard lock(m_mutex);
  if (m_names.size() >= m_max && !m_names.contains(k)) {
    std::erase_if(m_names, [&](const auto& kv) { return sent - kv.second >= m_ttl; });
    if (m_names.size() >= m_max) {
      // the older half goes (a writeback mount's hour-long ttl: its newest
      // names, sqlite's journal, stay)
      drop_older_half(
          m_names, [](Clock::time_point at) { return at; }, [](Clock::time_point) { return true; },
          [](Clock::time_point) {});
    }
  }
  m_names[std::move(k)] = sent;
}

void RemovedNames::forget(Ino dir, std::string_view name) {
  if (!enabled()) {
    return;
  }
  std::string k = key(dir, name);
  std::lock_guard lock(m_mutex);
  m_names.erase(k);
}

std::optional<double> RemovedNames::absent(Ino dir, std::string_view name, Clock::time_point now) {
  if (!enabled()) {
    return std::nullopt;
  }
  std::string k = key(dir, name);
  std::lock_guard lock(m_mutex);
  auto it = m_names.find(k);
  if (it == m_names.end()) {
    return std::nullopt;
  }
  if (now - it->second >= m_ttl) {
    m_names.erase(it);
    return std::nullopt;
  }
  return std::chrono::duration<double>(now - it->second).count();
}

std::size_t RemovedNames::size() {
  std::lock_guard lock(m_mutex);
  return m_names.size();
}

}  // namespace redisfs
