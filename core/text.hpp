// Text for messages: whatever came from a server or a dump (keys, names,
// field values) is shown bounded and on one line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace redisfs {

inline constexpr std::size_t k_shown_max = 120;

// At most `max` bytes of `s`, then "..." if it was longer; bytes outside
// printable ASCII as \xNN, '\' and `quote` (if any) escaped with '\'.
std::string shown(std::string_view s, std::size_t max = k_shown_max, char quote = '\'');
// shown(s) between single quotes: 'SKX:INODE:5'.
std::string quoted(std::string_view s, std::size_t max = k_shown_max);

}  // namespace redisfs
