// lookup: a name in a directory -> an entry reply (one kernel lookup).
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Session& session = session_of(req);
  if (Status st = check_name(name); !st) {
    reply_fail(req, "lookup", parent, name, st.error());
    return;
  }
  Result<Attr> attr = session.store().lookup(parent, name);
  if (!attr && attr.code() == ENOENT) {
    // A negative entry: the kernel remembers the name is absent for the
    // entry timeout, as it remembers positive entries.
    reply_negative_entry(req, session);
    return;
  }
  if (!attr) {
    reply_fail(req, "lookup", parent, name, attr.error());
    return;
  }
  reply_entry(req, session, *attr);
}

}  // namespace redisfs::op
