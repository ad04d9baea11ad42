// zstd and gzip streambufs (compress.hpp). Each side keeps one buffer of
// k_buf bytes of its own and hands the codec whatever it has: memory stays
// the same whatever the size of the stream.
#include "snap/compress.hpp"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>

namespace redisfs {

static constexpr std::size_t k_buf = 128 * 1024;

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::Zstd:
      return "zstd";
    case Compression::Gzip:
      return "gzip";
    case Compression::None:
      break;
  }
  return "none";
}

std::optional<Compression> parse_compression(std::string_view name) {
  for (Compression c : {Compression::None, Compression::Zstd, Compression::Gzip}) {
    if (name == compression_name(c)) {
      return c;
    }
  }
  return std::nullopt;
}

Compression compression_for_path(std::string_view path) {
  if (path.ends_with(".zst")) {
    return Compression::Zstd;
  }
  if (path.ends_with(".gz")) {
    return Compression::Gzip;
  }
  return Compression::None;
}

int default_compression_level(Compression c) {
  switch (c) {
    case Compression::Zstd:
      return 3;
    case Compression::Gzip:
      return 6;
    case Compression::None:
      break;
  }
  return 0;
}

Status check_compression_level(Compression c, int level) {
  int high = c == Compression::Zstd ? ZSTD_maxCLevel() : c == Compression::Gzip ? 9 : 0;
  if (c == Compression::None) {
    return make_error(EINVAL, "a compression level needs compression (--compress zstd or gzip, or a .zst or .gz file)");
  }
  if (level < 1 || level > high) {
    return make_error(EINVAL, "compression level " + std::to_string(level) + " is out of range for " +
                                  std::string(compression_name(c)) + " (1 to " + std::to_string(high) + ")");
  }
  return {};
}

// ---------------------------------------------------------------- compressing

// One step of a compressor: consume what it can of `in` (advancing it),
// write at most `cap` bytes to `out` (`produced`), and say whether a flush
// or end asked for is complete (`done`).
class CompressingBuf::Codec {
 public:
  virtual ~Codec() = default;
  virtual Status step(std::string_view& in, char* out, std::size_t cap, std::size_t& produced, Mode mode,
                      bool& done) = 0;
};

namespace {

class ZstdEncoder : public CompressingBuf::Codec {
 public:
  explicit ZstdEncoder(int level) : m_cctx(ZSTD_createCCtx()) {
    if (m_cctx != nullptr) {
      ZSTD_CCtx_setParameter(m_cctx, ZSTD_c_compressionLevel, level);
      ZSTD_CCtx_setParameter(m_cctx, ZSTD_c_checksumFlag, 1);
    }
  }
  ~ZstdEncoder() override { ZSTD_freeCCtx(m_cctx); }
  ZstdEncoder(const ZstdEncoder&) = delete;
  ZstdEncoder& operator=(const ZstdEncoder&) = delete;

  Status step(std::string_view& in, char* out, std::size_t cap, std::size_t& produced, CompressingBuf::Mode mode,
              bool& done) override {
    if (m_cctx == nullptr) {
      return make_error(ENOMEM, "zstd: cannot create a compression context");
    }
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out, cap, 0};
    ZSTD_EndDirective d = mode == CompressingBuf::Mode::Run ? ZSTD_e_continue : mode == CompressingBuf::Mode::Flush ? ZSTD_e_flush : ZSTD_e_end;
    std::size_t left = ZSTD_compressStream2(m_cctx, &ob, &ib, d);
    if (ZSTD_isError(left)) {
      return make_error(EIO, std::string("zstd: ") + ZSTD_getErrorName(left));
    }
    in.remove_prefix(ib.pos);
    produced = ob.pos;
    done = mode == CompressingBuf::Mode::Run ? in.empty() : (left == 0 && in.empty());
    return {};
  }

 private:
  ZSTD_CCtx* m_cctx;
};

