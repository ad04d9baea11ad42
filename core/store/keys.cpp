#include "store/keys.hpp"

#include <algorithm>

#include "util/text.hpp"

namespace redisfs {

Status validate_prefix(std::string_view prefix) {
  if (prefix.empty()) {
    return make_error(EINVAL, "prefix must not be empty");
  }
  if (prefix.size() > 200) {
    return make_error(EINVAL, "prefix is longer than 200 bytes");
  }
  for (unsigned char c : prefix) {
    if (c == ':' || c == '*' || c == '?' || c == '[' || c == ']' || c == '\\' || c <= ' ' || c == 0x7f) {
      std::string shown;
      for (unsigned char d : prefix) {
        if (d < ' ' || d >= 0x7f) {
          static const char* k_hex = "0123456789abcdef";
          shown += std::string("\\x") + k_hex[d >> 4] + k_hex[d & 15];
        } else {
          shown.push_back(static_cast<char>(d));
        }
      }
      return make_error(EINVAL, "invalid prefix '" + shown +
                                    "': it may not contain ':', '*', '?', '[', ']', '\\', whitespace or control characters");
    }
  }
  auto open = prefix.find('{');
  auto close = prefix.find('}');
  if (open != std::string_view::npos || close != std::string_view::npos) {
    if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2 ||
        prefix.find('{', open + 1) != std::string_view::npos || prefix.find('}', close + 1) != std::string_view::npos) {
      return make_error(EINVAL, "invalid prefix '" + std::string(prefix) +
                                    "': braces make one Redis Cluster hash tag, like {fs1} or {fs1}-monday");
    }
    if (close - open - 1 > k_max_hash_tag) {
      // The temporary prefixes of copies, dumps and restores keep the tag
      // whole within 200 bytes (make_temp_prefix).
      return make_error(EINVAL, "invalid prefix: its hash tag is longer than " + std::to_string(k_max_hash_tag) +
                                    " bytes");
    }
  }
  return {};
}

Status normalize_prefix(std::string& prefix) {
  if (prefix.size() > 1 && prefix.back() == ':') {
    prefix.pop_back();
  }
  return validate_prefix(prefix);
}

std::optional<std::string_view> hash_tag(std::string_view prefix) {
  auto open = prefix.find('{');
  auto close = prefix.find('}', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2) {
    return std::nullopt;
  }
  return prefix.substr(open + 1, close - open - 1);
}

Status check_cluster_prefix(std::string_view prefix) {
  if (!hash_tag(prefix)) {
    return make_error(EINVAL, "prefix '" + std::string(prefix) +
                                  "' has no hash tag, and the server is a Redis Cluster: a filesystem's keys must "
                                  "share one slot, so give its prefix one, e.g. '{" +
                                  std::string(prefix) + "}'");
  }
  return {};
}

Keys::Keys(std::string prefix) : m_prefix(std::move(prefix)), m_colon(m_prefix + ':') {}

bool is_cow_staging(std::string_view prefix, std::string_view staging) {
  constexpr std::size_t k_hex = 16;
  if (!validate_prefix(staging).ok() || staging.size() <= k_hex) {
    return false;
  }
  std::string_view hex = staging.substr(staging.size() - k_hex);
  if (!std::all_of(hex.begin(), hex.end(), [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); })) {
    return false;
  }
  std::string_view rest = staging.substr(0, staging.size() - k_hex);
  std::string_view base;
  for (std::string_view tag : {std::string_view("~copy~"), std::string_view("~dump~")}) {
    if (rest.size() > tag.size() && rest.ends_with(tag)) {
      base = rest.substr(0, rest.size() - tag.size());
    }
  }
  if (base.empty()) {
    return false;
  }
  if (base == prefix) {
    return true;
  }
  // A long prefix is cut to fit, keeping its hash tag (its slot).
  return staging.size() >= 190 && prefix.size() > base.size() && hash_tag(base) == hash_tag(prefix) &&
         (prefix.starts_with(base) || hash_tag(prefix).has_value());
}

static std::string _num(std::uint64_t n) { return std::to_string(n); }

