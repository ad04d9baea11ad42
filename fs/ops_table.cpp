// The ops table: every op redisfs implements, by assignment (C++20 rejects
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
  ops.lookup = Timed<OpId::Lookup, RefuseWhenGone<op::lookup>::call>::call;
  ops.forget = Timed<OpId::Forget, op::forget>::call;
  ops.forget_multi = Timed<OpId::ForgetMulti, op::forget_multi>::call;
  ops.getattr = Timed<OpId::Getattr, RefuseWhenGone<op::getattr>::call>::call;
  ops.setattr = Timed<OpId::Setattr, RefuseWhenGone<op::setattr>::call>::call;
  ops.readlink = Timed<OpId::Readlink, RefuseWhenGone<op::readlink>::call>::call;
  ops.mknod = Timed<OpId::Mknod, RefuseWhenGone<op::mknod>::call>::call;
  ops.mkdir = Timed<OpId::Mkdir, RefuseWhenGone<op::mkdir>::call>::call;
  ops.symlink = Timed<OpId::Symlink, RefuseWhenGone<op::symlink>::call>::call;
  ops.create = Timed<OpId::Create, RefuseWhenGone<op::create>::call>::call;
  ops.link = Timed<OpId::Link, RefuseWhenGone<op::link>::call>::call;
  ops.unlink = Timed<OpId::Unlink, RefuseWhenGone<op::unlink>::call>::call;
  ops.rmdir = Timed<OpId::Rmdir, RefuseWhenGone<op::rmdir>::call>::call;
  ops.rename = Timed<OpId::Rename, RefuseWhenGone<op::rename>::call>::call;
  ops.opendir = Timed<OpId::Opendir, RefuseWhenGone<op::opendir>::call>::call;
  ops.readdir = Timed<OpId::Readdir, RefuseWhenGone<op::readdir>::call>::call;
  ops.readdirplus = Timed<OpId::Readdirplus, RefuseWhenGone<op::readdirplus>::call>::call;
  ops.releasedir = Timed<OpId::Releasedir, op::releasedir>::call;
  ops.fsyncdir = Timed<OpId::Fsyncdir, RefuseWhenGone<op::fsyncdir>::call>::call;
  ops.open = Timed<OpId::Open, RefuseWhenGone<op::open>::call>::call;
  ops.flush = Timed<OpId::Flush, RefuseWhenGone<op::flush>::call>::call;
  ops.release = Timed<OpId::Release, op::release>::call;
  ops.fsync = Timed<OpId::Fsync, RefuseWhenGone<op::fsync>::call>::call;
  ops.read = Timed<OpId::Read, RefuseWhenGone<op::read>::call>::call;
  ops.write = Timed<OpId::Write, RefuseWhenGone<op::write>::call>::call;
  ops.setxattr = Timed<OpId::Setxattr, RefuseWhenGone<op::setxattr>::call>::call;
  ops.getxattr = Timed<OpId::Getxattr, RefuseWhenGone<op::getxattr>::call>::call;
  ops.listxattr = Timed<OpId::Listxattr, RefuseWhenGone<op::listxattr>::call>::call;
  ops.removexattr = Timed<OpId::Removexattr, RefuseWhenGone<op::removexattr>::call>::call;
  ops.statfs = Timed<OpId::Statfs, RefuseWhenGone<op::statfs>::call>::call;
  return ops;
}

}  // namespace redisfs
