// SHA-256 (FIPS 180-4), incremental: OpenSSL's EVP digest (libcrypto, which
// the TLS transport links already) behind a small value type.
//
// The dump format's trailer carries a SHA-256 of the dumped content, and a
// dump can be gigabytes: OpenSSL picks the fastest code for the processor
// (the x86 SHA extensions where present).
//
// A Sha256 is copyable: the copy carries the running state
// (EVP_MD_CTX_copy_ex) and goes on independently. hex_digest() does not
// disturb the running state: it finalises a copy, so it may be called at any
// point (and again after more update() calls) to get the digest of
// everything fed so far.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace redisfs {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256& other);
  Sha256& operator=(const Sha256& other);
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;

  void update(std::string_view data) { update(data.data(), data.size()); }
  void update(const void* data, size_t size);

  std::array<uint8_t, 32> digest() const;
  std::string hex_digest() const;

 private:
  EVP_MD_CTX* m_ctx;
};

std::string sha256_hex(std::string_view data);

}  // namespace redisfs
