// Dump and restore, streamed through dump_format.hpp.
//
// DUMP. The point in time comes from the freeze (snapshot.cpp): with
// <P>:FREEZE held, every filesystem key is COPYed into a temporary prefix
// T = "<P>~dump~<hex>", each copy getting a PEXPIRE of twelve hours so a
// crashed dump cleans itself up; then the freeze is released, and mounts
// write again while the dump streams out of T at leisure. SCAN may return a
// key twice; COPY without REPLACE answers 0 the second time, so the keys
// really copied are exactly those answered 1, and their names go to a list,
// T:DUMP-INDEX. Streaming walks that list rather than SCANning T again,
// which would have the duplicate problem once more:
//
//   * the superblock first (HGETALL), then the listed keys in batches,
//     LRANGE-d on a second connection;
//   * strings by GET and hashes by a first HSCAN page, pipelined one batch
//     ahead, so the server prepares batch n+1 while batch n is encoded;
//   * a hash longer than one HSCAN page (a big directory) is continued on
//     the second connection, one page at a time, so it never sits in memory
//     whole. HSCAN may repeat a field: repeats are dropped by a set of 64-bit
//     field hashes, and the count written must equal HLEN, so a (most
//     improbable) hash collision fails the dump instead of losing a field.
//
// Then T is deleted. A key missing from T (its TTL ran out during a very
// long dump) fails the dump.
//
// Compression (compress.hpp) wraps the output stream: dump_filesystem
// writes plain JSON into it, and the stream is ended only after the dump
// succeeded. On restore the input always goes through a DecompressingBuf,
// which passes plain JSON through; its error() is checked before the JSON's
// own result, so a broken stream fails the restore like a bad document.
//
// RESTORE. The dump streams (dump::read, a push parser) into a staging
// prefix S = "<NAME>~restore~<hex>" whose keys also carry the TTL. Each
// record is checked as it arrives: a filesystem key of the schema (never
// FREEZE or MOUNT:*), of the type the schema says, and not seen before.
// Duplicates are found by the server: SET ... NX answers nil, EXISTS before
// a hash answers 1, HSET answers fewer new fields than it was given. These
// replies are read a batch behind (the pipeline stays a few MB deep), so an
// error names the key rather than the byte where it was found. Only after
// dump::read has returned success (trailer counts and checksum verified),
// the superblock has been checked (format "redisfs", a known version) and
// the target re-checked (empty, or --force and not mounted), are the keys
// moved: RENAME + PERSIST in MULTI/EXEC batches (so no key reaches NAME with
// the staging TTL still on it), the superblock last, so a crash mid-move
// leaves keys without a superblock (refused by mount and by list), never
// something that looks like a whole filesystem. A dry run does the same
// checks with an in-memory set of key hashes and writes nothing.
//
// INCREMENTAL dumps (version 2) are dump_incremental.cpp's: _dump_into
// calls it for DumpOptions::since, and restore_filesystem reads through a
// ChooseSink, which hands a version-2 document to an IncrementalRestore
// instead of the RestoreSink here.
#include "dump_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "dump_incremental.hpp"
#include "fsck.hpp"
#include "install.hpp"
#include "keys.hpp"
#include "progress.hpp"
#include "snapshot.hpp"
#include "text.hpp"
#include "u64_set.hpp"
#include "version.hpp"
#include "store.hpp"

namespace redisfs {

using Clock = std::chrono::steady_clock;

static constexpr std::size_t k_stream_batch = 256;
static constexpr std::string_view k_hscan_count = "1000";
// After bad JSON from a compressed dump: how far to read on for a fault of
// the compressed stream itself (its checksum is at its end).
static constexpr std::uint64_t k_check_rest_bytes = 256ull << 20;

static std::string _str(long long v) { return std::to_string(v); }
// 'key' for messages: bounded, one line (text.hpp).
static std::string _quote(std::string_view s) { return quoted(s); }

static double _since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

static void _drain(Connection& c) {
  while (c.pending() > 0) {
    (void)c.read_reply();
  }
}

static std::string _errno_text(int e) { return std::string(std::strerror(e)); }

static std::uint64_t _hash64(std::string_view s) { return std::hash<std::string_view>{}(s); }

// "2026-11-29T19:40:00.123Z" (the header's time) in ns; 0 if it is not that.
std::int64_t parse_iso_ns(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &millis, &z) != 8 ||
      z != 'Z' || tm.tm_year < 1970) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t t = timegm(&tm);
  if (t < 0) {
    return 0;
  }
  return static_cast<std::int64_t>(t) * 1000000000 + static_cast<std::int64_t>(millis) * 1000000;
}



