// Dump, streamed through dump_format.hpp (restore is restore.cpp; both are
// declared in dump_io.hpp).
//
// DUMP. The point in time is a copy-on-write snapshot (snapshot.hpp,
// CowSnapshot: writers never wait for it) in a temporary prefix
// T = "<P>~dump~<hex>", whose keys expire by themselves after a crash:
//
//   * at its instant every key but the blocks is copied to T as it was
//     (copy_keys_cow with CowMode::Probe), and listed in T's index; each
//     block the instant held is listed too, but left where its value is:
//     in the filesystem, or in T when a change script copied it first;
//   * the streamer walks the index: the superblock first (HGETALL), then
//     the listed keys in batches, LRANGE-d on a second connection;
//   * hashes by a first HSCAN page, pipelined one batch ahead, so the
//     server prepares batch n+1 while batch n is encoded; a hash longer
//     than one page (a big directory) is continued on the second
//     connection, one page at a time, so it never sits in memory whole.
//     HSCAN may repeat a field: repeats are dropped by a set of 64-bit
//     field hashes, and the count written must equal HLEN, so a (most
//     improbable) hash collision fails the dump instead of losing a field;
//   * blocks are taken a batch at a time (cow_take_batch: the block as it
//     was, copied to T unless there already, and no change script copies
//     it again), read by GET in the same pipeline, and removed from T once
//     written. So a dump needs free memory in the server for the
//     metadata, not for the data: what T holds of the blocks is a batch or
//     two and those a mount changed before the streamer came to them.
//
// The snapshot is kept alive by a thread of its own (CowKeeper: the output
// may stall, a pipe its reader stopped reading) until the last block is
// taken; then T is deleted. Meanwhile every write copies what it changes
// first: the keeper ends the snapshot, and so the dump, before those
// copies run the server out of memory. A key missing from T, or a block
// from both, fails the dump.
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
#include <atomic>
#include <charconv>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <thread>

#include "redis/scan.hpp"
#include "snap/dump_incremental.hpp"
#include "snap/dump_verify.hpp"
#include "snap/fsck.hpp"
#include "snap/install.hpp"
#include "snap/room.hpp"
#include "snap/snapshot.hpp"
#include "store/keys.hpp"
#include "util/fault.hpp"
#include "util/fd_out.hpp"
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

// Ends the dump's snapshot and removes its staging prefix: after a dump
// that streamed every key, what the index lists and TOUCHED; after a
// failure, also what TOUCHED names (remove_staging). (A key a change script
// copied that the index does not list, one that did not belong to the
// filesystem's structure, expires by itself.) Whether the snapshot was
// still alive at its end does not matter: every step that read the
// instant checked that it was.
static Status _end_dump(Connection& c, CowSnapshot& cow, const Keys& tk, bool streamed) {
  c.drain();
  if (cow.alive()) {
    (void)cow.end(c);
  }
  if (!streamed) {
    return remove_staging(c, tk);
  }
  TRY(unlink_listed(c, tk, staging_index_key(tk)));
  TRY(c.command({"UNLINK", tk.touched()}));
  return {};
}

// Whether the server has room for a handover of the dump's snapshot
// (CowKeeper): the blocks not written yet, about the superblock's `bytes`
// less those written, a quarter more for Redis's own cost, above the room
// guard's margin. EAGAIN if not (the other tool waits on, as before).
static Status _room_for_handover(Connection& c, const Keys& tk, std::uint64_t written) {
  TRY_ASSIGN(Reply bytes, c.command({"HGET", tk.sb(), "bytes"}));
  const auto total = static_cast<std::uint64_t>(std::max(0LL, bytes.view().as_int().value_or(0)));
  const std::uint64_t left = total > written ? total - written : 0;
  return RoomGuard::fits(c, tk.sb(), left / 4 * 5,
                         "the " + human_bytes(left) + " of blocks it has not read, and a quarter more,");
}

