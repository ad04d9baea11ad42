// JsonReader: see json_reader.hpp. One loop walks the document with an
// explicit stack of open containers (no recursion, so no depth limit to
// hit); strings are copied a run of plain bytes at a time.
#include "util/json_reader.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "util/utf8.hpp"

namespace redisfs {

namespace {

constexpr std::size_t k_chunk = 1 << 20;

// Bytes that stand for themselves inside a JSON string.
constexpr std::array<bool, 256> k_plain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) {
    t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  }
  return t;
}();

std::string _describe(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c > 0x20 && c < 0x7f) {
    return std::string("'") + ch + "'";
  }
  static const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[c >> 4] + hex[c & 15];
}

int _hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

void _append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

bool _is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
bool _is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

JsonReader::JsonReader(std::streambuf* source, std::uint64_t token_limit)
    : m_source(source), m_limit(token_limit), m_data(k_chunk) {}

bool JsonReader::fill(std::size_t want) {
  while (m_end - m_pos < want) {
    if (m_eof || m_tripped) {
      return false;
    }
    if (m_pos > 0) {
      std::memmove(m_data.data(), m_data.data() + m_pos, m_end - m_pos);
      m_base += m_pos;
      m_end -= m_pos;
      m_pos = 0;
    }
    if (m_base + m_end - m_mark > m_limit) {
      m_tripped = true;
      return false;
    }
    const std::streamsize n =
        m_source->sgetn(m_data.data() + m_end, static_cast<std::streamsize>(m_data.size() - m_end));
    if (n <= 0) {
      m_eof = true;
      return false;
    }
    m_end += static_cast<std::size_t>(n);
  }
  return true;
}

bool JsonReader::skip_space() {
  for (;;) {
    while (m_pos < m_end) {
      if (!_is_space(m_data[m_pos])) {
        return true;
      }
      ++m_pos;
    }
    if (!fill(1)) {
      return false;
    }
  }
}

bool JsonReader::error(std::uint64_t position, const std::string& reason) {
  m_failed = true;
  m_handler->parse_error(position, reason);
  return false;
}

bool JsonReader::error_at_end() {
  if (m_eof) {
    m_pos = m_end;  // every byte of the input was seen
  }
  return error(consumed(), m_tripped ? "token too long" : "unexpected end of input");
}

// The byte at m_pos is not what the grammar allows: consume it and report.
bool JsonReader::unexpected(const char* what) {
  const char c = m_data[m_pos++];
  return error(consumed(), std::string("syntax error: expected ") + what + ", found " + _describe(c));
}

bool JsonReader::parse(JsonHandler& handler) {
  m_handler = &handler;
  std::vector<char> open;  // '{' or '[' for each container not yet closed
  for (;;) {
    // A value (after '[', ',' or ':', or the document itself).
    if (!skip_space()) {
      return error_at_end();
    }
    const char c = m_data[m_pos];
    if (c == '{' || c == '[') {
      ++m_pos;
      if (!(c == '{' ? handler.start_object() : handler.start_array())) {
        return false;
      }
      if (!skip_space()) {
        return error_at_end();
      }
      if (m_data[m_pos] != (c == '{' ? '}' : ']')) {
        open.push_back(c);
        if (c == '[') {
          continue;
        }
        if (m_data[m_pos] != '"') {
          return unexpected("a member name or '}'");
        }
        if (!value(c)) {  // the first member's name and ':'
          return false;
        }
        continue;
      }
      ++m_pos;
      if (!(c == '{' ? handler.end_object() : handler.end_array())) {
        return false;
      }
    } else if (!value(0)) {
      return false;
    }
    // After a value: close what ends here, up to the next ',' (or the end).
    for (;;) {
      if (open.empty()) {
        if (skip_space()) {
          return unexpected("the end of the input after the document");
        }
        return m_tripped ? error_at_end() : !m_failed;
      }
      if (!skip_space()) {
        return error_at_end();
      }
      const char top = open.back();
      const char close = top == '{' ? '}' : ']';
      const char d = m_data[m_pos];
      if (d == ',') {
        ++m_pos;
        if (top == '{') {
          if (!skip_space()) {
            return error_at_end();
          }
          if (m_data[m_pos] != '"') {
            return unexpected("a member name");
          }
          if (!value(top)) {
            return false;
          }
        }
        break;
      }
      if (d != close) {
        return unexpected(top == '{' ? "',' or '}'" : "',' or ']'");
      }
      ++m_pos;
      open.pop_back();
      if (!(top == '{' ? handler.end_object() : handler.end_array())) {
        return false;
      }
    }
  }
}

