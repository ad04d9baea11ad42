#include "snap/install.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <functional>
#include <thread>
#include <vector>

#include "redis/scan.hpp"
#include "snap/snapshot.hpp"
#include "store/key_walk.hpp"
#include "store/superblock.hpp"
#include "util/text.hpp"

namespace redisfs {

namespace {

constexpr auto k_refresh_every = std::chrono::milliseconds(k_reservation_ttl_ms / 6);
constexpr std::string_view k_scan_count = "1000";
constexpr long long k_index_page = 1000;

std::string _host_pid() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof host - 1) != 0) {
    host[0] = '?';
  }
  return std::string(host) + ":" + std::to_string(getpid());
}

}  // namespace

// ---------------------------------------------------------------- reservation

Reservation::Reservation(Pool& pool, std::string key, std::string token, std::chrono::steady_clock::time_point extended)
    : m_pool(pool), m_key(std::move(key)), m_token(std::move(token)), m_extended(extended) {
  m_thread = std::thread([this] { refresh_loop(); });
}

Reservation::~Reservation() { (void)release(); }

Result<std::optional<std::string>> reservation_holder(Connection& c, const Keys& keys) {
  Result<Reply> got = c.command({"GET", keys.reserved()});
  if (!got.ok() && got.error().fault == Fault::None) {
    // (the server's refusal: no string, so no tool's reservation; fsck
    // reports it, and its repair replaces it)
    return std::optional<std::string>();
  }
  TRY_ASSIGN(Reply r, std::move(got));
  if (r.view().is_nil()) {
    return std::optional<std::string>();
  }
  std::string_view v = r.view().str();
  // "<hex> <what> by <host>:<pid>": show the what and who (bounded: any
  // client can write the key).
  auto space = v.find(' ');
  std::string who = space == std::string_view::npos ? std::string("another tool") : shown(v.substr(space + 1), 120, 0);
  return std::optional<std::string>(who);
}

// The refusal of a reservation someone else holds.
static Error _reserved_error(Connection& c, const Keys& keys) {
  auto holder = reservation_holder(c, keys);
  if (!holder.ok()) {
    return std::move(holder).error();
  }
  return make_error(EBUSY, "prefix '" + keys.prefix() + "' is reserved by a running " +
                               holder->value_or(std::string("tool")) + "; try again when it ends" +
                               endless_lease_hint(c, keys.reserved(), keys.prefix()));
}

static std::string _token(std::string_view what) {
  return random_hex(8) + " " + std::string(what) + " by " + _host_pid();
}

Result<std::unique_ptr<Reservation>> Reservation::acquire(Pool& pool, const Keys& keys, std::string_view what) {
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  std::string key = keys.reserved();
  std::string token = _token(what);
  auto sent = std::chrono::steady_clock::now();
  TRY_ASSIGN(Reply r, lease->command({"SET", key, token, "NX", "PX", std::to_string(k_reservation_ttl_ms)}));
  if (r.view().is_nil()) {
    return _reserved_error(*lease, keys);
  }
  return std::unique_ptr<Reservation>(new Reservation(pool, std::move(key), std::move(token), sent));
}

Result<std::unique_ptr<Reservation>> Reservation::acquire_over_damaged(Pool& pool, const Keys& keys,
                                                                       std::string_view what, std::string& replaced) {
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  std::string key = keys.reserved();
  std::string token = _token(what);
  auto sent = std::chrono::steady_clock::now();
  TRY_ASSIGN(Reply r, lease->eval(lua::reserve_repair, {key},
                                  {token, std::to_string(k_reservation_ttl_ms), std::to_string(k_lease_max_ms)}));
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != 2) {
    return make_error(EIO, "reserving " + key + ": unexpected reply");
  }
  if (v[0].integer() != 1) {
    return _reserved_error(*lease, keys);
  }
  replaced = std::string(v[1].str());
  return std::unique_ptr<Reservation>(new Reservation(pool, std::move(key), std::move(token), sent));
}

void Reservation::refresh_loop() {
  std::unique_lock lock(m_mutex);
  while (!m_stop) {
    if (m_wake.wait_for(lock, k_refresh_every, [this] { return m_stop; })) {
      break;
    }
    lock.unlock();
    bool ours = false;
    bool extended = false;
    const auto sent = std::chrono::steady_clock::now();
    auto lease = m_pool.acquire();
    if (lease.ok()) {
      // The freeze's compare-and-extend: the same token rule.
      auto r = (*lease)->eval(lua::freeze_refresh, {m_key}, {m_token, std::to_string(k_reservation_ttl_ms)});
      // A failed round trip is tried again; only a reply of 0 (the key
      // expired or another holder has it) loses the reservation.
      ours = !r.ok() || r->view().integer() == 1;
      extended = r.ok() && r->view().integer() == 1;
    } else {
      ours = true;
    }
    if (!ours) {
      m_lost = true;
    }
    lock.lock();
    if (extended) {
      m_extended = sent;
    }
  }
}

Status Reservation::check() const {
  if (m_lost) {
    return make_error(EAGAIN, "the reservation " + m_key + " expired or was taken over (the server stalled?)");
  }
  return {};
}

