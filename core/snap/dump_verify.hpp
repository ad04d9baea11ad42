// verify: checks a dump without a server, by the rules restore applies.
//
// A dump restore accepts is one that (1) dump::read verifies (structure,
// header, types, trailer counts and checksum; zstd and gzip told by their
// magic, as restore does: read_dump_stream), (2) follows the record rules
// (dump_rules.hpp: key schema, types, duplicates, superblock, block sizes),
// and (3) once staged, marked as restored and rid of its orphans
// (restored_superblock_marks, staged_orphan_drop), is a filesystem fsck
// finds clean. verify checks (1) and (2) with the same code, and (3) with
// fsck's own analysis (fsck_analysis.hpp) fed from the dump instead of a
// server. So verify refuses what restore refuses, with restore's message
// for (1) and (2) and fsck's problem lines for (3).
//
// The facts come in passes over the file, as fsck's come in SCANs: pass 1
// verifies the document and gathers the superblock, ORPHANS and every inode
// hash; pass 2 reads the DIR, XATTR and BLK records against those inodes.
// (An orphan restore drops, named by ORPHANS only after its inode went by,
// makes one more pass: the inodes again, without it. Dumps redisfs-snap
// writes put SB and ORPHANS first, then the inodes: DumpCheck, below.) Each pass verifies the trailer again,
// and all must agree. Memory: one small record per inode (fsck's), 8 to 16
// bytes per key (duplicates), nothing of the data.
//
// Not modelled: restore --snapshot (verify checks the dump as a plain
// restore marks it), and the server-dependent choice drop_staged_orphans
// makes between naming a huge sparse orphan's blocks and scanning for them
// (verify takes the dump's record count as the server's key count).
//
// Incremental dumps (format 2) are checked by IncrementalRestore itself,
// given no server (the record rules, the superblock's descent from the
// base, block sizes), after dump::read's structure and checksum; there is
// no fsck of an incremental alone. verify_chain checks the links of a chain
// given in order (a full dump, then incrementals): each incremental's
// base_snapshot_id must be the snapshot_id of the SB the files before it
// leave, and its base_digest the state digest (dump_incremental.hpp) of
// that state, computed from the records with DigestSum: one pass per file
// keeps each metadata key's (SB, INODE, DIR, XATTR, ORPHANS) sum of terms,
// to take it back out when a later dump replaces or deletes the key. Then
// the state each link leaves is fsck-analysed as restore analyses it before
// its apply (fsck_layers.hpp: the files are the layers, a key's content is
// that of the last file naming it): two more passes over every file of the
// chain so far, so a chain of n links reads its full dump about 2n times.
// The problems go to the incremental's report, and restore's refusal names
// the first of them. Not modelled: the orphans a full dump's restore drops
// (snapshots, which dumps are taken of, have none). Memory: O(number of
// metadata keys), a key name and 32 bytes each, plus 24 bytes per key an
// incremental names and fsck's node per inode; blocks are not kept.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "snap/compress.hpp"
#include "snap/dump_format.hpp"
#include "snap/fsck.hpp"
#include "util/result.hpp"

namespace redisfs {

struct VerifyReport {
  std::string path;
  std::string source_prefix;  // the prefix in the dump's header
  dump::Trailer trailer;
  Compression compression = Compression::None;
  // Why restore would refuse the dump before staging it, in restore's
  // words ("dump: at byte 123: duplicate key 'INODE:2'"); empty when none.
  std::string refusal;
  // What fsck finds in it once staged (keys as the dump names them, e.g.
  // "INODE:5"): restore refuses it when any.
  std::vector<FsckProblem> problems;
  std::uint64_t inodes = 0;
  int passes = 0;  // how many times the file was read
  // An incremental dump (format 2): its base, and whether verify_chain
  // could check it (a sound dump before it in the chain).
  bool incremental = false;
  std::string base_snapshot_id;
  std::string base_digest;
  bool base_checked = false;
  // Broken links of the chain (verify_chain), each naming the file before.
  std::vector<std::string> chain;

  bool sound() const { return refusal.empty() && problems.empty() && chain.empty(); }
};

struct VerifyOptions {
  dump::ReadLimits limits{};
};

// Verifies the dump in `path` (a file: it is read more than once). An
// error (EIO, ENOENT, ...) only when the file cannot be read, or changed
// between passes; a dump that is not sound is a report, not an error.
Result<VerifyReport> verify_dump(const std::string& path, const VerifyOptions& opts = {});

// verify's check of a full dump as dump_filesystem writes it, in one pass
// (so a dump to a pipe is checked too): restore's record rules, and fsck's
// analysis of what restore would stage. The records must come as
// dump_filesystem sends them: the superblock, ORPHANS, every inode, then
// the rest. A record out of that order, or more inodes than
// k_check_inodes_max (the analysis holds about 80 bytes an inode: a dump's
// memory stays bounded), and the dump is not checked (not_checked() says
// why). Memory: fsck's node per inode; nothing of the data.
class DumpCheck {
 public:
  static constexpr std::uint64_t k_check_inodes_max = std::uint64_t{4} << 20;

  // (`inodes_max`: a test's smaller cap)
  explicit DumpCheck(std::uint64_t inodes_max = k_check_inodes_max);
  ~DumpCheck();
  DumpCheck(const DumpCheck&) = delete;
  DumpCheck& operator=(const DumpCheck&) = delete;

  void header(const dump::Header& h);
  void string_record(std::string_view key, std::string_view value);
  void hash_begin(std::string_view key);
  void hash_fields(std::string_view key, const std::vector<std::pair<std::string, std::string>>& pairs);
  void hash_end(std::string_view key);
  // Once every record went by: what verify would say of the dump (the
  // refusal, fsck's problems), or nothing when not_checked().
  VerifyReport finish();
  const std::string& not_checked() const { return m_not_checked; }

 private:
  struct Impl;
  bool route(std::string_view key);
  void feed(Status st);
  void give_up(std::string why);
  std::unique_ptr<Impl> m;
  std::uint64_t m_inodes_max;
  std::string m_not_checked;
};

// Checks the chain `reports` make in order (each from verify_dump; the
// files are read once more): fills base_checked and chain. A refused dump
// breaks the chain: the incrementals after it until the next full dump go
// unchecked. An error only when a file cannot be read or changed.
Status verify_chain(std::vector<VerifyReport>& reports, const VerifyOptions& opts = {});

// The report's problems as lines, each "<path>: <line>": the refusal as
// restore says it, or fsck's line of each problem.
std::vector<std::string> verify_problem_lines(const VerifyReport& report);

// Every report as one JSON document (ends with a newline), with `errors`:
// the files that could not be read, or a chain that could not be followed
// (their messages); "sound" is true only when there are none.
std::string verify_as_json(const std::vector<VerifyReport>& reports, const std::vector<std::string>& errors);

}  // namespace redisfs
