// mknod, mkdir, symlink, create: new nodes, owned by the caller. The kernel
// has applied the caller's umask to `mode` already (we do not ask for
// FUSE_CAP_DONT_MASK); the Store passes a setgid directory's group on. An
// open(O_CREAT) without O_EXCL that finds the name taken after all is sent
// back to the VFS to look again (see create).
#include <fcntl.h>

#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

// The checks every creating op makes before calling the Store (which
// refuses a read-only mount).
static bool _refuse(fuse_req_t req, const char* op, fuse_ino_t parent, const char* name) {
  if (Status st = check_name(name); !st) {
    reply_fail(req, op, parent, name, st.error());
    return true;
  }
  return false;
}

void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Session& session = session_of(req);
  if (_refuse(req, "mknod", parent, name)) {
    return;
  }
  if ((mode & S_IFMT) == 0) {
    mode |= S_IFREG;
  }
  Result<Attr> attr = session.store().mknod(parent, name, static_cast<std::uint32_t>(mode),
                                            static_cast<std::uint64_t>(rdev), caller_of(req));
  if (!attr) {
    reply_fail(req, "mknod", parent, name, attr.error());
    return;
  }
  reply_entry(req, session, *attr, "mknod");
}

void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Session& session = session_of(req);
  if (_refuse(req, "mkdir", parent, name)) {
    return;
  }
  Result<Attr> attr = session.store().mkdir(parent, name, static_cast<std::uint32_t>(mode & 07777), caller_of(req));
  if (!attr) {
    reply_fail(req, "mkdir", parent, name, attr.error());
    return;
  }
  reply_entry(req, session, *attr, "mkdir");
}

void symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  Session& session = session_of(req);
  if (_refuse(req, "symlink", parent, name)) {
    return;
  }
  Result<Attr> attr = session.store().symlink(parent, name, link, caller_of(req));
  if (!attr) {
    reply_fail(req, "symlink", parent, name, attr.error());
    return;
  }
  reply_entry(req, session, *attr, "symlink");
}

void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Session& session = session_of(req);
  if (_refuse(req, "create", parent, name)) {
    return;
  }
  // A new file's first writes and attribute changes are gathered until
  // close (Store::create, store_gather.cpp), but not O_APPEND ones (each
  // lands at the end of the file as the server sees it; on a writeback
  // mount the kernel places them: op_io.cpp). On a writeback mount the
  // create itself may wait with them (Store::defer_create).
  bool gather = (fi->flags & O_APPEND) == 0 || session.options().writeback;
  Result<Attr> attr =
      session.store().create(parent, name, static_cast<std::uint32_t>(mode & 07777), caller_of(req), gather);
  if (!attr && attr.code() == EEXIST && (fi->flags & O_EXCL) == 0) {
    // The name was made (by another host) after the kernel was told it was
    // absent. Opening that file here, as if created, would skip the
    // kernel's permission checks and O_TRUNC (a created file needs
    // neither): answer ESTALE instead, and the VFS runs the open once more
    // with every cached name revalidated, which finds the file and opens it
    // as any existing file. (The failed create also dropped the parent's
    // DirNames list, so the new lookup asks the server.)
    reply_err(req, ESTALE);
    return;
  }
  if (!attr) {
    if (attr.code() == EIO) {
      session.opens_unsure();  // created open, or not: the reply may be what was lost
    }
    reply_fail(req, "create", parent, name, attr.error());
    return;
  }
  session.open_begins(attr->ino);
  fi->keep_cache = session.options().writeback ? 1 : 0;
  fi->direct_io = 0;
  fi->fh = 0;
  fi->noflush = session.store().gathering(attr->ino) ? 0 : 1;  // close(2) sends what was gathered
  if (!reply_create(req, session, *attr, fi)) {
    end_open(session, attr->ino);
  } else if (session.options().writeback) {
    session.pages_cached(attr->ino);  // its writes stay in the kernel's cache
  }
}

}  // namespace redisfs::op
