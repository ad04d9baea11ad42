// Every FUSE request redisfs answers, listed once: ops.hpp declares the
// handlers from it, op_stats.hpp numbers and names them, ops_table.cpp
// wires them. X(name, Id, Guard) for each:
//   name   the member of fuse_lowlevel_ops and the handler op::name, which
//          has that member's type; also the name the stats show
//   Id     its OpId (op_stats.hpp)
//   Guard  RefuseWhenGone: answered ESTALE once the filesystem under the
//          mount is gone (reply.hpp); RunAlways: runs even then (forget,
//          release and releasedir free what the kernel hands back)
// A name missing from fuse_lowlevel_ops, or a handler missing for a name,
// does not compile. init and destroy are not requests: ops.hpp declares
// them apart.
#pragma once

#define REDISFS_FUSE_OPS(X)                   \
  X(lookup, Lookup, RefuseWhenGone)           \
  X(forget, Forget, RunAlways)                \
  X(forget_multi, ForgetMulti, RunAlways)     \
  X(getattr, Getattr, RefuseWhenGone)         \
  X(setattr, Setattr, RefuseWhenGone)         \
  X(readlink, Readlink, RefuseWhenGone)       \
  X(mknod, Mknod, RefuseWhenGone)             \
  X(mkdir, Mkdir, RefuseWhenGone)             \
  X(symlink, Symlink, RefuseWhenGone)         \
  X(create, Create, RefuseWhenGone)           \
  X(link, Link, RefuseWhenGone)               \
  X(unlink, Unlink, RefuseWhenGone)           \
  X(rmdir, Rmdir, RefuseWhenGone)             \
  X(rename, Rename, RefuseWhenGone)           \
  X(opendir, Opendir, RefuseWhenGone)         \
  X(readdir, Readdir, RefuseWhenGone)         \
  X(readdirplus, Readdirplus, RefuseWhenGone) \
  X(releasedir, Releasedir, RunAlways)        \
  X(fsyncdir, Fsyncdir, RefuseWhenGone)       \
  X(open, Open, RefuseWhenGone)               \
  X(flush, Flush, RefuseWhenGone)             \
  X(release, Release, RunAlways)              \
  X(fsync, Fsync, RefuseWhenGone)             \
  X(read, Read, RefuseWhenGone)               \
  X(write, Write, RefuseWhenGone)             \
  X(setxattr, Setxattr, RefuseWhenGone)       \
  X(getxattr, Getxattr, RefuseWhenGone)       \
  X(listxattr, Listxattr, RefuseWhenGone)     \
  X(removexattr, Removexattr, RefuseWhenGone) \
  X(statfs, Statfs, RefuseWhenGone)
