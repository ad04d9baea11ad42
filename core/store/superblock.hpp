// The superblock (<prefix>:SB): the one place that decodes and validates it.
//
// The daemon (Store::open), fsck, restore and list all read a superblock
// someone else may have written, so they share one decoder with one set of
// rules. A field the decoder cannot parse is a problem, never a default:
// nothing downstream may act (mount, repair, restore) on a value it guessed.
//
//   format            "redisfs"
//   version           1 .. k_format_version. 2 (k_tracking_version): every
//                     writer records changed blocks (keys.hpp, CHANGED),
//                     so a daemon that knows only 1 (it records nothing)
//                     refuses to mount it. mkfs writes 2; a writable
//                     mount (session.lua) upgrades a live filesystem from
//                     1 in the step that registers it, a snapshot
//                     (cow_begin.lua, changes_restart.lua) its source and
//                     itself; a read-only mount and a snapshot's own
//                     superblock are never upgraded (its version is part
//                     of the base digest of incremental dumps). Change
//                     records are trusted only between snapshots of 2
//                     (dump_incremental.hpp, tracked_blocks)
//   block_size        a power of two, k_min_block_size .. k_max_block_size
//   root              1
//   next_inode        the next inode number to hand out (> every inode)
//   inodes, bytes     usage totals
//   created           ns since the epoch; required: with snapshot_created and
//                     dumped it tells a mount its filesystem from another
//   security_xattrs   "1" once any file has a security.* attribute
//   read_only         "1" for a read-only snapshot
//   origin            the prefix a copy was taken from
//   snapshot_created  ns: the instant a copy is the state of
//   restored_from     the prefix named in the header of the dump restored here
//   dumped            ns: the dump's point in time
//   snapshot_id       32 lowercase hex digits (random): the identity of a
//                     read-only snapshot made by copy (or restored from a
//                     dump of one); live filesystems and clones have none
//   lineage           the snapshot ids this state descends from, oldest
//                     first, separated by one space, at most
//                     k_max_lineage; a snapshot's ends with its own id.
//                     Taking a snapshot of P appends the new id to P's
//                     lineage in the step that records the instant
//                     (cow_begin.lua, or under the freeze), and the
//                     snapshot gets that lineage (P a snapshot itself:
//                     P's stays as it is); a clone gets P's as is
//   rolled_back       ns: the last rollback of this filesystem (rollback.hpp;
//                     part of what a mount tells its filesystem from another
//                     by: k_identity_fields)
//
// "B descends from A": A has a snapshot_id, it is in B's lineage, and A is
// not B (descends_from). Filesystems made before lineage have neither
// field: an empty lineage.
//
// All numbers are canonical decimals (no sign, no leading zero), as the
// scripts write them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/keys.hpp"
#include "util/result.hpp"

namespace redisfs {

inline constexpr int k_format_version = 2;
// The first version whose writers all record changed blocks (above).
inline constexpr int k_tracking_version = 2;
inline constexpr std::uint32_t k_min_block_size = 4 * 1024;
inline constexpr std::uint32_t k_max_block_size = 4 * 1024 * 1024;
inline constexpr std::uint32_t k_default_block_size = 64 * 1024;
// Inode numbers stay below 2^53 so that Lua (doubles) handles them exactly.
inline constexpr std::uint64_t k_max_inode = (1ull << 53) - 1;
// Snapshot ids a lineage keeps (the oldest dropped beyond).
inline constexpr std::size_t k_max_lineage = 64;
inline constexpr std::size_t k_snapshot_id_len = 32;

struct Superblock {
  int version = 0;
  std::uint32_t block_size = k_default_block_size;
  Ino root = k_root_ino;
  std::uint64_t next_inode = 0;
  std::uint64_t inodes = 0;
  std::uint64_t bytes = 0;
  std::int64_t created_ns = 0;
  bool security_xattrs = false;
  bool read_only = false;  // a read-only snapshot
  std::string origin;      // copies: the prefix it was taken from
  std::int64_t snapshot_created_ns = 0;
  std::string restored_from;  // restored dumps: the prefix in the dump's header
  std::int64_t dumped_ns = 0;
  std::string snapshot_id;             // read-only snapshots: their identity ("" none)
  std::vector<std::string> lineage;    // oldest first; empty before lineage existed
  std::int64_t rolled_back_ns = 0;     // the last rollback (0: never)
};

using SbFields = std::vector<std::pair<std::string, std::string>>;

// One field the decoder rejects: its name and why, in one line.
struct SuperblockIssue {
  std::string field;
  std::string detail;
};

// Every issue of `fields` (an HGETALL of <prefix>:SB); empty when the
// superblock is sound. Unknown fields are not issues (a newer minor
// addition), but the known ones must all be well formed.
std::vector<SuperblockIssue> superblock_issues(const SbFields& fields);

// Decodes a sound superblock; EINVAL naming the prefix and the first issue
// otherwise. An empty field list (no key) is ENOENT.
Result<Superblock> decode_superblock(std::string_view prefix, const SbFields& fields);

// The refusal for a superblock that is no hash (the server's WRONGTYPE
// names no key): a damaged filesystem, its superblock to fix by hand.
Error superblock_not_hash(const Keys& keys);

// What a read-only filesystem is, for messages: "a read-only snapshot of
// 'SKX'", never of itself ("a read-only snapshot restored from a dump of
// 'SKX-monday'", or just "a read-only snapshot").
std::string describe_snapshot(std::string_view prefix, const Superblock& sb);

// Which filesystem a superblock is: its created, snapshot_created,
// dumped and rolled_back fields (k_identity_fields, in that order),
// joined. A restore, a copy, a rollback or a new filesystem under the same
// prefix changes it (Store::check_same_filesystem compares it).
inline constexpr std::string_view k_identity_fields[] = {"created", "snapshot_created", "dumped", "rolled_back"};
std::string filesystem_identity(std::string_view created, std::string_view snapshot_created, std::string_view dumped,
                                std::string_view rolled_back);

// Is `id` a snapshot id (32 lowercase hex digits)?
bool is_snapshot_id(std::string_view id);
// The ids of a `lineage` field, or nullopt when it is not one (ids
// separated by single spaces, at most k_max_lineage of them).
std::optional<std::vector<std::string>> parse_lineage(std::string_view text);
// `lineage` + `id`, the oldest dropped beyond k_max_lineage, as the field's text.
std::string extend_lineage(const std::vector<std::string>& lineage, std::string_view id);
// `lineage` as the field's text (the newest k_max_lineage ids).
std::string lineage_text(const std::vector<std::string>& lineage);
// Does the state `b` descend from the snapshot `a` (the header's rule)?
bool descends_from(const Superblock& b, const Superblock& a);

// "a power of two from 4 KiB to 4 MiB", or the reason `n` is not one.
Status check_block_size(std::uint64_t n);

// Canonical decimal (what the scripts write); false on sign, leading zero,
// overflow or any other byte.
bool parse_canonical_u64(std::string_view s, std::uint64_t& out);

}  // namespace redisfs
