// The daemon's log sinks (see log.hpp): stderr, a log file, syslog.
// libfuse's own messages are routed here too, so a daemonized mount
// reports them where it reports its own.
#include "log.hpp"

#include <fcntl.h>
#include <fuse_log.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "util/repeat_filter.hpp"
#include "util/text.hpp"

namespace redisfs {

static std::atomic<LogLevel> g_level{LogLevel::Info};
static std::atomic<bool> g_detached{false};
static std::atomic<int> g_file_fd{-1};
static std::string g_file_path;  // set once, before any thread
static std::mutex g_write_mutex;
static std::mutex g_repeat_mutex;
static RepeatFilter g_repeats(std::chrono::seconds(60));  // guarded by g_repeat_mutex

static int _syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::Error:
      return LOG_ERR;
    case LogLevel::Warning:
      return LOG_WARNING;
    case LogLevel::Info:
      return LOG_INFO;
    case LogLevel::Debug:
      return LOG_DEBUG;
  }
  return LOG_INFO;
}

static const char* _level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Error:
      return "error";
    case LogLevel::Warning:
      return "warning";
    case LogLevel::Info:
      return "info";
    case LogLevel::Debug:
      return "debug";
  }
  return "info";
}

// libfuse writes some messages in pieces ("unknown option(s): `", "-o ",
// ...): collect them per thread until a newline ends the line.
static void _fuse_log(enum fuse_log_level level, const char* fmt, va_list ap) {
  thread_local std::string pending;
  char text[1024];
  std::vsnprintf(text, sizeof text, fmt, ap);
  pending += text;
  if (pending.empty() || pending.back() != '\n') {
    return;
  }
  while (!pending.empty() && pending.back() == '\n') {
    pending.pop_back();
  }
  LogLevel ours = LogLevel::Debug;
  if (level <= FUSE_LOG_ERR) {
    ours = LogLevel::Error;
  } else if (level == FUSE_LOG_WARNING) {
    ours = LogLevel::Warning;
  } else if (level <= FUSE_LOG_INFO) {
    ours = LogLevel::Info;
  }
  log_line(ours, pending);
  pending.clear();
}

void log_init(LogLevel level) {
  g_level = level;
  fuse_set_log_func(_fuse_log);
}

Result<LogLevel> parse_log_level(std::string_view text) {
  for (LogLevel level : {LogLevel::Error, LogLevel::Warning, LogLevel::Info, LogLevel::Debug}) {
    if (text == _level_name(level)) {
      return level;
    }
  }
  return make_error(EINVAL, "--log-level: '" + std::string(text) + "' is not one of error, warning, info, debug");
}

Status log_open_file(const std::string& path) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) {
    abs = path;
  }
  int fd = ::open(abs.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    int err = errno;
    return make_error(err, "--log-file " + abs + ": " + errno_text(err));
  }
  g_file_path = abs;
  g_file_fd = fd;
  return {};
}

void log_detached() {
  if (g_file_fd < 0) {
    openlog("redisfs", LOG_PID, LOG_DAEMON);
  }
  g_detached = true;
}

std::string log_destination() { return g_file_fd >= 0 ? g_file_path : "syslog (ident redisfs)"; }

bool log_debug_enabled() { return g_level == LogLevel::Debug; }

// "2026-11-30T13:40:05.123Z redisfs[4242]: warning: TEXT\n", written with
// one write(2) on an O_APPEND descriptor, so lines of several mounts
// sharing a file never interleave.
static void _file_line(int fd, LogLevel level, std::string_view text) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char stamp[40];
  std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", now.tv_nsec / 1000000);
  std::string line = std::string(stamp) + " redisfs[" + std::to_string(getpid()) + "]: " + _level_name(level) + ": ";
  line.append(text);
  line += '\n';
  (void)!::write(fd, line.data(), line.size());
}

void log_line(LogLevel level, std::string_view text) {
  if (level > g_level) {
    return;
  }
  bool detached = g_detached;
  if (detached && g_file_fd < 0) {
    syslog(_syslog_priority(level), "%.*s", static_cast<int>(text.size()), text.data());
    return;
  }
  std::lock_guard<std::mutex> lock(g_write_mutex);
  if (int fd = g_file_fd; fd >= 0) {
    _file_line(fd, level, text);
  }
  if (detached) {
    return;
  }
  if (level == LogLevel::Error || level == LogLevel::Info) {
    std::fprintf(stderr, "redisfs: %.*s\n", static_cast<int>(text.size()), text.data());
  } else {
    std::fprintf(stderr, "redisfs: %s: %.*s\n", _level_name(level), static_cast<int>(text.size()), text.data());
  }
}

bool is_routine_error(int code) {
  switch (code) {
    case ENOENT:
    case EEXIST:
    case ENOTEMPTY:
    case ENOTDIR:
    case EISDIR:
    case EACCES:
    case EPERM:
    case EINVAL:
    case ENAMETOOLONG:
    case EROFS:
    case ENODATA:
    case ERANGE:
    case E2BIG:
    case EOPNOTSUPP:
    case EMLINK:
    case ELOOP:
    case EFBIG:
    case EXDEV:
    case ESTALE:  // another mount removed the file: a race of two hosts
      return true;
    default:
      return false;
  }
}

// One bounded line of `text`: control characters become '?', and at most
// `max` bytes are kept (a hand-edited key may hold a megabyte).
static std::string _one_line(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max) + 3);
  for (char ch : text.substr(0, max)) {
    out.push_back(static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f ? '?' : ch);
  }
  if (text.size() > max) {
    out += "...";
  }
  return out;
}

void log_op_error(std::string_view op, std::uint64_t ino, std::string_view name, const Error& error) {
  LogLevel level = is_routine_error(error.code) ? LogLevel::Debug : LogLevel::Warning;
  if (level > g_level) {
    return;
  }
  std::string line(op);
  line += " ino=" + std::to_string(ino);
  if (!name.empty()) {
    line += " name=\"";
    line += _one_line(name, 255);
    line += '"';
  }
  line += ": ";
  line += errno_text(error.code);
  if (!error.message.empty()) {
    line += " (" + _one_line(error.message, 400) + ")";
  }
  if (level == LogLevel::Warning) {
    // (a damaged inode read again and again: once a minute, counted)
    std::optional<std::string> shown;
    {
      std::lock_guard<std::mutex> lock(g_repeat_mutex);
      shown = g_repeats.pass(line, RepeatFilter::Clock::now());
    }
    if (!shown) {
      return;
    }
    line = std::move(*shown);
  }
  log_line(level, line);
}

void log_left_out(std::string_view op, std::uint64_t ino, const LeftOut& left_out, std::string_view what,
                  std::string_view repair) {
  if (left_out.count == 0) {
    return;
  }
  std::string others = left_out.count == 1 ? "" : ", with " + std::to_string(left_out.count - 1) + " other(s)";
  log_op_error(op, ino, left_out.name,
               make_error(EIO, "not a usable " + std::string(what) + " (" + left_out.why + "): left out" + others +
                                   "; fsck --repair " + std::string(repair)));
}

}  // namespace redisfs
