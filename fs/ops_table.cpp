// The ops table: every op redisfs implements, by assignment (C++20 rejects
// designated initializers out of declaration order). Ops left null get
// libfuse's default answer: ENOSYS, or for locks the kernel's local locking.
// Every request is counted on its way (Timed<>, op_stats.hpp), and
// answered ESTALE once the filesystem under the mount is gone
// (RefuseWhenGone<>, reply.hpp).
//
// The one place an inode goes to the live tree (op_*.cpp) or to .snapshots
// and the snapshots' views (snapdir.cpp): one compare of the inode number
// (is_live_ino, view_ino.hpp). Every change to a view, or from the live
// tree into one (rename, link), is EROFS.
#include "op_stats.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "snapdir.hpp"

namespace redisfs {

namespace {

// ByIno<live, view>::call: live() for an inode of the live tree, else view().
template <auto Live, auto View>
struct ByIno;

template <class... Args, void (*Live)(fuse_req_t, fuse_ino_t, Args...), void (*View)(fuse_req_t, fuse_ino_t, Args...)>
struct ByIno<Live, View> {
  static void call(fuse_req_t req, fuse_ino_t ino, Args... args) {
    if (is_live_ino(ino)) [[likely]] {
      Live(req, ino, args...);
    } else {
      View(req, ino, args...);
    }
  }
};

// LiveOr<live, other>::call: live() for an inode of the live tree, else
// other(), which answers alone: view::refuse (EROFS: a change to a view or
// to .snapshots) or view::nothing (flush, release, fsync, fsyncdir).
template <auto Live, void (*Other)(fuse_req_t)>
struct LiveOr;

template <class... Args, void (*Live)(fuse_req_t, fuse_ino_t, Args...), void (*Other)(fuse_req_t)>
struct LiveOr<Live, Other> {
  static void call(fuse_req_t req, fuse_ino_t ino, Args... args) {
    if (is_live_ino(ino)) [[likely]] {
      Live(req, ino, args...);
    } else {
      Other(req);
    }
  }
};

template <auto Live>
using ChangeByIno = LiveOr<Live, view::refuse>;
template <auto Live>
using NoopByIno = LiveOr<Live, view::nothing>;

void symlink_any(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  if (is_live_ino(parent)) [[likely]] {
    op::symlink(req, link, parent, name);
  } else {
    view::refuse(req);
  }
}

void link_any(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  if (is_live_ino(ino) && is_live_ino(newparent)) [[likely]] {
    op::link(req, ino, newparent, newname);
  } else {
    view::refuse(req);
  }
}

void rename_any(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
            unsigned int flags) {
  if (is_live_ino(parent) && is_live_ino(newparent)) [[likely]] {
    op::rename(req, parent, name, newparent, newname, flags);
  } else {
    view::refuse(req);
  }
}

}  // namespace

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op::init;
  ops.destroy = op::destroy;
  ops.lookup = Timed<OpId::Lookup, RefuseWhenGone<ByIno<op::lookup, view::lookup>::call>::call>::call;
  ops.forget = Timed<OpId::Forget, op::forget>::call;
  ops.forget_multi = Timed<OpId::ForgetMulti, op::forget_multi>::call;
  ops.getattr = Timed<OpId::Getattr, RefuseWhenGone<ByIno<op::getattr, view::getattr>::call>::call>::call;
  ops.setattr = Timed<OpId::Setattr, RefuseWhenGone<ChangeByIno<op::setattr>::call>::call>::call;
  ops.readlink = Timed<OpId::Readlink, RefuseWhenGone<ByIno<op::readlink, view::readlink>::call>::call>::call;
  ops.mknod = Timed<OpId::Mknod, RefuseWhenGone<ChangeByIno<op::mknod>::call>::call>::call;
  ops.mkdir = Timed<OpId::Mkdir, RefuseWhenGone<ChangeByIno<op::mkdir>::call>::call>::call;
  ops.symlink = Timed<OpId::Symlink, RefuseWhenGone<symlink_any>::call>::call;
  ops.create = Timed<OpId::Create, RefuseWhenGone<ChangeByIno<op::create>::call>::call>::call;
  ops.link = Timed<OpId::Link, RefuseWhenGone<link_any>::call>::call;
  ops.unlink = Timed<OpId::Unlink, RefuseWhenGone<ChangeByIno<op::unlink>::call>::call>::call;
  ops.rmdir = Timed<OpId::Rmdir, RefuseWhenGone<ChangeByIno<op::rmdir>::call>::call>::call;
  ops.rename = Timed<OpId::Rename, RefuseWhenGone<rename_any>::call>::call;
  ops.opendir = Timed<OpId::Opendir, RefuseWhenGone<ByIno<op::opendir, view::opendir>::call>::call>::call;
  ops.readdir = Timed<OpId::Readdir, RefuseWhenGone<ByIno<op::readdir, view::readdir>::call>::call>::call;
  ops.readdirplus =
      Timed<OpId::Readdirplus, RefuseWhenGone<ByIno<op::readdirplus, view::readdirplus>::call>::call>::call;
  ops.releasedir = Timed<OpId::Releasedir, ByIno<op::releasedir, view::releasedir>::call>::call;
  ops.fsyncdir = Timed<OpId::Fsyncdir, RefuseWhenGone<NoopByIno<op::fsyncdir>::call>::call>::call;
  ops.open = Timed<OpId::Open, RefuseWhenGone<ByIno<op::open, view::open>::call>::call>::call;
  ops.flush = Timed<OpId::Flush, RefuseWhenGone<NoopByIno<op::flush>::call>::call>::call;
  ops.release = Timed<OpId::Release, NoopByIno<op::release>::call>::call;
  ops.fsync = Timed<OpId::Fsync, RefuseWhenGone<NoopByIno<op::fsync>::call>::call>::call;
  ops.read = Timed<OpId::Read, RefuseWhenGone<ByIno<op::read, view::read>::call>::call>::call;
  ops.write = Timed<OpId::Write, RefuseWhenGone<ChangeByIno<op::write>::call>::call>::call;
  ops.setxattr = Timed<OpId::Setxattr, RefuseWhenGone<ChangeByIno<op::setxattr>::call>::call>::call;
  ops.getxattr = Timed<OpId::Getxattr, RefuseWhenGone<ByIno<op::getxattr, view::getxattr>::call>::call>::call;
  ops.listxattr = Timed<OpId::Listxattr, RefuseWhenGone<ByIno<op::listxattr, view::listxattr>::call>::call>::call;
  ops.removexattr = Timed<OpId::Removexattr, RefuseWhenGone<ChangeByIno<op::removexattr>::call>::call>::call;
  ops.statfs = Timed<OpId::Statfs, RefuseWhenGone<ByIno<op::statfs, view::statfs>::call>::call>::call;
  return ops;
}

}  // namespace redisfs
