// What the parts of the Store share (store.cpp, store_names.cpp,
// store_data.cpp, store_holes.cpp, store_xattr.cpp, store_session.cpp,
// store_gather.cpp, store_dirs.cpp): its limits and small helpers for
// replies and attribute changes. Internal to those files; everyone else
// includes store.hpp.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"
#include "util/text.hpp"

namespace redisfs::store_internal {

inline constexpr std::uint64_t k_truncate_step_blocks = 1024;
inline constexpr std::uint64_t k_alloc_batch = 256;
// What create_node (prelude.lua) answers for an inode number a key holds
// already: the create then takes the next number (Store::create_node).
inline constexpr std::string_view k_ino_in_use = "inode number already in use";
// The names the Store remembers (m_names: guesses for lookup, unlink and
// rename, which the server checks), about 70 bytes each; emptied when
// full. A listing of a larger directory leaves only its last names (its
// unlinks then ask the server for the others): the daemon's memory must
// not grow with the size of a directory listed.
inline constexpr std::size_t k_name_cache_max = 16384;
inline constexpr int k_retry_max = 16;
inline constexpr std::int64_t k_relatime_ns = 24LL * 3600 * 1000000000;
// A piece of a write travels as a script argument below k_inline_max
// bytes, else as a TMP key set in the same pipeline. A piece that replaces
// all its block holds (write.lua RENAMEs it into place) goes as a TMP key
// from k_rename_min bytes: redis-server hashes every byte of every string
// that enters Lua (a script's arguments), 4-40 us for 4-8 KiB, while a SET
// and a RENAME cost 4-6 us whatever the size (bench/RESULTS.md).
inline constexpr std::size_t k_inline_max = 16 * 1024;
inline constexpr std::size_t k_rename_min = 1024;
// unlink.lua frees a file nobody holds open at once when it has at most
// this many blocks (1 MiB at the default block size); a bigger one is an
// orphan, freed in truncate steps by purge.
inline constexpr std::uint64_t k_unlink_free_blocks = 16;
inline constexpr std::int64_t k_security_recheck_ns = 1000000000;

// The rules live with the inode codec (inode.hpp), which fsck shares.
inline Status _check_name(std::string_view name) { return check_file_name(name); }
inline Status _check_xattr_name(std::string_view name) { return check_xattr_name(name); }

// Existing block indexes of an inode in [from, to), largest first, found by
// SCAN: for a huge sparse file, cheaper than naming every possible block
// (store_holes.cpp).
Result<std::vector<std::uint64_t>> _existing_blocks(Connection& c, const Keys& keys, Ino ino, std::uint64_t from,
                                                    std::uint64_t to);

// A change script that drops setuid/setgid answers 'killed' at `at` of its
// reply when a bit went (write.lua third, punch.lua and copy_range.lua
// second): noted in `kill` (may be null), whose mode the kernel then holds
// stale.
inline void _note_killed(ReplyView r, std::size_t at, WriteKill* kill) {
  if (kill != nullptr && r.is_array() && r.size() > at && r[at].str() == "killed") {
    kill->killed = true;
  }
}

inline bool _is_retry(ReplyView r) { return r.is_array() && r.size() >= 1 && r[0].str() == "RETRY"; }

// At most 64 bytes of a value, for a message (a message is one bounded
// line, whatever a hand-edited key holds).
inline std::string _bounded(std::string_view text) {
  constexpr std::size_t k_max = 64;
  std::string out;
  for (char ch : text.substr(0, k_max)) {
    out.push_back(ch >= 0x20 && ch < 0x7f ? ch : '?');
  }
  if (text.size() > k_max) {
    out += "...";
  }
  return out;
}

// What is wrong with a reply that should have been `want`: the server's
// error (WRONGTYPE: a key of another type) or the type it has.
inline std::string _reply_problem(ReplyView r, std::string_view want) {
  switch (r.type()) {
    case ReplyView::Type::Error:
      return "not " + std::string(want) + ": " + _bounded(r.str());
    case ReplyView::Type::Array:
      return "an array where " + std::string(want) + " was expected";
    case ReplyView::Type::Integer:
      return "an integer where " + std::string(want) + " was expected";
    case ReplyView::Type::Nil:
      return "nothing where " + std::string(want) + " was expected";
    default:
      return "an odd reply where " + std::string(want) + " was expected";
  }
}

inline std::uint64_t _div_ceil(std::uint64_t a, std::uint64_t b) { return a == 0 ? 0 : (a - 1) / b + 1; }

// The attributes of `ino` at index `at` of a change script's array reply,
// for the AttrCache; none when the reply is not that shape (RETRY).
inline std::vector<Attr> _fresh_attr(Ino ino, ReplyView v, std::size_t at) {
  if (!v.is_array() || v.size() <= at || v[0].str() == "RETRY") {
    return {};
  }
  auto attr = attr_from_reply(ino, v[at]);
  if (!attr) {
    return {};
  }
  return {std::move(*attr)};
}

// The attributes of a node create.lua made: what it was asked to write
// (type, uid, rdev, target), with the server's clock (`now`) and the group
// and mode a setgid parent passes on; `parent` for a directory.
inline Result<Attr> _new_node_attr(Ino ino, std::string_view type, std::string_view mode, std::string_view uid,
                                   std::string_view gid, std::string_view rdev, std::string_view now,
                                   std::string_view parent, std::string_view target) {
  const std::string size = type == "symlink" ? std::to_string(target.size()) : "0";
  FieldList fields{{"type", type}, {"mode", mode}, {"uid", uid},
                   {"gid", gid},   {"size", size}, {"nlink", type == "dir" ? "2" : "1"},
                   {"rdev", rdev}, {"bytes", "0"}, {"atime", now},
                   {"mtime", now}, {"ctime", now}};
  if (type == "dir") {
    fields.emplace_back("parent", parent);
  } else if (type == "symlink") {
    fields.emplace_back("target", target);
  }
  return decode_attr(ino, fields);
}

// What a change script is told of a directory it changes (dir_read in
// prelude.lua): "<gen>:<ctime>:<atime>" of the attributes this mount
// holds of it, the basis, or '' when it holds none.
inline std::string _basis_arg(const std::optional<Attr>& basis) {
  return basis ? std::to_string(basis->gen) + ':' + std::to_string(basis->ctime_ns) + ':' +
                     std::to_string(basis->atime_ns)
               : std::string();
}

// The fields of a short reply (short_reply in prelude.lua: create, unlink
// and rmdir when the parent's basis was the server's): the array's
// elements in one string, separated by spaces, the parent's change `now
// gen nlink` spread in place. None when `v` is no string.
inline std::vector<std::string_view> _short_fields(ReplyView v) {
  std::vector<std::string_view> out;
  if (!v.is_string()) {
    return out;
  }
  std::string_view s = v.str();
  for (;;) {
    std::size_t space = s.find(' ');
    out.push_back(s.substr(0, space));
    if (space == std::string_view::npos) {
      return out;
    }
    s.remove_prefix(space + 1);
  }
}

// The attributes of directory `ino` after a change, from what the script
// returned at index `at` of its array reply (dir_reply in prelude.lua):
// {now, gen, nlink, its fields} when `basis` was not the server's; {now,
// gen, nlink} when it was (dir_read), so the basis with the change's times,
// gen and nlink is what the server holds; in a short reply, those three
// are its fields from `at` on. None when the reply is not that
// shape (RETRY, an outcome record's {}) or does not follow from the basis:
// the caller drops what it holds of the directory.
inline std::vector<Attr> _fresh_parent(Ino ino, ReplyView v, std::size_t at, const std::optional<Attr>& basis) {
  std::string_view change[3];
  if (std::vector<std::string_view> f = _short_fields(v); !f.empty()) {
    if (f.size() < at + 3) {
      return {};
    }
    std::copy(f.begin() + static_cast<std::ptrdiff_t>(at), f.begin() + static_cast<std::ptrdiff_t>(at) + 3, change);
  } else {
    if (!v.is_array() || v.size() <= at || v[0].str() == "RETRY") {
      return {};
    }
    ReplyView p = v[at];
    if (!p.is_array() || p.size() < 3) {
      return {};
    }
    if (p.size() >= 4) {
      return _fresh_attr(ino, p, 3);
    }
    for (std::size_t i = 0; i < 3; ++i) {
      change[i] = p[i].str();
    }
  }
  std::uint64_t now = 0;
  std::uint64_t gen = 0;
  std::uint64_t nlink = 0;
  if (!basis || !parse_u64(change[0], now) || !parse_u64(change[1], gen) || !parse_u64(change[2], nlink) ||
      gen != basis->gen + 1 || now > static_cast<std::uint64_t>(INT64_MAX)) {
    return {};
  }
  Attr a = *basis;
  a.mtime_ns = a.ctime_ns = static_cast<std::int64_t>(now);
  a.gen = gen;
  a.nlink = nlink;
  return {std::move(a)};
}

// What unlink.lua's reply `v` says (an array, or a short reply's string:
// OK left now gen nlink [FREED]): whether it freed the file, and how many
// links the file has left (none when the reply does not say).
struct UnlinkOutcome {
  bool freed = false;
  std::optional<long long> left;
};
inline UnlinkOutcome _unlink_outcome(ReplyView v) {
  UnlinkOutcome out;
  const std::vector<std::string_view> f = _short_fields(v);
  if (f.empty() ? v.size() >= 4 && v[3].str() == "FREED" : f.size() == 6 && f[5] == "FREED") {
    out.freed = true;
    out.left = 0;
    return out;
  }
  if (f.empty()) {
    out.left = v.size() >= 2 ? v[1].as_int() : std::nullopt;
  } else if (f.size() >= 2 && !f[1].empty()) {
    long long n = 0;
    auto [end, ec] = std::from_chars(f[1].data(), f[1].data() + f[1].size(), n);
    if (ec == std::errc() && end == f[1].data() + f[1].size()) {
      out.left = n;
    }
  }
  return out;
}

// This host's clock, in nanoseconds since the epoch (the Store adds its
// estimate of the server's offset: m_server_skew_ns).
inline std::int64_t _local_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a write or an attribute change that kills setuid and setgid leaves
// of `mode` (the kernel's rule: setgid only of a group-executable file).
inline std::uint32_t _killed_mode(std::uint32_t mode) {
  mode &= ~static_cast<std::uint32_t>(S_ISUID);
  if ((mode & S_IXGRP) != 0) {
    mode &= ~static_cast<std::uint32_t>(S_ISGID);
  }
  return mode;
}

// Whether `req` changes anything but the size.
inline bool _changes_attrs(const SetAttrRequest& req) {
  return req.mode || req.uid || req.gid || req.atime != SetAttrRequest::Time::Keep ||
         req.mtime != SetAttrRequest::Time::Keep || req.kill_suidgid || req.ctime_ns.has_value();
}

// `later` applied after `into`, as one change (setattr.lua's order: the
// mode, owner and times, then the kill).
inline void _merge_setattr(SetAttrRequest& into, const SetAttrRequest& later) {
  if (later.mode) {
    into.mode = later.mode;
    into.kill_suidgid = false;  // a kill before it changes nothing (setattr.lua kills after the mode)
  }
  if (later.uid) {
    into.uid = later.uid;
  }
  if (later.gid) {
    into.gid = later.gid;
  }
  if (later.atime != SetAttrRequest::Time::Keep) {
    into.atime = later.atime;
    into.atime_ns = later.atime_ns;
  }
  if (later.mtime != SetAttrRequest::Time::Keep) {
    into.mtime = later.mtime;
    into.mtime_ns = later.mtime_ns;
  }
  into.kill_suidgid = into.kill_suidgid || later.kill_suidgid;
  if (later.ctime_ns) {
    into.ctime_ns = later.ctime_ns;
  }
}

// `req` (no size) applied to `a` here, as setattr.lua applies it on the
// server; `now`: this mount's estimate of the server's clock (ctime, and
// the times set to "now"), unless the change carries its instant.
inline void _apply_setattr(Attr& a, const SetAttrRequest& req, std::int64_t now) {
  now = req.ctime_ns.value_or(now);
  if (req.mode) {
    a.mode = (a.mode & S_IFMT) | (*req.mode & 07777);
  }
  if (req.uid) {
    a.uid = *req.uid;
  }
  if (req.gid) {
    a.gid = *req.gid;
  }
  if (req.atime != SetAttrRequest::Time::Keep) {
    a.atime_ns = req.atime == SetAttrRequest::Time::Now ? now : req.atime_ns;
  }
  if (req.mtime != SetAttrRequest::Time::Keep) {
    a.mtime_ns = req.mtime == SetAttrRequest::Time::Now ? now : req.mtime_ns;
  }
  if (req.kill_suidgid) {
    a.mode = _killed_mode(a.mode);
  }
  a.ctime_ns = now;
}

}  // namespace redisfs::store_internal
