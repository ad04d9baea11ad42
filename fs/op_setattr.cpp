// setattr: chmod, chown, truncate and utimens, as one SetAttrRequest. The
// kernel already checked permissions (default_permissions). ctime is the
// Store's to set, but on a writeback mount, where the kernel keeps a
// regular file's mtime and ctime itself and shows them (it never takes
// them from a reply), it sends its ctime with every change of such a file
// (FUSE_SET_ATTR_CTIME): the server stores that one, so what the mount
// showed is what a remount shows. The kernel sends "now" as its own clock's
// time, not as MTIME_NOW: an atime "now" that comes with it takes the
// kernel's time too (it sent the same instant), or utimes(NULL) would
// leave atime and mtime apart. It also writes a file's times back on its
// own (mtime and ctime alone, at close, syncfs or eviction), also for a
// file whose last link went meanwhile and which is freed on the server:
// that write-back has nothing left to update, succeeds, and its reply is
// not read. After every unlink the kernel sends one at once (it updates the
// file's ctime and syncs it): of a file this mount's unlink or rename just
// freed (Session::is_freed), which no mount can change any more, it is
// answered without the server.
#include "killpriv.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

static std::int64_t _ns(const struct timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// What the kernel's writeback cache sends to write a file's times back.
static bool _times_write_back(Session& session, int to_set) {
  constexpr int k_times = FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME;
  return session.options().writeback && (to_set & ~FUSE_SET_ATTR_FILE) == k_times;
}

// The reply to a write-back of the times of a file freed on the server:
// what the kernel sent, with no link left.
static void _reply_gone(fuse_req_t req, Session& session, fuse_ino_t ino, const struct stat* attr) {
  Attr gone;
  gone.ino = ino;
  gone.mode = session.known_type(ino);
  gone.mtime_ns = _ns(attr->st_mtim);
  gone.ctime_ns = _ns(attr->st_ctim);
  reply_attr(req, session, gone, "setattr");
}

void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (Status st = session.store().writable(); !st) {  // before the size
    reply_fail(req, "setattr", ino, {}, st.error());
    return;
  }
  if (_times_write_back(session, to_set) && session.is_freed(ino)) {
    _reply_gone(req, session, ino, attr);
    return;
  }
  SetAttrRequest change;
  if ((to_set & FUSE_SET_ATTR_MODE) != 0) {
    change.mode = static_cast<std::uint32_t>(attr->st_mode & 07777);
  }
  if ((to_set & FUSE_SET_ATTR_UID) != 0) {
    change.uid = static_cast<std::uint32_t>(attr->st_uid);
  }
  if ((to_set & FUSE_SET_ATTR_GID) != 0) {
    change.gid = static_cast<std::uint32_t>(attr->st_gid);
  }
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
    if (attr->st_size < 0) {
      reply_err(req, EINVAL);
      return;
    }
    change.size = static_cast<std::uint64_t>(attr->st_size);
  }
  // FUSE_HANDLE_KILLPRIV_V2: a truncate by a caller without CAP_FSETID and
  // a chown of a non-directory drop setuid and setgid (the kernel's flag),
  // and a truncate or chown drops the capability (killpriv.hpp).
  change.kill_suidgid = killpriv::requested();
  if (killpriv::negotiated() && (change.size || change.kill_suidgid)) {
    if (Status st = session.store().drop_capability(ino); !st) {
      reply_fail(req, "setattr", ino, {}, st.error());
      return;
    }
  }
  const bool kernel_clock =
      session.options().writeback && (to_set & FUSE_SET_ATTR_MTIME) != 0 && (to_set & FUSE_SET_ATTR_MTIME_NOW) == 0;
  if ((to_set & FUSE_SET_ATTR_ATIME_NOW) != 0 && !kernel_clock) {
    change.atime = SetAttrRequest::Time::Now;
  } else if ((to_set & FUSE_SET_ATTR_ATIME) != 0) {
    change.atime = SetAttrRequest::Time::Set;
    change.atime_ns = _ns(attr->st_atim);
  }
  if ((to_set & FUSE_SET_ATTR_MTIME_NOW) != 0) {
    change.mtime = SetAttrRequest::Time::Now;
  } else if ((to_set & FUSE_SET_ATTR_MTIME) != 0) {
    change.mtime = SetAttrRequest::Time::Set;
    change.mtime_ns = _ns(attr->st_mtim);
  }
  if ((to_set & FUSE_SET_ATTR_CTIME) != 0 && attr->st_ctim.tv_sec >= 0) {
    change.ctime_ns = _ns(attr->st_ctim);
  }
  Result<Attr> done = session.store().setattr(ino, change);
  if (!done && done.code() == ENOENT && _times_write_back(session, to_set)) {
    _reply_gone(req, session, ino, attr);
    return;
  }
  if (!done) {
    reply_fail(req, "setattr", ino, {}, done.error());
    return;
  }
  reply_attr(req, session, *done, "setattr");
}

}  // namespace redisfs::op
