// The record rules of a dump (dump_rules.hpp), shared by restore and verify.
#include "snap/dump_rules.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <limits>

#include "snap/snapshot.hpp"
#include "util/text.hpp"

namespace redisfs {

namespace {

std::uint64_t _hash64(std::string_view s) { return std::hash<std::string_view>{}(s); }

// 'key' for messages: bounded, one line (text.hpp).

constexpr std::size_t k_max_sb_fields = 1000;

}  // namespace

std::int64_t parse_dump_time_ns(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &millis, &z) != 8 ||
      z != 'Z' || tm.tm_year < 1970) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t t = timegm(&tm);
  if (t < 0 || t >= std::numeric_limits<std::int64_t>::max() / 1000000000 - 1) {
    return 0;  // (past 2262: not a time in nanoseconds)
  }
  return static_cast<std::int64_t>(t) * 1000000000 + static_cast<std::int64_t>(millis) * 1000000;
}

SuperblockMarks restored_superblock_marks(const std::optional<std::string>& had_origin, const std::string& target,
                                          const std::string& source, std::int64_t dumped_ns, bool snapshot) {
  SuperblockMarks m;
  bool keep_origin = snapshot && had_origin && *had_origin != target;
  if (!keep_origin) {
    m.remove = {"origin", "snapshot_created"};
  }
  m.set.emplace_back("read_only", snapshot ? "1" : "0");
  m.set.emplace_back("restored_from", source);
  if (dumped_ns > 0) {
    m.set.emplace_back("dumped", std::to_string(dumped_ns));
  } else {
    m.remove.emplace_back("dumped");
  }
  return m;
}

void apply_superblock_marks(SbFields& fields, const SuperblockMarks& marks) {
  std::erase_if(fields, [&](const auto& kv) {
    return std::find(marks.remove.begin(), marks.remove.end(), kv.first) != marks.remove.end();
  });
  for (const auto& [k, v] : marks.set) {
    auto at = std::find_if(fields.begin(), fields.end(), [&](const auto& kv) { return kv.first == k; });
    if (at != fields.end()) {
      at->second = v;
    } else {
      fields.emplace_back(k, v);
    }
  }
}

Status DumpRules::header(const dump::Header& h) {
  if (auto st = validate_prefix(h.prefix); !st.ok()) {
    return make_error(EINVAL, "the header's prefix is not valid: " + st.error().message);
  }
  m_header_seen = true;
  m_source = h.prefix;
  m_dumped_ns = parse_dump_time_ns(h.created);
  return {};
}

Status DumpRules::begin_record(std::string_view key, std::string_view type) {
  if (!m_header_seen) {
    return make_error(EINVAL, "record before the header");
  }
  m_pk = parse_relative_key(key);
  if (is_running_system_key(m_pk.kind)) {
    return make_error(EINVAL, "key " + redisfs::quoted(key) + " describes a running system, not a filesystem");
  }
  if (!is_filesystem_key(m_pk.kind)) {
    return make_error(EINVAL, "key " + redisfs::quoted(key) + " is not a key of the redisfs schema");
  }
  if (expected_type(m_pk.kind) != type) {
    return make_error(EINVAL, "key " + redisfs::quoted(key) + " must be a " + std::string(expected_type(m_pk.kind)) +
                                  ", not a " + std::string(type));
  }
  m_kind = m_pk.kind;
  ++m_records;
  if (m_in_memory && !m_keys.insert(_hash64(key))) {
    return make_error(EINVAL, "duplicate key " + redisfs::quoted(key));
  }
  return {};
}

Status DumpRules::string_value(std::string_view key, std::string_view value) {
  if (m_kind == KeyKind::Block && value.size() > m_max_block) {
    m_max_block = value.size();
    m_max_block_key = std::string(key);
  }
  return {};
}

Status DumpRules::hash_begin(std::string_view) {
  m_pairs = 0;
  m_fields.clear();
  if (m_kind == KeyKind::Superblock) {
    if (m_sb_seen) {
      return make_error(EINVAL, "duplicate key 'SB'");
    }
    m_sb_seen = true;
    m_sb.clear();
  }
  return {};
}

Status DumpRules::hash_fields(std::string_view key, const std::vector<std::pair<std::string, std::string>>& pairs) {
  m_pairs += pairs.size();
  if (m_kind == KeyKind::Superblock) {
    if (m_sb.size() + pairs.size() > k_max_sb_fields) {
      return make_error(EINVAL, "the superblock has more than 1000 fields");
    }
    m_sb.insert(m_sb.end(), pairs.begin(), pairs.end());
  }
  if (m_in_memory) {
    for (const auto& p : pairs) {
      if (!m_fields.insert(_hash64(p.first))) {
        return make_error(EINVAL, "duplicate field in hash " + redisfs::quoted(key));
      }
    }
  }
  return {};
}

Status DumpRules::hash_end(std::string_view key) {
  if (m_pairs == 0) {
    return make_error(EINVAL, "hash " + redisfs::quoted(key) + " is empty (Redis has no empty hashes)");
  }
  if (m_kind == KeyKind::Superblock) {
    TRY_ASSIGN(Superblock sb, decode_superblock(m_source, m_sb));
    m_block_size = sb.block_size;
  }
  m_fields.clear();
  return {};
}

Status DumpRules::finish() const {
  if (!m_sb_seen) {
    return make_error(EINVAL, "the dump has no superblock (key 'SB')");
  }
  if (m_max_block > m_block_size) {
    return make_error(EINVAL, "block " + redisfs::quoted(m_max_block_key) + " holds " + std::to_string(m_max_block) +
                                  " bytes, more than the block size " + std::to_string(m_block_size));
  }
  return {};
}

}  // namespace redisfs
