// SHA-256: the FIPS 180-2 / NIST test vectors, incremental feeding in odd
// pieces, and agreement of the accelerated and portable compression
// functions on random input.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>

#include "sha256.hpp"

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

TEST_CASE("sha256: accelerated and portable compression agree") {
  std::mt19937_64 rng(42);
  std::string blocks(64 * 257, '\0');
  for (auto& c : blocks) {
    c = static_cast<char>(rng());
  }
  uint32_t a[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint32_t b[8];
  std::copy(a, a + 8, b);
  const auto* p = reinterpret_cast<const uint8_t*>(blocks.data());
  redisfs::detail::sha256_compress_portable(a, p, 257);
  if (redisfs::detail::sha256_compress_accelerated(b, p, 257)) {
    for (int i = 0; i < 8; ++i) {
      CHECK(a[i] == b[i]);
    }
  } else {
    MESSAGE("no accelerated SHA-256 on this machine");
  }
  INFO("implementation: " << Sha256::implementation());
  CHECK(std::string(Sha256::implementation()).size() > 0);
}