Status Reservation::verify(Connection& c) const {
  TRY(check());
  TRY_ASSIGN(Reply r, c.command({"GET", m_key}));
  if (!r.view().is_string() || r.view().str() != m_token) {
    m_lost = true;
  }
  return check();
}

Status Reservation::release() {
  {
    std::lock_guard lock(m_mutex);
    if (m_stop) {
      return {};
    }
    m_stop = true;
  }
  m_wake.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  TRY_ASSIGN(Pool::Lease lease, m_pool.acquire());
  // (the refresher has ended: m_extended is still)
  TRY_ASSIGN(bool ours, end_lease(*lease, lua::freeze_release, m_key, m_token, "", m_extended,
                                  std::chrono::milliseconds(k_reservation_ttl_ms)));
  if (!ours) {
    m_lost = true;
  }
  return check();
}

// ---------------------------------------------------------------- moves

namespace {

enum class SbOrder { First, Last };

struct MoveSpec {
  const Keys* from;
  const Keys* to;
  SbOrder sb;
  bool persist;                  // drop the staging TTL on arrival
  std::string_view fault_point;  // fail after the first batch (tests)
  Freeze* freeze;                // the target's, kept alive between batches (not while rolling back)
  const std::string* index;      // list of the relative names to move (else SCAN)
  bool fs_only = false;          // only the filesystem's own keys (not the running system's)
};

// The superblock, by the batch script (move_keys.lua) with one key: a
// second run after a lost reply finds it moved already.
Status _move_sb(Connection& c, const MoveSpec& m, bool& moved) {
  moved = false;
  const std::string keys[] = {m.from->sb(), m.to->sb()};
  const std::string args[] = {m.persist ? "1" : "0", "0"};
  TRY_ASSIGN(Reply r, c.eval(lua::move_keys, keys, args));
  ReplyView out = r.view();
  if (!out.is_array() || out.size() != 1) {
    return make_error(EIO, "redis: bad reply while moving " + m.from->sb());
  }
  switch (out[0].integer()) {
    case 1:
      moved = true;
      return {};
    case 0:
      return make_error(EEXIST, m.to->sb() + " appeared while moving the filesystem");
    case 2:
      moved = c.sent_again();  // (its first run moved it) else: it was there, and none to move
      return {};
    default:
      return {};  // no superblock to move
  }
}

// Moves the keys of one page (`list`: m.index's relative names, else
// SCAN's absolute ones) to m.to. Returns how many moved.
Result<std::uint64_t> _move_page(Connection& c, const MoveSpec& m, ReplyView list) {
  std::vector<std::string> sources;
  std::vector<std::string> targets;
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string from_key = m.index != nullptr ? m.from->absolute(list[i].str()) : std::string(list[i].str());
    std::string_view key = from_key;
    auto rel = m.from->relative(key);
    if (!rel) {
      continue;
    }
    KeyKind kind = parse_relative_key(*rel).kind;
    if (kind == KeyKind::Superblock || kind == KeyKind::Reserved || kind == KeyKind::Freeze || kind == KeyKind::Cow ||
        kind == KeyKind::Installing || (m.fs_only && !is_filesystem_key(kind))) {
      continue;
    }
    sources.emplace_back(key);
    targets.push_back(m.to->absolute(*rel));
  }
  if (sources.empty()) {
    return std::uint64_t{0};
  }
  std::size_t n = sources.size();
  sources.insert(sources.end(), targets.begin(), targets.end());
  const std::string args[] = {m.persist ? "1" : "0", "0"};
  TRY_ASSIGN(Reply r, c.eval(lua::move_keys, sources, args));
  ReplyView out = r.view();
  if (!out.is_array() || out.size() != n) {
    return make_error(EIO, "redis: bad reply while moving " + m.from->prefix() + " to " + m.to->prefix());
  }
  // A batch sent again after its reply was lost answers 2 for the keys its
  // first run moved: moved by it, when an index lists each key once (with
  // SCAN, a key returned twice was moved by an earlier batch).
  const bool again = c.sent_again() && m.index != nullptr;
  std::uint64_t moved = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (out[i].integer() == 0) {
      return make_error(EEXIST, "key " + quoted(targets[i]) + " appeared while moving the filesystem");
    }
    moved += out[i].integer() == 1 || (again && out[i].integer() == 2) ? 1 : 0;
  }
  return moved;
}

