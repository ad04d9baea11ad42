// Incremental dumps and their restore (issue 11): what changed between two
// snapshots of one filesystem, applied onto a filesystem that is exactly
// the older one. The format is version 2 of dump_format.hpp.
//
// LINEAGE. `dump SNAP --since BASE` needs two snapshots on the server, SNAP
// descending from BASE (superblock.hpp: BASE's snapshot_id is in SNAP's
// lineage). The header names BASE by its snapshot_id and carries BASE's
// state digest.
//
// STATE DIGEST. What both sides compute, from the metadata alone, to tell
// that a filesystem is exactly a snapshot's state: the sum modulo 2^256 of
// SHA-256(u64 len(key) key u64 len(field) field u64 len(value) value), each
// read as a big-endian 256-bit number, over every field of the superblock's
// lasting fields (format, version, block_size, root, next_inode, inodes,
// bytes, created, security_xattrs: not where it came from, its identity or
// its lineage, which a restore or a later snapshot changes) and of every
// INODE (but atime, which reading changes), DIR, XATTR and ORPHANS key;
// u64 is little-endian, keys are relative ("INODE:5"). A sum does not
// depend on the order the keys are read in. Every script that changes a
// file's data changes its inode's ctime, so the metadata pins the data.
//
// DUMP. Two walks of the structures (key_walk.hpp), compared on the server
// (inc_compare.lua, inc_gone.lua) so that unchanged blocks never cross the
// network: SNAP's keys that BASE lacks or holds otherwise are written whole
// (the superblock always, first), a file's blocks are compared only when
// its inode changed (not atime alone) and, when the change records can
// tell (tracked_blocks), only the blocks they name; two blocks by BITOP XOR into a
// scratch key under a temporary prefix (removed by the same script), and a
// changed block is sent whole; then BASE's keys that SNAP lacks are
// written as deletions.
//
// RESTORE. The target must be exactly the base: its snapshot_id is the
// header's base_snapshot_id, its state digest the header's base_digest,
// not mounted, reserved for the whole restore. Changed keys are staged
// under "<target>~restore~<hex>" (with the staging TTL), the deleted keys'
// names listed beside them; only when the whole document verified
// (trailer) and what the apply would leave is a filesystem fsck finds clean
// (fsck_layers.hpp: fsck's analysis of the base overlaid with the staged
// keys, before anything is applied) are they applied, by install.hpp's
// apply_staged_delta: under the freeze, journaled, rolled forward by
// whoever finds the journal. A dry run checks the document and, when the
// target exists, its base (not what the apply would leave: nothing is
// staged).
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "redis/redis.hpp"
#include "snap/dump_format.hpp"
#include "snap/dump_io.hpp"
#include "snap/room.hpp"
#include "store/keys.hpp"
#include "store/superblock.hpp"
#include "util/result.hpp"
#include "util/u64_set.hpp"

namespace redisfs {

class Progress;
class Reservation;
class StagingWrites;

// The state digest's pieces, shared by state_digest (from a server) and
// verify (from dumps): whether a field of a key of `kind` counts, one
// field's term, and their sum modulo 2^256 (a term can be taken back out).
bool digest_counts(KeyKind kind, std::string_view field);
// The kinds of key digest_counts counts fields of (none of the others):
// the filesystem's hashes (keys.hpp), every key of it but the blocks.
inline bool digest_has_kind(KeyKind kind) { return is_filesystem_key(kind) && expected_type(kind) == "hash"; }
class DigestSum {
 public:
  using Term = std::array<std::uint8_t, 32>;
  static Term term(std::string_view key, std::string_view field, std::string_view value);
  void add(const Term& t);
  void add(std::string_view key, std::string_view field, std::string_view value) { add(term(key, field, value)); }
  void sub(const Term& t);
  std::string hex() const;
  const Term& value() const { return m_sum; }

