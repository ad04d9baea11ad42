// Session: the state of one mount, shared by every op.
//
// The kernel counts the lookups we hand out (every entry reply, every
// readdirplus entry) and gives them back with FORGET. An inode that loses
// its last name while this host still holds a lookup of it (an open file,
// typically) becomes an orphan: Store::unlink/rename report it, and its
// data lives on in Redis until the kernel forgets it here, then purge()
// frees it. Lookup counts are kept only for inodes the kernel knows.
//
// Locking: one mutex guards the counts and the orphan set; nothing else
// happens under it (no Redis call, no reply).
//
// Gone: the filesystem under the mount can be deleted (`redisfs-snap
// delete --force`) or replaced by another one under the same prefix (its
// superblock's `created` differs). The watcher (daemon.cpp) checks that
// every few seconds, and an op that finds an inode it had missing asks at
// once (check_gone). From then on the Session is gone for good: every op
// answers ESTALE (RefuseWhenGone, reply.hpp), nothing more is sent to the
// server, and the watcher has the kernel drop what it caches of the mount
// (invalidate_kernel).
//
// Releases: the kernel does not wait for RELEASE, so neither do we. An op
// queues the inode (release_later) and one thread, after letting more
// gather for a few milliseconds, sends what is queued in one pipeline
// (Store::release_files, one script for up to Store::k_release_batch
// files): while a busy process opens and closes files, their releases
// share round trips and scripts instead of each taking a worker thread, a
// round trip and a script of its own.
//
// Orphans and releases: a file closed and removed at once (sqlite's
// journal) often has its RELEASE reach the daemon after the UNLINK (the
// kernel sends it asynchronously), so the unlink finds it open and it
// becomes an orphan. Its release then frees it on the server in the same
// step (Store::Release::orphan, release_orphan.lua), and the kernel's
// FORGET has nothing left to do. The kernel forgets an inode only once
// every open of it has been released, but the FORGET may overtake the
// RELEASE on its way here: the opens of each inode this mount holds are
// counted (hold), and a FORGET of an orphan that still has some leaves the
// purge to the release, which does it, or hands it over, with its answer.
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kernel_sizes.hpp"
#include "store/store.hpp"
#include "util/node_table.hpp"
#include "util/result.hpp"

namespace redisfs {

class SnapDir;

struct MountOptions {
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  bool read_only = false;
  // A read-only mount of a snapshot (its superblock says read-only):
  // nothing changes what it shows, so the kernel keeps it all longer.
  bool frozen = false;
  // -o writeback: this mount holds the filesystem alone (StoreOptions::
  // writeback); the kernel's writeback cache is on (op_init.cpp).
  bool writeback = false;
};

class Session {
 public:
  Session(Store& store, MountOptions opts);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Store& store() { return m_store; }
  const MountOptions& options() const { return m_opts; }
  bool frozen() const { return m_opts.frozen; }

  // One more lookup handed to the kernel: count it before the reply goes.
  // `type` (S_IFMT bits) is what the kernel now knows the inode as.
  void add_lookup(Ino ino, std::uint32_t type);
  // The type the kernel knows `ino` as (0 when it knows no lookup of it):
  // it fails a getattr that says otherwise with EIO, saying nothing.
  std::uint32_t known_type(Ino ino);
  // The kernel may hold pages of `ino` (a writeback mount keeps them across
  // opens): it read some, or a writer may have put some in its cache. Until
  // the kernel forgets the inode, whose pages go with it.
  void pages_cached(Ino ino);
  // Whether it may; false when it cannot (it was never read or written
  // through this mount since the kernel last looked it up afresh).
  bool may_hold_pages(Ino ino);
  // Has the kernel write back the dirty pages of every file this mount
  // holds open and may hold pages of, and waits until they are written
  // (their WRITEs answered): a writeback mount's answer to a snapshot.
  // syncfs(2) does not wait for a FUSE filesystem's writes (the kernel
  // keeps a FUSE server from holding sync up), fsync and close do, and
  // so does an invalidation of the file's pages, which this is: the pages
  // go from the kernel's cache (read again from the server). Never from an
  // op (the kernel may wait for its reply).
  void write_back_open_files(fuse_session* se);
  // Gives back `n` lookups; true when `ino` is an orphan of this mount that
  // the kernel no longer knows: the caller purges it after replying.
  [[nodiscard]] bool forget(Ino ino, std::uint64_t n);
  // `ino` lost its last link by an op of this mount. True when the kernel
  // holds no lookup of it: the caller purges it after replying.
  [[nodiscard]] bool orphaned(Ino ino);

