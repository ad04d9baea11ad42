#include "text.hpp"

#include <algorithm>

namespace redisfs {

std::string shown(std::string_view s, std::size_t max, char quote) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = std::min(s.size(), max);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\' || (quote != 0 && c == static_cast<unsigned char>(quote))) {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out.append("\\x");
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 15]);
    }
  }
  if (s.size() > max) {
    out.append("...");
  }
  return out;
}

std::string quoted(std::string_view s, std::size_t max) { return "'" + shown(s, max, '\'') + "'"; }

}  // namespace redisfs