class GzipEncoder : public CompressingBuf::Codec {
 public:
  explicit GzipEncoder(int level) {
    // 16 + MAX_WBITS: a gzip header and trailer around the deflate stream.
    m_ok = deflateInit2(&m_z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipEncoder() override {
    if (m_ok) {
      deflateEnd(&m_z);
    }
  }
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;

  Status step(std::string_view& in, char* out, std::size_t cap, std::size_t& produced, CompressingBuf::Mode mode,
              bool& done) override {
    if (!m_ok) {
      return make_error(ENOMEM, "gzip: cannot create a compression stream");
    }
    m_z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    m_z.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), 1u << 30));
    m_z.next_out = reinterpret_cast<Bytef*>(out);
    m_z.avail_out = static_cast<uInt>(cap);
    int flush = mode == CompressingBuf::Mode::Run ? Z_NO_FLUSH : mode == CompressingBuf::Mode::Flush ? Z_SYNC_FLUSH : Z_FINISH;
    int r = deflate(&m_z, flush);
    if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
      return make_error(EIO, std::string("gzip: ") + (m_z.msg != nullptr ? m_z.msg : "deflate failed"));
    }
    std::size_t used = static_cast<std::size_t>(reinterpret_cast<const char*>(m_z.next_in) - in.data());
    in.remove_prefix(used);
    produced = cap - m_z.avail_out;
    if (mode == CompressingBuf::Mode::End) {
      done = r == Z_STREAM_END;
    } else {
      // Everything consumed and room left over: nothing more is pending.
      done = in.empty() && m_z.avail_out != 0;
    }
    return {};
  }

 private:
  z_stream m_z{};
  bool m_ok = false;
};

}  // namespace

CompressingBuf::CompressingBuf(std::streambuf* dest, Compression c, int level)
    : m_dest(dest), m_in(k_buf), m_out(k_buf) {
  if (level == 0) {
    level = default_compression_level(c);
  }
  if (c == Compression::Zstd) {
    m_codec = std::make_unique<ZstdEncoder>(level);
  } else if (c == Compression::Gzip) {
    m_codec = std::make_unique<GzipEncoder>(level);
  } else {
    m_error = make_error(EINVAL, "CompressingBuf without a compression");
  }
  setp(m_in.data(), m_in.data() + m_in.size());
}

CompressingBuf::~CompressingBuf() = default;

bool CompressingBuf::drain(Mode mode) {
  if (m_error) {
    return false;
  }
  std::string_view in(pbase(), static_cast<std::size_t>(pptr() - pbase()));
  m_in_total += in.size();
  setp(m_in.data(), m_in.data() + m_in.size());
  for (;;) {
    std::size_t produced = 0;
    bool done = false;
    Status st = m_codec->step(in, m_out.data(), m_out.size(), produced, mode, done);
    if (!st.ok()) {
      m_error = st.error();
      return false;
    }
    if (produced > 0) {
      std::streamsize n = static_cast<std::streamsize>(produced);
      if (m_dest->sputn(m_out.data(), n) != n) {
        m_error = make_error(EIO, "writing the compressed stream failed");
        return false;
      }
      m_out_total += produced;
    }
    if (done) {
      return true;
    }
  }
}

CompressingBuf::int_type CompressingBuf::overflow(int_type ch) {
  if (m_finished || !drain(Mode::Run)) {
    return traits_type::eof();
  }
  if (!traits_type::eq_int_type(ch, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(ch);
    pbump(1);
  }
  return traits_type::not_eof(ch);
}

int CompressingBuf::sync() {
  if (m_finished) {
    return 0;
  }
  if (!drain(Mode::Flush) || m_dest->pubsync() != 0) {
    return -1;
  }
  return 0;
}

Status CompressingBuf::finish() {
  if (!m_finished) {
    m_finished = drain(Mode::End);
  }
  if (m_error) {
    return *m_error;
  }
  if (m_dest->pubsync() != 0) {
    return make_error(EIO, "writing the compressed stream failed");
  }
  return {};
}

// ---------------------------------------------------------------- decompressing

// One step of a decompressor over `in` (advanced past what it used);
// `produced` bytes land in `out`. at_boundary(): the input so far ends
// exactly at the end of a frame (zstd) or member (gzip).
class DecompressingBuf::Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string_view name() const = 0;
  virtual Status step(std::string_view& in, char* out, std::size_t cap, std::size_t& produced) = 0;
  virtual bool at_boundary() const = 0;
};