// Moves every key of m.from (but its RESERVED and FREEZE) to m.to, never
// overwriting one. Returns how many keys moved.
Result<std::uint64_t> _move_keys(Connection& c, const MoveSpec& m) {
  std::uint64_t moved = 0;
  bool sb_moved = false;
  if (m.sb == SbOrder::First) {
    TRY(_move_sb(c, m, sb_moved));
  }
  long long next = 0;  // index position
  int batches = 0;
  // (A walk that starts over after a server restart moves nothing twice:
  // a key moved already is gone from m.from.)
  std::optional<ScanWalk> walk;
  if (m.index == nullptr) {
    walk.emplace(c, Args{"SCAN"}, Args{"MATCH", m.from->match_all(), "COUNT", std::string(k_scan_count)});
  }
  for (bool last = false; !last;) {
    Reply page;
    ReplyView list(nullptr);
    if (m.index != nullptr) {
      TRY_ASSIGN(page, c.command({"LRANGE", *m.index, std::to_string(next), std::to_string(next + k_index_page - 1)}));
      list = page.view();
      if (!list.is_array()) {
        return make_error(EIO, "redis: bad LRANGE reply");
      }
      next += static_cast<long long>(list.size());
      last = list.size() < static_cast<std::size_t>(k_index_page);
    } else {
      TRY_ASSIGN(auto items, walk->next());
      if (!items) {
        break;
      }
      list = *items;
    }
    TRY_ASSIGN(std::uint64_t n, _move_page(c, m, list));
    moved += n;
    if (++batches == 1 && !m.fault_point.empty()) {
      if (fault_injected(m.fault_point)) {
        return make_error(EIO, "fault injected after the first batch (REDISFS_FAULT=" + std::string(m.fault_point) +
                                   ")");
      }
      crash_if_injected(m.fault_point);
    }
    if (m.freeze != nullptr) {
      TRY(m.freeze->keep_alive(c));
    }
    if (fault_injected("move-slow")) {  // tests: a move long enough to restart the server during
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }
  if (m.sb == SbOrder::Last) {
    TRY(_move_sb(c, m, sb_moved));
  }
  return moved + (sb_moved ? 1 : 0);
}

// Removes every key of `keys` but its RESERVED (and FREEZE). (A walk that
// starts over after a server restart unlinks what the restart kept.)
Status _clear(Connection& c, const Keys& keys) {
  ScanWalk walk(c, {"SCAN"}, {"MATCH", keys.match_all(), "COUNT", std::string(k_scan_count)});
  for (;;) {
    TRY_ASSIGN(auto items, walk.next());
    if (!items) {
      return {};
    }
    std::vector<std::string_view> argv{"UNLINK"};
    for (std::size_t i = 0; i < items->size(); ++i) {
      std::string_view key = (*items)[i].str();
      auto rel = keys.relative(key);
      KeyKind kind = rel ? parse_relative_key(*rel).kind : KeyKind::Unknown;
      if (kind != KeyKind::Reserved && kind != KeyKind::Freeze && kind != KeyKind::Installing) {
        argv.push_back(key);
      }
    }
    if (argv.size() > 1) {
      TRY(c.command(std::span<const std::string_view>(argv)));
    }
  }
}

// The journal, <target>:INSTALLING = "<phase> <staging> <replaced or ->"
// and, when the replaced filesystem is kept, " <kept as>": whoever finds it
// (the next tool or mount on the prefix) rolls the move forward from that
// phase (finish_install).
Status _journal(Connection& c, const Keys& target, std::string_view phase, const Keys& staging,
                const std::optional<Keys>& aside, const std::optional<Keys>& keep) {
  std::string value = std::string(phase) + " " + staging.prefix() + " " + (aside ? aside->prefix() : "-");
  if (keep) {
    value += " " + keep->prefix();
  }
  TRY(c.command({"SET", target.installing(), value}));
  return {};
}

// The replaced filesystem `aside` as a read-only snapshot of `target`: a
// fresh snapshot_id, its lineage with that id appended, read_only, origin
// and snapshot_created (now). Done once: a superblock with a snapshot_id
// (marked before a crash) or none (moved on already) is left alone.
Status _mark_kept(Connection& c, const Keys& aside, const Keys& target) {
  TRY_ASSIGN(Reply r, c.command({"HMGET", aside.sb(), "format", "snapshot_id", "lineage"}));
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != 3) {
    return make_error(EIO, "redis: bad HMGET reply for " + aside.sb());
  }
  if (v[0].is_nil() || !v[1].is_nil()) {
    return {};
  }
  std::vector<std::string> lineage;
  std::string_view text = v[2].is_nil() ? std::string_view() : v[2].str();
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = std::min(text.find(' ', at), text.size());
    if (end > at) {
      lineage.emplace_back(text.substr(at, end - at));
    }
    at = end + 1;
  }
  std::string id = random_hex(16);
  TRY_ASSIGN(std::int64_t now, server_time_ns(c, aside.sb()));
  TRY(c.command({"HSET", aside.sb(), "snapshot_id", id, "lineage", extend_lineage(lineage, id), "read_only", "1",
                 "origin", target.prefix(), "snapshot_created", std::to_string(now)}));
  return {};
}

// Whether `keep` holds a filesystem other than the replaced one under
// `aside`: the name was reserved and empty when the operation began, but
// one rolled forward after a crash (finish_install, by whoever comes next)
// holds no reservation of it any more, and a journal may be damaged. The
// replaced filesystem's superblock moves last: while `aside` has one, a
// superblock under `keep` is another filesystem's.
Status _keep_free(Connection& c, const Keys& target, const Keys& aside, const Keys& keep) {
  c.append({"EXISTS", keep.sb()});
  c.append({"EXISTS", aside.sb()});
  TRY_ASSIGN(std::vector<Reply> r, c.read_all());
  if (r[0].view().integer() == 1 && r[1].view().integer() == 1) {
    return make_error(EEXIST, "a filesystem '" + keep.prefix() +
                                  "' was made since the operation was interrupted; the replaced filesystem waits "
                                  "under '" +
                                  aside.prefix() + "' and " + target.installing() + " stays: rename or delete '" +
                                  keep.prefix() + "', then run again");
  }
  return {};
}

