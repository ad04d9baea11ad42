// Copy, delete and list whole filesystems (and the snapshots of one, for
// a mount's .snapshots directory: snapshots_of); the copy-on-write
// snapshot and the freeze that make a copy point-in-time.
//
// SCAN alone is not a snapshot: keys change between its pages, so a file
// renamed from one directory to another during a scan can show up twice or
// not at all.
//
// COPY-ON-WRITE (copy and dump; snapshot.hpp, CowSnapshot). One script
// records the instant (SRC:COW, naming the staging prefix) and copies the
// superblock; from then on every change script copies the keys it names
// into the staging prefix before it changes them (prelude.lua), and the
// copier walks the staging prefix's own structure, copying each key before
// it reads it (copy_keys_cow). Writers never wait for the copy.
//
// THE FREEZE (delete, a copy to another cluster slot, installs; Freeze):
//
//   1. freeze_acquire.lua: SET SRC:FREEZE <random token> PX 10000 unless
//      it exists or a snapshot is alive (SRC:COW); else retry for up to
//      30 s, then fail.
//   2. Every change script checks the key before its first write (prelude
//      check_frozen) and fails with FROZEN; the daemon sleeps briefly and
//      tries again. A script is atomic, so once the freeze is set, no
//      script can change a key of SRC: scripts that started earlier have
//      finished. Reads go on as usual.
//   3. The keys are found from the structure (key_walk.hpp) and copied or
//      removed in batches. Between batches, freeze_refresh.lua extends the
//      TTL, but only while the value is still our token.
//   4. Release with freeze_release.lua: DEL only if the value is still our
//      token. If it is not (we were stalled past the TTL, the key expired,
//      writers ran), a copy is not point-in-time: it is deleted and the
//      operation fails. The TTL means a crashed tool blocks writers for
//      ten seconds at most.
//
// A copy is made in a staging prefix and moved into place at the end
// (install.hpp): until then the destination holds nothing, so a crash
// mid-copy never leaves a plausible half filesystem.
//
// Delete takes the freeze (so it waits for a running snapshot of the
// prefix and mounted writers stall instead of racing it), removes the
// superblock first and then everything else.
#include "snap/snapshot.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_set>

#include "redis/outage.hpp"
#include "redis/scan.hpp"
#include "redis/server_check.hpp"
#include "snap/install.hpp"
#include "snap/room.hpp"
#include "store/key_walk.hpp"
#include "store/superblock.hpp"
#include "util/progress.hpp"
#include "util/text.hpp"

namespace redisfs {

using Clock = std::chrono::steady_clock;

static constexpr std::string_view k_scan_count = "1000";
// list reads the whole keyspace: larger pages cost fewer round trips (each
// still a few ms of the server's time at 2 million keys; bench workload 10).
static constexpr std::string_view k_list_scan_count = "20000";

// ---------------------------------------------------------------- helpers

static std::atomic<bool> g_cancel{false};

void request_cancel() noexcept { g_cancel.store(true, std::memory_order_relaxed); }
bool cancel_requested() noexcept { return g_cancel.load(std::memory_order_relaxed); }
Status check_cancel() {
  if (cancel_requested()) {
    return make_error(ECANCELED, "interrupted");
  }
  return {};
}

Error superblock_read_error(const Connection& c, const Keys& keys, Error e) {
  return !c.broken() && is_wrong_type(e) ? superblock_not_hash(keys) : std::move(e);
}

Result<Superblock> read_superblock(Connection& c, const Keys& keys) {
  auto r = c.command({"HGETALL", keys.sb()});
  if (!r.ok()) {
    return superblock_read_error(c, keys, std::move(r).error());
  }
  return decode_superblock(keys.prefix(), reply_pairs<std::string>(r->view()));
}

Status check_toolkit_prefix(Connection& c, std::string_view prefix) {
  TRY(validate_prefix(prefix));
  if (c.cluster()) {
    TRY(check_cluster_prefix(prefix));
  }
  return {};
}

Status refuse_evicting_master(Connection& c, std::string_view prefix, std::string_view writing) {
  if (!c.cluster()) {
    return {};
  }
  auto info = server_info(c, Keys(std::string(prefix)).sb());
  if (!info.ok()) {
    return {};
  }
  const std::string refusing =
      "refusing to " + std::string(writing) + " (on the master of " + redisfs::quoted(prefix) + ")";
  TRY(check_eviction(*info, true, false, refusing));
  return {};
}

std::string iso_time_ns(std::int64_t ns) {
  std::int64_t secs = ns / 1000000000;
  std::int64_t millis = (ns % 1000000000) / 1000000;
  if (ns < 0 && ns % 1000000000 != 0) {
    secs -= 1;
    millis += 1000;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
  return buf;
}

Result<std::int64_t> server_time_ns(Connection& c, std::string_view at) {
  TRY_ASSIGN(Reply r, c.keyless_at(at, {"TIME"}));
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != 2) {
    return make_error(EIO, "redis: bad TIME reply");
  }
  auto secs = v[0].as_int();
  auto micros = v[1].as_int();
  if (!secs || !micros) {
    return make_error(EIO, "redis: bad TIME reply");
  }
  return *secs * 1000000000LL + *micros * 1000LL;
}

std::string human_bytes(std::uint64_t n) {
  static constexpr const char* k_units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (n < 1024) {
    return std::to_string(n) + " B";
  }
  double v = static_cast<double>(n) / 1024.0;
  std::size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(k_units)) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, k_units[u]);
  return buf;
}

std::string_view temp_tag(TempKind kind) {
  switch (kind) {
    case TempKind::Dump:
      return k_dump_tag;
    case TempKind::Restore:
      return k_restore_tag;
    case TempKind::Copy:
      return k_copy_tag;
    case TempKind::Replaced:
      return k_replaced_tag;
    case TempKind::None:
      break;
  }
  return {};
}

std::string make_temp_prefix(std::string_view base, TempKind kind) {
  std::string_view tag = temp_tag(kind);
  constexpr std::size_t k_hex_len = k_temp_hex_len;
  // Stays within validate_prefix's 200 bytes whatever the base, and keeps
  // its hash tag whole (so, on a cluster, its slot: the server copies and
  // renames between the two): a long base loses bytes before the tag, then
  // after it.
  std::size_t room = 200 - tag.size() - k_hex_len;
  std::string cut(base.substr(0, room));
  auto open = base.find('{');
  auto close = open == std::string_view::npos ? open : base.find('}', open);
  if (base.size() > room && close != std::string_view::npos && close >= room) {
    std::size_t tag_len = close - open + 1;
    std::size_t before = room > tag_len ? std::min(open, room - tag_len) : 0;
    cut = std::string(base.substr(0, before)) + std::string(base.substr(open, std::min(tag_len, room)));
  }
  return cut + std::string(tag) + random_hex(k_hex_len / 2);
}

TempKind temp_kind(std::string_view prefix) {
  auto tagged = [&](std::string_view tag) {
    auto pos = prefix.rfind(tag);
    if (pos == std::string_view::npos || pos == 0) {
      return false;
    }
    std::string_view hex = prefix.substr(pos + tag.size());
    return !hex.empty() && std::all_of(hex.begin(), hex.end(), [](char ch) {
      return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
    });
  };
  for (TempKind kind : {TempKind::Dump, TempKind::Restore, TempKind::Copy, TempKind::Replaced}) {
    if (tagged(temp_tag(kind))) {
      return kind;
    }
  }
  return TempKind::None;
}

Status refuse_temp_name(std::string_view prefix, std::string_view as) {
  if (temp_kind(prefix) == TempKind::None) {
    return {};
  }
  return make_error(EINVAL, redisfs::quoted(prefix) + " is the form of a tool's temporary prefix (" +
                                std::string(temp_tag(temp_kind(prefix))) + "...), which cannot be " + std::string(as) +
                                "; choose another name");
}

// The walk of every key matching `match` (a page at a time, keys may
// repeat, and begin again after a server restart: scan.hpp).
static ScanWalk _scan(Connection& c, std::string match, std::string_view count = k_scan_count) {
  return ScanWalk(c, {"SCAN"}, {"MATCH", std::move(match), "COUNT", std::string(count)});
}

// Is there a key under `keys` other than the bookkeeping of the tools
// (RESERVED, FREEZE)? Stops at the first.
static Result<bool> _holds_keys(Connection& c, const Keys& keys) {
  ScanWalk walk = _scan(c, keys.match_all());
  for (;;) {
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      return false;
    }
    ReplyView list = *page;
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto rel = keys.relative(list[i].str());
      KeyKind kind = rel ? parse_relative_key(*rel).kind : KeyKind::Unknown;
      if (kind != KeyKind::Reserved && kind != KeyKind::Freeze && kind != KeyKind::Cow && kind != KeyKind::OpLog) {
        return true;
      }
    }
  }
}

Error with_damage_hint(Error e, std::initializer_list<std::string_view> prefixes) {
  if (!is_wrong_type(e)) {
    return e;
  }
  std::string fsck;
  for (std::string_view p : prefixes) {
    fsck += (fsck.empty() ? "" : " or ") + ("`redisfs-snap fsck " + std::string(p) + "`");
  }
  e.message += " (a key of the filesystem is of the wrong type: " + fsck + " names it)";
  return e;
}

// The mounts' session keys found by SCAN (a register that is no hash):
// their ids.
static Result<std::vector<std::string>> _scanned_sessions(Connection& c, const Keys& keys) {
  const std::string head = keys.mount("");
  std::vector<std::string> ids;
  ScanWalk walk = _scan(c, head + "*");
  for (;;) {
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      break;
    }
    for (std::size_t i = 0; i < page->size(); ++i) {
      std::string_view key = (*page)[i].str();
      if (key.size() > head.size() && key.compare(0, head.size(), head) == 0) {
        ids.emplace_back(key.substr(head.size()));
      }
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());  // (a SCAN may repeat a key)
  return ids;
}

// The hint for a refusal because of the lease or session key `key`, whose
// PTTL is `ttl`: none when it is gone (-2); the repair that removes it when
// no holder set it (lease_ttl_plausible: never lapses, or too far ahead);
// else when it lapses, for a mount that stopped without unmounting.
static std::string _lease_hint(const std::string& key, std::int64_t ttl, const std::string& prefix) {
  if (ttl == -2) {
    return {};
  }
  if (!lease_ttl_plausible(ttl)) {
    return "; " + key + " never lapses, as no running tool's or mount's does: `redisfs-snap fsck --repair " + prefix +
           "` removes it";
  }
  return "; a mount that stopped without unmounting (killed, or its host gone) counts until its session lapses, "
         "within " +
         std::to_string((ttl + 999) / 1000) + " s";
}

Result<std::vector<std::string>> live_mounts(Connection& c, const Keys& keys) {
  std::vector<std::string> live;
  auto r = c.command({"HKEYS", keys.mounts()});
  if (!r.ok()) {
    if (c.broken()) {
      return std::move(r).error();
    }
    // Not a hash (fsck's to report and remove): the mounts are not counted
    // there, but their session keys still say who is mounted (a damaged
    // register must not let a rollback or a restore replace a mounted
    // filesystem without --force).
    return _scanned_sessions(c, keys);
  }
  ReplyView v = r->view();
  for (std::size_t i = 0; i < v.size(); ++i) {
    c.append({"EXISTS", keys.mount(v[i].str())});
  }
  TRY_ASSIGN(std::vector<Reply> alive, c.read_all());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (alive[i].view().integer() == 1) {
      live.emplace_back(v[i].str());
    }
  }
  return live;
}

std::string mounted_count(std::uint64_t mounts) {
  return "is mounted (" + counted(mounts, "live mount", "live mounts") + ")";
}

std::string live_mounts_hint(Connection& c, const Keys& keys, const std::vector<std::string>& live, bool name_endless) {
  for (const std::string& session : live) {
    c.append({"PTTL", keys.mount(session)});
  }
  auto ttls = c.read_all();
  if (!ttls.ok()) {
    return {};  // (a hint only: the refusal stands without it)
  }
  std::size_t last = live.size();  // (the session that lapses last)
  for (std::size_t i = 0; i < live.size(); ++i) {
    const std::int64_t ttl = (*ttls)[i].view().integer();
    if (ttl == -2) {
      continue;
    }
    if (!lease_ttl_plausible(ttl)) {
      if (name_endless) {
        return _lease_hint(keys.mount(live[i]), ttl, keys.prefix());
      }
    } else if (last == live.size() || ttl > (*ttls)[last].view().integer()) {
      last = i;
    }
  }
  return last == live.size() ? std::string()
                             : _lease_hint(keys.mount(live[last]), (*ttls)[last].view().integer(), keys.prefix());
}

