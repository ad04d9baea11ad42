// The redisfs dump format: a portable, streamed, verifiable serialisation
// of every key of one filesystem (version 1, a full dump), or of what
// changed between two snapshots of it (version 2, an incremental dump:
// INCREMENTAL below).
//
// A dump is one JSON document (RFC 8259, UTF-8), so jq and friends read it:
//
//   {"format":"redisfs-dump","version":1,"prefix":"SKX","created":"2026-11-29T19:40:00.123Z","tool":"redisfs-snap 0.1.0",
//    "record_count":4,
//    "records":[
//     {"key":"SB","hash":[["block_size","65536"],["version","1"]]},
//     {"key":"DIR:1","hash":[["a.txt","2"],[{"base64":"/w=="},"3"]]},
//     {"key":"BLK:2:0","string":"hello"},
//     {"key":"BLK:3:0","string":{"base64":"AAEC"}}
//    ],
//    "trailer":{"records":4,"bytes":1234,"sha256":"<64 lowercase hex digits>"}}
//
// Header. "format" (always "redisfs-dump") comes first, then "version" (the
// integer 1), "prefix" (the prefix the keys were dumped from, without the
// ':'), "created" (RFC 3339 UTC time of the snapshot) and "tool", all before
// "records"; the header is these top-level members, not an object of its
// own. "record_count" (optional, an integer: dumps before it have none)
// announces how many records follow, so that a reader of a pipe can show
// progress against a total; nothing is verified against it (the trailer's
// count is). A reader ignores header members it does not know, provided
// their values are strings or numbers; that is the room left for additions
// that do not need a new version. Anything else that changes is version 2.
//
// Records. One JSON object per Redis key, one per line, in any order:
// "key" first (the key without "<prefix>:", a non-empty string without NUL
// bytes), then exactly one of "string" (a Redis string) or "hash" (a Redis
// hash, as an array of [field, value] pairs: a list rather than an object so
// that fields may be binary and duplicates are visible). Every byte string
// (a string value, a hash field, a hash value) is written as a JSON string
// when it is valid UTF-8 (and escaping would not make it larger than base64
// does), otherwise as {"base64":"..."} (RFC 4648, standard alphabet, padded).
// Readers accept either form for any byte string.
//
// Trailer. After "records", the only member left is "trailer": "records" is
// the number of records, "bytes" the total length of all string values plus
// all hash fields and hash values, and "sha256" the SHA-256 of the content in
// the following canonical framing, which does not depend on the JSON
// encoding (so re-encoding a dump, e.g. through jq, keeps it valid), nor on
// the prefix (so a dump restored under another prefix has the same digest).
// For each record, in document order:
//
//   key bytes, one 0x00 byte, then
//   a string:  's', u64 length, value bytes
//   a hash:    'h', then for each pair in document order:
//                   'p', u64 field length, field bytes, u64 value length, value bytes
//              then 'e', u64 number of pairs
//
//   a deletion (version 2 only): 'd'
//
// where u64 is an unsigned 64-bit little-endian integer. (Keys hold no NUL,
// so the key's end is unambiguous; a hash carries its pair count at its end
// because writer and reader both stream a hash without knowing its size
// beforehand.) The numbers in "version" and the trailer are integers in
// 0..2^53, the range JSON tools carry exactly. Nothing but whitespace may
// follow the document.
//
// INCREMENTAL (version 2). The header also holds "base_snapshot_id" (the
// snapshot_id of the snapshot it applies to, 32 lowercase hex digits) and
// "base_digest" (that snapshot's state digest, 64 lowercase hex digits:
// dump_incremental.hpp), both required, both before "records". Records are
// the keys that are new or changed since the base, whole, as in version 1,
// and deletions: {"key":"BLK:7:3","delete":true}, a key of the base that
// the new snapshot lacks. A full dump stays version 1, so an older reader
// still reads it; a version-1 document with a deletion record is refused.
//
// Writer streams to an std::ostream and holds at most one record (a large
// hash only one batch of its pairs). read() is a push parser over an
// std::istream: memory stays bounded by the largest single value whatever
// the size of the document, records reach the Sink as they arrive, and the
// header, every type, the counts and the checksum are verified. A dump that
// fails verification is reported with its byte offset; a consumer that must
// be all-or-nothing (restore) commits only after read() succeeds. read()
// does not look for duplicate keys or hash fields, which would take memory
// in proportion to the data; a consumer can (e.g. compare HLEN with the
// number of pairs it received).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.hpp"
#include "util/sha256.hpp"

