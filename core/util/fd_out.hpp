// An output stream buffer over a file descriptor that keeps the errno of
// the write(2) that failed, so that a dump that cannot write says why
// ("No space left on device", "Broken pipe") where an std::ofstream says
// only that its stream failed.
#pragma once

#include <streambuf>
#include <vector>

namespace redisfs {

class FdOutBuf : public std::streambuf {
 public:
  // Writes to `fd`, which the caller owns (and closes, after this is gone).
  explicit FdOutBuf(int fd);
  ~FdOutBuf() override;
  FdOutBuf(const FdOutBuf&) = delete;
  FdOutBuf& operator=(const FdOutBuf&) = delete;

  // The errno of the first write that failed (0 if none did). After one
  // fails, nothing more is written.
  int error() const { return m_error; }

 protected:
  int_type overflow(int_type ch) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  bool write_all(const char* p, std::size_t n);
  bool drain();

  int m_fd;
  int m_error = 0;
  std::vector<char> m_buf;
};

}  // namespace redisfs