Result<PrefixState> probe_prefix(Connection& c, const Keys& keys, bool thorough) {
  PrefixState st;
  c.append({"EXISTS", keys.sb()});
  c.append({"EXISTS", keys.orphans(), keys.inode(k_root_ino), keys.installing(), keys.mounts()});
  TRY_ASSIGN(std::vector<Reply> r, c.read_all());
  st.has_sb = r[0].view().integer() == 1;
  TRY_ASSIGN(std::vector<std::string> live, live_mounts(c, keys));
  st.mounts = live.size();
  st.mounts_hint = live_mounts_hint(c, keys, live);
  st.any_key = st.has_sb || r[1].view().integer() > 0 || st.mounts > 0;
  if (!st.any_key && thorough) {
    TRY_ASSIGN(st.any_key, _holds_keys(c, keys));
  }
  return st;
}

Result<std::uint64_t> unlink_all(Connection& c, const Keys& keys, Freeze* freeze, Progress* progress) {
  const std::string freeze_key = keys.freeze();
  const std::string reserved_key = keys.reserved();
  std::uint64_t removed = 0;
  // (A walk that starts over after a server restart unlinks what the
  // restart kept.)
  ScanWalk walk = _scan(c, keys.match_all());
  for (;;) {
    // No check_cancel(): this is also how an interrupted operation cleans up.
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      return removed;
    }
    ReplyView list = *page;
    std::vector<std::string_view> argv{"UNLINK"};
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i].str() != freeze_key && list[i].str() != reserved_key) {
        argv.push_back(list[i].str());
      }
    }
    if (argv.size() > 1) {
      TRY_ASSIGN(Reply r, c.command(std::span<const std::string_view>(argv)));
      auto n = static_cast<std::uint64_t>(r.view().integer());
      removed += n;
      if (progress != nullptr) {
        progress->add(n);
      }
    }
    if (freeze != nullptr) {
      TRY(freeze->keep_alive(c));
    }
  }
}

void register_filesystem(Connection& c, std::string_view prefix) {
  if (temp_kind(prefix) == TempKind::None) {
    (void)c.command({"SADD", k_registry_key, prefix});
  }
}

Result<std::optional<std::string>> find_collision(Connection& c, const Keys& staged, const Keys& target) {
  std::optional<std::string> hit;
  for (const std::string& rel : {std::string("SB"), std::string("ORPHANS")}) {
    TRY_ASSIGN(Reply r, c.command({"EXISTS", target.absolute(rel)}));
    if (r.view().integer() == 1) {
      return std::optional<std::string>(target.absolute(rel));
    }
  }
  KeyWalk walk(c, staged);
  TRY(walk.begin());
  TRY(walk.run([&](std::span<const std::string> rels, std::vector<long long>& found) -> Status {
    for (const std::string& rel : rels) {
      bool block = parse_relative_key(rel).kind == KeyKind::Block;
      c.append({block ? "STRLEN" : "EXISTS", staged.absolute(rel)});
      c.append({"EXISTS", target.absolute(rel)});
    }
    std::vector<Result<Reply>> r = c.read_replies(2 * rels.size());
    for (std::size_t i = 0; i < rels.size(); ++i) {
      for (std::size_t k : {2 * i, 2 * i + 1}) {
        // (a block of the wrong type, -2: the walk's to say, not an error)
        if (!r[k].ok() && (c.broken() || k != 2 * i || !is_wrong_type(r[k].error()))) {
          return std::move(r[k]).error();
        }
      }
      long long here = r[2 * i].ok() ? r[2 * i]->view().integer() : -2;
      bool block = parse_relative_key(rels[i]).kind == KeyKind::Block;
      found[i] = here == -2 ? -2 : here > 0 ? (block ? here : 0) : -1;
      if (!hit && r[2 * i + 1]->view().integer() == 1) {
        hit = target.absolute(rels[i]);
      }
    }
    return {};
  }));
  return hit;
}

Result<std::uint64_t> unlink_listed(Connection& c, const Keys& keys, const std::string& index) {
  constexpr long long k_page = 1000;
  std::uint64_t removed = 0;
  for (long long at = 0;; at += k_page) {
    TRY_ASSIGN(Reply page, c.command({"LRANGE", index, std::to_string(at), std::to_string(at + k_page - 1)}));
    ReplyView list = page.view();
    std::vector<std::string> argv{"UNLINK"};
    for (std::size_t i = 0; i < list.size(); ++i) {
      argv.push_back(keys.absolute(list[i].str()));
    }
    if (argv.size() > 1) {
      TRY_ASSIGN(Reply n, c.command(argv));
      removed += static_cast<std::uint64_t>(n.view().integer());
    }
    if (list.size() < static_cast<std::size_t>(k_page)) {
      break;
    }
  }
  TRY_ASSIGN(Reply last, c.command({"UNLINK", keys.sb(), index}));
  return removed + static_cast<std::uint64_t>(last.view().integer());
}

// ---------------------------------------------------------------- freeze

Freeze::Freeze(std::string key, std::string token, std::chrono::steady_clock::time_point extended)
    : m_key(std::move(key)), m_token(std::move(token)), m_held(true), m_last_refresh(extended) {}

// Why Freeze::acquire gave up: a dump that kept its snapshot says why
// (CowKeeper, cow_refresh.lua's 'kept'; shown escaped, as the record may
// be anyone's).
static Error _busy(Connection& c, const Keys& keys) {
  auto cow = c.command({"HMGET", keys.cow(), "staging", "kept"});
  if (cow.ok() && cow->view().size() == 2 && is_cow_staging(keys.prefix(), cow->view()[0].str()) &&
      temp_kind(cow->view()[0].str()) == TempKind::Dump && !cow->view()[1].str().empty()) {
    return make_error(EBUSY, "a dump of " + redisfs::quoted(keys.prefix()) + " keeps its snapshot (" + keys.cow() +
                                 "), as it could not hand it over: " + shown(cow->view()[1].str(), 400, 0) +
                                 "; try again when the dump has ended, or when the server has more room");
  }
  return make_error(EBUSY, "another snapshot or change of the whole filesystem " + redisfs::quoted(keys.prefix()) +
                               " is in progress (" + keys.freeze() + " or " + keys.cow() + " exists); try again later");
}

// A tool's wait for something another process must do first (another
// tool's snapshot or freeze to end, a writeback mount to send what it
// holds): said once it has lasted `after` (a second unless said), in the
// words `describe` gives then (report_wait: on stderr unless -q), and once
// when it ends. A copy waits for another snapshot as long as it lives; without
// this it seemed to hang.
class ToolWait {
 public:
  struct Words {
    std::string waiting;  // "waiting for another snapshot of 'SKX' to end (...)"
    std::string ended;    // "another snapshot of 'SKX' ended"
  };
  // `after`: how long a wait lasts before it is said (longer where a wait
  // of a few seconds is the rule).
  explicit ToolWait(std::function<Words()> describe,
                    std::chrono::milliseconds after = std::chrono::milliseconds(k_outage_note_after))
      : m_describe(std::move(describe)), m_after(after), m_began(Clock::now()) {}
  // At each turn of the wait.
  void waiting() {
    if (m_said || Clock::now() - m_began < m_after) {
      return;
    }
    m_said = true;
    m_words = m_describe();
    report_wait({OutageNote::Kind::Holder, false, m_words.waiting, {}});
  }
  // The wait is over, and the tool goes on (not when it gives up: its
  // error or warning says so).
  void ended() {
    if (!m_said) {
      return;
    }
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - m_began);
    report_wait({OutageNote::Kind::Holder, true, m_words.ended, waited});
  }

 private:
  std::function<Words()> m_describe;
  std::chrono::milliseconds m_after;
  Clock::time_point m_began;
  bool m_said = false;
  Words m_words;
};

// What holds the filesystem now (a freeze, another snapshot), which key,
// and how far along it is. The records are anyone's: shown quoted.
static ToolWait::Words _holder(Connection& c, const Keys& keys) {
  std::string fs = redisfs::quoted(keys.prefix());
  c.append({"EXISTS", keys.freeze()});
  c.append({"HMGET", keys.cow(), "staging", "dst", "done", "total", "kept"});
  auto frozen = c.read_reply();
  auto cow = c.read_reply();
  if (frozen.ok() && frozen->view().integer() == 1) {
    return {"waiting for the freeze of " + fs + " to end (" + keys.freeze() +
                ": a delete, an install, a repair or a copy across Cluster slots)",
            "the freeze of " + fs + " ended"};
  }
  if (!cow.ok() || cow->view().size() != 5 || cow->view()[0].is_nil()) {
    std::string what = "another snapshot or change of the whole filesystem " + fs;
    return {"waiting for " + what + " to end (it ended meanwhile)", what + " ended"};
  }
  ReplyView v = cow->view();
  std::string_view dst = v[1].str();
  std::string detail = keys.cow() + ": " +
                       (temp_kind(v[0].str()) == TempKind::Copy && !dst.empty() ? "a copy to " + redisfs::quoted(dst)
                                                                                : std::string("a dump's or a diff's"));
  long long done = v[2].as_int().value_or(0);
  long long total = v[3].as_int().value_or(0);
  if (total > 0 && done >= 0 && done <= total) {  // (in double: 100 * done may not fit)
    int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total));
    detail += ", " + std::to_string(pct) + "% done";
  }
  if (!v[4].str().empty()) {  // (a dump that cannot hand it over: CowKeeper)
    detail += ", kept to its end: " + shown(v[4].str(), 400, 0);
  }
  return {"waiting for another snapshot of " + fs + " to end (" + detail + ")", "another snapshot of " + fs + " ended"};
}