// ---------------------------------------------------------------- dump

// A snapshot of `sk` in `tk`, copy-on-write (snapshot.hpp: writers do not
// wait for it). Returns the snapshot time. On failure nothing of `tk` is
// left (what a crash leaves expires, or the next snapshot removes it).
static Result<std::int64_t> _copy_to_temp(Connection& c, const Keys& sk, const Keys& tk, std::string& warning) {
  TRY_ASSIGN(CowSnapshot cow, CowSnapshot::begin(c, sk, tk, ""));
  if (!cow.dead_staging().empty()) {
    (void)remove_staging(c, Keys(cow.dead_staging()));
  }
  auto copied = copy_keys_cow(c, sk, tk, cow, nullptr, &warning);
  Status ended = copied.ok() ? cow.end(c) : Status(copied.error());
  if (ended.ok()) {
    auto unlinked = c.command({"UNLINK", tk.touched()});
    ended = unlinked.ok() ? Status{} : Status(unlinked.error());
  }
  if (!ended.ok()) {
    _drain(c);
    if (cow.alive()) {
      (void)cow.end(c);
    }
    (void)remove_staging(c, tk);
    return std::move(ended).error();
  }
  return cow.instant_ns();
}

namespace {

// Streams the temporary copy `tk` into a Writer.
class TempStreamer {
 public:
  TempStreamer(Connection& c, Connection& side, const Keys& tk, dump::Writer& w, Progress& progress)
      : m_c(c), m_side(side), m_tk(tk), m_w(w), m_progress(progress), m_index(staging_index_key(tk)) {}

  Result<std::uint64_t> run() {
    TRY(superblock());
    TRY_ASSIGN(Reply len, m_side.command({"LLEN", m_index}));
    std::uint64_t total = static_cast<std::uint64_t>(len.view().integer());
    m_progress.set_total(total + 1);
    m_progress.add(1);
    std::uint64_t pos = 0;
    TRY_ASSIGN(std::vector<std::string> cur, fetch(pos));
    issue(cur);
    pos += cur.size();
    while (!cur.empty()) {
      TRY(check_cancel());
      auto next = fetch(pos);
      if (!next.ok()) {
        _drain(m_c);
        return std::move(next).error();
      }
      issue(*next);
      pos += next->size();
      Status st = process(cur);
      if (!st.ok()) {
        _drain(m_c);
        return std::move(st).error();
      }
      cur = std::move(next).value();
    }
    if (pos != total) {
      return make_error(EIO, "the index of the temporary copy changed while it was read");
    }
    return total + 1;
  }

 private:
  Status superblock() {
    TRY_ASSIGN(Reply r, m_c.command({"HGETALL", m_tk.sb()}));
    ReplyView v = r.view();
    if (v.size() == 0) {
      return make_error(EIO, "the temporary copy has no superblock (" + m_tk.sb() + " expired?)");
    }
    std::vector<std::pair<std::string, std::string>> pairs;
    for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
      pairs.emplace_back(v[i].str(), v[i + 1].str());
    }
    TRY(m_w.begin_hash("SB"));
    TRY(m_w.hash_fields(pairs));
    return m_w.end_hash();
  }

