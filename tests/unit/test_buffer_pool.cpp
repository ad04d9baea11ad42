// BufferPool (util/buffer_pool.hpp), the gathered writes' strings kept for
// reuse: a string given back comes back empty with its memory, and the
// bounds (count, capacity) hold.
#include <doctest/doctest.h>

#include <string>

#include "util/buffer_pool.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("buffer_pool");

TEST_CASE("a string given back is taken again empty, with its memory") {
  BufferPool pool(4, 64 * 1024);
  CHECK(pool.take().capacity() == std::string().capacity());  // empty pool: a new string
  std::string s(10000, 'x');
  const char* memory = s.data();
  const std::size_t capacity = s.capacity();
  pool.give(std::move(s));
  CHECK(pool.size() == 1);
  CHECK(pool.bytes() == capacity);
  std::string again = pool.take();
  CHECK(again.empty());
  CHECK(again.capacity() == capacity);
  CHECK(again.data() == memory);
  CHECK(pool.size() == 0);
  again.append(9000, 'y');  // fits: no new memory
  CHECK(again.data() == memory);
}

TEST_CASE("at most max_buffers strings, none above max_capacity, none without memory of its own") {
  BufferPool pool(2, 4096);
  pool.give(std::string(5000, 'x'));  // too large: freed
  pool.give(std::string("short"));    // held inline: nothing to keep
  CHECK(pool.size() == 0);
  pool.give(std::string(1000, 'a'));
  pool.give(std::string(2000, 'b'));
  pool.give(std::string(3000, 'c'));  // full
  CHECK(pool.size() == 2);
  CHECK(pool.bytes() <= 2 * 4096);
  CHECK(pool.take().capacity() >= 2000);  // the last given back first
  CHECK(pool.take().capacity() >= 1000);
  CHECK(pool.take().capacity() == std::string().capacity());
}

TEST_SUITE_END();