Result<Freeze> Freeze::acquire(Connection& c, const Keys& keys, std::chrono::milliseconds wait) {
  std::string key = keys.freeze();
  std::string token = random_hex(16);
  std::string ttl = std::to_string(k_freeze_ttl_ms);
  auto deadline = Clock::now() + wait;
  auto pause = std::chrono::milliseconds(20);
  ToolWait holder([&] { return _holder(c, keys); });
  for (;;) {
    TRY(check_cancel());
    auto sent = Clock::now();
    TRY_ASSIGN(Reply r, c.eval(lua::freeze_acquire, {key, keys.cow()}, {token, ttl}));
    if (r.view().integer() == 1) {
      holder.ended();
      return Freeze(std::move(key), std::move(token), sent);
    }
    if (Clock::now() >= deadline) {
      return _busy(c, keys);
    }
    holder.waiting();
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

static Error _lost(const std::string& key) {
  return make_error(EAGAIN, "the freeze " + key + " expired or was taken over while the copy ran");
}

Status Freeze::refresh(Connection& c) {
  if (!m_held) {
    return _lost(m_key);
  }
  auto sent = Clock::now();
  TRY_ASSIGN(Reply r, c.eval(lua::freeze_refresh, {m_key}, {m_token, std::to_string(k_freeze_ttl_ms)}));
  if (r.view().integer() != 1) {
    m_held = false;
    return _lost(m_key);
  }
  m_last_refresh = sent;
  return {};
}

Status Freeze::keep_alive(Connection& c) {
  if (Clock::now() - m_last_refresh < std::chrono::seconds(1)) {
    return {};
  }
  return refresh(c);
}

Result<bool> end_lease(Connection& c, lua::ScriptId script, const std::string& key, const std::string& token,
                       const std::string& token_field, Clock::time_point extended, std::chrono::milliseconds ttl) {
  for (bool again = false;; again = true) {
    auto r = c.eval(script, {key}, {token});
    if (r.ok()) {
      return r->view().integer() == 1;
    }
    if (r.error().fault != Fault::Lost || again) {
      return std::move(r).error();
    }
    TRY_ASSIGN(Reply held, token_field.empty() ? c.command({"GET", key}) : c.command({"HGET", key, token_field}));
    if (Clock::now() - extended >= ttl / 2) {
      return std::move(r).error();  // (it may have lapsed: nothing tells)
    }
    if (!held.view().is_string() || held.view().str() != token) {
      return true;
    }
  }
}

Status Freeze::release(Connection& c) {
  if (!m_held) {
    return _lost(m_key);
  }
  m_held = false;
  TRY_ASSIGN(bool ours, end_lease(c, lua::freeze_release, m_key, m_token, "", m_last_refresh,
                                  std::chrono::milliseconds(k_freeze_ttl_ms)));
  if (!ours) {
    return _lost(m_key);
  }
  return {};
}

// ---------------------------------------------------------------- copy-on-write

std::string endless_lease_hint(Connection& c, const std::string& key, const std::string& prefix) {
  auto ttl = c.command({"PTTL", key});
  if (!ttl.ok() || lease_ttl_plausible(ttl->view().integer())) {
    return {};
  }
  return _lease_hint(key, ttl->view().integer(), prefix);
}

std::string session_lapse_hint(Connection& c, const std::string& key, const std::string& prefix) {
  auto ttl = c.command({"PTTL", key});
  return ttl.ok() ? _lease_hint(key, ttl->view().integer(), prefix) : std::string();
}

bool cow_deadline_alive(std::int64_t deadline_ms, std::int64_t now_ms) {
  // (compared as a difference from a sane now: a hostile deadline near
  // int64's ends cannot overflow)
  return deadline_ms > now_ms && deadline_ms - now_ms <= k_lease_max_ms;
}

// cow_begin's error `e`: a superblock of the wrong type says so, another
// key of the wrong type gets the damage hint (its message is the script's).
static Error _cow_begin_error(Connection& c, const Keys& source, Error e) {
  if (c.broken() || !is_wrong_type(e)) {
    return e;
  }
  auto type = c.command({"TYPE", source.sb()});
  if (type.ok() && type->view().str() != "hash" && type->view().str() != "none") {
    return superblock_not_hash(source);
  }
  return with_damage_hint(std::move(e), {source.prefix()});
}

CowSnapshot::CowSnapshot(const Keys& source, std::string token)
    : m_cow(source.cow()), m_token(std::move(token)), m_alive(true),
      m_last_refresh(Clock::now()) {}

Result<CowSnapshot> CowSnapshot::begin(Connection& c, const Keys& source, const Keys& staging, std::string_view dst,
                                       Identity identity) {
  CowSnapshot cow(source, random_hex(16));
  if (identity == Identity::Snapshot) {
    cow.m_snapshot_id = random_hex(k_snapshot_id_len / 2);
  }
  const std::string keys[] = {source.freeze(),   source.cow(),       source.sb(),       staging.sb(),
                              staging.touched(), source.changed(),   staging.changed(), staging_index_key(staging),
                              source.mounts(),   source.installing()};
  const std::string args[] = {staging.prefix(),
                              cow.m_token,
                              std::to_string(k_freeze_ttl_ms),
                              std::to_string(k_temp_ttl_ms),
                              std::string(dst),
                              cow.m_snapshot_id,
                              identity == Identity::Clone ? "1" : "0",
                              std::to_string(static_cast<long long>(k_max_lineage)),
                              std::to_string(k_format_version)};
  auto frozen_since = Clock::now();
  auto pause = std::chrono::milliseconds(20);
  ToolWait holder([&] { return _holder(c, source); });
  for (;;) {
    TRY(check_cancel());
    cow.m_last_refresh = Clock::now();  // (when the instant that begins it is sent)
    auto r = c.eval(lua::cow_begin, keys, args);
    if (!r.ok()) {
      return r.error().code == ENOENT
                 ? make_error(ENOENT, "no filesystem at prefix " + redisfs::quoted(source.prefix()))
                 : _cow_begin_error(c, source, std::move(r).error());
    }
    ReplyView v = r->view();
    if (v.is_array() && v.size() == 1 && v[0].str() == "INSTALLING") {
      // (the journal of a mover that is gone: a mount, or the next tool
      // when no tool holds the prefix, finishes its move)
      Status unfinished = refuse_unfinished_install(c, source);
      if (unfinished.ok()) {
        return make_error(EAGAIN, "a move into " + redisfs::quoted(source.prefix()) + " ended meanwhile; try again");
      }
      return std::move(unfinished).error();
    }
    if (v.is_array() && v.size() == 1 && v[0].str() == "LAPSED") {
      // (sent again after a lost reply, it found its own instant dead)
      return make_error(EAGAIN, "the snapshot " + source.cow() +
                                    " lapsed while the server was out of reach, so the copy "
                                    "would not be one instant; try again");
    }
    if (!v.is_array() || v.size() < 2) {
      return make_error(EIO, "redis: bad reply from cow_begin");
    }
    if (v[0].str() == "OK" && v.size() == 4) {
      auto ns = v[1].as_int();
      cow.m_changed_staged = v[3].integer() == 1;
      if (!ns) {
        return make_error(EIO, "redis: bad reply from cow_begin");
      }
      cow.m_instant_ns = *ns;
      // (the caller removes it: only if it is a staging prefix of ours,
      // not whatever a damaged COW named)
      cow.m_dead = is_cow_staging(source.prefix(), v[2].str()) ? std::string(v[2].str()) : std::string();
      holder.ended();
      return cow;
    }
    if (v[1].str() != "frozen") {
      frozen_since = Clock::now();  // another snapshot: waited for as long as it lives
    } else if (Clock::now() - frozen_since > k_freeze_wait) {
      return make_error(EBUSY,
                        redisfs::quoted(source.prefix()) + " has been frozen (" + source.freeze() + ") for over " +
                            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(k_freeze_wait).count()) +
                            " s; try again later");
    }
    holder.waiting();
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

static Error _lapsed(const std::string& key) {
  return make_error(EAGAIN, "the snapshot " + key + " lapsed (its copier stalled for over " +
                                std::to_string(k_freeze_ttl_ms / 1000) + " s), so the copy would not be one instant");
}

Status CowSnapshot::refresh(Connection& c, std::uint64_t done, std::uint64_t total, std::string_view kept) {
  if (!m_alive) {
    return _lapsed(m_cow);
  }
  auto sent = Clock::now();
  std::vector<std::string> argv{m_token, std::to_string(k_freeze_ttl_ms), std::to_string(static_cast<long long>(done)),
                                std::to_string(static_cast<long long>(total))};
  if (!kept.empty()) {
    argv.emplace_back(kept);
  }
  const std::string cow[] = {m_cow};
  TRY_ASSIGN(Reply r, c.eval(lua::cow_refresh, cow, argv));
  const long long answer = r.view().integer();
  if (answer != 1 && answer != 2) {
    m_alive = false;
    return _lapsed(m_cow);
  }
  m_wanted = answer == 2;
  m_last_refresh = sent;
  return {};
}

Status CowSnapshot::keep_alive(Connection& c, std::uint64_t done, std::uint64_t total) {
  if (m_alive && Clock::now() - m_last_refresh < std::chrono::seconds(1)) {
    return {};
  }
  return refresh(c, done, total);
}

Status CowSnapshot::keep_noting(Connection& c, std::string_view kept) { return refresh(c, 0, 0, kept); }

Status CowSnapshot::end(Connection& c) {
  if (!m_alive) {
    return _lapsed(m_cow);
  }
  m_alive = false;
  TRY_ASSIGN(bool ours, end_lease(c, lua::cow_end, m_cow, m_token, "token", m_last_refresh,
                                  std::chrono::milliseconds(k_freeze_ttl_ms)));
  if (!ours) {
    return _lapsed(m_cow);
  }
  return {};
}

// RoomGuard::span below which the keeper looks more often: a quarter of
// 64 MiB.
static constexpr std::uint64_t k_look_often_below = std::uint64_t{16} << 20;

CowKeeper::CowKeeper(Pool& pool, CowSnapshot& cow, std::string room_what, Handover handover)
    : m_pool(pool),
      m_cow(cow),
      m_handover(std::move(handover)),
      m_room(std::make_unique<RoomGuard>(std::move(room_what), cow.key())) {
  m_thread = std::thread([this] { loop(); });
}

CowKeeper::~CowKeeper() { stop(); }

void CowKeeper::stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_wake.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

// A refresh or a look that fails for want of the server is tried again at
// the next tick (the snapshot outlives its last refresh by
// k_freeze_ttl_ms); a snapshot found lapsed, or ended for want of room,
// ends the loop: the copier's next step says so.
void CowKeeper::loop() {
  std::optional<Pool::Lease> lease;
  std::unique_lock<std::mutex> lock(m_mutex);
  // (every second; ten times as often on a server with less than 64 MiB
  // above the margin, where a writer fills the rest sooner)
  auto period = [this] {
    return m_room->span() < k_look_often_below ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
  };
  while (!m_wake.wait_for(lock, period(), [this] { return m_stop; })) {
    lock.unlock();
    if (!lease) {
      auto got = m_pool.acquire();
      if (got.ok()) {
        lease.emplace(std::move(got).value());
      }
    }
    if (lease) {
      Status room = m_room->check(**lease);
      if (!room.ok() && room.code() == ENOSPC) {
        m_why = room.error();
        (void)m_cow.end(**lease);
      } else {
        (void)m_cow.keep_alive(**lease, 0, 0);
        if (m_cow.alive() && m_cow.wanted() && m_handover && !m_handover_final) {
          hand_over(**lease);
        }
      }
    }
    lock.lock();
    if (!m_cow.alive()) {
      return;
    }
  }
}

// When the copies fail, the snapshot stays the copier's, and the other
// tool waits on: for want of room (EAGAIN), until a later look finds it.
void CowKeeper::hand_over(Connection& c) {
  Status handed = m_handover(c, m_cow, *m_room);
  if (handed.ok()) {
    m_handover_final = true;
    m_kept.reset();             // (the tool that waited has it now)
    m_handed_over.store(true);  // (before the end: a take that finds it ended may rely on it)
    (void)m_cow.end(c);
    return;
  }
  m_handover_final = handed.code() != EAGAIN;
  if (!m_kept) {
    (void)m_cow.keep_noting(c, handed.error().message);  // (once: the record is for the tool that waits)
  }
  m_kept = std::move(handed).error();
}

Status remove_staging(Connection& c, const Keys& staging) {
  TRY(unlink_listed(c, staging, staging_index_key(staging)));
  ScanWalk walk(c, {"SSCAN", staging.touched()}, {"COUNT", std::string(k_scan_count)});
  for (;;) {
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      break;
    }
    std::vector<std::string> argv{"UNLINK"};
    for (std::size_t i = 0; i < page->size(); ++i) {
      argv.push_back(staging.absolute((*page)[i].str()));
    }
    if (argv.size() > 1) {
      std::vector<std::string_view> views(argv.begin(), argv.end());
      TRY(c.command(std::span<const std::string_view>(views)));
    }
  }
  TRY(c.command({"UNLINK", staging.touched(), staging.sb()}));
  return {};
}

// The copier's scripts run while the writers wait (Redis runs one script
// at a time): each copies at most this many keys or (counting a block as a
// full one, anything else as 512 bytes) this many bytes, one round trip
// each, so a writer waits a few milliseconds at most, however large the
// filesystem.
static constexpr std::size_t k_cow_batch_keys = 128;
static constexpr std::size_t k_cow_batch_bytes = 4u << 20;

static Status _cow_copy_batch(Connection& c, const Keys& sk, const Keys& tk, const CowSnapshot& cow,
                              std::span<const std::string> rels, bool list, CowMode mode, std::span<long long> found);

// Copy-on-write, the copier's side: makes sure rels[i] is in tk as it was
// at the instant (cow_copy.lua), found[i] as a KeyVisitor says; with
// `list`, what tk has of them is appended to its index in the same step.
// `room`, if any, is told what each batch staged, about (room.hpp).
// CowMode::Probe: blocks are only looked at (copy_keys_cow).
static Status _cow_copy(Connection& c, const Keys& sk, const Keys& tk, const CowSnapshot& cow, std::uint32_t block_size,
                        std::span<const std::string> rels, bool list, std::vector<long long>& found,
                        RoomGuard* room = nullptr, CowMode mode = CowMode::Copy) {
  found.assign(rels.size(), -1);
  // (a probed block stages nothing: counted as any small key)
  const std::size_t block = mode == CowMode::Probe ? 512 : std::max<std::size_t>(block_size, 512);
  std::size_t from = 0;
  std::size_t bytes = 0;
  // (a batch within what the room guard lets pass before its next look)
  auto batch_bytes = [&] {
    return room != nullptr ? std::min<std::uint64_t>(k_cow_batch_bytes, room->until_due()) : k_cow_batch_bytes;
  };
  for (std::size_t i = 0; i < rels.size(); ++i) {
    bytes += parse_relative_key(rels[i]).kind == KeyKind::Block ? block : 512;
    if (i + 1 == rels.size() || i + 1 - from >= k_cow_batch_keys || bytes >= batch_bytes()) {
      TRY(_cow_copy_batch(c, sk, tk, cow, rels.subspan(from, i + 1 - from), list, mode,
                          std::span<long long>(found).subspan(from, i + 1 - from)));
      if (room != nullptr) {
        TRY(room->staged(c, bytes));
      }
      from = i + 1;
      bytes = 0;
    }
  }
  return {};
}

// cow_copy.lua's keys and arguments for a batch.
static std::pair<std::vector<std::string>, std::vector<std::string>> _cow_batch_args(const Keys& sk, const Keys& tk,
                                                                                     const CowSnapshot& cow,
                                                                                     std::span<const std::string> rels,
                                                                                     bool list, CowMode mode) {
  const std::size_t n = rels.size();
  std::vector<std::string> keys;
  keys.reserve(3 + 2 * n);
  keys.push_back(sk.cow());
  keys.push_back(tk.touched());
  keys.push_back(staging_index_key(tk));
  std::string kinds;
  kinds.reserve(n);
  for (const std::string& rel : rels) {
    keys.push_back(sk.absolute(rel));
    kinds.push_back(parse_relative_key(rel).kind == KeyKind::Block ? 'b' : '-');
  }
  for (const std::string& rel : rels) {
    keys.push_back(tk.absolute(rel));
  }
  static std::atomic<std::uint64_t> batches{0};  // (cow_copy.lua: a batch sent again lists nothing twice)
  const char* mode_name = mode == CowMode::Probe ? "probe" : mode == CowMode::Take ? "take" : "copy";
  return {std::move(keys),
          {cow.token(), std::to_string(k_temp_ttl_ms), std::move(kinds), list ? "1" : "0", std::to_string(++batches),
           mode_name}};
}

// found[i] from cow_copy.lua's reply `r` for n keys.
static Status _cow_found(Result<Reply> r, const Keys& sk, const Keys& tk, std::span<long long> found) {
  if (!r.ok()) {
    if (r.error().message.find("LOST") != std::string::npos) {
      return _lapsed(sk.cow());
    }
    return std::move(r).error();
  }
  ReplyView v = r->view();
  if (!v.is_array() || v.size() != found.size()) {
    return make_error(EIO, "redis: bad reply while copying " + sk.prefix() + " to " + tk.prefix());
  }
  for (std::size_t i = 0; i < found.size(); ++i) {
    found[i] = v[i].integer();
  }
  return {};
}

static Status _cow_copy_batch(Connection& c, const Keys& sk, const Keys& tk, const CowSnapshot& cow,
                              std::span<const std::string> rels, bool list, CowMode mode, std::span<long long> found) {
  auto [keys, args] = _cow_batch_args(sk, tk, cow, rels, list, mode);
  return _cow_found(c.eval(lua::cow_copy, keys, args), sk, tk, found);
}

void cow_take_batch(Connection& c, const Keys& sk, const Keys& tk, const CowSnapshot& cow,
                    std::span<const std::string> rels) {
  auto [keys, args] = _cow_batch_args(sk, tk, cow, rels, false, CowMode::Take);
  std::vector<std::string_view> kv(keys.begin(), keys.end());
  std::vector<std::string_view> av(args.begin(), args.end());
  c.append_eval(lua::cow_copy, kv, av);
}

Status cow_take_found(Result<Reply> reply, const Keys& sk, const Keys& tk, std::span<long long> found) {
  return _cow_found(std::move(reply), sk, tk, found);
}

Status cow_copy_listed_blocks(Connection& c, const Keys& sk, const Keys& tk, CowSnapshot& cow, RoomGuard* room) {
  TRY_ASSIGN(Reply bs, c.command({"HGET", tk.sb(), "block_size"}));
  const std::uint32_t block_size = static_cast<std::uint32_t>(
      std::clamp<long long>(bs.view().as_int().value_or(k_default_block_size), k_min_block_size, k_max_block_size));
  const std::string index = staging_index_key(tk);
  constexpr long long k_page = 1000;
  std::vector<std::string> rels;
  std::vector<long long> found;
  for (long long at = 0;; at += k_page) {
    TRY_ASSIGN(Reply page, c.command({"LRANGE", index, std::to_string(at), std::to_string(at + k_page - 1)}));
    ReplyView list = page.view();
    rels.clear();
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (parse_relative_key(list[i].str()).kind == KeyKind::Block) {
        rels.emplace_back(list[i].str());
      }
    }
    TRY(_cow_copy(c, sk, tk, cow, block_size, rels, false, found, room));
    TRY(cow.keep_alive(c, 0, 0));
    if (list.size() < static_cast<std::size_t>(k_page)) {
      return {};
    }
  }
}

Status cow_copy_keys(Connection& c, const Keys& sk, const Keys& tk, const CowSnapshot& cow,
                     std::span<const std::string> rels, std::vector<long long>& found, RoomGuard* room) {
  return _cow_copy(c, sk, tk, cow, 0, rels, true, found, room);
}

// The reference, for a filesystem whose structure disagrees with its
// superblock: every filesystem key SCAN finds under the source is made
// sure of, then the index is made again from what SCAN finds under the
// staging prefix (a key a script copied and then removed from the source
// is there only).
static Result<std::uint64_t> _cow_scan(Connection& c, const Keys& sk, const Keys& tk, CowSnapshot& cow,
                                       std::uint32_t block_size,
                                       const std::function<Status(std::span<const std::string_view>)>& after_page,
                                       RoomGuard* room) {
  // (the staging prefix's CHANGED is the snapshot's, staged by cow_begin;
  // the source's is never copied)
  auto fs_keys = [&tk](const Keys& keys, ReplyView list, std::vector<std::string>& rels) {
    rels.clear();
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto rel = keys.relative(list[i].str());
      KeyKind kind = rel ? parse_relative_key(*rel).kind : KeyKind::Unknown;
      if ((is_filesystem_key(kind) && kind != KeyKind::Superblock) || (&keys == &tk && kind == KeyKind::Changed)) {
        rels.emplace_back(*rel);
      }
    }
  };
  std::vector<std::string> rels;
  std::vector<long long> found;
  // (Walks that start over after a server restart copy nothing twice: a
  // key copied already answers so; and list nothing twice: `listed`.)
  std::uint64_t seen = 0;
  ScanWalk from = _scan(c, sk.match_all());
  for (;;) {
    TRY_ASSIGN(auto page, from.next());
    if (!page) {
      break;
    }
    fs_keys(sk, *page, rels);
    TRY(check_cancel());
    TRY(_cow_copy(c, sk, tk, cow, block_size, rels, false, found, room));
    seen += rels.size();
    TRY(cow.keep_alive(c, seen, 0));
  }
  const std::string index = staging_index_key(tk);
  TRY(c.command({"UNLINK", index}));
  std::unordered_set<std::string> listed;  // SCAN may return a key twice
  std::uint64_t copied = 0;
  std::vector<std::string_view> page_rels;
  ScanWalk to = _scan(c, tk.match_all());
  for (;;) {
    TRY_ASSIGN(auto page, to.next());
    if (!page) {
      return copied;
    }
    fs_keys(tk, *page, rels);
    page_rels.clear();
    for (const std::string& rel : rels) {
      if (listed.insert(rel).second) {
        page_rels.push_back(rel);
      }
    }
    TRY(push_index(c, index, page_rels));
    // The staged record is listed, but counted by the caller (changed_staged).
    copied += static_cast<std::uint64_t>(std::count_if(page_rels.begin(), page_rels.end(), [](std::string_view rel) {
      return parse_relative_key(rel).kind != KeyKind::Changed;
    }));
    if (after_page) {
      TRY(after_page(page_rels));
    }
    TRY(cow.keep_alive(c, seen, 0));
  }
}

