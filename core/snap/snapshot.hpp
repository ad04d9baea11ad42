// Whole-filesystem operations on the server: the freeze that makes a copy
// point-in-time, copy (re-prefix), delete, list, and the temporary prefixes
// that dump and restore work in. dump_io.hpp builds dump and restore on
// these. No FUSE, no CLI: redisfs-snap's subcommands and the tests call
// these directly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "redis/redis.hpp"
#include "store/keys.hpp"
#include "store/superblock.hpp"
#include "util/result.hpp"

namespace redisfs {

class Progress;
class RoomGuard;

// ---------------------------------------------------------------- freeze

inline constexpr long k_freeze_ttl_ms = 10000;
inline constexpr std::chrono::milliseconds k_freeze_wait{30000};

// The records a running tool or mount keeps alive by refreshing them (a
// freeze, a snapshot's COW deadline, a reservation, a writeback claim) are
// never set more than k_lease_max_ms ahead: each holder's period is 10 or
// 30 s. One further ahead, or with no time to live at all, was written by
// no holder (damage, or another program), and would otherwise hold every
// change, repair or snapshot for as long: fsck reports and removes it, and
// a freeze or a snapshot record's deadline past it counts as dead for
// everyone (prelude.lua: freeze_alive, cow_deadline_alive).
inline constexpr std::int64_t k_lease_max_ms = 60000;
static_assert(k_lease_max_ms >= 2 * k_freeze_ttl_ms, "a freezer's or copier's own lease must count as alive");
// Whether a PTTL reply (ms; -1: no time to live) is one a holder sets.
// prelude.lua's freeze_alive, which every change script and the freezer
// use, keeps the same rule for the freeze.
inline bool lease_ttl_plausible(std::int64_t pttl_ms) { return pttl_ms >= 0 && pttl_ms <= k_lease_max_ms; }
// A copy-on-write snapshot's record (<prefix>:COW, CowSnapshot below) is
// alive while its deadline (ms, the server's clock) is ahead of now, within
// k_lease_max_ms. prelude.lua's cow_deadline_alive, which every script
// uses, keeps the same rule with the same number (k_lease_max).
bool cow_deadline_alive(std::int64_t deadline_ms, std::int64_t now_ms);
// For a refusal because of the lease `key` of filesystem `prefix`: when no
// holder set it (lease_ttl_plausible), a hint naming the repair that
// removes it ("; ... fsck --repair ..."), else "".
std::string endless_lease_hint(Connection& c, const std::string& key, const std::string& prefix);
// For a refusal because a mount's session key `key` (or a claim that lapses
// with it) is live: endless_lease_hint when none set it, else when it
// lapses, for a mount that stopped without unmounting (kill -9, a crash:
// its key outlives it by up to 30 s); "" when it is gone.
std::string session_lapse_hint(Connection& c, const std::string& key, const std::string& prefix);

// Ends a lease (a freeze, a snapshot, a reservation) with `script`, which
// deletes `key` and answers 1 if it held `token` (in the hash field
// `token_field`, or as the string's value when that is empty) and had not
// lapsed, else 0. Whether the lease was ours to the end. When its reply is
// lost, the script may have run or not, and a second run would answer 0
// (the first took the key): the key still holding the token says it did
// not run, and it is sent again; a key without it says it ran, for the
// lease (`ttl` long) cannot have lapsed by itself while less than half of
// it has passed since `extended`, when the step that last extended it was
// sent. Past that, the lost reply's error.
Result<bool> end_lease(Connection& c, lua::ScriptId script, const std::string& key, const std::string& token,
                       const std::string& token_field, std::chrono::steady_clock::time_point extended,
                       std::chrono::milliseconds ttl);

// <prefix>:FREEZE held by us (with a random token). While it exists every
// change script of every mount fails with FROZEN and is retried by its
// daemon, so the filesystem's keys cannot change. Refresh it at least every
// few seconds; release() says whether it was held the whole time.
class Freeze {
 public:
  // Waits up to `wait` while another freeze holds it or a copy-on-write
  // snapshot (CowSnapshot) is alive.
  static Result<Freeze> acquire(Connection& c, const Keys& keys, std::chrono::milliseconds wait = k_freeze_wait);

