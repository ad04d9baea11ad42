// Putting a whole filesystem in place under its final prefix, so that the
// old one survives until the new one is whole.
//
// restore and copy build the new filesystem under an expiring staging
// prefix ("<name>~restore~<hex>", "<name>~copy~<hex>"); a crash there
// leaves keys that expire by themselves and never touch <name>. Then:
//
//   1. RESERVATION. <name>:RESERVED (SET NX with a TTL, refreshed by a
//      thread of its own every few seconds for as long as the tool runs) is
//      taken before the target is even looked at. Store::open registers its
//      mount first and then refuses a reserved prefix; mkfs.lua refuses it
//      too. A tool reserves first and then counts mounts. One of the two
//      sees the other, so a mount never starts inside a restore, copy or
//      delete, and a tool never replaces a mounted filesystem.
//   2. MOVE ASIDE (only when replacing): every key of <name> is RENAMEd to
//      "<name>~replaced~<hex>", superblock first, so that from the first
//      step on the old filesystem is whole in one place or the other.
//   3. SWAP: every staged key is RENAMENX'd to <name> and PERSISTed, in
//      MULTI/EXEC batches, superblock last: until the superblock arrives
//      <name> is not a filesystem, and nothing mounts it (reserved anyway).
//   4. DELETE LAST: the replaced filesystem is removed once the new one is
//      complete; or, for a rollback that keeps it (KeepReplaced), it becomes
//      a read-only snapshot under a name of its own: its superblock marked
//      (snapshot_id, lineage, read_only, origin, snapshot_created), its
//      unlinked-but-open files dropped, its filesystem keys RENAMEd there
//      (superblock last) and the running system's keys (mounts, opens)
//      removed.
//
// Steps 2 to 4 run with <name>:FREEZE held, so a snapshot (copy or dump) of
// <name> never sees it half moved. They are journaled in <name>:INSTALLING: a tool killed midway
// leaves it, and the next tool or mount of <name> finishes the move.
//
// An incremental restore (dump_incremental.hpp) stages only the new and
// changed keys and the names of the deleted ones; apply_staged_delta puts
// them in place over the base, with the freeze held and journaled as phase
// "delta": it cannot roll back (the base's old keys are overwritten), so
// it rolls forward, and whoever finds the journal runs it again to its end.
//
// Any failure in 2 or 3 rolls back: the keys moved to <name> are removed
// (the staging copy or the dump is where they came from) and the replaced
// filesystem is moved back. If the rollback itself cannot finish (the
// server went away), the error says where the old filesystem is.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "redis/redis.hpp"
#include "store/keys.hpp"
#include "util/fault.hpp"  // (the toolkit's steps are where the tests inject faults)
#include "util/result.hpp"

namespace redisfs {

inline constexpr long k_reservation_ttl_ms = 30000;

// A restore's refusal to start on its target now (reserved by another
// tool, an interrupted move it cannot finish): "refusing to restore now:
// <why>". A server out of reach is no refusal: its error as it is.
Error refusing_now(Error e);

// <prefix>:RESERVED, held by this process until release() or destruction.
class Reservation {
 public:
  // EBUSY when someone else holds it (the message says who).
  static Result<std::unique_ptr<Reservation>> acquire(Pool& pool, const Keys& keys, std::string_view what);
  // The same, also over a reservation no holder set (no string, never
  // lapsing, or living longer than any holder sets: damage, which would
  // refuse the repair that removes it), for fsck --repair: `replaced` says
  // what was there ("type <t>" or "pttl <ms>"), or is empty.
  static Result<std::unique_ptr<Reservation>> acquire_over_damaged(Pool& pool, const Keys& keys, std::string_view what,
                                                                   std::string& replaced);
  ~Reservation();
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  // EAGAIN once the reservation was lost (expired or taken over): whatever
  // the holder was about to commit must not be committed. (What the last
  // refresh found: every 5 s.)
  Status check() const;
  // The same, asking the server now (one GET): for the step before a
  // commit, where one taken over since the last refresh must be seen.
  Status verify(Connection& c) const;
  // Ends it (DEL only while it is still ours); EAGAIN if it was lost.
  Status release();

 private:
  Reservation(Pool& pool, std::string key, std::string token, std::chrono::steady_clock::time_point extended);
  void refresh_loop();

