// Small text helpers shared by core/, fs/ and tools/: text for messages
// (whatever came from a server or a dump, keys, names, field values, is
// shown bounded and on one line), errno text, decimal numbers, hex (of
// bytes, of random ones), elapsed seconds.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace redisfs {

inline constexpr std::size_t k_shown_max = 120;

// At most `max` bytes of `s`, then "..." if it was longer; bytes outside
// printable ASCII as \xNN, '\' and `quote` (if any) escaped with '\'.
std::string shown(std::string_view s, std::size_t max = k_shown_max, char quote = '\'');
// shown(s) between single quotes: 'SKX:INODE:5'.
std::string quoted(std::string_view s, std::size_t max = k_shown_max);

// "No such file or directory" (thread-safe, unlike strerror); "errno N"
// for a code without a description.
std::string errno_text(int code);

// `s` whole as a decimal number (digits only, no sign or space, leading
// zeros allowed, at most 2^64-1); false, `out` unspecified, otherwise.
bool parse_u64(std::string_view s, std::uint64_t& out);

// Lowercase hex of `bytes` (a digest: "9f86d0...").
std::string lower_hex(std::span<const unsigned char> bytes);

// Lowercase hex of `bytes` random bytes.
std::string random_hex(std::size_t bytes);

// "1 inode", "2 inodes": a count and the word for it.
std::string counted(std::uint64_t n, std::string_view one, std::string_view many);

// Seconds from `start` to now (a summary line's "in 1.2 s").
double seconds_since(std::chrono::steady_clock::time_point start);

// Adds `more` (if any) to a tool's one-line warning, after a "; ".
inline void add_warning(std::string& warning, std::string_view more) {
  if (!more.empty()) {
    warning += (warning.empty() ? "" : "; ") + std::string(more);
  }
}

}  // namespace redisfs
