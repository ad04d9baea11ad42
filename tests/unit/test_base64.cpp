// Base64 (RFC 4648 vectors, strictness of the decoder, round trips of all
// byte values and lengths) and the strict UTF-8 validator.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>

#include "util/base64.hpp"

using redisfs::base64_decode;
using redisfs::base64_encode;
using redisfs::is_valid_utf8;

TEST_CASE("base64: RFC 4648 vectors") {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}, {std::string("\xff", 1), "/w=="},
      {std::string("\0\1\2", 3), "AAEC"},
  };
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64_encode(plain) == encoded);
    auto decoded = base64_decode(encoded);
    REQUIRE(decoded.ok());
    CHECK(*decoded == plain);
  }
}

TEST_CASE("base64: append form keeps what precedes") {
  std::string out = "x:";
  redisfs::base64_encode_append(out, "foob");
  CHECK(out == "x:Zm9vYg==");
}

TEST_CASE("base64: round trip of every length and byte value") {
  std::string all;
  for (int c = 0; c < 256; ++c) {
    all.push_back(static_cast<char>(c));
  }
  std::mt19937 rng(7);
  for (size_t n = 0; n <= all.size(); ++n) {
    std::string data = all.substr(0, n);
    std::shuffle(data.begin(), data.end(), rng);
    const std::string encoded = base64_encode(data);
    CHECK(encoded.size() == (n + 2) / 3 * 4);
    auto decoded = base64_decode(encoded);
    REQUIRE(decoded.ok());
    CHECK(*decoded == data);
  }
}

TEST_CASE("base64: strict decoder rejects garbage with EINVAL") {
  const char* bad[] = {
      "Zg",         // no padding
      "Zg=",        // short padding
      "Zg===",      // length
      "Z===",       // too much padding
      "====",       // only padding
      "Zg==Zg==",   // padding in the middle
      "Zm9v!A==",   // bad character
      "Zm9v YmFy",  // whitespace
      "Zm9v\nYmFy", // newline
      "Zh==",       // non-zero bits before padding
      "Zm9=",       // non-zero bits before padding
      "Zm-v",       // URL-safe alphabet
      "Zm_v",
      "=Zm9",
  };
  for (const char* text : bad) {
    INFO("input: " << text);
    auto r = base64_decode(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == EINVAL);
    CHECK(r.error().message.find("invalid base64") == 0);
  }
  auto r = base64_decode(std::string("Zm9v\0mFy", 8));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("0x00") != std::string::npos);
  CHECK(r.error().message.find("offset 4") != std::string::npos);
}

TEST_CASE("utf8: valid text") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii, long enough to take the fast path of sixteen bytes"));
  CHECK(is_valid_utf8(std::string("nul\0inside", 10)));
  CHECK(is_valid_utf8("h\xc3\xa9llo"));                 // U+00E9
  CHECK(is_valid_utf8("\xe2\x82\xac"));                 // U+20AC
  CHECK(is_valid_utf8("\xf0\x9f\x98\x80"));             // U+1F600
  CHECK(is_valid_utf8("\xf4\x8f\xbf\xbf"));             // U+10FFFF
  CHECK(is_valid_utf8("\xed\x9f\xbf"));                 // U+D7FF
  CHECK(is_valid_utf8("\xee\x80\x80"));                 // U+E000
  CHECK(is_valid_utf8("\xc2\x80"));                     // U+0080
  CHECK(is_valid_utf8("\xe0\xa0\x80"));                 // U+0800
  CHECK(is_valid_utf8("\xf0\x90\x80\x80"));             // U+10000
  CHECK(is_valid_utf8("0123456789abcdef\xc3\xa9" "0123456789abcdef"));
}

TEST_CASE("utf8: invalid sequences") {
  const char* bad[] = {
      "\x80",              // stray continuation
      "\xbf",              //
      "\xc0\x80",          // overlong NUL
      "\xc1\xbf",          // overlong
      "\xe0\x80\x80",      // overlong 3-byte
      "\xe0\x9f\xbf",      // overlong 3-byte
      "\xf0\x80\x80\x80",  // overlong 4-byte
      "\xf0\x8f\xbf\xbf",  // overlong 4-byte
      "\xed\xa0\x80",      // U+D800 surrogate
      "\xed\xbf\xbf",      // U+DFFF surrogate
      "\xf4\x90\x80\x80",  // U+110000
      "\xf5\x80\x80\x80",  // beyond
      "\xff",              //
      "\xfe",              //
      "\xc3",              // truncated
      "\xe2\x82",          // truncated
      "\xf0\x9f\x98",      // truncated
      "\xc3\x28",          // bad continuation
      "\xe2\x28\xa1",      //
      "0123456789abcdef0123456789\xff",
  };
  for (const char* s : bad) {
    INFO("input length " << std::string(s).size());
    CHECK_FALSE(is_valid_utf8(s));
  }
}
