// The ops table: every op redisfs implements, by assignment (C++20 rejects
// designated initializers out of declaration order). Ops left null get
// libfuse's default answer: ENOSYS, or for locks the kernel's local locking.
#include "ops.hpp"

namespace redisfs {

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op::init;
  ops.destroy = op::destroy;
  ops.lookup = op::lookup;
  ops.forget = op::forget;
  ops.forget_multi = op::forget_multi;
  ops.getattr = op::getattr;
  ops.setattr = op::setattr;
  ops.readlink = op::readlink;
  ops.mknod = op::mknod;
  ops.mkdir = op::mkdir;
  ops.symlink = op::symlink;
  ops.create = op::create;
  ops.link = op::link;
  ops.unlink = op::unlink;
  ops.rmdir = op::rmdir;
  ops.rename = op::rename;
  ops.opendir = op::opendir;
  ops.readdir = op::readdir;
  ops.readdirplus = op::readdirplus;
  ops.releasedir = op::releasedir;
  ops.fsyncdir = op::fsyncdir;
  ops.open = op::open;
  ops.release = op::release;
  ops.fsync = op::fsync;
  ops.read = op::read;
  ops.write = op::write;
  ops.setxattr = op::setxattr;
  ops.getxattr = op::getxattr;
  ops.listxattr = op::listxattr;
  ops.removexattr = op::removexattr;
  ops.statfs = op::statfs;
  return ops;
}

}  // namespace redisfs
