// redisfs-snap rollback FS SNAP: the live filesystem FS becomes the state
// of its snapshot SNAP again, in one install step.
//
//   1. checks: FS is a filesystem (not a read-only snapshot); SNAP is a
//      read-only snapshot of FS (its snapshot_id in FS's lineage, or its
//      origin FS and the same `created`); FS is reserved (install.hpp), so
//      nothing mounts it from here on, and refused while mounted unless
//      `force`; the name the replaced state is kept under is reserved and
//      must hold no key;
//   2. SNAP is copied to a staging prefix as a writable filesystem
//      (snapshot_to_staging: copy-on-write, SNAP is never frozen long), and
//      its superblock made FS's: FS's own origin/restored_from/
//      snapshot_created/dumped, no snapshot_id, SNAP's lineage,
//      next_inode the larger of the two (an inode number is never handed
//      out twice in FS's history, so a diff across the rollback cannot
//      mistake one file for another), and rolled_back (now), which is part
//      of what a mount tells its filesystem by: every mount of the old
//      state then answers ESTALE (fs/session.cpp);
//   3. install_staging swaps it in, keeping the replaced state as a
//      read-only snapshot (install_staging with `keep`) unless `discard`. A
//      crash midway leaves FS whole, old or new, and the journal has the
//      next tool or mount finish the move, the keeping included.
//
// With `force` on a mounted FS: its mounts see ESTALE within their watch
// interval (2 s); a change a mount was retrying behind the install's
// freeze at that moment may still land in the rolled-back state. Unmount
// first when you can.
#pragma once

#include <cstdint>
#include <string>

#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

struct RollbackOptions {
  bool force = false;    // even while FS is mounted (its mounts see ESTALE)
  bool discard = false;  // do not keep the replaced state
  std::string keep_as;   // the name to keep it under ("": default_keep_name)
  bool quiet = false;
};

struct RollbackStats {
  std::string kept;          // where the replaced state is ("" with discard)
  std::uint64_t keys = 0;    // keys of FS now
  std::uint64_t mounts = 0;  // live mounts that were replaced under (force)
  std::int64_t snapshot_ns = 0;  // the instant SNAP is the state of
  std::string warning;
  double seconds = 0;
};

// "FS-before-rollback-20261130T163005Z" (the server's time), keeping FS's
// hash tag (so the kept state is in FS's slot on a cluster).
std::string default_keep_name(const std::string& fs, std::int64_t now_ns);

Result<RollbackStats> rollback_filesystem(Pool& pool, const std::string& fs, const std::string& snap,
                                          const RollbackOptions& opts);

}  // namespace redisfs
