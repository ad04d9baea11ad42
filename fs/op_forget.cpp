// forget, forget_multi: the kernel gives lookups back. An orphan of this
// mount whose last lookup goes is purged, after the (empty) reply: forget
// has nothing to wait for, so the purge is queued (Session::purge_later)
// and rides in front of the next unlink, rmdir or rename, or with the next
// batch of releases: rm -rf forgets every directory it removes, right after
// its rmdir. (Not one whose release is still on its way: the release frees
// it, session.hpp.)
#include <vector>

#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

void forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Session& session = session_of(req);
  bool purge = session.forget(ino, nlookup);
  reply_none(req);
  if (purge) {
    session.purge_later(ino);
  }
}

void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Session& session = session_of(req);
  std::vector<Ino> purge;
  for (size_t i = 0; i < count; ++i) {
    if (session.forget(forgets[i].ino, forgets[i].nlookup)) {
      purge.push_back(forgets[i].ino);
    }
  }
  reply_none(req);
  for (Ino ino : purge) {
    session.purge_later(ino);
  }
}

}  // namespace redisfs::op
