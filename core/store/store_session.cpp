// Store, its sessions: the opens a mount records, orphans (unlinked while
// open) and their purge, the sweeps of crashed mounts' opens and records,
// the heartbeat and the end of a session.
#include "store/store.hpp"

#include <algorithm>

#include "redis/scan.hpp"
#include "snap/snapshot.hpp"
#include "store/store_internal.hpp"
#include "util/text.hpp"

namespace redisfs {

using namespace store_internal;

Status Store::open_file(Ino ino, Seen* seen) {
  if (seen != nullptr) {
    seen->reset();
  }
  if (m_opts.read_only) {
    // Nothing to count: a read-only mount never unlinks. What it sees of
    // the file, one read: a file another mount removed and freed cannot
    // be opened here either (the VFS looks again).
    if (seen == nullptr) {
      return {};
    }
    TRY_ASSIGN(auto c, acquire());
    Result<Attr> attr = attr_from_read(m_keys, ino, c->command({"HGETALL", m_keys.inode(ino)}));
    if (!attr && attr.error().fault != Fault::None) {
      return attr.error();  // (the server did not answer)
    }
    if (!attr && attr.error().code == ENOENT) {
      return make_error(ESTALE, "inode " + std::to_string(ino) + ": the file was removed");
    }
    opened_attr(ino, std::move(attr), *seen);
    return {};
  }
  const bool see = seen != nullptr && !m_opts.writeback && !(m_gathered_count.load() != 0 && gathering(ino));
  TRY_ASSIGN(auto c, acquire());  // (a second open of a file whose create waits: the create first)
  if (!see) {
    TRY(c->eval(lua::open, {m_keys.inode(ino), m_keys.open(ino)}, {m_opts.session}));
    return {};
  }
  TRY_ASSIGN(Reply r, c->eval(lua::open, {m_keys.inode(ino), m_keys.open(ino)}, {m_opts.session, "1"}));
  opened_attr(ino, open_fields(ino, r.view()), *seen);
  return {};
}

Result<Attr> Store::open_fields(Ino ino, ReplyView v) {
  return v.is_array() && v.size() == 2 ? attr_from_reply(ino, v[1]) : make_error(EIO, "bad open reply");
}

void Store::opened_attr(Ino ino, Result<Attr> attr, Seen& seen) {
  if (!attr) {
    return;  // (a damaged inode: its reads answer for it)
  }
  // What this mount holds of the file for getattr may be as old as the
  // kernel's own cache; when the open shows a change since (ctime, mtime
  // or size), it goes (the kernel, told to drop its own, asks the server).
  if (std::optional<Attr> held = m_attrs.basis(ino);
      held && (held->size != attr->size || held->ctime_ns != attr->ctime_ns || held->mtime_ns != attr->mtime_ns)) {
    m_attrs.forget(ino);
  }
  seen = std::move(attr).value();
}

Result<bool> Store::release_file(Ino ino) {
  if (m_opts.read_only) {
    return false;
  }
  if (m_gathered_count.load() != 0) {
    // No FLUSH came: send what waits before the file may be freed. (The
    // daemon's release flushes first and logs a failure; the open count
    // goes whatever happens here.)
    (void)flush(ino);
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Reply r, c->eval(lua::release, {m_keys.orphans(), m_keys.open(ino), m_keys.inode(ino)},
                              {m_opts.session, std::to_string(ino)}));
  std::vector<Result<Released>> done(1, Released::held);
  const Release one_file[] = {{ino}};
  release_outcome(std::move(r), {0}, one_file, done);
  TRY_ASSIGN(Released one, std::move(done[0]));
  return one == Released::purge;
}

std::vector<Result<Store::Released>> Store::release_files(std::span<const Release> files) {
  std::vector<Result<Released>> out;
  if (m_opts.read_only) {
    out.assign(files.size(), Released::held);
    return out;
  }
  auto c = m_pool.acquire();
  if (!c) {
    out.assign(files.size(), c.error());
    return out;
  }
  ReleasePlan plan = queue_releases(**c, files);
  std::vector<Result<Reply>> replies;
  replies.reserve(plan.size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    replies.push_back((*c)->read_reply());
  }
  return release_outcomes(plan, replies, files);
}

// Runs of plain releases go to release.lua, up to k_release_batch files a
// script; an orphan's release is a release_orphan.lua of its own, a queued
// purge a purge.lua. The commands keep the order of `files`: a run is cut
// before an orphan's release or a purge.
Store::ReleasePlan Store::queue_releases(Connection& c, std::span<const Release> files) {
  ReleasePlan plan;
  const std::string orphans = m_keys.orphans();
  std::vector<std::size_t> run;
  std::vector<std::string> run_keys;
  std::vector<std::string> run_args;
  auto send_run = [&] {
    if (run.empty()) {
      return;
    }
    std::vector<std::string_view> k(run_keys.begin(), run_keys.end());
    std::vector<std::string_view> a(run_args.begin(), run_args.end());
    c.append_eval(lua::release, k, a);
    plan.push_back(std::move(run));
    run.clear();
  };
  for (std::size_t i = 0; i < files.size(); ++i) {
    const Release& f = files[i];
    const std::string num = std::to_string(f.ino);
    if (f.purge) {
      send_run();
      // purge.lua, as Store::purge's first attempt
      const std::string sb = m_keys.sb();
      const std::string freeze = m_keys.freeze();
      const std::string inode = m_keys.inode(f.ino);
      const std::string xattr = m_keys.xattr(f.ino);
      const std::string dir = m_keys.dir(f.ino);
      const std::string open = m_keys.open(f.ino);
      const std::string_view keys[] = {sb, freeze, inode, xattr, orphans, dir, open};
      const std::string_view args[] = {num, m_opts.session};
      c.append_eval(lua::purge, keys, args);
      plan.push_back({i});
      continue;
    }
    if (!f.orphan) {
      if (run.empty()) {
        run_keys.assign({orphans});
        run_args.assign({m_opts.session});
      }
      run.push_back(i);
      run_keys.push_back(m_keys.open(f.ino));
      run_keys.push_back(m_keys.inode(f.ino));
      run_args.push_back(num);
      if (run.size() == k_release_batch) {
        send_run();
      }
      continue;
    }
    send_run();
    // release_orphan.lua: what unlink.lua names to free a file at once
    std::vector<std::string> keys{m_keys.inode(f.ino), orphans, m_keys.sb(), m_keys.freeze(), m_keys.xattr(f.ino)};
    std::vector<std::string> args{m_opts.session, num};
    push_free_keys(f.ino, keys, args);                              // OPEN, then the first blocks
    std::rotate(keys.begin(), keys.begin() + 5, keys.begin() + 6);  // OPEN first
    std::vector<std::string_view> k(keys.begin(), keys.end());
    std::vector<std::string_view> a(args.begin(), args.end());
    c.append_eval(lua::release_orphan, k, a);
    plan.push_back({i});
  }
  send_run();
  return plan;
}

std::vector<Result<Store::Released>> Store::release_outcomes(const ReleasePlan& plan,
                                                             std::vector<Result<Reply>>& replies,
                                                             std::span<const Release> files) {
  std::vector<Result<Released>> out(files.size(), Released::held);
  for (std::size_t i = 0; i < plan.size(); ++i) {
    Result<Reply> r = i < replies.size() ? std::move(replies[i])
                                         : Result<Reply>(make_error(EIO, "redis: a release's reply is missing"));
    release_outcome(std::move(r), plan[i], files, out);
  }
  return out;
}

void Store::release_outcome(Result<Reply> r, const std::vector<std::size_t>& at, std::span<const Release> files,
                            std::vector<Result<Released>>& out) {
  if (!r) {
    for (std::size_t f : at) {
      out[f] = r.error();
    }
    return;
  }
  ReplyView v = r->view();
  if (files[at.at(0)].purge) {
    // purge.lua, one file: {'OK'} or {'HELD', session}: done; {'RETRY'...}:
    // Store::purge goes on
    out[at[0]] = v.is_array() && v.size() >= 1 && (v[0].str() == "OK" || v[0].str() == "HELD") ? Released::done
                                                                                               : Released::purge;
    return;
  }
  if (!v.is_array()) {
    // release_orphan.lua, one file: 'FREED' or 'HELD', else 1 or 0
    out[at[0]] = v.is_string() ? Released::done : v.integer() == 1 ? Released::purge : Released::held;
    return;
  }
  // release.lua: one answer per file, or an error for a file it could not
  // release
  for (std::size_t j = 0; j < at.size(); ++j) {
    if (j >= v.size()) {
      out[at[j]] = make_error(EIO, "redis: release.lua answered " + std::to_string(v.size()) + " of " +
                                       std::to_string(at.size()) + " files");
      continue;
    }
    ReplyView one = v[j];
    if (one.type() == ReplyView::Type::Error) {
      std::string_view e = one.str();
      out[at[j]] = make_error(errno_for_redis_error(e), "redis: " + std::string(e));
    } else {
      out[at[j]] = one.integer() == 1 ? Released::purge : Released::held;
    }
  }
}

// How many blocks push_free_keys names for a file whose attributes this
// mount last saw are `known`.
static std::uint64_t _free_blocks(const std::optional<Attr>& known, std::uint32_t block_size) {
  if (!known) {
    return k_unlink_free_blocks;
  }
  if (!known->is_reg()) {
    return 0;
  }
  std::uint64_t need = known->size / block_size + (known->size % block_size != 0 ? 1 : 0);
  return need <= k_unlink_free_blocks ? need : 0;  // too big: an orphan whatever KEYS name
}

void Store::push_free_keys(Ino ino, std::vector<std::string>& keys, std::vector<std::string>& args) {
  keys.push_back(m_keys.open(ino));
  // Each key costs the server a string to parse, hash and hand to Lua
  // (about 1,200 instructions: an rm -rf of 3000-byte files, naming one
  // block where it named 16, cost redis-server 5% less): a small file's
  // unlink names only its blocks.
  const std::uint64_t blocks = ino == 0 ? 0 : _free_blocks(m_attrs.basis(ino), m_sb.block_size);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    keys.push_back(m_keys.block(ino, b));
  }
  args.push_back(std::to_string(blocks * m_sb.block_size));
}