Result<std::uint64_t> copy_keys_cow(Connection& c, const Keys& sk, const Keys& tk, CowSnapshot& cow,
                                    const std::function<Status(std::span<const std::string_view> copied)>& after_page,
                                    std::string* warning, RoomGuard* room, CowMode blocks) {
  KeyWalkOptions opts;
  opts.source = &sk;
  KeyWalk walk(c, tk, opts);
  TRY(walk.begin());
  std::uint64_t copied = 0;
  std::vector<std::string_view> done;
  auto visit = [&](std::span<const std::string> rels, std::vector<long long>& found) -> Status {
    TRY(check_cancel());
    TRY(_cow_copy(c, sk, tk, cow, walk.block_size(), rels, true, found, room, blocks));
    done.clear();
    for (std::size_t i = 0; i < rels.size(); ++i) {
      if (found[i] != -1) {
        done.push_back(rels[i]);
      }
    }
    copied += done.size();
    if (after_page) {
      TRY(after_page(done));
    }
    return cow.keep_alive(c, walk.inodes_found(), walk.inodes_expected());
  };
  TRY_ASSIGN(KeyWalkResult walked, walk.run(visit));
  if (walked.disagreement.empty()) {
    return copied + 1;
  }
  if (warning != nullptr) {
    add_warning(*warning, "the structure of " + redisfs::quoted(sk.prefix()) + " disagrees with its superblock (" +
                              walked.disagreement +
                              "), so its keys were found by SCAN; check it with `redisfs-snap fsck " + sk.prefix() +
                              "`");
  }
  TRY_ASSIGN(std::uint64_t scanned, _cow_scan(c, sk, tk, cow, walk.block_size(), after_page, room));
  return scanned + 1;
}

// ---------------------------------------------------------------- copy

// Between two slots (a cluster, and prefixes with different hash tags: the
// destination may be on another shard) the server cannot COPY: the client
// carries each key, DUMP from the source and RESTORE to the destination
// with the TTL, still under the source's freeze. A destination that exists
// already (SCAN returned the source twice) is not copied, as COPY without
// REPLACE would not; the destinations are the caller's private staging
// prefix, so looking first (EXISTS, in the same pipeline as DUMP) is not a
// race. A batch holds at most k_transfer_bytes of payloads.
static constexpr std::size_t k_transfer_bytes = 16u << 20;

bool same_slot(const Keys& a, const Keys& b) { return key_slot(a.sb()) == key_slot(b.sb()); }

// One batch of keys through the client; `out[i]` = 1 when keys[i] was
// restored as dkeys[i].
static Status _transfer_batch(Connection& c, std::span<const std::string> keys, std::span<const std::string> dkeys,
                              const std::string& ttl, std::vector<char>& out) {
  out.assign(keys.size(), 0);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    c.append({"DUMP", keys[i]});
    c.append({"EXISTS", dkeys[i]});
  }
  TRY_ASSIGN(std::vector<Reply> dumped, c.read_all());
  std::size_t restores = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ReplyView payload = dumped[2 * i].view();
    if (payload.is_nil() || dumped[2 * i + 1].view().integer() != 0) {
      continue;  // gone, or copied already
    }
    c.append({"RESTORE", dkeys[i], ttl, payload.str()});
    out[i] = 1;
    ++restores;
  }
  if (restores > 0) {
    auto restored = c.read_all();
    if (!restored.ok()) {
      return make_error(restored.error().code, "RESTORE into " + dkeys[0].substr(0, dkeys[0].find(':')) + ": " +
                                                   restored.error().message);
    }
  }
  return {};
}

