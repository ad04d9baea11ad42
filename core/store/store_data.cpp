// Store, its data: reads (whole and in pieces), symlink targets, writes,
// truncation in steps, and setattr.
#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <deque>
#include <optional>

#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

Result<std::string> Store::readlink(Ino ino) {
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(Reply r, c->command({"HMGET", m_keys.inode(ino), "type", "target"}));
  ReplyView v = r.view();
  if (v.size() < 2 || v[0].is_nil()) {
    return make_error(ENOENT, "no inode " + std::to_string(ino));
  }
  if (v[0].str() != "symlink") {
    return make_error(EINVAL, "not a symlink");
  }
  if (Status target = check_symlink_target(v[1].str()); !target.ok()) {
    return make_error(EIO, "inode " + std::to_string(ino) + ": " + target.error().message);
  }
  return std::string(v[1].str());
}

Status Store::read(Ino ino, std::uint64_t offset, std::size_t size, std::string& out) {
  ReadPieces got;
  TRY(read_pieces(ino, offset, size, got));
  out.clear();
  out.reserve(got.size);
  for (std::string_view piece : got.pieces) {
    out.append(piece);
  }
  return {};
}

// What holes and short blocks read as: pieces of at most this many zeros.
static constexpr std::size_t k_zeros = 256 * 1024;

static const std::string k_zero_bytes(k_zeros, '\0');

// The inode's type, size and times and the bytes [offset, offset + size)
// of its blocks, as one array (the HMGET's fields, then one string a
// block), in one round trip: one MULTI/EXEC, the size and the bytes of one
// instant (a concurrent write is seen whole or not at all), and the bytes
// never pass through Lua. A full server refuses every command queued in a
// MULTI (it may grow without bound): then read.lua, a no-writes script
// that a full server runs, reads the same at once. With `touched`, the
// access is recorded in the same round trip: touch_atime.lua, behind the
// EXEC, applies relatime itself; its reply goes to *touched (best effort:
// an access time is not worth failing a read).
static void _queue_read(Connection& c, const Keys& keys, Ino ino, std::uint64_t offset, std::size_t size,
                        std::uint64_t bs, std::vector<std::string>& block_keys, std::vector<std::string>& ranges) {
  const std::uint64_t first = offset / bs;
  const std::uint64_t last = (offset + size - 1) / bs;
  c.append({"MULTI"});
  c.append({"HMGET", keys.inode(ino), "type", "size", "atime", "mtime", "ctime"});
  for (std::uint64_t b = first; b <= last; ++b) {
    std::uint64_t lo = b == first ? offset - b * bs : 0;
    std::uint64_t hi = b == last ? offset + size - 1 - b * bs : bs - 1;
    block_keys.push_back(keys.block(ino, b));
    ranges.push_back(std::to_string(lo));
    ranges.push_back(std::to_string(hi));
    c.append({"GETRANGE", block_keys.back(), ranges[ranges.size() - 2], ranges.back()});
  }
  c.append({"EXEC"});
}

static void _queue_touch(Connection& c, const Keys& keys, Ino ino) {
  const std::string inode = keys.inode(ino);
  const std::string freeze = keys.freeze();
  const std::string window = std::to_string(k_relatime_ns);
  std::array<std::string_view, 2> touch_keys{freeze, inode};
  std::array<std::string_view, 1> touch_args{window};
  c.append_eval(lua::touch_atime, touch_keys, touch_args);
}

static Result<Reply> _read_blocks(Connection& c, const Keys& keys, Ino ino, std::uint64_t offset, std::size_t size,
                                  std::uint64_t bs, Reply* touched) {
  std::vector<std::string> block_keys;
  std::vector<std::string> ranges;
  _queue_read(c, keys, ino, offset, size, bs, block_keys, ranges);
  const std::size_t behind = touched != nullptr ? 1 : 0;
  if (touched != nullptr) {
    _queue_touch(c, keys, ino);
  }
  std::optional<Error> failure;
  Reply exec;
  while (c.pending() > behind) {
    auto r = c.read_reply();
    if (!r.ok()) {
      if (!failure) {
        failure = std::move(r).error();
      }
    } else if (c.pending() == behind) {
      exec = std::move(r).value();
    }
  }
  if (touched != nullptr) {
    auto t = c.read_reply();
    *touched = t.ok() ? std::move(t).value() : Reply();
  }
  if (failure && (failure->code == ENOSPC || failure->fault != Fault::None)) {
    // (A transaction is not retried piece by piece: through an outage,
    // read.lua is, like every script that changes nothing.)
    std::vector<std::string> script_keys{keys.inode(ino)};
    script_keys.insert(script_keys.end(), block_keys.begin(), block_keys.end());
    auto r = c.eval(lua::read, script_keys, ranges);
    if (!r) {
      return make_error(r.code(), "inode " + std::to_string(ino) + ": " + r.error().message);
    }
    return std::move(r).value();
  }
  if (failure) {
    return std::move(*failure);
  }
  return exec;
}

