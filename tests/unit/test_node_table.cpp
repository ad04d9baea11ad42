// NodeTable (util/node_table.hpp), the daemon's table of the inodes the
// kernel holds: against a std::unordered_map under random adds and
// releases (removal shifts what follows back, so a wrong shift loses an
// element the map still has), its size per element, and memory given back
// as the kernel forgets.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <utility>

#include "store/view_ino.hpp"
#include "util/node_table.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("node_table");

namespace {
struct Ref {
  std::uint64_t count = 0;
  std::uint32_t tag = 0;
};

void check_same(const NodeTable& t, const std::unordered_map<std::uint64_t, Ref>& ref) {
  REQUIRE(t.size() == ref.size());
  for (const auto& [key, r] : ref) {
    REQUIRE(t.count(key) == r.count);
    REQUIRE(t.tag(key) == r.tag);
  }
  std::size_t seen = 0;
  t.for_each([&](std::uint64_t key, std::uint64_t count, std::uint32_t tag) {
    auto it = ref.find(key);
    REQUIRE(it != ref.end());
    CHECK(it->second.count == count);
    CHECK(it->second.tag == tag);
    ++seen;
  });
  CHECK(seen == ref.size());
}
}  // namespace

TEST_CASE("counts and tags follow a reference map through random adds and releases") {
  std::mt19937_64 rng(20261130);
  NodeTable t;
  std::unordered_map<std::uint64_t, Ref> ref;
  // Live inode numbers in a narrow range (long probe runs), and the same
  // numbers in two snapshot views (high bits only).
  auto pick = [&rng]() -> std::uint64_t {
    std::uint64_t ino = 2 + rng() % 3000;
    switch (rng() % 4) {
      case 0:
        return view_ino(1, ino);
      case 1:
        return view_ino(k_max_views, ino);
      default:
        return ino;
    }
  };
  for (int step = 0; step < 200000; ++step) {
    std::uint64_t key = pick();
    if (rng() % 3 != 0) {
      auto tag = static_cast<std::uint32_t>(rng() % 16);
      t.add(key, tag);
      Ref& r = ref[key];
      ++r.count;
      r.tag = tag;
    } else {
      std::uint64_t n = 1 + rng() % 3;
      auto it = ref.find(key);
      CHECK(t.release(key, n) == (it != ref.end()));
      if (it != ref.end()) {
        if (it->second.count > n) {
          it->second.count -= n;
        } else {
          ref.erase(it);
        }
      }
    }
    if (step % 20000 == 0) {
      check_same(t, ref);
    }
  }
  check_same(t, ref);
  for (auto& [key, r] : ref) {
    CHECK(t.release(key, r.count));
  }
  CHECK(t.size() == 0);
  CHECK_FALSE(t.contains(2));
  CHECK_FALSE(t.release(2, 1));
}

TEST_CASE("a listing's worth of inodes costs at most 40 bytes each, and forgetting them gives the memory back") {
  NodeTable t;
  constexpr std::uint64_t n = 200000;
  for (std::uint64_t ino = 3; ino < 3 + n; ++ino) {
    t.add(ino, 8);  // S_IFREG >> 12
  }
  CHECK(t.size() == n);
  CHECK(t.bytes() <= 40 * n);
  CHECK(t.count(3) == 1);
  CHECK(t.tag(3 + n - 1) == 8);
  CHECK_FALSE(t.contains(3 + n));
  const std::size_t full = t.bytes();
  for (std::uint64_t ino = 3; ino < 3 + n - 10; ++ino) {
    REQUIRE(t.release(ino, 1));
  }
  CHECK(t.size() == 10);
  CHECK(t.bytes() * 100 < full);
  for (std::uint64_t ino = 3 + n - 10; ino < 3 + n; ++ino) {
    CHECK(t.count(ino) == 1);
  }
}

TEST_CASE("a release of fewer than the count keeps the element, with its tag") {
  NodeTable t;
  t.add(7, 4);
  t.add(7, 4);
  t.add(7, 10);
  CHECK(t.count(7) == 3);
  CHECK(t.tag(7) == 10);
  CHECK(t.release(7, 2));
  CHECK(t.count(7) == 1);
  CHECK(t.tag(7) == 10);
  CHECK(t.release(7, 5));
  CHECK_FALSE(t.contains(7));
  CHECK(t.tag(7) == 0);
}

TEST_CASE("a flag lasts while its key does, through adds, releases and moves") {
  NodeTable t;
  CHECK_FALSE(t.set_flag(7));  // not there
  t.add(7, 8);
  CHECK_FALSE(t.flag(7));
  CHECK(t.set_flag(7));
  t.add(7, 8);
  CHECK(t.flag(7));
  CHECK(t.count(7) == 2);
  CHECK(t.tag(7) == 8);
  CHECK(t.release(7, 1));
  CHECK(t.flag(7));
  CHECK(t.count(7) == 1);
  for (std::uint64_t k = 100; k < 2000; ++k) {  // rehashes and moves the element
    t.add(k, 4);
  }
  for (std::uint64_t k = 100; k < 2000; ++k) {
    t.release(k, 1);
  }
  CHECK(t.flag(7));
  CHECK(t.count(7) == 1);
  CHECK(t.release(7, 1));
  t.add(7, 8);  // back after it left: a new element
  CHECK_FALSE(t.flag(7));
}
