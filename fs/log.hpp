// Logging for the mount daemon: stderr while in the foreground, syslog once
// daemonized (the terminal is gone by then).
//
// A failed operation is logged with its context: the op, the inode, the
// name when there is one, the errno text and the Store's message. Failures
// that mean the server is in trouble (EIO, ENOSPC and the like) are
// warnings; the answers a filesystem gives every day (ENOENT, EEXIST,
// ENOTEMPTY, EACCES, ...) only show up with -d.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "result.hpp"

namespace redisfs {

enum class LogLevel { Error, Warning, Info, Debug };

// Before anything is logged: `debug` shows Debug lines.
void log_init(bool debug);
// After fuse_daemonize(): every later line goes to syslog (ident "redisfs").
void log_to_syslog();
bool log_debug_enabled();

void log_line(LogLevel level, std::string_view text);
inline void log_error(std::string_view text) { log_line(LogLevel::Error, text); }
inline void log_warning(std::string_view text) { log_line(LogLevel::Warning, text); }
inline void log_info(std::string_view text) { log_line(LogLevel::Info, text); }
inline void log_debug(std::string_view text) { log_line(LogLevel::Debug, text); }

// "No such file or directory" (thread-safe, unlike strerror).
std::string errno_text(int code);

// True for the errors a filesystem returns as a normal answer.
bool is_routine_error(int code);

// "unlink ino=1 name=\"x\": No space left on device (OOM command not
// allowed...)" at Warning, or at Debug for a routine error.
void log_op_error(std::string_view op, std::uint64_t ino, std::string_view name, const Error& error);

}  // namespace redisfs