  Pool& m_pool;
  std::string m_key;
  std::string m_token;
  mutable std::atomic<bool> m_lost{false};
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_stop = false;
  std::chrono::steady_clock::time_point m_extended;  // when its last refresh (or the SET) was sent; m_mutex
  std::thread m_thread;
};

// Who holds <prefix>:RESERVED ("restore by host:pid"), or nullopt: none,
// or a key that is no string (damage, no tool's: fsck's repair replaces it).
Result<std::optional<std::string>> reservation_holder(Connection& c, const Keys& keys);

struct InstallResult {
  std::uint64_t moved = 0;  // keys now under the target
  bool replaced = false;    // an old filesystem was there and was removed
  std::string warning;      // the old filesystem could not be removed
};

// The list of the keys (relative names) a staging prefix was filled with:
// "<staging>~index", outside the staging prefix (so fsck of the staged
// filesystem does not see it) and with the staging TTL. The swap walks it
// instead of SCANning the whole server for the staged keys.
std::string staging_index_key(const Keys& staging);

// An incremental restore's list of the keys it deletes (relative names):
// "<staging>~deletes", beside the index, with the staging TTL.
std::string staging_deletes_key(const Keys& staging);

// With the target's reservation held: deletes from `target` the keys
// staging_deletes_key(staging) lists, then moves every key
// staging_index_key(staging) lists over the target's (superblock last),
// journaled (phase "delta"). Returns how many keys changed. A failure
// midway leaves the journal: finish_install completes the move.
Result<std::uint64_t> apply_staged_delta(Connection& c, const Keys& staging, const Keys& target);

// Steps 2 to 4 above, with the target's reservation held: moves every key
// of `staging` to `target`. `expected` (0: unknown) is how many keys the
// staging prefix must hold; a different count fails (and rolls back). With
// `replace` the target's keys are moved aside first; without, the target
// must hold no key but the reservation. With `indexed`, the staged keys are
// those listed in staging_index_key(staging) (which is then removed).
// With `keep` (and `replace`), step 4 keeps the replaced filesystem as the
// read-only snapshot `keep` (which must hold no key) instead of deleting it.
Result<InstallResult> install_staging(Connection& c, const Keys& staging, const Keys& target, bool replace,
                                      std::uint64_t expected, bool indexed = false,
                                      const std::optional<Keys>& keep = std::nullopt);

// A snapshot or a restored dump has no open files: the orphans it was
// taken with (files unlinked while some mount had them open) are removed
// from the staged copy before it is checked and moved in, with their
// blocks, xattrs and entries, and the superblock's totals follow. An
// orphan record that does not name an unlinked inode with a readable
// `bytes` is left for fsck to judge. Returns how many keys were removed.
Result<std::uint64_t> drop_staged_orphans(Connection& c, const Keys& staging);

// The rule drop_staged_orphans applies to one orphan record, from the
// fields of the inode it names (absent: nullopt) and the superblock's
// block_size (0: unreadable): it is dropped when its nlink is "0" and its
// bytes and size read as integers, not negative. Returns its bytes and
// size; nullopt leaves it for fsck to judge. (verify applies it to a dump.)
struct StagedOrphan {
  std::uint64_t bytes = 0;
  std::uint64_t size = 0;
};
std::optional<StagedOrphan> staged_orphan_drop(std::optional<std::string_view> nlink,
                                               std::optional<std::string_view> bytes,
                                               std::optional<std::string_view> size, std::uint64_t block_size);

// A restore or copy killed during steps 2 to 4 leaves <target>:INSTALLING
// (the phase, the staging and replaced prefixes). finish_install, with the
// target's reservation held, rolls that move forward to its end (or, if the
// staged keys of a restore or copy expired, back: the old filesystem, or
// none, is in place again, and that is no failure). Returns a line saying
// which, for the user, or "" when there was no move to finish. Every tool
// calls it after reserving a prefix; finish_install_reserved takes the
// reservation itself (Store::open).
Result<std::string> finish_install(Connection& c, const Keys& target);
Result<std::string> finish_install_reserved(Pool& pool, const Keys& target);
// A prefix about to be read as it is (a copy's, dump's or diff's source):
// an interrupted move into it is finished first, as a mount would, so that
// nothing reads half of one (an incremental restore's changes apply over
// the old superblock: half applied, it looks whole). While a running tool
// holds the prefix's reservation the move may be its own, not interrupted:
// nothing is done, and `wait` says what then: true, a copy-on-write
// snapshot (cow_begin.lua waits for the mover's freeze, and refuses a
// journal no freeze guards); false, EBUSY (refuse_unfinished_install).
// What finishing did is added to `warning` (add_warning).
Status finish_install_before_read(Pool& pool, const Keys& keys, bool wait, std::string& warning);
// EBUSY naming the interrupted move when <target>:INSTALLING exists (what
// must not be repaired or checked half done: fsck), else nothing.
Status refuse_unfinished_install(Connection& c, const Keys& target);

}  // namespace redisfs
