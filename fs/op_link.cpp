// link: a new name for an existing inode (not a directory: the Store
// answers EPERM, as Linux filesystems do).
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Session& session = session_of(req);
  if (Status st = check_name(newname); !st) {
    reply_fail(req, "link", newparent, newname, st.error());
    return;
  }
  Result<Attr> attr = session.store().link(ino, newparent, newname);
  if (!attr) {
    reply_fail(req, "link", newparent, newname, attr.error());
    return;
  }
  reply_entry(req, session, *attr, "link");
}

}  // namespace redisfs::op
