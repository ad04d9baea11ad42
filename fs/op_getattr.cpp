// getattr and readlink: reads of one inode. getattr may be answered from
// what a change made here just read of the inode (Store's AttrCache): the
// kernel asks for a directory's attributes again after every create or
// unlink in it, and for a file's after every write or read.
//
// A directory another mount removed (nlink 0) is ENOENT at once, as it is
// once that mount has purged it, which it does when its kernel forgets it
// (Session::purge_later, a few milliseconds on): so an opendir (its fstat)
// of a directory another mount removed fails alike, whenever it comes. A
// directory this mount removed keeps its attributes while the kernel holds
// it (a process in it may fstat it), as on a local filesystem.
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  double age = 0;
  Result<Attr> attr = session.store().getattr(ino, &age);
  if (!attr) {
    reply_fail(req, "getattr", ino, {}, attr.error());
    return;
  }
  if (attr->is_dir() && attr->nlink == 0 && !session.own_orphan(ino)) {
    reply_err(req, ENOENT);
    return;
  }
  reply_attr(req, session, *attr, "getattr", age);
}

void readlink(fuse_req_t req, fuse_ino_t ino) {
  Session& session = session_of(req);
  Result<std::string> target = session.store().readlink(ino);
  if (!target) {
    reply_fail(req, "readlink", ino, {}, target.error());
    return;
  }
  reply_readlink(req, *target);
}

}  // namespace redisfs::op
