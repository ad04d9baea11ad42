#include "store/superblock.hpp"

#include <algorithm>
#include <charconv>

#include "util/text.hpp"

namespace redisfs {

namespace {

// A field's value for a message: at most 40 bytes, one line.
std::string _shown(std::string_view v) { return quoted(v, 40); }

}  // namespace

bool parse_canonical_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) {
    return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool is_snapshot_id(std::string_view id) {
  if (id.size() != k_snapshot_id_len) {
    return false;
  }
  for (const char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::optional<std::vector<std::string>> parse_lineage(std::string_view text) {
  std::vector<std::string> ids;
  if (text.empty()) {
    return ids;
  }
  std::size_t at = 0;
  for (;;) {
    std::size_t space = text.find(' ', at);
    std::string_view id = text.substr(at, space == std::string_view::npos ? std::string_view::npos : space - at);
    if (!is_snapshot_id(id) || ids.size() == k_max_lineage) {
      return std::nullopt;
    }
    ids.emplace_back(id);
    if (space == std::string_view::npos) {
      return ids;
    }
    at = space + 1;
  }
}

std::string extend_lineage(const std::vector<std::string>& lineage, std::string_view id) {
  std::size_t from = lineage.size() + 1 > k_max_lineage ? lineage.size() + 1 - k_max_lineage : 0;
  std::string out;
  for (std::size_t i = from; i < lineage.size(); ++i) {
    out += lineage[i];
    out += ' ';
  }
  out += id;
  return out;
}

std::string lineage_text(const std::vector<std::string>& lineage) {
  if (lineage.empty()) {
    return {};
  }
  return extend_lineage(std::vector<std::string>(lineage.begin(), lineage.end() - 1), lineage.back());
}

bool descends_from(const Superblock& b, const Superblock& a) {
  if (a.snapshot_id.empty() || a.snapshot_id == b.snapshot_id) {
    return false;
  }
  return std::find(b.lineage.begin(), b.lineage.end(), a.snapshot_id) != b.lineage.end();
}

Status check_block_size(std::uint64_t n) {
  if (n < k_min_block_size || n > k_max_block_size || (n & (n - 1)) != 0) {
    return make_error(EINVAL, "block size " + std::to_string(n) + " is not a power of two from 4 KiB to 4 MiB");
  }
  return {};
}

// What is wrong with the value of superblock field k ("" nothing, or a
// field it does not check). The lineage is superblock_issues' own.
static std::string _value_issue(std::string_view k, const std::string& v) {
  std::uint64_t n = 0;
  bool num = parse_canonical_u64(v, n);
  if (k == "format") {
    if (v != "redisfs") {
      return "format is " + _shown(v) + ", not 'redisfs'";
    }
  } else if (k == "version") {
    if (!num || n < 1 || n > static_cast<std::uint64_t>(k_format_version)) {
      std::string known = k_format_version == 1 ? "version 1" : "versions 1 to " + std::to_string(k_format_version);
      return "unsupported filesystem version " + _shown(v) + " (this build knows " + known + ")";
    }
  } else if (k == "block_size") {
    if (!num || !check_block_size(n).ok()) {
      return "block size " + _shown(v) + " is not a power of two from 4 KiB to 4 MiB";
    }
  } else if (k == "root") {
    if (v != "1") {
      return "root is " + _shown(v) + ", not 1";
    }
  } else if (k == "next_inode") {
    if (!num || n < 2 || n > k_max_inode) {
      return "next_inode " + _shown(v) + " is not a number from 2 to 2^53-1";
    }
  } else if (k == "inodes" || k == "bytes" || k == "created" || k == "snapshot_created" || k == "dumped" ||
             k == "rolled_back") {
    if (!num || n > static_cast<std::uint64_t>(INT64_MAX)) {
      return std::string(k) + " " + _shown(v) + " is not a decimal number below 2^63";
    }
  } else if (k == "read_only" || k == "security_xattrs") {
    if (v != "0" && v != "1") {
      return std::string(k) + " is " + _shown(v) + ", not 0 or 1";
    }
  } else if (k == "snapshot_id") {
    if (!is_snapshot_id(v)) {
      return "snapshot_id " + _shown(v) + " is not 32 lowercase hex digits";
    }
  } else if (k == "origin" || k == "restored_from") {
    if (!validate_prefix(v).ok()) {
      return std::string(k) + " " + _shown(v) + " is not a valid prefix";
    }
  }
  return "";
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
  std::string snapshot_id;
  std::optional<std::vector<std::string>> lineage;
  for (const auto& [k, v] : fields) {
    have_format = have_format || k == "format";
    have_version = have_version || k == "version";
    have_block_size = have_block_size || k == "block_size";
    have_next = have_next || k == "next_inode";
    have_created = have_created || k == "created";
    if (k == "snapshot_id") {
      snapshot_id = v;
    }
    if (k == "lineage") {
      lineage = parse_lineage(v);
      if (!lineage) {
        lineage.emplace();
        issue(k, "lineage " + _shown(v) + " is not up to " + std::to_string(k_max_lineage) +
                     " snapshot ids separated by single spaces");
      }
    } else if (std::string why = _value_issue(k, v); !why.empty()) {
      issue(k, std::move(why));
    }
  }
  if (is_snapshot_id(snapshot_id) && (!lineage || lineage->empty() || lineage->back() != snapshot_id)) {
    issue("lineage", "the lineage does not end with the snapshot's own id " + snapshot_id);
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

std::string describe_snapshot(std::string_view prefix, const Superblock& sb) {
  std::string out = "a read-only snapshot";
  if (!sb.origin.empty() && sb.origin != prefix) {
    out += " of '" + sb.origin + "'";
  } else if (!sb.restored_from.empty()) {
    out += " restored from a dump of '" + sb.restored_from + "'";
  }
  return out;
}

Error superblock_not_hash(const Keys& keys) {
  return make_error(EIO, "the superblock " + keys.sb() +
                             " is not a hash: the filesystem is damaged (fix or remove it " +
                             "by hand; `redisfs-snap fsck " + keys.prefix() + "` names it)");
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
    } else if (k == "rolled_back" && num) {
      sb.rolled_back_ns = static_cast<std::int64_t>(n);
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
      sb.lineage = parse_lineage(v).value_or(std::vector<std::string>{});
    }
  }
  return sb;
}

std::string filesystem_identity(std::string_view created, std::string_view snapshot_created, std::string_view dumped,
                                std::string_view rolled_back) {
  std::string out;
  out.reserve(created.size() + snapshot_created.size() + dumped.size() + rolled_back.size() + 3);
  out.append(created).append(1, '/').append(snapshot_created).append(1, '/').append(dumped);
  out.append(1, '/').append(rolled_back);
  return out;
}

}  // namespace redisfs