Status Store::purge(Ino ino) {
  if (m_opts.read_only) {
    return {};
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  // The first attempt guesses that no mount holds the file open (a
  // directory, or a file closed everywhere: one round trip); purge.lua
  // answers RETRY when the holders differ, and they are read then.
  bool read_holders = false;
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    std::vector<std::string> keys{m_keys.sb(),      m_keys.freeze(), m_keys.inode(ino), m_keys.xattr(ino),
                                  m_keys.orphans(), m_keys.dir(ino), m_keys.open(ino)};
    std::vector<std::string> args{std::to_string(ino), m_opts.session};
    if (read_holders) {
      TRY_ASSIGN(Reply holders, c->command({"HKEYS", m_keys.open(ino)}));
      for (std::size_t i = 0; i < holders.view().size(); ++i) {
        std::string session(holders.view()[i].str());
        keys.push_back(m_keys.mount(session));
        args.push_back(std::move(session));
      }
    }
    TRY_ASSIGN(Reply r, eval_change(*c, lua::purge, keys, args));
    ReplyView v = r.view();
    if (!_is_retry(v)) {
      return {};  // purged, relinked, or handed to the mount that holds it open
    }
    if (v.size() >= 2) {
      TRY(truncate(*c, ino, 0, false, true));
    } else {
      read_holders = true;
    }
  }
  return make_error(EAGAIN, "purge of inode " + std::to_string(ino) + " did not finish");
}