// The answer of a read from the blocks of `v` (_read_blocks' reply, of a
// read from `origin`): `avail` bytes from `offset` (at or after `origin`),
// a short or missing block's end as zeros.
static void _place_pieces(ReplyView v, std::uint64_t origin, std::uint64_t offset, std::size_t avail, std::uint64_t bs,
                          Store::ReadPieces& out) {
  const std::uint64_t first = origin / bs;
  auto zeros = [&out](std::size_t n) {
    for (; n > 0; n -= std::min(n, k_zeros)) {
      out.pieces.emplace_back(k_zero_bytes.data(), std::min(n, k_zeros));
    }
  };
  std::size_t done = 0;  // bytes of the answer placed so far
  for (std::uint64_t b = first; 1 + (b - first) < v.size(); ++b) {
    std::string_view chunk = v[1 + (b - first)].str();
    std::uint64_t start = b == first ? origin : b * bs;  // the file offset of the chunk's first byte
    std::uint64_t skip = offset > start ? offset - start : 0;
    if (skip >= chunk.size()) {
      if (start + skip - offset >= avail) {
        break;
      }
      continue;  // before the answer, or short: what follows it is zeros
    }
    std::uint64_t pos = start + skip - offset;  // where this chunk lands in the answer
    if (pos >= avail) {
      break;
    }
    zeros(pos - done);  // the end of a short block before it
    std::size_t n = std::min<std::size_t>(chunk.size() - skip, avail - pos);
    out.pieces.push_back(chunk.substr(skip, n));
    done = pos + n;
  }
  zeros(avail - done);
  out.size = avail;
}

// relatime, for reads. touch_atime.lua records an access in the read's
// own round trip; it is left out when a read of this mount found the
// access recorded (AttrCache::accessed: no change through this mount
// since, within attr_timeout, and the day's window not near its end). Such
// a read still looks at its own reply's times (access_due): if another
// host changed the file meanwhile, it records the access in a round trip
// of its own, so every read that should record one does.
static constexpr std::int64_t k_relatime_margin_ns = 60LL * 1000000000;

static std::int64_t _now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

static bool _access_known(AttrCache& attrs, Ino ino) {
  std::optional<std::int64_t> atime = attrs.accessed(ino);
  return atime && _now_ns() - *atime < k_relatime_ns - k_relatime_margin_ns;
}

// relatime's rule on the read's own HMGET (atime, mtime, ctime: meta[2..4]):
// true when an access is to be recorded (or the times cannot be read).
static bool _access_due(ReplyView meta) {
  std::int64_t t[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    std::string_view s = meta[2 + i].str();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), t[i]);
    if (ec != std::errc() || end != s.data() + s.size()) {
      return true;
    }
  }
  return t[0] <= t[1] || t[0] <= t[2] || _now_ns() - t[0] >= k_relatime_ns - k_relatime_margin_ns;
}

// The end of a touch_atime.lua (its reply, empty when it failed): the
// attributes it read for the AttrCache, and the hint when they show the
// access recorded. The server's atime after it, when the reply has it.
static std::optional<std::int64_t> _touched(AttrCache& attrs, Ino ino, const AttrCache::Change& change,
                                            const Reply& touched) {
  std::vector<Attr> fresh = !touched.empty() ? _fresh_attr(ino, touched.view(), 1) : std::vector<Attr>{};
  attrs.end(change, fresh);
  if (fresh.empty()) {
    return std::nullopt;
  }
  if (fresh[0].atime_ns > fresh[0].mtime_ns && fresh[0].atime_ns > fresh[0].ctime_ns) {
    attrs.note_accessed(ino, fresh[0].atime_ns);
  }
  return fresh[0].atime_ns;
}

static std::optional<std::int64_t> _touch_now(Connection& c, const Keys& keys, AttrCache& attrs, Ino ino) {
  AttrCache::Change change = attrs.begin({ino});
  auto r = c.eval(lua::touch_atime, {keys.freeze(), keys.inode(ino)}, {std::to_string(k_relatime_ns)});
  return _touched(attrs, ino, change, r.ok() ? std::move(r).value() : Reply());  // (best effort, as in the read)
}

