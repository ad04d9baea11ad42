// setattr: chmod, chown, truncate and utimens, as one SetAttrRequest. The
// kernel already checked permissions (default_permissions); ctime is the
// Store's to set, so FUSE_SET_ATTR_CTIME adds nothing.
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

static std::int64_t _ns(const struct timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (Status st = session.store().writable(); !st) {  // before the size
    reply_fail(req, "setattr", ino, {}, st.error());
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
  if ((to_set & FUSE_SET_ATTR_ATIME_NOW) != 0) {
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
  Result<Attr> done = session.store().setattr(ino, change);
  if (!done) {
    reply_fail(req, "setattr", ino, {}, done.error());
    return;
  }
  reply_attr(req, session, *done, "setattr");
}

}  // namespace redisfs::op
