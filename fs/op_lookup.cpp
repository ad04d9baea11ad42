// lookup: a name in a directory -> an entry reply (one kernel lookup). In
// a directory this mount is filling, a new name is answered absent without
// a round trip (Store's DirNames). ".snapshots" in the root, when the root
// has no real entry of that name, is the snapshots' directory (snapdir.hpp).
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"
#include "snapdir.hpp"

namespace redisfs::op {

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Session& session = session_of(req);
  if (Status st = check_name(name); !st) {
    reply_fail(req, "lookup", parent, name, st.error());
    return;
  }
  double age = 0;
  Result<Attr> attr = session.store().lookup(parent, name, &age);
  if (!attr && attr.code() == ENOENT && age == 0 && session.check_gone()) {
    reply_err(req, ESTALE);  // not absent: the whole filesystem is gone
    return;
  }
  if (!attr && attr.code() == ENOENT && is_snapdir_name(session, parent, name)) {
    view::lookup_snapdir(req, session);  // no real entry of that name: the snapshots' directory
    return;
  }
  if (!attr && attr.code() == ENOENT) {
    // A negative entry: the kernel remembers the name is absent for the
    // entry timeout, as it remembers positive entries (for what is left of
    // it when the answer came from the names this mount knows).
    session.absent_name(parent, name);
    reply_negative_entry(req, session, age);
    return;
  }
  if (!attr) {
    reply_fail(req, "lookup", parent, name, attr.error());
    return;
  }
  if (is_snapdir_name(session, parent, name)) {
    session.snapdir()->shadowed();  // a real entry wins over the snapshots' directory
  }
  reply_entry(req, session, *attr, "lookup");
}

}  // namespace redisfs::op
