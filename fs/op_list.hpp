// Every FUSE request redisfs answers, listed once: ops.hpp declares the
// handlers from it, op_stats.hpp numbers and names them, ops_table.cpp
// wires them. X(name, Id, Guard, Route) for each:
//   name   the member of fuse_lowlevel_ops and the handler op::name, which
//          has that member's type; also the name the stats show
//   Id     its OpId (op_stats.hpp)
//   Guard  RefuseWhenGone: answered ESTALE once the filesystem under the
//          mount is gone (reply.hpp); RunAlways: runs even then (forget,
//          release and releasedir free what the kernel hands back)
//   Route  where an inode outside the live tree goes (.snapshots and the
//          snapshots' views, snapdir.hpp; one compare, is_live_ino):
//          View, to view::name; Change, answered EROFS (view::refuse);
//          Noop, answered alone (view::nothing); Own, to name_any in
//          ops_table.cpp, which looks at every inode it is given (rename,
//          link, symlink, copy_file_range); Live, to op::name whatever the inode (forget)
// A name missing from fuse_lowlevel_ops, or a handler missing for a name,
// does not compile. init and destroy are not requests: ops.hpp declares
// them apart.
#pragma once

#define REDISFS_FUSE_OPS(X)                              \
  X(lookup, Lookup, RefuseWhenGone, View)                \
  X(forget, Forget, RunAlways, Live)                     \
  X(forget_multi, ForgetMulti, RunAlways, Live)          \
  X(getattr, Getattr, RefuseWhenGone, View)              \
  X(setattr, Setattr, RefuseWhenGone, Change)            \
  X(readlink, Readlink, RefuseWhenGone, View)            \
  X(mknod, Mknod, RefuseWhenGone, Change)                \
  X(mkdir, Mkdir, RefuseWhenGone, Change)                \
  X(symlink, Symlink, RefuseWhenGone, Own)               \
  X(create, Create, RefuseWhenGone, Change)              \
  X(link, Link, RefuseWhenGone, Own)                     \
  X(unlink, Unlink, RefuseWhenGone, Change)              \
  X(rmdir, Rmdir, RefuseWhenGone, Change)                \
  X(rename, Rename, RefuseWhenGone, Own)                 \
  X(opendir, Opendir, RefuseWhenGone, View)              \
  X(readdir, Readdir, RefuseWhenGone, View)              \
  X(readdirplus, Readdirplus, RefuseWhenGone, View)      \
  X(releasedir, Releasedir, RunAlways, View)             \
  X(fsyncdir, Fsyncdir, RefuseWhenGone, Noop)            \
  X(open, Open, RefuseWhenGone, View)                    \
  X(flush, Flush, RefuseWhenGone, Noop)                  \
  X(release, Release, RunAlways, Noop)                   \
  X(fsync, Fsync, RefuseWhenGone, Noop)                  \
  X(read, Read, RefuseWhenGone, View)                    \
  X(write, Write, RefuseWhenGone, Change)                \
  X(lseek, Lseek, RefuseWhenGone, View)                  \
  X(fallocate, Fallocate, RefuseWhenGone, Change)        \
  X(copy_file_range, CopyFileRange, RefuseWhenGone, Own) \
  X(setxattr, Setxattr, RefuseWhenGone, Change)          \
  X(getxattr, Getxattr, RefuseWhenGone, View)            \
  X(listxattr, Listxattr, RefuseWhenGone, View)          \
  X(removexattr, Removexattr, RefuseWhenGone, Change)    \
  X(statfs, Statfs, RefuseWhenGone, View)
