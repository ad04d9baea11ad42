// rename, with RENAME_NOREPLACE and RENAME_EXCHANGE. A target that loses
// its last link is handled like an unlinked file (see op_unlink.cpp).
#include <cstdio>

#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"
#include "snapdir.hpp"

namespace redisfs::op {

static void _rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
                    unsigned ours, std::span<const Store::Release> releases,
                    std::vector<Result<Store::Released>>& released);

void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
            unsigned int flags) {
  Session& session = session_of(req);
  for (const char* n : {name, newname}) {
    if (Status st = check_name(n); !st) {
      reply_fail(req, "rename", parent, n, st.error());
      return;
    }
  }
  unsigned ours = 0;
  if ((flags & RENAME_NOREPLACE) != 0) {
    ours |= k_rename_noreplace;
  }
  if ((flags & RENAME_EXCHANGE) != 0) {
    ours |= k_rename_exchange;
  }
  bool unknown = (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0;
  if (unknown || ours == (k_rename_noreplace | k_rename_exchange)) {
    reply_err(req, EINVAL);
    return;
  }
  // As an unlink (op_unlink.cpp): a close of the replaced file a moment
  // ago may still be queued; the server sees it first, in the rename's
  // round trip, and the results are judged after the reply.
  std::vector<Store::Release> releases = session.take_releases();
  std::vector<Result<Store::Released>> released;
  _rename(req, parent, name, newparent, newname, ours, releases, released);
  session.judge_releases(releases, released);
}

static void _rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
                    unsigned ours, std::span<const Store::Release> releases,
                    std::vector<Result<Store::Released>>& released) {
  Session& session = session_of(req);
  Ino freed = 0;
  Result<Ino> orphan = session.store().rename(parent, name, newparent, newname, ours, &freed, releases, released);
  if (freed != 0) {
    session.freed(freed);
  }
  if (!orphan && orphan.code() == ENOENT && is_snapdir_name(session, parent, name)) {
    reply_err(req, EROFS);  // the snapshots' directory, not a real entry
    return;
  }
  if (!orphan) {
    reply_fail(req, "rename", parent, name, orphan.error());
    return;
  }
  bool purge_now = *orphan != 0 && session.orphaned(*orphan);
  reply_ok(req);
  if (purge_now) {
    session.purge(*orphan);
  }
}

}  // namespace redisfs::op
