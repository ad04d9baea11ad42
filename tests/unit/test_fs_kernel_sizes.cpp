// KernelSizes (fs/kernel_sizes.hpp): what close-to-open compares an open's
// size with.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include "kernel_sizes.hpp"

using namespace redisfs;

namespace {

Attr _file(Ino ino, std::uint64_t size, std::uint32_t type = S_IFREG) {
  Attr a;
  a.ino = ino;
  a.mode = type | 0644;
  a.size = size;
  return a;
}

}  // namespace

TEST_CASE("kernel sizes: an open's size differs from what the kernel was told, or from what a short read left") {
  KernelSizes k(true);
  CHECK(k.differs(5, 0));  // never told: differs
  k.told(_file(5, 100));
  CHECK(!k.differs(5, 100));
  CHECK(k.differs(5, 101));
  CHECK(k.differs(5, 99));
  k.told(_file(5, 300));  // the last told counts
  CHECK(!k.differs(5, 300));
  // a short read ending at 40: the kernel cut its size there
  k.read_short(5, 40);
  CHECK(!k.differs(5, 40));
  CHECK(k.differs(5, 300));
  k.read_short(5, 200);  // past it: the kernel holds 40 still
  CHECK(!k.differs(5, 40));
  k.read_short(6, 10);  // never told: still unknown
  CHECK(k.differs(6, 10));
  // not a regular file: not held
  k.told(_file(7, 4096, S_IFDIR));
  CHECK(k.differs(7, 4096));
  k.told(7, S_IFREG, 12);
  CHECK(!k.differs(7, 12));
  k.forget(7);
  CHECK(k.differs(7, 12));
}

TEST_CASE("kernel sizes: bounded (it starts again empty), and off on a mount nothing else changes") {
  KernelSizes k(true);
  for (Ino ino = 1; ino <= KernelSizes::k_max; ++ino) {
    k.told(_file(ino, ino));
  }
  CHECK(!k.differs(1, 1));
  CHECK(!k.differs(KernelSizes::k_max, KernelSizes::k_max));
  k.told(_file(1, 2));  // one held: no room needed
  CHECK(!k.differs(1, 2));
  k.told(_file(KernelSizes::k_max + 1, 7));  // one more: the rest goes
  CHECK(!k.differs(KernelSizes::k_max + 1, 7));
  CHECK(k.differs(1, 2));
  KernelSizes off(false);
  off.told(_file(3, 3));
  CHECK(off.differs(3, 3));
}
