// The ops table: every op of op_list.hpp, by assignment (C++20 rejects
// designated initializers out of declaration order). Ops left null get
// libfuse's default answer: ENOSYS, or for locks the kernel's local locking.
// Every request is counted on its way (Timed<>, op_stats.hpp), and
// answered ESTALE once the filesystem under the mount is gone
// (RefuseWhenGone<>, reply.hpp).
//
// The one place an inode goes to the live tree (op_*.cpp) or to .snapshots
// and the snapshots' views (snapdir.cpp): one compare of the inode number
// (is_live_ino, view_ino.hpp), by the op's Route in op_list.hpp. Every
// change to a view, or from the live tree into one (rename, link), is
// EROFS.
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

// A copy into a view is EROFS; one out of a view into the live tree is
// EOPNOTSUPP, and the kernel copies through read and write (the server
// copies within one filesystem only).
void copy_file_range_any(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* fi_in, fuse_ino_t ino_out,
                         off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
  if (is_live_ino(ino_in) && is_live_ino(ino_out)) [[likely]] {
    op::copy_file_range(req, ino_in, off_in, fi_in, ino_out, off_out, fi_out, len, flags);
  } else if (!is_live_ino(ino_out)) {
    view::refuse(req);
  } else {
    reply_err(req, EOPNOTSUPP);
  }
}

}  // namespace

// Where an op of op_list.hpp goes, by its Route.
#define REDISFS_ROUTE_Live(name) op::name
#define REDISFS_ROUTE_View(name) ByIno<op::name, view::name>::call
#define REDISFS_ROUTE_Change(name) LiveOr<op::name, view::refuse>::call
#define REDISFS_ROUTE_Noop(name) LiveOr<op::name, view::nothing>::call
#define REDISFS_ROUTE_Own(name) name##_any

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op::init;
  ops.destroy = op::destroy;
#define REDISFS_SET_OP(name, Id, Guard, Route) \
  ops.name = Timed<OpId::Id, Guard<REDISFS_ROUTE_##Route(name)>::call>::call;
  REDISFS_FUSE_OPS(REDISFS_SET_OP)
#undef REDISFS_SET_OP
  return ops;
}

}  // namespace redisfs
