// Progress lines on stderr (progress.hpp). Writes go straight to fd 2 in
// one write() each, so a line is never interleaved with a half-flushed
// stdio buffer.
#include "util/progress.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace redisfs {

namespace {

std::string _amount(std::uint64_t n, const std::string& unit) {
  char buf[64];
  if (unit == "bytes") {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1024.0 * 1024.0));
  } else {
    std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(n), unit.c_str());
  }
  return buf;
}

std::string _duration(double s) {
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

void _write_stderr(const std::string& s) {
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

std::chrono::milliseconds _interval(Progress::Mode mode) {
  if (const char* env = std::getenv("REDISFS_PROGRESS_SECONDS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    double s = std::strtod(env, &end);
    if (end != env && *end == '\0' && s >= 0 && s <= 86400) {
      return std::chrono::milliseconds(static_cast<long long>(s * 1000));
    }
  }
  return mode == Progress::Mode::Line ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
}

}  // namespace

Progress::Mode Progress::mode_for_stderr() {
  if (::isatty(STDERR_FILENO) != 1) {
    return Mode::Plain;
  }
  struct stat out {};
  if (::fstat(STDOUT_FILENO, &out) == 0 && S_ISFIFO(out.st_mode)) {
    return Mode::Off;  // feeding a pipe whose next stage may draw on this terminal
  }
  return Mode::Line;
}

const char* summary_prefix() { return ::isatty(STDERR_FILENO) == 1 ? "\r\x1b[K" : ""; }

Progress::Progress(std::string label, std::uint64_t total, std::string unit, bool quiet)
    : m_label(std::move(label)),
      m_total(total),
      m_unit(std::move(unit)),
      m_mode(quiet ? Mode::Off : mode_for_stderr()),
      m_interval(_interval(m_mode)),
      m_start(std::chrono::steady_clock::now()),
      m_last_draw(m_start),
      m_rate_start(m_start) {}

Progress::~Progress() { finish(); }

void Progress::set_total(std::uint64_t total, bool estimate) {
  m_total = total;
  m_estimate = estimate;
  draw(false);
}

void Progress::add(std::uint64_t n) {
  m_done += n;
  if (!m_started && m_done > 0) {
    // The rate is measured from here: what came before (a frozen copy,
    // connecting) says nothing of how fast the units go.
    m_started = true;
    m_rate_start = std::chrono::steady_clock::now();
    m_rate_base = m_done;
  }
  draw(false);
}

void Progress::restart() {
  m_done = 0;
  m_started = false;
  m_rate_base = 0;
  draw(false);
}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
}

std::string Progress::text() const {
  std::uint64_t total = m_total;
  if (total > 0 && m_estimate) {
    total = std::max(total, m_done + 1);  // a guess is never reached before the end
  }
  // "12 of 40 keys (30%)", "1.5 MiB of 4.0 MiB (37%)", or "12 keys".
  std::string line = m_label + ": ";
  if (total > 0 && m_unit != "bytes") {
    line += std::to_string(m_done);
  } else {
    line += _amount(m_done, m_unit);
  }
  if (total > 0) {
    char pct[32];
    double ratio = std::min(1.0, static_cast<double>(m_done) / static_cast<double>(total));
    std::snprintf(pct, sizeof pct, " (%.0f%%)", m_estimate ? std::min(99.0, 100.0 * ratio) : 100.0 * ratio);
    line += std::string(" of ") + (m_estimate ? "about " : "") + _amount(total, m_unit) + pct;
  }
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m_rate_start).count();
  if (m_started && secs > 0) {
    double rate = static_cast<double>(m_done - m_rate_base) / secs;
    line += ", " + _amount(static_cast<std::uint64_t>(rate), m_unit) + "/s";
    // An ETA once enough is done to estimate it: a tenth of the work, or
    // three seconds of it.
    bool enough = m_done * 10 >= total || secs >= 3;
    if (total > m_done && rate > 0 && enough) {
      line += ", ETA " + _duration(static_cast<double>(total - m_done) / rate);
    }
  }
  return line;
}

void Progress::draw(bool force) {
  if (m_mode == Mode::Off) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (!force && now - m_last_draw < m_interval) {
    return;
  }
  m_last_draw = now;
  if (m_mode == Mode::Line) {
    _write_stderr("\r" + text() + "\x1b[K");
    m_drawn = true;
  } else {
    _write_stderr(text() + "\n");
  }
}

void Progress::finish() {
  if (m_drawn) {
    _write_stderr("\r\x1b[K");
    m_drawn = false;
  }
}

}  // namespace redisfs