// A scalar at m_pos; with `in_object` ('{'), a member name and its ':'.
bool JsonReader::value(int in_object) {
  const char c = m_data[m_pos];
  if (in_object != 0) {
    ++m_pos;
    if (!read_string(m_token) || !m_handler->key(m_token)) {
      return false;
    }
    if (!skip_space()) {
      return error_at_end();
    }
    if (m_data[m_pos] != ':') {
      return unexpected("':'");
    }
    ++m_pos;
    return true;
  }
  switch (c) {
    case '"':
      ++m_pos;
      return read_string(m_token) && m_handler->string(m_token);
    case 't':
      return read_literal("true") && m_handler->boolean(true);
    case 'f':
      return read_literal("false") && m_handler->boolean(false);
    case 'n':
      return read_literal("null") && m_handler->null();
    default:
      if (c == '-' || _is_digit(c)) {
        return read_number();
      }
      return unexpected("a value");
  }
}

bool JsonReader::read_literal(const char* word) {
  for (const char* w = word; *w != 0; ++w) {
    if (!fill(1)) {
      return error_at_end();
    }
    if (m_data[m_pos] != *w) {
      ++m_pos;
      return error(consumed(), std::string("syntax error: invalid literal (expected '") + word + "')");
    }
    ++m_pos;
  }
  return true;
}

// After the opening quote, up to and including the closing one.
bool JsonReader::read_string(std::string& out) {
  out.clear();
  for (;;) {
    const char* data = m_data.data();
    std::size_t p = m_pos;
    while (p < m_end && k_plain[static_cast<unsigned char>(data[p])]) {
      ++p;
    }
    out.append(data + m_pos, p - m_pos);
    m_pos = p;
    if (m_pos == m_end) {
      if (!fill(1)) {
        return error_at_end();
      }
      continue;
    }
    const char c = m_data[m_pos];
    if (c == '"') {
      ++m_pos;
      return true;
    }
    if (c == '\\') {
      ++m_pos;
      if (!read_escape(out)) {
        return false;
      }
    } else if (static_cast<unsigned char>(c) < 0x20) {
      ++m_pos;
      return error(consumed(), "control character " + _describe(c) + " in a string (it must be escaped)");
    } else if (!read_utf8(out)) {
      return false;
    }
  }
}

bool JsonReader::read_escape(std::string& out) {
  if (!fill(1)) {
    return error_at_end();
  }
  const char c = m_data[m_pos++];
  switch (c) {
    case '"':
    case '\\':
    case '/':
      out.push_back(c);
      return true;
    case 'b':
      out.push_back('\b');
      return true;
    case 'f':
      out.push_back('\f');
      return true;
    case 'n':
      out.push_back('\n');
      return true;
    case 'r':
      out.push_back('\r');
      return true;
    case 't':
      out.push_back('\t');
      return true;
    case 'u':
      break;
    default:
      return error(consumed(), "invalid escape \\" + std::string(1, c) + " in a string");
  }
  auto code_unit = [this](std::uint32_t& unit) {
    if (!fill(4)) {
      return error_at_end();
    }
    unit = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = _hex_value(m_data[m_pos++]);
      if (h < 0) {
        return error(consumed(), "\\u must be followed by 4 hex digits");
      }
      unit = unit * 16 + static_cast<std::uint32_t>(h);
    }
    return true;
  };
  std::uint32_t cp = 0;
  if (!code_unit(cp)) {
    return false;
  }
  if (cp >= 0xdc00 && cp <= 0xdfff) {
    return error(consumed(), "lone low surrogate in a \\u escape");
  }
  if (cp >= 0xd800 && cp <= 0xdbff) {
    for (const char want : {'\\', 'u'}) {
      if (!fill(1)) {
        return error_at_end();
      }
      if (m_data[m_pos++] != want) {
        return error(consumed(), "high surrogate in a \\u escape without its low surrogate");
      }
    }
    std::uint32_t low = 0;
    if (!code_unit(low)) {
      return false;
    }
    if (low < 0xdc00 || low > 0xdfff) {
      return error(consumed(), "high surrogate in a \\u escape without its low surrogate");
    }
    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
  }
  _append_utf8(out, cp);
  return true;
}

