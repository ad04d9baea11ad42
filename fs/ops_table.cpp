// The ops table: every op redisfs implements, by assignment (C++20 rejects
// designated initializers out of declaration order). Ops left null get
// libfuse's default answer: ENOSYS, or for locks the kernel's local locking.
// Every request is counted on its way (Timed<>, op_stats.hpp).
#include "op_stats.hpp"
#include "ops.hpp"

namespace redisfs {

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op::init;
  ops.destroy = op::destroy;
  ops.lookup = Timed<OpId::Lookup, op::lookup>::call;
  ops.forget = Timed<OpId::Forget, op::forget>::call;
  ops.forget_multi = Timed<OpId::ForgetMulti, op::forget_multi>::call;
  ops.getattr = Timed<OpId::Getattr, op::getattr>::call;
  ops.setattr = Timed<OpId::Setattr, op::setattr>::call;
  ops.readlink = Timed<OpId::Readlink, op::readlink>::call;
  ops.mknod = Timed<OpId::Mknod, op::mknod>::call;
  ops.mkdir = Timed<OpId::Mkdir, op::mkdir>::call;
  ops.symlink = Timed<OpId::Symlink, op::symlink>::call;
  ops.create = Timed<OpId::Create, op::create>::call;
  ops.link = Timed<OpId::Link, op::link>::call;
  ops.unlink = Timed<OpId::Unlink, op::unlink>::call;
  ops.rmdir = Timed<OpId::Rmdir, op::rmdir>::call;
  ops.rename = Timed<OpId::Rename, op::rename>::call;
  ops.opendir = Timed<OpId::Opendir, op::opendir>::call;
  ops.readdir = Timed<OpId::Readdir, op::readdir>::call;
  ops.readdirplus = Timed<OpId::Readdirplus, op::readdirplus>::call;
  ops.releasedir = Timed<OpId::Releasedir, op::releasedir>::call;
  ops.fsyncdir = Timed<OpId::Fsyncdir, op::fsyncdir>::call;
  ops.open = Timed<OpId::Open, op::open>::call;
  ops.release = Timed<OpId::Release, op::release>::call;
  ops.fsync = Timed<OpId::Fsync, op::fsync>::call;
  ops.read = Timed<OpId::Read, op::read>::call;
  ops.write = Timed<OpId::Write, op::write>::call;
  ops.setxattr = Timed<OpId::Setxattr, op::setxattr>::call;
  ops.getxattr = Timed<OpId::Getxattr, op::getxattr>::call;
  ops.listxattr = Timed<OpId::Listxattr, op::listxattr>::call;
  ops.removexattr = Timed<OpId::Removexattr, op::removexattr>::call;
  ops.statfs = Timed<OpId::Statfs, op::statfs>::call;
  return ops;
}

}  // namespace redisfs