// The ORPHANS hash: each orphan and the session of the mount that holds it.
static Result<std::vector<std::pair<Ino, std::string>>> _orphans(Connection& c, const Keys& keys) {
  auto r = c.command({"HGETALL", keys.orphans()});
  if (!r.ok() && !c.broken() && is_wrong_type(r.error())) {
    // (the server's error names no key)
    return make_error(EIO, keys.orphans() + " is not a hash: the filesystem is damaged (`redisfs-snap fsck " +
                               keys.prefix() + "` repairs it)");
  }
  TRY(r);
  ReplyView v = r->view();
  std::vector<std::pair<Ino, std::string>> all;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    std::uint64_t ino = 0;
    if (parse_u64(v[i].str(), ino)) {
      all.emplace_back(ino, std::string(v[i + 1].str()));
    }
  }
  return all;
}

Result<std::vector<Ino>> Store::own_orphans() {
  if (m_opts.read_only) {
    return std::vector<Ino>{};
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(auto all, _orphans(*c, m_keys));
  std::vector<Ino> own;
  for (const auto& [ino, session] : all) {
    if (session == m_opts.session) {
      own.push_back(ino);
    }
  }
  return own;
}

Result<std::size_t> Store::hold_opens(std::span<const std::pair<Ino, std::uint32_t>> held) {
  if (m_opts.read_only) {
    return std::size_t{0};
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  std::size_t raised = 0;
  for (std::size_t from = 0; from < held.size(); from += k_release_batch) {
    const auto part = held.subspan(from, std::min(k_release_batch, held.size() - from));
    std::vector<std::string> keys;
    std::vector<std::string> args{m_opts.session};
    keys.reserve(2 * part.size());
    args.reserve(1 + part.size());
    for (const auto& [ino, count] : part) {
      keys.push_back(m_keys.inode(ino));
      keys.push_back(m_keys.open(ino));
      args.push_back(std::to_string(count));
    }
    TRY_ASSIGN(Reply r, c->eval(lua::hold_opens, keys, args));
    raised += static_cast<std::size_t>(r.view().integer());
  }
  return raised;
}

Result<std::size_t> Store::purge_dead_orphans(std::size_t* done) {
  if (m_opts.read_only) {
    return std::size_t{0};
  }
  std::vector<Ino> dead;
  {
    TRY_ASSIGN(auto c, m_pool.acquire());
    TRY_ASSIGN(auto all, _orphans(*c, m_keys));
    for (const auto& [ino, session] : all) {
      c->append({"EXISTS", m_keys.mount(session)});
    }
    TRY_ASSIGN(auto alive, c->read_all());
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].second != m_opts.session && alive[i].view().integer() == 0) {
        dead.push_back(all[i].first);
      }
    }
  }
  // One orphan that cannot be purged (damaged: fsck's) does not keep the
  // others: every one is tried, and the first failure is reported.
  Status first;
  std::size_t purged = 0;
  for (Ino ino : dead) {
    Status st = purge(ino);
    if (st) {
      ++purged;
    } else if (first) {
      first = std::move(st);
    }
  }
  if (done != nullptr) {
    *done = purged;
  }
  TRY(first);
  return purged;
}