// The file's size from a read's reply `v` (_read_blocks', of blocks first
// to last), once the reply is checked whole: EIO for a damaged inode or
// block, ESTALE when the inode is gone.
static Result<std::uint64_t> _read_reply_size(const Keys& keys, Ino ino, ReplyView v, std::uint64_t first,
                                              std::uint64_t last) {
  if (!v.is_array() || v.size() != 2 + (last - first)) {
    return make_error(EIO, "inode " + std::to_string(ino) + ": bad read reply");
  }
  ReplyView meta = v[0];
  if (!meta.is_array() || meta.size() != 5) {
    return make_error(EIO, "inode " + std::to_string(ino) + ": " + _reply_problem(meta, "a hash"));
  }
  if (meta[0].is_nil()) {
    return make_error(ESTALE, "inode " + std::to_string(ino) + " was removed");
  }
  for (std::uint64_t b = first; b <= last; ++b) {
    ReplyView chunk = v[1 + (b - first)];
    if (!chunk.is_string()) {
      // A block key of another type (a hash, a list): GETRANGE answers
      // WRONGTYPE, which must never be read back as the file's bytes.
      return make_error(EIO, "inode " + std::to_string(ino) + ": block " + std::to_string(b) + " (" +
                                 keys.block(ino, b) + "): " + _reply_problem(chunk, "a string"));
    }
  }
  std::uint64_t file_size = 0;
  if (!parse_u64(meta[1].str(), file_size) || file_size > k_max_file_size) {
    return make_error(EIO, "inode " + std::to_string(ino) + ": bad size '" + _bounded(meta[1].str()) + "'");
  }
  return file_size;
}

Status Store::read_pieces(Ino ino, std::uint64_t offset, std::size_t size, ReadPieces& out) {
  out.pieces.clear();
  out.size = 0;
  out.held.reset();  // (a prefetch an earlier answer in `out` pointed into)
  if (size == 0) {
    return {};
  }
  if (m_gathered_count.load() != 0) {
    TRY(settle(ino, true));  // this mount reads what it wrote
  }
  const std::uint64_t bs = m_sb.block_size;
  if (offset >= k_max_file_size) {
    return {};
  }
  size = static_cast<std::size_t>(std::min<std::uint64_t>(size, k_max_file_size - offset));
  const std::uint64_t first = offset / bs;
  const std::uint64_t last = (offset + size - 1) / bs;
  TRY_ASSIGN(auto c, acquire());
  // The kernel asks for the attributes after a read (the atime): the
  // touch's reply answers (AttrCache).
  const bool touch = !m_opts.noatime && !m_opts.read_only;
  const bool carry = touch && !_access_known(m_attrs, ino);
  AttrCache::Change change = carry ? m_attrs.begin({ino}) : AttrCache::Change();
  Reply touched;
  auto blocks = _read_blocks(*c, m_keys, ino, offset, size, bs, carry ? &touched : nullptr);
  std::optional<std::int64_t> atime;
  if (carry) {
    atime = _touched(m_attrs, ino, change, touched);
  }
  TRY_ASSIGN(out.reply, std::move(blocks));  // (the pieces point into it)
  TRY_ASSIGN(std::uint64_t file_size, _read_reply_size(m_keys, ino, out.reply.view(), first, last));
  if (touch && !carry && _access_due(out.reply.view()[0])) {
    atime = _touch_now(*c, m_keys, m_attrs, ino);
  }
  if (atime && m_gathered_count.load() != 0) {
    gathered_accessed(ino, *atime);  // a file that gathers on shows the access too
  }
  std::size_t avail =
      file_size > offset ? static_cast<std::size_t>(std::min<std::uint64_t>(size, file_size - offset)) : 0;
  _place_pieces(out.reply.view(), offset, offset, avail, bs, out);
  return {};
}

std::uint64_t Store::prefetch_size(Ino ino) {
  // What the size last seen needs (a hint: the read's own HMGET has the
  // size of its instant), up to k_max_bytes; the first block when no size
  // was seen.
  const std::uint64_t bs = m_sb.block_size;
  if (std::optional<Attr> held = m_attrs.basis(ino)) {
    if (held->size == 0 || held->size > Prefetch::k_max_bytes) {
      return 0;  // no READ comes for an empty file; a big one is read in big READs
    }
    return std::min<std::uint64_t>(_div_ceil(held->size, bs) * bs, Prefetch::k_max_bytes);
  }
  return std::min<std::uint64_t>(bs, Prefetch::k_max_bytes);
}

