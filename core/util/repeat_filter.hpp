// Holds back a log line said again soon after: a damaged inode that a
// monitor reads every second would otherwise log a line a second until
// it is repaired. A line is shown, then held back while it comes again
// within `window` of that showing; the first time it comes after the
// window it is shown again, saying how many were held back. Only the same
// text is held back: another inode, name or cause is another line.
//
// Keeps at most `capacity` lines; when full, lines shown more than a
// window ago are forgotten first, and a line that still finds no room is
// shown (never held back unseen). Not thread-safe: the caller locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace redisfs {

class RepeatFilter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RepeatFilter(Clock::duration window, std::size_t capacity = 512) : m_window(window), m_capacity(capacity) {}

  // The text to write for `line` said at `now`, or nullopt to hold it back.
  std::optional<std::string> pass(std::string_view line, Clock::time_point now);

 private:
  struct Seen {
    Clock::time_point shown;
    std::uint64_t held = 0;
  };
  void _forget_old(Clock::time_point now);

  Clock::duration m_window;
  std::size_t m_capacity;
  std::unordered_map<std::string, Seen> m_seen;
};

}  // namespace redisfs
