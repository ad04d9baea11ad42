// Dump, streamed through dump_format.hpp (restore is restore.cpp; both are
// declared in dump_io.hpp).
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
// succeeded.
//
// INCREMENTAL dumps (version 2) are dump_incremental.cpp's: _dump_into
// calls it for DumpOptions::since.
#include "snap/dump_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "redis/scan.hpp"
#include "snap/dump_incremental.hpp"
#include "snap/dump_verify.hpp"
#include "snap/fsck.hpp"
#include "snap/install.hpp"
#include "snap/room.hpp"
#include "snap/snapshot.hpp"
#include "store/keys.hpp"
#include "util/progress.hpp"
#include "util/text.hpp"
#include "util/u64_set.hpp"
#include "version.hpp"

namespace redisfs {

using Clock = std::chrono::steady_clock;

static constexpr std::size_t k_stream_batch = 256;
static constexpr std::string_view k_hscan_count = "1000";

static std::uint64_t _hash64(std::string_view s) { return std::hash<std::string_view>{}(s); }

// ---------------------------------------------------------------- dump

// A snapshot of `sk` in `tk`, copy-on-write (snapshot.hpp: writers do not
// wait for it). Returns the snapshot time. On failure nothing of `tk` is
// left (what a crash leaves expires, or the next snapshot removes it).
static Result<std::int64_t> _copy_to_temp(Connection& c, const Keys& sk, const Keys& tk, std::string& warning) {
  RoomGuard room("the dump's temporary copy");
  TRY(room.check(c));
  TRY_ASSIGN(CowSnapshot cow, CowSnapshot::begin(c, sk, tk, ""));
  if (!cow.dead_staging().empty()) {
    (void)remove_staging(c, Keys(cow.dead_staging()));
  }
  auto copied = copy_keys_cow(c, sk, tk, cow, nullptr, &warning, &room);
  Status ended = copied.ok() ? cow.end(c) : Status(copied.error());
  if (ended.ok()) {
    auto unlinked = c.command({"UNLINK", tk.touched()});
    ended = unlinked.ok() ? Status{} : Status(unlinked.error());
  }
  if (!ended.ok()) {
    c.drain();
    if (cow.alive()) {
      (void)cow.end(c);
    }
    (void)remove_staging(c, tk);
    return std::move(ended).error();
  }
  return cow.instant_ns();
}

// What the check of a dump as it was written found (DumpCheck), as a
// warning: the dump is whole, but restore refuses it. Empty when sound.
static std::string _checked(DumpCheck& check, const std::string& prefix) {
  VerifyReport r = check.finish();
  if (!check.not_checked().empty()) {
    return "the filesystem in the dump is not checked: " + check.not_checked();
  }
  const std::string fsck = "; 'redisfs-snap fsck " + prefix + "' checks it on the server";
  if (!r.refusal.empty()) {
    return "restore refuses this dump: " + r.refusal + fsck;
  }
  if (r.problems.empty()) {
    return {};
  }
  FsckReport found;
  found.problems = std::move(r.problems);
  return "the filesystem in the dump is damaged (restore refuses it): " + fsck_summary_line(found) + " (" +
         fsck_damaged_hint(found.problems) + ")" + fsck;
}

namespace {

// Streams the temporary copy `tk` into a Writer, and to `check` as it
// goes: the superblock, ORPHANS, every inode, then the rest (the order
// DumpCheck takes, as fsck's passes: what names an inode is judged once
// every inode is in). The index is walked twice, once for the inodes.
class TempStreamer {
 public:
  TempStreamer(Connection& c, Connection& side, const Keys& tk, dump::Writer& w, DumpCheck& check, Progress& progress)
      : m_c(c),
        m_side(side),
        m_tk(tk),
        m_w(w),
        m_check(check),
        m_progress(progress),
        m_index(staging_index_key(tk)),
        m_orphans(tk.relative(tk.orphans()).value_or("")) {}