// The keys of one SCAN page (`keys`: n sources, then their n destinations),
// through the client in batches; `copied[i]` as above.
static Status _transfer_page(Connection& c, std::span<const std::string> keys, long long ttl_ms,
                             std::size_t block_size, std::vector<char>& copied) {
  const std::size_t n = keys.size() / 2;
  const std::size_t batch = std::clamp<std::size_t>(k_transfer_bytes / std::max<std::size_t>(block_size, 1), 4, 256);
  const std::string ttl = std::to_string(ttl_ms);
  copied.assign(n, 0);
  std::vector<char> out;
  for (std::size_t at = 0; at < n; at += batch) {
    std::size_t m = std::min(batch, n - at);
    TRY(_transfer_batch(c, keys.subspan(at, m), keys.subspan(n + at, m), ttl, out));
    std::copy(out.begin(), out.end(), copied.begin() + static_cast<std::ptrdiff_t>(at));
  }
  return {};
}

// Copies sk:rels[i] to dk:rels[i], never over an existing key, each copy
// with the TTL (if any); found[i] as a KeyVisitor says (-1 not copied, a
// block's length).
static Status _copy_batch(Connection& c, const Keys& sk, const Keys& dk, std::span<const std::string> rels,
                          std::optional<long long> ttl_ms, std::size_t block_size, std::vector<long long>& found) {
  const std::size_t n = rels.size();
  found.assign(n, -1);
  if (n == 0) {
    return {};
  }
  std::vector<std::string> keys;
  keys.reserve(2 * n);
  std::string kinds;
  kinds.reserve(n);
  for (const std::string& rel : rels) {
    keys.push_back(sk.absolute(rel));
    kinds.push_back(parse_relative_key(rel).kind == KeyKind::Block ? 'b' : '-');
  }
  for (const std::string& rel : rels) {
    keys.push_back(dk.absolute(rel));
  }
  std::vector<char> copied;
  TRY(_transfer_page(c, keys, ttl_ms.value_or(0), block_size, copied));
  std::vector<std::size_t> blocks;
  for (std::size_t i = 0; i < n; ++i) {
    if (copied[i] != 0) {
      found[i] = 0;
      if (kinds[i] == 'b') {
        c.append({"STRLEN", keys[n + i]});
        blocks.push_back(i);
      }
    }
  }
  for (std::size_t i : blocks) {
    auto len = c.read_reply();
    if (!len.ok() && c.broken()) {
      return std::move(len).error();
    }
    found[i] = len.ok() ? len->view().integer() : -2;
  }
  return {};
}

// copy_keys_frozen's reference: every filesystem key of `sk` but the
// superblock that SCAN finds, page by page, to `copy`.
static Status _copy_scanned(Connection& c, const Keys& sk,
                            const std::function<Status(std::span<const std::string>, std::vector<long long>&)>& copy) {
  std::vector<std::string> rels;
  std::vector<long long> found;
  ScanWalk scan = _scan(c, sk.match_all());
  for (;;) {
    TRY_ASSIGN(auto page, scan.next());
    if (!page) {
      return {};
    }
    ReplyView list = *page;
    rels.clear();
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto rel = sk.relative(list[i].str());
      KeyKind kind = rel ? parse_relative_key(*rel).kind : KeyKind::Unknown;
      if (is_filesystem_key(kind) && kind != KeyKind::Superblock) {
        rels.emplace_back(*rel);
      }
    }
    TRY(copy(rels, found));
  }
}

// Step 3, with the freeze held: the keys named by the structure (the
// walk, key_walk.hpp), or, when the structure disagrees with the
// superblock, found by SCAN. Returns the number of keys copied.
Result<std::uint64_t> copy_keys_frozen(
    Connection& c, const Keys& sk, const Keys& dk, Freeze& freeze, std::optional<long long> ttl_ms,
    const std::function<Status(std::span<const std::string_view> copied)>& after_page, std::string* warning,
    RoomGuard* room) {
  KeyWalk walk(c, sk);
  TRY(walk.begin());
  const std::size_t block_size = walk.block_size() != 0 ? walk.block_size() : k_default_block_size;
  std::uint64_t copied = 0;
  std::vector<std::string_view> done;
  std::vector<long long> part;
  // One batch: copied, handed to after_page, told to the room guard.
  auto batch = [&](std::span<const std::string> rels, std::span<long long> out, std::size_t bytes) -> Status {
    TRY(check_cancel());
    TRY(_copy_batch(c, sk, dk, rels, ttl_ms, block_size, part));
    std::copy(part.begin(), part.end(), out.begin());
    done.clear();
    for (std::size_t i = 0; i < rels.size(); ++i) {
      if (out[i] != -1) {
        done.push_back(rels[i]);
      }
    }
    copied += done.size();
    if (after_page) {
      TRY(after_page(done));
    }
    if (room != nullptr) {
      TRY(room->staged(c, bytes));
    }
    return freeze.keep_alive(c);
  };
  // A page in batches within what the room guard lets pass before its
  // next look (as _cow_copy).
  const std::size_t block = std::max<std::size_t>(block_size, 512);
  auto copy = [&](std::span<const std::string> rels, std::vector<long long>& out) -> Status {
    out.assign(rels.size(), -1);
    if (rels.empty()) {
      TRY(check_cancel());
      return freeze.keep_alive(c);
    }
    std::size_t from = 0;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < rels.size(); ++i) {
      bytes += parse_relative_key(rels[i]).kind == KeyKind::Block ? block : 512;
      if (i + 1 == rels.size() || (room != nullptr && bytes >= room->until_due())) {
        TRY(batch(rels.subspan(from, i + 1 - from), std::span<long long>(out).subspan(from, i + 1 - from), bytes));
        from = i + 1;
        bytes = 0;
      }
    }
    return Status{};
  };
  TRY_ASSIGN(KeyWalkResult walked, walk.run(copy));
  if (walked.disagreement.empty()) {
    return copied;
  }
  // The reference: every filesystem key SCAN finds. Those copied already
  // answer -1 (the destination exists).
  if (warning != nullptr) {
    add_warning(*warning, "the structure of " + redisfs::quoted(sk.prefix()) + " disagrees with its superblock (" +
                              walked.disagreement +
                              "), so its keys were found by SCAN; check it with `redisfs-snap fsck " + sk.prefix() +
                              "`");
  }
  TRY(_copy_scanned(c, sk, copy));
  return copied;
}

Status push_index(Connection& c, const std::string& index, std::span<const std::string_view> rels) {
  if (rels.empty()) {
    return {};
  }
  std::vector<std::string_view> push{"RPUSH", index};
  push.insert(push.end(), rels.begin(), rels.end());
  c.append(std::span<const std::string_view>(push));
  const std::string ttl = std::to_string(k_temp_ttl_ms);
  c.append({"PEXPIRE", index, ttl});
  TRY_ASSIGN(std::vector<Reply> replies, c.read_all());
  return expire_made_key(c, replies[1], index, ttl);
}

// A frozen snapshot's change tracking (keys.hpp, CHANGED). It is taken
// into another cluster slot (snapshot_to_staging), where the record cannot
// be moved, so the snapshot has none (an incremental dump of it compares
// every block); a live source starts a fresh record counting from the new
// id `id` and gets the format version of tracking (changes_restart.lua).
static Status _restart_changes(Connection& c, const Keys& sk, const std::string& id) {
  TRY(c.eval(lua::changes_restart, {sk.sb(), sk.changed(), sk.mounts()}, {id, std::to_string(k_format_version)}));
  return {};
}

// Step 3 and the superblock, with the freeze held, into the staging prefix
// `tk` (every key with the staging TTL). Returns the number of keys copied.
static Result<std::uint64_t> _copy_frozen(Connection& c, const Keys& sk, const Keys& tk, Freeze& freeze,
                                          const CopyOptions& opts, std::int64_t snapshot_ns, Progress& progress,
                                          RoomGuard& room, std::string& warning) {
  // The list of what was copied: the swap walks it (install.hpp) instead
  // of SCANning the server again.
  const std::string index = staging_index_key(tk);
  TRY_ASSIGN(std::uint64_t copied, copy_keys_frozen(
                                       c, sk, tk, freeze, k_temp_ttl_ms,
                                       [&](std::span<const std::string_view> page) -> Status {
                                         progress.add(page.size());
                                         TRY(push_index(c, index, page));
                                         crash_if_injected("copy-staging");
                                         return Status{};
                                       },
                                       &warning, &room));

  std::string snap = std::to_string(snapshot_ns);
  const std::string ttl = std::to_string(k_temp_ttl_ms);
  Reply payload;  // another slot: the superblock travels through the client
  if (c.cluster() && !same_slot(sk, tk)) {
    TRY_ASSIGN(payload, c.command({"DUMP", sk.sb()}));
    if (payload.view().is_nil()) {
      return make_error(EIO, sk.sb() + " vanished while it was frozen");
    }
  }
  // The lineage (superblock.hpp), read and extended under the freeze (the
  // instant: no change script runs meanwhile; on a cluster the source may
  // be in another slot than the MULTI below): a read-only snapshot appends
  // its new id to the source's (unless the source is a snapshot itself: its
  // lineage ends with its own id and stays so); a clone has no snapshot_id.
  TRY_ASSIGN(Reply source, c.command({"HMGET", sk.sb(), "lineage", "snapshot_id", "version"}));
  ReplyView lineage = source.view()[0];
  const bool source_is_snapshot = !source.view()[1].is_nil();
  // A snapshot's own superblock is of the format version of tracking
  // (superblock.hpp), never lower than its source's.
  std::uint64_t version = 0;
  if (!parse_canonical_u64(source.view()[2].is_nil() ? "" : source.view()[2].str(), version) ||
      version < static_cast<std::uint64_t>(k_format_version)) {
    version = static_cast<std::uint64_t>(k_format_version);
  }
  const std::string id = opts.writable ? std::string() : random_hex(k_snapshot_id_len / 2);
  const std::string extended = opts.writable ? std::string() :
      extend_lineage(parse_lineage(lineage.is_nil() ? "" : lineage.str()).value_or(
                         std::vector<std::string>{}), id);
  if (!opts.writable && !source_is_snapshot) {
    TRY(c.command({"HSET", sk.sb(), "lineage", extended}));
    TRY(_restart_changes(c, sk, id));
  }
  std::vector<Args> tx;
  if (payload.empty()) {
    tx.push_back({"COPY", sk.sb(), tk.sb()});
  } else {
    tx.push_back({"RESTORE", tk.sb(), ttl, std::string(payload.view().str())});
  }
  tx.push_back(
      {"HSET", tk.sb(), "origin", sk.prefix(), "snapshot_created", snap, "read_only", opts.writable ? "0" : "1"});
  if (opts.writable) {
    tx.push_back({"HDEL", tk.sb(), "snapshot_id"});
  } else {
    tx.push_back({"HSET", tk.sb(), "snapshot_id", id, "lineage", extended, "version", std::to_string(version)});
  }
  tx.push_back({"PEXPIRE", tk.sb(), ttl});
  TRY_ASSIGN(Reply replies, c.transaction(tx));
  ReplyView exec = replies.view();
  bool sb_copied = exec.is_array() && exec.size() == 4 &&
                   (payload.empty() ? exec[0].integer() == 1 : exec[0].type() == ReplyView::Type::Simple);
  if (!sb_copied) {
    return make_error(EIO, "cannot copy the superblock to " + tk.sb());
  }
  progress.add(1);
  return copied + 1;
}

// The snapshot's own superblock fields, on the staged copy.
static Status _mark_snapshot(Connection& c, const Keys& sk, const Keys& tk, std::int64_t snapshot_ns, bool writable) {
  TRY(c.command({"HSET", tk.sb(), "origin", sk.prefix(), "snapshot_created", std::to_string(snapshot_ns), "read_only",
                 writable ? "0" : "1"}));
  return {};
}

// What a failed copy says of what it had copied: removed, or (the server
// out of reach, say) left to expire with its staging TTL.
template <class T>
static std::string _partial_copy(const Result<T>& removed) {
  if (removed.ok()) {
    return " (the partial copy was removed)";
  }
  return " (the partial copy could not be removed: " + removed.error().message + "; its keys expire within " +
         std::to_string(k_temp_ttl_ms / 3600000) + " h)";
}