// Up to max_scan_calls SCAN calls of the OPEN keys from `cursor` on (which
// they move, with the server it is for: a cursor means nothing to another
// server process, so a pass goes on there from the start, ScanWalk): the
// inodes found (perhaps twice). `pass_done` (may be null) is set when the
// pass came to its end.
static Result<std::vector<Ino>> _scan_opens(Connection& c, const Keys& keys, std::string& cursor, std::string& server,
                                            std::size_t max_scan_calls, bool* pass_done) {
  std::vector<Ino> found;
  ScanWalk walk(c, {"SCAN"}, {"MATCH", keys.match_opens(), "COUNT", "1000"});
  walk.resume(cursor, server);
  for (std::size_t call = 0; call < std::max<std::size_t>(max_scan_calls, 1); ++call) {
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      break;
    }
    for (std::size_t i = 0; i < page->size(); ++i) {
      auto rel = keys.relative((*page)[i].str());
      ParsedKey k = rel ? parse_relative_key(*rel) : ParsedKey{};
      if (k.kind == KeyKind::Open) {
        found.push_back(k.ino);
      }
    }
    if (walk.done()) {
      if (pass_done != nullptr) {
        *pass_done = true;
      }
      break;
    }
  }
  cursor = walk.cursor();
  server = walk.server();
  return found;
}

