// The FUSE low-level ops of redisfs, one group per file (op_*.cpp), listed
// in op_list.hpp and wired into the table by make_ops() (ops_table.cpp).
// Each op maps the kernel's request onto one Store call and replies exactly
// once (reply.hpp). These serve the live tree; .snapshots and the
// snapshots' views are snapdir.hpp's (make_ops sends every inode number
// past the live range there).
#pragma once

#include <fuse_lowlevel.h>
#include <sys/statvfs.h>

#include <memory>
#include <type_traits>

#include "op_list.hpp"
#include "reply.hpp"
#include "store/store.hpp"

namespace redisfs {

fuse_lowlevel_ops make_ops();

namespace op {

void init(void* userdata, fuse_conn_info* conn);
void destroy(void* userdata);

// One handler per request of op_list.hpp, each of the type of its
// fuse_lowlevel_ops member (see fuse_lowlevel.h for the arguments).
#define REDISFS_DECLARE_OP(name, Id, Guard, Route) std::remove_pointer_t<decltype(fuse_lowlevel_ops::name)> name;
REDISFS_FUSE_OPS(REDISFS_DECLARE_OP)
#undef REDISFS_DECLARE_OP

// The end of an open of a live file (op_open.cpp): what its writes left
// waiting goes to the server, then its open count. RELEASE runs it, and so
// does an open or a create whose reply the kernel did not take (the caller
// was interrupted): no RELEASE comes for those.
void end_open(Session& session, Ino ino);

// Shared with the snapshot views (snapdir.cpp).
//
// Opens a handle for readdir/readdirplus on directory `dir` of `store`,
// and replies: the kernel sees its entries as base | n (view_ino.hpp), "."
// as `self` and ".." as `parent`; `keep` lives as long as the handle.
void open_dir_handle(fuse_req_t req, fuse_file_info* fi, Store& store, const ReplyTree& tree, Ino dir, Ino self,
                     Ino parent, Ino base, std::shared_ptr<void> keep);
// df's numbers for a Store's totals.
struct statvfs statvfs_of(const StatFs& fs);
// An lseek answered before its file is looked at (op_io.cpp): ENOSYS on a
// writeback mount, EINVAL for a whence other than SEEK_DATA and SEEK_HOLE,
// ENXIO for a negative offset. True when it was.
bool lseek_answered(fuse_req_t req, off_t off, int whence);

}  // namespace op
}  // namespace redisfs
