// fs_usage: df's size, used and free for one filesystem on a shared server.
#include <doctest/doctest.h>

#include "snap/room.hpp"
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

// The room a tool leaves the mounts (snap/room.hpp), from INFO memory.
TEST_CASE("ServerMemory: the limit is maxmemory or the machine's, the margin 5% of it up to 256 MiB") {
  using redisfs::ServerMemory;
  auto m = ServerMemory::from_info(
      "# Memory\r\nused_memory:300000000\r\nused_memory_human:286.10M\r\n"
      "total_system_memory:64000000000\r\nmaxmemory:1000000000\r\n");
  CHECK(m.used == 300'000'000);
  CHECK(m.limit() == 1'000'000'000);
  CHECK(m.free() == 700'000'000);
  CHECK(m.margin() == 50'000'000);
  CHECK(m.said() == "used 286.1 MiB of maxmemory 953.7 MiB");
  // maxmemory 0: the machine's memory; the margin capped
  m = ServerMemory::from_info("# Memory\r\nused_memory:1000\r\nmaxmemory:0\r\ntotal_system_memory:64000000000\r\n");
  CHECK(m.limit() == 64'000'000'000);
  CHECK(m.margin() == std::uint64_t{256} << 20);
  CHECK(m.said() == "used 1000 B of the machine's 59.6 GiB");
  // over the limit: nothing free
  m = ServerMemory::from_info("used_memory:2000\nmaxmemory:1000\n");
  CHECK(m.free() == 0);
  // a server that evicts keys to make room (allowed: --allow-evicting-server)
  // never refuses a write for want of it: no guard
  m = ServerMemory::from_info("used_memory:2000\nmaxmemory:1000\nmaxmemory_policy:allkeys-lru\n");
  CHECK(m.evicting);
  CHECK(m.limit() == 0);
  m = ServerMemory::from_info("used_memory:2000\nmaxmemory:1000\nmaxmemory_policy:noeviction\n");
  CHECK_FALSE(m.evicting);
  CHECK(m.limit() == 1000);
  // nothing known (or a malformed number): no limit, no guard
  m = ServerMemory::from_info("used_memory:12x\nmaxmemory:\n");
  CHECK(m.used == 0);
  CHECK(m.limit() == 0);
}