// The sessions other than `own` holding each file of `found` open.
static std::vector<std::vector<std::string>> _open_holders(Connection& c, const Keys& keys,
                                                           const std::vector<Ino>& found, const std::string& own) {
  for (Ino ino : found) {
    c.append({"HKEYS", keys.open(ino)});
  }
  std::vector<std::vector<std::string>> holders(found.size());
  for (std::size_t i = 0; i < found.size(); ++i) {
    auto r = c.read_reply();
    if (!r.ok() || !r->view().is_array()) {
      continue;  // gone meanwhile, or not a hash (fsck reports that)
    }
    for (std::size_t j = 0; j < r->view().size(); ++j) {
      std::string session(r->view()[j].str());
      if (session != own) {
        holders[i].push_back(std::move(session));
      }
    }
  }
  return holders;
}

Result<std::size_t> Store::sweep_dead_opens(std::size_t max_scan_calls, bool* pass_done, std::size_t* done) {
  if (pass_done != nullptr) {
    *pass_done = false;
  }
  if (m_opts.read_only) {
    return std::size_t{0};
  }
  std::lock_guard lock(m_sweep_mutex);
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(std::vector<Ino> found,
             _scan_opens(*c, m_keys, m_sweep_cursor, m_sweep_server, max_scan_calls, pass_done));
  if (found.empty()) {
    return std::size_t{0};
  }
  // The sessions holding each file open, then which of them are alive.
  std::vector<std::vector<std::string>> holders = _open_holders(*c, m_keys, found, m_opts.session);
  for (const auto& list : holders) {
    for (const std::string& session : list) {
      c->append({"EXISTS", m_keys.mount(session)});
    }
  }
  TRY_ASSIGN(auto alive, c->read_all());
  std::size_t at = 0;
  std::size_t removed = 0;
  std::vector<Ino> free;
  Status first;
  for (std::size_t i = 0; i < found.size(); ++i) {
    std::vector<std::string> keys{m_keys.open(found[i]), m_keys.inode(found[i]), m_keys.orphans()};
    std::vector<std::string> args{std::to_string(found[i])};
    for (const std::string& session : holders[i]) {
      if (at < alive.size() && alive[at].view().integer() == 0) {
        keys.push_back(m_keys.mount(session));
        args.push_back(session);
      }
      ++at;
    }
    if (args.size() == 1) {
      continue;
    }
    // A key the script refuses (damaged: fsck's) does not keep the others.
    auto r = c->eval(lua::sweep_open, keys, args);
    if (!r) {
      if (c->broken()) {
        return std::move(r).error();
      }
      if (first) {
        first = std::move(r).error();
      }
      continue;
    }
    ReplyView v = r->view();
    if (v.is_array() && v.size() == 2) {
      removed += static_cast<std::size_t>(std::max<long long>(v[0].integer(), 0));
      if (v[1].integer() == 1) {
        free.push_back(found[i]);
      }
    }
  }
  for (Ino ino : free) {
    Status st = purge(ino);
    if (!st && first) {
      first = std::move(st);
    }
  }
  if (done != nullptr) {
    *done = removed;
  }
  TRY(first);
  return removed;
}

Result<std::size_t> Store::drop_own_opens(std::size_t max_scan_calls) {
  if (m_opts.read_only) {
    return std::size_t{0};
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  ScanWalk walk(*c, {"SCAN"}, {"MATCH", m_keys.match_opens(), "COUNT", "1000"});
  std::size_t removed = 0;
  for (std::size_t call = 0; call < std::max<std::size_t>(max_scan_calls, 1); ++call) {
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      break;
    }
    for (std::size_t i = 0; i < page->size(); ++i) {
      c->append({"HDEL", (*page)[i].str(), m_opts.session});  // HDEL runs on a full server too
    }
    while (c->pending() > 0) {
      auto done = c->read_reply();
      if (done.ok() && done->view().integer() > 0) {
        ++removed;
      }
    }
  }
  return removed;
}

Result<std::int64_t> Store::sync_asked() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  auto r = c->command({"GET", m_keys.sync()});
  if (!r) {
    if (c->broken()) {
      return std::move(r).error();
    }
    return std::int64_t{0};  // not a string: fsck's to report
  }
  if (r->view().is_nil()) {
    return std::int64_t{0};
  }
  const std::string_view v = r->view().str();
  std::uint64_t asked = 0;
  if (!v.starts_with(k_sync_ask) || !parse_u64(v.substr(k_sync_ask.size()), asked) || asked == 0 ||
      asked > static_cast<std::uint64_t>(INT64_MAX)) {
    return std::int64_t{0};
  }
  return static_cast<std::int64_t>(asked);
}

