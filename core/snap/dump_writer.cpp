// Writer of the dump format (see dump_format.hpp for the format), and the
// content digest that the writer and the reader (dump_reader.cpp) compute.
//
// The writer builds each record's JSON text itself, with a table-driven
// escaper that copies runs of plain bytes in one go, and hands it to the
// stream in chunks of about 64 KiB; no JSON object is ever built.
#include "snap/dump_format.hpp"

#include <array>
#include <new>
#include <ostream>

#include "util/base64.hpp"

namespace redisfs::dump {

static constexpr size_t k_flush_bytes = 64 * 1024;
static constexpr size_t k_keep_capacity = 4 * 1024 * 1024;

// ---------------------------------------------------------------- digest

void ContentDigest::put_u64(uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  m_sha.update(b, sizeof b);
}

void ContentDigest::string_record(std::string_view key, std::string_view value) {
  m_sha.update(key);
  m_sha.update("\0s", 2);
  put_u64(value.size());
  m_sha.update(value);
}

void ContentDigest::hash_begin(std::string_view key) {
  m_sha.update(key);
  m_sha.update("\0h", 2);
  m_pairs = 0;
}

void ContentDigest::hash_pair(std::string_view field, std::string_view value) {
  m_sha.update("p", 1);
  put_u64(field.size());
  m_sha.update(field);
  put_u64(value.size());
  m_sha.update(value);
  ++m_pairs;
}

void ContentDigest::hash_end() {
  m_sha.update("e", 1);
  put_u64(m_pairs);
}

void ContentDigest::delete_record(std::string_view key) {
  m_sha.update(key);
  m_sha.update("\0d", 2);
}

// ---------------------------------------------------------------- writer

// Per byte: 0 = copied as is, else the character after '\' ('u' = \u00XX).
static constexpr std::array<char, 256> _make_escape_table() {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) {
    t[c] = 'u';
  }
  t['\b'] = 'b';
  t['\f'] = 'f';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}

static constexpr std::array<char, 256> k_escape = _make_escape_table();
static constexpr char k_hex[] = "0123456789abcdef";

static size_t _escaped_size(std::string_view s) {
  size_t extra = 0;
  for (const char ch : s) {
    const char e = k_escape[static_cast<unsigned char>(ch)];
    if (e != 0) {
      extra += e == 'u' ? 5 : 1;
    }
  }
  return s.size() + extra;
}

// s must be valid UTF-8; escaped_size from _escaped_size(s).
static void _append_json_string(std::string& out, std::string_view s, size_t escaped_size) {
  out.reserve(out.size() + escaped_size + 2);
  out.push_back('"');
  if (escaped_size == s.size()) {
    out.append(s);
    out.push_back('"');
    return;
  }
  const char* p = s.data();
  const char* end = p + s.size();
  const char* run = p;
  for (; p < end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    const char e = k_escape[c];
    if (e == 0) {
      continue;
    }
    out.append(run, static_cast<size_t>(p - run));
    run = p + 1;
    if (e == 'u') {
      const char u[6] = {'\\', 'u', '0', '0', k_hex[c >> 4], k_hex[c & 15]};
      out.append(u, 6);
    } else {
      const char esc[2] = {'\\', e};
      out.append(esc, 2);
    }
  }
  out.append(run, static_cast<size_t>(end - run));
  out.push_back('"');
}

static void _append_bytes(std::string& out, std::string_view s) {
  if (is_valid_utf8(s)) {
    const size_t escaped = _escaped_size(s);
    if (escaped <= (s.size() + 2) / 3 * 4 + 12) {
      _append_json_string(out, s, escaped);
      return;
    }
  }
  out.append("{\"base64\":\"");
  base64_encode_append(out, s);
  out.append("\"}");
}

void append_json_bytes(std::string& out, std::string_view s) { _append_bytes(out, s); }

static Status _check_text(const char* what, std::string_view s) {
  if (!is_valid_utf8(s)) {
    return make_error(EINVAL, std::string("dump writer: ") + what + " is not valid UTF-8");
  }
  return {};
}

static Status _check_key(std::string_view key) {
  if (key.empty()) {
    return make_error(EINVAL, "dump writer: empty key");
  }
  if (key.find('\0') != std::string_view::npos) {
    return make_error(EINVAL, "dump writer: key contains a NUL byte");
  }
  return _check_text("key", key);
}

Writer::Writer(std::ostream& out, Header header) : m_out(out), m_header(std::move(header)) {}

Status Writer::flush(bool force) {
  if (m_buf.empty() || (!force && m_buf.size() < k_flush_bytes)) {
    return {};
  }
  bool written = false;
  try {
    m_out.write(m_buf.data(), static_cast<std::streamsize>(m_buf.size()));
    if (force) {
      m_out.flush();
    }
    written = !m_out.fail();
  } catch (const std::exception&) {
    written = false;
  }
  m_buf.clear();
  if (m_buf.capacity() > k_keep_capacity) {
    m_buf.shrink_to_fit();
  }
  if (!written) {
    m_state = State::Failed;
    m_failure = make_error(EIO, "dump: write failed (output stream error)");
    return m_failure;
  }
  return {};
}

Error Writer::on_exception() {
  m_state = State::Failed;
  try {
    throw;
  } catch (const std::bad_alloc&) {
    m_failure = make_error(ENOMEM, "dump: out of memory while writing");
  } catch (const std::exception& e) {
    m_failure = make_error(EIO, std::string("dump: write failed: ") + e.what());
  } catch (...) {
    m_failure = make_error(EIO, "dump: write failed");
  }
  return m_failure;
}

