#include "util/repeat_filter.hpp"

#include <iterator>

namespace redisfs {

std::optional<std::string> RepeatFilter::pass(std::string_view line, Clock::time_point now) {
  std::string key(line);
  auto it = m_seen.find(key);
  if (it != m_seen.end()) {
    Seen& seen = it->second;
    if (now - seen.shown < m_window) {
      ++seen.held;
      return std::nullopt;
    }
    std::string text = std::move(key);
    if (seen.held > 0) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - seen.shown).count();
      text += " (said " + std::to_string(seen.held) + (seen.held == 1 ? " more time" : " more times") + " in the " +
              std::to_string(secs) + " s before, not logged)";
    }
    seen = Seen{now, 0};
    return text;
  }
  if (m_seen.size() >= m_capacity) {
    _forget_old(now);
  }
  if (m_seen.size() < m_capacity) {
    m_seen.emplace(key, Seen{now, 0});
  }
  return key;
}

void RepeatFilter::_forget_old(Clock::time_point now) {
  for (auto it = m_seen.begin(); it != m_seen.end();) {
    it = now - it->second.shown >= m_window ? m_seen.erase(it) : std::next(it);
  }
}

}  // namespace redisfs