Status Store::sync_answered(std::int64_t asked) {
  TRY_ASSIGN(auto c, m_pool.acquire());
  // XX: a request that lapsed is not made again; KEEPTTL: the answer lapses
  // with it.
  TRY(c->command({"SET", m_keys.sync(), std::string(k_sync_done) + std::to_string(asked), "XX", "KEEPTTL"}));
  return {};
}

bool Store::opens_pass_due(bool crash_seen) {
  std::lock_guard lock(m_sweep_mutex);
  if (m_sweep_cursor != "0") {
    return true;  // a pass goes on where the last call stopped
  }
  const auto recheck = std::chrono::duration<double>(m_opts.sweep_recheck_seconds);
  if (!crash_seen && !m_sweep_wanted && std::chrono::steady_clock::now() - m_sweep_pass_ended < recheck) {
    return false;
  }
  m_sweep_wanted = false;
  return true;
}

void Store::opens_pass_ran(bool failed, bool pass_done) {
  std::lock_guard lock(m_sweep_mutex);
  if (failed) {
    m_sweep_wanted = true;  // a file it could not clear: the next call looks again
  }
  if (pass_done) {
    m_sweep_pass_ended = std::chrono::steady_clock::now();
  }
}

std::string Store::SweepResult::said() const {
  return counted(opens, "open count", "open counts") + ", " + counted(orphans, "orphan inode", "orphan inodes") + ", " +
         counted(registrations, "registration", "registrations");
}

Result<Store::SweepResult> Store::sweep_dead_mounts(std::size_t max_scan_calls) {
  SweepResult done;
  // Each sweep runs whatever the one before met (a damaged orphan must not
  // keep the dead mounts' open counts forever); the first failure is
  // reported after all three.
  Status first;
  auto note = [&](auto result) {
    if (!result && first) {
      first = Status(std::move(result).error());
    }
  };
  // The first failure, saying what was cleared all the same (the daemon
  // logs it once per run of failures).
  auto finish = [&]() -> Result<SweepResult> {
    if (first) {
      return done;
    }
    Error e = first.error();
    e.message += " (cleared all the same: " + done.said() + ")";
    return e;
  };
  note(purge_dead_orphans(&done.orphans));
  if (m_opts.read_only) {
    return finish();  // (a read-only mount records no opens, and drops nothing)
  }
  // The mounts' register (keys.hpp) keeps a crashed mount's field: drop it,
  // or every copy, delete and list would read it again. First, so that a
  // crash it finds starts the pass of the open counts in this call.
  {
    TRY_ASSIGN(auto c, m_pool.acquire());
    auto listed = c->command({"HKEYS", m_keys.mounts()});
    if (!listed.ok() && c->broken()) {
      return std::move(listed).error();
    }
    std::vector<std::string> keys{m_keys.mounts()};
    std::vector<std::string> args;
    for (std::size_t i = 0; listed.ok() && i < listed->view().size(); ++i) {  // (not a hash: fsck's to report)
      std::string id(listed->view()[i].str());
      if (id != m_opts.session) {
        keys.push_back(m_keys.mount(id));
        args.push_back(std::move(id));
      }
    }
    if (!args.empty()) {
      auto pruned = c->eval(lua::prune_mounts, keys, args);
      if (!pruned.ok() && c->broken()) {
        return std::move(pruned).error();
      }
      if (pruned.ok()) {
        done.registrations = static_cast<std::size_t>(std::max(0LL, pruned->view().integer()));
      }
      note(std::move(pruned));
    }
  }
  if (opens_pass_due(done.registrations > 0)) {
    bool pass_done = false;
    auto swept = sweep_dead_opens(max_scan_calls, &pass_done, &done.opens);
    opens_pass_ran(!swept.ok(), pass_done);
    note(std::move(swept));
  }
  return finish();
}

