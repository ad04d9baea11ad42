// What redisfs-snap shows a person about the filesystems on a server:
// `list` as a table (human sizes, ages like "3 h ago", snapshots under
// their origin) and `du` (where the bytes are: the directories holding the
// most, found in one walk of the directory tree).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "redis/redis.hpp"
#include "util/result.hpp"
#include "snap/snapshot.hpp"

namespace redisfs {

// "just now", "42 s ago", "5 min ago", "3 h ago", "12 d ago", then the
// date ("2026-01-31"); "-" for 0.
std::string human_age(std::int64_t then_ns, std::int64_t now_ns);

// The table of `list`: NAME (a snapshot or clone indented under its
// origin, when the origin is listed), KIND ("copying 25%" for a copy being
// taken), SIZE, INODES, CREATED (an age against its own server's clock,
// FsInfo::listed_ns; a copy's instant for a copy), STATE (live mounts, or
// "-"), NOTE (the dump a filesystem was restored from, why it is damaged).
std::string list_as_table(const std::vector<FsInfo>& list);

struct DirUsage {
  std::string path;          // "/", "/src", ...
  std::uint64_t bytes = 0;   // stored bytes of the files below it (each file once)
  std::uint64_t files = 0;   // files below it
  std::uint64_t dirs = 0;    // directories below it
};

struct DuReport {
  std::vector<DirUsage> top;  // the `limit` directories holding the most bytes, most first
  std::uint64_t inodes = 0;   // inodes walked
  std::uint64_t bytes = 0;    // stored bytes of every file reached
};

// One breadth-first walk from the root (a page of DIR entries and the
// entries' type and `bytes` at a time, pipelined): every directory's total,
// the `limit` largest kept, directories at most `depth` levels below the
// root (0: any depth). Read without a freeze: on a busy filesystem the
// totals are those of a moment, give or take the writes in flight. Memory
// holds one small record per directory and a set of the inodes seen.
Result<DuReport> disk_usage(Pool& pool, const std::string& prefix, std::size_t limit, unsigned depth,
                            Progress* progress);

std::string du_as_table(const DuReport& report);
std::string du_as_json(const std::string& prefix, const DuReport& report);

}  // namespace redisfs
