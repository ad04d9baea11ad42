// Progress of a long operation (copy, dump, restore, fsck, delete) on
// stderr, silent when quiet:
//
//   * stderr a terminal: one line redrawn in place about five times a
//     second (done of total, percentage, rate, ETA). A process whose stdout
//     is a pipe while stderr is a terminal (`dump | restore` on one
//     terminal) does not draw: the next stage of the pipe may be drawing
//     on the same terminal, and one line cannot hold two. (summary_prefix()
//     lets a final summary line start on a clean line all the same.)
//   * stderr not a terminal (a log, a pipe): a plain line every 5 s, never
//     a carriage return; an operation shorter than that prints none.
//
// REDISFS_PROGRESS_SECONDS overrides both intervals (0: at every update).
// The ETA appears only once enough is done to estimate it (a tenth of the
// total, or 3 s of work), measured from the first unit done, not from the
// start (dump's frozen copy comes before its first record). A total may be
// an estimate ("of about N"): the percentage then stays below 100 until
// the end. The one-line summary at the end is the caller's.
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
  // `estimate`: the total is a guess (shown as "about"), never exceeded.
  void set_total(std::uint64_t total, bool estimate = false);
  void add(std::uint64_t n);
  // The work begins again from nothing (a walk a server restart cut
  // short): done goes back to 0, and the rate is measured anew.
  void restart();
  void finish();  // clears the line
  std::uint64_t done() const { return m_done; }
  double seconds() const;

  enum class Mode { Off, Line, Plain };
  // How a progress made now, not quiet, would show: Line, Plain, or Off
  // (stdout a pipe, stderr a terminal).
  static Mode mode_for_stderr();

 private:
  void draw(bool force);
  std::string text() const;

  std::string m_label;
  std::uint64_t m_total;
  bool m_estimate = false;
  std::string m_unit;
  Mode m_mode;
  std::chrono::milliseconds m_interval;
  std::uint64_t m_done = 0;
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_last_draw;
  std::chrono::steady_clock::time_point m_rate_start;  // when the first units were done
  std::uint64_t m_rate_base = 0;                       // how many then
  bool m_started = false;
  bool m_drawn = false;
};

// What a summary line on stderr starts with: "\r\x1b[K" when stderr is a
// terminal (another stage of a pipe may have left a progress line there),
// else "".
const char* summary_prefix();

}  // namespace redisfs