  Result<std::vector<std::string>> fetch(std::uint64_t pos) {
    std::string first = _str(static_cast<long long>(pos));
    std::string last = _str(static_cast<long long>(pos + k_stream_batch - 1));
    TRY_ASSIGN(Reply r, m_side.command({"LRANGE", m_index, first, last}));
    ReplyView v = r.view();
    std::vector<std::string> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      out.emplace_back(v[i].str());
    }
    return out;
  }

  void issue(const std::vector<std::string>& rels) {
    for (const auto& rel : rels) {
      std::string key = m_tk.absolute(rel);
      if (parse_relative_key(rel).kind == KeyKind::Block) {
        m_c.append({"GET", key});
      } else {
        m_c.append({"HSCAN", key, "0", "COUNT", k_hscan_count});
      }
    }
  }

  static Error missing(std::string_view rel) {
    return make_error(EIO, "key " + std::string(rel) + " vanished from the temporary copy (its TTL ran out?)");
  }

  Status process(const std::vector<std::string>& rels) {
    for (const auto& rel : rels) {
      TRY_ASSIGN(Reply r, m_c.read_reply());
      ReplyView v = r.view();
      if (parse_relative_key(rel).kind == KeyKind::Block) {
        if (!v.is_string()) {
          return missing(rel);
        }
        TRY(m_w.write_string(rel, v.str()));
      } else {
        TRY(hash(rel, v));
      }
      m_progress.add(1);
    }
    return {};
  }

  static Status page_pairs(ReplyView page, std::string& cursor,
                           std::vector<std::pair<std::string, std::string>>& pairs) {
    if (!page.is_array() || page.size() != 2 || !page[1].is_array()) {
      return make_error(EIO, "redis: bad HSCAN reply");
    }
    cursor = std::string(page[0].str());
    ReplyView list = page[1];
    pairs.clear();
    for (std::size_t i = 0; i + 1 < list.size(); i += 2) {
      pairs.emplace_back(list[i].str(), list[i + 1].str());
    }
    return {};
  }

  Status hash(const std::string& rel, ReplyView first_page) {
    std::string cursor;
    std::vector<std::pair<std::string, std::string>> pairs;
    TRY(page_pairs(first_page, cursor, pairs));
    if (pairs.empty() && cursor == "0") {
      return missing(rel);
    }
    TRY(m_w.begin_hash(rel));
    TRY(m_w.hash_fields(pairs));
    if (cursor != "0") {
      // A big hash: continue on the side connection, dropping repeats.
      std::string key = m_tk.absolute(rel);
      TRY_ASSIGN(Reply len, m_side.command({"HLEN", key}));
      std::uint64_t expected = static_cast<std::uint64_t>(len.view().integer());
      U64Set seen;
      for (const auto& p : pairs) {
        seen.insert(_hash64(p.first));
      }
      std::uint64_t written = pairs.size();
      while (cursor != "0") {
        TRY_ASSIGN(Reply page, m_side.command({"HSCAN", key, cursor, "COUNT", k_hscan_count}));
        TRY(page_pairs(page.view(), cursor, pairs));
        std::erase_if(pairs, [&](const auto& p) { return !seen.insert(_hash64(p.first)); });
        written += pairs.size();
        TRY(m_w.hash_fields(pairs));
      }
      if (written != expected) {
        return make_error(EIO, "hash " + rel + ": " + _str(static_cast<long long>(written)) +
                                   " fields read but HLEN says " + _str(static_cast<long long>(expected)));
      }
    }
    return m_w.end_hash();
  }

  Connection& m_c;
  Connection& m_side;
  const Keys& m_tk;
  dump::Writer& m_w;
  Progress& m_progress;
  std::string m_index;
};

}  // namespace

Result<DumpStats> dump_filesystem(Pool& pool, const std::string& prefix, std::ostream& out, const DumpOptions& opts) {
  TRY(validate_prefix(prefix));
  auto start = Clock::now();
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY(check_toolkit_prefix(c, prefix));
  TRY_ASSIGN(Pool::Lease side, pool.acquire());
  Keys sk(prefix);
  TRY_ASSIGN(Reply exists, c.command({"EXISTS", sk.sb()}));
  if (exists.view().integer() != 1) {
    return make_error(ENOENT, "no filesystem at prefix " + _quote(prefix));
  }
  Keys tk(make_temp_prefix(prefix, TempKind::Dump));
  Progress progress("dump " + prefix, 0, "keys", opts.quiet);

  auto body = [&]() -> Result<DumpStats> {
    DumpStats stats;
    stats.prefix = prefix;
    TRY_ASSIGN(stats.snapshot_ns, _copy_to_temp(c, sk, tk, stats.warning));
    // The header announces the record count (the copy's index, and its
    // superblock): a restore reading a pipe shows progress against it.
    TRY_ASSIGN(Reply listed, c.command({"LLEN", staging_index_key(tk)}));
    dump::Header header;
    header.prefix = prefix;
    header.created = iso_time_ns(stats.snapshot_ns);
    header.tool = "redisfs-snap " REDISFS_VERSION;
    header.record_count = static_cast<std::uint64_t>(std::max<long long>(listed.view().integer(), 0)) + 1;
    dump::Writer w(out, header);
    TRY(w.begin());
    TempStreamer streamer(c, *side, tk, w, progress);
    TRY_ASSIGN(std::uint64_t keys, streamer.run());
    TRY(check_cancel());  // an interrupted dump must not look complete
    TRY_ASSIGN(stats.trailer, w.finish());
    if (stats.trailer.records != keys) {
      return make_error(EIO, "internal error: wrote " + _str(static_cast<long long>(stats.trailer.records)) +
                                 " records for " + _str(static_cast<long long>(keys)) + " keys");
    }
    out.flush();
    if (!out) {
      return make_error(EIO, "dump: write failed");
    }
    return stats;
  };
  auto stats = body();
  progress.finish();
  _drain(c);
  auto cleaned = unlink_listed(c, tk, staging_index_key(tk));
  if (!stats.ok()) {
    return make_error(stats.error().code, "dump " + prefix + ": " + stats.error().message);
  }
  if (!cleaned.ok()) {
    stats->warning += (stats->warning.empty() ? "" : "; ") + std::string("could not delete the temporary copy ") +
                      tk.prefix() + " (it expires by itself): " + cleaned.error().message;
  }
  stats->seconds = _since(start);
  return stats;
}