Status Store::open_file(Ino ino, std::shared_ptr<const Prefetch>& first, Seen* seen) {
  first.reset();
  if (seen != nullptr) {
    seen->reset();
    if (m_opts.writeback) {
      seen = nullptr;  // (the only mount: nothing else changes the file)
    }
  }
  if (m_opts.read_only || !m_attrs.enabled() || (m_gathered_count.load() != 0 && gathering(ino))) {
    return open_file(ino, seen);
  }
  const std::uint64_t bs = m_sb.block_size;
  const std::uint64_t want = prefetch_size(ino);
  if (want == 0 || !Prefetch::reserve(want)) {
    return open_file(ino, seen);
  }
  std::shared_ptr<Prefetch> p(new Prefetch(want));
  TRY_ASSIGN(auto c, acquire());
  const bool touch = !m_opts.noatime;
  const bool carry = touch && !_access_known(m_attrs, ino);
  AttrCache::Change change = carry ? m_attrs.begin({ino}) : AttrCache::Change();
  p->m_watch = m_attrs.watch(ino, carry ? 1 : 0);
  p->m_sent = std::chrono::steady_clock::now();
  std::vector<std::string> block_keys;
  std::vector<std::string> ranges;
  _queue_read(*c, m_keys, ino, 0, want, bs, block_keys, ranges);
  const std::size_t queued = c->pending();
  if (carry) {
    _queue_touch(*c, m_keys, ino);
  }
  std::vector<Result<Reply>> before;
  const std::string open_keys[] = {m_keys.inode(ino), m_keys.open(ino)};
  const std::string open_args[] = {m_opts.session, "1"};
  auto opened =
      c->eval_after(before, lua::open, open_keys, std::span<const std::string>(open_args, seen != nullptr ? 2 : 1));
  if (carry) {
    const bool ok = before.size() > queued && before[queued].ok();
    _touched(m_attrs, ino, change, ok ? std::move(before[queued]).value() : Reply());
  }
  TRY(std::move(opened));
  if (seen != nullptr) {
    // (after the touch's: the open's fields are the later, and a change
    // since makes the watch fail: the READ then reads for itself)
    opened_attr(ino, open_fields(ino, opened->view()), *seen);
  }
  // What the open read is kept only if all of it came back, as a read
  // would take it; otherwise the READ reads for itself and reports.
  for (std::size_t i = 0; i < queued && i < before.size(); ++i) {
    if (!before[i].ok()) {
      return {};
    }
  }
  if (before.size() < queued) {
    return {};
  }
  p->m_exec = std::move(before[queued - 1]).value();
  auto size = _read_reply_size(m_keys, ino, p->m_exec.view(), 0, (want - 1) / bs);
  if (!size) {
    return {};
  }
  if (touch && !carry && _access_due(p->m_exec.view()[0])) {
    // Another host changed the file since this mount saw its access
    // recorded: the touch is a change of its own, which the watch would
    // take for one of someone else's, so the READ reads for itself.
    _touch_now(*c, m_keys, m_attrs, ino);
    return {};
  }
  p->m_covered = want;
  p->m_file_size = *size;
  first = std::move(p);
  return {};
}

bool Store::read_prefetched(Ino ino, const std::shared_ptr<const Prefetch>& first, std::uint64_t offset,
                            std::size_t size, ReadPieces& out, bool* more) {
  out.pieces.clear();
  out.size = 0;
  if (more != nullptr) {
    *more = false;
  }
  if (!first) {
    return false;
  }
  const bool within = offset <= first->m_covered && size <= first->m_covered - offset;
  const bool ended = first->m_file_size <= first->m_covered;  // the file ends within what was read
  if ((!within && !ended) || std::chrono::steady_clock::now() - first->m_sent >= m_attrs.ttl() ||
      !m_attrs.unchanged(first->m_watch) || (m_gathered_count.load() != 0 && gathering(ino))) {
    return false;
  }
  std::size_t avail = 0;
  if (first->m_file_size > offset) {
    avail = static_cast<std::size_t>(std::min<std::uint64_t>(size, first->m_file_size - offset));
  }
  if (more != nullptr) {
    *more = offset + size < std::min(first->m_covered, first->m_file_size);
  }
  out.reply = Reply();
  out.held = first;  // (the pieces point into its reply)
  _place_pieces(first->m_exec.view(), 0, offset, avail, m_sb.block_size, out);
  return true;
}

