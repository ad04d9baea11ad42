// UTF-8 sequences (RFC 3629, table 3-7 of Unicode): the one statement of
// which bytes may follow which, for every reader of UTF-8 here (the dump
// writer's is_valid_utf8, base64.hpp; the JSON reader; fsck's output).
#pragma once

#include <cstddef>
#include <string_view>

namespace redisfs {

// What a byte starts: `length` 2 to 4 for the lead byte of a multi-byte
// sequence (0 for anything else: ASCII, a continuation byte, or a byte
// that is never valid), and the range its second byte must lie in, which
// rules out overlong forms, surrogates and code points past U+10FFFF. Every
// later byte lies in [0x80, 0xbf].
struct Utf8Lead {
  std::size_t length = 0;
  unsigned char second_lo = 0x80;
  unsigned char second_hi = 0xbf;
};

constexpr Utf8Lead utf8_lead(unsigned char c) {
  if (c >= 0xc2 && c <= 0xdf) {
    return {2, 0x80, 0xbf};
  }
  if (c >= 0xe0 && c <= 0xef) {
    return {3, static_cast<unsigned char>(c == 0xe0 ? 0xa0 : 0x80),
            static_cast<unsigned char>(c == 0xed ? 0x9f : 0xbf)};
  }
  if (c >= 0xf0 && c <= 0xf4) {
    return {4, static_cast<unsigned char>(c == 0xf0 ? 0x90 : 0x80),
            static_cast<unsigned char>(c == 0xf4 ? 0x8f : 0xbf)};
  }
  return {};
}

// The length of the valid multi-byte sequence at s[i] (2 to 4), or 0: not
// a lead byte, a wrong byte after it, or cut short by the end of `s`.
constexpr std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const Utf8Lead lead = utf8_lead(static_cast<unsigned char>(s[i]));
  if (lead.length == 0 || i + lead.length > s.size()) {
    return 0;
  }
  const auto second = static_cast<unsigned char>(s[i + 1]);
  if (second < lead.second_lo || second > lead.second_hi) {
    return 0;
  }
  for (std::size_t k = 2; k < lead.length; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xbf) {
      return 0;
    }
  }
  return lead.length;
}

}  // namespace redisfs
