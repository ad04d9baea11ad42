// A filesystem's keys found from its own structure, not by SCANning the
// server: what copy, dump and delete cost grows with the filesystem, not
// with the other tenants' keys beside it.
//
// SCAN MATCH "<p>:*" reads every key of the server to find a filesystem's
// (2 million unrelated keys: seconds, for a filesystem of fifty). The walk
// reads only the filesystem:
//
//   1. the superblock (block_size, inodes, bytes) and ORPHANS;
//   2. from the root and from every orphan, breadth first, a batch of inodes
//      at a time: HMGET INODE type size bytes (pipelined), then each
//      directory's DIR hash (HSCAN, pipelined; a directory longer than a
//      page continued page by page), whose entries join the queue unless
//      seen before (hard links; a cycle in a damaged tree);
//   3. the candidates, handed to a visitor in batches: INODE:<n>,
//      XATTR:<n> (most do not exist), DIR:<n> (directories) and
//      BLK:<n>:<i> for every i < ceil(size / block_size) of a file that
//      stores any bytes. The visitor (COPY, UNLINK...) says which existed
//      and each block's length. A file with more possible blocks than the
//      server holds keys (a huge sparse file) has its blocks found by one
//      SCAN MATCH "<p>:BLK:*" instead: then that walk costs O(server), as
//      the size of such a file says it would otherwise cost more;
//   4. the cross-check: the inodes found must be the superblock's `inodes`,
//      the stored bytes of the inodes its `bytes`, and the blocks found
//      must hold exactly that many bytes.
//
// Every state the scripts make agrees (holes, short last blocks, hard
// links, orphans, empty directories...: tests/redis/test_key_walk.cpp
// compares the walk with SCAN). A damaged filesystem (an inode no entry
// names, a block past the end of its file, an entry naming nothing) makes
// the walk disagree; its caller then finds the keys with SCAN, the
// reference, and says so in one line naming fsck. Keys no structure names
// and no counter counts (an unknown key, a leaked block of a vanished
// inode) are fsck's to find: it keeps SCAN.
//
// The walk reads a filesystem that does not change meanwhile: delete holds
// the freeze, and a copy-on-write snapshot's copier walks its staging
// prefix, whose keys, once there, never change (snapshot.hpp;
// KeyWalkOptions::source).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "store/keys.hpp"
#include "redis/redis.hpp"
#include "util/result.hpp"
#include "util/u64_set.hpp"

namespace redisfs {

// Given relative key names, does what it does with them and sets found[i]:
// -1 when rels[i] did not exist (or was not taken), -2 when it is a block
// that is not a string, else the block's length (0 for any other key).
using KeyVisitor = std::function<Status(std::span<const std::string> rels, std::vector<long long>& found)>;

struct KeyWalkOptions {
  bool opens = false;  // also OPEN:<n> of every inode (delete)
  std::size_t batch = 1000;  // candidates per visit
  // For a copy-on-write snapshot's copier (snapshot.hpp), which walks the
  // staging prefix it fills from `source`: ORPHANS, INODE:<n> and DIR:<n>
  // are visited (the visitor copies them) right before the walk reads
  // them, instead of later with the other candidates; a huge sparse file's
  // blocks are looked for by SCAN under both prefixes. Every key is still
  // visited once.
  const Keys* source = nullptr;
  // For a visitor that reads each hash's first HSCAN page in its pipeline:
  // a visit ends at this many DIR:<n> candidates (a directory's page holds
  // up to about 1,000 names), whatever `batch` says (k_hscans_at_once,
  // redis/scan.hpp, for such a visitor). 0: no such limit.
  std::size_t dir_pages = 0;
};

struct KeyWalkResult {
  std::uint64_t inodes = 0;  // inodes found
  std::uint64_t keys = 0;    // keys the visitor found
  bool sparse_scan = false;  // a huge sparse file's blocks were found by SCAN
  // Empty when the structure agrees with the superblock; else why not, in
  // a few words ("2 inodes found, the superblock counts 3").
  std::string disagreement;
};

class KeyWalk {
 public:
  KeyWalk(Connection& c, const Keys& keys, KeyWalkOptions opts = {});

  // Step 1: reads the superblock (ENOENT without one); ORPHANS is read
  // when run() starts.
  // The superblock itself is not visited: the callers treat it apart.
  Status begin();
  // Steps 2 to 4, after begin().
  Result<KeyWalkResult> run(const KeyVisitor& visit);

  std::uint32_t block_size() const { return m_block_size; }
  // Progress: inodes found so far, and how many the superblock counts.
  std::uint64_t inodes_found() const { return m_result.inodes; }
  std::uint64_t inodes_expected() const { return m_sb_inodes; }

 private:
  Status add(std::string rel, bool block);
  Status flush();
  Status visit_batch(const std::vector<std::uint64_t>& batch);
  Status read_dirs(const std::vector<std::uint64_t>& dirs);
  // The entries of `dirs`, their first pages in one round trip.
  Status read_dir_pages(std::span<const std::uint64_t> dirs);
  Status read_orphans();
  Status visit_now(std::string_view kind, const std::vector<std::uint64_t>& inos);
  void note(std::string why);
  void enqueue(std::string_view entry, std::uint64_t dir);
  Status sparse_blocks();

  Connection& m_c;
  const Keys& m_keys;
  KeyWalkOptions m_opts;
  const KeyVisitor* m_visit = nullptr;

  std::uint32_t m_block_size = 0;
  std::uint64_t m_sb_inodes = 0;
  std::uint64_t m_sb_bytes = 0;
  std::uint64_t m_dbsize = 0;
  std::vector<std::uint64_t> m_queue;
  std::vector<std::uint64_t> m_sparse;       // files whose blocks are found by SCAN
  std::vector<std::string> m_pending;        // candidates not visited yet
  std::vector<char> m_pending_block;
  std::size_t m_pending_dirs = 0;  // DIR:<n> candidates in m_pending
  std::vector<long long> m_found;

  KeyWalkResult m_result;
  std::uint64_t m_inode_bytes = 0;  // sum of the inodes' `bytes`
  std::uint64_t m_block_bytes = 0;  // sum of the blocks' lengths
  std::vector<std::uint64_t> m_orphans;
  U64Set m_seen;  // inodes seen
};

// Blocks of a file the walk names, or nullopt when there are too many
// possible ones to name (SCAN is cheaper): ceil(size / block_size) when
// `bytes` > 0, none when the file stores nothing.
std::optional<std::uint64_t> nameable_blocks(std::uint64_t size, std::uint64_t bytes, std::uint32_t block_size,
                                             std::uint64_t server_keys);

}  // namespace redisfs
