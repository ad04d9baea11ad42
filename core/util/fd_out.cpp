#include "util/fd_out.hpp"

#include <unistd.h>

#include <cerrno>

namespace redisfs {

namespace {
constexpr std::size_t k_buffer_bytes = 1 << 16;
}  // namespace

FdOutBuf::FdOutBuf(int fd) : m_fd(fd), m_buf(k_buffer_bytes) { setp(m_buf.data(), m_buf.data() + m_buf.size()); }

FdOutBuf::~FdOutBuf() { (void)drain(); }

bool FdOutBuf::write_all(const char* p, std::size_t n) {
  while (n > 0 && m_error == 0) {
    ssize_t w = ::write(m_fd, p, n);
    if (w < 0) {
      if (errno != EINTR) {
        m_error = errno;
      }
      continue;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return m_error == 0;
}

bool FdOutBuf::drain() {
  const auto n = static_cast<std::size_t>(pptr() - pbase());
  setp(m_buf.data(), m_buf.data() + m_buf.size());
  return n == 0 || write_all(m_buf.data(), n);
}

FdOutBuf::int_type FdOutBuf::overflow(int_type ch) {
  if (!drain()) {
    return traits_type::eof();
  }
  if (!traits_type::eq_int_type(ch, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(ch);
    pbump(1);
  }
  return traits_type::not_eof(ch);
}

std::streamsize FdOutBuf::xsputn(const char* s, std::streamsize n) {
  // (a large write goes straight out, after what is buffered)
  if (n >= static_cast<std::streamsize>(m_buf.size())) {
    if (!drain() || !write_all(s, static_cast<std::size_t>(n))) {
      return 0;
    }
    return n;
  }
  return std::streambuf::xsputn(s, n);
}

int FdOutBuf::sync() { return drain() ? 0 : -1; }

}  // namespace redisfs