// Copy-on-write (CowSnapshot) into the staging prefix `tk`, made from the
// source's name (its slot). On failure nothing of `tk` is left (what a
// crash leaves expires, or the next snapshot removes it).
static Result<std::pair<std::uint64_t, std::int64_t>> _cow_to_staging(Connection& c, const Keys& sk, const Keys& tk,
                                                                      std::string_view what, bool writable,
                                                                      Progress& progress, RoomGuard& room,
                                                                      std::string& warning) {
  TRY_ASSIGN(CowSnapshot cow, CowSnapshot::begin(c, sk, tk, what, writable ? Identity::Clone : Identity::Snapshot));
  if (!cow.dead_staging().empty()) {
    (void)remove_staging(c, Keys(cow.dead_staging()));
  }
  auto fail = [&](const Error& e) -> Error {
    c.drain();
    if (fault_injected("copy-slow-cleanup")) {  // tests: a second signal while it cleans up
      std::this_thread::sleep_for(std::chrono::seconds(3));
    }
    if (cow.alive()) {
      (void)cow.end(c);
    }
    return make_error(e.code, e.message + _partial_copy(remove_staging(c, tk)));
  };
  auto copied = copy_keys_cow(
      c, sk, tk, cow,
      [&](std::span<const std::string_view> page) -> Status {
        progress.add(page.size());
        crash_if_injected("copy-staging");
        // tests: a copy long enough to write during, or to interrupt
        if (fault_injected("copy-staging-slow") || fault_injected("copy-slow-cleanup")) {
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        return {};
      },
      &warning, &room);
  if (!copied.ok()) {
    return fail(copied.error());
  }
  Status ended = cow.end(c);
  if (!ended.ok()) {
    return fail(ended.error());
  }
  Status marked = _mark_snapshot(c, sk, tk, cow.instant_ns(), writable);
  if (marked.ok()) {
    auto unlinked = c.command({"UNLINK", tk.touched()});
    marked = unlinked.ok() ? Status{} : Status(unlinked.error());
  }
  if (!marked.ok()) {
    return fail(marked.error());
  }
  progress.add(1);
  return std::make_pair(*copied + (cow.changed_staged() ? 1 : 0), cow.instant_ns());
}

// Freeze SRC, copy it into the staging prefix `tk`, unfreeze. On failure
// nothing of `tk` is left.
static Result<std::pair<std::uint64_t, std::int64_t>> _copy_to_staging(Connection& c, const Keys& sk, const Keys& tk,
                                                                       const CopyOptions& opts, Progress& progress,
                                                                       RoomGuard& room, std::string& warning) {
  TRY_ASSIGN(Freeze freeze, Freeze::acquire(c, sk));
  auto fail = [&](const Error& e) -> Error {
    c.drain();
    if (freeze.held()) {
      (void)freeze.release(c);
    }
    // (what a crash leaves expires)
    return make_error(e.code, e.message + _partial_copy(unlink_listed(c, tk, staging_index_key(tk))));
  };
  // (under its freeze, a journal is a mover's that is gone: cow_begin.lua)
  if (Status unfinished = refuse_unfinished_install(c, sk); !unfinished.ok()) {
    return fail(unfinished.error());
  }
  auto snapshot_ns = server_time_ns(c, sk.sb());  // (the instant by SRC's clock, as copy-on-write's)
  if (!snapshot_ns.ok()) {
    return fail(snapshot_ns.error());
  }
  auto copied = _copy_frozen(c, sk, tk, freeze, opts, *snapshot_ns, progress, room, warning);
  if (!copied.ok()) {
    return fail(copied.error());
  }
  Status released = freeze.release(c);
  if (!released.ok()) {
    return fail(make_error(released.code(), released.error().message + ", so it would not be point-in-time"));
  }
  return std::make_pair(*copied, *snapshot_ns);
}

// The session of the live writeback mount that holds the filesystem, if
// one does: a claim that is no string, or names a session whose key is
// gone (a crash, a claim that never lapses), holds nothing to wait for
// (a warning says so; the mount and fsck say the same).
static Result<std::optional<std::string>> _writeback_holder(Connection& c, const Keys& sk, std::string& warning) {
  auto held = c.command({"GET", sk.writeback()});
  if (!held.ok() && c.broken()) {
    return std::move(held).error();
  }
  if (held.ok() && held->view().is_nil()) {
    return std::optional<std::string>();
  }
  const std::string repair = "`redisfs-snap fsck --repair " + sk.prefix() + "` removes it";
  if (!held.ok()) {
    add_warning(warning, sk.writeback() + " is no string (" + held.error().message +
                             "): no writeback mount to wait for; " + repair);
    return std::optional<std::string>();
  }
  std::string session(held->view().str());
  TRY_ASSIGN(Reply live, c.command({"EXISTS", sk.mount(session)}));
  if (live.view().integer() != 1) {
    add_warning(warning, sk.writeback() + " names session " + redisfs::quoted(session) +
                             ", which no live mount has: no writeback mount to wait for (if the claim never "
                             "lapses, " +
                             repair + ")");
    return std::optional<std::string>();
  }
  return std::optional<std::string>(std::move(session));
}

Status sync_writeback_mount(Connection& c, const Keys& sk, std::chrono::milliseconds wait, std::string& warning) {
  TRY_ASSIGN(std::optional<std::string> holder, _writeback_holder(c, sk, warning));
  if (!holder) {
    return {};
  }
  // (by the clock of the mount's server, as another snapshot's request)
  TRY_ASSIGN(std::int64_t now_ns, server_time_ns(c, sk.sync()));
  const std::int64_t asked = now_ns / 1000;
  const std::string ask = std::string(k_sync_ask) + std::to_string(asked);
  const std::string ttl = std::to_string(wait.count() + 10000);
  TRY(c.command({"SET", sk.sync(), ask, "PX", ttl}));
  const auto deadline = Clock::now() + wait;
  // (said past k_writeback_note_after: the mount looks every 2 s, so a
  // wait of a second or two is the rule)
  ToolWait mount(
      [&] {
        std::string what = "the writeback mount of " + redisfs::quoted(sk.prefix());
        return ToolWait::Words{
            "waiting for " + what + " to send what it holds (" + sk.sync() + ", session " + redisfs::quoted(*holder) +
                ", up to " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait).count()) + " s)",
            "the wait for " + what + " is over"};
      },
      k_writeback_note_after);
  for (;;) {
    TRY(check_cancel());
    c.append({"GET", sk.sync()});
    c.append({"EXISTS", sk.writeback(), sk.mount(*holder)});
    TRY_ASSIGN(std::vector<Reply> r, c.read_all());
    if (r[1].view().integer() != 2) {
      mount.ended();
      return {};  // the mount ended: an unmount sends everything first (a crash: nothing to wait for)
    }
    const std::string_view v = r[0].view().is_nil() ? std::string_view() : r[0].view().str();
    if (v.starts_with(k_sync_done)) {
      // Answered for this request or a later one (another snapshot's,
      // asked after ours): every write made before ours is on the server.
      std::uint64_t done = 0;
      if (parse_u64(v.substr(k_sync_done.size()), done) && static_cast<std::int64_t>(done) >= asked) {
        // No debris: another snapshot asking meanwhile finds the request
        // gone and asks again.
        TRY(c.command({"DEL", sk.sync()}));
        mount.ended();
        return {};
      }
    }
    if (!v.starts_with(k_sync_ask)) {
      // Answered for an earlier request, over ours, or gone: asked again.
      TRY(c.command({"SET", sk.sync(), ask, "PX", ttl}));
    }
    if (Clock::now() >= deadline) {
      add_warning(warning,
                  "the writeback mount of " + redisfs::quoted(sk.prefix()) + " did not send what it holds within " +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait).count()) +
                      " s: the snapshot has what the server has (what was fsync'ed or closed before a syncfs)");
      return {};
    }
    mount.waiting();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// A snapshot of SRC in the staging prefix `tk`: copy-on-write where the
// server can (`tk` in SRC's slot), else frozen; its unlinked-but-open files
// dropped. On failure nothing of `tk` is left.
Result<std::pair<std::uint64_t, std::int64_t>> snapshot_to_staging(Connection& c, const Keys& sk, const Keys& tk,
                                                                   const Keys& dk, const CopyOptions& opts,
                                                                   Progress& progress, std::string& warning) {
  TRY(sync_writeback_mount(c, sk, k_writeback_sync_wait, warning));
  RoomGuard room("the copy", tk.sb());  // (in DST's slot when the copy freezes: not SRC's node)
  if (Status room_now = room.check(c); !room_now.ok()) {
    return make_error(room_now.code(), "copy " + sk.prefix() + ": " + room_now.error().message);
  }
  const bool cow = !c.cluster() || same_slot(sk, tk);
  auto copied = cow ? _cow_to_staging(c, sk, tk, dk.prefix(), opts.writable, progress, room, warning)
                    : _copy_to_staging(c, sk, tk, opts, progress, room, warning);
  if (!copied.ok()) {
    return make_error(copied.error().code, "copy " + sk.prefix() + ": " + copied.error().message);
  }
  auto dropped = drop_staged_orphans(c, tk);
  if (!dropped.ok()) {
    auto removed = unlink_all(c, tk);
    auto index = c.command({"UNLINK", staging_index_key(tk)});
    const Status both = !removed.ok() ? Status(removed.error()) : !index.ok() ? Status(index.error()) : Status{};
    return make_error(dropped.error().code,
                      "copy " + sk.prefix() + ": " + dropped.error().message + _partial_copy(both));
  }
  return std::make_pair(copied->first - *dropped, copied->second);
}

// How many keys a copy of `keys` makes, about, from the superblock's
// counters alone: an INODE per inode and a block per block_size of stored
// bytes (plus the superblock); DIR and XATTR keys come on top. For
// progress only.
static Result<std::uint64_t> _estimate_keys(Connection& c, const Keys& keys) {
  TRY_ASSIGN(Reply r, c.command({"HMGET", keys.sb(), "inodes", "bytes", "block_size"}));
  ReplyView v = r.view();
  std::uint64_t n[3] = {0, 0, 0};
  for (std::size_t i = 0; i < 3 && i < v.size(); ++i) {
    if (!v[i].is_nil()) {
      std::string_view t = v[i].str();
      std::from_chars(t.data(), t.data() + t.size(), n[i]);
    }
  }
  return n[0] + (n[2] > 0 ? (n[1] + n[2] - 1) / n[2] : 0) + 1;
}

// The destination of a copy, reserved: an interrupted install into it
// finished (what was done added to `warning`), then refused if it holds
// keys (unless `force`) or is mounted.
static Result<PrefixState> _copy_target(Connection& c, const Keys& dk, bool force, std::string& warning) {
  const std::string& dst = dk.prefix();
  TRY_ASSIGN(std::string finished, finish_install(c, dk));
  add_warning(warning, finished);
  // (--force replaces any key under DST: one that shows no filesystem is
  // looked for by SCAN, whatever the server holds besides)
  TRY_ASSIGN(PrefixState target, probe_prefix(c, dk, force));
  if (target.any_key && !force) {
    return make_error(EEXIST, "prefix " + redisfs::quoted(dst) + " already holds keys; use --force to replace it");
  }
  if (target.mounts > 0) {
    return make_error(EBUSY, redisfs::quoted(dst) + " " + mounted_count(target.mounts) +
                                 "; unmount it before replacing it" + target.mounts_hint);
  }
  return target;
}