  // The number of records written.
  Result<std::uint64_t> run() {
    TRY(superblock());
    TRY_ASSIGN(Reply len, m_side.command({"LLEN", m_index}));
    std::uint64_t total = static_cast<std::uint64_t>(len.view().integer());
    m_progress.set_total(total + 1);
    m_progress.add(1);
    TRY(orphans_first());
    TRY(walk(total, true));
    TRY(walk(total, false));
    return total + 1 - m_skipped;
  }

  // The keys left out, of a type no record of theirs may have, as a
  // warning; empty: none. (Never the superblock: dump_filesystem refuses
  // one of the wrong type before it copies anything.)
  std::string skipped(const std::string& prefix) const {
    if (m_skipped == 0) {
      return {};
    }
    const bool one = m_skipped == 1;
    return std::to_string(static_cast<long long>(m_skipped)) + (one ? " key" : " keys") + " of the wrong type " +
           (one ? "is" : "are") + " not in the dump (" + m_skipped_first + (one ? "" : ", ...") +
           "; a dump holds the schema's types only): 'redisfs-snap fsck " + prefix + "' names " + (one ? "it" : "them");
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
    TRY(begin_hash("SB"));
    TRY(hash_fields("SB", pairs));
    return end_hash("SB");
  }

  // ORPHANS, if the copy has it, before the inodes (restore drops the
  // orphans it names: DumpCheck must know them when their inodes go by).
  Status orphans_first() {
    const std::string key = m_tk.orphans();
    TRY_ASSIGN(Reply there, m_c.command({"EXISTS", key}));
    if (there.view().integer() != 1) {
      return {};
    }
    m_orphans_written = true;
    auto first = m_c.command({"HSCAN", key, "0", "COUNT", k_hscan_count});
    if (!first.ok()) {
      return skip(m_orphans, std::move(first).error());
    }
    TRY(hash(m_orphans, first->view(), m_c.answered_by()));
    m_progress.add(1);
    return {};
  }

  // A key whose read failed with `e`: left out when it is of the wrong
  // type (WRONGTYPE: counted, the first one named with its type), else
  // the error.
  Status skip(std::string_view rel, Error e) {
    if (m_c.broken() || !is_wrong_type(e)) {
      return e;
    }
    if (m_skipped++ == 0) {
      TRY_ASSIGN(Reply type, m_side.command({"TYPE", m_tk.absolute(rel)}));
      const char* want = parse_relative_key(rel).kind == KeyKind::Block ? "string" : "hash";
      m_skipped_first = std::string(rel) + " is a " + std::string(type.view().str()) + ", not a " + want;
    }
    m_progress.add(1);
    return {};
  }

  // One walk over the index: the inodes (`inodes`), or every other key.
  Status walk(std::uint64_t total, bool inodes) {
    auto mine = [&](std::vector<std::string> rels) {
      std::erase_if(rels, [&](const std::string& rel) {
        return (m_orphans_written && rel == m_orphans) || (parse_relative_key(rel).kind == KeyKind::Inode) != inodes;
      });
      return rels;
    };
    std::uint64_t pos = 0;
    TRY_ASSIGN(std::vector<std::string> page, fetch(pos));
    pos += page.size();
    bool last = page.empty();
    std::vector<std::string> cur = mine(std::move(page));
    issue(cur);
    while (!last) {
      TRY(check_cancel());
      auto next = fetch(pos);
      if (!next.ok()) {
        m_c.drain();
        return std::move(next).error();
      }
      pos += next->size();
      last = next->empty();
      std::vector<std::string> upcoming = mine(std::move(next).value());
      issue(upcoming);
      Status st = process(cur);
      if (!st.ok()) {
        m_c.drain();
        return st;
      }
      cur = std::move(upcoming);
    }
    if (pos != total) {
      return make_error(EIO, "the index of the temporary copy changed while it was read");
    }
    return {};
  }