std::string Keys::sb() const { return m_colon + "SB"; }
std::string Keys::inode(Ino ino) const { return m_colon + "INODE:" + _num(ino); }
std::string Keys::dir(Ino ino) const { return m_colon + "DIR:" + _num(ino); }
std::string Keys::xattr(Ino ino) const { return m_colon + "XATTR:" + _num(ino); }
std::string Keys::block(Ino ino, std::uint64_t index) const {
  return m_colon + "BLK:" + _num(ino) + ':' + _num(index);
}
std::string Keys::orphans() const { return m_colon + "ORPHANS"; }
std::string Keys::freeze() const { return m_colon + "FREEZE"; }
std::string Keys::cow() const { return m_colon + "COW"; }
std::string Keys::changed() const { return m_colon + "CHANGED"; }
std::string changed_since_member(std::string_view snapshot_id) { return "since:" + std::string(snapshot_id); }
std::string Keys::touched() const { return m_colon + "TOUCHED"; }
std::string Keys::reserved() const { return m_colon + "RESERVED"; }
std::string Keys::installing() const { return m_colon + "INSTALLING"; }
std::string Keys::mount(std::string_view session) const { return m_colon + "MOUNT:" + std::string(session); }
std::string Keys::mounts() const { return m_colon + "MOUNTS"; }
std::string mount_registration(int format_version, std::string_view info) {
  return "v" + std::to_string(format_version) + " " + std::string(info);
}
std::string_view mount_info(std::string_view registration) {
  std::size_t digits = 1;
  while (digits < registration.size() && registration[digits] >= '0' && registration[digits] <= '9') {
    ++digits;
  }
  if (registration.starts_with('v') && digits > 1 && digits < registration.size() && registration[digits] == ' ') {
    return registration.substr(digits + 1);
  }
  return registration;
}
std::string Keys::writeback() const { return m_colon + "WRITEBACK"; }
std::string Keys::sync() const { return m_colon + "SYNC"; }
std::string Keys::temp(std::string_view session, std::uint64_t n) const {
  return m_colon + "TMP:" + std::string(session) + ':' + _num(n);
}
std::string Keys::open(Ino ino) const { return m_colon + "OPEN:" + _num(ino); }
std::string Keys::match_all() const { return m_colon + '*'; }
std::string Keys::op_log(std::string_view session) const { return m_colon + "OPLOG:" + std::string(session); }
std::string Keys::match_opens() const { return m_colon + "OPEN:*"; }

std::optional<std::string_view> Keys::relative(std::string_view key) const {
  if (key.size() <= m_colon.size() || key.substr(0, m_colon.size()) != m_colon) {
    return std::nullopt;
  }
  return key.substr(m_colon.size());
}

std::string Keys::absolute(std::string_view relative) const { return m_colon + std::string(relative); }

// Parses a canonical decimal (no sign, no leading zero unless "0").
static bool _parse_canonical_u64(std::string_view s, std::uint64_t& out) {
  return s.size() <= 19 && (s.size() == 1 || !s.starts_with('0')) && parse_u64(s, out);
}

ParsedKey parse_relative_key(std::string_view rel) {
  ParsedKey k;
  if (rel == "SB") {
    k.kind = KeyKind::Superblock;
  } else if (rel == "ORPHANS") {
    k.kind = KeyKind::Orphans;
  } else if (rel == "FREEZE") {
    k.kind = KeyKind::Freeze;
  } else if (rel == "COW") {
    k.kind = KeyKind::Cow;
  } else if (rel == "CHANGED") {
    k.kind = KeyKind::Changed;
  } else if (rel == "TOUCHED") {
    k.kind = KeyKind::Touched;
  } else if (rel == "RESERVED") {
    k.kind = KeyKind::Reserved;
  } else if (rel == "INSTALLING") {
    k.kind = KeyKind::Installing;
  } else if (rel == "MOUNTS") {
    k.kind = KeyKind::Mounts;
  } else if (rel == "WRITEBACK") {
    k.kind = KeyKind::Writeback;
  } else if (rel == "SYNC") {
    k.kind = KeyKind::Sync;
  } else if (rel.starts_with("MOUNT:") && rel.size() > 6) {
    k.kind = KeyKind::Mount;
  } else if (rel.starts_with("OPLOG:") && rel.size() > 6) {
    k.kind = KeyKind::OpLog;
  } else if (rel.starts_with("TMP:") && rel.size() > 4) {
    k.kind = KeyKind::Temp;
  } else if (rel.starts_with("OPEN:") && _parse_canonical_u64(rel.substr(5), k.ino) && k.ino > 0) {
    k.kind = KeyKind::Open;
  } else if (rel.starts_with("INODE:") && _parse_canonical_u64(rel.substr(6), k.ino) && k.ino > 0) {
    k.kind = KeyKind::Inode;
  } else if (rel.starts_with("DIR:") && _parse_canonical_u64(rel.substr(4), k.ino) && k.ino > 0) {
    k.kind = KeyKind::Dir;
  } else if (rel.starts_with("XATTR:") && _parse_canonical_u64(rel.substr(6), k.ino) && k.ino > 0) {
    k.kind = KeyKind::Xattr;
  } else if (rel.starts_with("BLK:")) {
    std::string_view rest = rel.substr(4);
    auto colon = rest.find(':');
    if (colon != std::string_view::npos && _parse_canonical_u64(rest.substr(0, colon), k.ino) && k.ino > 0 &&
        _parse_canonical_u64(rest.substr(colon + 1), k.index)) {
      k.kind = KeyKind::Block;
    }
  }
  if (k.kind == KeyKind::Unknown) {
    k.ino = 0;
    k.index = 0;
  }
  return k;
}

bool is_filesystem_key(KeyKind kind) {
  switch (kind) {
    case KeyKind::Superblock:
    case KeyKind::Inode:
    case KeyKind::Dir:
    case KeyKind::Xattr:
    case KeyKind::Block:
    case KeyKind::Orphans:
      return true;
    default:
      return false;
  }
}

bool is_running_system_key(KeyKind kind) {
  return kind != KeyKind::Unknown && kind != KeyKind::Changed && !is_filesystem_key(kind);
}

std::string_view expected_type(KeyKind kind) {
  return kind == KeyKind::Block ? "string" : "hash";
}

}  // namespace redisfs
