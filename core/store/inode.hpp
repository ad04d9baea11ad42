// Attr: one inode as the filesystem sees it, and its codec to and from the
// INODE hash (see keys.hpp). Pure: no I/O, unit-tested on its own.
//
// The hash is meant to be read by people (`redis-cli hgetall SKX:INODE:5`):
//   type   file | dir | symlink | fifo | chr | blk | sock
//   mode   permission bits in octal, e.g. 0644 or 2755 (no type bits)
//   uid gid size nlink rdev bytes (stored bytes)   decimal
//   atime mtime ctime                               ns since the epoch
//   parent (directories)  target (symlinks)
//
// The decoder rejects what the daemon could not serve (a size past
// k_max_file_size, a symlink target the kernel refuses), so the daemon and
// fsck agree on what an inode is: fsck reports what decode_attr rejects.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/keys.hpp"
#include "util/result.hpp"

namespace redisfs {

inline constexpr std::size_t k_name_max = 255;          // bytes of a file name
inline constexpr std::size_t k_symlink_max = 4095;      // bytes of a symlink target (PATH_MAX - 1)
inline constexpr std::size_t k_xattr_name_max = 255;
inline constexpr std::size_t k_xattr_value_max = 64 * 1024;
inline constexpr std::uint64_t k_max_file_size = 1ull << 50;  // 1 PiB: within a Lua double
inline constexpr std::uint64_t k_max_gen = (1ull << 53) - 1;     // a directory's change count, counted in Lua
inline constexpr std::uint32_t k_no_id = 0xffffffffu;            // (uid_t)-1: not an owner (chown's "no change")

struct Attr {
  Ino ino = 0;
  std::uint32_t mode = 0;  // st_mode: type bits | permissions
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::uint64_t nlink = 0;
  std::uint64_t rdev = 0;
  std::uint64_t bytes = 0;  // bytes stored in blocks (for st_blocks)
  std::int64_t atime_ns = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  Ino parent = 0;  // directories only
  std::uint64_t gen = 0;  // directories: changes to their entries so far
  std::string target;

  bool is_dir() const { return S_ISDIR(mode); }
  bool is_reg() const { return S_ISREG(mode); }
  bool is_symlink() const { return S_ISLNK(mode); }
  struct stat to_stat(std::uint32_t block_size) const;
};

// "file" -> S_IFREG ...; nullopt for an unknown name.
std::optional<std::uint32_t> type_bits(std::string_view name);
std::string_view type_name(std::uint32_t mode);
std::string format_mode(std::uint32_t mode);  // permission bits as "0644"

// Decodes HGETALL's field/value list; EIO with the inode number when a
// field is missing or malformed, or holds a value the filesystem cannot
// serve: a uid or gid of k_no_id, a size above k_max_file_size, a gen
// above k_max_gen, a symlink
// without a target or with one longer than k_symlink_max bytes or holding
// a NUL byte.
// A missing uid, gid or size is EIO too; other missing numeric fields
// read as 0 (see fsck for the fields every inode the scripts write has).
// A malformed `bytes`, accounting alone, reads as the size: fsck reports
// and repairs it.
using FieldList = std::vector<std::pair<std::string_view, std::string_view>>;
Result<Attr> decode_attr(Ino ino, const FieldList& fields);

// A directory entry's name as the kernel may use it: not empty, not "." or
// "..", no '/' or NUL (EINVAL), at most k_name_max bytes (ENAMETOOLONG).
Status check_file_name(std::string_view name);

// A symlink's target as the kernel may take it: not empty, at most
// k_symlink_max bytes, no NUL byte (EIO: damage, what the server holds).
Status check_symlink_target(std::string_view target);

// Names read from the server that the kernel cannot take (a directory's
// entries: check_file_name; an inode's attributes: check_xattr_name), left
// out of what a listing answers: one would fail the whole reply with EIO
// (or list "." twice). Damage fsck reports and repairs. How many were left
// out, and the first one's name (its first 256 bytes) and why.
struct LeftOut {
  std::size_t count = 0;
  std::string name;
  std::string why;
  // Counts `name`, refused by `refusal`.
  void add(std::string_view name, const Error& refusal);
};

// An extended attribute's name: in one of Linux's namespaces (user.,
// trusted., security., system.) with something after the dot, and not a
// POSIX ACL (else EOPNOTSUPP; empty: EINVAL), no NUL byte (EINVAL: names are listed
// NUL-separated), at most k_xattr_name_max bytes (ERANGE).
Status check_xattr_name(std::string_view name);

std::int64_t now_ns();
std::string format_time_ns(std::int64_t ns);  // decimal

}  // namespace redisfs