// A refused registration: `held` (a writeback mount `id` holds the
// filesystem) or, for a writeback mount, mount `id` is live. `what`: what
// MOUNTS says of that mount (host, pid, mount point).
static Error _admission_error(const std::string& prefix, bool held, std::string_view id, std::string_view what) {
  const std::string_view info = mount_info(what);
  std::string who = "mount " + std::string(id) + (info.empty() ? "" : " (" + std::string(info) + ")");
  if (held) {
    // A claim whose mount is not in the register may be stale: one with a
    // TTL lapses by itself, one that never lapses is fsck's to remove.
    std::string stale = what.empty() ? " (it is not in the mounts' register: if no such mount runs, the claim lapses "
                                       "within seconds, or `redisfs-snap fsck --repair " +
                                           prefix + "` removes one that never expires)"
                                     : "";
    return make_error(EBUSY, "'" + prefix + "' is held by the writeback " + who +
                                 ", which must be the only mount; unmount it first" + stale);
  }
  return make_error(EBUSY, "cannot mount '" + prefix + "' with -o writeback: it is mounted by " + who +
                               "; a writeback mount must be the only one");
}

// The same refusal of a mount that was registered (session_taken): the
// other mount came while this one's session had lapsed, and keeps the
// filesystem; this one is the one to unmount.
static Error _taken_error(const std::string& prefix, bool held, std::string_view id, std::string_view what) {
  const std::string_view info = mount_info(what);
  std::string who = "mount " + std::string(id) + (info.empty() ? "" : " (" + std::string(info) + ")");
  return make_error(
      EBUSY, "the session of this mount lapsed (the server was out of reach, or lost it) and " +
                 (held ? "the writeback " + who + " took '" + prefix + "' meanwhile"
                       : who + " came up meanwhile on '" + prefix + "', which this writeback mount must hold alone"));
}

// What a registration's {'SNAPSHOT'}, {'READER', id, what} or {'WRITTEN',
// why} answer means (session.lua).
Error Store::registration_refusal(Connection& c, ReplyView v) {
  const std::string& prefix = m_keys.prefix();
  if (v[0].str() == "WRITTEN") {
    m_session_taken = true;
    if (v.size() > 1 && v[1].str() == "changed") {
      return make_error(EBUSY, "the snapshot '" + prefix +
                                   "', whose reads this read-only mount keeps, was changed under it (fsck --repair "
                                   "--force, or a writable mount by an older redisfs); mount it again");
    }
    return make_error(EBUSY,
                      "the session of this mount lapsed (the server was out of reach, or lost it), and the "
                      "snapshot '" +
                          prefix +
                          "', whose reads this read-only mount keeps, was mounted "
                          "writable (--writable-snapshot) meanwhile; mount it again");
  }
  if (v[0].str() == "SNAPSHOT") {
    (void)load_superblock(c);  // (for its description; the refusal stands without it)
    return snapshot_rw_refusal();
  }
  const std::string_view info = mount_info(v.size() > 2 ? v[2].str() : "");
  std::string who = "mount " + std::string(v[1].str()) + (info.empty() ? "" : " (" + std::string(info) + ")");
  return make_error(EBUSY, "cannot mount '" + prefix + "' writable: it is a read-only snapshot, and the read-only " +
                               who +
                               " of it keeps what it read for an hour (a snapshot does not change); "
                               "unmount it first" +
                               session_lapse_hint(c, m_keys.mount(v[1].str()), prefix));
}

Error Store::snapshot_rw_refusal() const {
  return make_error(EROFS, "prefix '" + m_keys.prefix() + "' is " + describe_snapshot(m_keys.prefix(), m_sb) +
                               ": mount it with --read-only (or --writable-snapshot to change it anyway)");
}

// The other fields of MOUNTS, as session.lua's KEYS and ARGV (each id with
// its MOUNT:<id>). A register of another type names none: session.lua
// refuses the mount, naming the key.
static Status _name_other_mounts(Connection& c, const Keys& keys, const std::string& me, std::vector<std::string>& kv,
                                 std::vector<std::string>& args) {
  Result<Reply> ids = c.command({"HKEYS", keys.mounts()});
  if (!ids.ok()) {
    return c.broken() ? Status(std::move(ids).error()) : Status{};
  }
  for (std::size_t i = 0; ids->view().is_array() && i < ids->view().size(); ++i) {
    std::string id(ids->view()[i].str());
    if (id != me) {
      kv.push_back(keys.mount(id));
      args.push_back(std::move(id));
    }
  }
  return {};
}