namespace {

// One step of a truncate: the script's keys and arguments, the size it
// leaves, and whether it is the last.
struct TruncateStep {
  std::vector<std::string> keys;
  std::vector<std::string> args;
  std::uint64_t target = 0;
  bool last_step = true;
  std::size_t taken = 0;  // blocks of Shrink::existing it removes
};

// A truncate to a smaller size, planned a step at a time: at most
// k_truncate_step_blocks blocks go per script.
struct Shrink {
  const Keys& keys;
  Ino ino;
  std::uint64_t bs;
  std::uint64_t new_size;
  bool final_times;
  bool may_scan;
  bool scanned = false;
  std::vector<std::uint64_t> existing{};  // after a scan: the real blocks left, largest first

  // Fills step (whose keys hold the superblock, freeze and inode keys) for
  // a file now `cur` bytes long.
  Status plan(Connection& c, std::uint64_t cur, TruncateStep& step) {
    std::uint64_t first_dead = _div_ceil(new_size, bs);
    std::uint64_t end = _div_ceil(cur, bs);
    std::string keep = "-1";
    if (may_scan && !scanned && end - first_dead > 64 * k_truncate_step_blocks) {
      // Purging a huge sparse file: when it has more possible blocks than
      // the server has keys, find the real ones. Only for orphans: nobody
      // can write into the range behind our back.
      TRY_ASSIGN(Reply n, c.command({"DBSIZE"}));
      if (static_cast<std::uint64_t>(n.view().integer()) < end - first_dead) {
        TRY_ASSIGN(existing, _existing_blocks(c, keys, ino, first_dead, end));
        scanned = true;
      }
    }
    if (scanned) {
      while (!existing.empty() && existing.front() >= end) {
        existing.erase(existing.begin());
      }
      std::size_t take = std::min<std::size_t>(existing.size(), k_truncate_step_blocks);
      if (take < existing.size()) {
        step.target = existing[take - 1] * bs;
        step.last_step = false;
      }
      if (!step.last_step || new_size % bs == 0) {
        step.keys.push_back(keys.inode(ino));
      } else {
        step.keys.push_back(keys.block(ino, new_size / bs));
        keep = std::to_string(new_size % bs);
      }
      for (std::size_t i = 0; i < take; ++i) {
        step.keys.push_back(keys.block(ino, existing[i]));
      }
      step.taken = take;
      first_dead = end;  // nothing more to name below
    } else if (end > first_dead && end - first_dead > k_truncate_step_blocks) {
      // Too many blocks for one script: drop the last ones first; the
      // size only goes down, so every step is a consistent file.
      first_dead = end - k_truncate_step_blocks;
      step.target = first_dead * bs;
      step.last_step = false;
      step.keys.push_back(keys.inode(ino));
    } else if (new_size % bs != 0) {
      step.keys.push_back(keys.block(ino, new_size / bs));
      keep = std::to_string(new_size % bs);
    } else {
      step.keys.push_back(keys.inode(ino));
    }
    for (std::uint64_t b = first_dead; b < end; ++b) {
      step.keys.push_back(keys.block(ino, b));
    }
    step.args = {std::to_string(step.target), std::to_string(cur), keep, (step.last_step && final_times) ? "1" : "0"};
    return {};
  }
};

}  // namespace

Status Store::truncate(Connection& c, Ino ino, std::uint64_t new_size, bool final_times, bool may_scan, bool readable) {
  std::uint64_t cur = 0;
  if (readable) {
    TRY_ASSIGN(Attr now, attr_from_read(m_keys, ino, c.command({"HGETALL", m_keys.inode(ino)})));
    cur = now.size;
  } else {
    TRY_ASSIGN(Reply sr, c.command({"HGET", m_keys.inode(ino), "size"}));
    if (sr.view().is_nil()) {
      return make_error(ENOENT, "no inode " + std::to_string(ino));
    }
    parse_u64(sr.view().str(), cur);
  }
  Shrink shrink{m_keys, ino, m_sb.block_size, new_size, final_times, may_scan};
  for (int attempt = 0; attempt < 1 << 30; ++attempt) {
    TruncateStep step;
    step.keys = {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino)};
    step.target = new_size;
    lua::ScriptId script = lua::truncate;
    if (new_size > cur) {
      // Growth has a script of its own: truncate.lua runs on a full server.
      script = lua::extend;
      step.args = {std::to_string(new_size), std::to_string(cur), final_times ? "1" : "0"};
    } else if (new_size == cur) {
      step.keys.push_back(m_keys.inode(ino));  // no boundary block
      step.args = {std::to_string(new_size), std::to_string(cur), "-1", final_times ? "1" : "0"};
    } else {
      TRY(shrink.plan(c, cur, step));
    }
    if (script.index() == lua::truncate.index()) {
      step.keys.insert(step.keys.begin() + 3, m_keys.changed());  // KEYS[4] (truncate.lua)
    }
    TRY_ASSIGN(Reply r, eval_change(c, script, step.keys, step.args));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      if (v.size() < 2 || !parse_u64(v[1].str(), cur)) {
        return make_error(EIO,
                          "inode " + std::to_string(ino) + ": bad " + std::string(lua::script_source(script).name) + " reply");
      }
      continue;
    }
    if (step.last_step) {
      return {};
    }
    shrink.existing.erase(shrink.existing.begin(), shrink.existing.begin() + static_cast<std::ptrdiff_t>(step.taken));
    cur = step.target;
  }
  return make_error(EAGAIN, "truncate: the size kept changing");
}

