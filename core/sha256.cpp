// SHA-256: a portable compression function, an x86 SHA-extensions one
// picked at run time through cpuid, and the usual Merkle-Damgard buffering
// around them (64-byte blocks, 0x80 padding, 64-bit big-endian bit length).
#include "sha256.hpp"

#include <algorithm>
#include <cstring>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define REDISFS_SHA_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace redisfs {

static constexpr std::array<uint32_t, 8> k_initial = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

alignas(16) static constexpr uint32_t k_round[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t _ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t _load_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

void detail::sha256_compress_portable(uint32_t state[8], const uint8_t* blocks, size_t count) {
  uint32_t w[64];
  for (size_t b = 0; b < count; ++b, blocks += 64) {
    for (int i = 0; i < 16; ++i) {
      w[i] = _load_be32(blocks + 4 * i);
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = _ror(w[i - 15], 7) ^ _ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = _ror(w[i - 2], 17) ^ _ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b2 = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t t1 = h + (_ror(e, 6) ^ _ror(e, 11) ^ _ror(e, 25)) + ((e & f) ^ (~e & g)) + k_round[i] + w[i];
      uint32_t t2 = (_ror(a, 2) ^ _ror(a, 13) ^ _ror(a, 22)) + ((a & b2) ^ (a & c) ^ (b2 & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b2;
      b2 = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b2;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#ifdef REDISFS_SHA_X86

__attribute__((target("sha,sse4.1,ssse3"))) static void _compress_shani(uint32_t state[8], const uint8_t* data,
                                                                        size_t count) {
  const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&state[0]));
  __m128i state1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&state[4]));
  tmp = _mm_shuffle_epi32(tmp, 0xB1);
  state1 = _mm_shuffle_epi32(state1, 0x1B);
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);

  for (size_t b = 0; b < count; ++b, data += 64) {
    const __m128i abef_save = state0;
    const __m128i cdgh_save = state1;
    __m128i w[4];
    for (int i = 0; i < 16; ++i) {
      __m128i m;
      if (i < 4) {
        m = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * i)), mask);
      } else {
        m = _mm_sha256msg1_epu32(w[i & 3], w[(i - 3) & 3]);
        m = _mm_add_epi32(m, _mm_alignr_epi8(w[(i - 1) & 3], w[(i - 2) & 3], 4));
        m = _mm_sha256msg2_epu32(m, w[(i - 1) & 3]);
      }
      w[i & 3] = m;
      __m128i k = _mm_add_epi32(m, _mm_load_si128(reinterpret_cast<const __m128i*>(&k_round[4 * i])));
      state1 = _mm_sha256rnds2_epu32(state1, state0, k);
      state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(k, 0x0E));
    }
    state0 = _mm_add_epi32(state0, abef_save);
    state1 = _mm_add_epi32(state1, cdgh_save);
  }

  tmp = _mm_shuffle_epi32(state0, 0x1B);
  state1 = _mm_shuffle_epi32(state1, 0xB1);
  state0 = _mm_blend_epi16(tmp, state1, 0xF0);
  state1 = _mm_alignr_epi8(state1, tmp, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&state[0]), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&state[4]), state1);
}

static bool _have_shani() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    return false;
  }
  const bool ssse3 = (ecx & (1u << 9)) != 0;
  const bool sse41 = (ecx & (1u << 19)) != 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    return false;
  }
  const bool sha = (ebx & (1u << 29)) != 0;
  return ssse3 && sse41 && sha;
}

#endif

bool detail::sha256_compress_accelerated(uint32_t state[8], const uint8_t* blocks, size_t count) {
#ifdef REDISFS_SHA_X86
  static const bool k_available = _have_shani();
  if (k_available) {
    _compress_shani(state, blocks, count);
    return true;
  }
#else
  (void)state;
  (void)blocks;
  (void)count;
#endif
  return false;
}

static void _compress(uint32_t state[8], const uint8_t* blocks, size_t count) {
  if (!detail::sha256_compress_accelerated(state, blocks, count)) {
    detail::sha256_compress_portable(state, blocks, count);
  }
}

Sha256::Sha256() : m_state(k_initial) {}

void Sha256::update(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  m_total += size;
  if (m_block_used > 0) {
    const size_t take = std::min(size, m_block.size() - m_block_used);
    std::memcpy(m_block.data() + m_block_used, p, take);
    m_block_used += take;
    p += take;
    size -= take;
    if (m_block_used < m_block.size()) {
      return;
    }
    _compress(m_state.data(), m_block.data(), 1);
    m_block_used = 0;
  }
  if (size >= 64) {
    const size_t blocks = size / 64;
    _compress(m_state.data(), p, blocks);
    p += blocks * 64;
    size -= blocks * 64;
  }
  if (size > 0) {
    std::memcpy(m_block.data(), p, size);
    m_block_used = size;
  }
}

std::array<uint8_t, 32> Sha256::digest() const {
  std::array<uint32_t, 8> state = m_state;
  uint8_t tail[128] = {};
  std::memcpy(tail, m_block.data(), m_block_used);
  tail[m_block_used] = 0x80;
  const size_t tail_len = m_block_used + 1 + 8 <= 64 ? 64 : 128;
  const uint64_t bits = m_total * 8;
  for (int i = 0; i < 8; ++i) {
    tail[tail_len - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  }
  _compress(state.data(), tail, tail_len / 64);
  std::array<uint8_t, 32> out{};
  for (size_t i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<uint8_t>(state[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(state[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(state[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(state[i]);
  }
  return out;
}

std::string Sha256::hex_digest() const {
  static constexpr char k_hex[] = "0123456789abcdef";
  const auto d = digest();
  std::string out(64, '0');
  for (size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = k_hex[d[i] >> 4];
    out[2 * i + 1] = k_hex[d[i] & 15];
  }
  return out;
}

const char* Sha256::implementation() {
  uint32_t state[8] = {};
  uint8_t block[64] = {};
  return detail::sha256_compress_accelerated(state, block, 1) ? "sha-ni" : "portable";
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex_digest();
}

}  // namespace redisfs