  // `ino` lost its last link by an op of this mount and the kernel still
  // holds it (not forgotten yet).
  bool own_orphan(Ino ino);

  // `ino` was freed on the server by an op of this mount (Store::unlink's
  // `freed`): no op of any mount can change it any more. Remembered while
  // the kernel holds a lookup of it, for is_freed.
  void freed(Ino ino);
  // freed() was wrong: a writeback mount's unlink that waited did not free
  // `ino` after all (Store::Landed::kept).
  void unfreed(Ino ino);
  // True for an inode freed by this mount that the kernel still knows: a
  // writeback mount answers the kernel's write-back of its times alone.
  bool is_freed(Ino ino);

  // Store::purge, logging a failure (the orphan stays in <prefix>:ORPHANS
  // and the next mount's purge_dead_orphans frees it). True when done.
  bool purge(Ino ino);
  // purge(), later: the orphan the kernel just forgot (after an rmdir,
  // mostly: rm -rf forgets every directory it removes) is queued with the
  // releases, and goes in front of the next unlink, rmdir or rename
  // (take_releases), in its round trip, or else with the release thread's
  // next batch, at most k_purge_gather later. Nothing waits for a purge:
  // the orphan is unreachable by name, and recorded in ORPHANS meanwhile.
  void purge_later(Ino ino);
  // At unmount: the kernel does not forget everything, so purge what is
  // left of this mount's orphans.
  void purge_orphans();

  std::size_t known_inodes();
  // The inodes the kernel holds whose number is above `floor` (the
  // snapshot views': snapdir.cpp gives a slot again only when the kernel
  // holds none of its inodes).
  std::vector<Ino> known_above(Ino floor);

  // The size the kernel holds of each regular file (kernel_sizes.hpp):
  // every reply handing it a file's attributes records it.
  KernelSizes& kernel_sizes() { return m_kernel_sizes; }
  // The FUSE session, for the notifications an op sends (opened); set
  // once before the first request.
  void set_fuse(fuse_session* se) { m_fuse = se; }
  // An open of `ino` read the file's attributes on the server (`seen`,
  // Store::open_file): when the size the kernel holds may differ, the
  // kernel is told to drop the attributes before the open is answered
  // (close-to-open, kernel_sizes.hpp).
  void opened(Ino ino, const Store::Seen& seen);

  // The .snapshots directory of this mount (snapdir.hpp), or null.
  SnapDir* snapdir() const { return m_snapdir; }
  void set_snapdir(SnapDir* snapdir) { m_snapdir = snapdir; }

  // An open or a release whose outcome on the server is unknown (its reply
  // was lost): at unmount, drop_unsure_opens removes what this mount may
  // have left counted. So does a change of server during the mount (a
  // failover may lose releases the old master acknowledged); the orphans
  // the server still gives to this mount then go to purge_orphans, which
  // runs after it.
  void opens_unsure() { m_opens_unsure = true; }
  void drop_unsure_opens();
  // While mounted, after a change of server (the watcher sees
  // Store::server_changes move): the server counts again every open this
  // mount holds (Store::hold_opens), so that the opens a failover lost do
  // not let another mount free a file still open here. Logs what it did;
  // false when it failed (the watcher tries again).
  bool hold_opens_again();

  // The filesystem under this mount was deleted or replaced (see above).
  bool gone() const { return m_gone.load(); }
  // Asks the server whether the filesystem is still the one mounted (at
  // most once per 100 ms unless `force`: ops call it on every ENOENT);
  // true when it is gone.
  bool check_gone(bool force = false);
  // Enters the gone state (once; logs one line) and calls the listener.
  void mark_gone(const std::string& why);
  // Called once when the Session becomes gone (the watcher wakes up).
  void on_gone(std::function<void()> listener);
  // Has the kernel forget the attributes, data and names it caches of this
  // mount (never from an op: the kernel may wait for that op's reply).
  void invalidate_kernel(fuse_session* se);
  // A name answered absent, which the kernel keeps for a long entry
  // timeout (a read-only snapshot mount: an hour): remembered (a bounded
  // number) so that invalidate_kernel can take it back too.
  void absent_name(Ino parent, std::string_view name);