std::vector<std::string> Store::setattr_args(const SetAttrRequest& req, bool fields) {
  auto time_arg = [](SetAttrRequest::Time t, std::int64_t ns) -> std::string {
    switch (t) {
      case SetAttrRequest::Time::Keep:
        return "";
      case SetAttrRequest::Time::Now:
        return "now";
      case SetAttrRequest::Time::Set:
        return std::to_string(ns);
    }
    return "";
  };
  std::vector<std::string> args{req.mode ? format_mode(*req.mode) : "", req.uid ? std::to_string(*req.uid) : "",
                                req.gid ? std::to_string(*req.gid) : "", time_arg(req.atime, req.atime_ns),
                                time_arg(req.mtime, req.mtime_ns)};
  args.emplace_back(req.kill_suidgid ? "kill" : "");
  args.emplace_back(fields ? "1" : "");
  if (req.ctime_ns) {
    args.push_back(std::to_string(*req.ctime_ns));  // setattr.lua's instant
  }
  return args;
}

Result<Attr> Store::setattr(Ino ino, const SetAttrRequest& req) {
  TRY(writable());
  if (m_gathered_count.load() != 0) {
    Attr gathered;
    TRY_ASSIGN(bool absorbed, gather_setattr(ino, req, gathered));
    if (absorbed) {
      return gathered;
    }
  }
  if (m_opts.writeback) {
    Attr waiting;
    if (gather_dir_setattr(ino, req, waiting)) {
      return waiting;
    }
  }
  TRY_ASSIGN(auto c, acquire());
  if (req.size) {
    if (*req.size > k_max_file_size) {
      return make_error(EFBIG, "file size limit is 1 PiB");
    }
    TRY(truncate(*c, ino, *req.size, true, false, true));
  }
  if (!_changes_attrs(req)) {
    return attr_from_read(m_keys, ino, c->command({"HGETALL", m_keys.inode(ino)}));
  }
  TRY_ASSIGN(Reply r,
             eval_change(*c, lua::setattr, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino)}, setattr_args(req, true)));
  return attr_from_reply(ino, r.view());
}