// dump_filesystem into `out`, through a compressor if opts say so; the
// compressed stream is ended only after the dump succeeded.
static Result<DumpStats> _dump_into(Pool& pool, const std::string& prefix, std::ostream& out,
                                    const DumpOptions& opts) {
  auto dump = [&](std::ostream& o) {
    return opts.since ? dump_incremental(pool, prefix, *opts.since, o, opts) : dump_filesystem(pool, prefix, o, opts);
  };
  if (opts.compression == Compression::None) {
    return dump(out);
  }
  CompressingBuf zbuf(out.rdbuf(), opts.compression, opts.compression_level);
  std::ostream zout(&zbuf);
  auto stats = dump(zout);
  if (!stats.ok()) {
    return stats;
  }
  if (Status st = zbuf.finish(); !st.ok()) {
    return make_error(st.code(), "dump " + prefix + ": " + st.error().message);
  }
  stats->compression = opts.compression;
  stats->json_bytes = zbuf.bytes_in();
  stats->written_bytes = zbuf.bytes_out();
  return stats;
}

Result<DumpStats> dump_to_path(Pool& pool, const std::string& prefix, const std::string& path,
                               const DumpOptions& opts) {
  if (path == "-") {
    auto stats = _dump_into(pool, prefix, std::cout, opts);
    std::cout.flush();
    if (stats.ok() && !std::cout) {
      return make_error(EIO, "dump: writing to stdout failed");
    }
    return stats;
  }
  TRY(validate_prefix(prefix));
  {
    // Refused before any file is made.
    TRY_ASSIGN(Pool::Lease lease, pool.acquire());
    TRY(check_toolkit_prefix(*lease, prefix));
  }
  struct stat existing{};
  if (::stat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode)) {
    // /dev/null, a FIFO, a terminal: write straight into it. Renaming a
    // temporary file over it would replace the device with a file.
    std::ofstream out(path, std::ios::binary);
    if (!out) {
      int e = errno != 0 ? errno : EIO;
      return make_error(e, "cannot open " + path + ": " + _errno_text(e));
    }
    auto stats = _dump_into(pool, prefix, out, opts);
    out.flush();
    if (stats.ok() && !out) {
      return make_error(EIO, "dump: writing to " + path + " failed");
    }
    return stats;
  }
  // A new file under a random name, as mkstemp's, but made with mode 0666
  // less the umask by open(2) itself: reading the umask with umask(2) would
  // change it for every thread of the process while it is read.
  std::string tmp;
  int fd = -1;
  for (int attempt = 1; fd < 0; ++attempt) {
    tmp = path + ".tmp-" + random_hex(4);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt == 100)) {
      int e = errno;
      return make_error(e, "cannot create " + tmp + ": " + _errno_text(e));
    }
  }
  ::close(fd);
  auto fail = [&](Error e) -> Error {
    ::unlink(tmp.c_str());
    return e;
  };
  Result<DumpStats> stats = make_error(EIO, "not run");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return fail(make_error(EIO, "cannot open " + tmp));
    }
    stats = _dump_into(pool, prefix, out, opts);
    if (!stats.ok()) {
      return fail(std::move(stats).error());
    }
    out.close();
    if (!out) {
      return fail(make_error(EIO, "writing " + tmp + " failed"));
    }
  }
  fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) {
      ::close(fd);
    }
    return fail(make_error(e, "cannot sync " + tmp + ": " + _errno_text(e)));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    return fail(make_error(e, "cannot rename " + tmp + " to " + path + ": " + _errno_text(e)));
  }
  // The rename is durable once the directory is: sync it too (EINVAL: a
  // filesystem that cannot sync a directory, nothing more to do).
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (::fsync(fd) != 0 && errno != EINVAL)) {
    int e = errno;
    if (fd >= 0) {
      ::close(fd);
    }
    return make_error(e, "dump written to " + path + ", but syncing its directory " + dir + " failed: " + _errno_text(e));
  }
  ::close(fd);
  return stats;
}

// ---------------------------------------------------------------- restore

