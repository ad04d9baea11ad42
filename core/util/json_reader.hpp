// JsonReader: a streaming, validating JSON (RFC 8259) push parser.
//
// The dump reader's hot loop is the lexing of long strings (a 64 KiB block
// is an 87 KiB base64 string). nlohmann::json's SAX parser spends about
// 80% of a restore there, one character and one std::string::push_back at
// a time; this reader copies each run of plain characters in one append
// and refills from the stream 1 MiB at a time, and is otherwise as strict:
// UTF-8 is validated (no overlong forms, no surrogates, nothing above
// U+10FFFF), control characters must be escaped, \u escapes must pair
// their surrogates, numbers follow the RFC grammar, and after the one
// document only whitespace may follow.
//
// Events go to a JsonHandler in document order, like nlohmann's SAX
// interface (whose event names it keeps); a handler returns false to stop.
// Positions are byte offsets: consumed() is the offset just past the last
// byte the reader used, so during an event it is the end of that token; a
// syntax error's position is the offset just past the offending byte.
//
// Memory is bounded by the longest token: the reader refuses to read on
// once more than `token_limit` bytes went by since the handler last called
// mark() (tripped() then tells this from the end of the input).
#pragma once

#include <cstdint>
#include <streambuf>
#include <string>
#include <vector>

namespace redisfs {

class JsonHandler {
 public:
  virtual ~JsonHandler() = default;
  virtual bool null() = 0;
  virtual bool boolean(bool value) = 0;
  virtual bool number_integer(std::int64_t value) = 0;    // negative integers
  virtual bool number_unsigned(std::uint64_t value) = 0;  // other integers
  // Numbers with a fraction or an exponent, and integers out of range.
  virtual bool number_float(double value, const std::string& text) = 0;
  virtual bool string(std::string& value) = 0;  // may be moved from
  virtual bool key(std::string& name) = 0;      // may be moved from
  virtual bool start_object() = 0;
  virtual bool end_object() = 0;
  virtual bool start_array() = 0;
  virtual bool end_array() = 0;
  // Bad syntax, or the input ended (see JsonReader::eof_seen/tripped).
  virtual bool parse_error(std::uint64_t position, const std::string& reason) = 0;
};

class JsonReader {
 public:
  JsonReader(std::streambuf* source, std::uint64_t token_limit);

  // Reads one document and the whitespace after it, up to the end of the
  // input. True when the whole input was read and every event accepted.
  bool parse(JsonHandler& handler);

  std::uint64_t consumed() const { return m_base + static_cast<std::uint64_t>(m_pos); }
  void mark() { m_mark = consumed(); }
  bool eof_seen() const { return m_eof; }
  bool tripped() const { return m_tripped; }

 private:
  bool fill(std::size_t want);  // at least `want` bytes after m_pos, unless the input ends
  bool skip_space();            // false at the end of the input
  bool error(std::uint64_t position, const std::string& reason);
  bool error_at_end();
  bool unexpected(const char* what);
  bool value(int c);
  bool read_string(std::string& out);
  bool read_escape(std::string& out);
  bool read_utf8(std::string& out);
  bool read_number();
  bool number_event(bool integer, bool negative);  // m_token, lexed by read_number
  bool read_literal(const char* word);

  JsonHandler* m_handler = nullptr;
  std::streambuf* m_source;
  std::uint64_t m_limit;
  std::vector<char> m_data;
  std::size_t m_pos = 0;  // next byte to use in m_data
  std::size_t m_end = 0;  // bytes held in m_data
  std::uint64_t m_base = 0;  // offset of m_data[0] in the input
  std::uint64_t m_mark = 0;
  bool m_eof = false;
  bool m_tripped = false;
  bool m_failed = false;
  std::string m_token;
};

}  // namespace redisfs
