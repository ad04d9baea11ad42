// Replies to the kernel (see reply.hpp).
#include "reply.hpp"

#include <algorithm>
#include <vector>

#include "log.hpp"

namespace redisfs {

static void _give_back(Session& session, Ino ino) {
  if (session.forget(ino, 1)) {
    session.purge(ino);
  }
}

fuse_entry_param make_entry(Session& session, const Attr& attr) {
  fuse_entry_param e{};
  e.ino = attr.ino;
  e.generation = 1;
  e.attr = attr.to_stat(session.store().block_size());
  e.attr_timeout = session.options().attr_timeout;
  e.entry_timeout = session.options().entry_timeout;
  return e;
}

void reply_ok(fuse_req_t req) { fuse_reply_err(req, 0); }

void reply_err(fuse_req_t req, int code) { fuse_reply_err(req, code); }

void reply_err(fuse_req_t req, const Error& error) { fuse_reply_err(req, error.code > 0 ? error.code : EIO); }

void reply_fail(fuse_req_t req, std::string_view op, Ino ino, std::string_view name, const Error& error) {
  log_op_error(op, ino, name, error);
  reply_err(req, error);
}

void reply_none(fuse_req_t req) { fuse_reply_none(req); }

void reply_entry(fuse_req_t req, Session& session, const Attr& attr) {
  fuse_entry_param e = make_entry(session, attr);
  session.add_lookup(attr.ino);
  if (fuse_reply_entry(req, &e) != 0) {
    _give_back(session, attr.ino);
  }
}

void reply_negative_entry(fuse_req_t req, Session& session, double age) {
  fuse_entry_param e{};
  e.ino = 0;
  e.entry_timeout = std::max(session.options().entry_timeout - age, 0.0);
  fuse_reply_entry(req, &e);
}

void reply_create(fuse_req_t req, Session& session, const Attr& attr, const fuse_file_info* fi) {
  fuse_entry_param e = make_entry(session, attr);
  session.add_lookup(attr.ino);
  if (fuse_reply_create(req, &e, fi) != 0) {
    _give_back(session, attr.ino);
  }
}

void reply_attr(fuse_req_t req, Session& session, const Attr& attr, double age) {
  struct stat st = attr.to_stat(session.store().block_size());
  fuse_reply_attr(req, &st, std::max(session.options().attr_timeout - age, 0.0));
}

void reply_readlink(fuse_req_t req, const std::string& target) { fuse_reply_readlink(req, target.c_str()); }

void reply_open(fuse_req_t req, const fuse_file_info* fi) { fuse_reply_open(req, fi); }

void reply_write(fuse_req_t req, std::size_t count) { fuse_reply_write(req, count); }

void reply_buf(fuse_req_t req, std::string_view data) { fuse_reply_buf(req, data.data(), data.size()); }

void reply_xattr(fuse_req_t req, std::size_t size) { fuse_reply_xattr(req, size); }

void reply_statfs(fuse_req_t req, const struct statvfs& st) { fuse_reply_statfs(req, &st); }

void reply_dir(fuse_req_t req, Session& session, std::string_view data, const std::vector<Ino>& lookups) {
  if (fuse_reply_buf(req, data.data(), data.size()) != 0) {
    for (Ino ino : lookups) {
      _give_back(session, ino);
    }
  }
}

}  // namespace redisfs