// Step 4 when the replaced filesystem is kept (install.hpp): phase "keep".
Status _keep(Connection& c, const Keys& target, const Keys& staging, const Keys& aside, const Keys& keep,
             Freeze& freeze) {
  TRY(_journal(c, target, "keep", staging, aside, keep));
  TRY(_keep_free(c, target, aside, keep));
  TRY(drop_staged_orphans(c, aside));
  TRY(_mark_kept(c, aside, target));
  register_filesystem(c, keep.prefix());
  MoveSpec spec{&aside, &keep, SbOrder::Last, false, "install-keep", &freeze, nullptr};
  spec.fs_only = true;
  TRY(_move_keys(c, spec));
  TRY(unlink_all(c, aside));  // what is left there: the running system's keys (mounts, opens)
  return {};
}

// Phase "swap" onwards: the staged keys in, then the replaced filesystem
// out, then the journal. On failure the target is emptied and the replaced
// filesystem moved back.
// (`*expired`, when given: set when the staged keys were gone, expired, and
// the move was rolled back whole, the journal with it.)
Result<InstallResult> _swap(Connection& c, const Keys& staging, const Keys& target, const std::optional<Keys>& aside,
                            std::uint64_t expected, Freeze& freeze, const std::string* index,
                            const std::optional<Keys>& keep, bool* expired = nullptr) {
  InstallResult out;
  TRY(_journal(c, target, "swap", staging, aside, keep));
  auto moved = _move_keys(c, MoveSpec{&staging, &target, SbOrder::Last, true, "install-swap", &freeze, index});
  Status counted = !moved.ok() || expected == 0 || *moved == expected
                       ? Status{}
                       : Status(make_error(EIO, "only " + std::to_string(static_cast<long long>(*moved)) + " of " +
                                                    std::to_string(static_cast<long long>(expected)) +
                                                    " staged keys were found (did they expire?)"));
  if (moved.ok() && counted.ok()) {
    TRY_ASSIGN(Reply sb, c.command({"EXISTS", target.sb()}));
    if (sb.view().integer() != 1) {
      counted = make_error(EIO, "the staged superblock " + staging.sb() + " is gone (did it expire?)");
    }
  }
  if (!moved.ok() || !counted.ok()) {
    Error why = moved.ok() ? counted.error() : moved.error();
    c.drain();
    Status cleared = _clear(c, target);
    std::string old_state = "it was empty";
    if (aside) {
      auto back = cleared.ok() ? _move_keys(c, MoveSpec{&*aside, &target, SbOrder::Last, false, {}, nullptr, nullptr})
                               : Result<std::uint64_t>(cleared.error());
      if (!back.ok()) {
        return make_error(why.code, why.message + "; rolling back failed too (" + back.error().message +
                                        "): the old filesystem is under prefix '" + aside->prefix() + "'");
      }
      old_state = "the old filesystem is back in place";
    } else if (!cleared.ok()) {
      return make_error(why.code, why.message + "; removing the partial copy failed too (" +
                                      cleared.error().message + ")");
    }
    auto ended = c.command({"DEL", target.installing()});
    if (expired != nullptr) {
      *expired = moved.ok() && ended.ok();
    }
    return make_error(why.code, why.message + " (nothing changed: " + old_state + ")");
  }
  out.moved = *moved;
  if (aside && keep) {
    out.replaced = true;
    Status kept = _keep(c, target, staging, *aside, *keep, freeze);
    if (!kept.ok()) {
      return make_error(kept.code(), "the new filesystem is in place, but keeping the replaced one as '" +
                                         keep->prefix() + "' failed (" + kept.error().message +
                                         "); the next tool or mount of '" + target.prefix() + "' finishes it");
    }
  } else if (aside) {
    out.replaced = true;
    auto removed = unlink_all(c, *aside);
    if (!removed.ok()) {
      out.warning = "the replaced filesystem could not be removed (" + removed.error().message +
                    "); delete it with `redisfs-snap delete " + aside->prefix() + "`";
    }
  }
  TRY(c.command({"DEL", target.installing()}));
  return out;
}

Result<InstallResult> _aside_then_swap(Connection& c, const Keys& staging, const Keys& target,
                                       const std::optional<Keys>& aside, std::uint64_t expected, Freeze& freeze,
                                       const std::string* index, const std::optional<Keys>& keep,
                                       bool* expired = nullptr) {
  if (aside) {
    TRY(_journal(c, target, "aside", staging, aside, keep));
    auto moved = _move_keys(c, MoveSpec{&target, &*aside, SbOrder::First, false, "install-aside", &freeze, nullptr});
    if (!moved.ok()) {
      c.drain();
      auto back = _move_keys(c, MoveSpec{&*aside, &target, SbOrder::Last, false, {}, nullptr, nullptr});
      if (!back.ok()) {
        return make_error(moved.error().code, "moving the old filesystem aside failed (" + moved.error().message +
                                                  ") and so did moving it back (" + back.error().message +
                                                  "): it is under prefix '" + aside->prefix() + "'");
      }
      (void)c.command({"DEL", target.installing()});
      return make_error(moved.error().code,
                        "moving the old filesystem aside failed: " + moved.error().message + " (it is untouched)");
    }
    for (int i = 0; i < 10 && fault_injected("install-aside-pause"); ++i) {
      // Test hook: a second with the old filesystem aside and the new one
      // not yet in (no superblock), for a mount to look at.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      TRY(freeze.keep_alive(c));
    }
  }
  return _swap(c, staging, target, aside, expected, freeze, index, keep, expired);
}

