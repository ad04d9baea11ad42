// Compressed dumps: zstd (libzstd) and gzip (zlib) as std::streambufs, so
// the dump writer and reader (dump_format.hpp) stream through them
// unchanged, with bounded memory both ways (a buffer of about 128 KiB each
// side, plus the codec's own window: zstd's decoder refuses frames whose
// window is above 128 MiB, ZSTD_WINDOWLOG_LIMIT_DEFAULT).
//
// CompressingBuf compresses what is written into it to another streambuf;
// the stream is complete only once finish() succeeded (a zstd frame with
// its content checksum, or a gzip member with its CRC-32), so a dump that
// fails midway leaves a truncated stream, which a reader refuses. sync()
// (std::ostream::flush) flushes the codec: what was written so far can be
// decompressed at the other end of a pipe.
//
// DecompressingBuf reads another streambuf and tells the compression by
// its first bytes (magic numbers: zstd 28 B5 2F FD, gzip 1F 8B), whatever
// the file is called; anything else is passed through as it is (plain
// JSON). Concatenated zstd frames or gzip members read as one stream, as
// `zstd -d` and `gzip -d` read them. A corrupt or truncated stream ends the
// input early and sets error(): a reader must check it even when what it
// read looked whole (the JSON can end before a frame's checksum does).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace redisfs {

enum class Compression { None, Zstd, Gzip };

// "none", "zstd", "gzip".
std::string_view compression_name(Compression c);
// The inverse of compression_name; nullopt for any other word.
std::optional<Compression> parse_compression(std::string_view name);
// By a file name's extension: ".zst" zstd, ".gz" gzip, else none ("-",
// stdout, is none).
Compression compression_for_path(std::string_view path);
// zstd 3 (its own default), gzip 6 (zlib's); none 0.
int default_compression_level(Compression c);
// A level the codec takes: zstd 1..ZSTD_maxCLevel() (22), gzip 1..9. EINVAL with a one-line message.
Status check_compression_level(Compression c, int level);

class CompressingBuf : public std::streambuf {
 public:
  // `level` 0: the default. Writes go to `dest`, which must outlive this.
  CompressingBuf(std::streambuf* dest, Compression c, int level = 0);
  ~CompressingBuf() override;
  CompressingBuf(const CompressingBuf&) = delete;
  CompressingBuf& operator=(const CompressingBuf&) = delete;

  // Ends the stream (zstd frame epilogue, gzip trailer) and flushes `dest`.
  Status finish();
  std::uint64_t bytes_in() const { return m_in_total + static_cast<std::uint64_t>(pptr() - pbase()); }
  std::uint64_t bytes_out() const { return m_out_total; }
  const std::optional<Error>& error() const { return m_error; }

  enum class Mode { Run, Flush, End };
  class Codec;

 protected:
  int_type overflow(int_type ch) override;
  int sync() override;

 private:
  bool drain(Mode mode);

  std::streambuf* m_dest;
  std::unique_ptr<Codec> m_codec;
  std::vector<char> m_in;
  std::vector<char> m_out;
  std::uint64_t m_in_total = 0;
  std::uint64_t m_out_total = 0;
  bool m_finished = false;
  std::optional<Error> m_error;
};

class DecompressingBuf : public std::streambuf {
 public:
  // Reads `source`, which must outlive this.
  explicit DecompressingBuf(std::streambuf* source);
  ~DecompressingBuf() override;
  DecompressingBuf(const DecompressingBuf&) = delete;
  DecompressingBuf& operator=(const DecompressingBuf&) = delete;

  // What the first bytes said (None until something was read, and for
  // plain input).
  Compression detected() const { return m_kind; }
  // Why the input ended early: a corrupt or truncated compressed stream
  // (EINVAL), one line naming the compressed byte offset.
  const std::optional<Error>& error() const { return m_error; }
  // Reads on, discarding, up to `max_bytes` of output or the end of the
  // input: after a reader gave up on what came out (bad JSON), whether
  // the compressed stream itself is broken (error() then says so), since
  // a corrupt deflate stream often decodes to garbage before its CRC-32
  // at the end tells.
  void check_rest(std::uint64_t max_bytes);

  class Codec;

 protected:
  int_type underflow() override;
  std::streamsize xsgetn(char* s, std::streamsize n) override;

 private:
  void detect();
  bool refill();  // false at the end of `source`

  std::streambuf* m_source;
  std::unique_ptr<Codec> m_codec;
  Compression m_kind = Compression::None;
  bool m_detected = false;
  std::vector<char> m_in;  // compressed bytes read from `source`
  std::size_t m_in_pos = 0;
  std::size_t m_in_end = 0;
  std::uint64_t m_in_base = 0;  // offset in `source` of m_in[0]
  bool m_source_eof = false;
  std::vector<char> m_out;
  bool m_out_full = false;  // the codec's last step filled m_out
  std::optional<Error> m_error;
};

}  // namespace redisfs
