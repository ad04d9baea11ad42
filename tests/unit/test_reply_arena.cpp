// Replies built in arenas (redis/reply_arena.hpp): the same trees as
// hiredis's own reader builds for the same bytes (nesting, big strings in
// blocks of their own, many strings over several blocks, nil, integers,
// status and error lines, binary bytes), fed whole or a byte at a time, and
// a protocol error in the middle of a reply frees what was built.
#include <doctest/doctest.h>

extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <memory>
#include <string>

#include "redis/reply_arena.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("reply_arena");

namespace {

void check_same(const redisReply* a, const redisReply* b) {
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  REQUIRE(a->type == b->type);
  CHECK(a->integer == b->integer);
  REQUIRE(a->len == b->len);
  if (b->str != nullptr) {
    REQUIRE(a->str != nullptr);
    CHECK(std::string(a->str, a->len) == std::string(b->str, b->len));
    CHECK(a->str[a->len] == '\0');
  }
  REQUIRE(a->elements == b->elements);
  for (std::size_t i = 0; i < b->elements; ++i) {
    check_same(a->element[i], b->element[i]);
  }
}

struct Arena {
  void operator()(redisReply* r) const { free_arena_reply(r); }
};

// Reads every reply in `resp` with both readers (the arena's fed `step`
// bytes at a time) and compares them; the number of replies.
int compare(const std::string& resp, std::size_t step) {
  std::unique_ptr<redisReader, void (*)(redisReader*)> ours(new_arena_reader(), redisReaderFree);
  std::unique_ptr<redisReader, void (*)(redisReader*)> theirs(redisReaderCreate(), redisReaderFree);
  REQUIRE(ours != nullptr);
  REQUIRE(redisReaderFeed(theirs.get(), resp.data(), resp.size()) == REDIS_OK);
  int replies = 0;
  std::size_t fed = 0;
  while (true) {
    void* mine = nullptr;
    REQUIRE(redisReaderGetReply(ours.get(), &mine) == REDIS_OK);
    if (mine == nullptr) {
      if (fed == resp.size()) {
        break;
      }
      const std::size_t n = std::min(step, resp.size() - fed);
      REQUIRE(redisReaderFeed(ours.get(), resp.data() + fed, n) == REDIS_OK);
      fed += n;
      continue;
    }
    std::unique_ptr<redisReply, Arena> a(static_cast<redisReply*>(mine));
    void* reference = nullptr;
    REQUIRE(redisReaderGetReply(theirs.get(), &reference) == REDIS_OK);
    std::unique_ptr<redisReply, void (*)(void*)> b(static_cast<redisReply*>(reference), freeReplyObject);
    check_same(a.get(), b.get());
    ++replies;
  }
  return replies;
}

std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

}  // namespace

TEST_CASE("the same replies as hiredis builds, fed whole or a byte at a time") {
  std::string many = "*300\r\n";  // a few blocks of 4 KiB
  for (int i = 0; i < 300; ++i) {
    many += bulk("field-" + std::to_string(i));
  }
  const std::string big(100000, 'x');  // a block of its own
  std::string binary("a\0b\r\nc", 6);
  const std::string resp = "+OK\r\n" + std::string("-ERR no such key\r\n") + ":-42\r\n" + "$-1\r\n" + "*-1\r\n" +
                           "*0\r\n" + bulk("") + bulk(binary) + bulk(big) + many + "*3\r\n*2\r\n:1\r\n" + bulk(big) +
                           "*1\r\n*1\r\n$-1\r\n" + bulk("after") + "*2\r\n" + bulk(std::string(3000, 'y')) +
                           bulk(std::string(1500, 'z'));
  CHECK(compare(resp, resp.size()) == 12);
  CHECK(compare(resp, 1) == 12);
  CHECK(compare(resp, 4093) == 12);
}

TEST_CASE("a protocol error in the middle of a reply frees what was built") {
  std::unique_ptr<redisReader, void (*)(redisReader*)> ours(new_arena_reader(), redisReaderFree);
  const std::string resp = "*3\r\n" + bulk("one") + bulk(std::string(5000, 'b')) + "!bad\r\n";
  REQUIRE(redisReaderFeed(ours.get(), resp.data(), resp.size()) == REDIS_OK);
  void* reply = nullptr;
  CHECK(redisReaderGetReply(ours.get(), &reply) == REDIS_ERR);
  CHECK(reply == nullptr);
}

TEST_CASE("a reader freed with half a reply frees it") {
  redisReader* ours = new_arena_reader();
  const std::string half = "*2\r\n" + bulk(std::string(9000, 'c'));
  REQUIRE(redisReaderFeed(ours, half.data(), half.size()) == REDIS_OK);
  void* reply = nullptr;
  CHECK(redisReaderGetReply(ours, &reply) == REDIS_OK);
  CHECK(reply == nullptr);
  redisReaderFree(ours);  // (valgrind: nothing left)
}

TEST_SUITE_END();
