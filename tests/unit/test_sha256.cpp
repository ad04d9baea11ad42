// SHA-256: the FIPS 180-2 / NIST test vectors, incremental feeding in odd
// pieces, and copies of a running hash.
#include <doctest/doctest.h>

#include <algorithm>
#include <utility>
#include <string>

#include "util/sha256.hpp"

using redisfs::Sha256;
using redisfs::sha256_hex;

TEST_CASE("sha256: NIST vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                   "mnopqrstnopqrstu") == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: one million 'a' fed in uneven pieces") {
  Sha256 h;
  size_t fed = 0;
  size_t piece = 1;
  const std::string chunk(1000, 'a');
  while (fed < 1000000) {
    const size_t n = std::min({piece, chunk.size(), 1000000 - fed});
    h.update(chunk.data(), n);
    fed += n;
    piece = piece * 7 % 997 + 1;
  }
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: padding boundaries and hex_digest leaves the state alone") {
  for (size_t n = 0; n < 200; ++n) {
    const std::string data(n, static_cast<char>('a' + n % 26));
    Sha256 whole;
    whole.update(data);
    Sha256 split;
    split.update(data.substr(0, n / 3));
    const std::string mid = split.hex_digest();
    CHECK(mid == sha256_hex(data.substr(0, n / 3)));
    split.update(data.substr(n / 3));
    CHECK(split.hex_digest() == whole.hex_digest());
    CHECK(whole.hex_digest() == whole.hex_digest());
  }
  CHECK(sha256_hex(std::string(55, 'x')) == "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
}

TEST_CASE("sha256: a copy goes on from where it was copied, on its own") {
  Sha256 a;
  a.update("abc");
  Sha256 b = a;  // the running state, copied
  a.update("dbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  CHECK(b.hex_digest() == sha256_hex("abc"));
  b.update("dbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  CHECK(a.hex_digest() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(b.hex_digest() == a.hex_digest());

  Sha256 c;
  c = a;  // assignment replaces c's state with a's
  CHECK(c.hex_digest() == a.hex_digest());
  Sha256 moved = std::move(c);
  CHECK(moved.hex_digest() == a.hex_digest());
  c.update("abc");  // a moved-from hash starts again
  CHECK(c.hex_digest() == sha256_hex("abc"));
}