  // The kernel's opens of `ino` (an OPEN from its start, a CREATE once
  // made) until their RELEASE (or a reply the kernel did not take):
  // open_ends tells whether the one ending was the last. A RELEASE sends
  // what the file gathered only then: another descriptor's (a reader's,
  // which sent no FLUSH) must not end the gathering of a writer's that is
  // still open.
  void open_begins(Ino ino);
  bool open_ends(Ino ino);
  // An open of `ino` was recorded on the server (open, create): counted
  // until the server has its release (released()).
  void hold(Ino ino);
  // Whether this mount holds an open of `ino` (hold) whose release the
  // server has not answered yet.
  bool holds(Ino ino);
  // One open of `ino` by this mount ended: the release thread tells the
  // server soon, and the file is freed if it was the last hold on an orphan.
  void release_later(Ino ino);
  // The queued releases and purges, taken from the release thread's queue
  // (none once the filesystem is gone): an unlink, rmdir or rename sends
  // them in its own round trip (Store::unlink), so that a file closed a
  // moment ago and removed at once, such as sqlite's journal, is freed by
  // the unlink itself, not kept as an orphan. The caller hands the results
  // to judge_releases.
  std::vector<Store::Release> take_releases();
  // What the server said to one release: an error is logged (the open
  // stays counted until the mount ends); an orphan nobody holds is purged,
  // and one the release freed or handed over is no longer this mount's.
  void released(Ino ino, const Result<Store::Released>& done);
  // released() of each of `releases` (taken by an unlink, rmdir or rename)
  // with its result, or for a purge purge() again unless it was done,
  // sending those that have none (the change was refused before anything
  // went).
  void judge_releases(std::span<const Store::Release> releases, std::vector<Result<Store::Released>>& results);
  // Sends every queued release and stops the release thread (at unmount,
  // before the mount session ends). Idempotent.
  void finish_releases();

 private:
  void release_loop();
  // What the server said to a queued purge (Store::Release::purge).
  void purged(Ino ino, const Result<Store::Released>& done);
  // The releases of `inos`, then the purges of `purges`.
  std::vector<Store::Release> queued_of(const std::vector<Ino>& inos, const std::vector<Ino>& purges);
  // The releases of `inos`, each marked when it is this mount's orphan.
  std::vector<Store::Release> releases_of(const std::vector<Ino>& inos);

  Store& m_store;
  MountOptions m_opts;
  SnapDir* m_snapdir = nullptr;
  KernelSizes m_kernel_sizes;
  std::atomic<fuse_session*> m_fuse{nullptr};
  std::mutex m_mutex;
  // Every inode the kernel holds: its lookup count and S_IFMT >> 12, 16
  // bytes a slot (node_table.hpp): a listing of a large directory hands the
  // kernel an inode an entry.
  NodeTable m_lookups;
  std::unordered_set<Ino> m_orphans;
  // Opens recorded on the server whose release it has not answered yet
  // (hold); an orphan the kernel forgot meanwhile is in m_forgotten, for
  // released() to purge if its release did not free it.
  std::unordered_map<Ino, std::uint32_t> m_holds;
  std::unordered_map<Ino, std::uint32_t> m_kernel_opens;  // open_begins
  std::unordered_set<Ino> m_forgotten;
  std::unordered_set<Ino> m_freed;  // see freed(); left when the kernel forgets

  std::atomic<bool> m_opens_unsure{false};
  bool m_hold_failing = false;  // hold_opens_again's last try failed (the watcher's alone)
  std::atomic<bool> m_gone{false};
  std::mutex m_gone_mutex;
  std::function<void()> m_gone_listener;
  std::chrono::steady_clock::time_point m_gone_checked{};
  std::vector<std::pair<Ino, std::string>> m_absent;  // guarded by m_gone_mutex

  std::mutex m_release_mutex;
  std::condition_variable m_release_cv;
  std::vector<Ino> m_releases;
  std::vector<Ino> m_purges;  // purge_later's
  bool m_release_stop = false;
  std::thread m_releaser;  // started by the first release_later()
};

// Hands the free pages of every malloc arena back to the system (the
// allocator keeps what a large listing freed, in one arena per FUSE thread,
// for a reuse that will not come soon), with a debug line saying `why`.
void trim_heap(const char* why);

Session& session_of(fuse_req_t req);
Caller caller_of(fuse_req_t req);
// ENAMETOOLONG for a name longer than k_name_max bytes.
Status check_name(std::string_view name);

}  // namespace redisfs