Status Store::heartbeat() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  std::string info = m_opts.session_info.empty() ? std::string(m_opts.read_only ? "ro" : "rw") : m_opts.session_info;
  const char* mode = m_opts.writeback ? "writeback" : !m_opts.read_only ? "shared" : m_frozen ? "frozen" : "reader";
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    std::vector<std::string> keys{m_keys.mount(m_opts.session), m_keys.mounts(), m_keys.writeback(), m_keys.sb(),
                                  m_keys.changed()};
    std::vector<std::string> args{
        mount_registration(k_format_version, info), std::to_string(k_session_ttl_ms),    m_opts.session, mode,
        std::to_string(k_format_version),           m_opts.allow_snapshot_rw ? "rw" : ""};
    // (a writable mount's first registration: the readers of a snapshot)
    if (m_opts.writeback || (!m_opts.read_only && !m_registered)) {
      TRY(_name_other_mounts(*c, m_keys, m_opts.session, keys, args));
    }
    TRY_ASSIGN(Reply r, c->eval(lua::session, keys, args));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      continue;  // a mount registered between HKEYS and the script
    }
    if (v.is_array() && v.size() >= 1 && v[0].str() != "HELD" && v[0].str() != "BUSY") {
      return registration_refusal(*c, v);
    }
    if (v.is_array() && v.size() >= 2) {
      // (a claim naming a mount the register does not list is no mount
      // that took the filesystem: damage, which fsck repairs, or a stale
      // one that lapses; BUSY names a live session key)
      const bool held = v[0].str() == "HELD";
      const std::string_view what = v.size() > 2 ? v[2].str() : "";
      if (m_registered && (!held || !what.empty())) {
        m_session_taken = true;
        return _taken_error(m_keys.prefix(), held, v[1].str(), what);
      }
      Error refused = _admission_error(m_keys.prefix(), held, v[1].str(), what);
      if (!held || !what.empty()) {  // (the claim lapses with the holder's session)
        refused.message +=
            session_lapse_hint(*c, held ? m_keys.writeback() : m_keys.mount(v[1].str()), m_keys.prefix());
      }
      return refused;
    }
    m_registered = true;
    if (!m_opts.read_only) {
      // The changes set the outcome records' TTL only when a connection's
      // field is new; a live mount keeps them (redis.hpp).
      std::string ttl = std::to_string(op_log_ttl(m_pool.url()).count());
      TRY(c->command({"PEXPIRE", m_keys.op_log(m_opts.session), ttl}));
    }
    return {};
  }
  return make_error(EAGAIN, "cannot register the mount of '" + m_keys.prefix() + "': mounts keep registering");
}

Status Store::check_not_held(Connection& c) {
  TRY_ASSIGN(Reply holder, c.command({"GET", m_keys.writeback()}));
  if (holder.view().is_nil()) {
    return {};
  }
  TRY_ASSIGN(Reply what, c.command({"HGET", m_keys.mounts(), holder.view().str()}));
  return _admission_error(m_keys.prefix(), true, holder.view().str(), what.view().is_nil() ? "" : what.view().str());
}

Status Store::end_session() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  c->append({"DEL", m_keys.mount(m_opts.session), m_keys.op_log(m_opts.session)});
  c->append({"HDEL", m_keys.mounts(), m_opts.session});
  // Each step whatever the others answer: a register damaged by someone
  // else (MOUNTS not a hash: fsck's) must not keep the writeback claim up,
  // refusing every mount until it lapses. The first error.
  Status first;
  for (Result<Reply>& r : c->read_replies(2)) {
    if (!r.ok() && first.ok()) {
      first = std::move(r).error();
    }
  }
  if (m_opts.writeback) {
    if (auto r = c->eval(lua::writeback_release, {m_keys.writeback()}, {m_opts.session}); !r.ok() && first.ok()) {
      first = std::move(r).error();
    }
  }
  m_registered = false;
  return first;
}

}  // namespace redisfs
