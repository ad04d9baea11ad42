// SHA-256 through OpenSSL's EVP interface (see sha256.hpp). A failure of
// OpenSSL here (no memory for a context) is not an error a caller could
// act on: it ends the process with a message, like a failed allocation.
#include "util/sha256.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "util/text.hpp"

namespace redisfs {

[[noreturn]] static void _fail(const char* what) {
  std::fprintf(stderr, "redisfs: OpenSSL SHA-256: %s failed\n", what);
  std::abort();
}

static EVP_MD_CTX* _new_ctx() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) {
    _fail("EVP_MD_CTX_new");
  }
  return ctx;
}

static void _init(EVP_MD_CTX* ctx) {
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    _fail("EVP_DigestInit_ex");
  }
}

Sha256::Sha256() : m_ctx(_new_ctx()) { _init(m_ctx); }

Sha256::~Sha256() { EVP_MD_CTX_free(m_ctx); }

Sha256::Sha256(const Sha256& other) : m_ctx(_new_ctx()) {
  if (EVP_MD_CTX_copy_ex(m_ctx, other.m_ctx) != 1) {
    _fail("EVP_MD_CTX_copy_ex");
  }
}

Sha256& Sha256::operator=(const Sha256& other) {
  if (this != &other && EVP_MD_CTX_copy_ex(m_ctx, other.m_ctx) != 1) {
    _fail("EVP_MD_CTX_copy_ex");
  }
  return *this;
}

// A moved-from Sha256 starts again from nothing, so it stays usable.
Sha256::Sha256(Sha256&& other) noexcept : m_ctx(std::exchange(other.m_ctx, _new_ctx())) { _init(other.m_ctx); }

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  std::swap(m_ctx, other.m_ctx);
  _init(other.m_ctx);
  return *this;
}

void Sha256::update(const void* data, size_t size) {
  if (size != 0 && EVP_DigestUpdate(m_ctx, data, size) != 1) {
    _fail("EVP_DigestUpdate");
  }
}

std::array<uint8_t, 32> Sha256::digest() const {
  Sha256 copy(*this);
  std::array<uint8_t, 32> out{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(copy.m_ctx, out.data(), &length) != 1 || length != out.size()) {
    _fail("EVP_DigestFinal_ex");
  }
  return out;
}

std::string Sha256::hex_digest() const { return lower_hex(digest()); }

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex_digest();
}

}  // namespace redisfs