namespace {

// The one-line refusal of a taken target, saying what to do instead.
std::string _refuse_taken(const std::string& target, const std::string& what) {
  return "refusing to restore over " + _quote(target) + ": it already holds " + what +
         "; add --force to replace it, or restore under another name with --prefix NAME";
}

class RestoreSink : public dump::Sink {
 public:
  RestoreSink(Pool* pool, Connection* c, const RestoreOptions& opts, Progress& progress)
      : m_pool(pool), m_c(c), m_opts(opts), m_progress(progress) {}

  const std::string& target() const { return m_target; }
  const std::string& source_prefix() const { return m_source; }
  const std::optional<Keys>& staging() const { return m_staging; }
  Reservation* reservation() { return m_reservation.get(); }
  std::int64_t dumped_ns() const { return m_dumped_ns; }
  std::uint64_t records() const { return m_records; }
  // Why the target was refused at the header (taken, mounted, reserved):
  // a plain refusal, not a flaw of the dump at some byte.
  const std::optional<Error>& refusal() const { return m_refusal; }

  Status on_header(const dump::Header& h) override {
    if (auto st = validate_prefix(h.prefix); !st.ok()) {
      return make_error(EINVAL, "the header's prefix is not valid: " + st.error().message);
    }
    m_source = h.prefix;
    m_dumped_ns = parse_iso_ns(h.created);
    if (h.record_count > 0) {
      m_progress.set_total(h.record_count);
    }
    m_target = m_opts.prefix.value_or(h.prefix);
    TRY(validate_prefix(m_target));
    if (m_pool != nullptr) {
      TRY_ASSIGN(Pool::Lease lease, m_pool->acquire());
      TRY(check_toolkit_prefix(*lease, m_target));
    }
    if (m_pool != nullptr && m_c != nullptr) {
      // Reserved before it is looked at: no mount or other tool can start
      // on it until the restore has ended (install.hpp).
      auto reserved = Reservation::acquire(*m_pool, Keys(m_target), "restore");
      if (!reserved.ok()) {
        m_refusal = make_error(reserved.error().code, "refusing to restore now: " + reserved.error().message);
        return std::move(reserved).error();
      }
      m_reservation = std::move(reserved).value();
      TRY_ASSIGN(Pool::Lease lease, m_pool->acquire());
      TRY(finish_install(*lease, Keys(m_target)));
    }
    if (m_pool != nullptr) {
      if (Status st = check_target(nullptr); !st.ok()) {
        m_refusal = st.error();
        return st;
      }
    }
    if (m_c != nullptr) {
      m_staging.emplace(make_temp_prefix(m_target, TempKind::Restore));
    }
    return {};
  }

  Status on_string(std::string_view key, std::string&& value) override {
    TRY(begin_record(key, "string"));
    if (m_kind == KeyKind::Block && value.size() > m_max_block) {
      m_max_block = value.size();
      m_max_block_key = std::string(key);
    }
    m_progress.add(1);
    if (m_c == nullptr) {
      return {};
    }
    std::string k = m_staging->absolute(key);
    m_c->append({"SET", k, value, "NX", "PX", m_ttl});
    TRY(queued(Pending::Set, key, 0, value.size()));
    return index(key);
  }

  Status on_hash_begin(std::string_view key) override {
    TRY(begin_record(key, "hash"));
    m_pairs = 0;
    m_fields.clear();
    if (m_kind == KeyKind::Superblock) {
      if (m_sb_seen) {
        return make_error(EINVAL, "duplicate key 'SB'");
      }
      m_sb_seen = true;
      m_sb.clear();
    }
    if (m_c == nullptr) {
      return {};
    }
    std::string k = m_staging->absolute(key);
    m_c->append({"EXISTS", k});
    TRY(queued(Pending::Exists, key, 0, 0));
    return index(key);
  }

  Status on_hash_fields(std::string_view key, std::vector<std::pair<std::string, std::string>>&& pairs) override {
    if (pairs.empty()) {
      return {};
    }
    bool first = m_pairs == 0;
    m_pairs += pairs.size();
    if (m_kind == KeyKind::Superblock) {
      if (m_sb.size() + pairs.size() > 1000) {
        return make_error(EINVAL, "the superblock has more than 1000 fields");
      }
      m_sb.insert(m_sb.end(), pairs.begin(), pairs.end());
    }
    if (m_c == nullptr) {
      for (const auto& p : pairs) {
        if (!m_fields.insert(_hash64(p.first))) {
          return make_error(EINVAL, "duplicate field in hash " + _quote(key));
        }
      }
      return {};
    }
    std::string k = m_staging->absolute(key);
    std::vector<std::string_view> argv;
    argv.reserve(2 + 2 * pairs.size());
    argv.emplace_back("HSET");
    argv.emplace_back(k);
    std::size_t bytes = 0;
    for (const auto& p : pairs) {
      argv.emplace_back(p.first);
      argv.emplace_back(p.second);
      bytes += p.first.size() + p.second.size();
    }
    m_c->append(std::span<const std::string_view>(argv));
    TRY(queued(Pending::HSet, key, pairs.size(), bytes));
    if (first) {
      m_c->append({"PEXPIRE", k, m_ttl});
      TRY(queued(Pending::Expire, key, 0, 0));
    }
    return {};
  }