// The target's freeze for the whole move: a snapshot (copy or dump) of the
// target that is running finishes first, and none starts until the target
// is whole again, old or new.
Result<InstallResult> _frozen(Connection& c, const Keys& target,
                              const std::function<Result<InstallResult>(Freeze&)>& move) {
  TRY_ASSIGN(Freeze freeze, Freeze::acquire(c, target));
  for (int i = 0; i < 10 && fault_injected("install-frozen-pause"); ++i) {
    // Test hook: the freeze held a second before the move, so that a
    // mount's change is surely waiting behind it (FROZEN) when it ends.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    TRY(freeze.keep_alive(c));
  }
  auto done = move(freeze);
  c.drain();
  if (freeze.held()) {
    (void)freeze.release(c);
  }
  return done;
}

// An incremental restore's move (apply_staged_delta), from its journal on:
// the deletions, then the staged keys over the old ones, superblock last,
// then the journal goes. Every step can run again (a key already moved is
// gone from the staging prefix; a deleted key is absent), so whoever finds
// the journal runs the whole of it again.
// The staged keys of an incremental restore stop expiring once its journal
// is written: the old state is changed in place from the first deletion on
// (nothing to go back to), so the move must be able to end whenever the
// next mount or tool comes, also past the staging TTL. (A crash between the
// journal and the end of this leaves some with their TTL; run again by
// whoever finishes the move, as all of _apply_delta is.)
Status _persist_staged(Connection& c, const Keys& staging, const std::string& index, const std::string& deletes,
                       Freeze& freeze) {
  for (long long at = 0;; at += k_index_page) {
    TRY_ASSIGN(Reply page, c.command({"LRANGE", index, std::to_string(at), std::to_string(at + k_index_page - 1)}));
    ReplyView list = page.view();
    for (std::size_t i = 0; i < list.size(); ++i) {
      ParsedKey pk = parse_relative_key(list[i].str());
      if (is_filesystem_key(pk.kind)) {  // (what the move takes; the rest expires)
        c.append({"PERSIST", staging.absolute(list[i].str())});
      }
    }
    TRY(c.read_all());
    TRY(freeze.keep_alive(c));
    if (list.size() < static_cast<std::size_t>(k_index_page)) {
      break;
    }
  }
  c.append({"PERSIST", staging.sb()});
  c.append({"PERSIST", index});
  c.append({"PERSIST", deletes});
  TRY(c.read_all());
  return {};
}

Result<std::uint64_t> _apply_delta(Connection& c, const Keys& staging, const Keys& target, Freeze& freeze) {
  const std::string index = staging_index_key(staging);
  const std::string deletes = staging_deletes_key(staging);
  TRY(_persist_staged(c, staging, index, deletes, freeze));
  std::uint64_t changed = 0;
  for (long long at = 0;; at += k_index_page) {
    TRY_ASSIGN(Reply page, c.command({"LRANGE", deletes, std::to_string(at), std::to_string(at + k_index_page - 1)}));
    ReplyView list = page.view();
    std::vector<std::string> argv{"UNLINK"};
    for (std::size_t i = 0; i < list.size(); ++i) {
      ParsedKey pk = parse_relative_key(list[i].str());
      if (is_filesystem_key(pk.kind) && pk.kind != KeyKind::Superblock) {
        argv.push_back(target.absolute(list[i].str()));
      }
    }
    if (argv.size() > 1) {
      TRY_ASSIGN(Reply n, c.command(argv));
      changed += static_cast<std::uint64_t>(std::max(0LL, n.view().integer()));
    }
    TRY(freeze.keep_alive(c));
    if (list.size() < static_cast<std::size_t>(k_index_page)) {
      break;
    }
  }
  int batches = 0;
  for (long long at = 0;; at += k_index_page) {
    TRY_ASSIGN(Reply page, c.command({"LRANGE", index, std::to_string(at), std::to_string(at + k_index_page - 1)}));
    ReplyView list = page.view();
    std::vector<std::string> keys;
    std::vector<std::string> targets;
    for (std::size_t i = 0; i < list.size(); ++i) {
      ParsedKey pk = parse_relative_key(list[i].str());
      if (is_filesystem_key(pk.kind) && pk.kind != KeyKind::Superblock) {
        keys.push_back(staging.absolute(list[i].str()));
        targets.push_back(target.absolute(list[i].str()));
      }
    }
    if (!keys.empty()) {
      keys.insert(keys.end(), targets.begin(), targets.end());
      const std::string args[] = {"1", "1"};
      TRY_ASSIGN(Reply r, c.eval(lua::move_keys, keys, args));
      for (std::size_t i = 0; i < r.view().size(); ++i) {
        changed += r.view()[i].integer() == 1 ? 1 : 0;
      }
    }
    if (++batches == 1) {
      if (fault_injected("install-delta")) {
        return make_error(EIO, "fault injected after the first batch (REDISFS_FAULT=install-delta)");
      }
      crash_if_injected("install-delta");
    }
    TRY(freeze.keep_alive(c));
    if (list.size() < static_cast<std::size_t>(k_index_page)) {
      break;
    }
  }
  const std::string sb[] = {staging.sb(), target.sb()};
  const std::string args[] = {"1", "1"};
  TRY_ASSIGN(Reply r, c.eval(lua::move_keys, sb, args));
  changed += r.view().size() == 1 && r.view()[0].integer() == 1 ? 1 : 0;
  TRY_ASSIGN(Reply still, c.command({"EXISTS", target.sb()}));
  if (still.view().integer() != 1) {
    return make_error(EIO, "the staged superblock " + staging.sb() + " is gone (did it expire?)");
  }
  TRY(c.command({"DEL", target.installing()}));
  (void)c.command({"UNLINK", index, deletes});
  return changed;
}

}  // namespace