  // EAGAIN when the freeze was lost (expired, or taken by someone else).
  Status refresh(Connection& c);
  // Refreshes only if more than a second went by since the last refresh.
  Status keep_alive(Connection& c);
  // Deletes the freeze; EAGAIN when it was lost before (nothing is deleted).
  Status release(Connection& c);
  bool held() const { return m_held; }

 private:
  Freeze(std::string key, std::string token, std::chrono::steady_clock::time_point extended);

  std::string m_key;
  std::string m_token;
  bool m_held = false;
  std::chrono::steady_clock::time_point m_last_refresh;  // when the last refresh (or the acquire) was sent
};

// ---------------------------------------------------------------- copy-on-write

// A snapshot taken copy-on-write: writers never wait for the copy.
//
// begin() is the instant (cow_begin.lua, one atomic step): it records
// <prefix>:COW (keys.hpp: the staging prefix, a token, a deadline) and copies
// the superblock. From then on, every change script of every mount copies
// the filesystem keys it names to the staging prefix before it changes
// them, in the same atomic step, unless a copy is there already; a key that
// did not exist is recorded in <staging>:TOUCHED instead (prelude.lua,
// cow_pending). The copier walks the staging prefix's own structure
// (copy_keys_cow), copying each key before it reads it unless a script did
// first: what it finds is the filesystem as it was at the instant, however
// it changes meanwhile. end() stops the scripts' copies.
//
// The snapshot lives while its copier refreshes it (every second; it dies
// k_freeze_ttl_ms after the last refresh): a copier that crashed or stalled
// stops costing the writers anything then, and its copy is thrown away
// (refresh() and end() say so). The next snapshot of the prefix removes
// what a dead one left (begin(): dead_staging()). A record whose deadline
// lies further ahead than any copier puts it (k_lease_max_ms) was
// written by no copier: everyone takes it for dead (cow_deadline_alive).
// What the staged superblock says of its identity (superblock.hpp): a dump
// copies it as it is; a read-only snapshot gets a new snapshot_id,
// appended to the source's lineage in the same step; a writable clone
// keeps the lineage and has no snapshot_id.
enum class Identity { AsIs, Snapshot, Clone };

class CowSnapshot {
 public:
  // Waits while the filesystem is frozen (up to k_freeze_wait) or another
  // snapshot of it is alive (as long as it lives). `dst`: the prefix a
  // copy is for (`list` shows it as "copying N%"), or "" (a dump).
  static Result<CowSnapshot> begin(Connection& c, const Keys& source, const Keys& staging, std::string_view dst,
                                   Identity identity = Identity::AsIs);

  std::int64_t instant_ns() const { return m_instant_ns; }
  // Identity::Snapshot: the id it was given.
  const std::string& snapshot_id() const { return m_snapshot_id; }
  // The staging prefix of a snapshot whose copier died, replaced by this
  // one (empty: none): remove_staging() it.
  const std::string& dead_staging() const { return m_dead; }
  // Identity::Snapshot: whether its change record (keys.hpp, CHANGED) was
  // staged at the instant, and listed in the staging index.
  bool changed_staged() const { return m_changed_staged; }
  // Records progress and keeps it alive, at most once a second; EAGAIN
  // when it lapsed (its copy is no longer one instant).
  Status keep_alive(Connection& c, std::uint64_t done, std::uint64_t total);
  // Refreshes it now, recording why its copier keeps it though another
  // tool waits for it (a dump that cannot hand it over): the waiting tool's
  // refusal says so (Freeze::acquire).
  Status keep_noting(Connection& c, std::string_view kept);
  // Ends it: EAGAIN when it had lapsed before. The caller then removes
  // <staging>:TOUCHED (or the whole staging prefix: remove_staging).
  Status end(Connection& c);
  bool alive() const { return m_alive; }
  // Whether the last refresh found another tool waiting for it to end
  // (cow_refresh.lua).
  bool wanted() const { return m_wanted; }
  const std::string& token() const { return m_token; }
  // <source>:COW, in the slot of the staging prefix.
  const std::string& key() const { return m_cow; }

 private:
  CowSnapshot(const Keys& source, std::string token);
  Status refresh(Connection& c, std::uint64_t done, std::uint64_t total, std::string_view kept = {});

