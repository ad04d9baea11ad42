// statfs: sizes in 4 KiB units from the Store's totals (core/store/fs_usage.hpp:
// used is this filesystem's data, free what the server can still hold).
// Used rounds up to whole units, so df's Used moves by what was written,
// block-rounded. Redis has no inode table, so the free inode count is an
// estimate: one per free 4 KiB.
#include <sys/statvfs.h>

#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

static constexpr std::uint64_t k_statfs_unit = 4096;

void statfs(fuse_req_t req, fuse_ino_t ino) {
  Session& session = session_of(req);
  Result<StatFs> fs = session.store().statfs();
  if (!fs) {
    reply_fail(req, "statfs", ino, {}, fs.error());
    return;
  }
  reply_statfs(req, statvfs_of(*fs));
}

struct statvfs statvfs_of(const StatFs& fs) {
  struct statvfs st {};
  st.f_bsize = k_statfs_unit;
  st.f_frsize = k_statfs_unit;
  st.f_bfree = fs.free_bytes / k_statfs_unit;
  st.f_blocks = st.f_bfree + (fs.used_bytes + k_statfs_unit - 1) / k_statfs_unit;
  st.f_bavail = st.f_bfree;
  st.f_ffree = fs.free_bytes / k_statfs_unit;
  st.f_favail = st.f_ffree;
  st.f_files = fs.inodes + st.f_ffree;
  st.f_namemax = k_name_max;
  return st;
}

}  // namespace redisfs::op
