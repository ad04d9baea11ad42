// unlink and rmdir. An inode that loses its last link while the kernel
// still knows it (an open file, a working directory) is kept as this
// mount's orphan: a file's last release frees it (session.hpp), else it is
// purged when the kernel forgets it; one the kernel does not know is purged
// right after the reply. An unlink or rmdir sends this mount's queued
// releases and purges in front of it, in its round trip (Store::unlink),
// and judges them after its reply. A file the unlink freed at once is remembered
// (Session::freed): a writeback mount's kernel writes its times back right
// after, and op_setattr.cpp answers that alone. On a writeback mount the
// unlink of a file's last link that this mount does not hold open, and
// the rmdir of a directory it made and emptied, wait in the Store
// (Store::defer_unlink, defer_rmdir), answered at once.
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"
#include "snapdir.hpp"

namespace redisfs::op {

// `releases` (an unlink's) go in front of the change; `released` gets
// their results.
static void _remove(fuse_req_t req, const char* op, fuse_ino_t parent, const char* name, bool dir,
                    std::span<const Store::Release> releases = {},
                    std::vector<Result<Store::Released>>* released = nullptr) {
  Session& session = session_of(req);
  if (Status st = check_name(name); !st) {
    reply_fail(req, op, parent, name, st.error());
    return;
  }
  Ino freed = 0;
  std::vector<Result<Store::Released>> unused;
  Result<Ino> orphan = dir ? session.store().rmdir(parent, name, releases, released ? *released : unused)
                           : session.store().unlink(parent, name, &freed, releases, released ? *released : unused);
  if (freed != 0) {
    session.freed(freed);
  }
  if (!orphan && orphan.code() == ENOENT && is_snapdir_name(session, parent, name)) {
    reply_err(req, EROFS);  // the snapshots' directory, not a real entry
    return;
  }
  if (!orphan) {
    reply_fail(req, op, parent, name, orphan.error());
    return;
  }
  bool purge_now = *orphan != 0 && session.orphaned(*orphan);
  reply_ok(req);
  if (purge_now) {
    session.purge(*orphan);
  }
}

// What this mount queued goes in front, in the removal's round trip: a
// close of the file a moment ago (the server must see it first, or the
// file becomes an orphan: see take_releases), and the purges of the
// directories rm -rf removed before this one.
static void _remove_queued(fuse_req_t req, const char* what, fuse_ino_t parent, const char* name, bool dir) {
  Session& session = session_of(req);
  if (!dir && session.options().writeback && check_name(name)) {
    // The last link of a file nobody here holds open: it may wait with the
    // directory changes (Store::defer_unlink), its queued releases none of
    // its own (a held file's are counted: Session::holds).
    // The file shows freed before the unlink can land (the kernel writes
    // its times back: op_setattr.cpp answers alone), until a landing says
    // otherwise (Store::Landed::kept).
    auto held = [&session](Ino ino) { return session.holds(ino); };
    auto freeing = [&session](Ino ino, bool yes) { yes ? session.freed(ino) : session.unfreed(ino); };
    if (session.store().defer_unlink(parent, name, held, freeing)) {
      reply_ok(req);
      return;
    }
  }
  if (dir && session.options().writeback && check_name(name) && session.store().defer_rmdir(parent, name)) {
    // An empty directory this mount made: the rmdir waits likewise, and
    // the orphan it leaves is handed over when it lands (on_removal_landed).
    reply_ok(req);
    return;
  }
  std::vector<Store::Release> releases = session.take_releases();
  std::vector<Result<Store::Released>> released;
  _remove(req, what, parent, name, dir, releases, &released);
  session.judge_releases(releases, released);
}

void unlink(fuse_req_t req, fuse_ino_t parent, const char* name) { _remove_queued(req, "unlink", parent, name, false); }

void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { _remove_queued(req, "rmdir", parent, name, true); }

}  // namespace redisfs::op
