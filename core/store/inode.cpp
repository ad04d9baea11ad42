#include "store/inode.hpp"

#include <charconv>
#include <chrono>

namespace redisfs {

namespace {
struct TypeName {
  std::string_view name;
  std::uint32_t bits;
};
constexpr TypeName k_types[] = {
    {"file", S_IFREG}, {"dir", S_IFDIR}, {"symlink", S_IFLNK}, {"fifo", S_IFIFO},
    {"chr", S_IFCHR},  {"blk", S_IFBLK}, {"sock", S_IFSOCK},
};
}  // namespace

std::optional<std::uint32_t> type_bits(std::string_view name) {
  for (const auto& t : k_types) {
    if (t.name == name) {
      return t.bits;
    }
  }
  return std::nullopt;
}

std::string_view type_name(std::uint32_t mode) {
  for (const auto& t : k_types) {
    if ((mode & S_IFMT) == t.bits) {
      return t.name;
    }
  }
  return "file";
}

std::string format_mode(std::uint32_t mode) {
  char buf[16];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, mode & 07777, 8);
  std::string digits(buf, p);
  while (digits.size() < 4) {
    digits.insert(digits.begin(), '0');
  }
  return digits;
}

template <class T>
static bool _num(std::string_view s, T& out, int base = 10) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// The fields decode_attr found.
struct Present {
  bool type = false, mode = false, uid = false, gid = false, size = false, target = false;
};

// The fields no inode goes without: a type and mode; who may reach it and
// how much data it holds are never read as 0 either (a setuid file with no
// owner is not root's, a file with no size is not empty; fsck --repair
// sets them: redisfs-snap(1)).
static Status _check_present(Ino ino, const Present& have) {
  for (auto [has, name] :
       {std::pair{have.type, "type"}, {have.mode, "mode"}, {have.uid, "uid"}, {have.gid, "gid"}, {have.size, "size"}}) {
    if (!has) {
      return make_error(EIO, "inode " + std::to_string(ino) + ": no '" + name + "' field");
    }
  }
  return {};
}

// The rules a decoded inode's values follow beyond their syntax.
static Status _check_attr(const Attr& a, bool have_target) {
  const std::string where = "inode " + std::to_string(a.ino) + ": ";
  if (a.size > k_max_file_size) {
    return make_error(EIO, where + "size " + std::to_string(a.size) + " is above the largest file size (2^50)");
  }
  if (a.uid == k_no_id || a.gid == k_no_id) {
    // (uid_t)-1 is no owner to the kernel: even root is refused access.
    return make_error(EIO, where + (a.uid == k_no_id ? "uid" : "gid") + " 4294967295 is not an owner");
  }
  if (a.gen > k_max_gen) {
    // dir_changed (prelude.lua) counts it with HINCRBY: past 2^63 every
    // change to the directory would fail; past 2^53 Lua miscounts it.
    return make_error(EIO, where + "gen " + std::to_string(a.gen) + " is not below 2^53");
  }
  if (a.is_symlink()) {
    if (!have_target) {
      return make_error(EIO, where + "a symlink without a target");
    }
    if (Status target = check_symlink_target(a.target); !target.ok()) {
      return make_error(EIO, where + target.error().message);
    }
  }
  return {};
}

Status check_symlink_target(std::string_view target) {
  if (target.empty()) {
    return make_error(EIO, "a symlink without a target");
  }
  if (target.size() > k_symlink_max) {
    return make_error(
        EIO, "symlink target of " + std::to_string(target.size()) + " bytes, longer than the kernel accepts (4095)");
  }
  if (target.find('\0') != std::string_view::npos) {
    return make_error(EIO, "symlink target holds a NUL byte");
  }
  return {};
}

void LeftOut::add(std::string_view n, const Error& refusal) {
  if (count++ == 0) {
    name = std::string(n.substr(0, 256));
    why = refusal.message;
  }
}