std::size_t Store::append_writes(Connection& c, Ino ino, std::span<const WritePiece> writes, bool append, bool kill,
                                 bool fields, std::optional<std::uint64_t> known_size, const SetAttrRequest* then,
                                 const CreateCall* create) {
  const std::uint64_t bs = m_sb.block_size;
  // Pieces of k_inline_max bytes or more travel as TMP keys set in the
  // same pipeline, and so do those of k_rename_min bytes or more that
  // replace their block's whole content; smaller ones as script arguments.
  std::deque<std::string> owned;  // key names and numbers the views point into
  std::vector<std::string_view> keys;
  std::vector<std::string_view> args;
  auto keep = [&owned](std::string s) -> std::string_view { return owned.emplace_back(std::move(s)); };
  std::string_view inode_key = keep(m_keys.inode(ino));
  if (create != nullptr) {
    // create_write.lua: the create's keys and arguments in front
    keys.insert(keys.end(), create->keys.begin(), create->keys.end());
    args.push_back(keep(std::to_string(create->args.size())));
    args.insert(args.end(), create->args.begin(), create->args.end());
  } else {
    keys.push_back(keep(m_keys.sb()));
    keys.push_back(keep(m_keys.freeze()));
    keys.push_back(inode_key);
  }
  keys.push_back(keep(m_keys.changed()));
  std::uint64_t stop = 0;  // where the data ends: the size grows to it at least
  for (const WritePiece& w : writes) {
    stop = std::max<std::uint64_t>(stop, w.offset + w.data.size());
  }
  args.push_back(keep(std::to_string(stop)));
  args.push_back(append ? keep(std::to_string(writes.front().offset)) : std::string_view());
  // (write.lua's flags: '1' the reply carries the fields; 'k' the kernel
  // keeps the file's times: set_kernel_file_times)
  const bool kernel_times = m_kernel_file_times.load();
  args.push_back(fields ? (kernel_times ? "1k" : "1") : (kernel_times ? "k" : ""));
  std::size_t replies = 1;
  for (const WritePiece& w : writes) {
    std::uint64_t pos = w.offset;
    std::size_t done = 0;
    while (done < w.data.size()) {
      std::uint64_t b = pos / bs;
      std::uint64_t in = pos - b * bs;
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bs - in, w.data.size() - done));
      std::string_view piece = w.data.substr(done, n);
      keys.push_back(keep(m_keys.block(ino, b)));
      args.push_back(keep(std::to_string(in)));
      args.push_back(keep(std::to_string(n)));
      // (a block holds at most the bytes up to the file's end)
      bool whole = in == 0 && known_size && b * bs + n >= *known_size;
      if (n >= k_inline_max || (whole && n >= k_rename_min)) {
        std::string_view tmp = keep(m_keys.temp(m_opts.session, m_temp_seq.fetch_add(1) + 1));
        // (the callers read every reply before `data` goes: it is not copied)
        c.append_borrowing({"SET", tmp, piece, "PX", "600000"}, 2);
        ++replies;
        keys.push_back(tmp);
        args.emplace_back();
      } else {
        keys.push_back(inode_key);  // unused: the bytes are in ARGV
        args.push_back(piece);
      }
      pos += n;
      done += n;
    }
    if (known_size) {
      known_size = std::max<std::uint64_t>(*known_size, pos);  // (what the next piece finds)
    }
  }
  if (kill || then != nullptr) {
    args.push_back(kill ? "kill" : "");  // after the blocks' triples (write.lua)
  }
  if (then != nullptr) {
    std::vector<std::string> change = setattr_args(*then, false);
    for (std::size_t i = 0; i < 6; ++i) {  // (the seventh, the fields' flag, is write.lua's ARGV[3])
      args.push_back(keep(std::move(change[i])));
    }
    if (then->ctime_ns) {
      args.push_back(keep(std::move(change[7])));  // the change's instant
    }
  }
  c.append_eval(create != nullptr ? lua::create_write : lua::write, keys, args);
  return replies;
}

Result<std::uint64_t> Store::write(Ino ino, std::uint64_t offset, std::string_view data, bool append, WriteKill* kill) {
  TRY(writable());
  if (data.empty()) {
    return offset;
  }
  const bool kill_suidgid = kill != nullptr && kill->suidgid;
  if (m_gathered_count.load() != 0) {
    TRY_ASSIGN(bool absorbed, gather_write(ino, offset, data, append, kill));
    if (absorbed) {
      return offset;
    }
  }
  TRY_ASSIGN(auto c, acquire());
  int reorders = 0;
  for (int attempt = 0; attempt < 1 << 20; ++attempt) {
    if (offset > k_max_file_size || data.size() > k_max_file_size - offset) {
      return make_error(EFBIG, "file size limit is 1 PiB");
    }
    // The kernel asks for the attributes after a write: the script's
    // reply answers (AttrCache).
    AttrCache::Change change = m_attrs.begin({ino});
    const WritePiece one[] = {{offset, data}};
    append_writes(*c, ino, one, append, kill_suidgid, true, std::nullopt, nullptr, nullptr);
    std::optional<Error> failure;
    Reply result;
    // A TMP key's SET refused and sent again ran after write.lua, which
    // then found no bytes and refused, writing nothing (redis.hpp,
    // sent_again): the write goes again, whole.
    RunOrder order;
    while (c->pending() > 0) {
      auto r = c->read_reply();
      order.saw(*c);
      if (c->pending() == 0) {
        if (r.ok()) {
          result = std::move(r).value();
        } else {
          failure = std::move(r).error();
        }
      } else if (!r.ok() && r.code() == EIO) {
        failure = std::move(r).error();  // connection lost; an OOM is the script's to report
      }
    }
    m_attrs.end(change, failure ? std::vector<Attr>{} : _fresh_attr(ino, result.view(), 1));
    if (order.reordered() && failure && failure->code == ENOSPC && ++reorders <= 3) {
      continue;
    }
    if (failure) {
      // (NOSCRIPT, FROZEN, outages: the runner has retried what it could.)
      return std::move(*failure);
    }
    ReplyView v = result.view();
    if (_is_retry(v)) {
      // O_APPEND and the file grew elsewhere: write at its real end.
      if (v.size() < 2 || !parse_u64(v[1].str(), offset)) {
        return make_error(EIO, "bad write reply");
      }
      continue;
    }
    _note_killed(v, 2, kill_suidgid ? kill : nullptr);
    return offset;
  }
  return make_error(EAGAIN, "append: the file kept growing");
}

