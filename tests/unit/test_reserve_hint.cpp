// reserve_hint (util/reserve_hint.hpp): a count read from a server or a
// dump sizes a table at once, but only as a hint: capped, and a refused
// allocation changes nothing.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "util/reserve_hint.hpp"

using namespace redisfs;

namespace {

// An allocator that refuses anything above `limit` elements, as a system
// short of memory (or address space) would.
template <class T>
struct Refusing {
  using value_type = T;
  std::size_t limit = 0;
  explicit Refusing(std::size_t l) : limit(l) {}
  template <class U>
  Refusing(const Refusing<U>& o) : limit(o.limit) {}
  T* allocate(std::size_t n) {
    if (n > limit) {
      throw std::bad_alloc();
    }
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  bool operator==(const Refusing&) const = default;
};

}  // namespace

TEST_SUITE_BEGIN("reserve_hint");

TEST_CASE("a plausible count is reserved at once, with a little room to spare") {
  std::vector<std::uint64_t> v;
  reserve_hint(v, 100000, k_inodes_hint_max);
  CHECK(v.capacity() >= 100000 + 100000 / 64);
  CHECK(v.capacity() < 110000);  // not doubled
  const auto* before = v.data();
  for (std::uint64_t i = 0; i < 100000; ++i) {
    v.push_back(i);
  }
  CHECK(v.data() == before);  // never reallocated on the way
}

TEST_CASE("a count below what the table holds changes nothing") {
  std::vector<int> v(1000);
  const auto capacity = v.capacity();
  reserve_hint(v, 10, k_inodes_hint_max);
  CHECK(v.capacity() == capacity);
  CHECK(v.size() == 1000);
}

TEST_CASE("an absurd count reserves at most the cap, and never throws") {
  for (std::uint64_t n : {std::uint64_t{1} << 40, std::uint64_t{1} << 63, std::numeric_limits<std::uint64_t>::max()}) {
    std::vector<char> v;
    CHECK_NOTHROW(reserve_hint(v, n, 4096));
    CHECK(v.capacity() == 4096);
  }
}

TEST_CASE("a refused allocation leaves the table as it was, to grow as it would have") {
  std::vector<int, Refusing<int>> v(Refusing<int>(1000));
  v.push_back(7);
  CHECK_NOTHROW(reserve_hint(v, 1000000, k_inodes_hint_max));
  CHECK(v.size() == 1);
  CHECK(v[0] == 7);
  CHECK(v.capacity() < 1000);
  for (int i = 0; i < 500; ++i) {
    v.push_back(i);  // grows within what the allocator gives
  }
  CHECK(v.size() == 501);
}
