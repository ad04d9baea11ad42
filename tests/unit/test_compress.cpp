// compress.hpp: zstd and gzip streambufs round trip data larger than their
// buffers, are told by their magic, pass plain input through, flush on
// sync() so a pipe's reader gets what was written, and refuse truncated or
// corrupt streams with an error() (even where the data came out whole).
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "snap/compress.hpp"

using namespace redisfs;

namespace {

// Text that compresses, then pseudo-random bytes that do not.
std::string sample(std::size_t n) {
  std::string s;
  s.reserve(n);
  std::uint64_t x = 88172645463325252ull;
  while (s.size() < n) {
    if ((s.size() / 100000) % 2 == 0) {
      s += "{\"key\":\"BLK:" + std::to_string(s.size()) + ":0\",\"string\":\"hello\"},\n";
    } else {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      s.push_back(static_cast<char>(x));
    }
  }
  s.resize(n);
  return s;
}

std::string compress(const std::string& data, Compression c, int level = 0) {
  std::stringbuf out;
  CompressingBuf z(&out, c, level);
  std::ostream os(&z);
  // In uneven pieces, as the dump writer writes.
  for (std::size_t i = 0; i < data.size(); i += 70001) {
    os.write(data.data() + i, static_cast<std::streamsize>(std::min<std::size_t>(70001, data.size() - i)));
  }
  REQUIRE(os.good());
  REQUIRE(z.finish().ok());
  CHECK(z.bytes_in() == data.size());
  CHECK(z.bytes_out() == out.str().size());
  return out.str();
}

struct Decoded {
  std::string data;
  Compression kind;
  std::optional<Error> error;
};

Decoded decompress(const std::string& bytes) {
  std::stringbuf in(bytes);
  DecompressingBuf d(&in);
  std::istream is(&d);
  std::string got;
  char buf[50000];
  while (is.read(buf, sizeof buf) || is.gcount() > 0) {
    got.append(buf, static_cast<std::size_t>(is.gcount()));
  }
  return {got, d.detected(), d.error()};
}

}  // namespace

TEST_CASE("compress: names, extensions and levels") {
  CHECK(parse_compression("zstd") == Compression::Zstd);
  CHECK(parse_compression("gzip") == Compression::Gzip);
  CHECK(parse_compression("none") == Compression::None);
  CHECK_FALSE(parse_compression("xz"));
  CHECK(compression_for_path("fs.json.zst") == Compression::Zstd);
  CHECK(compression_for_path("/a/fs.json.gz") == Compression::Gzip);
  CHECK(compression_for_path("fs.json") == Compression::None);
  CHECK(compression_for_path("fs.zst.json") == Compression::None);
  // (redisfs-snap(1): zstd 1-22, default 3; gzip 1-9, default 6)
  CHECK(default_compression_level(Compression::Zstd) == 3);
  CHECK(default_compression_level(Compression::Gzip) == 6);
  for (int level : {1, 19, 22}) {
    CHECK(check_compression_level(Compression::Zstd, level).ok());
  }
  CHECK_FALSE(check_compression_level(Compression::Zstd, 0).ok());
  CHECK_FALSE(check_compression_level(Compression::Zstd, 23).ok());
  CHECK(check_compression_level(Compression::Gzip, 1).ok());
  CHECK(check_compression_level(Compression::Gzip, 9).ok());
  CHECK_FALSE(check_compression_level(Compression::Gzip, 0).ok());
  CHECK_FALSE(check_compression_level(Compression::Gzip, 10).ok());
  CHECK_FALSE(check_compression_level(Compression::None, 3).ok());
}

TEST_CASE("compress: zstd and gzip round trip several MiB, told by their magic") {
  const std::string data = sample(3 << 20);
  for (Compression c : {Compression::Zstd, Compression::Gzip}) {
    CAPTURE(compression_name(c));
    std::string packed = compress(data, c);
    CHECK(packed.size() < data.size());
    if (c == Compression::Zstd) {
      CHECK(packed.rfind("\x28\xb5\x2f\xfd", 0) == 0);
    } else {
      CHECK(packed.rfind("\x1f\x8b", 0) == 0);
    }
    Decoded d = decompress(packed);
    CHECK_FALSE(d.error);
    CHECK(d.kind == c);
    CHECK(d.data == data);
    // Two streams one after the other read as one (zstd -d, gzip -d).
    Decoded twice = decompress(packed + compress("tail", c));
    CHECK_FALSE(twice.error);
    CHECK(twice.data == data + "tail");
  }
  CHECK(decompress(compress(data, Compression::Zstd, 19)).data == data);
}

TEST_CASE("compress: plain input passes through, whatever its length") {
  for (std::string s : {std::string(), std::string("{"), std::string("{\"a\":1}"), sample(1 << 20)}) {
    Decoded d = decompress(s);
    CHECK_FALSE(d.error);
    CHECK(d.kind == Compression::None);
    CHECK(d.data == s);
  }
  // One byte of gzip's magic is not gzip.
  CHECK(decompress("\x1f").data == "\x1f");
}

TEST_CASE("compress: sync() makes what was written so far readable") {
  for (Compression c : {Compression::Zstd, Compression::Gzip}) {
    std::stringbuf out;
    CompressingBuf z(&out, c);
    std::ostream os(&z);
    os << "first part";
    os.flush();
    // Not finished: the stream is truncated, but what was flushed is there.
    Decoded d = decompress(out.str());
    CHECK(d.data == "first part");
    REQUIRE(d.error);
    CHECK(d.error->message.find("truncated") != std::string::npos);
  }
}

TEST_CASE("compress: truncated and corrupt streams set error()") {
  const std::string data = sample(1 << 20);
  for (Compression c : {Compression::Zstd, Compression::Gzip}) {
    CAPTURE(compression_name(c));
    std::string packed = compress(data, c);
    // Cut in the middle, and cut only the checksum at the end (the data
    // itself then comes out whole: the error must still be there).
    for (std::size_t keep : {packed.size() / 2, packed.size() - 2, std::size_t(4)}) {
      Decoded d = decompress(packed.substr(0, keep));
      REQUIRE(d.error);
      CHECK(d.error->code == EINVAL);
      CHECK(d.error->message.find("truncated") != std::string::npos);
      CHECK(d.error->message.find('\n') == std::string::npos);
    }
    std::string bad = packed;
    for (std::size_t i = bad.size() / 3; i < bad.size() / 3 + 64; ++i) {
      bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    }
    Decoded d = decompress(bad);
    REQUIRE(d.error);
    CHECK(d.error->message.find("corrupt") != std::string::npos);
    CHECK(d.data != data);
  }
}

TEST_CASE("compress: check_rest reads on to the stream's own fault, within its limit") {
  const std::string data = sample(1 << 20);
  std::string packed = compress(data, Compression::Gzip);
  packed[packed.size() - 8] = static_cast<char>(packed[packed.size() - 8] ^ 1);  // the CRC-32
  for (std::uint64_t limit : {std::uint64_t(1000), std::uint64_t(64) << 20}) {
    std::stringbuf in(packed);
    DecompressingBuf d(&in);
    char first[100];
    REQUIRE(d.sgetn(first, sizeof first) == sizeof first);
    CHECK_FALSE(d.error());
    d.check_rest(limit);
    CHECK(d.error().has_value() == (limit > data.size()));
  }
  std::stringbuf plain("{not json");
  DecompressingBuf d(&plain);
  char c;
  d.sgetn(&c, 1);
  d.check_rest(1000);
  CHECK_FALSE(d.error());
}
