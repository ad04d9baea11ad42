// Logging for the mount daemon. Where a line goes:
//   - stderr while the daemon has its terminal (until it detaches; always
//     under -f);
//   - the --log-file FILE, when one is given, from start to end;
//   - syslog (ident "redisfs", facility daemon) once detached without a
//     --log-file (the terminal is gone by then).
// --log-level (error, warning, info, debug) drops the lines below it;
// the default is info, debug under -d.
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

#include "store/inode.hpp"
#include "util/result.hpp"

namespace redisfs {

enum class LogLevel { Error, Warning, Info, Debug };

// Before anything is logged: lines below `level` are dropped.
void log_init(LogLevel level);
// "error", "warning", "info" or "debug".
Result<LogLevel> parse_log_level(std::string_view text);
// Appends every later line to FILE too (created 0640 if absent). Call
// before detaching: the error, if any, is the user's to read.
Status log_open_file(const std::string& path);
// After fuse_daemonize(): stderr is gone; without a log file every later
// line goes to syslog.
void log_detached();
// Where the lines go once detached: "/var/log/redisfs.log" or
// "syslog (ident redisfs)".
std::string log_destination();
bool log_debug_enabled();

void log_line(LogLevel level, std::string_view text);
inline void log_error(std::string_view text) { log_line(LogLevel::Error, text); }
inline void log_warning(std::string_view text) { log_line(LogLevel::Warning, text); }
inline void log_info(std::string_view text) { log_line(LogLevel::Info, text); }
inline void log_debug(std::string_view text) { log_line(LogLevel::Debug, text); }

// True for the errors a filesystem returns as a normal answer (not EBUSY:
// the daemon answers it only for a change that waited out a freeze).
bool is_routine_error(int code);

// "unlink ino=1 name=\"x\": No space left on device (OOM command not
// allowed...)" at Warning, or at Debug for a routine error. A Warning
// line said again within a minute of its last showing is held back, and
// counted on its next showing (RepeatFilter).
void log_op_error(std::string_view op, std::uint64_t ino, std::string_view name, const Error& error);

// What a listing left out (LeftOut), if anything, as log_op_error says it:
// `what` names the kind ("file name"), `repair` what fsck --repair does.
void log_left_out(std::string_view op, std::uint64_t ino, const LeftOut& left_out, std::string_view what,
                  std::string_view repair);

}  // namespace redisfs