  std::string m_cow;      // <source>:COW
  std::string m_token;
  std::string m_dead;
  std::string m_snapshot_id;
  std::int64_t m_instant_ns = 0;
  bool m_changed_staged = false;
  bool m_alive = false;
  bool m_wanted = false;
  std::chrono::steady_clock::time_point m_last_refresh;  // when the last refresh (or the instant) was sent
};

// Keeps `cow` alive from a thread of its own (a lease of `pool`), for a
// copier that may stall for longer than the snapshot outlives its last
// refresh: a dump whose reader stops reading for a while. Nothing else
// touches `cow` until stop() (or the destructor) has ended the thread.
// (The refreshes record no progress: `list` shows none for a dump.)
//
// While the snapshot lives, every write copies what it changes first, and
// the copier cannot count those copies; so the keeper also looks at the
// server's memory every second (ten times as often when the room is less
// than 64 MiB; room.hpp, RoomGuard `room_what`), and
// once it is below the margin ends the snapshot, so that the writers stop
// copying for it: the copier's next step finds it lapsed, and why() says
// why (the guard's one line).
//
// A snapshot that another tool waits for (CowSnapshot::wanted) is handed
// over: `handover` makes the staging prefix hold all the copier still
// needs (cow_copy_listed_blocks), then the keeper ends the snapshot and
// handed_over() says so: the copier reads the rest from its staging
// prefix, and the other tool begins its own. When `handover` finds no
// room for what it would copy (EAGAIN), the snapshot stays the copier's,
// and kept() says why, and so does the snapshot's record, for the tool
// that waits (CowSnapshot::keep_noting); it is tried again at each look,
// as room appears and what the copier has not read shrinks. Any other
// failure keeps the snapshot until the copier ends.
class CowKeeper {
 public:
  using Handover = std::function<Status(Connection& c, CowSnapshot& cow, RoomGuard& room)>;
  CowKeeper(Pool& pool, CowSnapshot& cow, std::string room_what, Handover handover = {});
  ~CowKeeper();
  CowKeeper(const CowKeeper&) = delete;
  CowKeeper& operator=(const CowKeeper&) = delete;
  void stop();
  // After stop(): the room guard's error when the keeper ended the snapshot.
  const std::optional<Error>& why() const { return m_why; }
  bool handed_over() const { return m_handed_over.load(); }
  // After stop(): why a snapshot another tool asked for was not handed over.
  const std::optional<Error>& kept() const { return m_kept; }

 private:
  void loop();
  void hand_over(Connection& c);

