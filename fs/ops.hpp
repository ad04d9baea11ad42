// The FUSE low-level ops of redisfs, one group per file (op_*.cpp), wired
// into the table by make_ops() (ops_table.cpp). Each op maps the kernel's
// request onto one Store call and replies exactly once (reply.hpp). These
// serve the live tree; .snapshots and the snapshots' views are snapdir.hpp's
// (make_ops sends every inode number past the live range there).
#pragma once

#include <fuse_lowlevel.h>
#include <sys/statvfs.h>

#include <memory>

#include "reply.hpp"
#include "store.hpp"

namespace redisfs {

fuse_lowlevel_ops make_ops();

namespace op {

void init(void* userdata, fuse_conn_info* conn);
void destroy(void* userdata);

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets);

void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void readlink(fuse_req_t req, fuse_ino_t ino);

void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
void symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);

void unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
            unsigned int flags);

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);

void setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags);
void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void removexattr(fuse_req_t req, fuse_ino_t ino, const char* name);

void statfs(fuse_req_t req, fuse_ino_t ino);

// Shared with the snapshot views (snapdir.cpp).
//
// Opens a handle for readdir/readdirplus on directory `dir` of `store`,
// and replies: the kernel sees its entries as base | n (view_ino.hpp), "."
// as `self` and ".." as `parent`; `keep` lives as long as the handle.
void open_dir_handle(fuse_req_t req, fuse_file_info* fi, Store& store, const ReplyTree& tree, Ino dir, Ino self,
                     Ino parent, Ino base, std::shared_ptr<void> keep);
// df's numbers for a Store's totals.
struct statvfs statvfs_of(const StatFs& fs);

}  // namespace op
}  // namespace redisfs
