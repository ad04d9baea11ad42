// What the daemon checks before it answers the kernel (fs/reply.hpp,
// fs/log.hpp): attributes the kernel would refuse (it would fail the call
// with EIO and nobody would learn why), and which errors are routine
// answers rather than failures worth a log line.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>

#include "store/inode.hpp"
#include "log.hpp"
#include "reply.hpp"

using namespace redisfs;

namespace {

Attr _attr(Ino ino, std::uint32_t mode, std::uint64_t size = 0) {
  Attr a;
  a.ino = ino;
  a.mode = mode;
  a.size = size;
  return a;
}

}  // namespace

TEST_CASE("fs reply: the kernel accepts every file type and size up to 2^63-1") {
  for (std::uint32_t type : {S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK}) {
    INFO(type);
    CHECK(kernel_refuses(_attr(5, type | 0644)).empty());
  }
  CHECK(kernel_refuses(_attr(5, S_IFREG | 0644, static_cast<std::uint64_t>(INT64_MAX))).empty());
  CHECK(kernel_refuses(_attr(k_root_ino, S_IFDIR | 0755)).empty());
}

TEST_CASE("fs reply: what the kernel would refuse is said, naming the inode") {
  CHECK(kernel_refuses(_attr(7, 0644)) == "inode 7 has no known file type");
  CHECK(kernel_refuses(_attr(7, 0170000 | 0644)) == "inode 7 has no known file type");
  CHECK(kernel_refuses(_attr(8, S_IFREG | 0644, static_cast<std::uint64_t>(INT64_MAX) + 1)) ==
        "inode 8 has size 9223372036854775808, past what the kernel accepts (2^63-1)");
  CHECK(kernel_refuses(_attr(k_root_ino, S_IFREG | 0644)) ==
        "the root (inode 1) is not a directory (type file)");
}

TEST_CASE("fs reply: routine errors are answers, the rest are failures") {
  for (int code : {ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, EACCES, EPERM, EINVAL, ENAMETOOLONG, EROFS, ENODATA,
                   ERANGE, E2BIG, EOPNOTSUPP, EMLINK, ELOOP, EFBIG, EXDEV, ESTALE}) {
    INFO(code);
    CHECK(is_routine_error(code));
  }
  // (EBUSY: a change given up after waiting out a freeze, redis.cpp)
  for (int code : {EIO, ENOSPC, EAGAIN, ENOMEM, ETIMEDOUT, EBUSY}) {
    INFO(code);
    CHECK_FALSE(is_routine_error(code));
  }
}
