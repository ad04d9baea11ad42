// fs_usage: df's size, used and free for one filesystem on a shared server.
#include <doctest/doctest.h>

#include "store/fs_usage.hpp"

using redisfs::fs_usage;

TEST_CASE("fs_usage: used is the filesystem's data, free what maxmemory leaves") {
  // 10 MB of files on a server using 300 MB of 1 GB.
  auto u = fs_usage(10'000'000, 300'000'000, 1'000'000'000, 64'000'000'000);
  CHECK(u.used == 10'000'000);
  CHECK(u.free == 700'000'000);
  CHECK(u.size == 710'000'000);
  CHECK(u.size <= 1'000'000'000);
}

TEST_CASE("fs_usage: maxmemory 0 is no limit: the server machine's memory bounds it") {
  auto u = fs_usage(4096, 2'000'000, 0, 8'000'000'000);
  CHECK(u.used == 4096);
  CHECK(u.free == 7'998'000'000);
  CHECK(u.size == 7'998'004'096);
}

TEST_CASE("fs_usage: a server over its limit has nothing free, and size is what the filesystem holds") {
  auto u = fs_usage(5'000, 2'000'000, 1'000'000, 0);
  CHECK(u.free == 0);
  CHECK(u.size == 5'000);
}

TEST_CASE("fs_usage: with no limit known, as much again as the server uses") {
  auto u = fs_usage(0, 1'000, 0, 0);
  CHECK(u.free == 1'000);
  CHECK(u.size == 1'000);
}