  Pool& m_pool;
  CowSnapshot& m_cow;
  Handover m_handover;
  bool m_handover_final = false;  // (handed over, or failed otherwise than for room)
  std::atomic<bool> m_handed_over{false};
  std::unique_ptr<RoomGuard> m_room;
  std::optional<Error> m_why;  // (written by the thread, read after stop())
  std::optional<Error> m_kept;  // (likewise)
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_stop = false;  // m_mutex
  std::thread m_thread;
};

// Copy-on-write needs the staging prefix in the source's slot (on a
// cluster, scripts touch keys of one slot only); the staging prefix is
// made from the source's name, so it always is. A copy to another slot
// freezes instead (copy_keys_frozen).
//
// While `cow` is alive: fills the staging prefix `tk` with every filesystem
// key of `sk` as it was at the instant (but the superblock, which begin()
// copied), each with the staging TTL, and RPUSHes their relative names to
// the list staging_index_key(tk) (push_index). The keys are those the staging prefix's
// own structure names (key_walk.hpp); when it disagrees with its
// superblock (a damaged filesystem), every key SCAN finds under either
// prefix is taken, and `warning` says so. `after_page` gets each batch
// found; `room`, if any, what each batch staged (room.hpp: it stops the
// copy before the server runs out of memory). Returns how many keys `tk`
// holds (the superblock too).
//
// CowMode::Probe leaves the blocks where they are (cow_copy.lua): each is
// listed if it existed at the instant, but only a change script's copy is
// in `tk`, and the reader takes the rest later, a batch at a time
// (cow_take_batch), while the snapshot is still alive. A filesystem whose
// structure disagrees is copied whole all the same.
enum class CowMode { Copy, Probe, Take };
Result<std::uint64_t> copy_keys_cow(Connection& c, const Keys& sk, const Keys& tk, CowSnapshot& cow,
                                    const std::function<Status(std::span<const std::string_view> copied)>& after_page,
                                    std::string* warning = nullptr, RoomGuard* room = nullptr,
                                    CowMode blocks = CowMode::Copy);

// For a reader that takes the blocks copy_keys_cow(..., CowMode::Probe)
// left, a batch at a time: appends to `c`'s pipeline the step
// (cow_copy.lua, 'take') that puts each of `rels` in `tk` as it was at the
// instant and keeps every change script from copying it again, so that
// the reader, once it has read the copies, removes them: the staging
// prefix never holds more than the batches in flight and what writers
// changed before the reader came to it. cow_take_found reads its reply:
// found[i] as a KeyVisitor says (key_walk.hpp); EAGAIN once the snapshot
// lapsed. A read pipelined behind the take may run before it, when the
// take is sent again (a server that lost the script: NOSCRIPT): it finds
// no copy then, and must be read again (a copy, once made, never changes).
void cow_take_batch(Connection& c, const Keys& sk, const Keys& tk, const CowSnapshot& cow,
                    std::span<const std::string> rels);
// While `cow` is alive: copies to `tk` every block its index lists that is
// not there yet and was not taken (cow_copy.lua 'copy': a block taken is
// in TOUCHED), for a reader that hands the snapshot over (CowKeeper).
Status cow_copy_listed_blocks(Connection& c, const Keys& sk, const Keys& tk, CowSnapshot& cow, RoomGuard* room);
Status cow_take_found(Result<Reply> reply, const Keys& sk, const Keys& tk, std::span<long long> found);

// While `cow` is alive: makes sure each of `rels` (relative names) is in
// the staging prefix `tk` as it was at the instant (copied from `sk` unless
// a change script did first, or it did not exist then), and lists what `tk`
// has of them in staging_index_key(tk), so remove_staging finds them.
// found[i] as a KeyVisitor says (key_walk.hpp); `room` as copy_keys_cow's.
// For a reader that needs only some keys of the instant (diff: the
// metadata).
Status cow_copy_keys(Connection& c, const Keys& sk, const Keys& tk, const CowSnapshot& cow,
                     std::span<const std::string> rels, std::vector<long long>& found, RoomGuard* room = nullptr);

// Removes a staging prefix a copy-on-write snapshot left: the keys its
// index (staging_index_key) lists, those its TOUCHED set names, the set and
// the superblock. (A key of it that neither names expires with its TTL.)
Status remove_staging(Connection& c, const Keys& staging);

// Are these prefixes' keys in one Redis Cluster slot (the same hash tag)?
// On a cluster the server copies and renames only between such prefixes;
// a copy to another slot goes through the client (DUMP + RESTORE).
bool same_slot(const Keys& a, const Keys& b);

// With `freeze` held: copies every filesystem key of `sk` except the
// superblock to the same relative key under `dk`, in batches, refreshing
// the freeze between them: a copy into another cluster slot (!same_slot),
// which copy-on-write cannot make. The keys are those the filesystem's
// structure names (key_walk.hpp: no SCAN of the server); when the
// structure disagrees with the superblock's counters (a damaged
// filesystem), every key SCAN finds is copied as well, and `warning` (if
// given) says so and names fsck. They go through the client: DUMP, then
// RESTORE with the TTL (a temporary copy never exists without one; a
// destination that exists is not copied). After each batch, `after_page`
// (if any) gets the relative keys that batch copied; `room`, if any, is
// told what each batch staged, and the batches stay within what it lets
// pass before its next look (room.hpp). Returns how many keys were copied.
Result<std::uint64_t> copy_keys_frozen(
    Connection& c, const Keys& sk, const Keys& dk, Freeze& freeze, std::optional<long long> ttl_ms,
    const std::function<Status(std::span<const std::string_view> copied)>& after_page, std::string* warning = nullptr,
    RoomGuard* room = nullptr);

// RPUSH `rels` to the list `index` and give it the temporary TTL: the list
// of the keys a copy into a temporary prefix made, which dump and copy
// walk instead of SCANning again (SCAN can repeat a key; a list cannot).
Status push_index(Connection& c, const std::string& index, std::span<const std::string_view> rels);

// ---------------------------------------------------------------- helpers

// What every toolkit entry point does first with a prefix it was given, on
// its connection: validate_prefix, and on a Redis Cluster
// check_cluster_prefix (a filesystem's keys must share one slot), so an
// untagged prefix is refused with that hint before anything is read or
// written.
Status check_toolkit_prefix(Connection& c, std::string_view prefix);
// For a command that writes under `prefix` (`writing`: "copy", "restore",
// ...): on a Redis Cluster, EINVAL "refusing to <writing> (on the master
// of 'P'): the server's maxmemory-policy is ..." when the master of its
// slot may evict keys (the node the tool talks to is checked as it
// connects). Nothing when INFO is denied (an ACL: no check there either).
Status refuse_evicting_master(Connection& c, std::string_view prefix, std::string_view writing);

// The superblock of `keys`, decoded (superblock.hpp): ENOENT "no
// filesystem at prefix ..." when there is none, EINVAL when it is unsound
// (superblock_not_hash when it is no hash).
Result<Superblock> read_superblock(Connection& c, const Keys& keys);

// Interrupting a long operation (SIGINT/SIGTERM in redisfs-snap): loops
// check the flag between batches and fail with ECANCELED after cleaning up.
void request_cancel() noexcept;
bool cancel_requested() noexcept;
Status check_cancel();
// RFC 3339 UTC, e.g. "2026-11-29T19:40:00.123Z" (millisecond precision).
std::string iso_time_ns(std::int64_t ns);
// The server's clock (TIME) in nanoseconds, where the key `at` lives: on a
// Cluster, its slot's master, whose scripts stamp that filesystem's times
// and deadlines with their own TIME (hosts' clocks differ); "" the node
// `c` talks to.
Result<std::int64_t> server_time_ns(Connection& c, std::string_view at);
// "1.0 GiB", "12.3 MiB", "512 B".
std::string human_bytes(std::uint64_t n);

// Temporary prefixes: "<base>~dump~<hex>" while a dump is taken,
// "<base>~restore~<hex>" while a restore is staged, "<base>~copy~<hex>"
// while a copy is staged. Their keys carry a TTL, so a crashed dump, restore
// or copy cleans itself up. "<base>~replaced~<hex>" holds a filesystem that
// a restore or copy --force is replacing, for the moment of the swap (no
// TTL: it is the user's data until the new filesystem is whole).
enum class TempKind { None, Dump, Restore, Copy, Replaced };
inline constexpr std::string_view k_dump_tag = "~dump~";
inline constexpr std::string_view k_restore_tag = "~restore~";
inline constexpr std::string_view k_copy_tag = "~copy~";
inline constexpr std::string_view k_replaced_tag = "~replaced~";
std::string_view temp_tag(TempKind kind);
inline constexpr long k_temp_ttl_ms = 12L * 3600 * 1000;
// <base><tag><k_temp_hex_len random hex digits>, within validate_prefix's
// bounds whatever the base.
inline constexpr std::size_t k_temp_hex_len = 16;
std::string make_temp_prefix(std::string_view base, TempKind kind);
TempKind temp_kind(std::string_view prefix);
// EINVAL when `prefix` has a temporary prefix's form (temp_kind), which no
// filesystem of the user's may take: `list` hides it, its keys may carry a
// TTL, and the tool whose name it is may remove it. `as`: what the name
// would be ("the copy's destination", "a read-write mount").
Status refuse_temp_name(std::string_view prefix, std::string_view as);

// What is under a prefix right now, found without SCAN: the superblock,
// the keys a filesystem or a tool always leaves (ORPHANS, the root inode,
// INSTALLING, MOUNTS) and the live mounts in the register. With
// `thorough`, when none of those exist, a SCAN looks for any key at all
// (delete's "no key under prefix" costs O(server); copy and restore need
// not: their final move never overwrites a key, install.hpp).
struct PrefixState {
  bool has_sb = false;
  bool any_key = false;    // any key at all under "<prefix>:" (but RESERVED, FREEZE, OPLOG)
  std::uint64_t mounts = 0;  // live mounts (MOUNTS fields whose MOUNT:<id> exists)
  std::string mounts_hint;   // live_mounts_hint of them, for a refusal
};
Result<PrefixState> probe_prefix(Connection& c, const Keys& keys, bool thorough = false);

// `e`, the error of a command on the superblock of `keys`: for one of the
// wrong type, superblock_not_hash. Else `e` as it is.
Error superblock_read_error(const Connection& c, const Keys& keys, Error e);

// `e`, when the server refused a command for a key of the wrong type
// (WRONGTYPE, which names no key), with where to look: fsck of `prefixes`
// names the key and repairs it. Else `e` as it is.
Error with_damage_hint(Error e, std::initializer_list<std::string_view> prefixes);

// "is mounted (1 live mount)", "is mounted (3 live mounts)": how a refusal
// because of live mounts names them.
std::string mounted_count(std::uint64_t mounts);

// The sessions in <prefix>:MOUNTS whose <prefix>:MOUNT:<id> exists: the
// live mounts, counted without SCAN; when MOUNTS is damaged (not a hash),
// the <prefix>:MOUNT:<id> keys a SCAN finds.
Result<std::vector<std::string>> live_mounts(Connection& c, const Keys& keys);
// For a refusal because `live` (live_mounts) is not empty: when one of
// their session keys never lapses (no mount sets one so: damage, or another
// program) and `name_endless`, endless_lease_hint of it, which names the
// repair; else session_lapse_hint of the one that lapses last. (fsck
// --repair passes false: it removes those itself.)
std::string live_mounts_hint(Connection& c, const Keys& keys, const std::vector<std::string>& live,
                             bool name_endless = true);

// UNLINKs every key matching "<prefix>:*" but <prefix>:FREEZE (SCAN +
// UNLINK in batches), keeping `freeze` alive if given; returns how many were
// removed.
Result<std::uint64_t> unlink_all(Connection& c, const Keys& keys, Freeze* freeze = nullptr,
                                 Progress* progress = nullptr);

// Adds `prefix` to the register of filesystems (keys.hpp), best effort: a
// user whose ACL keeps it off the register is simply not registered.
void register_filesystem(Connection& c, std::string_view prefix);

// Does `target` hold a key that the filesystem staged under `staged` would
// occupy or name (a hole's block, an absent XATTR or DIR included)? Walks
// the staged filesystem (key_walk.hpp) and asks EXISTS of each name under
// `target`, instead of SCANning the server for "<target>:*": the key found,
// or nullopt. A key the new filesystem does not name cannot change what it
// holds; it is left alone (fsck reports it).
Result<std::optional<std::string>> find_collision(Connection& c, const Keys& staged, const Keys& target);

// UNLINKs the keys of a temporary prefix that `index` lists (relative
// names, as push_index wrote them), its superblock and the list itself: a
// temporary copy removed without a SCAN of the server. A key a failure
// left off the list expires with its TTL. Returns how many were removed.
Result<std::uint64_t> unlink_listed(Connection& c, const Keys& keys, const std::string& index);

// ---------------------------------------------------------------- operations

struct CopyOptions {
  bool force = false;     // replace an existing (unmounted) destination
  bool writable = false;  // a writable clone instead of a read-only snapshot
  bool quiet = false;     // no progress line
};

struct CopyStats {
  std::uint64_t keys = 0;
  bool replaced = false;  // an existing DST was replaced (--force)
  std::string warning;    // something to tell the user although the copy succeeded
  std::uint64_t bytes = 0;  // file data (the superblock's usage total)
  std::int64_t snapshot_ns = 0;
  double seconds = 0;
};

// Re-prefixes every filesystem key of `src` to `dst` on the server (COPY),
// under src's freeze: the copy is the state of one instant even while src is
// mounted read-write and busy. dst's superblock gets origin, snapshot_created
// and read_only (unless writable), and its identity (Identity: a read-only
// snapshot a new snapshot_id, appended to src's lineage in the same step). dst is reserved for the whole copy, which
// is made under a staging prefix (keys with a TTL) and moved into place at
// the end (install.hpp). dst must hold no key, unless force (then the old
// dst is replaced only once the copy is whole, and never while mounted).
Result<CopyStats> copy_filesystem(Pool& pool, const std::string& src, const std::string& dst,
                                  const CopyOptions& opts);

// A filesystem held by a writeback mount (keys.hpp, WRITEBACK) has data
// the server lacks: pages the kernel has not written back, writes the
// mount gathers. Before a snapshot's instant, copy, dump and diff ask that mount
// to send them (keys.hpp, SYNC) and wait up to `wait` for its answer, so
// that the snapshot has every write made before it was asked for. No
// writeback mount: nothing to do. No answer in time (a mount stalled, or
// older than this request): `warning` says the snapshot has what the
// server has, and it goes on.
inline constexpr std::chrono::milliseconds k_writeback_sync_wait{30000};
// A wait for it longer than this is said (on stderr unless -q): the mount
// looks for a request every 2 s.
inline constexpr std::chrono::milliseconds k_writeback_note_after{3000};
Status sync_writeback_mount(Connection& c, const Keys& sk, std::chrono::milliseconds wait, std::string& warning);

// A snapshot of `sk` in the fresh staging prefix `tk` (copy-on-write
// where the server can, else frozen: copy_filesystem's first half), its
// unlinked-but-open files dropped and its superblock marked as a copy made
// for `dk` (origin, snapshot_created, read_only unless opts.writable).
// Returns how many keys `tk` holds and the instant; on failure nothing of
// `tk` is left.
Result<std::pair<std::uint64_t, std::int64_t>> snapshot_to_staging(Connection& c, const Keys& sk, const Keys& tk,
                                                                   const Keys& dk, const CopyOptions& opts,
                                                                   Progress& progress, std::string& warning);

struct DeleteStats {
  std::uint64_t keys = 0;
  std::string warning;  // something to tell the user although the delete succeeded
  double seconds = 0;
};

// Removes every key of `prefix`: the superblock first (so it stops looking
// like a filesystem), then the rest, found from its structure (key_walk.hpp)
// and its mounts' register, or, when the structure disagrees with the
// superblock or there is none, by SCAN (`warning` then says so). Keys with a
// TTL that nothing names (TMP:*) are left to expire. Waits for a running snapshot of it to
// end first. Refuses a mounted prefix unless `even_if_mounted`; ENOENT when
// there is no key at all.
Result<DeleteStats> delete_prefix(Pool& pool, const std::string& prefix, bool even_if_mounted, bool quiet);

struct FsInfo {
  std::string prefix;
  std::string kind;  // filesystem, snapshot, clone, read-only, damaged, dump-temp, restore-staging
  std::string origin;
  std::string restored_from;             // restored dumps: the prefix in the dump's header
  std::string snapshot_id;               // superblock.hpp ("" none)
  std::vector<std::string> lineage;      // oldest first
  std::string problem;                   // why the superblock cannot be used (kind "damaged")
  std::int64_t created_ns = 0;           // the filesystem's creation
  std::int64_t snapshot_created_ns = 0;  // 0 unless it is a copy
  std::int64_t dumped_ns = 0;            // restored dumps: the dump's point in time
  // The clock of its server (its master, on a cluster: the clock that
  // stamped its times) when it was listed; its ages count from this.
  std::int64_t listed_ns = 0;
  std::uint64_t inodes = 0;
  std::uint64_t bytes = 0;
  std::uint64_t mounts = 0;
  std::uint32_t block_size = 0;
  int version = 0;
  bool read_only = false;
  bool temporary = false;
  // A snapshot being taken (CowSnapshot): on the source's staging prefix
  // and on the destination of a copy, listed with kind "copying" until it
  // is moved into place. How far the walk is, in % of the inodes (-1: not
  // a snapshot being taken).
  int progress = -1;
};

// A read-only snapshot of a filesystem, as a mount's .snapshots directory
// lists it (redisfs(1)).
struct SnapshotRef {
  std::string prefix;
  std::string identity;  // filesystem_identity() of its superblock
  std::int64_t snapshot_created_ns = 0;
};

// The read-only snapshots whose origin is `origin`, sorted by prefix: the
// register of filesystems (keys.hpp) and one HMGET of each registered
// superblock, in one pipeline; never a SCAN of the server. Temporary
// prefixes and `origin` itself are left out. A register the user may not
// read (an ACL) is an error (EACCES), not an empty list.
Result<std::vector<SnapshotRef>> snapshots_of(Connection& c, std::string_view origin);

// Every filesystem on the server, sorted by prefix: those in the register
// (keys.hpp) whose superblock exists, or, when the user may not read the
// register, every "<prefix>:SB" a SCAN finds (on a Redis Cluster, on every
// master); with `all`, always a SCAN of every key, and each filesystem
// found is registered; those whose superblock the user may
// not read (NOPERM: an ACL user and another tenant's prefix) left out;
// temporary dump/restore prefixes only when `all`.
Result<std::vector<FsInfo>> list_filesystems(Pool& pool, bool all);
std::string list_as_json(const std::vector<FsInfo>& list);
// The table for a person: fs_report.hpp.

}  // namespace redisfs