namespace redisfs::dump {

inline constexpr int k_version = 1;              // a full dump
inline constexpr int k_version_incremental = 2;  // an incremental dump (below)
inline constexpr const char* k_format = "redisfs-dump";
inline constexpr uint64_t k_max_number = 1ull << 53;

// Appends `s` as the records write every byte string: a JSON string when
// it is valid UTF-8 (and not much longer escaped), else {"base64":"..."}.
// (diff --json writes its paths the same way.)
void append_json_bytes(std::string& out, std::string_view s);

struct Header {
  std::string prefix;
  std::string created;
  std::string tool;
  uint64_t record_count = 0;  // "record_count": records announced; 0 = not given
  int version = k_version;    // what read() found; the Writer writes 2 when base_snapshot_id is set
  std::string base_snapshot_id{};  // incremental: the snapshot it applies to
  std::string base_digest{};       // incremental: that snapshot's state digest (dump_incremental.hpp)
};

struct Trailer {
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::string sha256;
};

// The canonical framing described above, fed incrementally.
class ContentDigest {
 public:
  void string_record(std::string_view key, std::string_view value);
  void hash_begin(std::string_view key);
  void hash_pair(std::string_view field, std::string_view value);
  void hash_end();
  void delete_record(std::string_view key);
  std::string hex_digest() const { return m_sha.hex_digest(); }

 private:
  void put_u64(uint64_t v);

  Sha256 m_sha;
  uint64_t m_pairs = 0;
};

class Writer {
 public:
  Writer(std::ostream& out, Header header);

  Status begin();
  Status write_string(std::string_view key, std::string_view value);
  Status begin_hash(std::string_view key);
  Status hash_fields(std::span<const std::pair<std::string, std::string>> pairs);
  Status end_hash();
  // An incremental dump's deletion record (header.base_snapshot_id set).
  Status write_delete(std::string_view key);
  Result<Trailer> finish();

 private:
  enum class State { Fresh, Open, InHash, Finished, Failed };

  Status check_open(const char* what);
  void start_record(std::string_view key);
  Status flush(bool force);
  Error on_exception();

  std::ostream& m_out;
  Header m_header;
  State m_state = State::Fresh;
  std::string m_buf;
  ContentDigest m_digest;
  uint64_t m_records = 0;
  uint64_t m_bytes = 0;
  bool m_first_pair = true;
  Error m_failure;
};

// Where the reader is when it calls a Sink: the bytes read so far and the
// index of the record (as the reader's own messages count them).
struct Position {
  uint64_t byte = 0;
  uint64_t record = 0;
};

// A fault that a sink finds after the reader moved on (a restore hears of a
// duplicate key from the server a batch behind) names the record it belongs
// to as the reader's messages do: "dump: at byte B: record R (key "K"): what".
// read() passes such a message on as it is (is_placed).
Error fault_at(int code, Position at, std::string_view key, std::string_view what);
bool is_placed(const Error& e);

// Receives the records of a dump as read() parses them, in document order:
// on_header once, then per record on_string, or on_hash_begin, zero or more
// on_hash_fields (batches of at most k_hash_batch_pairs pairs and about
// 8 MiB) and on_hash_end. An error returned by any call stops read() at once.
// Everything a Sink receives is unverified until read() returns success.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status on_header(const Header&) = 0;
  virtual Status on_string(std::string_view key, std::string&& value) = 0;
  virtual Status on_hash_begin(std::string_view key) = 0;
  virtual Status on_hash_fields(std::string_view key, std::vector<std::pair<std::string, std::string>>&& pairs) = 0;
  virtual Status on_hash_end(std::string_view key) = 0;
  // A deletion record (only in an incremental dump, version 2).
  virtual Status on_delete(std::string_view key) {
    return make_error(EINVAL, "deletion record for key '" + std::string(key) + "': this reader takes full dumps only");
  }
  // Before each on_string, on_hash_begin, on_hash_fields and on_delete:
  // where the reader is (for fault_at).
  virtual void at(Position) {}
};

inline constexpr size_t k_hash_batch_pairs = 1024;

struct ReadLimits {
  uint64_t max_value_bytes = 64ull << 20;  // per byte string (key, value, hash field), decoded
};

// Errors are EINVAL with a one-line message naming the byte offset, except
// a Sink's own error, which keeps its code (its message gains the offset).
Result<Trailer> read(std::istream& in, Sink& sink, ReadLimits limits = {});

}  // namespace redisfs::dump