  Status on_hash_end(std::string_view key) override {
    if (m_pairs == 0) {
      return make_error(EINVAL, "hash " + _quote(key) + " is empty (Redis has no empty hashes)");
    }
    if (m_kind == KeyKind::Superblock) {
      TRY(check_superblock());
    }
    m_fields.clear();
    m_progress.add(1);
    return {};
  }

  // After dump::read succeeded: the replies still in flight, then the checks
  // that need the whole dump.
  Status finish() {
    TRY(settle(0));
    if (!m_sb_seen) {
      return make_error(EINVAL, "the dump has no superblock (key 'SB')");
    }
    if (m_max_block > m_block_size) {
      return make_error(EINVAL, "block " + _quote(m_max_block_key) + " holds " + _str(static_cast<long long>(m_max_block)) +
                                    " bytes, more than the block size " + _str(static_cast<long long>(m_block_size)));
    }
    return {};
  }

  // Is the target free (or, with --force, replaceable)? `replace` is set
  // when it holds keys that --force allows us to delete.
  Status check_target(bool* replace) {
    TRY_ASSIGN(Pool::Lease lease, m_pool->acquire());
    Keys t(m_target);
    TRY_ASSIGN(PrefixState st, probe_prefix(*lease, t));
    if (st.mounts > 0) {
      return make_error(EBUSY, "refusing to restore over " + _quote(m_target) + ": it is mounted (" +
                                   _str(static_cast<long long>(st.mounts)) +
                                   " live mounts); unmount it first, or restore under another name with --prefix NAME");
    }
    if (st.any_key && !m_opts.force) {
      return make_error(EEXIST, _refuse_taken(m_target, st.has_sb ? "a filesystem" : "keys"));
    }
    if (replace != nullptr) {
      *replace = st.any_key;
    }
    return {};
  }

  // Reads pending replies until at most `keep_bytes` of commands remain in
  // flight (0: all of them).
  Status settle(std::size_t keep_bytes) {
    if (m_c == nullptr) {
      return {};
    }
    while (!m_pending.empty() && (keep_bytes == 0 || m_pending_bytes > keep_bytes || m_pending.size() > 4096)) {
      Pending p = std::move(m_pending.front());
      m_pending.pop_front();
      m_pending_bytes -= p.bytes;
      auto r = m_c->read_reply();
      if (!r.ok()) {
        return make_error(r.error().code, "restoring " + _quote(p.key) + ": " + r.error().message);
      }
      ReplyView v = r->view();
      switch (p.what) {
        case Pending::Set:
          if (v.is_nil()) {
            return make_error(EINVAL, "duplicate key " + _quote(p.key));
          }
          break;
        case Pending::Exists:
          if (v.integer() != 0) {
            return make_error(EINVAL, "duplicate key " + _quote(p.key));
          }
          break;
        case Pending::HSet:
          if (static_cast<std::uint64_t>(v.integer()) != p.expect) {
            return make_error(EINVAL, "duplicate field in hash " + _quote(p.key));
          }
          break;
        case Pending::Expire:
          break;
      }
    }
    return {};
  }

 private:
  struct Pending {
    enum What { Set, Exists, HSet, Expire } what;
    std::string key;
    std::uint64_t expect = 0;
    std::size_t bytes = 0;
  };

  Status begin_record(std::string_view key, std::string_view type) {
    TRY(check_cancel());
    if (m_target.empty()) {
      return make_error(EINVAL, "record before the header");
    }
    ParsedKey pk = parse_relative_key(key);
    if (is_running_system_key(pk.kind)) {
      return make_error(EINVAL, "key " + _quote(key) + " describes a running system, not a filesystem");
    }
    if (!is_filesystem_key(pk.kind)) {
      return make_error(EINVAL, "key " + _quote(key) + " is not a key of the redisfs schema");
    }
    if (expected_type(pk.kind) != type) {
      return make_error(EINVAL, "key " + _quote(key) + " must be a " + std::string(expected_type(pk.kind)) +
                                    ", not a " + std::string(type));
    }
    m_kind = pk.kind;
    ++m_records;
    if (m_c == nullptr && !m_keys.insert(_hash64(key))) {
      return make_error(EINVAL, "duplicate key " + _quote(key));
    }
    return {};
  }

