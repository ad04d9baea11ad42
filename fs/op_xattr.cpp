// Extended attributes. Size 0 asks for the size only; a buffer too small
// is ERANGE. POSIX ACL names are refused (EOPNOTSUPP): redisfs does not
// enforce ACLs, and storing one the kernel ignores would mislead.
#include <sys/xattr.h>

#include <string>
#include <string_view>

#include "log.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

static bool _is_acl(std::string_view name) {
  return name == "system.posix_acl_access" || name == "system.posix_acl_default";
}

void setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  Session& session = session_of(req);
  if (_is_acl(name)) {
    reply_err(req, EOPNOTSUPP);
    return;
  }
  int ours = 0;
  if ((flags & XATTR_CREATE) != 0) {
    ours |= k_xattr_create;
  }
  if ((flags & XATTR_REPLACE) != 0) {
    ours |= k_xattr_replace;
  }
  Status st = session.store().setxattr(ino, name, std::string_view(value, size), ours);
  if (!st) {
    reply_fail(req, "setxattr", ino, name, st.error());
    return;
  }
  reply_ok(req);
}

void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Session& session = session_of(req);
  if (_is_acl(name)) {
    reply_err(req, EOPNOTSUPP);
    return;
  }
  Result<std::string> value = session.store().getxattr(ino, name);
  if (!value) {
    reply_fail(req, "getxattr", ino, name, value.error());
    return;
  }
  reply_sized(req, *value, size);
}

void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Session& session = session_of(req);
  LeftOut left_out;
  Result<std::vector<std::string>> names = session.store().listxattr(ino, left_out);
  log_left_out("listxattr", ino, left_out, "attribute name", "removes such attributes");
  if (!names) {
    reply_fail(req, "listxattr", ino, {}, names.error());
    return;
  }
  reply_names(req, *names, size);
}

void removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Session& session = session_of(req);
  if (_is_acl(name)) {
    reply_err(req, EOPNOTSUPP);
    return;
  }
  Status st = session.store().removexattr(ino, name);
  if (!st) {
    reply_fail(req, "removexattr", ino, name, st.error());
    return;
  }
  reply_ok(req);
}

}  // namespace redisfs::op
