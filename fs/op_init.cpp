// init and destroy: what we ask of the kernel, and the last cleanup.
//
// The kernel keeps sending setattr(size) for O_TRUNC (no ATOMIC_O_TRUNC),
// so truncation stays one Store call of its own. No writeback cache by
// default: a write reaches Redis before write(2) returns (or, for a new
// file, before close(2) does), which is what other hosts mounting the same
// prefix need. A writeback mount (-o writeback), the only mount of its
// filesystem, asks for it: the kernel keeps written pages and sends them
// in large WRITEs later (at the latest at close, fsync and syncfs), and
// keeps size and mtime itself; nothing changes the data under it, so no
// AUTO_INVAL_DATA there. Large requests (1 MiB; libfuse 3.14
// derives max_pages from max_write) keep the round trips per byte low.
// Readdirplus for every batch of a listing, not READDIRPLUS_AUTO (which
// stops after the first batch unless the kernel saw a lookup since): du,
// find and os.walk read a whole directory before they stat its entries,
// and would then send a LOOKUP for each entry past the first batch.
// FUSE_HANDLE_KILLPRIV (the first one) stays off: its successor, which
// libfuse 3.14 cannot ask for, is negotiated beside libfuse (killpriv.hpp).
// The kernel keeps a symlink's target (CACHE_SYMLINKS): a symlink never
// changes (a new target is a new inode, and the filesystem a mount opened
// never hands out an inode number twice: a rollback or a restore replaces
// it, and the mount answers ESTALE from then on), so following one costs
// no READLINK after the first.
#include <algorithm>
#include <string>

#include "log.hpp"
#include "ops.hpp"
#include "session.hpp"
#include "util/text.hpp"

namespace redisfs::op {

static constexpr unsigned k_max_io = 1024 * 1024;

static void _want(fuse_conn_info* conn, unsigned cap) {
  if ((conn->capable & cap) != 0) {
    conn->want |= cap;
  }
}

void init(void* userdata, fuse_conn_info* conn) {
  const bool writeback = static_cast<Session*>(userdata)->options().writeback;
  _want(conn, FUSE_CAP_ASYNC_READ);
  _want(conn, FUSE_CAP_READDIRPLUS);
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  _want(conn, FUSE_CAP_PARALLEL_DIROPS);
  _want(conn, FUSE_CAP_CACHE_SYMLINKS);
  conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_WRITEBACK_CACHE |
                  FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_DONT_MASK | FUSE_CAP_POSIX_ACL | FUSE_CAP_HANDLE_KILLPRIV);
  _want(conn, writeback ? FUSE_CAP_WRITEBACK_CACHE : FUSE_CAP_AUTO_INVAL_DATA);
  if (writeback && (conn->want & FUSE_CAP_WRITEBACK_CACHE) == 0) {
    log_warning("-o writeback: this kernel offers no writeback cache; writes go through it as by default");
  }
  // With the writeback cache the kernel keeps regular files' mtime and
  // ctime and writes them back (ctime too from protocol 7.23 on): writes
  // leave them to it (op_setattr.cpp).
  static_cast<Session*>(userdata)->store().set_kernel_file_times((conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0 &&
                                                                 conn->proto_minor >= 23);
  conn->max_write = k_max_io;
  conn->max_readahead = std::min(conn->max_readahead, k_max_io);
  conn->time_gran = 1;
  log_debug("init: protocol " + std::to_string(conn->proto_major) + "." + std::to_string(conn->proto_minor) +
            ", max_write " + std::to_string(conn->max_write) +
            ((conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0 ? ", writeback cache" : "") + ", max_readahead " +
            std::to_string(conn->max_readahead));
}

void destroy(void* userdata) {
  auto* session = static_cast<Session*>(userdata);
  if (session->gone()) {
    // Another mount holds the filesystem now (or it is gone): what waits
    // here must not reach it.
    Store::Dropped d = session->store().drop_gathered();
    if (d.files != 0 || d.dirs != 0 || d.unlinks != 0) {
      log_warning("unmount: this mount stopped serving (see above): dropped the unsent changes of " +
                  counted(d.files, "file", "files") + " (" + std::to_string(d.creates) +
                  " of them not on the server yet), " +
                  counted(d.dirs, "directory attribute change", "directory attribute changes") + " and " +
                  counted(d.unlinks, "unlink", "unlinks"));
    }
  } else if (Status st = session->store().flush_all(); !st) {
    log_error("unmount: sending what waits (files still open, directory changes): " + st.error().message);
  }
  session->finish_releases();  // a last release may free an orphan
  session->purge_orphans();
}

}  // namespace redisfs::op
