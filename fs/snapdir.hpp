// The .snapshots directory: a mount's snapshots, browsable read-only inside
// it (like ZFS's .zfs/snapshot and NetApp's .snapshot; redisfs(1),
// "SNAPSHOTS IN THE MOUNT").
//
//   /mnt/fs/.snapshots/               the read-only snapshots whose origin is
//                                     this mount's prefix (snapshots_of: the
//                                     register of filesystems, no SCAN),
//                                     each listed under its own prefix
//   /mnt/fs/.snapshots/SKX-monday/    that snapshot's whole tree, read-only
//
// Inode numbers (core/store/view_ino.hpp): the live tree keeps its own; the
// .snapshots directory is k_snapdir_ino; a snapshot's view gets a slot
// (1 .. k_max_views) when it is first listed or looked up, and the kernel
// sees its inode n as (slot << 53) | n. A slot is given to another
// snapshot only once the kernel holds no inode of it and it has been idle
// for k_view_idle.
//
// Dispatch (ops_table.cpp): every op whose inode is not a live one
// (is_live_ino: one compare) comes here instead of to op_*.cpp. Reads are
// served from a Store opened on the snapshot's prefix (StoreOptions::view:
// read-only, no mount session, sharing the mount's pool), opened at the
// first use and closed after k_view_idle without one; every change fails
// with EROFS, and so does a rename or link from the live tree into a view.
//
// A view is gone once its snapshot is deleted or replaced by another one
// under the same prefix (its superblock's identity differs): an op that
// finds an inode missing asks at once, the mount's watcher asks every 2 s
// (watch), and from then on every op of the view answers ESTALE. The next
// lookup of the name in .snapshots finds the new snapshot, in a new slot.
//
// The name .snapshots in the root: a real entry of that name wins (it is
// the user's data; the view is then unreachable through this mount, and a
// line is logged once); lookup falls back to the view only when the root
// has no such entry. Hidden from readdir of the root unless
// -o snapdir=visible.
#pragma once

#include <fuse_lowlevel.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis.hpp"
#include "reply.hpp"
#include "session.hpp"
#include "snap/snapshot.hpp"
#include "store/view_ino.hpp"

namespace redisfs {

inline constexpr std::string_view k_snapdir_name = ".snapshots";

enum class SnapdirMode { Hidden, Visible };

// One snapshot seen through .snapshots, in one slot.
struct View {
  std::string prefix;
  std::string identity;  // filesystem_identity of the snapshot listed
  unsigned slot = 0;
  std::atomic<bool> gone{false};
  std::atomic<std::int64_t> last_used{0};  // steady_clock ticks
  std::mutex mutex;                         // guards store, checked
  std::shared_ptr<Store> store;             // open while in use
  std::chrono::steady_clock::time_point checked{};
  std::atomic<bool> opened{false};  // its Store was opened once: the kernel may hold its inodes
  // A mount changed the snapshot (--writable-snapshot: CHANGED "written",
  // read with check_gone): its files' pages are no longer kept across opens.
  std::atomic<bool> written{false};
  bool invalidated = false;         // the kernel was told to drop it (watch() only)
};

class SnapDir {
 public:
  SnapDir(Pool& pool, Session& session, std::string origin, SnapdirMode mode);
  SnapDir(const SnapDir&) = delete;
  SnapDir& operator=(const SnapDir&) = delete;

  bool visible() const { return m_mode == SnapdirMode::Visible; }
  const std::string& origin() const { return m_origin; }

  // The snapshots of the origin, re-read from the server when the list
  // held is older than `max_age` (a failure keeps the old list, logged).
  std::vector<SnapshotRef> list(std::chrono::milliseconds max_age);
  // The view of `ref` (its slot is kept or given), or null when every
  // slot is taken by a view the kernel still holds.
  std::shared_ptr<View> view_of(const SnapshotRef& ref);
  // The view in `slot`, or null.
  std::shared_ptr<View> view_in(unsigned slot);
  // The Store of `view`, opened if it is not (null: the view is gone, or
  // `error` says why it could not be opened).
  std::shared_ptr<Store> store_of(View& view, Error& error);
  // Asks the server whether `view`'s snapshot is still the one listed (at
  // most once per 100 ms unless `force`); true when it is gone (then its
  // Store is closed).
  bool check_gone(View& view, bool force = false);
  // The watcher (daemon.cpp), every 2 s: views whose snapshot is gone are
  // marked so, and the kernel drops what it caches of them (their pages
  // too: an open file of a deleted snapshot reads ESTALE, not its old
  // contents); Stores idle for k_view_idle are closed. Never from an op
  // (the kernel may wait for that op's reply).
  void watch(fuse_session* se);

  // A real entry named .snapshots in the root hides the view: said once.
  void shadowed();

  Session& session() { return m_session; }
  // Timeouts of the replies about .snapshots and the views: the mount's,
  // but at most k_view_timeout (a snapshot deleted under them is noticed
  // within that).
  ReplyTree tree(std::uint32_t block_size) const;

 private:
  bool slot_free(const View& view, const std::vector<bool>& known) const;

  Pool& m_pool;
  Session& m_session;
  std::string m_origin;
  SnapdirMode m_mode;

  std::mutex m_list_mutex;  // one refresh at a time
  std::mutex m_mutex;       // guards everything below
  std::vector<SnapshotRef> m_list;
  std::chrono::steady_clock::time_point m_listed{};
  bool m_have_list = false;
  std::array<std::shared_ptr<View>, k_max_views + 1> m_slots{};  // [0] unused
  unsigned m_fresh = 1;  // the first slot never given yet
  std::atomic<bool> m_shadow_said{false};
};

// Whether (parent, name) is where .snapshots shows in the root of this
// mount (a live op that found no real entry there answers EROFS).
inline bool is_snapdir_name(const Session& session, Ino parent, std::string_view name) {
  return parent == k_root_ino && session.snapdir() != nullptr && name == k_snapdir_name;
}

// The ops of everything that is not the live tree: .snapshots (ino
// k_snapdir_ino) and the views. Same signatures as op:: (ops.hpp).
namespace view {

// lookup(root, ".snapshots") when the root has no real entry of that name.
void lookup_snapdir(fuse_req_t req, Session& session);

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void readlink(fuse_req_t req, fuse_ino_t ino);
void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi);
void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void statfs(fuse_req_t req, fuse_ino_t ino);
// flush, release, fsync, fsyncdir of a view: nothing to send.
void nothing(fuse_req_t req);
// Every change: EROFS.
void refuse(fuse_req_t req);

}  // namespace view
}  // namespace redisfs
