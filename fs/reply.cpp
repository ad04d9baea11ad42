// Replies to the kernel (see reply.hpp).
#include "reply.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <vector>

#include "log.hpp"
#include "store/view_ino.hpp"

namespace redisfs {

static void _give_back(Session& session, Ino ino) {
  if (session.forget(ino, 1)) {
    session.purge(ino);
  }
}

ReplyTree live_tree(Session& session) {
  return ReplyTree{session.store().block_size(), session.options().attr_timeout, session.options().entry_timeout};
}

fuse_entry_param make_entry(const ReplyTree& tree, const Attr& attr, double age) {
  fuse_entry_param e{};
  e.ino = attr.ino;
  e.generation = 1;
  e.attr = attr.to_stat(tree.block_size);
  e.attr_timeout = std::max(tree.attr_timeout - age, 0.0);
  e.entry_timeout = std::max(tree.entry_timeout - age, 0.0);
  return e;
}

fuse_entry_param make_entry(Session& session, const Attr& attr, double age) {
  return make_entry(live_tree(session), attr, age);
}

void reply_ok(fuse_req_t req) { fuse_reply_err(req, 0); }

void reply_err(fuse_req_t req, int code) { fuse_reply_err(req, code); }

void reply_err(fuse_req_t req, const Error& error) { fuse_reply_err(req, error.code > 0 ? error.code : EIO); }

void reply_fail(fuse_req_t req, std::string_view op, Ino ino, std::string_view name, const Error& error) {
  if ((error.code == ENOENT || error.code == ESTALE) && session_of(req).check_gone()) {
    reply_err(req, ESTALE);
    return;
  }
  log_op_error(op, ino, name, error);
  reply_err(req, error);
}

void reply_none(fuse_req_t req) { fuse_reply_none(req); }

std::string kernel_refuses(const Attr& attr) {
  switch (attr.mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
      break;
    default:
      return "inode " + std::to_string(attr.ino) + " has no known file type";
  }
  if (attr.size > static_cast<std::uint64_t>(INT64_MAX)) {
    return "inode " + std::to_string(attr.ino) + " has size " + std::to_string(attr.size) +
           ", past what the kernel accepts (2^63-1)";
  }
  if (attr.ino == k_root_ino && !attr.is_dir()) {
    return "the root (inode 1) is not a directory (type " + std::string(type_name(attr.mode)) + ")";
  }
  return {};
}

bool check_entry(fuse_req_t req, const Attr& attr, std::string_view op) {
  std::string why = kernel_refuses(attr);
  if (why.empty() && attr.ino == k_root_ino) {
    why = "an entry names the root directory (inode 1)";  // the kernel refuses an alias of the root
  }
  if (why.empty()) {
    return true;
  }
  reply_fail(req, op, attr.ino, {}, make_error(EIO, why));
  return false;
}

void reply_entry(fuse_req_t req, Session& session, const Attr& attr, std::string_view op) {
  reply_entry(req, session, live_tree(session), attr, op);
}

void reply_entry(fuse_req_t req, Session& session, const ReplyTree& tree, const Attr& attr, std::string_view op) {
  if (!check_entry(req, attr, op)) {
    return;
  }
  fuse_entry_param e = make_entry(tree, attr);
  session.add_lookup(attr.ino, attr.mode);
  const bool live = is_live_ino(attr.ino);
  if (live) {
    session.kernel_sizes().told(attr);
  }
  if (fuse_reply_entry(req, &e) != 0) {
    if (live) {
      session.kernel_sizes().forget(attr.ino);
    }
    _give_back(session, attr.ino);
  }
}

void reply_negative_entry(fuse_req_t req, Session& session, double age) {
  ReplyTree tree = live_tree(session);
  tree.entry_timeout = std::max(tree.entry_timeout - age, 0.0);
  reply_negative_entry(req, tree);
}

void reply_negative_entry(fuse_req_t req, const ReplyTree& tree) {
  fuse_entry_param e{};
  e.ino = 0;
  e.entry_timeout = tree.entry_timeout;
  fuse_reply_entry(req, &e);
}

bool reply_create(fuse_req_t req, Session& session, const Attr& attr, const fuse_file_info* fi) {
  if (!check_entry(req, attr, "create")) {
    return true;  // (answered with an error, as before it was held)
  }
  fuse_entry_param e = make_entry(session, attr);
  session.add_lookup(attr.ino, attr.mode);
  session.hold(attr.ino);  // created open: its RELEASE will come
  session.kernel_sizes().told(attr);
  if (fuse_reply_create(req, &e, fi) != 0) {
    session.kernel_sizes().forget(attr.ino);
    _give_back(session, attr.ino);
    return false;
  }
  return true;
}

void reply_attr(fuse_req_t req, Session& session, const Attr& attr, std::string_view op, double age) {
  reply_attr(req, session, live_tree(session), attr, op, age);
}

void reply_attr(fuse_req_t req, Session& session, const ReplyTree& tree, const Attr& attr, std::string_view op,
                double age) {
  std::string why = kernel_refuses(attr);
  if (std::uint32_t known = session.known_type(attr.ino); why.empty() && known != 0 && known != (attr.mode & S_IFMT)) {
    why = "inode " + std::to_string(attr.ino) + " is a " + std::string(type_name(attr.mode)) +
          " now, but the kernel knows it as a " + std::string(type_name(known));
  }
  if (!why.empty()) {
    reply_fail(req, op, attr.ino, {}, make_error(EIO, why));
    return;
  }
  struct stat st = attr.to_stat(tree.block_size);
  const bool live = is_live_ino(attr.ino);
  if (live) {
    session.kernel_sizes().told(attr);
  }
  if (fuse_reply_attr(req, &st, std::max(tree.attr_timeout - age, 0.0)) != 0 && live) {
    session.kernel_sizes().forget(attr.ino);
  }
}

void reply_readlink(fuse_req_t req, const std::string& target) { fuse_reply_readlink(req, target.c_str()); }

bool reply_open(fuse_req_t req, const fuse_file_info* fi) { return fuse_reply_open(req, fi) == 0; }

void reply_write(fuse_req_t req, std::size_t count) { fuse_reply_write(req, count); }

void reply_lseek(fuse_req_t req, std::uint64_t offset) { fuse_reply_lseek(req, static_cast<off_t>(offset)); }

void reply_buf(fuse_req_t req, std::string_view data) { fuse_reply_buf(req, data.data(), data.size()); }

void reply_pieces(fuse_req_t req, std::span<const std::string_view> pieces) {
  std::vector<iovec> iov;
  iov.reserve(pieces.size());
  for (std::string_view p : pieces) {
    iov.push_back(iovec{const_cast<char*>(p.data()), p.size()});  // (the kernel only reads them)
  }
  fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
}

void reply_xattr(fuse_req_t req, std::size_t size) { fuse_reply_xattr(req, size); }

void reply_sized(fuse_req_t req, std::string_view data, std::size_t size) {
  if (size == 0) {
    reply_xattr(req, data.size());
  } else if (data.size() > size) {
    reply_err(req, ERANGE);
  } else {
    reply_buf(req, data);
  }
}

void reply_names(fuse_req_t req, const std::vector<std::string>& names, std::size_t size) {
  std::string list;
  for (const std::string& n : names) {
    list += n;
    list += '\0';
  }
  reply_sized(req, list, size);
}

void reply_statfs(fuse_req_t req, const struct statvfs& st) { fuse_reply_statfs(req, &st); }

void reply_dir(fuse_req_t req, Session& session, std::string_view data, const std::vector<Ino>& lookups) {
  if (fuse_reply_buf(req, data.data(), data.size()) != 0) {
    for (Ino ino : lookups) {
      session.kernel_sizes().forget(ino);  // (a listing's sizes were told with their lookups)
      _give_back(session, ino);
    }
  }
}

}  // namespace redisfs
