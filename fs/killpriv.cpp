// FUSE_HANDLE_KILLPRIV_V2 through libfuse 3.14's custom io (see killpriv.hpp).
#include "killpriv.hpp"

#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "log.hpp"

namespace redisfs::killpriv {

namespace {

std::atomic<fuse_session*> g_session{nullptr};
std::atomic<bool> g_offered{false};       // the INIT request had the flag
std::atomic<bool> g_init_pending{false};  // its reply not written yet
std::atomic<std::uint64_t> g_init_unique{0};
std::atomic<bool> g_negotiated{false};
thread_local bool t_requested = false;

// A field of the request's argument (after its header), when it is there.
template <typename T>
bool _field(const char* buf, std::size_t n, std::size_t offset, T& out) {
  const std::size_t at = sizeof(fuse_in_header) + offset;
  if (n < at + sizeof(T)) {
    return false;
  }
  std::memcpy(&out, buf + at, sizeof(T));
  return true;
}

// Notes what the kernel's request says: the INIT's offer, a WRITE's or a
// SETATTR's kill flag (for the handler this thread runs next).
void _inspect(const char* buf, std::size_t n) {
  t_requested = false;
  fuse_in_header in{};
  if (n < sizeof in) {
    return;
  }
  std::memcpy(&in, buf, sizeof in);
  std::uint32_t value = 0;
  switch (in.opcode) {
    case FUSE_INIT:
      if (_field(buf, n, offsetof(fuse_init_in, flags), value)) {
        g_offered = (value & FUSE_HANDLE_KILLPRIV_V2) != 0;
        g_init_unique = in.unique;
        g_init_pending = true;
      }
      break;
    case FUSE_WRITE:
      t_requested =
          _field(buf, n, offsetof(fuse_write_in, write_flags), value) && (value & FUSE_WRITE_KILL_SUIDGID) != 0;
      break;
    case FUSE_SETATTR:
      t_requested = _field(buf, n, offsetof(fuse_setattr_in, valid), value) && (value & FATTR_KILL_SUIDGID) != 0;
      break;
    default:
      break;
  }
}

ssize_t _read(int fd, void* buf, std::size_t len, void* /*userdata*/) {
  ssize_t n = ::read(fd, buf, len);
  if (n > 0) {
    _inspect(static_cast<const char*>(buf), static_cast<std::size_t>(n));
  }
  return n;
}

// Whether `iov` is the reply to the INIT request.
bool _is_init_reply(const struct iovec* iov, int count) {
  if (!g_init_pending.load() || count < 2 || iov[0].iov_len < sizeof(fuse_out_header)) {
    return false;
  }
  fuse_out_header out{};
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  return out.unique == g_init_unique.load();
}

ssize_t _writev(int fd, struct iovec* iov, int count, void* /*userdata*/) {
  if (!_is_init_reply(iov, count)) {
    return ::writev(fd, iov, count);
  }
  g_init_pending = false;
  fuse_out_header out{};
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  constexpr std::size_t k_flags_end = offsetof(fuse_init_out, flags) + sizeof(std::uint32_t);
  if (!g_offered.load() || out.error != 0 || iov[1].iov_len < k_flags_end) {
    log_debug("init: the kernel offers no FUSE_HANDLE_KILLPRIV_V2: it asks for security.capability before writes");
    return ::writev(fd, iov, count);
  }
  std::vector<char> reply(static_cast<const char*>(iov[1].iov_base),
                          static_cast<const char*>(iov[1].iov_base) + iov[1].iov_len);
  std::uint32_t flags = 0;
  std::memcpy(&flags, reply.data() + offsetof(fuse_init_out, flags), sizeof flags);
  flags = (flags | FUSE_HANDLE_KILLPRIV_V2) & ~static_cast<std::uint32_t>(FUSE_HANDLE_KILLPRIV);
  std::memcpy(reply.data() + offsetof(fuse_init_out, flags), &flags, sizeof flags);
  std::vector<struct iovec> copy(iov, iov + count);
  copy[1].iov_base = reply.data();
  ssize_t n = ::writev(fd, copy.data(), count);
  if (n >= 0) {
    g_negotiated = true;
    log_debug("init: FUSE_HANDLE_KILLPRIV_V2: setuid, setgid and capabilities are dropped here");
  }
  return n;
}

}  // namespace

bool install(fuse_session* se) {
  fuse_custom_io io{};
  io.read = _read;
  io.writev = _writev;
  // (no splice_receive or splice_send: every request and reply passes here)
  if (int rc = fuse_session_custom_io(se, &io, fuse_session_fd(se)); rc != 0) {
    log_warning("cannot watch the FUSE requests (" + std::to_string(-rc) +
                "): the kernel will ask for security.capability before every write");
    return false;
  }
  g_session = se;
  return true;
}

bool negotiated() { return g_negotiated.load(std::memory_order_relaxed); }

bool requested() { return t_requested; }

void mode_dropped(fuse_ino_t ino) {
  if (fuse_session* se = g_session.load(); se != nullptr) {
    (void)fuse_lowlevel_notify_inval_inode(se, ino, -1, 0);  // attributes only: no page, no inode lock
  }
}

}  // namespace redisfs::killpriv
