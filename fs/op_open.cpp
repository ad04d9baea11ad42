// open, release, fsync. Every read and write goes to Redis; the
// only per-open state is the count of opens this mount holds, kept on the
// server (Store::open_file), so that an unlink through another mount does
// not free a file open here: the last release here frees it. A read-only mount refuses write access and lets the
// kernel keep its page cache across opens (the data cannot change under
// it); a read-write mount drops it at each open, so a file changed by
// another host is read afresh. Data is on the server when write() returns,
// so flush has nothing left to do, and fsync only this: with replicas asked
// for (--sync-replicas), it waits until they have every change (WAIT), or
// fails with EIO. Beyond that durability is the server's (its
// appendonly/save settings). There is no flush handler at all: the
// kernel then stops sending FLUSH after the first ENOSYS, which saves a
// round trip through /dev/fuse on every close(2). (Locks are the kernel's:
// redisfs has no lock handlers, so FLUSH carries nothing for them either.)
#include <fcntl.h>

#include "log.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session& session = session_of(req);
  bool writes = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0;
  if (writes && session.options().read_only) {
    reply_fail(req, "open", ino, {}, make_error(EROFS, "read-only mount"));
    return;
  }
  if (Status st = session.store().open_file(ino); !st) {
    if (st.code() != ESTALE) {
      session.opens_unsure();  // counted or not: its reply may be what was lost
    }
    reply_fail(req, "open", ino, {}, st.error());
    return;
  }
  fi->keep_cache = session.options().read_only ? 1 : 0;
  fi->direct_io = 0;
  fi->fh = 0;
  reply_open(req, fi);
}

void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  // close(2) need not wait for the count: the open's +1 is on the server
  // already, so this -1 can only come after it, whatever runs between.
  reply_ok(req);
  if (!session.options().read_only) {
    session.release_later(ino);
  }
}

void fsync(fuse_req_t req, fuse_ino_t ino, int /*datasync*/, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (Status st = session.store().sync(); !st) {
    reply_fail(req, "fsync", ino, {}, st.error());
    return;
  }
  reply_ok(req);
}

}  // namespace redisfs::op