namespace {

class ZstdDecoder : public DecompressingBuf::Codec {
 public:
  ZstdDecoder() : m_dctx(ZSTD_createDCtx()) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(m_dctx); }
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;

  std::string_view name() const override { return "zstd"; }

  Status step(std::string_view& in, char* out, std::size_t cap, std::size_t& produced) override {
    if (m_dctx == nullptr) {
      return make_error(ENOMEM, "cannot create a zstd decompression context");
    }
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out, cap, 0};
    std::size_t r = ZSTD_decompressStream(m_dctx, &ob, &ib);
    in.remove_prefix(ib.pos);
    produced = ob.pos;
    if (ZSTD_isError(r)) {
      return make_error(EINVAL, ZSTD_getErrorName(r));
    }
    // 0: a frame has been decoded and flushed whole (a call that did
    // nothing, at the end of the input, leaves that as it was).
    if (ib.pos > 0 || ob.pos > 0) {
      m_boundary = r == 0;
    }
    return {};
  }

  bool at_boundary() const override { return m_boundary; }

 private:
  ZSTD_DCtx* m_dctx;
  bool m_boundary = false;
};

class GzipDecoder : public DecompressingBuf::Codec {
 public:
  GzipDecoder() { m_ok = inflateInit2(&m_z, 16 + MAX_WBITS) == Z_OK; }
  ~GzipDecoder() override {
    if (m_ok) {
      inflateEnd(&m_z);
    }
  }
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  std::string_view name() const override { return "gzip"; }

  Status step(std::string_view& in, char* out, std::size_t cap, std::size_t& produced) override {
    produced = 0;
    if (!m_ok) {
      return make_error(ENOMEM, "cannot create a gzip decompression stream");
    }
    if (m_boundary && !in.empty()) {
      // Another member follows (gzip -d reads concatenated members).
      inflateReset(&m_z);
      m_boundary = false;
    }
    m_z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    m_z.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), 1u << 30));
    m_z.next_out = reinterpret_cast<Bytef*>(out);
    m_z.avail_out = static_cast<uInt>(cap);
    int r = inflate(&m_z, Z_NO_FLUSH);
    in.remove_prefix(static_cast<std::size_t>(reinterpret_cast<const char*>(m_z.next_in) - in.data()));
    produced = cap - m_z.avail_out;
    if (r == Z_STREAM_END) {
      m_boundary = true;
    } else if (r != Z_OK && r != Z_BUF_ERROR) {
      return make_error(EINVAL, m_z.msg != nullptr ? m_z.msg : "inflate failed");
    }
    return {};
  }

  bool at_boundary() const override { return m_boundary; }

 private:
  z_stream m_z{};
  bool m_ok = false;
  bool m_boundary = false;
};

}  // namespace

DecompressingBuf::DecompressingBuf(std::streambuf* source) : m_source(source), m_in(k_buf) {}

DecompressingBuf::~DecompressingBuf() = default;

bool DecompressingBuf::refill() {
  if (m_in_pos < m_in_end) {
    return true;
  }
  if (m_source_eof) {
    return false;
  }
  m_in_base += m_in_end;
  m_in_pos = m_in_end = 0;
  std::streamsize n = m_source->sgetn(m_in.data(), static_cast<std::streamsize>(m_in.size()));
  if (n <= 0) {
    m_source_eof = true;
    return false;
  }
  m_in_end = static_cast<std::size_t>(n);
  return true;
}

void DecompressingBuf::detect() {
  m_detected = true;
  // The first four bytes (fewer only at the end of the input).
  while (m_in_end < 4 && !m_source_eof) {
    std::streamsize n = m_source->sgetn(m_in.data() + m_in_end, static_cast<std::streamsize>(4 - m_in_end));
    if (n <= 0) {
      m_source_eof = true;
    } else {
      m_in_end += static_cast<std::size_t>(n);
    }
  }
  const auto* b = reinterpret_cast<const unsigned char*>(m_in.data());
  // zstd (RFC 8878): a frame, 28 B5 2F FD, or a skippable frame first,
  // 5? 2A 4D 18 (pzstd writes one ahead of each frame), which libzstd skips.
  const bool four = m_in_end >= 4;
  const bool zstd_frame = four && b[0] == 0x28 && b[1] == 0xB5 && b[2] == 0x2F && b[3] == 0xFD;
  const bool skippable = four && (b[0] & 0xF0) == 0x50 && b[1] == 0x2A && b[2] == 0x4D && b[3] == 0x18;
  if (zstd_frame || skippable) {
    m_kind = Compression::Zstd;
    m_codec = std::make_unique<ZstdDecoder>();
  } else if (m_in_end >= 2 && b[0] == 0x1F && b[1] == 0x8B) {
    m_kind = Compression::Gzip;
    m_codec = std::make_unique<GzipDecoder>();
  }
  if (m_codec) {
    m_out.resize(k_buf);
  }
}

