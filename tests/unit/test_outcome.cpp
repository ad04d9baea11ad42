// outcome_to_resp: the MessagePack of an outcome record (cmsgpack.pack of a
// script's reply) back to the RESP Redis sends for that Lua value. The
// Redis-backed suite checks the same against a real server (test_connection).
#include <doctest/doctest.h>

#include <string>

#include "redis/outcome.hpp"

using redisfs::outcome_to_resp;

static std::string _resp(const std::string& msgpack) {
  auto r = outcome_to_resp(msgpack);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return *r;
}

TEST_CASE("outcome records: scalars") {
  CHECK(_resp(std::string("\x0b", 1)) == ":11\r\n");
  CHECK(_resp("\xff") == ":-1\r\n");
  CHECK(_resp(std::string("\xcd\x01\x00", 3)) == ":256\r\n");
  CHECK(_resp(std::string("\xd3\xff\xff\xff\xff\xff\xff\xff\xfe", 9)) == ":-2\r\n");
  CHECK(_resp(std::string("\xcb\x40\x0d\x99\x99\x99\x99\x99\x9a", 9)) == ":3\r\n");  // 3.7 truncated, as Redis does
  CHECK(_resp(std::string("\xca\xc0\x70\x00\x00", 5)) == ":-3\r\n");  // float 32: -3.75
  CHECK(_resp("\xa2OK") == "$2\r\nOK\r\n");
  CHECK(_resp(std::string("\xa3" "a\0b", 4)) == std::string("$3\r\na\0b\r\n", 9));
  CHECK(_resp("\xc0") == "$-1\r\n");
  CHECK(_resp("\xc3") == ":1\r\n");
  CHECK(_resp("\xc2") == "$-1\r\n");
}

TEST_CASE("outcome records: tables") {
  CHECK(_resp("\x90") == "*0\r\n");
  CHECK(_resp("\x92\xa2OK\x05") == "*2\r\n$2\r\nOK\r\n:5\r\n");
  CHECK(_resp("\x81\xa3" "err" "\xa6" "ENOENT") == "-ENOENT\r\n");
  CHECK(_resp("\x81\xa2ok\xa4" "fine") == "+fine\r\n");
  // a table with a hole is a map to cmsgpack: Redis stops at the first nil
  CHECK(_resp("\x83\x01\xa1" "a\x02\xa1" "b\x04\xa1" "d") == "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
  // a long string (str 16)
  std::string big(300, 'z');
  CHECK(_resp(std::string("\xda\x01\x2c", 3) + big) == "$300\r\n" + big + "\r\n");
}

TEST_CASE("outcome records: damaged input is refused") {
  for (std::string bad : {std::string(), std::string("\xa5" "ab"), std::string("\x92\x01"), std::string("\xc1"),
                          std::string("\x01\x02"), std::string("\xdd\xff\xff\xff\xff"),
                          std::string(200, '\x91')}) {
    CHECK_FALSE(outcome_to_resp(bad).ok());
  }
}
