// Progress of a long operation (copy, dump, restore, fsck, delete) on
// stderr: redrawn in place about five times a second when stderr is a
// terminal (done/total, rate, ETA), silent otherwise or when quiet. The
// one-line summary at the end is the caller's.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace redisfs {

class Progress {
 public:
  // total 0 = unknown; unit is e.g. "keys" or "bytes" (bytes print as MiB).
  Progress(std::string label, std::uint64_t total, std::string unit, bool quiet);
  ~Progress();
  void set_total(std::uint64_t total);
  void add(std::uint64_t n);
  void finish();  // clears the line
  std::uint64_t done() const { return m_done; }
  double seconds() const;

 private:
  void draw(bool force);

  std::string m_label;
  std::uint64_t m_total;
  std::string m_unit;
  bool m_enabled;
  std::uint64_t m_done = 0;
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_last_draw;
  bool m_drawn = false;
};

}  // namespace redisfs
