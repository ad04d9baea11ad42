// A progress line on stderr, redrawn in place ("\r...\x1b[K") at most five
// times a second, only when stderr is a terminal and not quiet: a pipe or a
// log file never sees it. Writes go straight to fd 2 in one write() each, so
// the line is never interleaved with a half-flushed stdio buffer.
#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace redisfs {

static std::string _amount(std::uint64_t n, const std::string& unit) {
  char buf[64];
  if (unit == "bytes") {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1024.0 * 1024.0));
  } else {
    std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(n), unit.c_str());
  }
  return buf;
}

static std::string _duration(double s) {
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ds", static_cast<int>(s));
  }
  return buf;
}

static void _write_stderr(const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) {
      return;  // a progress line is not worth an error
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

Progress::Progress(std::string label, std::uint64_t total, std::string unit, bool quiet)
    : m_label(std::move(label)),
      m_total(total),
      m_unit(std::move(unit)),
      m_enabled(!quiet && ::isatty(STDERR_FILENO) == 1),
      m_start(std::chrono::steady_clock::now()),
      m_last_draw(m_start) {}

Progress::~Progress() { finish(); }

void Progress::set_total(std::uint64_t total) {
  m_total = total;
  draw(false);
}

void Progress::add(std::uint64_t n) {
  m_done += n;
  draw(false);
}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
}

void Progress::draw(bool force) {
  if (!m_enabled) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (!force && now - m_last_draw < std::chrono::milliseconds(200)) {
    return;
  }
  m_last_draw = now;
  double secs = seconds();
  double rate = secs > 0 ? static_cast<double>(m_done) / secs : 0;
  std::string line = "\r" + m_label + ": " + _amount(m_done, m_unit);
  if (m_total > 0) {
    char pct[32];
    std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * static_cast<double>(m_done) / static_cast<double>(m_total));
    line += " of " + _amount(m_total, m_unit) + pct;
  }
  line += ", " + _amount(static_cast<std::uint64_t>(rate), m_unit) + "/s";
  if (m_total > m_done && rate > 0) {
    line += ", ETA " + _duration(static_cast<double>(m_total - m_done) / rate);
  }
  line += "\x1b[K";
  _write_stderr(line);
  m_drawn = true;
}

void Progress::finish() {
  if (m_drawn) {
    _write_stderr("\r\x1b[K");
    m_drawn = false;
  }
}

}  // namespace redisfs
