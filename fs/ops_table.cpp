// The ops table: every op of op_list.hpp, by assignment (C++20 rejects
// designated initializers out of declaration order). Ops left null get
// libfuse's default answer: ENOSYS, or for locks the kernel's local locking.
// Every request is counted on its way (Timed<>, op_stats.hpp), and
// answered ESTALE once the filesystem under the mount is gone
// (RefuseWhenGone<>, reply.hpp).
#include "op_stats.hpp"
#include "ops.hpp"
#include "reply.hpp"

namespace redisfs {

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op::init;
  ops.destroy = op::destroy;
#define REDISFS_SET_OP(name, Id, Guard) ops.name = Timed<OpId::Id, Guard<op::name>::call>::call;
  REDISFS_FUSE_OPS(REDISFS_SET_OP)
#undef REDISFS_SET_OP
  return ops;
}

}  // namespace redisfs