  Status begin_hash(std::string_view rel) {
    m_check.hash_begin(rel);
    return m_w.begin_hash(rel);
  }
  Status hash_fields(std::string_view rel, const std::vector<std::pair<std::string, std::string>>& pairs) {
    m_check.hash_fields(rel, pairs);
    return m_w.hash_fields(pairs);
  }
  Status end_hash(std::string_view rel) {
    m_check.hash_end(rel);
    return m_w.end_hash();
  }

  Result<std::vector<std::string>> fetch(std::uint64_t pos) {
    std::string first = std::to_string(static_cast<long long>(pos));
    std::string last = std::to_string(static_cast<long long>(pos + k_stream_batch - 1));
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
      auto r = m_c.read_reply();
      if (!r.ok()) {
        TRY(skip(rel, std::move(r).error()));
        continue;
      }
      ReplyView v = r->view();
      if (parse_relative_key(rel).kind == KeyKind::Block) {
        if (!v.is_string()) {
          return missing(rel);
        }
        m_check.string_record(rel, v.str());
        TRY(m_w.write_string(rel, v.str()));
      } else {
        TRY(hash(rel, v, m_c.answered_by()));
      }
      m_progress.add(1);
    }
    return {};
  }

  static void list_pairs(ReplyView list, std::vector<std::pair<std::string, std::string>>& pairs) {
    pairs.clear();
    for (std::size_t i = 0; i + 1 < list.size(); i += 2) {
      pairs.emplace_back(list[i].str(), list[i + 1].str());
    }
  }

  // `server`: the run_id of the server of the first page.
  Status hash(const std::string& rel, ReplyView first_page, const std::string& server) {
    if (!first_page.is_array() || first_page.size() != 2 || !first_page[1].is_array()) {
      return make_error(EIO, "redis: bad HSCAN reply");
    }
    std::string cursor(first_page[0].str());
    std::vector<std::pair<std::string, std::string>> pairs;
    list_pairs(first_page[1], pairs);
    if (pairs.empty() && cursor == "0") {
      return missing(rel);
    }
    TRY(begin_hash(rel));
    TRY(hash_fields(rel, pairs));
    if (cursor != "0") {
      // A big hash: continue on the side connection, dropping repeats (a
      // walk that begins again on a restarted server repeats them all).
      std::string key = m_tk.absolute(rel);
      TRY_ASSIGN(Reply len, m_side.command({"HLEN", key}));
      std::uint64_t expected = static_cast<std::uint64_t>(len.view().integer());
      U64Set seen;
      for (const auto& p : pairs) {
        seen.insert(_hash64(p.first));
      }
      std::uint64_t written = pairs.size();
      ScanWalk walk(m_side, {"HSCAN", key}, {"COUNT", std::string(k_hscan_count)});
      walk.resume(cursor, server);
      for (;;) {
        TRY_ASSIGN(auto page, walk.next());
        if (!page) {
          break;
        }
        list_pairs(*page, pairs);
        std::erase_if(pairs, [&](const auto& p) { return !seen.insert(_hash64(p.first)); });
        written += pairs.size();
        TRY(hash_fields(rel, pairs));
      }
      if (written != expected) {
        return make_error(EIO, "hash " + rel + ": " + std::to_string(static_cast<long long>(written)) +
                                   " fields read but HLEN says " + std::to_string(static_cast<long long>(expected)));
      }
    }
    return end_hash(rel);
  }

  Connection& m_c;
  Connection& m_side;
  const Keys& m_tk;
  dump::Writer& m_w;
  DumpCheck& m_check;
  Progress& m_progress;
  std::string m_index;
  std::string m_orphans;  // ORPHANS' relative name
  bool m_orphans_written = false;  // (or left out: skip)
  std::uint64_t m_skipped = 0;
  std::string m_skipped_first;
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
  // (an interrupted move into it is no state to dump: finished first)
  std::string finished;
  TRY(finish_install_before_read(pool, sk, true, finished));
  TRY_ASSIGN(Reply sb_type, c.command({"TYPE", sk.sb()}));
  if (sb_type.view().str() == "none") {
    return make_error(ENOENT, "no filesystem at prefix " + redisfs::quoted(prefix));
  }
  if (sb_type.view().str() != "hash") {
    return make_error(EIO, "dump " + prefix + ": " + superblock_not_hash(sk).message);
  }
  Keys tk(make_temp_prefix(prefix, TempKind::Dump));
  Progress progress("dump " + prefix, 0, "keys", opts.quiet);