  // The staged key's name goes to the staging index (install.hpp), which
  // gets the staging TTL with its first entry.
  Status index(std::string_view key) {
    std::string list = staging_index_key(*m_staging);
    m_c->append({"RPUSH", list, key});
    TRY(queued(Pending::Expire, key, 0, 0));
    if (!m_index_ttl_set) {
      m_index_ttl_set = true;
      m_c->append({"PEXPIRE", list, m_ttl});
      TRY(queued(Pending::Expire, key, 0, 0));
    }
    return {};
  }

  Status queued(Pending::What what, std::string_view key, std::uint64_t expect, std::size_t bytes) {
    bytes += key.size() + 32;
    m_pending.push_back(Pending{what, std::string(key), expect, bytes});
    m_pending_bytes += bytes;
    if (m_pending_bytes > (8u << 20) || m_pending.size() > 8192) {
      return settle(4u << 20);
    }
    return {};
  }

  Status check_superblock() {
    TRY_ASSIGN(Superblock sb, decode_superblock(m_source, m_sb));
    m_block_size = sb.block_size;
    return {};
  }

  Pool* m_pool;
  Connection* m_c;  // null: dry run
  const RestoreOptions& m_opts;
  Progress& m_progress;
  const std::string m_ttl = _str(k_temp_ttl_ms);

  std::string m_source;
  std::string m_target;
  std::optional<Keys> m_staging;
  std::unique_ptr<Reservation> m_reservation;
  std::int64_t m_dumped_ns = 0;
  bool m_index_ttl_set = false;
  std::optional<Error> m_refusal;

  KeyKind m_kind = KeyKind::Unknown;
  std::uint64_t m_records = 0;
  std::uint64_t m_pairs = 0;
  bool m_sb_seen = false;
  std::vector<std::pair<std::string, std::string>> m_sb;
  std::uint64_t m_block_size = 0;
  std::uint64_t m_max_block = 0;
  std::string m_max_block_key;

  std::deque<Pending> m_pending;
  std::size_t m_pending_bytes = 0;

  U64Set m_keys;    // dry run only
  U64Set m_fields;  // dry run only: the current hash's
};

}  // namespace

// What the staged superblock says of where the filesystem came from: a
// restored dump is a writable filesystem of its own (restored_from, dumped)
// unless `snapshot`, and never a snapshot of itself.
Status mark_restored(Connection& c, const Keys& staging, const std::string& target, const std::string& source,
                      std::int64_t dumped_ns, bool snapshot) {
  TRY_ASSIGN(Reply origin, c.command({"HGET", staging.sb(), "origin"}));
  bool keep_origin = snapshot && !origin.view().is_nil() && origin.view().str() != target;
  c.append({"MULTI"});
  if (!keep_origin) {
    c.append({"HDEL", staging.sb(), "origin", "snapshot_created"});
  }
  std::string dumped = std::to_string(dumped_ns);
  if (dumped_ns > 0) {
    c.append({"HSET", staging.sb(), "read_only", snapshot ? "1" : "0", "restored_from", source, "dumped", dumped});
  } else {
    c.append({"HSET", staging.sb(), "read_only", snapshot ? "1" : "0", "restored_from", source});
    c.append({"HDEL", staging.sb(), "dumped"});
  }
  c.append({"EXEC"});
  TRY(c.read_all());
  return {};
}

namespace {

// Everything fsck checks must hold before a staged filesystem is moved into
// place: a dump that restore accepts mounts and works.
Status _check_staged(Pool& pool, const Keys& staging) {
  TRY_ASSIGN(FsckReport report, fsck(pool, staging.prefix(), false, nullptr));
  if (report.problems.empty()) {
    return {};
  }
  return make_error(EINVAL, "the filesystem in the dump is damaged: " + fsck_summary_line(report, staging.prefix()));
}

}  // namespace