// A multi-byte UTF-8 sequence at m_pos (utf8.hpp).
bool JsonReader::read_utf8(std::string& out) {
  const auto lead = static_cast<unsigned char>(m_data[m_pos]);
  const Utf8Lead seq = utf8_lead(lead);
  const std::size_t len = seq.length;
  unsigned char lo = seq.second_lo;
  unsigned char hi = seq.second_hi;
  if (len == 0) {
    ++m_pos;
    return error(consumed(), "invalid UTF-8: " + _describe(static_cast<char>(lead)) + " in a string");
  }
  if (!fill(len)) {
    return error_at_end();
  }
  for (std::size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(m_data[m_pos + i]);
    if (b < lo || b > hi) {
      m_pos += i + 1;
      return error(consumed(), "invalid UTF-8 sequence in a string");
    }
    lo = 0x80;
    hi = 0xbf;
  }
  out.append(m_data.data() + m_pos, len);
  m_pos += len;
  return true;
}

bool JsonReader::read_number() {
  std::string& t = m_token;
  t.clear();
  auto peek = [this](char& c) {
    if (!fill(1)) {
      return false;
    }
    c = m_data[m_pos];
    return true;
  };
  auto digits = [&]() {
    std::size_t n = 0;
    char c = 0;
    while (peek(c) && _is_digit(c)) {
      t.push_back(c);
      ++m_pos;
      ++n;
    }
    return n;
  };
  auto need_digit = [&](const char* after) {
    if (m_eof || m_tripped) {
      return error_at_end();
    }
    return unexpected((std::string("a digit after ") + after).c_str());
  };
  char c = 0;
  bool negative = false;
  if (peek(c) && c == '-') {
    negative = true;
    t.push_back(c);
    ++m_pos;
  }
  if (!peek(c) || !_is_digit(c)) {
    return need_digit("'-'");
  }
  if (c == '0') {
    t.push_back(c);
    ++m_pos;
  } else {
    digits();
  }
  bool integer = true;
  if (peek(c) && c == '.') {
    integer = false;
    t.push_back(c);
    ++m_pos;
    if (digits() == 0) {
      return need_digit("'.'");
    }
  }
  if (peek(c) && (c == 'e' || c == 'E')) {
    integer = false;
    t.push_back(c);
    ++m_pos;
    if (peek(c) && (c == '+' || c == '-')) {
      t.push_back(c);
      ++m_pos;
    }
    if (digits() == 0) {
      return need_digit("the exponent");
    }
  }
  if (m_tripped) {
    return error_at_end();
  }
  return number_event(integer, negative);
}

// The handler's event for the number in m_token: an integer that fits its
// type, else a double (an error when it overflows).
bool JsonReader::number_event(bool integer, bool negative) {
  const std::string& t = m_token;
  const char* first = t.data();
  const char* last = t.data() + t.size();
  if (integer) {
    if (negative) {
      std::int64_t v = 0;
      auto [ptr, ec] = std::from_chars(first, last, v);
      if (ec == std::errc() && ptr == last) {
        return m_handler->number_integer(v);
      }
    } else {
      std::uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(first, last, v);
      if (ec == std::errc() && ptr == last) {
        return m_handler->number_unsigned(v);
      }
    }
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(first, last, d);
  if (ec == std::errc::result_out_of_range) {
    d = std::strtod(t.c_str(), nullptr);  // tiny numbers become 0 or subnormal, huge ones infinite
  }
  if (!std::isfinite(d)) {
    return error(consumed(), "number overflow parsing '" + t + "'");
  }
  return m_handler->number_float(d, t);
}

}  // namespace redisfs