Result<CopyStats> copy_filesystem(Pool& pool, const std::string& src, const std::string& dst,
                                  const CopyOptions& opts) {
  TRY(validate_prefix(src));
  TRY(validate_prefix(dst));
  if (src == dst) {
    return make_error(EINVAL, "source and destination are the same prefix " + redisfs::quoted(src));
  }
  TRY(refuse_temp_name(dst, "the destination of a copy"));
  auto start = Clock::now();
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY(check_toolkit_prefix(c, src));
  TRY(check_toolkit_prefix(c, dst));
  Keys sk(src);
  Keys dk(dst);

  // (an interrupted move into SRC is no state to copy: finished first)
  std::string warning;
  TRY(finish_install_before_read(pool, sk, true, warning));
  TRY_ASSIGN(Reply exists, c.command({"EXISTS", sk.sb()}));
  if (exists.view().integer() != 1) {
    return make_error(ENOENT, "no filesystem at prefix " + redisfs::quoted(src));
  }
  // Reserved first, then looked at: no mount can start on DST from here on
  // (install.hpp).
  TRY_ASSIGN(auto reservation, Reservation::acquire(pool, dk, "copy from " + src));
  TRY_ASSIGN(PrefixState target, _copy_target(c, dk, opts.force, warning));

  Progress progress("copy " + src + " -> " + dst, 0, "keys", opts.quiet);
  if (auto estimate = _estimate_keys(c, sk); estimate.ok() && *estimate > 0) {
    progress.set_total(*estimate, true);
  }
  // Copy-on-write where the staging prefix (made from SRC's name, so in its
  // slot) can be moved to DST by the server: always, but on a cluster with
  // DST in another slot, which freezes SRC while the client carries the
  // keys instead.
  const bool cow = !c.cluster() || same_slot(sk, dk);
  Keys tk(make_temp_prefix(cow ? src : dst, TempKind::Copy));
  auto copied = snapshot_to_staging(c, sk, tk, dk, opts, progress, warning);
  progress.finish();
  if (!copied.ok()) {
    return std::move(copied).error();
  }
  // What the cheap probe could not see: a key of DST the copy would take.
  auto collision = target.any_key ? Result<std::optional<std::string>>(std::nullopt) : find_collision(c, tk, dk);
  if (collision.ok() && *collision && !opts.force) {
    collision = make_error(EEXIST, "prefix " + redisfs::quoted(dst) + " already holds keys (" + redisfs::quoted(**collision) +
                                       "); use --force to replace it");
  }
  if (!collision.ok()) {
    (void)unlink_listed(c, tk, staging_index_key(tk));
    return make_error(collision.error().code, "copy " + src + " -> " + dst + ": " + collision.error().message);
  }
  Status still = reservation->verify(c);
  const bool replace = target.any_key || collision->has_value();
  auto installed = still.ok() ? install_staging(c, tk, dk, replace, copied->first, true)
                              : Result<InstallResult>(still.error());
  if (!installed.ok()) {
    (void)unlink_all(c, tk);
    (void)c.command({"UNLINK", staging_index_key(tk)});
    return make_error(installed.error().code, "copy " + src + " -> " + dst + ": " + installed.error().message);
  }
  (void)reservation->release();

  CopyStats stats;
  stats.keys = installed->moved;
  stats.snapshot_ns = copied->second;
  stats.replaced = installed->replaced;
  stats.warning = warning;
  add_warning(stats.warning, installed->warning);
  TRY_ASSIGN(Reply bytes, c.command({"HGET", dk.sb(), "bytes"}));
  stats.bytes = static_cast<std::uint64_t>(bytes.view().as_int().value_or(0));
  stats.seconds = seconds_since(start);
  return stats;
}

// ---------------------------------------------------------------- delete

// With the freeze held: the superblock, then every key the structure names
// (and OPEN:<n>), then the mounts' register and what it names. The count of
// keys removed; `why` gets the structure's disagreement, if any.
static Result<std::uint64_t> _unlink_walked(Connection& c, const Keys& keys, Freeze& freeze, Progress& progress,
                                            std::string& why) {
  KeyWalkOptions opts;
  opts.opens = true;
  KeyWalk walk(c, keys, opts);
  TRY(walk.begin());
  TRY_ASSIGN(Reply sb, c.command({"UNLINK", keys.sb()}));
  std::uint64_t removed = static_cast<std::uint64_t>(sb.view().integer());
  TRY_ASSIGN(KeyWalkResult walked, walk.run([&](std::span<const std::string> rels,
                                                 std::vector<long long>& found) -> Status {
    std::vector<std::string> abs;
    abs.reserve(rels.size());
    std::string kinds;
    for (const std::string& rel : rels) {
      abs.push_back(keys.absolute(rel));
      kinds.push_back(parse_relative_key(rel).kind == KeyKind::Block ? 'b' : '-');
    }
    TRY_ASSIGN(Reply r, c.eval(lua::unlink_named, abs, std::span<const std::string>(&kinds, 1)));
    ReplyView v = r.view();
    if (!v.is_array() || v.size() != rels.size()) {
      return make_error(EIO, "redis: bad reply while deleting " + keys.prefix());
    }
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < rels.size(); ++i) {
      found[i] = v[i].integer();
      n += found[i] != -1 ? 1 : 0;
    }
    removed += n;
    progress.add(n);
    crash_if_injected("delete-batch");  // tests: a delete killed after its first batch (the superblock went first)
    return freeze.keep_alive(c);
  }));
  why = walked.disagreement;
  std::vector<std::string> sessions;
  if (auto listed = c.command({"HKEYS", keys.mounts()}); listed.ok()) {
    for (std::size_t i = 0; i < listed->view().size(); ++i) {
      sessions.emplace_back(listed->view()[i].str());
    }
  } else if (c.broken()) {
    return std::move(listed).error();
  } else {
    TRY_ASSIGN(sessions, _scanned_sessions(c, keys));  // (a register that is no hash)
  }
  std::vector<std::string> argv{"UNLINK", keys.mounts(), keys.installing(), keys.changed(), keys.sync()};
  for (const std::string& session : sessions) {
    argv.push_back(keys.mount(session));
    argv.push_back(keys.op_log(session));
  }
  TRY_ASSIGN(Reply rest, c.command(argv));
  return removed + static_cast<std::uint64_t>(rest.view().integer());
}

Result<DeleteStats> delete_prefix(Pool& pool, const std::string& prefix, bool even_if_mounted, bool quiet) {
  TRY(validate_prefix(prefix));
  auto start = Clock::now();
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY(check_toolkit_prefix(c, prefix));
  Keys keys(prefix);
  TRY_ASSIGN(auto reservation, Reservation::acquire(pool, keys, "delete"));
  TRY_ASSIGN(std::string finished, finish_install(c, keys));
  TRY_ASSIGN(PrefixState st, probe_prefix(c, keys, true));
  if (!st.any_key) {
    return make_error(ENOENT, "no key under prefix " + redisfs::quoted(prefix));
  }
  if (st.mounts > 0 && !even_if_mounted) {
    return make_error(EBUSY, redisfs::quoted(prefix) + " " + mounted_count(st.mounts) +
                                 "; unmount it first, or use --force" + st.mounts_hint);
  }
  Progress progress("delete " + prefix, 0, "keys", quiet);
  TRY_ASSIGN(Freeze freeze, Freeze::acquire(c, keys));
  DeleteStats stats;
  stats.warning = finished;
  std::string why = "there is no superblock";
  auto removed = st.has_sb ? _unlink_walked(c, keys, freeze, progress, why) : Result<std::uint64_t>(std::uint64_t{0});
  if (!removed.ok() && removed.error().fault == Fault::Lost) {
    // A batch's reply was lost (it may have run; unlink_named.lua is not
    // sent again: its answers feed the walk's cross-check). Deleting twice
    // is as deleting once: SCAN finds what is left. (The count is then
    // only what SCAN removed.)
    c.drain();
    removed = std::uint64_t{0};
    why = "a reply was lost";
  } else if (removed.ok() && !why.empty() && st.has_sb) {
    // The reference: whatever SCAN still finds under the prefix.
    add_warning(stats.warning, "the structure of " + redisfs::quoted(prefix) + " disagreed with its superblock (" +
                                   why + "), so the keys it did not name were found by SCAN");
  }
  if (removed.ok() && !why.empty()) {
    auto scanned = unlink_all(c, keys, &freeze, &progress);
    removed = scanned.ok() ? Result<std::uint64_t>(*removed + *scanned) : Result<std::uint64_t>(scanned.error());
  }
  c.drain();
  (void)freeze.release(c);  // a delete needs no point in time
  progress.finish();
  if (!removed.ok()) {
    return make_error(removed.error().code, "delete " + prefix + ": " + removed.error().message);
  }
  (void)c.command({"SREM", k_registry_key, prefix});  // last: still reserved, so no mkfs raced it
  stats.keys = *removed;
  stats.seconds = seconds_since(start);
  return stats;
}

// ---------------------------------------------------------------- list

static std::string _temp_kind_name(TempKind kind) {
  switch (kind) {
    case TempKind::Dump:
      return "dump-temp";
    case TempKind::Restore:
      return "restore-staging";
    case TempKind::Copy:
      return "copy-staging";
    case TempKind::Replaced:
      return "replaced";
    case TempKind::None:
      break;
  }
  return "filesystem";
}

// Every key matching `match` on the server, SCAN page by page, handed to
// `each` a page at a time (keys may repeat). On a Redis Cluster the keys
// are spread over the masters: each is scanned in turn, through a
// connection of our own (its keyless commands routed to that master), so
// the caller's connection keeps its routing.
static Status _scan_everywhere(Pool& pool, Connection& c, const std::string& match,
                               const std::function<void(ReplyView)>& each) {
  // (A walk that starts over after a server restart adds to what its
  // first pages found: a prefix removed in between may show.)
  auto scan = [&](Connection& on) -> Status {
    ScanWalk walk = _scan(on, match, k_list_scan_count);
    for (;;) {
      TRY_ASSIGN(auto page, walk.next());
      if (!page) {
        return {};
      }
      each(*page);
    }
  };
  if (!c.cluster()) {
    return scan(c);
  }
  TRY_ASSIGN(std::vector<std::string> masters, c.masters());
  TRY_ASSIGN(std::unique_ptr<Connection> node, Connection::open(pool.url(), "redisfs-snap"));
  for (const std::string& address : masters) {
    node->route_keyless_to_node(address);
    Status st = scan(*node);
    if (!st.ok()) {
      return make_error(st.code(), "list: scanning " + address + ": " + st.error().message);
    }
  }
  return {};
}

namespace {

// The prefixes `list` shows: those with a superblock, and (--all) those
// holding keys of the schema without one, whether they hold data keys
// (true) or only RESERVED.
struct Found {
  std::set<std::string> prefixes;
  std::map<std::string, bool> keyed;
};

using Copying = std::map<std::string, std::pair<std::string, int>>;  // staging -> destination, %

}  // namespace

// The register of filesystems when it answers (no SCAN of the server);
// otherwise (and for --all, which needs every key of the server) a SCAN,
// whose finds go into the register.
static Result<Found> _find_prefixes(Pool& pool, Connection& c, bool all) {
  Found found;
  auto& [prefixes, keyed] = found;
  auto registered = all ? Result<Reply>(make_error(EACCES, "--all")) : c.command({"SMEMBERS", k_registry_key});
  if (!registered.ok() && c.broken()) {
    return make_error(registered.error().code, "list: " + registered.error().message);
  }
  if (registered.ok() && registered->view().size() > 0) {
    // The register: no SCAN of the server.
    ReplyView v = registered->view();
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::string prefix(v[i].str());
      if (validate_prefix(prefix).ok() && temp_kind(prefix) == TempKind::None) {
        prefixes.insert(std::move(prefix));
      }
    }
    return found;
  }
  TRY(_scan_everywhere(pool, c, all ? "*" : "*:SB", [&](ReplyView list) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string_view key = list[i].str();
      auto colon = key.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        continue;
      }
      std::string prefix(key.substr(0, colon));
      KeyKind kind = parse_relative_key(key.substr(colon + 1)).kind;
      if (kind == KeyKind::Superblock) {
        if (all || temp_kind(prefix) == TempKind::None) {
          prefixes.insert(std::move(prefix));
        }
      } else if (kind != KeyKind::Unknown && kind != KeyKind::Mount && kind != KeyKind::Mounts &&
                 kind != KeyKind::Writeback && kind != KeyKind::Sync && kind != KeyKind::Freeze &&
                 kind != KeyKind::Cow && kind != KeyKind::OpLog && validate_prefix(prefix).ok()) {
        keyed[prefix] = keyed[prefix] || kind != KeyKind::Reserved;
      }
    }
  }));
  // What the register lacked (filesystems an older redisfs made): in it
  // from now on (best effort, as register_filesystem).
  std::vector<std::string> argv{"SADD", std::string(k_registry_key)};
  for (const std::string& p : prefixes) {
    if (temp_kind(p) == TempKind::None) {
      argv.push_back(p);
    }
  }
  if (argv.size() > 2) {
    (void)c.command(argv);
  }
  return found;
}

