#include "superblock.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "text.hpp"

namespace redisfs {

namespace {

// A field's value for a message: at most 40 bytes, one line.
std::string _shown(std::string_view v) { return quoted(v, 40); }

bool _is_id(std::string_view s);

// The lineage field's ids; nullopt unless it is ids separated by single
// spaces (an empty field: none).
std::optional<std::vector<std::string>> _split_lineage(std::string_view v) {
  std::vector<std::string> ids;
  std::size_t at = 0;
  while (at < v.size()) {
    std::size_t end = std::min(v.find(' ', at), v.size());
    if (!_is_id(v.substr(at, end - at)) || end + 1 == v.size()) {
      return std::nullopt;
    }
    ids.emplace_back(v.substr(at, end - at));
    at = end + 1;
  }
  return ids;
}

bool _is_id(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char ch) {
           return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
         });
}

}  // namespace

bool parse_canonical_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) {
    return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status check_block_size(std::uint64_t n) {
  if (n < k_min_block_size || n > k_max_block_size || (n & (n - 1)) != 0) {
    return make_error(EINVAL, "block size " + std::to_string(n) + " is not a power of two from 4 KiB to 4 MiB");
  }
  return {};
}

std::vector<SuperblockIssue> superblock_issues(const SbFields& fields) {
  std::vector<SuperblockIssue> issues;
  auto issue = [&](std::string_view field, std::string detail) {
    issues.push_back(SuperblockIssue{std::string(field), std::move(detail)});
  };
  bool have_format = false;
  bool have_version = false;
  bool have_block_size = false;
  bool have_next = false;
  bool have_created = false;
  for (const auto& [k, v] : fields) {
    std::uint64_t n = 0;
    bool num = parse_canonical_u64(v, n);
    if (k == "format") {
      have_format = true;
      if (v != "redisfs") {
        issue(k, "format is " + _shown(v) + ", not 'redisfs'");
      }
    } else if (k == "version") {
      have_version = true;
      if (!num || n < 1 || n > static_cast<std::uint64_t>(k_format_version)) {
        std::string known = k_format_version == 1 ? "version 1" : "versions 1 to " + std::to_string(k_format_version);
        issue(k, "unsupported filesystem version " + _shown(v) + " (this build knows " + known + ")");
      }
    } else if (k == "block_size") {
      have_block_size = true;
      if (!num || !check_block_size(n).ok()) {
        issue(k, "block size " + _shown(v) + " is not a power of two from 4 KiB to 4 MiB");
      }
    } else if (k == "root") {
      if (v != "1") {
        issue(k, "root is " + _shown(v) + ", not 1");
      }
    } else if (k == "next_inode") {
      have_next = true;
      if (!num || n < 2 || n > k_max_inode) {
        issue(k, "next_inode " + _shown(v) + " is not a number from 2 to 2^53-1");
      }
    } else if (k == "inodes" || k == "bytes" || k == "created" || k == "snapshot_created" || k == "dumped" ||
               k == "rolled_back") {
      have_created = have_created || k == "created";
      if (!num || n > static_cast<std::uint64_t>(INT64_MAX)) {
        issue(k, std::string(k) + " " + _shown(v) + " is not a decimal number below 2^63");
      }
    } else if (k == "read_only" || k == "security_xattrs") {
      if (v != "0" && v != "1") {
        issue(k, std::string(k) + " is " + _shown(v) + ", not 0 or 1");
      }
    } else if (k == "origin" || k == "restored_from") {
      if (!validate_prefix(v).ok()) {
        issue(k, std::string(k) + " " + _shown(v) + " is not a valid prefix");
      }
    } else if (k == "snapshot_id") {
      if (!is_snapshot_id(v)) {
        issue(k, "snapshot_id " + _shown(v) + " is not 32 lowercase hex digits");
      }
    } else if (k == "lineage") {
      auto ids = _split_lineage(v);
      if (!ids || ids->size() > k_max_lineage) {
        issue(k, "lineage " + _shown(v) + " is not at most " + std::to_string(k_max_lineage) +
                     " snapshot ids separated by single spaces");
      }
    }
  }
  if (!have_format) {
    issue("format", "no format field");
  }
  if (!have_version) {
    issue("version", "no version field");
  }
  if (!have_block_size) {
    issue("block_size", "no block_size field");
  }
  if (!have_next) {
    issue("next_inode", "no next_inode field");
  }
  if (!have_created) {
    // What a mount tells its filesystem from another one by (a delete, a
    // restore over it): every mkfs writes it.
    issue("created", "no created field");
  }
  return issues;
}

bool is_snapshot_id(std::string_view s) { return _is_id(s); }

bool descends_from(const Superblock& b, const Superblock& a) {
  return !a.snapshot_id.empty() && a.snapshot_id != b.snapshot_id &&
         std::find(b.lineage.begin(), b.lineage.end(), a.snapshot_id) != b.lineage.end();
}

std::string lineage_field(std::vector<std::string> lineage, std::string_view id) {
  if (!id.empty()) {
    lineage.emplace_back(id);
  }
  std::size_t from = lineage.size() > k_max_lineage ? lineage.size() - k_max_lineage : 0;
  std::string out;
  for (std::size_t i = from; i < lineage.size(); ++i) {
    out += (out.empty() ? "" : " ") + lineage[i];
  }
  return out;
}

std::string describe_snapshot(std::string_view prefix, const Superblock& sb) {
  std::string out = "a read-only snapshot";
  if (!sb.origin.empty() && sb.origin != prefix) {
    out += " of '" + sb.origin + "'";
  } else if (!sb.restored_from.empty()) {
    out += " restored from a dump of '" + sb.restored_from + "'";
  }
  return out;
}

Result<Superblock> decode_superblock(std::string_view prefix, const SbFields& fields) {
  const std::string where = "prefix '" + std::string(prefix) + "'";
  if (fields.empty()) {
    return make_error(ENOENT, "no filesystem at " + where);
  }
  auto issues = superblock_issues(fields);
  if (!issues.empty()) {
    std::string more = issues.size() > 1 ? " (and " + std::to_string(issues.size() - 1) + " more)" : "";
    return make_error(EINVAL, where + ": bad superblock: " + issues.front().detail + more +
                                  "; see `redisfs-snap fsck " + std::string(prefix) + "`");
  }
  Superblock sb;
  for (const auto& [k, v] : fields) {
    std::uint64_t n = 0;
    bool num = parse_canonical_u64(v, n);
    if (k == "version") {
      sb.version = static_cast<int>(n);
    } else if (k == "block_size") {
      sb.block_size = static_cast<std::uint32_t>(n);
    } else if (k == "next_inode") {
      sb.next_inode = n;
    } else if (k == "inodes" && num) {
      sb.inodes = n;
    } else if (k == "bytes" && num) {
      sb.bytes = n;
    } else if (k == "created" && num) {
      sb.created_ns = static_cast<std::int64_t>(n);
    } else if (k == "snapshot_created" && num) {
      sb.snapshot_created_ns = static_cast<std::int64_t>(n);
    } else if (k == "dumped" && num) {
      sb.dumped_ns = static_cast<std::int64_t>(n);
    } else if (k == "read_only") {
      sb.read_only = v == "1";
    } else if (k == "security_xattrs") {
      sb.security_xattrs = v == "1";
    } else if (k == "origin") {
      sb.origin = v;
    } else if (k == "restored_from") {
      sb.restored_from = v;
    } else if (k == "snapshot_id") {
      sb.snapshot_id = v;
    } else if (k == "lineage") {
      sb.lineage = _split_lineage(v).value_or(std::vector<std::string>());
    } else if (k == "rolled_back" && num) {
      sb.rolled_back_ns = static_cast<std::int64_t>(n);
    }
  }
  return sb;
}

}  // namespace redisfs