DecompressingBuf::int_type DecompressingBuf::underflow() {
  if (gptr() < egptr()) {
    return traits_type::to_int_type(*gptr());
  }
  if (!m_detected) {
    detect();
  }
  if (m_error) {
    return traits_type::eof();
  }
  if (!m_codec) {
    // Plain input: what detect() read, then the source itself (xsgetn).
    if (m_in_pos < m_in_end) {
      setg(m_in.data() + m_in_pos, m_in.data() + m_in_pos, m_in.data() + m_in_end);
      m_in_pos = m_in_end;
      return traits_type::to_int_type(*gptr());
    }
    if (!refill()) {
      return traits_type::eof();
    }
    setg(m_in.data(), m_in.data(), m_in.data() + m_in_end);
    m_in_pos = m_in_end;
    return traits_type::to_int_type(*gptr());
  }
  for (;;) {
    // At the end of the input the codec may still hold output (it filled
    // the buffer last time): step once more with nothing.
    if (!refill() && !m_out_full) {
      if (!m_codec->at_boundary()) {
        m_error = make_error(EINVAL, "the " + std::string(m_codec->name()) + " stream is truncated: it ends after " +
                                         std::to_string(m_in_base + m_in_end) + " compressed bytes, inside a " +
                                         (m_kind == Compression::Zstd ? "frame" : "member"));
      }
      return traits_type::eof();
    }
    std::string_view in(m_in.data() + m_in_pos, m_in_end - m_in_pos);
    std::size_t produced = 0;
    Status st = m_codec->step(in, m_out.data(), m_out.size(), produced);
    m_in_pos = m_in_end - in.size();
    m_out_full = produced == m_out.size();
    if (!st.ok()) {
      // The codec reads blocks whole: the fault is somewhere in what it was given.
      m_error = make_error(EINVAL, "the " + std::string(m_codec->name()) + " stream is corrupt (" + st.error().message +
                                       ", within its first " + std::to_string(m_in_base + m_in_end) +
                                       " compressed bytes)");
      return traits_type::eof();
    }
    if (produced > 0) {
      setg(m_out.data(), m_out.data(), m_out.data() + produced);
      return traits_type::to_int_type(*gptr());
    }
  }
}

void DecompressingBuf::check_rest(std::uint64_t max_bytes) {
  if (!m_codec) {
    return;
  }
  std::uint64_t seen = 0;
  while (!m_error && seen < max_bytes) {
    seen += static_cast<std::uint64_t>(egptr() - gptr());
    setg(eback(), egptr(), egptr());
    if (traits_type::eq_int_type(underflow(), traits_type::eof())) {
      return;
    }
  }
}

std::streamsize DecompressingBuf::xsgetn(char* s, std::streamsize n) {
  std::streamsize got = 0;
  while (got < n) {
    if (gptr() == egptr()) {
      if (m_detected && !m_codec && m_in_pos == m_in_end && !m_error) {
        // Plain input, nothing buffered: straight from the source.
        std::streamsize r = m_source->sgetn(s + got, n - got);
        if (r <= 0) {
          m_source_eof = true;
          break;
        }
        got += r;
        continue;
      }
      if (traits_type::eq_int_type(underflow(), traits_type::eof())) {
        break;
      }
    }
    std::streamsize k = std::min<std::streamsize>(n - got, egptr() - gptr());
    std::memcpy(s + got, gptr(), static_cast<std::size_t>(k));
    gbump(static_cast<int>(k));
    got += k;
  }
  return got;
}

}  // namespace redisfs