// The live mounts of each prefix found, from its register (no second SCAN).
static Result<std::map<std::string, std::uint64_t>> _live_mounts(Connection& c, const Found& found) {
  std::map<std::string, std::uint64_t> mounts;
  std::vector<std::string> counted(found.prefixes.begin(), found.prefixes.end());
  for (const auto& [p, has_data] : found.keyed) {
    if (found.prefixes.count(p) == 0) {
      counted.push_back(p);
    }
  }
  for (const std::string& p : counted) {
    c.append({"HKEYS", Keys(p).mounts()});
  }
  std::vector<std::pair<std::string, std::string>> sessions;  // prefix, session
  for (const std::string& p : counted) {
    auto r = c.read_reply();
    if (!r.ok() && c.broken()) {
      c.drain();
      return make_error(r.error().code, "list: " + p + ": " + r.error().message);
    }
    for (std::size_t i = 0; r.ok() && i < r->view().size(); ++i) {
      sessions.emplace_back(p, std::string(r->view()[i].str()));
    }
  }
  for (const auto& [p, session] : sessions) {
    c.append({"EXISTS", Keys(p).mount(session)});
  }
  for (const auto& [p, session] : sessions) {
    auto r = c.read_reply();
    if (r.ok() && r->view().integer() == 1) {
      ++mounts[p];
    }
  }
  return mounts;
}

namespace {

// The clocks a listing compares with: each filesystem's times and deadlines
// were stamped by its own server's clock (on a cluster, its master's:
// scripts' TIME), and the hosts' clocks differ. Each server asked once.
class ServerClocks {
 public:
  explicit ServerClocks(Connection& c) : m_c(c) {}
  Result<std::int64_t> now_ns(const Keys& k) {
    const std::string at = k.sb();
    std::string node = m_c.cluster() ? m_c.address_of(at) : "the server";
    if (auto it = m_by_node.find(node); !node.empty() && it != m_by_node.end()) {
      return it->second;
    }
    TRY_ASSIGN(std::int64_t t, server_time_ns(m_c, at));
    node = m_c.cluster() ? m_c.address_of(at) : node;  // (learned by now)
    if (!node.empty()) {
      m_by_node.emplace(node, t);
    }
    return t;
  }

 private:
  Connection& m_c;
  std::map<std::string, std::int64_t> m_by_node;
};

}  // namespace

// Snapshots being taken (CowSnapshot) from the filesystems `names`: alive
// until their deadline. The destination of a copy not moved into place yet
// goes to `out` as "copying".
static Result<Copying> _copies_in_progress(Connection& c, ServerClocks& clocks, const std::vector<std::string>& names,
                                           const std::set<std::string>& prefixes, std::vector<FsInfo>& out) {
  for (const auto& p : names) {
    c.append({"HMGET", Keys(p).cow(), "staging", "deadline", "dst", "done", "total"});
  }
  std::vector<std::pair<std::string, Reply>> records;  // (read first: a clock is asked after)
  for (const auto& p : names) {
    auto r = c.read_reply();
    if (r.ok() && r->view().size() == 5 && !r->view()[0].is_nil()) {
      records.emplace_back(p, std::move(*r));
    }  // (else none, or a COW of the wrong type: the scripts fail on it, fsck reports it)
  }
  Copying copying;
  for (const auto& [p, r] : records) {
    ReplyView v = r.view();
    auto deadline = v[1].as_int();
    TRY_ASSIGN(std::int64_t now_ns, clocks.now_ns(Keys(p)));
    if (!deadline || !cow_deadline_alive(*deadline, now_ns / 1000000)) {
      continue;  // its copier died (or none wrote it): the next snapshot removes it
    }
    long long done = v[3].as_int().value_or(0);
    long long total = v[4].as_int().value_or(0);
    int pct = total > 0 && done > 0
                  ? static_cast<int>(std::min(99.0, 100.0 * static_cast<double>(done) / static_cast<double>(total)))
                  : 0;
    copying[std::string(v[0].str())] = {std::string(v[2].str()), pct};
    if (temp_kind(v[2].str()) == TempKind::None && validate_prefix(v[2].str()).ok() &&
        prefixes.count(std::string(v[2].str())) == 0) {
      FsInfo info;  // the destination of a copy, not moved into place yet
      info.prefix = std::string(v[2].str());
      info.kind = "copying";
      info.origin = p;
      info.temporary = true;
      info.progress = pct;
      TRY_ASSIGN(info.listed_ns, clocks.now_ns(Keys(info.prefix)));
      out.push_back(std::move(info));
    }
  }
  return copying;
}

// What `list` says of prefix p from its superblock's fields (r: its
// HGETALL, an error for a superblock of the wrong type).
static FsInfo _fs_info(const std::string& p, const Result<Reply>& r, std::uint64_t mounts, const Copying& copying) {
  FsInfo info;
  info.prefix = p;
  info.mounts = mounts;
  TempKind tk = temp_kind(p);
  info.temporary = tk != TempKind::None;
  auto sb = r.ok()                     ? decode_superblock(p, reply_pairs<std::string>(r->view()))
            : is_wrong_type(r.error()) ? Result<Superblock>(superblock_not_hash(Keys(p)))
                                       : Result<Superblock>(r.error());
  if (sb.ok()) {
    info.origin = sb->origin;
    info.snapshot_id = sb->snapshot_id;
    info.lineage = sb->lineage;
    info.restored_from = sb->restored_from;
    info.created_ns = sb->created_ns;
    info.snapshot_created_ns = sb->snapshot_created_ns;
    info.dumped_ns = sb->dumped_ns;
    info.inodes = sb->inodes;
    info.bytes = sb->bytes;
    info.block_size = sb->block_size;
    info.version = sb->version;
    info.read_only = sb->read_only;
  } else {
    info.problem = sb.error().message;
  }
  if (auto it = copying.find(p); it != copying.end()) {
    info.progress = it->second.second;
  }
  if (tk != TempKind::None) {
    info.kind = _temp_kind_name(tk);
  } else if (!info.problem.empty()) {
    info.kind = "damaged";
  } else if (!info.origin.empty()) {
    info.kind = info.read_only ? "snapshot" : "clone";
  } else if (!info.restored_from.empty()) {
    info.kind = info.read_only ? "snapshot" : "restored";
  } else {
    info.kind = info.read_only ? "read-only" : "filesystem";
  }
  return info;
}

// What `list --all` says of prefix p, which holds keys but no superblock.
static FsInfo _keyed_info(const std::string& p, bool has_data, std::uint64_t mounts) {
  FsInfo info;
  info.prefix = p;
  info.mounts = mounts;
  info.temporary = true;
  TempKind tk = temp_kind(p);
  if (!has_data) {
    info.kind = "reserved";
    info.problem = "a restore, copy or delete is filling or removing it";
  } else if (tk != TempKind::None) {
    info.kind = _temp_kind_name(tk);
    info.problem = "keys but no superblock yet";
  } else {
    info.kind = "incomplete";
    info.problem = "keys but no superblock: an interrupted copy, restore or delete; remove it with " +
                   ("`redisfs-snap delete " + p + "`");
  }
  return info;
}

Result<std::vector<FsInfo>> list_filesystems(Pool& pool, bool all) {
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY_ASSIGN(Found found, _find_prefixes(pool, c, all));
  const auto& [prefixes, keyed] = found;
  TRY_ASSIGN(auto mounts, _live_mounts(c, found));
  auto mounts_of = [&mounts](const std::string& p) { return mounts.count(p) ? mounts[p] : 0; };

  std::vector<FsInfo> out;
  std::vector<std::string> names(prefixes.begin(), prefixes.end());
  ServerClocks clocks(c);
  TRY_ASSIGN(Copying copying, _copies_in_progress(c, clocks, names, prefixes, out));
  for (const auto& p : names) {
    c.append({"HGETALL", Keys(p).sb()});
  }
  for (const auto& p : names) {
    auto r = c.read_reply();
    if (!r.ok() && c.broken()) {
      Error e = std::move(r).error();
      c.drain();
      return make_error(e.code, "list: " + p + ": " + e.message);
    }
    if (r.ok() && r->view().size() == 0) {
      continue;  // deleted since the scan
    }
    if (!r.ok() && r.error().code == EACCES) {
      // An ACL user sees every key name (SCAN) but may read only its own
      // prefixes: another tenant's filesystem is not damaged, and not the
      // user's to list (redisfs-snap(1): list shows what the user can read).
      continue;
    }
    out.push_back(_fs_info(p, r, mounts_of(p), copying));
  }
  for (const auto& [p, has_data] : keyed) {
    if (prefixes.count(p) == 0) {
      out.push_back(_keyed_info(p, has_data, mounts_of(p)));
    }
  }
  for (FsInfo& fs : out) {
    if (fs.listed_ns == 0) {
      TRY_ASSIGN(fs.listed_ns, clocks.now_ns(Keys(fs.prefix)));
    }
  }
  std::sort(out.begin(), out.end(), [](const FsInfo& a, const FsInfo& b) { return a.prefix < b.prefix; });
  return out;
}

std::string list_as_json(const std::vector<FsInfo>& list) {
  using Json = nlohmann::ordered_json;
  Json arr = Json::array();
  for (const auto& fs : list) {
    Json j;
    j["prefix"] = fs.prefix;
    j["kind"] = fs.kind;
    j["origin"] = fs.origin.empty() ? Json(nullptr) : Json(fs.origin);
    j["created"] = fs.created_ns != 0 ? Json(iso_time_ns(fs.created_ns)) : Json(nullptr);
    j["snapshot_created"] = fs.snapshot_created_ns != 0 ? Json(iso_time_ns(fs.snapshot_created_ns)) : Json(nullptr);
    j["restored_from"] = fs.restored_from.empty() ? Json(nullptr) : Json(fs.restored_from);
    j["snapshot_id"] = fs.snapshot_id.empty() ? Json(nullptr) : Json(fs.snapshot_id);
    j["lineage"] = fs.lineage;
    j["dumped"] = fs.dumped_ns != 0 ? Json(iso_time_ns(fs.dumped_ns)) : Json(nullptr);
    j["problem"] = fs.problem.empty() ? Json(nullptr) : Json(fs.problem);
    j["read_only"] = fs.read_only;
    j["inodes"] = fs.inodes;
    j["bytes"] = fs.bytes;
    j["block_size"] = fs.block_size;
    j["version"] = fs.version;
    j["mounts"] = fs.mounts;
    j["temporary"] = fs.temporary;
    j["progress"] = fs.progress >= 0 ? Json(fs.progress) : Json(nullptr);
    arr.push_back(std::move(j));
  }
  // Prefixes and origins come from the server: never let odd bytes break
  // the document.
  return arr.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace redisfs

namespace redisfs {

Result<std::vector<SnapshotRef>> snapshots_of(Connection& c, std::string_view origin) {
  TRY_ASSIGN(Reply registered, c.command({"SMEMBERS", k_registry_key}));
  std::vector<std::string> names;
  ReplyView v = registered.view();
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string_view p = v[i].str();
    if (p != origin && validate_prefix(p).ok() && temp_kind(p) == TempKind::None) {
      names.emplace_back(p);
    }
  }
  std::sort(names.begin(), names.end());
  for (const std::string& p : names) {
    c.append({"HMGET", Keys(p).sb(), "origin", "read_only", "created", "snapshot_created", "dumped", "rolled_back"});
  }
  std::vector<SnapshotRef> out;
  std::optional<Error> broken;
  for (const std::string& p : names) {
    auto r = c.read_reply();
    if (!r.ok()) {
      if (c.broken() && !broken) {
        broken = make_error(r.error().code, "snapshots of " + std::string(origin) + ": " + p + ": " + r.error().message);
      }
      continue;  // another tenant's prefix (NOPERM), or a superblock of the wrong type: not listed
    }
    ReplyView f = r->view();
    if (f.size() != 6 || f[0].is_nil() || f[0].str() != origin || f[1].str() != "1" || f[2].is_nil()) {
      continue;
    }
    SnapshotRef ref;
    ref.prefix = p;
    ref.identity = filesystem_identity(f[2].str(), f[3].str(), f[4].str(), f[5].str());
    ref.snapshot_created_ns = f[3].as_int().value_or(0);
    out.push_back(std::move(ref));
  }
  if (broken) {
    return *broken;
  }
  return out;
}

}  // namespace redisfs
