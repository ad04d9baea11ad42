// SHA-256 (FIPS 180-4), incremental.
//
// The dump format's trailer carries a SHA-256 of the dumped content, and a
// dump can be gigabytes, so this is written for throughput: blocks are
// compressed straight from the caller's buffer when it is long enough, and on
// x86-64 processors with the SHA extensions the compression function uses
// them (chosen once, at run time); elsewhere a portable version runs.
//
// hex_digest() does not disturb the running state: it finalises a copy, so it
// may be called at any point (and again after more update() calls) to get
// the digest of everything fed so far.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace redisfs {

class Sha256 {
 public:
  Sha256();

  void update(std::string_view data) { update(data.data(), data.size()); }
  void update(const void* data, size_t size);

  std::array<uint8_t, 32> digest() const;
  std::string hex_digest() const;

  // Which compression function this process uses: "sha-ni" or "portable".
  static const char* implementation();

 private:
  std::array<uint32_t, 8> m_state;
  std::array<uint8_t, 64> m_block{};
  size_t m_block_used = 0;
  uint64_t m_total = 0;
};

std::string sha256_hex(std::string_view data);

namespace detail {
// Both compression functions, exposed so the tests can compare them.
void sha256_compress_portable(uint32_t state[8], const uint8_t* blocks, size_t count);
bool sha256_compress_accelerated(uint32_t state[8], const uint8_t* blocks, size_t count);  // false: unavailable
}  // namespace detail

}  // namespace redisfs
