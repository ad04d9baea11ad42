// open, flush, release, fsync. The only per-open state is the count of
// opens this mount holds, kept on the server (Store::open_file), so that an
// unlink through another mount does not free a file open here: the last
// release here frees it. A read-only mount refuses write access. A
// read-only mount of a snapshot lets the kernel keep its page cache across
// opens (nothing changes a snapshot); every other mount but a writeback
// one drops it at each open, so a file changed by another host is read
// afresh, and the open reads the file's attributes on the server: when
// the size differs from what the kernel holds, the kernel drops it before
// the open is answered (close-to-open, kernel_sizes.hpp), for it reads no
// byte past the size it holds.
//
// Writes go to Redis before write(2) returns, except those of a file this
// mount created and still holds open, and on a writeback mount those of
// any file open for writing: they are gathered until close
// (store_gather.cpp). Only such a file asks for FLUSH (fi->noflush is set
// on every other open, so close(2) of it costs no round trip through
// /dev/fuse): flush sends what waits, and close(2) returns its error.
// fsync sends it too (a writeback mount's file then gathers on), then,
// with replicas asked for (--sync-replicas), waits until they have every
// change (WAIT), or fails with EIO. On a writeback mount (-o writeback,
// the only mount of its filesystem) the page cache is kept across opens
// (nothing else changes the data), and the kernel sends FLUSH at every
// close(2), after the file's dirty pages: flush
// still sends what waits there, although no other host needs it, because
// syncfs(2) reaches no FUSE handler, and what close(2) returned for must
// be on the server once a later syncfs returns (a flush that only
// answered would leave it to the release, which nothing waits for; it
// saved a sixth of the round trips of small creates, measured). Beyond that
// durability is the server's (its appendonly/save settings). (Locks are
// the kernel's: redisfs has no lock handlers, so FLUSH carries nothing for
// them.)
#include <fcntl.h>

#include "file_handle.hpp"
#include "log.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

// No FLUSH came (or it failed): what waits goes before the open count.
static void _send_waiting(Session& session, Ino ino) {
  if (!session.gone() && session.store().gathering(ino)) {
    if (Status st = session.store().flush(ino); !st) {
      log_op_error("release", ino, {}, st.error());
    }
  }
}

void end_open(Session& session, Ino ino) {
  if (session.open_ends(ino)) {
    _send_waiting(session, ino);
  }
  if (!session.options().read_only) {
    session.release_later(ino);
  }
}

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session& session = session_of(req);
  bool writes = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0;
  if (Status st = writes ? session.store().writable() : Status{}; !st) {
    reply_fail(req, "open", ino, {}, st.error());
    return;
  }
  // The kernel drops the file's pages at this open (keep_cache 0 below), so
  // a READ comes: a small file's first bytes come in the open's round trip.
  // A writeback mount keeps them across opens: there only a file the kernel
  // cannot hold pages of yet is read ahead.
  std::shared_ptr<const Prefetch> first;
  const bool writeback = session.options().writeback;
  const bool ahead = !writes && !session.options().read_only && !(writeback && session.may_hold_pages(ino));
  Store& store = session.store();
  session.open_begins(ino);  // (before the gathering it may start: a RELEASE beside it sees it)
  // What the open reads of the file's attributes: another host's change
  // since the kernel last heard of them (close-to-open, kernel_sizes.hpp).
  Store::Seen seen;
  Store::Seen* see = writeback || session.frozen() ? nullptr : &seen;
  if (Status st = ahead    ? store.open_file(ino, first, see)
                  : writes ? store.open_for_writing(ino, see)
                           : store.open_file(ino, see);
      !st) {
    if (st.code() != ESTALE) {
      session.opens_unsure();  // counted or not: its reply may be what was lost
    }
    session.open_ends(ino);
    reply_fail(req, "open", ino, {}, st.error());
    return;
  }
  if (!session.options().read_only) {
    session.hold(ino);  // counted on the server: its RELEASE will come
  }
  if (writeback) {
    session.pages_cached(ino);  // (what this open reads or writes stays in the kernel's cache)
  }
  fi->keep_cache = session.frozen() || writeback ? 1 : 0;
  fi->direct_io = 0;
  fi->fh = first ? reinterpret_cast<std::uint64_t>(new FileHandle(std::move(first))) : 0;
  // close(2) sends what waits (a writeback mount's kernel sends FLUSH anyway)
  fi->noflush = store.gathering(ino) ? 0 : 1;
  session.opened(ino, seen);
  if (!reply_open(req, fi)) {
    delete FileHandle::of(fi);
    end_open(session, ino);
  }
}

// FLUSH comes at every close(2) of a descriptor of the open, not only the
// last: a child that inherited the descriptor and exits, or a fork that
// closes it before exec, sends one while the parent goes on writing. What
// waits goes; a writeback mount's file gathers on (resume) until its
// RELEASE, which sends what came after and ends it.
void flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (Status st = session.store().flush(ino, true); !st) {
    reply_fail(req, "flush", ino, {}, st.error());
    return;
  }
  reply_ok(req);  // never ENOSYS: the kernel would stop sending FLUSH for good
}

void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  delete FileHandle::of(fi);
  Session& session = session_of(req);
  if (session.open_ends(ino)) {
    _send_waiting(session, ino);  // (another open gathers on: it sends what waits itself)
  }
  // close(2) need not wait for the count: the open's +1 is on the server
  // already, so this -1 can only come after it, whatever runs between.
  // Queued before the reply: the kernel sent this RELEASE before the
  // UNLINK that often follows a close (sqlite's journal), which another
  // thread may be serving already; queued, the unlink takes it in front
  // (take_releases) and frees the file, else the file is left an orphan
  // until the release (a round trip and a costlier script).
  if (!session.options().read_only) {
    session.release_later(ino);
  }
  reply_ok(req);
}

void fsync(fuse_req_t req, fuse_ino_t ino, int /*datasync*/, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (Status st = session.store().flush(ino, true); !st) {
    reply_fail(req, "fsync", ino, {}, st.error());
    return;
  }
  if (Status st = session.store().sync(); !st) {
    reply_fail(req, "fsync", ino, {}, st.error());
    return;
  }
  reply_ok(req);
}

}  // namespace redisfs::op
