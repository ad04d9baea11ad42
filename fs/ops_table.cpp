// The ops table: every op redisfs implements, by assignment (C++20 rejects
// designated initializers out of declaration order). Ops left null get
// libfuse's default answer: ENOSYS, or for locks the kernel's local locking.
// Every request is counted on its way (timed<>, op_stats.hpp).
#include "op_stats.hpp"
#include "ops.hpp"

namespace redisfs {

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op::init;
  ops.destroy = op::destroy;
  ops.lookup = timed<OpId::Lookup, op::lookup>::call;
  ops.forget = timed<OpId::Forget, op::forget>::call;
  ops.forget_multi = timed<OpId::ForgetMulti, op::forget_multi>::call;
  ops.getattr = timed<OpId::Getattr, op::getattr>::call;
  ops.setattr = timed<OpId::Setattr, op::setattr>::call;
  ops.readlink = timed<OpId::Readlink, op::readlink>::call;
  ops.mknod = timed<OpId::Mknod, op::mknod>::call;
  ops.mkdir = timed<OpId::Mkdir, op::mkdir>::call;
  ops.symlink = timed<OpId::Symlink, op::symlink>::call;
  ops.create = timed<OpId::Create, op::create>::call;
  ops.link = timed<OpId::Link, op::link>::call;
  ops.unlink = timed<OpId::Unlink, op::unlink>::call;
  ops.rmdir = timed<OpId::Rmdir, op::rmdir>::call;
  ops.rename = timed<OpId::Rename, op::rename>::call;
  ops.opendir = timed<OpId::Opendir, op::opendir>::call;
  ops.readdir = timed<OpId::Readdir, op::readdir>::call;
  ops.readdirplus = timed<OpId::Readdirplus, op::readdirplus>::call;
  ops.releasedir = timed<OpId::Releasedir, op::releasedir>::call;
  ops.fsyncdir = timed<OpId::Fsyncdir, op::fsyncdir>::call;
  ops.open = timed<OpId::Open, op::open>::call;
  ops.release = timed<OpId::Release, op::release>::call;
  ops.fsync = timed<OpId::Fsync, op::fsync>::call;
  ops.read = timed<OpId::Read, op::read>::call;
  ops.write = timed<OpId::Write, op::write>::call;
  ops.setxattr = timed<OpId::Setxattr, op::setxattr>::call;
  ops.getxattr = timed<OpId::Getxattr, op::getxattr>::call;
  ops.listxattr = timed<OpId::Listxattr, op::listxattr>::call;
  ops.removexattr = timed<OpId::Removexattr, op::removexattr>::call;
  ops.statfs = timed<OpId::Statfs, op::statfs>::call;
  return ops;
}

}  // namespace redisfs