Status Writer::check_open(const char* what) {
  switch (m_state) {
    case State::Open:
      return {};
    case State::Fresh:
      return make_error(EINVAL, std::string("dump writer: ") + what + " before begin()");
    case State::InHash:
      return make_error(EINVAL, std::string("dump writer: ") + what + " inside a hash (call end_hash() first)");
    case State::Finished:
      return make_error(EINVAL, std::string("dump writer: ") + what + " after finish()");
    case State::Failed:
      return m_failure;
  }
  return make_error(EINVAL, "dump writer: bad state");
}

Status Writer::begin() {
  try {
    if (m_state != State::Fresh) {
      return m_state == State::Failed ? Status(m_failure) : make_error(EINVAL, "dump writer: begin() called twice");
    }
    TRY(_check_text("prefix", m_header.prefix));
    TRY(_check_text("created", m_header.created));
    TRY(_check_text("tool", m_header.tool));
    m_buf.append("{\"format\":\"");
    m_buf.append(k_format);
    const bool incremental = !m_header.base_snapshot_id.empty();
    TRY(_check_text("base_snapshot_id", m_header.base_snapshot_id));
    TRY(_check_text("base_digest", m_header.base_digest));
    m_buf.append("\",\"version\":");
    m_buf.append(std::to_string(incremental ? k_version_incremental : k_version));
    m_buf.append(",\"prefix\":");
    _append_json_string(m_buf, m_header.prefix, _escaped_size(m_header.prefix));
    m_buf.append(",\"created\":");
    _append_json_string(m_buf, m_header.created, _escaped_size(m_header.created));
    m_buf.append(",\"tool\":");
    _append_json_string(m_buf, m_header.tool, _escaped_size(m_header.tool));
    if (incremental) {
      m_buf.append(",\"base_snapshot_id\":");
      _append_json_string(m_buf, m_header.base_snapshot_id, _escaped_size(m_header.base_snapshot_id));
      m_buf.append(",\"base_digest\":");
      _append_json_string(m_buf, m_header.base_digest, _escaped_size(m_header.base_digest));
    }
    if (m_header.record_count > 0) {
      m_buf.append(",\"record_count\":");
      m_buf.append(std::to_string(m_header.record_count));
    }
    m_buf.append(",\n \"records\":[");
    m_state = State::Open;
    return flush(false);
  } catch (...) {
    return on_exception();
  }
}

void Writer::start_record(std::string_view key) {
  m_buf.append(m_records == 0 ? "\n  {\"key\":" : ",\n  {\"key\":");
  _append_json_string(m_buf, key, _escaped_size(key));
  ++m_records;
}

Status Writer::write_string(std::string_view key, std::string_view value) {
  try {
    TRY(check_open("write_string()"));
    TRY(_check_key(key));
    start_record(key);
    m_buf.append(",\"string\":");
    _append_bytes(m_buf, value);
    m_buf.push_back('}');
    m_bytes += value.size();
    m_digest.string_record(key, value);
    return flush(false);
  } catch (...) {
    return on_exception();
  }
}

Status Writer::begin_hash(std::string_view key) {
  try {
    TRY(check_open("begin_hash()"));
    TRY(_check_key(key));
    start_record(key);
    m_buf.append(",\"hash\":[");
    m_digest.hash_begin(key);
    m_first_pair = true;
    m_state = State::InHash;
    return flush(false);
  } catch (...) {
    return on_exception();
  }
}

Status Writer::hash_fields(std::span<const std::pair<std::string, std::string>> pairs) {
  try {
    if (m_state != State::InHash) {
      return m_state == State::Failed ? Status(m_failure)
                                      : make_error(EINVAL, "dump writer: hash_fields() outside a hash");
    }
    for (const auto& [field, value] : pairs) {
      m_buf.append(m_first_pair ? "[" : ",[");
      m_first_pair = false;
      _append_bytes(m_buf, field);
      m_buf.push_back(',');
      _append_bytes(m_buf, value);
      m_buf.push_back(']');
      m_bytes += field.size() + value.size();
      m_digest.hash_pair(field, value);
      if (m_buf.size() >= k_flush_bytes) {
        TRY(flush(false));
      }
    }
    return {};
  } catch (...) {
    return on_exception();
  }
}

Status Writer::end_hash() {
  try {
    if (m_state != State::InHash) {
      return m_state == State::Failed ? Status(m_failure)
                                      : make_error(EINVAL, "dump writer: end_hash() outside a hash");
    }
    m_buf.append("]}");
    m_digest.hash_end();
    m_state = State::Open;
    return flush(false);
  } catch (...) {
    return on_exception();
  }
}

Status Writer::write_delete(std::string_view key) {
  try {
    TRY(check_open("write_delete()"));
    if (m_header.base_snapshot_id.empty()) {
      return make_error(EINVAL, "dump writer: a deletion record in a full dump");
    }
    TRY(_check_key(key));
    start_record(key);
    m_buf.append(",\"delete\":true}");
    m_digest.delete_record(key);
    return flush(false);
  } catch (...) {
    return on_exception();
  }
}

Result<Trailer> Writer::finish() {
  try {
    TRY(check_open("finish()"));
    Trailer trailer{m_records, m_bytes, m_digest.hex_digest()};
    m_buf.append("\n ],\n \"trailer\":{\"records\":");
    m_buf.append(std::to_string(trailer.records));
    m_buf.append(",\"bytes\":");
    m_buf.append(std::to_string(trailer.bytes));
    m_buf.append(",\"sha256\":\"");
    m_buf.append(trailer.sha256);
    m_buf.append("\"}}\n");
    TRY(flush(true));
    m_state = State::Finished;
    return trailer;
  } catch (...) {
    return on_exception();
  }
}

}  // namespace redisfs::dump
