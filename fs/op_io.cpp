// read, write, lseek, fallocate and copy_file_range: straight to the Store. A write on an O_APPEND file lands
// at the end of the file as the server sees it (another host may have
// grown it), whatever offset the kernel computed from its cached size;
// but not on a writeback mount: there the kernel's writeback cache
// computes the end of file itself (it holds the only up-to-date size) and
// sends page writes at their offsets, on any writable open of the file.
// With FUSE_HANDLE_KILLPRIV_V2 a write also drops the file's capability and,
// when the kernel says so, its setuid and setgid bits (killpriv.hpp).
#include <fcntl.h>
#include <linux/falloc.h>

#include <string>

#include "file_handle.hpp"
#include "killpriv.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

// Straight from the server's reply, no copy. Short, it ends the file: the
// kernel cuts the size it holds there (kernel_sizes.hpp).
static void _reply_read(fuse_req_t req, Session& session, Ino ino, std::size_t size, off_t off,
                        const Store::ReadPieces& data) {
  if (data.size < size) {
    session.kernel_sizes().read_short(ino, static_cast<std::uint64_t>(off) + data.size);
  }
  reply_pieces(req, data.pieces);
}

void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Session& session = session_of(req);
  if (off < 0) {
    reply_err(req, EINVAL);
    return;
  }
  Store::ReadPieces data;
  if (FileHandle* h = FileHandle::of(fi); h != nullptr) {
    if (std::shared_ptr<const Prefetch> first = h->first()) {  // read with the open (prefetch.hpp)
      bool more = false;
      const bool answered =
          session.store().read_prefetched(ino, first, static_cast<std::uint64_t>(off), size, data, &more);
      if (!more) {
        h->drop(first);  // (what the answer points into lives on in `data`)
      }
      if (answered) {
        _reply_read(req, session, ino, size, off, data);
        return;
      }
    }
  }
  Status st = session.store().read_pieces(ino, static_cast<std::uint64_t>(off), size, data);
  if (!st) {
    reply_fail(req, "read", ino, {}, st.error());
    return;
  }
  _reply_read(req, session, ino, size, off, data);
}

void write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Session& session = session_of(req);
  if (Status st = session.store().writable(); !st) {  // before the offset, as the kernel would
    reply_fail(req, "write", ino, {}, st.error());
    return;
  }
  if (off < 0) {
    reply_err(req, EINVAL);
    return;
  }
  if (killpriv::negotiated()) {  // the kernel no longer does it (killpriv.hpp)
    if (Status st = session.store().drop_capability(ino); !st) {
      reply_fail(req, "write", ino, {}, st.error());
      return;
    }
  }
  bool append = (fi->flags & O_APPEND) != 0 && !session.options().writeback;
  WriteKill kill{killpriv::requested()};
  Result<std::uint64_t> at =
      session.store().write(ino, static_cast<std::uint64_t>(off), std::string_view(buf, size), append, &kill);
  if (!at) {
    reply_fail(req, "write", ino, {}, at.error());
    return;
  }
  if (kill.killed) {
    killpriv::mode_dropped(ino);
  }
  reply_write(req, size);
}

// SEEK_DATA and SEEK_HOLE (the kernel answers the other whences itself),
// from the blocks on the server (Store::seek_data). Not on a writeback
// mount, where the kernel may hold dirty pages of the file that it does
// not write back before it asks: ENOSYS makes it answer every lseek of
// the mount itself from then on (the whole file data, its end the only
// hole), as it did before lseek was answered here.
bool lseek_answered(fuse_req_t req, off_t off, int whence) {
  if (session_of(req).options().writeback) {
    reply_err(req, ENOSYS);
  } else if (whence != SEEK_DATA && whence != SEEK_HOLE) {
    reply_err(req, EINVAL);
  } else if (off < 0) {
    reply_err(req, ENXIO);
  } else {
    return false;
  }
  return true;
}

void lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* /*fi*/) {
  if (lseek_answered(req, off, whence)) {
    return;
  }
  Session& session = session_of(req);
  Result<std::uint64_t> at = session.store().seek_data(ino, static_cast<std::uint64_t>(off), whence == SEEK_DATA);
  if (!at) {
    if (at.error().code == ENXIO) {
      reply_err(req, ENXIO);  // (an answer, not a failure: nothing to log)
    } else {
      reply_fail(req, "lseek", ino, {}, at.error());
    }
    return;
  }
  reply_lseek(req, *at);
}

// The kill of a change the kernel leaves to us under
// FUSE_HANDLE_KILLPRIV_V2 without saying whether the caller has
// CAP_FSETID (fallocate, copy_file_range: file_modified() in the kernel):
// setuid, setgid and security.capability go as on a write of a caller
// without it, but for root's change, which keeps them (as root's write
// would). The capability goes first; false: answered (it failed).
static bool _kill_unless_root(fuse_req_t req, Session& session, fuse_ino_t ino, const char* what, WriteKill& kill) {
  kill.suidgid = killpriv::negotiated() && caller_of(req).uid != 0;
  if (kill.suidgid) {
    if (Status st = session.store().drop_capability(ino); !st) {
      reply_fail(req, what, ino, {}, st.error());
      return false;
    }
  }
  return true;
}

// fallocate(2): only FALLOC_FL_PUNCH_HOLE (which comes with KEEP_SIZE);
// Store::punch_hole. Reserving space (mode 0, KEEP_SIZE alone) is
// EOPNOTSUPP: a Redis server reserves nothing ahead, and glibc's
// posix_fallocate then writes the zeros itself. Never ENOSYS, which would
// make the kernel refuse every later fallocate of the mount, punches too.
// The kernel writes back and drops its cached pages of the range itself,
// and forgets the file's size and times after.
void fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
    reply_err(req, EOPNOTSUPP);
    return;
  }
  if (Status st = session.store().writable(); !st) {
    reply_fail(req, "fallocate", ino, {}, st.error());
    return;
  }
  if (offset < 0 || length <= 0) {
    reply_err(req, EINVAL);
    return;
  }
  WriteKill kill;
  if (!_kill_unless_root(req, session, ino, "fallocate", kill)) {
    return;
  }
  Status st =
      session.store().punch_hole(ino, static_cast<std::uint64_t>(offset), static_cast<std::uint64_t>(length), &kill);
  if (kill.killed) {
    killpriv::mode_dropped(ino);  // (the kernel forgets only the size and times after a fallocate)
  }
  if (!st) {
    reply_fail(req, "fallocate", ino, {}, st.error());
    return;
  }
  reply_ok(req);
}

// copy_file_range(2) on the server (Store::copy_range): the bytes never
// come through the daemon, a block aligned in both files is copied by the
// server whole, and a hole stays a hole. A copy longer than one step is
// answered short, and the caller asks again for the rest (as the call
// allows; cp does). The kernel writes back its cached pages of both
// ranges first (a writeback mount), drops its pages of the destination's
// range after, and sets the destination's size from the answer. The
// destination's setuid, setgid and capability: _kill_unless_root; the
// kernel is told when a bit went.
void copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* /*fi_in*/, fuse_ino_t ino_out,
                     off_t off_out, fuse_file_info* /*fi_out*/, size_t len, int flags) {
  Session& session = session_of(req);
  if (Status st = session.store().writable(); !st) {
    reply_fail(req, "copy_file_range", ino_out, {}, st.error());
    return;
  }
  if (flags != 0 || off_in < 0 || off_out < 0) {
    reply_err(req, EINVAL);
    return;
  }
  WriteKill kill;
  if (!_kill_unless_root(req, session, ino_out, "copy_file_range", kill)) {
    return;
  }
  Result<std::uint64_t> done = session.store().copy_range(ino_in, static_cast<std::uint64_t>(off_in), ino_out,
                                                          static_cast<std::uint64_t>(off_out), len, &kill);
  if (kill.killed) {
    killpriv::mode_dropped(ino_out);
  }
  if (!done) {
    reply_fail(req, "copy_file_range", ino_out, {}, done.error());
    return;
  }
  reply_write(req, static_cast<std::size_t>(*done));
}

}  // namespace redisfs::op