// The source's size first (a copy step's RETRY expects it), a round
// trip of its own: the pieces named depend on it, and cp asks for
// SSIZE_MAX bytes (a step of 1024 pieces named for a file of one block
// would cost more than the round trip). copy_range.lua checks it (RETRY
// when it moved). The copy reads the source: its access is recorded as a
// read's (relatime; best effort), by touch_atime.lua in that round trip,
// or after it when this mount found the access recorded but the times
// read show another one due.
Result<std::string> Store::copy_source(Connection& c, Ino src) {
  const bool touch = !m_opts.noatime;
  const bool carry = touch && !_access_known(m_attrs, src);
  AttrCache::Change change = carry ? m_attrs.begin({src}) : AttrCache::Change();
  c.append({"HMGET", m_keys.inode(src), "type", "size", "atime", "mtime", "ctime"});
  if (carry) {
    _queue_touch(c, m_keys, src);
  }
  auto meta = c.read_reply();
  std::optional<std::int64_t> atime;
  if (carry) {
    auto t = c.read_reply();
    atime = _touched(m_attrs, src, change, t.ok() ? std::move(t).value() : Reply());
  }
  TRY(meta);
  ReplyView m = meta->view();
  if (!m.is_array() || m.size() != 5) {
    return make_error(EIO, "inode " + std::to_string(src) + ": " + _reply_problem(m, "a hash"));
  }
  if (m[0].is_nil()) {
    return make_error(ESTALE, "inode " + std::to_string(src) + " was removed");
  }
  if (touch && !carry && _access_due(m)) {
    atime = _touch_now(c, m_keys, m_attrs, src);
  }
  if (atime && m_gathered_count.load() != 0) {
    gathered_accessed(src, *atime);  // a file that gathers on shows the access too
  }
  return std::string(m[1].is_string() ? m[1].str() : "");
}

// The pieces of one copy_range step: each within one block of the
// source and one of the destination, at most k_copy_pieces of them.
static constexpr std::size_t k_copy_pieces = 1024;

Result<std::uint64_t> Store::copy_range(Ino src, std::uint64_t src_offset, Ino dst, std::uint64_t dst_offset,
                                        std::uint64_t length, WriteKill* kill) {
  TRY(writable());
  if (dst_offset >= k_max_file_size) {
    return make_error(EFBIG, "file size limit is 1 PiB");
  }
  if (m_gathered_count.load() != 0) {
    TRY(settle(src, true));  // (it is only read)
    TRY(settle(dst));        // what this mount wrote lands first, and the times are the server's again
  }
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(std::string expected, copy_source(*c, src));
  const std::uint64_t bs = m_sb.block_size;
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    std::uint64_t size = 0;
    if (!parse_u64(expected, size) || size > k_max_file_size) {
      return make_error(EIO, "inode " + std::to_string(src) + ": bad size '" + _bounded(expected) + "'");
    }
    if (src_offset >= size || length == 0) {
      return 0;
    }
    std::uint64_t n = std::min({length, size - src_offset, k_max_file_size - dst_offset});
    std::vector<std::string> keys{m_keys.sb(), m_keys.freeze(), m_keys.inode(src), m_keys.inode(dst), m_keys.changed()};
    std::vector<std::string> args{expected, "", std::to_string(bs), kill != nullptr && kill->suidgid ? "kill" : "",
                                  m_opts.writeback ? "k" : ""};
    std::uint64_t done = 0;
    for (std::size_t pieces = 0; done < n && pieces < k_copy_pieces; ++pieces) {
      const std::uint64_t s = src_offset + done;
      const std::uint64_t d = dst_offset + done;
      const std::uint64_t len = std::min({n - done, bs - s % bs, bs - d % bs});
      keys.push_back(m_keys.block(src, s / bs));
      keys.push_back(m_keys.block(dst, d / bs));
      args.push_back(std::to_string(s % bs));
      args.push_back(std::to_string(d % bs));
      args.push_back(std::to_string(len));
      done += len;
    }
    args[1] = std::to_string(dst_offset + done);
    TRY_ASSIGN(Reply r, eval_change(*c, lua::copy_range, keys, args));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      if (v.size() < 2) {
        return make_error(EIO, "inode " + std::to_string(src) + ": bad copy_range reply");
      }
      expected = std::string(v[1].str());
      continue;
    }
    _note_killed(v, 1, kill);
    return done;
  }
  return make_error(EAGAIN, "copy_range: the source's size kept changing");
}

}  // namespace redisfs
