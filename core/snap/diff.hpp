// What changed between two states of one filesystem (redisfs-snap diff),
// like `zfs diff`: the paths created (+), deleted (-), modified (M) and
// renamed (R old -> new).
//
// A and B are filesystems on the server: snapshots of one filesystem, or
// one of them (usually B) the live filesystem. A state that is not a
// read-only snapshot may change while it is read, so it is read as it was
// at one instant: a copy-on-write snapshot (snapshot.hpp, CowSnapshot) is
// begun, and the walk copies only the metadata keys it reads (INODE, DIR,
// XATTR; never a block) into the staging prefix right before reading
// them; the writers never wait for the diff, and the staging prefix is
// removed at the end, whatever happened.
//
// How (cost: the metadata of both states, never the data):
//   1. each state is walked from the root, breadth first: per inode a
//      small record (its type, a 64-bit digest of its INODE hash but
//      atime, ctime and parent, and of its XATTR hash; its ctime; for a
//      directory a digest of its entries, for any inode the directory it
//      was first found in, and the others for hard links);
//   2. the directories present on both sides whose entries differ are read
//      again, both sides, entry by entry: the links removed and added;
//   3. per inode: only in A, -; only in B, +; another type under the same
//      number, - then +; a link removed and one added, R old -> new
//      (paired in name order; what is left over is - or +); its record's
//      digest differs, or its ctime differs while its links did not
//      (a write followed by a utimens that puts mtime back), M.
// Every data change sets mtime and ctime (write.lua, set_size in
// prelude.lua for truncate and extend), so comparing the records finds it
// without reading a block. An atime change alone is not a change.
//
// Memory: the records (a few dozen bytes per inode, like fsck), the
// entries of the one changed directory being compared, the names of the
// directories on changed paths, and the changes themselves (sorted by path
// before they are handed out).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "store/keys.hpp"
#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

struct DiffChange {
  char kind = 'M';     // '+', '-', 'M' or 'R'
  std::string path;    // relative to the root ("." is the root); R: the new path
  std::string from;    // R: the old path
  char type = 'f';     // 'f' file, 'd' directory, 'l' symlink, 'p' fifo, 's' socket, 'c'/'b' devices, '?'
};

struct DiffOptions {
  bool force = false;  // compare states whose lineage says they are unrelated
  bool quiet = false;  // no progress line
};

struct DiffStats {
  std::uint64_t inodes_a = 0;
  std::uint64_t inodes_b = 0;
  std::uint64_t changes = 0;
  std::uint64_t dirs_compared = 0;  // changed directories read entry by entry
  std::uint64_t keys_staged = 0;    // metadata keys copied for a live side
  std::string relation;             // how A and B were found related, for the summary
  std::string warning;              // something to tell the user although the diff succeeded
  double seconds = 0;
};

// Compares A with B and hands each change to `emit`, sorted by path.
// Refused (EINVAL) when neither descends from the other by lineage
// (superblock.hpp) or, when either has no lineage, when they were not made
// by the same mkfs (the superblock's `created`), unless opts.force.
Result<DiffStats> diff_filesystems(Pool& pool, const std::string& a, const std::string& b, const DiffOptions& opts,
                                   const std::function<Status(const DiffChange&)>& emit);

// "M\tpath", "R\told -> new": as zfs diff writes a path, every byte that is
// not printable ASCII (33..126) or is a backslash is \ and four octal digits
// ("\0040" a space, "\0134" a backslash, "\0012" a newline), so a line
// always splits on whitespace, and " -> " cannot be part of a name.
std::string diff_line(const DiffChange& change);
// One JSON object, no newline: {"change":"R","type":"f","path":...,
// "from":...}; a path that is not valid UTF-8 is {"base64":"..."}, as in
// the dump format.
std::string diff_json(const DiffChange& change);

}  // namespace redisfs
