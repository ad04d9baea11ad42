#include "util/text.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>
#include <vector>

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

std::string counted(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string errno_text(int code) {
  const char* text = strerrordesc_np(code);
  if (text == nullptr) {
    return "errno " + std::to_string(code);
  }
  return text;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) {
    return false;
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::string lower_hex(std::span<const unsigned char> bytes) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(k_hex[b >> 4]);
    out.push_back(k_hex[b & 15]);
  }
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::vector<unsigned char> random(bytes);
  for (unsigned char& b : random) {
    b = static_cast<unsigned char>(rd() & 0xffu);
  }
  return lower_hex(random);
}

}  // namespace redisfs
