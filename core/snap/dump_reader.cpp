// Reader of the dump format (see dump_format.hpp for the format; the
// writer and the content digest are dump_writer.cpp).
//
// The reader is a JsonHandler driven by JsonReader (json_reader.hpp), which
// does the lexing and the UTF-8 validation of strings; the handler here is
// a state machine over the expected shape of the document that checks every
// event, hands records to the Sink as soon as they are complete (hash pairs
// in batches), and keeps the counts and the content digest for the
// trailer. JsonReader knows the byte offset for error messages, notices the
// end of the input (to tell truncation from bad syntax), and stops when a
// single token grows past what the value limit allows, so memory stays
// bounded even on hostile input.
#include <algorithm>
#include <istream>
#include <limits>
#include <new>
#include <optional>
#include <streambuf>
#include <system_error>

#include "snap/dump_format.hpp"
#include "util/base64.hpp"
#include "util/json_reader.hpp"
#include "util/text.hpp"

namespace redisfs::dump {

static constexpr size_t k_batch_bytes = 8 * 1024 * 1024;

namespace {

enum class State {
  Document,
  RootKey,
  HeaderValue,
  RecordsStart,
  RecordOrEnd,
  RecordKeyName,
  RecordKeyValue,
  RecordBodyName,
  DeleteValue,
  RecordEnd,
  BytesValue,
  Base64Name,
  Base64Value,
  Base64End,
  HashStart,
  PairOrEnd,
  PairEnd,
  TrailerStart,
  TrailerKey,
  TrailerValue,
  Done,
};

enum class Slot { StringValue, Field, Value };

struct Number {
  enum class Kind { Unsigned, Negative, Float } kind;
  uint64_t value = 0;
  std::string text;
};

}  // namespace

static std::string _shown(std::string_view s, size_t max = k_shown_max) { return shown(s, max, '"'); }

static std::string _quoted(std::string_view s) { return "\"" + _shown(s) + "\""; }

static bool _is_hex_digest(std::string_view s) {
  if (s.size() != 64) {
    return false;
  }
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

namespace {

class SaxReader final : public JsonHandler {
 public:
  SaxReader(Sink& sink, JsonReader& buf, ReadLimits limits) : m_sink(sink), m_buf(buf), m_limits(limits) {}

  bool done() const { return m_state == State::Done; }
  const Trailer& trailer() const { return m_trailer; }
  std::optional<Error>& error() { return m_error; }

  // ---- JsonHandler
  bool null() override {
    m_buf.mark();
    return scalar_other("null");
  }
  bool boolean(bool v) override {
    m_buf.mark();
    if (m_state == State::DeleteValue) {
      return delete_record(v);
    }
    return scalar_other("a boolean");
  }
  bool number_integer(std::int64_t v) override {
    m_buf.mark();
    Number n{v < 0 ? Number::Kind::Negative : Number::Kind::Unsigned, v < 0 ? 0 : static_cast<uint64_t>(v),
             std::to_string(v)};
    return number(n);
  }
  bool number_unsigned(std::uint64_t v) override {
    m_buf.mark();
    Number n{Number::Kind::Unsigned, v, std::to_string(v)};
    return number(n);
  }
  bool number_float(double, const std::string& text) override {
    m_buf.mark();
    Number n{Number::Kind::Float, 0, _shown(text, 40)};
    return number(n);
  }
  bool string(std::string& s) override;
  bool key(std::string& k) override;
  bool start_object() override;
  bool end_object() override;
  bool start_array() override;
  bool end_array() override;
  bool parse_error(std::uint64_t position, const std::string& reason) override;

 private:
  bool fail(const std::string& what);
  bool sink_failed(Error error);
  std::string context() const;
  Position position() const { return {m_buf.consumed(), m_record_index}; }
  std::string expected() const;
  bool unexpected(const char* found) { return fail("expected " + expected() + ", found " + found); }
  bool bad_pair() { return fail("hash pair must be [field, value]"); }
  bool scalar_other(const char* found);
  bool number(const Number& n);
  bool count_value(const Number& n, uint64_t& out);
  bool check_size(std::string_view what, size_t size);
  bool deliver(std::string&& bytes);
  bool flush_pairs();
  bool root_key(const std::string& k);
  bool root_end();
  bool header_string(std::string&& s);
  bool delete_record(bool v);
  bool trailer_key(const std::string& k);
  bool trailer_end();
  bool in_record() const;
  bool in_trailer() const { return m_state == State::TrailerKey || m_state == State::TrailerValue; }

  Sink& m_sink;
  JsonReader& m_buf;
  ReadLimits m_limits;
  std::optional<Error> m_error;

  State m_state = State::Document;
  Slot m_slot = Slot::StringValue;
  std::string m_member;

  Header m_header;
  bool m_seen_format = false;
  bool m_seen_version = false;
  bool m_seen_prefix = false;
  bool m_seen_created = false;
  bool m_seen_tool = false;
  bool m_seen_record_count = false;
  bool m_seen_base_id = false;
  bool m_seen_base_digest = false;
  bool m_seen_records = false;
  bool m_seen_trailer = false;
  bool m_trailer_done = false;

  uint64_t m_record_index = 0;
  std::string m_key;
  std::string m_field;
  std::string m_pending;
  std::vector<std::pair<std::string, std::string>> m_pairs;
  size_t m_batch_bytes = 0;

  uint64_t m_records = 0;
  uint64_t m_bytes = 0;
  ContentDigest m_digest;

  Trailer m_trailer;
  bool m_seen_t_records = false;
  bool m_seen_t_bytes = false;
  bool m_seen_t_sha = false;
};

}  // namespace

bool SaxReader::in_record() const {
  switch (m_state) {
    case State::RecordKeyName:
    case State::RecordKeyValue:
    case State::RecordBodyName:
    case State::DeleteValue:
    case State::RecordEnd:
    case State::BytesValue:
    case State::Base64Name:
    case State::Base64Value:
    case State::Base64End:
    case State::HashStart:
    case State::PairOrEnd:
    case State::PairEnd:
      return true;
    default:
      return false;
  }
}

static std::string _record_context(uint64_t index, std::string_view key) {
  std::string c = "record " + std::to_string(index);
  if (!key.empty()) {
    c += " (key " + _quoted(key) + ")";
  }
  return c + ": ";
}

static constexpr std::string_view k_placed = "dump: at byte ";

Error fault_at(int code, Position at, std::string_view key, std::string_view what) {
  return Error{code, std::string(k_placed) + std::to_string(at.byte) + ": " + _record_context(at.record, key) +
                         std::string(what)};
}

bool is_placed(const Error& e) { return e.message.starts_with(k_placed); }

std::string SaxReader::context() const {
  if (in_record()) {
    return _record_context(m_record_index, m_key);
  }
  if (in_trailer() || m_state == State::TrailerStart) {
    return "trailer: ";
  }
  if (m_state == State::HeaderValue || (m_state == State::RootKey && !m_seen_records)) {
    return "header: ";
  }
  return "";
}

bool SaxReader::fail(const std::string& what) {
  if (!m_error) {
    m_error = make_error(EINVAL, "dump: at byte " + std::to_string(m_buf.consumed()) + ": " + context() + what);
  }
  return false;
}

bool SaxReader::sink_failed(Error error) {
  if (!m_error) {
    // (a fault of an earlier record, fault_at, names its own place)
    m_error = is_placed(error) ? std::move(error)
                               : make_error(error.code, "dump: at byte " + std::to_string(m_buf.consumed()) + ": " +
                                                            context() + error.message);
  }
  return false;
}

std::string SaxReader::expected() const {
  switch (m_state) {
    case State::Document:
      return "a JSON object (the dump document)";
    case State::RootKey:
      return "a member name or the end of the document";
    case State::HeaderValue:
      if (m_member == "version") {
        return "an integer for \"version\"";
      }
      if (m_member == "format" || m_member == "prefix" || m_member == "created" || m_member == "tool" ||
          m_member == "base_snapshot_id" || m_member == "base_digest") {
        return "a string for " + _quoted(m_member);
      }
      return "a string or a number for header member " + _quoted(m_member);
    case State::RecordsStart:
      return "an array for \"records\"";
    case State::RecordOrEnd:
      return "a record object or the end of \"records\"";
    case State::RecordKeyName:
      return "\"key\"";
    case State::RecordKeyValue:
      return "a string for \"key\"";
    case State::RecordBodyName:
      return m_header.version == k_version_incremental ? "\"string\", \"hash\" or \"delete\""
                                                       : "\"string\" or \"hash\"";
    case State::DeleteValue:
      return "true for \"delete\"";
    case State::RecordEnd:
      return "the end of the record";
    case State::BytesValue:
      switch (m_slot) {
        case Slot::StringValue:
          return "a string or {\"base64\": \"...\"} for \"string\"";
        case Slot::Field:
          return "a string or {\"base64\": \"...\"} for a hash field";
        case Slot::Value:
          return "a string or {\"base64\": \"...\"} for a hash value";
      }
      return "a byte string";
    case State::Base64Name:
      return "\"base64\"";
    case State::Base64Value:
      return "a string for \"base64\"";
    case State::Base64End:
      return "the end of the {\"base64\": \"...\"} object";
    case State::HashStart:
      return "an array of [field, value] pairs for \"hash\"";
    case State::PairOrEnd:
      return "a [field, value] pair or the end of \"hash\"";
    case State::PairEnd:
      return "the end of the [field, value] pair";
    case State::TrailerStart:
      return "an object for \"trailer\"";
    case State::TrailerKey:
      return "a trailer member or the end of the trailer";
    case State::TrailerValue:
      if (m_member == "sha256") {
        return "a string for \"sha256\"";
      }
      if (m_member == "records" || m_member == "bytes") {
        return "an integer for " + _quoted(m_member);
      }
      return "a string or a number for trailer member " + _quoted(m_member);
    case State::Done:
      return "the end of the input";
  }
  return "something else";
}

bool SaxReader::scalar_other(const char* found) {
  if (m_state == State::PairEnd) {
    return bad_pair();
  }
  return unexpected(found);
}

bool SaxReader::count_value(const Number& n, uint64_t& out) {
  if (n.kind != Number::Kind::Unsigned || n.value > k_max_number) {
    return fail(_quoted(m_member) + " must be an integer from 0 to 2^53, found " + n.text);
  }
  out = n.value;
  return true;
}

bool SaxReader::number(const Number& n) {
  if (m_state == State::HeaderValue) {
    if (m_member == "version") {
      uint64_t v = 0;
      if (!count_value(n, v)) {
        return false;
      }
      if (v != static_cast<uint64_t>(k_version) && v != static_cast<uint64_t>(k_version_incremental)) {
        m_error = make_error(EINVAL, "dump: unsupported dump version " + std::to_string(v) +
                                         " (this redisfs-snap reads versions 1 and 2)");
        return false;
      }
      m_header.version = static_cast<int>(v);
      m_seen_version = true;
    } else if (m_member == "record_count") {
      if (!count_value(n, m_header.record_count)) {
        return false;
      }
      m_seen_record_count = true;
    } else if (m_member == "format" || m_member == "prefix" || m_member == "created" || m_member == "tool" ||
               m_member == "base_snapshot_id" || m_member == "base_digest") {
      return unexpected("a number");
    }
    m_state = State::RootKey;
    return true;
  }
  if (m_state == State::TrailerValue) {
    if (m_member == "records") {
      if (!count_value(n, m_trailer.records)) {
        return false;
      }
    } else if (m_member == "bytes") {
      if (!count_value(n, m_trailer.bytes)) {
        return false;
      }
    } else if (m_member == "sha256") {
      return unexpected("a number");
    }
    m_state = State::TrailerKey;
    return true;
  }
  return scalar_other("a number");
}

bool SaxReader::check_size(std::string_view what, size_t size) {
  if (size > m_limits.max_value_bytes) {
    return fail(std::string(what) + " of " + std::to_string(size) + " bytes exceeds the limit of " +
                std::to_string(m_limits.max_value_bytes) + " bytes");
  }
  return true;
}

bool SaxReader::flush_pairs() {
  if (m_pairs.empty()) {
    return true;
  }
  std::vector<std::pair<std::string, std::string>> batch;
  batch.swap(m_pairs);
  m_batch_bytes = 0;
  m_sink.at(position());
  Status st = m_sink.on_hash_fields(m_key, std::move(batch));
  if (!st.ok()) {
    return sink_failed(std::move(st).error());
  }
  m_pairs.reserve(std::min<size_t>(k_hash_batch_pairs, 64));
  return true;
}

bool SaxReader::deliver(std::string&& bytes) {
  switch (m_slot) {
    case Slot::StringValue: {
      if (!check_size("string value", bytes.size())) {
        return false;
      }
      m_bytes += bytes.size();
      m_digest.string_record(m_key, bytes);
      m_sink.at(position());
      Status st = m_sink.on_string(m_key, std::move(bytes));
      if (!st.ok()) {
        return sink_failed(std::move(st).error());
      }
      m_state = State::RecordEnd;
      return true;
    }
    case Slot::Field:
      if (!check_size("hash field", bytes.size())) {
        return false;
      }
      m_field = std::move(bytes);
      m_slot = Slot::Value;
      m_state = State::BytesValue;
      return true;
    case Slot::Value: {
      if (!check_size("hash value", bytes.size())) {
        return false;
      }
      m_bytes += m_field.size() + bytes.size();
      m_batch_bytes += m_field.size() + bytes.size();
      m_digest.hash_pair(m_field, bytes);
      m_pairs.emplace_back(std::move(m_field), std::move(bytes));
      m_field = std::string();
      m_state = State::PairEnd;
      if (m_pairs.size() >= k_hash_batch_pairs || m_batch_bytes >= k_batch_bytes) {
        return flush_pairs();
      }
      return true;
    }
  }
  return fail("internal error: bad slot");
}

bool SaxReader::header_string(std::string&& s) {
  if (m_member == "format") {
    if (s != k_format) {
      return fail("not a redisfs dump: \"format\" is " + _quoted(s) + ", expected \"" + k_format + "\"");
    }
    m_seen_format = true;
  } else if (m_member == "version" || m_member == "record_count") {
    return unexpected("a string");
  } else if (m_member == "prefix") {
    m_header.prefix = std::move(s);
    m_seen_prefix = true;
  } else if (m_member == "created") {
    m_header.created = std::move(s);
    m_seen_created = true;
  } else if (m_member == "tool") {
    m_header.tool = std::move(s);
    m_seen_tool = true;
  } else if (m_member == "base_snapshot_id") {
    m_header.base_snapshot_id = std::move(s);
    m_seen_base_id = true;
  } else if (m_member == "base_digest") {
    m_header.base_digest = std::move(s);
    m_seen_base_digest = true;
  }
  m_state = State::RootKey;
  return true;
}

bool SaxReader::delete_record(bool v) {
  if (!v) {
    return fail("\"delete\" must be true");
  }
  m_digest.delete_record(m_key);
  m_sink.at(position());
  Status st = m_sink.on_delete(m_key);
  if (!st.ok()) {
    return sink_failed(std::move(st).error());
  }
  m_state = State::RecordEnd;
  return true;
}

bool SaxReader::string(std::string& s) {
  m_buf.mark();
  switch (m_state) {
    case State::HeaderValue:
      return header_string(std::move(s));
    case State::RecordKeyValue:
      if (s.empty()) {
        return fail("empty key");
      }
      if (!check_size("key", s.size())) {
        return false;
      }
      if (s.find('\0') != std::string::npos) {
        return fail("key " + _quoted(s) + " contains a NUL byte");
      }
      m_key = std::move(s);
      m_state = State::RecordBodyName;
      return true;
    case State::BytesValue:
      return deliver(std::move(s));
    case State::Base64Value: {
      const uint64_t upper = s.size() / 4 * 3;
      if (upper > m_limits.max_value_bytes && upper - m_limits.max_value_bytes > 2) {
        return check_size("base64 data", upper);
      }
      auto decoded = base64_decode(s);
      if (!decoded.ok()) {
        return fail(decoded.error().message);
      }
      m_pending = std::move(decoded).value();
      m_state = State::Base64End;
      return true;
    }
    case State::TrailerValue:
      if (m_member == "sha256") {
        if (!_is_hex_digest(s)) {
          return fail("\"sha256\" must be 64 lowercase hex digits, found " + _quoted(s));
        }
        m_trailer.sha256 = std::move(s);
      } else if (m_member == "records" || m_member == "bytes") {
        return unexpected("a string");
      }
      m_state = State::TrailerKey;
      return true;
    case State::PairEnd:
      return bad_pair();
    default:
      return unexpected("a string");
  }
}

bool SaxReader::root_key(const std::string& k) {
  if (!m_seen_format && k != "format") {
    return fail("not a redisfs dump: the first member is " + _quoted(k) + ", expected \"format\"");
  }
  if (k == "records") {
    if (m_seen_trailer) {
      return fail("\"records\" after the trailer");
    }
    if (m_seen_records) {
      return fail("duplicate \"records\"");
    }
    for (const auto& [seen, name] : {std::pair{m_seen_version, "version"}, std::pair{m_seen_prefix, "prefix"},
                                     std::pair{m_seen_created, "created"}}) {
      if (!seen) {
        return fail(std::string("the header has no \"") + name + "\" before \"records\"");
      }
    }
    if (m_header.version == k_version_incremental) {
      if (!m_seen_base_id || !m_seen_base_digest) {
        return fail("an incremental dump (version 2) needs \"base_snapshot_id\" and \"base_digest\" before \"records\"");
      }
      if (m_header.base_snapshot_id.size() != 32 || !_is_hex_digest(m_header.base_snapshot_id + std::string(32, '0'))) {
        return fail("\"base_snapshot_id\" must be 32 lowercase hex digits, found " + _quoted(m_header.base_snapshot_id));
      }
      if (!_is_hex_digest(m_header.base_digest)) {
        return fail("\"base_digest\" must be 64 lowercase hex digits, found " + _quoted(m_header.base_digest));
      }
    } else if (m_seen_base_id || m_seen_base_digest) {
      return fail("\"base_snapshot_id\" and \"base_digest\" belong to an incremental dump (version 2), not version 1");
    }
    Status st = m_sink.on_header(m_header);
    if (!st.ok()) {
      return sink_failed(std::move(st).error());
    }
    m_seen_records = true;
    m_state = State::RecordsStart;
    return true;
  }
  if (k == "trailer") {
    if (!m_seen_records) {
      return fail("\"trailer\" before \"records\"");
    }
    if (m_seen_trailer) {
      return fail("duplicate \"trailer\"");
    }
    m_seen_trailer = true;
    m_state = State::TrailerStart;
    return true;
  }
  if (m_seen_trailer) {
    return fail("unexpected member " + _quoted(k) + " after the trailer");
  }
  if (m_seen_records) {
    return fail("unexpected member " + _quoted(k) + " after \"records\" (expected \"trailer\")");
  }
  const bool dup = (k == "format" && m_seen_format) || (k == "version" && m_seen_version) ||
                   (k == "prefix" && m_seen_prefix) || (k == "created" && m_seen_created) ||
                   (k == "tool" && m_seen_tool) || (k == "record_count" && m_seen_record_count) ||
                   (k == "base_snapshot_id" && m_seen_base_id) || (k == "base_digest" && m_seen_base_digest);
  if (dup) {
    return fail("duplicate header member " + _quoted(k));
  }
  m_member = k;
  m_state = State::HeaderValue;
  return true;
}

bool SaxReader::root_end() {
  if (!m_seen_records) {
    return fail("the document has no \"records\"");
  }
  if (!m_seen_trailer) {
    return fail("missing trailer (the document ends without \"trailer\")");
  }
  m_state = State::Done;
  return true;
}

bool SaxReader::trailer_key(const std::string& k) {
  bool* seen = nullptr;
  if (k == "records") {
    seen = &m_seen_t_records;
  } else if (k == "bytes") {
    seen = &m_seen_t_bytes;
  } else if (k == "sha256") {
    seen = &m_seen_t_sha;
  }
  if (seen != nullptr) {
    if (*seen) {
      return fail("duplicate trailer member " + _quoted(k));
    }
    *seen = true;
  }
  m_member = k;
  m_state = State::TrailerValue;
  return true;
}

bool SaxReader::trailer_end() {
  for (const auto& [seen, name] : {std::pair{m_seen_t_records, "records"}, std::pair{m_seen_t_bytes, "bytes"},
                                   std::pair{m_seen_t_sha, "sha256"}}) {
    if (!seen) {
      return fail(std::string("the trailer has no \"") + name + "\"");
    }
  }
  if (m_trailer.records != m_records) {
    return fail("the trailer says " + counted(m_trailer.records, "record", "records") + ", the document holds " +
                std::to_string(m_records));
  }
  if (m_trailer.bytes != m_bytes) {
    return fail("the trailer says " + counted(m_trailer.bytes, "byte", "bytes") + ", the records hold " +
                std::to_string(m_bytes));
  }
  const std::string actual = m_digest.hex_digest();
  if (actual != m_trailer.sha256) {
    m_error = make_error(EINVAL,
                         "dump: checksum mismatch: trailer says " + m_trailer.sha256 + ", content hashes to " + actual);
    return false;
  }
  m_trailer_done = true;
  m_state = State::RootKey;
  return true;
}

bool SaxReader::key(std::string& k) {
  m_buf.mark();
  switch (m_state) {
    case State::RootKey:
      return root_key(k);
    case State::RecordKeyName:
      if (k != "key") {
        return fail("a record must start with \"key\", found member " + _quoted(k));
      }
      m_state = State::RecordKeyValue;
      return true;
    case State::RecordBodyName:
      if (k == "string") {
        m_slot = Slot::StringValue;
        m_state = State::BytesValue;
        return true;
      }
      if (k == "hash") {
        m_state = State::HashStart;
        return true;
      }
      if (k == "delete") {
        if (m_header.version != k_version_incremental) {
          return fail("a deletion record in a full dump (version 1)");
        }
        m_state = State::DeleteValue;
        return true;
      }
      if (k == "key") {
        return fail("duplicate \"key\"");
      }
      return fail("unexpected member " + _quoted(k) + " (a record holds \"key\" and one of \"string\" or \"hash\")");
    case State::RecordEnd:
      if (k == "string" || k == "hash" || k == "key") {
        return fail("a record must hold \"key\" and exactly one of \"string\" or \"hash\", found a second " +
                    _quoted(k));
      }
      return fail("unexpected member " + _quoted(k) + " (a record holds \"key\" and one of \"string\" or \"hash\")");
    case State::Base64Name:
      if (k != "base64") {
        return fail("expected {\"base64\": \"...\"}, found member " + _quoted(k));
      }
      m_state = State::Base64Value;
      return true;
    case State::Base64End:
      return fail("a {\"base64\": \"...\"} object must have no other member, found " + _quoted(k));
    case State::TrailerKey:
      return trailer_key(k);
    default:
      return fail("unexpected member " + _quoted(k));
  }
}

bool SaxReader::start_object() {
  m_buf.mark();
  switch (m_state) {
    case State::Document:
      m_state = State::RootKey;
      return true;
    case State::RecordOrEnd:
      ++m_record_index;
      m_key.clear();
      m_state = State::RecordKeyName;
      return true;
    case State::BytesValue:
      m_state = State::Base64Name;
      return true;
    case State::TrailerStart:
      m_state = State::TrailerKey;
      return true;
    case State::PairEnd:
      return bad_pair();
    default:
      return unexpected("an object");
  }
}

bool SaxReader::end_object() {
  m_buf.mark();
  switch (m_state) {
    case State::RootKey:
      return root_end();
    case State::RecordKeyName:
      return fail("empty record (a record holds \"key\" and one of \"string\" or \"hash\")");
    case State::RecordBodyName:
      return fail("the record has neither \"string\" nor \"hash\"");
    case State::RecordEnd:
      ++m_records;
      m_state = State::RecordOrEnd;
      return true;
    case State::Base64Name:
      return fail("expected {\"base64\": \"...\"}, found an empty object");
    case State::Base64End:
      return deliver(std::move(m_pending));
    case State::TrailerKey:
      return trailer_end();
    default:
      return fail("unexpected end of object");
  }
}

bool SaxReader::start_array() {
  m_buf.mark();
  switch (m_state) {
    case State::RecordsStart:
      m_state = State::RecordOrEnd;
      return true;
    case State::HashStart: {
      m_digest.hash_begin(m_key);
      m_sink.at(position());
      Status st = m_sink.on_hash_begin(m_key);
      if (!st.ok()) {
        return sink_failed(std::move(st).error());
      }
      m_pairs.clear();
      m_batch_bytes = 0;
      m_state = State::PairOrEnd;
      return true;
    }
    case State::PairOrEnd:
      m_slot = Slot::Field;
      m_state = State::BytesValue;
      return true;
    case State::PairEnd:
      return bad_pair();
    default:
      return unexpected("an array");
  }
}

bool SaxReader::end_array() {
  m_buf.mark();
  switch (m_state) {
    case State::RecordOrEnd:
      m_state = State::RootKey;
      return true;
    case State::PairOrEnd: {
      if (!flush_pairs()) {
        return false;
      }
      m_digest.hash_end();
      Status st = m_sink.on_hash_end(m_key);
      if (!st.ok()) {
        return sink_failed(std::move(st).error());
      }
      m_state = State::RecordEnd;
      return true;
    }
    case State::PairEnd:
      m_state = State::PairOrEnd;
      return true;
    case State::BytesValue:
      if (m_slot != Slot::StringValue) {
        return bad_pair();
      }
      return unexpected("the end of an array");
    default:
      return fail("unexpected end of array");
  }
}

bool SaxReader::parse_error(std::uint64_t position, const std::string& reason) {
  if (m_error) {
    return false;
  }
  if (m_buf.tripped()) {
    m_error = make_error(EINVAL, "dump: at byte " + std::to_string(m_buf.consumed()) +
                                     ": a JSON token is too long (the limit for one value is " +
                                     std::to_string(m_limits.max_value_bytes) + " bytes)");
  } else if (m_state == State::Done) {
    m_error = make_error(EINVAL, "dump: at byte " + std::to_string(position) +
                                     ": unexpected data after the end of the document");
  } else if (m_buf.eof_seen()) {
    const uint64_t at = m_buf.consumed();
    if (at == 0) {
      m_error = make_error(EINVAL, "dump: empty input (no JSON document)");
    } else {
      const char* where = "(document ends before the trailer)";
      if (m_state == State::Document) {
        where = "(no complete JSON document)";
      } else if (m_trailer_done) {
        where = "(document ends after the trailer, before its closing brace)";
      }
      m_error = make_error(EINVAL, "dump: truncated at byte " + std::to_string(at) + " " + where);
    }
  } else {
    m_error = make_error(EINVAL, "dump: not JSON at byte " + std::to_string(position) + ": " + _shown(reason, 200));
  }
  return false;
}

static uint64_t _guard_for(const ReadLimits& limits) {
  constexpr uint64_t k_slack = 1 << 20;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  if (limits.max_value_bytes > (max - k_slack) / 6) {
    return max;
  }
  return limits.max_value_bytes * 6 + k_slack;
}

Result<Trailer> read(std::istream& in, Sink& sink, ReadLimits limits) {
  try {
    std::streambuf* source = in.rdbuf();
    if (source == nullptr) {
      return make_error(EINVAL, "dump: no input stream");
    }
    JsonReader buf(source, _guard_for(limits));
    SaxReader reader(sink, buf, limits);
    const bool ok = buf.parse(reader);
    if (buf.eof_seen()) {
      in.setstate(std::ios::eofbit);
    }
    if (!ok || !reader.done()) {
      if (reader.error()) {
        return std::move(*reader.error());
      }
      return make_error(EINVAL, "dump: at byte " + std::to_string(buf.consumed()) + ": invalid document");
    }
    return reader.trailer();
  } catch (const std::bad_alloc&) {
    return make_error(ENOMEM, "dump: out of memory while reading");
  } catch (const std::system_error& e) {
    // (a stream's read error carries the errno: said as such, not as the
    // library's words, "basic_filebuf::underflow error reading the file")
    const std::error_category& cat = e.code().category();
    if (cat == std::system_category() || cat == std::generic_category()) {
      return make_error(e.code().value(), "dump: read failed: " + errno_text(e.code().value()));
    }
    return make_error(EIO, std::string("dump: read failed: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(EIO, std::string("dump: read failed: ") + e.what());
  }
}

}  // namespace redisfs::dump