  auto body = [&]() -> Result<DumpStats> {
    DumpStats stats;
    stats.prefix = prefix;
    stats.warning = finished;
    TRY(sync_writeback_mount(c, sk, k_writeback_sync_wait, stats.warning));
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
    DumpCheck check;
    check.header(header);
    TempStreamer streamer(c, *side, tk, w, check, progress);
    TRY_ASSIGN(std::uint64_t keys, streamer.run());
    TRY(check_cancel());  // an interrupted dump must not look complete
    TRY_ASSIGN(stats.trailer, w.finish());
    if (stats.trailer.records != keys) {
      return make_error(EIO, "internal error: wrote " + std::to_string(static_cast<long long>(stats.trailer.records)) +
                                 " records for " + std::to_string(static_cast<long long>(keys)) + " keys");
    }
    add_warning(stats.warning, streamer.skipped(prefix));
    add_warning(stats.warning, _checked(check, prefix));
    out.flush();
    if (!out) {
      return make_error(EIO, "dump: write failed");
    }
    return stats;
  };
  auto stats = body();
  progress.finish();
  c.drain();
  auto cleaned = unlink_listed(c, tk, staging_index_key(tk));
  if (!stats.ok()) {
    return with_damage_hint(make_error(stats.error().code, "dump " + prefix + ": " + stats.error().message), {prefix});
  }
  if (!cleaned.ok()) {
    add_warning(stats->warning, "could not delete the temporary copy " + tk.prefix() +
                                    " (it expires by itself): " + cleaned.error().message);
  }
  stats->seconds = seconds_since(start);
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

// A new file "<path>.tmp-<hex>" under a random name, as mkstemp's, but
// made with mode 0666 less the umask by open(2) itself: reading the umask
// with umask(2) would change it for every thread of the process while it
// is read. Returns its name.
static Result<std::string> _create_temp(const std::string& path) {
  std::string tmp;
  int fd = -1;
  for (int attempt = 1; fd < 0; ++attempt) {
    tmp = path + ".tmp-" + random_hex(4);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt == 100)) {
      int e = errno;
      return make_error(e, "cannot create " + tmp + ": " + errno_text(e));
    }
  }
  ::close(fd);
  return tmp;
}

// Opens `path` with `flags` and fsyncs it: 0, or the errno of what failed.
// `sync_einval_ok`: EINVAL from fsync (a filesystem that cannot sync it)
// is no failure.
static int _fsync_path(const std::string& path, int flags, bool sync_einval_ok) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  int e = ::fsync(fd) != 0 && !(sync_einval_ok && errno == EINVAL) ? errno : 0;
  ::close(fd);
  return e;
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
      return make_error(e, "cannot open " + path + ": " + errno_text(e));
    }
    auto stats = _dump_into(pool, prefix, out, opts);
    out.flush();
    if (stats.ok() && !out) {
      return make_error(EIO, "dump: writing to " + path + " failed");
    }
    return stats;
  }
  TRY_ASSIGN(std::string tmp, _create_temp(path));
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
  if (int e = _fsync_path(tmp, O_RDONLY, false); e != 0) {
    return fail(make_error(e, "cannot sync " + tmp + ": " + errno_text(e)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    return fail(make_error(e, "cannot rename " + tmp + " to " + path + ": " + errno_text(e)));
  }
  // The rename is durable once the directory is: sync it too (EINVAL: a
  // filesystem that cannot sync a directory, nothing more to do).
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  if (int e = _fsync_path(dir, O_RDONLY | O_DIRECTORY, true); e != 0) {
    return make_error(e, "dump written to " + path + ", but syncing its directory " + dir + " failed: " + errno_text(e));
  }
  return stats;
}

}  // namespace redisfs