// The warning of a dump that kept its snapshot from a tool waiting for it
// (CowKeeper::kept), "" if none.
static std::string _kept_warning(const CowKeeper& keeper) {
  return keeper.kept()
             ? "another tool waited for this dump's snapshot, which could not be handed over: " + keeper.kept()->message
             : std::string();
}

// The dump's instant: a copy-on-write snapshot of `sk` in `tk` with every
// key but the blocks copied, each block left where the instant's value is
// (CowMode::Probe) for the streamer to take; the snapshot stays alive
// until it has. On failure nothing of `tk` is left (what a crash leaves
// expires, or the next snapshot removes it).
static Result<CowSnapshot> _begin_dump(Connection& c, const Keys& sk, const Keys& tk, RoomGuard& room,
                                       std::string& warning) {
  TRY(room.check(c));
  TRY_ASSIGN(CowSnapshot cow, CowSnapshot::begin(c, sk, tk, ""));
  if (!cow.dead_staging().empty()) {
    (void)remove_staging(c, Keys(cow.dead_staging()));
  }
  auto copied = copy_keys_cow(c, sk, tk, cow, nullptr, &warning, &room, CowMode::Probe);
  if (!copied.ok()) {
    (void)_end_dump(c, cow, tk, false);
    return std::move(copied).error();
  }
  return cow;
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

// Streams the dump's snapshot of `sk` (_begin_dump: every key but the
// blocks in the staging prefix `tk`) into a Writer, and to `check` as it
// goes: the superblock, ORPHANS, every inode, then the rest (the order
// DumpCheck takes, as fsck's passes: what names an inode is judged once
// every inode is in). The index is walked twice, once for the inodes. The
// blocks are taken a batch at a time while `cow` is alive (cow_take_batch:
// pipelined before their GETs), and removed from `tk` once written.
class TempStreamer {
 public:
  TempStreamer(Connection& c, Connection& side, const Keys& sk, const Keys& tk, const CowSnapshot& cow,
               const CowKeeper& keeper, std::atomic<std::uint64_t>& taken_bytes, dump::Writer& w, DumpCheck& check,
               Progress& progress, RoomGuard& room)
      : m_c(c),
        m_side(side),
        m_sk(sk),
        m_tk(tk),
        m_cow(cow),
        m_keeper(keeper),
        m_taken_bytes(taken_bytes),
        m_w(w),
        m_check(check),
        m_progress(progress),
        m_room(room),
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
      if (pairs.back().first == "block_size") {
        size_batches(pairs.back().second);
      }
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

  // The keys of one page of the index a walk takes, and of them the
  // blocks, in order.
  struct Page {
    std::vector<std::string> rels;
    std::vector<std::string> blocks;
    bool took = false;  // takes were issued (none once the snapshot is handed over)
  };

  // Batches sized to the filesystem's blocks (its superblock's block_size;
  // one that is not a block size the schema allows: the default): each
  // take copies at most k_take_bytes (a writer waits for it: snapshot.cpp's
  // copier batches), and a Page holds at most k_page_bytes of blocks, and
  // an eighth of the room the guard last found (page_blocks: two Pages are
  // in flight, staged, and their GETs' replies in the server's output
  // buffer: half the room).
  static constexpr std::size_t k_page_bytes = 4u << 20;
  static constexpr std::size_t k_take_bytes = 4u << 20;
  void size_batches(std::string_view field) {
    std::uint64_t size = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), size);
    if (ec != std::errc() || end != field.data() + field.size() || size < k_min_block_size || size > k_max_block_size) {
      size = k_default_block_size;
    }
    m_block_size = size;
    m_take_keys = std::clamp<std::size_t>(k_take_bytes / size, 1, 128);
  }
  std::size_t page_blocks() const {
    const std::uint64_t bytes = std::min<std::uint64_t>(k_page_bytes, m_room.span() / 2);
    return std::clamp<std::size_t>(bytes / m_block_size, 1, k_stream_batch);
  }

  // The keys of a page of the index that a walk takes (the inodes, or
  // every other key), cut into Pages of at most page_blocks() blocks and
  // k_hscans_at_once directories or attribute hashes each (their first
  // HSCAN pages come in one pipeline).
  void split(const std::vector<std::string>& rels, bool inodes, std::deque<Page>& out) const {
    const std::size_t most = page_blocks();
    Page page;
    std::size_t hashes = 0;
    for (const std::string& rel : rels) {
      const KeyKind kind = parse_relative_key(rel).kind;
      if ((m_orphans_written && rel == m_orphans) || (kind == KeyKind::Inode) != inodes) {
        continue;
      }
      page.rels.push_back(rel);
      if (kind == KeyKind::Block) {
        page.blocks.push_back(rel);
      }
      hashes += kind == KeyKind::Dir || kind == KeyKind::Xattr ? 1 : 0;
      if (page.blocks.size() == most || hashes == k_hscans_at_once) {
        out.push_back(std::move(page));
        page = Page{};
        hashes = 0;
      }
    }
    if (!page.rels.empty()) {
      out.push_back(std::move(page));
    }
  }

  // One walk over the index: the inodes (`inodes`), or every other key,
  // a Page issued ahead of the one processed.
  Status walk(std::uint64_t total, bool inodes) {
    std::uint64_t pos = 0;
    bool end = false;
    std::deque<Page> ready;
    auto next = [&]() -> Result<std::optional<Page>> {
      while (ready.empty() && !end) {
        TRY_ASSIGN(std::vector<std::string> rels, fetch(pos));
        pos += rels.size();
        end = rels.empty();
        split(rels, inodes, ready);
      }
      if (ready.empty()) {
        return std::optional<Page>();
      }
      Page page = std::move(ready.front());
      ready.pop_front();
      issue(page);
      return std::optional<Page>(std::move(page));
    };
    TRY_ASSIGN(std::optional<Page> cur, next());
    while (cur) {
      TRY(check_cancel());
      auto upcoming = next();
      Status st = upcoming.ok() ? process(*cur) : Status(upcoming.error());
      if (!st.ok()) {
        m_c.drain();
        return st;
      }
      cur = std::move(upcoming).value();
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

  void issue(Page& page) {
    page.took = !m_keeper.handed_over();
    for (std::size_t from = 0; page.took && from < page.blocks.size(); from += m_take_keys) {
      const std::size_t n = std::min(m_take_keys, page.blocks.size() - from);
      cow_take_batch(m_c, m_sk, m_tk, m_cow, std::span<const std::string>(page.blocks).subspan(from, n));
    }
    for (const auto& rel : page.rels) {
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

  // The takes issue() sent for `page`: every block the walk found must
  // still be there.
  // A take that finds the snapshot ended because the keeper handed it over
  // needs nothing: every block is in the staging prefix then.
  Status taken(const Page& page) {
    std::vector<long long> found;
    for (std::size_t from = 0; page.took && from < page.blocks.size(); from += m_take_keys) {
      found.assign(std::min(m_take_keys, page.blocks.size() - from), -1);
      Status took = cow_take_found(m_c.read_reply(), m_sk, m_tk, found);
      if (!took.ok() && took.code() == EAGAIN && m_keeper.handed_over()) {
        continue;
      }
      TRY(std::move(took));
      for (std::size_t i = 0; i < found.size(); ++i) {
        if (found[i] == -1) {
          return make_error(EIO, "block " + page.blocks[from + i] +
                                     " vanished from the snapshot while it was dumped (removed by another client?)");
        }
      }
    }
    return {};
  }

  // A block's GET, pipelined behind its take: a GET that ran before the
  // take (sent again: NOSCRIPT from a restarted server) found no copy, and
  // reads it again now that the take has run (cow_take_batch).
  Result<Reply> block_read(const std::string& rel, Result<Reply> r) {
    if (!r.ok() || !r->view().is_nil()) {
      return r;
    }
    return m_side.command({"GET", m_tk.absolute(rel)});
  }

  // The blocks of `page`, written: their copies removed from the staging
  // prefix (each stays in TOUCHED: about 64 bytes). The room guard counts
  // them as staged: it looks at the server once a quarter of the room went
  // by, and a Page is no bigger (page_blocks).
  Status written(const Page& page) {
    if (page.blocks.empty()) {
      return {};
    }
    std::vector<std::string> argv{"UNLINK"};
    for (const std::string& rel : page.blocks) {
      argv.push_back(m_tk.absolute(rel));
    }
    TRY(m_side.command(argv));
    return m_room.staged(m_side, (m_block_size + 64) * page.blocks.size());
  }

  // Test hooks: a dump slow enough to write during, one whose output
  // stalls for longer than the snapshot outlives a refresh, one whose
  // output stalls until it is interrupted (longer than a tool waits for a
  // snapshot: k_freeze_wait), one that dies with blocks taken and others
  // not.
  static void stream_faults(const Page& page) {
    if (fault_injected("dump-stream-slow")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    static bool stalled = false;
    if (!page.blocks.empty() && !stalled && fault_injected("dump-stream-stall")) {
      stalled = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(k_freeze_ttl_ms + 2000));
    }
    if (!page.blocks.empty() && !stalled && fault_injected("dump-stream-hang")) {
      stalled = true;
      for (int i = 0; i < 6000 && !cancel_requested(); ++i) {  // (10 minutes at most)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (!page.blocks.empty()) {
      crash_if_injected("dump-stream");
    }
  }

  Status process(const Page& page) {
    TRY(taken(page));
    stream_faults(page);
    for (const auto& rel : page.rels) {
      const bool block = parse_relative_key(rel).kind == KeyKind::Block;
      auto r = block ? block_read(rel, m_c.read_reply()) : m_c.read_reply();
      if (!r.ok()) {
        TRY(skip(rel, std::move(r).error()));
        continue;
      }
      ReplyView v = r->view();
      if (block) {
        if (!v.is_string()) {
          return missing(rel);
        }
        m_check.string_record(rel, v.str());
        TRY(m_w.write_string(rel, v.str()));
        m_taken_bytes.fetch_add(v.str().size());
      } else {
        TRY(hash(rel, v, m_c.answered_by()));
      }
      m_progress.add(1);
    }
    return written(page);
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
  const Keys& m_sk;
  const Keys& m_tk;
  const CowSnapshot& m_cow;
  const CowKeeper& m_keeper;
  std::atomic<std::uint64_t>& m_taken_bytes;  // (the blocks written: what a handover need not copy)
  dump::Writer& m_w;
  DumpCheck& m_check;
  Progress& m_progress;
  RoomGuard& m_room;
  std::uint64_t m_block_size = k_default_block_size;
  std::size_t m_take_keys = k_take_bytes / k_default_block_size;
  std::string m_index;
  std::string m_orphans;  // ORPHANS' relative name
  bool m_orphans_written = false;  // (or left out: skip)
  std::uint64_t m_skipped = 0;
  std::string m_skipped_first;
};

}  // namespace

// The header announces the record count (the snapshot's index, and its
// superblock): a restore reading a pipe shows progress against it.
static Result<dump::Header> _dump_header(Connection& c, const std::string& prefix, const Keys& tk,
                                         std::int64_t snapshot_ns) {
  TRY_ASSIGN(Reply listed, c.command({"LLEN", staging_index_key(tk)}));
  dump::Header header;
  header.prefix = prefix;
  header.created = iso_time_ns(snapshot_ns);
  header.tool = "redisfs-snap " REDISFS_VERSION;
  header.record_count = static_cast<std::uint64_t>(std::max<long long>(listed.view().integer(), 0)) + 1;
  return header;
}

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
  RoomGuard room("the dump's temporary copy", tk.sb());
  std::optional<CowSnapshot> cow;

  auto body = [&]() -> Result<DumpStats> {
    DumpStats stats;
    stats.prefix = prefix;
    stats.warning = finished;
    TRY(sync_writeback_mount(c, sk, k_writeback_sync_wait, stats.warning));
    TRY_ASSIGN(CowSnapshot begun, _begin_dump(c, sk, tk, room, stats.warning));
    cow.emplace(std::move(begun));
    stats.snapshot_ns = cow->instant_ns();
    // (the output may stall for longer than the snapshot outlives a
    // refresh; the writers' copies for it may fill the server meanwhile;
    // another tool may wait for it)
    std::atomic<std::uint64_t> taken_bytes{0};
    CowKeeper keeper(pool, *cow, "the dump", [&](Connection& kc, CowSnapshot& kcow, RoomGuard& kroom) -> Status {
      TRY(_room_for_handover(kc, tk, taken_bytes.load()));
      return cow_copy_listed_blocks(kc, sk, tk, kcow, &kroom);
    });
    TRY_ASSIGN(dump::Header header, _dump_header(c, prefix, tk, stats.snapshot_ns));
    dump::Writer w(out, header);
    TRY(w.begin());
    DumpCheck check;
    check.header(header);
    TempStreamer streamer(c, *side, sk, tk, *cow, keeper, taken_bytes, w, check, progress, room);
    auto streamed = streamer.run();
    keeper.stop();
    if (!streamed.ok() && keeper.why()) {
      return *keeper.why();
    }
    TRY_ASSIGN(std::uint64_t keys, std::move(streamed));
    TRY(check_cancel());  // an interrupted dump must not look complete
    TRY_ASSIGN(stats.trailer, w.finish());
    if (stats.trailer.records != keys) {
      return make_error(EIO, "internal error: wrote " + std::to_string(static_cast<long long>(stats.trailer.records)) +
                                 " records for " + std::to_string(static_cast<long long>(keys)) + " keys");
    }
    add_warning(stats.warning, streamer.skipped(prefix));
    add_warning(stats.warning, _checked(check, prefix));
    add_warning(stats.warning, _kept_warning(keeper));
    out.flush();
    if (!out) {
      return make_error(EIO, "dump: write failed");
    }
    return stats;
  };
  auto stats = body();
  progress.finish();
  Status cleaned = cow ? _end_dump(c, *cow, tk, stats.ok()) : Status{};
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

// _dump_into the descriptor `fd` (FdOutBuf): a write that fails says why,
// naming `where` it went.
static Result<DumpStats> _dump_into_fd(Pool& pool, const std::string& prefix, int fd, const std::string& where,
                                       const DumpOptions& opts) {
  FdOutBuf buf(fd);
  std::ostream out(&buf);
  auto stats = _dump_into(pool, prefix, out, opts);
  out.flush();
  if (buf.error() != 0) {  // (the dump's failure, when it failed: it stops at the first write that fails)
    return make_error(buf.error(), "dump " + prefix + ": writing to " + where + " failed: " + errno_text(buf.error()));
  }
  if (stats.ok() && !out) {
    return make_error(EIO, "dump " + prefix + ": writing to " + where + " failed");
  }
  return stats;
}

Result<DumpStats> dump_to_path(Pool& pool, const std::string& prefix, const std::string& path,
                               const DumpOptions& opts) {
  if (path == "-") {
    std::cout.flush();
    return _dump_into_fd(pool, prefix, STDOUT_FILENO, "stdout", opts);
  }
  if (path.empty()) {
    return make_error(EINVAL, "the output file name is empty");
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
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      return make_error(e, "cannot open " + path + ": " + errno_text(e));
    }
    auto stats = _dump_into_fd(pool, prefix, fd, path, opts);
    ::close(fd);
    return stats;
  }
  TRY_ASSIGN(std::string tmp, _create_temp(path));
  auto fail = [&](Error e) -> Error {
    ::unlink(tmp.c_str());
    return e;
  };
  Result<DumpStats> stats = make_error(EIO, "not run");
  {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      return fail(make_error(e, "cannot open " + tmp + ": " + errno_text(e)));
    }
    // (named by the file it becomes: the temporary one is gone after a failure)
    stats = _dump_into_fd(pool, prefix, fd, path, opts);
    int closed = ::close(fd) != 0 ? errno : 0;
    if (!stats.ok()) {
      return fail(std::move(stats).error());
    }
    if (closed != 0) {
      return fail(make_error(closed, "dump " + prefix + ": writing to " + path + " failed: " + errno_text(closed)));
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