std::string staging_index_key(const Keys& staging) { return staging.prefix() + "~index"; }
std::string staging_deletes_key(const Keys& staging) { return staging.prefix() + "~deletes"; }

Result<std::uint64_t> apply_staged_delta(Connection& c, const Keys& staging, const Keys& target) {
  Result<std::uint64_t> changed = make_error(EIO, "not run");
  auto done = _frozen(c, target, [&](Freeze& freeze) -> Result<InstallResult> {
    TRY(_journal(c, target, "delta", staging, std::nullopt, std::nullopt));
    crash_if_injected("install-delta-begin");
    changed = _apply_delta(c, staging, target, freeze);
    if (!changed.ok()) {
      return std::move(changed).error();
    }
    return InstallResult{*changed, false, {}};
  });
  if (!done.ok()) {
    return std::move(done).error();
  }
  return done->moved;
}

Result<InstallResult> install_staging(Connection& c, const Keys& staging, const Keys& target, bool replace,
                                      std::uint64_t expected, bool indexed, const std::optional<Keys>& keep) {
  std::optional<Keys> aside;
  if (replace) {
    aside.emplace(make_temp_prefix(target.prefix(), TempKind::Replaced));
  }
  const std::string index = staging_index_key(staging);
  register_filesystem(c, target.prefix());  // before its superblock can arrive (keys.hpp)
  auto done = _frozen(c, target, [&](Freeze& freeze) {
    return _aside_then_swap(c, staging, target, aside, expected, freeze, indexed ? &index : nullptr,
                            aside ? keep : std::nullopt);
  });
  if (indexed) {
    (void)c.command({"UNLINK", index});
  }
  return done;
}

std::optional<StagedOrphan> staged_orphan_drop(std::optional<std::string_view> nlink,
                                               std::optional<std::string_view> bytes,
                                               std::optional<std::string_view> size, std::uint64_t block_size) {
  // As ReplyView::as_int reads them.
  auto as_int = [](std::optional<std::string_view> s) -> long long {
    long long v = -1;
    if (!s || s->empty()) {
      return -1;
    }
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    return ec == std::errc() && p == s->data() + s->size() ? v : -1;
  };
  long long b = nlink && *nlink == "0" ? as_int(bytes) : -1;
  long long n = as_int(size);
  if (b < 0 || n < 0 || block_size == 0) {
    return std::nullopt;
  }
  return StagedOrphan{static_cast<std::uint64_t>(b), static_cast<std::uint64_t>(n)};
}

// The inodes in the staged ORPHANS hash, sorted, each once. An ORPHANS
// of another type names none that can be read: it stays, for fsck to name
// (a damaged key must not stop the copy or the move it is part of).
static Result<std::vector<Ino>> _staged_orphans(Connection& c, const Keys& staging) {
  std::vector<Ino> orphans;
  TRY_ASSIGN(Reply type, c.command({"TYPE", staging.orphans()}));
  if (type.view().str() != "hash") {
    return orphans;
  }
  ScanWalk walk(c, {"HSCAN", staging.orphans()}, {"COUNT", std::string(k_scan_count)});
  for (;;) {
    TRY_ASSIGN(auto items, walk.next());
    if (!items) {
      break;
    }
    if (walk.started_over()) {
      orphans.clear();
    }
    for (std::size_t i = 0; i + 1 < items->size(); i += 2) {
      ParsedKey pk = parse_relative_key("INODE:" + std::string((*items)[i].str()));
      if (pk.kind == KeyKind::Inode) {
        orphans.push_back(pk.ino);
      }
    }
  }
  std::sort(orphans.begin(), orphans.end());
  orphans.erase(std::unique(orphans.begin(), orphans.end()), orphans.end());
  return orphans;
}

