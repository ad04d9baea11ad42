// The only code that calls fuse_reply_*. A low-level op replies exactly
// once, through one of these.
//
// Entry replies (lookup, mknod, mkdir, symlink, link, create) hand the
// kernel one lookup of the inode: they count it in the Session before the
// reply is sent (the kernel may FORGET it at once), and give it back when
// the kernel refused the reply (an interrupted request).
#pragma once

#include <fuse_lowlevel.h>
#include <sys/statvfs.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"
#include "session.hpp"

namespace redisfs {

// What the entry and attribute replies take from the tree an inode is in:
// the live tree (the Session's Store and timeouts: live_tree), or a
// snapshot's view (fs/snapdir.cpp).
struct ReplyTree {
  std::uint32_t block_size = 0;
  double attr_timeout = 0;
  double entry_timeout = 0;
};
ReplyTree live_tree(Session& session);

// fuse_entry_param for `attr`: ino, generation 1, stat, timeouts (less
// `age`, the seconds since the attributes were read).
fuse_entry_param make_entry(const ReplyTree& tree, const Attr& attr, double age = 0);
fuse_entry_param make_entry(Session& session, const Attr& attr, double age = 0);

void reply_ok(fuse_req_t req);
void reply_err(fuse_req_t req, int code);
void reply_err(fuse_req_t req, const Error& error);
// Logs the failure with its context (log_op_error), then replies.
// An ENOENT or ESTALE (an inode this mount had is missing) first asks
// whether the whole filesystem is gone (Session::check_gone): then the
// reply is ESTALE.
void reply_fail(fuse_req_t req, std::string_view op, Ino ino, std::string_view name, const Error& error);
void reply_none(fuse_req_t req);

// Why the kernel would refuse these attributes (it then fails the call
// with EIO itself, and nobody learns why): a size past 2^63-1, a type it
// does not know, a root that is not a directory. Empty when it accepts
// them. The entry and attribute replies check it, and fail with EIO and a
// log line naming the op, the inode and the cause.
std::string kernel_refuses(const Attr& attr);

// `op` names the request in the log line of a refused reply.
void reply_entry(fuse_req_t req, Session& session, const Attr& attr, std::string_view op);
void reply_entry(fuse_req_t req, Session& session, const ReplyTree& tree, const Attr& attr, std::string_view op);
// "No such name", cached by the kernel for the entry timeout.
void reply_negative_entry(fuse_req_t req, Session& session, double age = 0);
void reply_negative_entry(fuse_req_t req, const ReplyTree& tree);
// Checks `attr` like reply_entry; false when it failed the request.
[[nodiscard]] bool check_entry(fuse_req_t req, const Attr& attr, std::string_view op);
// false when the kernel did not take it (as reply_open): the file is held
// open, and the caller ends that open (op::end_open).
[[nodiscard]] bool reply_create(fuse_req_t req, Session& session, const Attr& attr, const fuse_file_info* fi);
// `age`: how old the attributes already are (seconds); the kernel may keep
// them for what is left of attr_timeout.
void reply_attr(fuse_req_t req, Session& session, const Attr& attr, std::string_view op, double age = 0);
void reply_attr(fuse_req_t req, Session& session, const ReplyTree& tree, const Attr& attr, std::string_view op,
                double age = 0);
void reply_readlink(fuse_req_t req, const std::string& target);
// false when the kernel did not take it (the opener was interrupted): no
// RELEASE comes for that open.
[[nodiscard]] bool reply_open(fuse_req_t req, const fuse_file_info* fi);
void reply_write(fuse_req_t req, std::size_t count);
void reply_lseek(fuse_req_t req, std::uint64_t offset);
void reply_buf(fuse_req_t req, std::string_view data);
// The pieces, in order, as one answer (read: no copy of the bytes).
void reply_pieces(fuse_req_t req, std::span<const std::string_view> pieces);
void reply_xattr(fuse_req_t req, std::size_t size);
// getxattr and listxattr: `data`'s size when the caller asked for it
// (`size` 0), ERANGE when it does not fit in `size`, else `data`.
void reply_sized(fuse_req_t req, std::string_view data, std::size_t size);
// listxattr: the names, each ended by a NUL, as reply_sized.
void reply_names(fuse_req_t req, const std::vector<std::string>& names, std::size_t size);
void reply_statfs(fuse_req_t req, const struct statvfs& st);
// readdir / readdirplus: `lookups` are the inodes of the plus entries in
// `data`, already counted; they are given back if the reply fails.
void reply_dir(fuse_req_t req, Session& session, std::string_view data, const std::vector<Ino>& lookups);

// RefuseWhenGone<fn>::call has fn's signature: once the filesystem under
// the mount is gone (Session::gone), it answers ESTALE instead of running
// fn. (forget, release and releasedir are not wrapped: they free what the
// kernel hands back, and send nothing to the server once gone.)
template <auto Fn>
struct RefuseWhenGone;

template <class... Args, void (*Fn)(fuse_req_t, Args...)>
struct RefuseWhenGone<Fn> {
  static void call(fuse_req_t req, Args... args) {
    if (session_of(req).gone()) {
      reply_err(req, ESTALE);
      return;
    }
    Fn(req, args...);
  }
};

// RunAlways<fn>::call is fn: the guard of the ops that run whatever
// happened to the filesystem (op_list.hpp).
template <auto Fn>
struct RunAlways {
  static constexpr auto call = Fn;
};

}  // namespace redisfs
