// fsck's analysis (fsck_analysis.hpp) of a state made of layers: a bottom
// layer 0 (a filesystem on a server, or a full dump) and layers 1, 2, ...
// above it, each writing whole keys over it or deleting them (incremental
// dumps, dump_incremental.hpp: staged on a server, or in files). A key's
// content is that of the last layer naming it; a key that layer deletes is
// absent (a layer that both writes and deletes a key writes it, as
// apply_staged_delta deletes first). Each layer hands the analysis only the
// keys it decides, in fsck's passes (the superblock and inodes, then the
// DIR, XATTR and BLK keys, then ORPHANS), so every key is judged once with
// the content the state holds.
//
// Two users, one rule, so they agree: the incremental restore judges what
// its apply would leave before it applies anything (fsck_delta, below: the
// base on the server is layer 0, the staged keys layer 1), and verify
// judges the state each link of a chain leaves (dump_verify.cpp: the files
// are the layers). No orphan is dropped: a snapshot has none, and an
// incremental carries its ORPHANS as they are.
//
// Memory: 24 bytes per key the upper layers name, plus the analysis's node
// per inode; the bottom layer's keys are streamed.
#pragma once

#include <cstdint>
#include <vector>

#include "snap/fsck.hpp"
#include "store/keys.hpp"

namespace redisfs {

class Connection;

namespace fsck_detail {

class LayerIndex {
 public:
  // `layer` (1 and up, in order) writes the key, or with `deleted` deletes it.
  void name(const ParsedKey& pk, std::uint32_t layer, bool deleted);
  // After a layer's names, before decides().
  void seal();
  // Whether the state holds the key as `layer` has it (a layer that does
  // not decide a key skips its version).
  bool decides(const ParsedKey& pk, std::uint32_t layer) const;
  std::size_t size() const { return m_entries.size(); }

 private:
  struct Entry {
    Ino ino = 0;
    std::uint64_t index = 0;
    std::uint32_t layer = 0;
    std::uint8_t kind = 0;  // a KeyKind
    bool deleted = false;
  };
  static bool before(const Entry& a, const Entry& b);
  std::vector<Entry> m_entries;
};

}  // namespace fsck_detail

// fsck of what applying the incremental restore staged in `staging` (its
// index and deletions lists, install.hpp) over `target` would leave, the
// target only read: the base's keys found by its structure (key_walk.hpp),
// the staged ones by the index. Problems name the target's keys. An error
// when the server fails or the base does not agree with its superblock.
Result<FsckReport> fsck_delta(Connection& c, const Keys& staging, const Keys& target);

}  // namespace redisfs