// Unlinks the staged blocks of orphan `ino`: the first `named` ones by
// name (key_walk.hpp), or (nullopt, a huge sparse file) those SCAN finds.
// Returns how many keys went.
static Result<std::uint64_t> _unlink_orphan_blocks(Connection& c, const Keys& staging, Ino ino,
                                                   std::optional<std::uint64_t> named) {
  std::uint64_t removed = 0;
  for (std::uint64_t at = 0; named && at < *named; at += k_index_page) {
    std::vector<std::string> argv{"UNLINK"};
    for (std::uint64_t b = at; b < std::min<std::uint64_t>(*named, at + k_index_page); ++b) {
      argv.push_back(staging.block(ino, b));
    }
    TRY_ASSIGN(Reply n, c.command(argv));
    removed += static_cast<std::uint64_t>(n.view().integer());
  }
  if (named) {
    return removed;
  }
  std::string blocks = staging.prefix() + ":BLK:" + std::to_string(ino) + ":*";
  ScanWalk walk(c, {"SCAN"}, {"MATCH", blocks, "COUNT", std::string(k_scan_count)});
  for (;;) {
    TRY_ASSIGN(auto items, walk.next());
    if (!items) {
      return removed;
    }
    std::vector<std::string_view> argv{"UNLINK"};
    for (std::size_t i = 0; i < items->size(); ++i) {
      argv.push_back((*items)[i].str());
    }
    if (argv.size() > 1) {
      TRY_ASSIGN(Reply n, c.command(std::span<const std::string_view>(argv)));
      removed += static_cast<std::uint64_t>(n.view().integer());
    }
  }
}

Result<std::uint64_t> drop_staged_orphans(Connection& c, const Keys& staging) {
  TRY_ASSIGN(std::vector<Ino> orphans, _staged_orphans(c, staging));

  std::uint64_t removed = 0;
  std::uint64_t block_size = 0;
  std::uint64_t server_keys = 0;
  if (!orphans.empty()) {
    c.append({"HGET", staging.sb(), "block_size"});
    c.append({"DBSIZE"});
    TRY_ASSIGN(std::vector<Reply> r, c.read_all());
    block_size = static_cast<std::uint64_t>(std::max(0LL, r[0].view().as_int().value_or(0)));
    server_keys = static_cast<std::uint64_t>(std::max(0LL, r[1].view().integer()));
  }
  for (Ino ino : orphans) {
    auto f = c.command({"HMGET", staging.inode(ino), "nlink", "bytes", "size"});
    if (!f.ok() && !c.broken() && is_wrong_type(f.error())) {
      continue;  // an inode key of the wrong type: fsck's to name
    }
    TRY(f);
    ReplyView v = f->view();
    if (v.size() != 3) {
      continue;
    }
    auto field = [&](std::size_t i) {
      return v[i].is_nil() ? std::nullopt : std::optional<std::string_view>(v[i].str());
    };
    auto drop = staged_orphan_drop(field(0), field(1), field(2), block_size);
    if (!drop) {
      continue;  // not an unlinked inode we can account for: fsck's to judge
    }
    const auto bytes = drop->bytes;
    const auto size = drop->size;
    // Its blocks, named from its size (key_walk.hpp), or, for a huge sparse
    // file, found by SCAN.
    auto named = nameable_blocks(static_cast<std::uint64_t>(size), static_cast<std::uint64_t>(bytes),
                                 static_cast<std::uint32_t>(block_size), server_keys);
    TRY_ASSIGN(std::uint64_t unlinked, _unlink_orphan_blocks(c, staging, ino, named));
    removed += unlinked;
    std::string ino_text = std::to_string(ino);
    const std::vector<Args> tx{{"DEL", staging.inode(ino), staging.xattr(ino), staging.dir(ino)},
                               {"HDEL", staging.orphans(), ino_text},
                               {"HINCRBY", staging.sb(), "inodes", "-1"},
                               {"HINCRBY", staging.sb(), "bytes", "-" + std::to_string(bytes)},
                               {"EXISTS", staging.orphans()}};
    TRY_ASSIGN(Reply replies, c.transaction(tx));
    ReplyView exec = replies.view();
    if (!exec.is_array() || exec.size() != 5) {
      return make_error(EIO, "redis: bad EXEC reply while dropping orphan " + ino_text);
    }
    removed += static_cast<std::uint64_t>(exec[0].integer());
    if (exec[4].integer() == 0) {
      ++removed;  // the last record went, and the ORPHANS hash with it
    }
  }
  return removed;
}

// A journal of the wrong type: no redisfs wrote it (every one is a string),
// so it records no move to finish, and fsck --repair removes it.
static Error _journal_not_string(const Keys& target, std::string_view type) {
  return make_error(EIO, target.installing() + " is a " + std::string(type) +
                             ", not a journal this redisfs wrote: `redisfs-snap fsck --repair " + target.prefix() +
                             "` removes it");
}