 private:
  Term m_sum{};
};

// The state digest above, 64 lowercase hex digits. EINVAL when the
// filesystem's structure disagrees with its superblock (see fsck).
Result<std::string> state_digest(Connection& c, const Keys& keys);

// The set of the blocks ("<ino>:<index>") that can differ between the
// snapshots BASE and SNAP by their change records (keys.hpp, CHANGED): the
// record of each snapshot after BASE up to SNAP in SNAP's lineage, each a
// set counting from the snapshot before it ("since:<id>"; the others are
// found through the register of filesystems). SNAP's own record, or their
// union stored in `scratch` (temporary TTL; the caller removes it); ""
// when a record is missing, overflowed or not a set, or in another cluster
// slot, or when BASE or SNAP was mounted writable after its instant: then
// every block is compared. The records never say less than what changed
// (every script that writes or cuts a block adds it in its own step), and
// a block they name in excess only costs its comparison.
Result<std::string> tracked_blocks(Connection& c, const Keys& sk, const Superblock& snap, const Keys& bk,
                                   const Superblock& base, const std::string& scratch);

// `dump SNAP --since BASE` into `out` (plain JSON, version 2).
Result<DumpStats> dump_incremental(Pool& pool, const std::string& snap, const std::string& base, std::ostream& out,
                                   const DumpOptions& opts);

// Receives an incremental dump (restore_filesystem hands it the records
// once the header says version 2) and applies it (commit).
class IncrementalRestore : public dump::Sink {
 public:
  IncrementalRestore(Pool* pool, Connection* c, const RestoreOptions& opts, Progress& progress);
  ~IncrementalRestore() override;

  bool active() const { return m_active; }
  const std::optional<Error>& refusal() const { return m_refusal; }
  const dump::Header& header() const { return m_header; }
  // After dump::read succeeded: the checks that need the whole document,
  // then (unless a dry run) the apply. Fills stats' prefix, source_prefix
  // and base.
  Status commit(RestoreStats& stats);
  // After a failure: the staged keys go (the target was never touched).
  void discard();

  Status on_header(const dump::Header& h) override;
  Status on_string(std::string_view key, std::string&& value) override;
  Status on_hash_begin(std::string_view key) override;
  Status on_hash_fields(std::string_view key, std::vector<std::pair<std::string, std::string>>&& pairs) override;
  Status on_hash_end(std::string_view key) override;
  Status on_delete(std::string_view key) override;
  void at(dump::Position p) override;

 private:
  Status record(std::string_view key, std::string_view type);
  // At a record's end: `bytes` more staged; the server looked at for room
  // when due (room.hpp), a stop being a refusal, not the dump's flaw.
  Status staged(std::uint64_t bytes);
  Status check_base(Connection& c);
  Status check_result();

  Pool* m_pool;
  Connection* m_c;
  const RestoreOptions& m_opts;
  Progress& m_progress;
  bool m_active = false;
  std::optional<Error> m_refusal;
  dump::Header m_header;
  std::string m_target;
  std::optional<Keys> m_staging;
  std::unique_ptr<Reservation> m_reservation;
  std::string m_finished;  // what finishing an interrupted move into the target did
  KeyKind m_kind = KeyKind::Unknown;
  std::uint64_t m_pairs = 0;
  std::vector<std::pair<std::string, std::string>> m_sb;
  bool m_sb_seen = false;
  std::uint32_t m_block_size = 0;
  std::uint64_t m_max_block = 0;
  std::string m_max_block_key;
  std::unique_ptr<StagingWrites> m_writes;  // once the staging prefix is chosen
  RoomGuard m_room{"the restore"};
  std::uint64_t m_hash_bytes = 0;  // of the hash record being staged
  // With no server (verify), the duplicates StagingWrites would find: the
  // records' keys and the current hash's fields (64-bit hashes, as
  // DumpRules keeps a full dump's).
  U64Set m_keys;
  U64Set m_fields;
};

// How restore and verify begin the line refusing an incremental dump that
// leaves a filesystem fsck does not find clean; the first problem follows.
inline constexpr std::string_view k_incremental_damaged =
    "dump: the incremental dump would leave a damaged filesystem: ";

// Hands every call to `full`, or to `inc` once the header says version 2.
class ChooseSink : public dump::Sink {
 public:
  ChooseSink(dump::Sink& full, IncrementalRestore& inc) : m_full(full), m_inc(inc), m_to(&full) {}
  Status on_header(const dump::Header& h) override {
    m_to = h.version == dump::k_version_incremental ? static_cast<dump::Sink*>(&m_inc) : &m_full;
    return m_to->on_header(h);
  }
  Status on_string(std::string_view k, std::string&& v) override { return m_to->on_string(k, std::move(v)); }
  Status on_hash_begin(std::string_view k) override { return m_to->on_hash_begin(k); }
  Status on_hash_fields(std::string_view k, std::vector<std::pair<std::string, std::string>>&& p) override {
    return m_to->on_hash_fields(k, std::move(p));
  }
  Status on_hash_end(std::string_view k) override { return m_to->on_hash_end(k); }
  Status on_delete(std::string_view k) override { return m_to->on_delete(k); }
  void at(dump::Position p) override { m_to->at(p); }

 private:
  dump::Sink& m_full;
  IncrementalRestore& m_inc;
  dump::Sink* m_to;
};

}  // namespace redisfs
