// Base64 codec and UTF-8 validator; see base64.hpp for the rules enforced.
#include "util/base64.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "util/utf8.hpp"

namespace redisfs {

static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static constexpr uint8_t k_invalid = 0x80;

static constexpr std::array<uint8_t, 256> _make_decode_table() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) {
    v = k_invalid;
  }
  for (uint8_t i = 0; i < 64; ++i) {
    table[static_cast<unsigned char>(k_alphabet[i])] = i;
  }
  return table;
}

static constexpr std::array<uint8_t, 256> k_decode = _make_decode_table();

// Two output characters for each 12-bit value: half the lookups and
// stores of one character per 6 bits.
static constexpr std::array<std::array<char, 2>, 4096> _make_pair_table() {
  std::array<std::array<char, 2>, 4096> table{};
  for (size_t v = 0; v < 4096; ++v) {
    table[v] = {k_alphabet[v >> 6], k_alphabet[v & 63]};
  }
  return table;
}

static constexpr std::array<std::array<char, 2>, 4096> k_pairs = _make_pair_table();

void base64_encode_append(std::string& out, std::string_view data) {
  const size_t n = data.size();
  const size_t old = out.size();
  out.resize(old + 4 * ((n + 2) / 3));
  char* o = out.data() + old;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t i = 0;
  for (; i + 3 <= n; i += 3, o += 4) {
    const uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | uint32_t(p[i + 2]);
    std::memcpy(o, k_pairs[v >> 12].data(), 2);
    std::memcpy(o + 2, k_pairs[v & 4095].data(), 2);
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t(p[i]) << 16;
    o[0] = k_alphabet[v >> 18];
    o[1] = k_alphabet[(v >> 12) & 63];
    o[2] = '=';
    o[3] = '=';
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    o[0] = k_alphabet[v >> 18];
    o[1] = k_alphabet[(v >> 12) & 63];
    o[2] = k_alphabet[(v >> 6) & 63];
    o[3] = '=';
  }
}

std::string base64_encode(std::string_view data) {
  std::string out;
  base64_encode_append(out, data);
  return out;
}

static Error _bad_char(std::string_view text, size_t offset) {
  const auto c = static_cast<unsigned char>(text[offset]);
  std::string shown;
  if (c >= 0x21 && c < 0x7f) {
    shown = std::string("'") + static_cast<char>(c) + "'";
  } else {
    static constexpr char k_hex[] = "0123456789abcdef";
    shown = std::string("byte 0x") + k_hex[c >> 4] + k_hex[c & 15];
  }
  return make_error(EINVAL, "invalid base64: unexpected " + shown + " at offset " + std::to_string(offset));
}

static Error _first_bad_char(std::string_view text, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (k_decode[static_cast<unsigned char>(text[i])] & k_invalid) {
      return _bad_char(text, i);
    }
  }
  return make_error(EINVAL, "invalid base64");
}

Result<std::string> base64_decode(std::string_view text) {
  const size_t n = text.size();
  if (n % 4 != 0) {
    return make_error(EINVAL, "invalid base64: length " + std::to_string(n) + " is not a multiple of 4");
  }
  std::string out;
  if (n == 0) {
    return out;
  }
  size_t pad = 0;
  if (text[n - 1] == '=') {
    pad = text[n - 2] == '=' ? 2 : 1;
  }
  out.resize(n / 4 * 3 - pad);
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  const size_t full = n / 4 - (pad > 0 ? 1 : 0);
  for (size_t g = 0; g < full; ++g, p += 4, o += 3) {
    const uint8_t a = k_decode[p[0]], b = k_decode[p[1]], c = k_decode[p[2]], d = k_decode[p[3]];
    if ((a | b | c | d) & k_invalid) {
      return _first_bad_char(text, g * 4, g * 4 + 4);
    }
    const uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    o[0] = static_cast<unsigned char>(v >> 16);
    o[1] = static_cast<unsigned char>(v >> 8);
    o[2] = static_cast<unsigned char>(v);
  }
  if (pad > 0) {
    const size_t at = n - 4;
    const size_t data_chars = 4 - pad;
    uint8_t vals[3] = {};
    for (size_t i = 0; i < data_chars; ++i) {
      vals[i] = k_decode[p[i]];
      if (vals[i] & k_invalid) {
        return _bad_char(text, at + i);
      }
    }
    const uint32_t v = (uint32_t(vals[0]) << 18) | (uint32_t(vals[1]) << 12) | (uint32_t(vals[2]) << 6);
    const bool canonical = pad == 2 ? (vals[1] & 0x0f) == 0 : (vals[2] & 0x03) == 0;
    if (!canonical) {
      return make_error(EINVAL, "invalid base64: non-zero bits before the padding at offset " +
                                    std::to_string(at + data_chars - 1) + " (not the canonical encoding)");
    }
    o[0] = static_cast<unsigned char>(v >> 16);
    if (pad == 1) {
      o[1] = static_cast<unsigned char>(v >> 8);
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view data) {
  const auto* begin = reinterpret_cast<const unsigned char*>(data.data());
  const auto* p = begin;
  const auto* end = p + data.size();
  while (p < end) {
    while (end - p >= 16) {
      uint64_t a = 0, b = 0;
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + 8, 8);
      if ((a | b) & 0x8080808080808080ULL) {
        break;
      }
      p += 16;
    }
    if (p == end) {
      break;
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    const std::size_t n = utf8_sequence_length(data, static_cast<std::size_t>(p - begin));
    if (n == 0) {
      return false;
    }
    p += n;
  }
  return true;
}

}  // namespace redisfs