Result<std::string> finish_install(Connection& c, const Keys& target) {
  auto got = c.command({"GET", target.installing()});
  if (!got.ok() && !c.broken() && is_wrong_type(got.error())) {
    auto type = c.command({"TYPE", target.installing()});
    return _journal_not_string(target, type.ok() ? type->view().str() : "key of another type");
  }
  TRY_ASSIGN(Reply j, std::move(got));
  if (j.view().is_nil()) {
    return std::string();
  }
  std::string value(j.view().str());
  auto s1 = value.find(' ');
  auto s2 = s1 == std::string::npos ? std::string::npos : value.find(' ', s1 + 1);
  if (s2 == std::string::npos) {
    return make_error(EIO, target.installing() + " is not a journal this redisfs wrote; remove it by hand");
  }
  auto s3 = value.find(' ', s2 + 1);
  std::string phase = value.substr(0, s1);
  std::string staging = value.substr(s1 + 1, s2 - s1 - 1);
  std::string aside_name = value.substr(s2 + 1, s3 == std::string::npos ? std::string::npos : s3 - s2 - 1);
  std::string keep_name = s3 == std::string::npos ? std::string() : value.substr(s3 + 1);
  // What moves in comes from a staging prefix (a restore's or a copy's),
  // and the replaced state goes aside under the target's own name: a
  // journal naming another filesystem there (damaged, or written by
  // someone else) would move that filesystem.
  std::string aside_base = make_temp_prefix(target.prefix(), TempKind::Replaced);
  aside_base.resize(aside_base.size() - k_temp_hex_len);  // (its random part)
  const TempKind staged_kind = temp_kind(staging);
  const bool aside_ours =
      aside_name == "-" ||
      (validate_prefix(aside_name).ok() && aside_name.starts_with(aside_base) &&
       aside_name.size() == aside_base.size() + k_temp_hex_len && temp_kind(aside_name) == TempKind::Replaced);
  if (!validate_prefix(staging).ok() || (staged_kind != TempKind::Restore && staged_kind != TempKind::Copy) ||
      !aside_ours || (phase != "aside" && phase != "swap" && phase != "keep" && phase != "delta") ||
      (s3 != std::string::npos && (aside_name == "-" || !validate_prefix(keep_name).ok())) ||
      (phase == "keep" && keep_name.empty())) {
    return make_error(EIO, target.installing() + " is not a journal this redisfs wrote; remove it by hand");
  }
  std::optional<Keys> aside;
  if (aside_name != "-") {
    aside.emplace(aside_name);
  }
  std::optional<Keys> keep;
  if (!keep_name.empty()) {
    keep.emplace(keep_name);
  }
  Keys staged(staging);
  register_filesystem(c, target.prefix());
  bool expired = false;
  auto done = _frozen(c, target, [&](Freeze& freeze) -> Result<InstallResult> {
    if (phase == "delta") {
      TRY_ASSIGN(std::uint64_t changed, _apply_delta(c, staged, target, freeze));
      return InstallResult{changed, false, {}};
    }
    if (phase == "keep") {
      TRY(_keep(c, target, staged, *aside, *keep, freeze));
      TRY(c.command({"DEL", target.installing()}));
      return InstallResult{};
    }
    return phase == "aside" ? _aside_then_swap(c, staged, target, aside, 0, freeze, nullptr, keep, &expired)
                            : _swap(c, staged, target, aside, 0, freeze, nullptr, keep, &expired);
  });
  const std::string what = "the interrupted restore, copy or rollback into " + redisfs::quoted(target.prefix());
  if (!done.ok() && expired) {
    // (the move cannot end, and nothing of it is left: what was there
    // before is, as the documentation promises)
    (void)c.command({"UNLINK", staging_index_key(staged)});
    return what + " could not be finished: " + done.error().message;
  }
  if (!done.ok()) {
    return make_error(done.error().code, "finishing " + what + " failed: " + done.error().message);
  }
  (void)c.command({"UNLINK", staging_index_key(staged)});
  return "finished " + what + " first";
}

Error refusing_now(Error e) {
  if (e.fault != Fault::None) {
    return e;
  }
  return make_error(e.code, "refusing to restore now: " + e.message);
}

Status refuse_unfinished_install(Connection& c, const Keys& target) {
  TRY_ASSIGN(Reply journal, c.command({"TYPE", target.installing()}));
  if (journal.view().str() != "none" && journal.view().str() != "string") {
    return _journal_not_string(target, journal.view().str());
  }
  if (journal.view().str() == "string") {
    return make_error(EBUSY, "a restore, copy or rollback into '" + target.prefix() +
                                 "' was interrupted while moving its keys (" + target.installing() +
                                 "): mount it once to finish that move first");
  }
  return {};
}

// finish_install under a reservation of its own, if there is a journal.
// With `busy`, a reservation another holder has is no error: *busy says so
// and nothing is done.
static Result<std::string> _finish_reserved(Pool& pool, const Keys& keys, bool* busy) {
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  TRY_ASSIGN(Reply j, lease->command({"EXISTS", keys.installing()}));
  if (j.view().integer() == 0) {
    return std::string();
  }
  auto reservation = Reservation::acquire(pool, keys, "recovery");
  if (busy != nullptr && !reservation.ok() && reservation.code() == EBUSY) {
    *busy = true;
    return std::string();
  }
  TRY_ASSIGN(auto held, std::move(reservation));
  TRY_ASSIGN(std::string done, finish_install(*lease, keys));
  TRY(held->release());
  return done;
}

Result<std::string> finish_install_reserved(Pool& pool, const Keys& target) {
  return _finish_reserved(pool, target, nullptr);
}

Status finish_install_before_read(Pool& pool, const Keys& keys, bool wait, std::string& warning) {
  bool busy = false;
  TRY_ASSIGN(std::string done, _finish_reserved(pool, keys, &busy));
  add_warning(warning, done);
  if (busy && !wait) {
    // (its holder may be mid-move: until that ends, the prefix is no
    // whole filesystem)
    TRY_ASSIGN(Pool::Lease lease, pool.acquire());
    return refuse_unfinished_install(*lease, keys);
  }
  return {};
}

}  // namespace redisfs
