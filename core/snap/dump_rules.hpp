// The rules a dump's records must follow to be a filesystem, checked record
// by record as dump::read delivers them: the one place restore
// (restore.cpp) and verify (dump_verify.cpp) take them from.
//
//   * the header's prefix is a valid prefix;
//   * every key is a filesystem key of the schema (keys.hpp), never one of
//     the running system (FREEZE, MOUNT:*, OPEN:*, ...), of the type the
//     schema says (BLK:* strings, the rest hashes);
//   * no key, and no field of a hash, comes twice; no hash is empty;
//   * one superblock (SB), of at most 1000 fields, that decodes
//     (superblock.hpp: format "redisfs", a known version, ...);
//   * no block longer than the superblock's block size.
//
// Duplicates: restore has the server find them (SET NX, EXISTS, HSET's
// count of new fields), so DumpRules looks for them only when asked to
// (`in_memory_duplicates`: dry run and verify), with sets of 64-bit hashes
// of keys and of the current hash's fields (U64Set: 8 to 16 bytes a key,
// never the names). The messages are restore's: "duplicate key 'X'",
// "duplicate field in hash 'X'".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "snap/dump_format.hpp"
#include "store/keys.hpp"
#include "util/result.hpp"
#include "store/superblock.hpp"
#include "util/u64_set.hpp"

namespace redisfs {

class DumpRules {
 public:
  explicit DumpRules(bool in_memory_duplicates) : m_in_memory(in_memory_duplicates) {}

  Status header(const dump::Header& h);
  // A record begins: `type` "string" or "hash".
  Status begin_record(std::string_view key, std::string_view type);
  Status string_value(std::string_view key, std::string_view value);
  Status hash_begin(std::string_view key);
  Status hash_fields(std::string_view key, const std::vector<std::pair<std::string, std::string>>& pairs);
  Status hash_end(std::string_view key);
  // After dump::read succeeded: what needs the whole dump.
  Status finish() const;

  const std::string& source_prefix() const { return m_source; }
  std::int64_t dumped_ns() const { return m_dumped_ns; }
  std::uint64_t records() const { return m_records; }
  KeyKind kind() const { return m_kind; }          // of the current record
  const ParsedKey& parsed() const { return m_pk; }  // likewise
  bool header_seen() const { return m_header_seen; }
  bool superblock_seen() const { return m_sb_seen; }
  const SbFields& superblock() const { return m_sb; }  // once its hash ended
  std::uint64_t block_size() const { return m_block_size; }

 private:
  bool m_in_memory;
  bool m_header_seen = false;
  std::string m_source;
  std::int64_t m_dumped_ns = 0;
  KeyKind m_kind = KeyKind::Unknown;
  ParsedKey m_pk;
  std::uint64_t m_records = 0;
  std::uint64_t m_pairs = 0;
  bool m_sb_seen = false;
  SbFields m_sb;
  std::uint64_t m_block_size = 0;
  std::uint64_t m_max_block = 0;
  std::string m_max_block_key;
  U64Set m_keys;    // in_memory_duplicates only
  U64Set m_fields;  // likewise: the current hash's
};

// What restore changes in the superblock it staged: a restored dump is a
// writable filesystem of its own (read_only 0, restored_from, dumped)
// unless `snapshot` (read_only 1), and never a snapshot of itself: origin
// and snapshot_created go, but with `snapshot` an origin (`had_origin`)
// other than `target` stays. Fields to remove, then fields to set.
struct SuperblockMarks {
  std::vector<std::string> remove;
  SbFields set;
};
SuperblockMarks restored_superblock_marks(const std::optional<std::string>& had_origin, const std::string& target,
                                          const std::string& source, std::int64_t dumped_ns, bool snapshot);
// `fields` with `marks` applied.
void apply_superblock_marks(SbFields& fields, const SuperblockMarks& marks);

// "2026-11-29T19:40:00.123Z" (a dump header's time) in ns; 0 if it is not that.
std::int64_t parse_dump_time_ns(const std::string& text);

}  // namespace redisfs