Result<Attr> decode_attr(Ino ino, const FieldList& fields) {
  Attr a;
  a.ino = ino;
  Present have;
  bool bytes_bad = false;
  bool ok = true;
  std::string_view bad;
  for (const auto& [k, v] : fields) {
    bool good = true;
    if (k == "type") {
      auto t = type_bits(v);
      good = t.has_value();
      if (good) {
        a.mode |= *t;
        have.type = true;
      }
    } else if (k == "mode") {
      std::uint32_t m = 0;
      good = _num(v, m, 8) && m <= 07777;
      a.mode |= m;
      have.mode = good;
    } else if (k == "uid") {
      good = _num(v, a.uid);
      have.uid = true;
    } else if (k == "gid") {
      good = _num(v, a.gid);
      have.gid = true;
    } else if (k == "size") {
      good = _num(v, a.size);
      have.size = true;
    } else if (k == "nlink") {
      long long n = 0;  // may transiently read negative if a script misbehaved
      good = _num(v, n);
      a.nlink = n < 0 ? 0 : static_cast<std::uint64_t>(n);
    } else if (k == "rdev") {
      good = _num(v, a.rdev);
    } else if (k == "bytes") {
      // Accounting alone (st_blocks), which fsck --repair recomputes: a
      // damaged value makes no file unreadable, and counts as its size.
      long long n = 0;
      bytes_bad = !_num(v, n);
      a.bytes = n < 0 ? 0 : static_cast<std::uint64_t>(n);
    } else if (k == "atime") {
      good = _num(v, a.atime_ns);
    } else if (k == "mtime") {
      good = _num(v, a.mtime_ns);
    } else if (k == "ctime") {
      good = _num(v, a.ctime_ns);
    } else if (k == "parent") {
      good = _num(v, a.parent);
    } else if (k == "gen") {
      good = _num(v, a.gen);
    } else if (k == "target") {
      a.target = std::string(v);
      have.target = true;
    }
    if (!good && ok) {
      ok = false;
      bad = k;
    }
  }
  if (!ok) {
    return make_error(EIO, "inode " + std::to_string(ino) + ": malformed field '" + std::string(bad) + "'");
  }
  TRY(_check_present(ino, have));
  if (bytes_bad) {
    a.bytes = a.size;
  }
  TRY(_check_attr(a, have.target));
  return a;
}

Status check_file_name(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return make_error(EINVAL, "invalid file name");
  }
  if (name.size() > k_name_max) {
    return make_error(ENAMETOOLONG, "file name longer than 255 bytes");
  }
  return {};
}

// Linux knows four namespaces; a name in none of them is EOPNOTSUPP, as
// local filesystems answer.
Status check_xattr_name(std::string_view name) {
  if (name.empty()) {
    return make_error(EINVAL, "empty attribute name");
  }
  if (name.find('\0') != std::string_view::npos) {
    return make_error(EINVAL, "attribute name holds a NUL byte");
  }
  bool known = false;
  for (std::string_view ns : {"user.", "trusted.", "security.", "system."}) {
    known = known || (name.starts_with(ns) && name.size() > ns.size());
  }
  if (!known) {
    return make_error(EOPNOTSUPP, "attribute names must start with user., trusted., security. or system.");
  }
  if (name == "system.posix_acl_access" || name == "system.posix_acl_default") {
    // Not enforced, so never stored (the kernel would not read them back).
    return make_error(EOPNOTSUPP, "POSIX ACLs are not supported");
  }
  if (name.size() > k_xattr_name_max) {
    return make_error(ERANGE, "attribute name longer than 255 bytes");
  }
  return {};
}

static timespec _ts(std::int64_t ns) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(ns / 1000000000);
  t.tv_nsec = static_cast<long>(ns % 1000000000);
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    t.tv_sec -= 1;
  }
  return t;
}

struct stat Attr::to_stat(std::uint32_t block_size) const {
  struct stat st{};
  st.st_ino = ino;
  st.st_mode = mode;
  st.st_nlink = nlink;
  st.st_uid = uid;
  st.st_gid = gid;
  st.st_rdev = rdev;
  st.st_size = static_cast<off_t>(size);
  st.st_blksize = block_size;
  st.st_blocks = static_cast<blkcnt_t>((bytes + 511) / 512);
  st.st_atim = _ts(atime_ns);
  st.st_mtim = _ts(mtime_ns);
  st.st_ctim = _ts(ctime_ns);
  return st;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_time_ns(std::int64_t ns) { return std::to_string(ns); }

}  // namespace redisfs