Result<RestoreStats> restore_filesystem(Pool* pool, std::istream& in, const RestoreOptions& opts) {
  if (opts.prefix) {
    TRY(validate_prefix(*opts.prefix));
  }
  if (pool == nullptr && !opts.dry_run) {
    return make_error(EINVAL, "restore needs a server");
  }
  auto start = Clock::now();
  std::optional<Pool::Lease> lease;
  if (!opts.dry_run) {
    TRY_ASSIGN(Pool::Lease l, pool->acquire());
    lease.emplace(std::move(l));
  }
  if (opts.prefix && pool != nullptr) {
    // Refused before the dump is read (its own prefix is checked at its header).
    if (lease) {
      TRY(check_toolkit_prefix(**lease, *opts.prefix));
    } else {
      TRY_ASSIGN(Pool::Lease l, pool->acquire());
      TRY(check_toolkit_prefix(*l, *opts.prefix));
    }
  }
  Connection* c = lease ? &**lease : nullptr;
  Progress progress(opts.dry_run ? "verify" : "restore", 0, "keys", opts.quiet);
  RestoreSink sink(pool, c, opts, progress);
  // A version-2 document goes to the incremental restore (dump_incremental.hpp).
  IncrementalRestore incremental(pool, c, opts, progress);
  ChooseSink chooser(sink, incremental);

  RestoreStats stats;
  bool replaced = false;
  // Plain JSON passes through; zstd and gzip are told by their magic.
  DecompressingBuf decompressed(in.rdbuf());
  std::istream json(&decompressed);
  auto body = [&]() -> Status {
    auto trailer = dump::read(json, chooser, opts.limits);
    if (sink.refusal()) {
      return *sink.refusal();
    }
    if (incremental.refusal()) {
      return *incremental.refusal();
    }
    // A broken compressed stream ends the JSON early, or decodes to
    // garbage before its checksum tells: say so rather than what the JSON
    // looked like, and whether or not it looked whole.
    if (!trailer.ok()) {
      decompressed.check_rest(k_check_rest_bytes);
    }
    if (decompressed.error()) {
      return make_error(decompressed.error()->code, "dump: " + decompressed.error()->message);
    }
    if (!trailer.ok()) {
      return std::move(trailer).error();
    }
    stats.trailer = *trailer;
    if (incremental.active()) {
      return incremental.commit(stats);
    }
    Status fin = sink.finish();
    if (!fin.ok()) {
      return make_error(fin.code(), "dump: " + fin.error().message);
    }
    if (c == nullptr) {
      return {};
    }
    TRY(check_cancel());
    const Keys& staging = *sink.staging();
    TRY(mark_restored(*c, staging, sink.target(), sink.source_prefix(), sink.dumped_ns(), opts.snapshot));
    TRY_ASSIGN(std::uint64_t dropped, drop_staged_orphans(*c, staging));
    Status checked = _check_staged(*pool, staging);
    if (!checked.ok()) {
      return make_error(checked.code(), "dump: " + checked.error().message);
    }
    // Commit. The target is reserved; check it again all the same.
    bool replace = false;
    TRY(sink.reservation()->check());
    TRY(sink.check_target(&replace));
    Keys target(sink.target());
    if (!replace) {
      // What the cheap probe could not see: a key of the target the
      // restored filesystem would take.
      TRY_ASSIGN(auto collision, find_collision(*c, staging, target));
      if (collision && !opts.force) {
        return make_error(EEXIST, _refuse_taken(sink.target(), "keys (" + _quote(*collision) + ")"));
      }
      replace = collision.has_value();
    }
    auto installed = install_staging(*c, staging, target, replace, sink.records() - dropped, true);
    if (!installed.ok()) {
      return make_error(installed.error().code,
                        "restore into " + _quote(sink.target()) + " failed while moving the keys: " +
                            installed.error().message);
    }
    replaced = installed->replaced;
    stats.warning = installed->warning;
    (void)sink.reservation()->release();
    return {};
  };
  Status st = body();
  progress.finish();
  if (!st.ok()) {
    if (c != nullptr) {
      _drain(*c);
      if (sink.staging()) {
        (void)unlink_all(*c, *sink.staging());
        (void)c->command({"UNLINK", staging_index_key(*sink.staging())});
      }
      incremental.discard();
    }
    return std::move(st).error();
  }
  if (!incremental.active()) {
    stats.prefix = sink.target();
    stats.source_prefix = sink.source_prefix();
  }
  stats.replaced = replaced;
  stats.compression = decompressed.detected();
  stats.seconds = _since(start);
  return stats;
}

Result<RestoreStats> restore_from_path(Pool* pool, const std::string& path, const RestoreOptions& opts) {
  if (path == "-") {
    return restore_filesystem(pool, std::cin, opts);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno;
    return make_error(e != 0 ? e : ENOENT, "cannot open " + path + ": " + _errno_text(e != 0 ? e : ENOENT));
  }
  return restore_filesystem(pool, in, opts);
}

}  // namespace redisfs
