// One page of a directory listing (Store::readdir, DirReader, FirstPages).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/inode.hpp"
#include "store/keys.hpp"

namespace redisfs {

struct DirEntry {
  std::string name;
  Ino ino = 0;
  std::uint32_t type = 0;    // S_IFMT bits
  std::optional<Attr> attr;  // readdir(plus = true) only
  double age = 0;            // seconds the attributes were old when the page was read (AttrCache)
  // Why the entry's inode could not be read (damaged: a key of the wrong
  // type, a malformed field), else empty. The entry is listed without
  // its attributes (type 0 without plus): its lookup then fails with EIO.
  std::string damage;
};

struct DirPage {
  std::vector<DirEntry> entries;
  std::uint64_t next_cursor = 0;  // 0: the directory is exhausted
  // The run_id of the server whose HSCAN gave it (Connection::answered_by;
  // empty: not known). A cursor means nothing to another server process.
  std::string server;
  // When it was asked for (the HSCAN sent): what this mount remembers of
  // its names must not be older than a change of them it made since
  // (Store::remember).
  std::chrono::steady_clock::time_point asked{};
};

}  // namespace redisfs
