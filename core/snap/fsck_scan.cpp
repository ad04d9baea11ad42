// fsck's gathering from a server: two streaming passes over the keyspace
// with SCAN MATCH "<prefix>:*", feeding the analysis (fsck_analysis.hpp).
//
// Pass 1 reads what every later judgement needs: the superblock and each
// inode hash (pipelined TYPE and HGETALL), and the records of the running
// system (COW, FREEZE, RESERVED, MOUNT:*, OPEN:*, whose mounts are asked
// for with PTTL).
// Pass 2 walks every directory and attribute hash (HSCAN pages) and
// measures every block (pipelined STRLEN); then the ORPHANS hash, with the
// liveness of the mount each record names. Then the analysis, and with
// `repair` the repair (fsck_repair.cpp), refused while a snapshot, a
// restore, a copy or an interrupted install holds the prefix.
#include <algorithm>
#include <chrono>
#include <thread>

#include "redis/redis.hpp"
#include "redis/scan.hpp"
#include "snap/fsck_analysis.hpp"
#include "snap/install.hpp"
#include "snap/snapshot.hpp"
#include "store/keys.hpp"
#include "store/store.hpp"
#include "store/superblock.hpp"
#include "util/fault.hpp"
#include "util/progress.hpp"

namespace redisfs::fsck_detail {

namespace {

constexpr std::string_view k_scan_count = "1000";
constexpr std::string_view k_xattr_scan_count = "100";  // values may be large
constexpr std::size_t k_pipeline = 128;  // keys per pipelined round trip

// A key for an error message, printable and cut.
std::string _shown_key(std::string_view key) { return printable(cut(key, k_shown_max)); }

// An error of the server (or a lost connection) while reading or changing
// `key`: the message names the key, in one bounded line.
Error _on_key(std::string_view key, const Error& e) {
  return make_error(e.code, _shown_key(key) + ": " + printable(cut(e.message, k_detail_max)));
}
template <class T>
Status _named(std::string_view key, const Result<T>& r) {
  if (r.ok()) {
    return {};
  }
  return _on_key(key, r.error());
}

// Test hooks (REDISFS_FAULT=fsck-repair-pause, fsck-recheck-pause):
// between the scan and the repair, or between the two checks of a mounted
// filesystem's repair, <prefix>:FSCK-PAUSED is set and fsck waits until
// the test deletes it (10 s at most), as a mount's change under --force
// may come between them.
void _test_pause(Connection& c, const Keys& keys, const char* fault) {
  if (!fault_injected(fault)) {
    return;
  }
  const std::string key = keys.absolute("FSCK-PAUSED");
  if (!c.command({"SET", key, "1", "PX", "10000"}).ok()) {
    return;
  }
  for (int i = 0; i < 200; ++i) {
    auto there = c.command({"EXISTS", key});
    if (!there.ok() || there->view().integer() == 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

class Scanner {
 public:
  // (`first`: the repairs a first check found; only those are made.
  // `held`: with `repair`, the prefix's reservation, still held when the
  // repair begins, or nothing is repaired)
  Scanner(const std::string& prefix, bool repair, Progress* progress, const Reservation* held,
          const RepairSet* first = nullptr)
      : m_keys(prefix), m_a(prefix), m_repair(repair), m_progress(progress), m_held(held), m_first(first) {}

  Result<FsckReport> run(Connection& c);
  const FsckAnalysis& analysis() const { return m_a; }
  std::size_t types_set() const { return m_types_set; }  // by the repair run made (FsckAnalysis::types_set)

 private:
  Status guard_freeze(Connection& c);
  Status repair_frozen(Connection& c);
  Status scan(Connection& c, Status (Scanner::*batch)(Connection&, ReplyView, std::size_t, std::size_t));
  Status first_pass(Connection& c);
  struct FirstItem {
    std::string_view key;
    ParsedKey pk;
  };
  Status first_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to);
  std::size_t queue_first(Connection& c, std::string_view key, const ParsedKey& pk);
  Status first_replies(Connection& c, const FirstItem& it, std::vector<Result<Reply>>& replies, std::size_t& at);
  Status running_replies(Connection& c, const FirstItem& it, std::vector<Result<Reply>>& replies, std::size_t& at);
  Status second_pass(Connection& c);
  Status second_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to);
  Status walk_dir(Connection& c, Node& dir, std::string_view key, ReplyView first_page);
  Status read_orphans(Connection& c);
  Status read_opens(Connection& c, std::string_view key, ReplyView fields);
  Status check_changed(Connection& c, std::string_view key, std::string_view type);
  Status walk_xattrs(Connection& c, const Node& n, std::string_view key, ReplyView first_page);
  Status same_server(const Connection& c) const;

  Keys m_keys;
  FsckAnalysis m_a;
  bool m_repair;
  Progress* m_progress;
  const Reservation* m_held;
  const RepairSet* m_first;
  std::uint64_t m_keys_seen = 0;
  std::string m_server;  // the run_id the first page came from (same_server)
  bool m_any_fs_key = false;
  std::size_t m_types_set = 0;
};

Result<FsckReport> Scanner::run(Connection& c) {
  if (m_repair) {
    TRY(guard_freeze(c));
  }
  // The superblock's inode count sizes the node table (a hint: a damaged
  // or missing one only costs memory).
  if (auto counted = c.command({"HGET", m_keys.sb(), "inodes"}); counted.ok()) {
    if (auto n = counted->view().as_int(); n && *n > 0) {
      m_a.expect_inodes(static_cast<std::uint64_t>(*n));
    }
  }
  TRY(first_pass(c));
  if (!m_any_fs_key) {
    return make_error(ENOENT, "no filesystem at prefix '" + m_keys.prefix() + "'");
  }
  m_a.end_of_inodes();
  if (m_progress != nullptr) {
    m_progress->set_total(2 * m_keys_seen);
  }
  TRY(second_pass(c));
  TRY(read_orphans(c));
  // (The directories' and attributes' HSCAN pages too: the last reply read
  // came from the server the first page did, or the scan starts over.)
  TRY(same_server(c));
  m_a.finish();
  if (m_repair) {
    if (m_first != nullptr) {
      m_a.confirm(*m_first);
    }
    _test_pause(c, m_keys, "fsck-repair-pause");
    if (Status held = m_held != nullptr ? m_held->verify(c) : Status{}; !held.ok()) {
      // (another tool may have it now)
      return make_error(EAGAIN, held.error().message + ": nothing repaired; run fsck --repair again");
    }
    TRY(repair_frozen(c));
    m_types_set = m_a.types_set();
  }
  return m_a.take_report();
}

// The repair, under a snapshot's freeze: a copy-on-write snapshot begun
// since the check would otherwise get keys the repair changes as they are
// after it, not at the snapshot's instant (the repair writes them itself,
// not through the scripts that copy a key first), and a mount's change
// waits too; a snapshot in progress is waited for (EBUSY past
// k_freeze_wait, nothing repaired). A freeze no freezer set (it never
// lapses, or is no string), found by the check, is the one this freeze
// replaced (freeze_acquire.lua): repaired, as it goes with it, and never
// removed by a step of the repair, which would end this one.
Status Scanner::repair_frozen(Connection& c) {
  TRY_ASSIGN(Freeze freeze, Freeze::acquire(c, m_keys));
  _test_pause(c, m_keys, "fsck-frozen-pause");
  for (std::size_t i = 0; i < m_a.actions().size(); ++i) {
    FsckProblem& p = m_a.report().problems[i];
    if (p.repairable && m_a.actions()[i].key == m_keys.freeze()) {
      p.repairable = false;
      p.repaired = true;
      p.detail += " (replaced by this repair's own freeze, which it removes at its end)";
    }
  }
  auto verified = std::chrono::steady_clock::now();
  fsck_repair(c, m_a, [&]() -> Status {
    if (m_held != nullptr) {
      // (asked each second, as the freeze is kept: a step made after
      // another tool took the prefix would be that tool's to undo)
      const bool due = std::chrono::steady_clock::now() - verified >= std::chrono::seconds(1);
      TRY(due ? m_held->verify(c) : m_held->check());
      if (due) {
        verified = std::chrono::steady_clock::now();
      }
    }
    return freeze.keep_alive(c);
  });
  // (lost before a step: the steps left were not made, and say so)
  (void)freeze.release(c);
  return {};
}

// Every lease a live holder keeps is one fsck takes for alive (snapshot.hpp,
// k_lease_max_ms); one set further ahead is damage it reports and removes.
static_assert(k_reservation_ttl_ms <= k_lease_max_ms / 2 && Store::k_session_ttl_ms <= k_lease_max_ms / 2);

Status Scanner::guard_freeze(Connection& c) {
  // (A restore, copy or delete filling, replacing or removing it: fsck()
  // reserved the prefix before the check, which such a tool's reservation
  // refused: repairing what it is halfway through would break what it is
  // building.)
  // An interrupted install (its tool gone: its freeze may outlive it a
  // little) before the freeze, which would be named a snapshot's. (A
  // journal of the wrong type journals nothing: pass 1 reports it, and the
  // repair removes it.)
  TRY_ASSIGN(Reply journal, c.command({"TYPE", m_keys.installing()}));
  if (journal.view().str() == "string") {
    TRY(refuse_unfinished_install(c, m_keys));
  }
  // (a freeze or reservation that would outlive any holder is no running
  // tool's: pass 1 reports it, and the repair removes it)
  auto r = c.command({"PTTL", m_keys.freeze()});
  TRY(_named(m_keys.freeze(), r));
  if (lease_ttl_plausible(r->view().integer())) {
    return make_error(EBUSY, "a snapshot of '" + m_keys.prefix() + "' is being taken (" + m_keys.freeze() +
                                 " exists): repair when it has ended");
  }
  // A snapshot being taken copy-on-write: a repair's changes would not be
  // copied first (fsck changes keys directly, not through the scripts).
  // (A damaged record, not a hash or naming another prefix, is a problem
  // this repair removes.)
  auto cow = c.command({"HMGET", m_keys.cow(), "staging", "deadline"});
  TRY_ASSIGN(std::int64_t now_ns, server_time_ns(c, m_keys.cow()));  // (the clock that set the deadline)
  auto deadline = cow.ok() && cow->view().size() == 2 ? cow->view()[1].as_int() : std::nullopt;
  if (deadline && cow_deadline_alive(*deadline, now_ns / 1000000) &&
      is_cow_staging(m_keys.prefix(), cow->view()[0].str())) {
    if (temp_kind(cow->view()[0].str()) == TempKind::Dump) {
      // A dump's: the repair's freeze asks for it (Freeze::acquire), and
      // the dump hands it over within a second or so (CowKeeper), or the
      // freeze waits for the dump's end (EBUSY past k_freeze_wait). A
      // copy's ends only with the copy: refused now, not after the check.
      return {};
    }
    return make_error(EBUSY, "a snapshot of '" + m_keys.prefix() + "' is being taken (" + m_keys.cow() +
                                 "): repair when it has ended");
  }
  return {};
}

// ---------------------------------------------------------------- pass 1

// Every key of the prefix, SCAN page by page, handed to `batch` in
// pipelines of k_pipeline keys.
Status Scanner::scan(Connection& c, Status (Scanner::*batch)(Connection&, ReplyView, std::size_t, std::size_t)) {
  const std::string match = m_keys.match_all();
  ScanWalk walk(c, {"SCAN"}, {"MATCH", match, "COUNT", std::string(k_scan_count)});
  for (;;) {
    TRY(check_cancel());
    auto page = walk.next();
    TRY(_named(match, page));
    if (!*page) {
      return {};
    }
    if (m_server.empty()) {
      m_server = c.answered_by();
    }
    // A cursor means nothing to another server (a restart or a failover
    // builds the keyspace anew): a scan across one may miss keys, and what
    // it found is not to be reported, nor repaired by. fsck() starts over.
    TRY(same_server(c));
    ReplyView keys = **page;
    for (std::size_t at = 0; at < keys.size(); at += k_pipeline) {
      TRY((this->*batch)(c, keys, at, std::min(keys.size(), at + k_pipeline)));
    }
  }
}

Status Scanner::same_server(const Connection& c) const {
  const std::string& now = c.answered_by();
  if (!m_server.empty() && !now.empty() && now != m_server) {
    return make_error(EAGAIN,
                      "the Redis server changed (a restart or a failover) while fsck scanned " + m_keys.prefix());
  }
  return {};
}

Status Scanner::first_pass(Connection& c) { return scan(c, &Scanner::first_batch); }

// Queues what pass 1 reads of `key` (TYPE and HGETALL of the superblock,
// an inode or an OPEN hash, ...): how many commands, 0 when nothing.
std::size_t Scanner::queue_first(Connection& c, std::string_view key, const ParsedKey& pk) {
  switch (pk.kind) {
    case KeyKind::Superblock:
    case KeyKind::Inode:
    case KeyKind::Open:
      m_any_fs_key = m_any_fs_key || pk.kind != KeyKind::Open;
      c.append({"TYPE", key});
      c.append({"HGETALL", key});
      return 2;
    case KeyKind::Orphans:
      m_any_fs_key = true;
      c.append({"TYPE", key});
      return 1;
    case KeyKind::Cow:
      c.append({"TYPE", key});
      c.append({"HGET", key, "staging"});
      return 2;
    case KeyKind::Freeze:
    case KeyKind::Reserved:
    case KeyKind::Mount:
      c.append({"PTTL", key});
      return 1;
    case KeyKind::Writeback:
      c.append({"TYPE", key});
      c.append({"PTTL", key});
      return 2;
    case KeyKind::Changed:
    case KeyKind::Mounts:
    case KeyKind::Installing:
    case KeyKind::OpLog:
      c.append({"TYPE", key});
      return 1;
    case KeyKind::Sync:
    case KeyKind::Touched:
    case KeyKind::Temp:
      return 0;
    case KeyKind::Unknown:
      m_any_fs_key = true;
      m_a.unknown_key(key);
      return 0;
    default:
      m_any_fs_key = true;  // directories, xattrs, blocks: pass 2
      return 0;
  }
}

Status Scanner::first_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to) {
  std::vector<FirstItem> items;
  std::size_t queued = 0;
  for (std::size_t i = from; i < to; ++i) {
    std::string_view key = keys[i].str();
    auto rel = m_keys.relative(key);
    ParsedKey pk = rel ? parse_relative_key(*rel) : ParsedKey{};
    ++m_keys_seen;
    if (std::size_t n = queue_first(c, key, pk); n > 0) {
      queued += n;
      items.push_back({key, pk});
    }
  }
  auto replies = c.read_replies(queued);
  std::size_t at = 0;
  for (const FirstItem& it : items) {
    TRY(first_replies(c, it, replies, at));
  }
  if (m_progress != nullptr) {
    m_progress->add(to - from);
  }
  return {};
}

// What pass 1 read of one key, judged (or handed to the analysis).
// The records of the running system pass 1 reads: OPEN, COW, FREEZE,
// RESERVED, MOUNT:<id>.
Status Scanner::running_replies(Connection& c, const FirstItem& it, std::vector<Result<Reply>>& replies,
                                std::size_t& at) {
  if (it.pk.kind == KeyKind::Open) {
    auto& type = replies[at++];
    auto& sessions = replies[at++];
    TRY(_named(it.key, type));
    std::string_view t = type->view().str();
    if (t == "none") {
      return {};
    }
    if (t != "hash") {
      m_a.wrong_type(it.key, "hash", t, true, false);
      return {};
    }
    TRY(_named(it.key, sessions));
    TRY(read_opens(c, it.key, sessions->view()));
    return {};
  }
  if (it.pk.kind == KeyKind::Cow) {
    // A snapshot being taken (snapshot.hpp): change scripts copy into
    // the staging prefix it names, and refuse to run when it names one
    // that is not this filesystem's.
    auto& type = replies[at++];
    auto& staging = replies[at++];
    TRY(_named(it.key, type));
    if (type->view().str() == "hash" && staging.ok() && !staging->view().is_nil() &&
        is_cow_staging(m_keys.prefix(), staging->view().str())) {
      return {};
    }
    m_a.bad_cow(it.key);
    return {};
  }
  if (it.pk.kind == KeyKind::Freeze || it.pk.kind == KeyKind::Reserved || it.pk.kind == KeyKind::Mount) {
    auto& ttl = replies[at++];
    TRY(_named(it.key, ttl));
    if (std::int64_t left = ttl->view().integer(); left != -2 && !lease_ttl_plausible(left)) {
      m_a.lease_endless(it.pk.kind == KeyKind::Freeze     ? FsckAnalysis::Lease::Freeze
                        : it.pk.kind == KeyKind::Reserved ? FsckAnalysis::Lease::Reservation
                                                          : FsckAnalysis::Lease::Mount,
                        it.key, left);
    }
    return {};
  }
  return {};
}

Status Scanner::first_replies(Connection& c, const FirstItem& it, std::vector<Result<Reply>>& replies,
                              std::size_t& at) {
  if (it.pk.kind == KeyKind::Open || it.pk.kind == KeyKind::Cow || it.pk.kind == KeyKind::Freeze ||
      it.pk.kind == KeyKind::Reserved || it.pk.kind == KeyKind::Mount) {
    return running_replies(c, it, replies, at);
  }
  if (it.pk.kind == KeyKind::Changed) {
    auto& type = replies[at++];
    TRY(_named(it.key, type));
    return check_changed(c, it.key, type->view().str());
  }
  auto& type = replies[at++];
  TRY(_named(it.key, type));
  std::string_view t = type->view().str();
  if (it.pk.kind == KeyKind::Orphans) {
    if (t == "hash") {
      m_a.orphans_hash();
    } else if (t != "none") {
      m_a.wrong_type(it.key, "hash", t, true, false);
    }
    return {};
  }
  if (it.pk.kind == KeyKind::Mounts || it.pk.kind == KeyKind::Writeback || it.pk.kind == KeyKind::Installing ||
      it.pk.kind == KeyKind::OpLog) {
    // The mounts' register and the writeback mount's claim: of another
    // type, no mount comes up (session.lua refuses, naming it); nor while
    // a claim without a TTL stands (a mount's lapses with its session).
    // An install journal of another type (every one is a string) stops
    // every tool and mount (finish_install names it) and journals nothing.
    // A mount's outcome records of another type record nothing (outcome.inc):
    // a change whose reply is lost may then run twice.
    std::string_view want = it.pk.kind == KeyKind::Mounts || it.pk.kind == KeyKind::OpLog ? "hash" : "string";
    if (t != want && t != "none") {
      m_a.wrong_type(it.key, want, t, true, false);
    }
    if (it.pk.kind == KeyKind::Writeback) {
      auto& ttl = replies[at++];
      TRY(_named(it.key, ttl));
      if (std::int64_t left = ttl->view().integer(); t == want && left != -2 && !lease_ttl_plausible(left)) {
        m_a.lease_endless(FsckAnalysis::Lease::Claim, it.key, left);
      }
    }
    return {};
  }
  auto& fields = replies[at++];
  if (t == "none") {
    return {};  // gone since SCAN
  }
  if (t != "hash") {
    if (it.pk.kind == KeyKind::Superblock) {
      m_a.superblock_wrong_type(it.key, t);
    } else {
      m_a.inode_wrong_type(it.pk.ino, it.key, t);
    }
    return {};
  }
  TRY(_named(it.key, fields));
  ReplyView v = fields->view();
  if (it.pk.kind == KeyKind::Superblock) {
    SbFields sb;
    for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
      sb.emplace_back(v[i].str(), v[i + 1].str());
    }
    m_a.superblock(std::move(sb));
  } else {
    FieldList list;
    list.reserve(v.size() / 2);
    for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
      list.emplace_back(v[i].str(), v[i + 1].str());
    }
    m_a.inode(it.pk.ino, it.key, list);
  }
  return {};
}

// The sessions of an OPEN:<n> hash, and whether their mounts live.
// The change record (keys.hpp, CHANGED): a set of one "since:<id>" and
// "<ino>:<index>" members, at most k_changed_cap of them, or the string
// "overflow", "written" or "untracked". Anything else only costs incremental dumps
// their shortcut: the repair deletes it.
Status Scanner::check_changed(Connection& c, std::string_view key, std::string_view type) {
  if (type == "none") {
    return {};
  }
  if (type == "string") {
    auto value = c.command({"GET", key});
    TRY(_named(key, value));
    std::string_view v = value->view().is_nil() ? std::string_view() : value->view().str();
    if (v != k_changed_overflow && v != k_changed_written && v != k_changed_untracked) {
      m_a.bad_changed(key, "a string that is not \"overflow\", \"written\" or \"untracked\"");
    }
    return {};
  }
  if (type != "set") {
    m_a.bad_changed(key, "a " + std::string(type) + ", not a set");
    return {};
  }
  std::string cursor = "0";
  std::uint64_t since = 0;
  std::uint64_t blocks = 0;
  std::string bad;
  do {
    auto page = c.command({"SSCAN", key, cursor, "COUNT", "1000"});
    TRY(_named(key, page));
    ReplyView v = page->view();
    if (!v.is_array() || v.size() != 2 || !v[1].is_array()) {
      return _on_key(key, make_error(EIO, "bad SSCAN reply"));
    }
    cursor = std::string(v[0].str());
    for (std::size_t i = 0; i < v[1].size() && bad.empty(); ++i) {
      std::string_view m = v[1][i].str();
      if (m.starts_with("since:")) {
        since += is_snapshot_id(m.substr(6)) ? 1 : 2;
      } else if (parse_relative_key("BLK:" + std::string(m)).kind == KeyKind::Block) {
        ++blocks;
      } else {
        bad = "a member that is neither since:<snapshot id> nor <inode>:<index>";
      }
    }
  } while (cursor != "0" && bad.empty());
  if (bad.empty() && since != 1) {
    bad = "not exactly one since:<snapshot id> member";
  }
  if (bad.empty() && blocks > k_changed_cap) {
    bad = "more than " + std::to_string(k_changed_cap) + " blocks";
  }
  if (!bad.empty()) {
    m_a.bad_changed(key, bad);
  }
  return {};
}

Status Scanner::read_opens(Connection& c, std::string_view key, ReplyView v) {
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    std::string_view session = v[i].str();
    std::string_view count = v[i + 1].str();
    bool alive = true;
    if (FsckAnalysis::open_count_valid(count)) {
      // (a session key that never lapses is no live mount's: the repair
      // removes it, lease_endless)
      const std::string mount = m_keys.mount(session);
      auto ttl = c.command({"PTTL", mount});
      TRY(_named(mount, ttl));
      alive = lease_ttl_plausible(ttl->view().integer());
    }
    m_a.open_session(key, session, count, alive);
  }
  return {};
}

// ---------------------------------------------------------------- pass 2

Status Scanner::second_pass(Connection& c) { return scan(c, &Scanner::second_batch); }

Status Scanner::second_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to) {
  struct Item {
    std::string_view key;
    ParsedKey pk;
    Node* node;
  };
  std::vector<Item> items;
  std::size_t queued = 0;
  for (std::size_t i = from; i < to; ++i) {
    std::string_view key = keys[i].str();
    auto rel = m_keys.relative(key);
    if (!rel) {
      continue;
    }
    ParsedKey pk = parse_relative_key(*rel);
    if (pk.kind != KeyKind::Dir && pk.kind != KeyKind::Xattr && pk.kind != KeyKind::Block) {
      continue;
    }
    Node* n = m_a.sub_key(key, pk);
    if (n == nullptr) {
      continue;
    }
    c.append({"TYPE", key});
    if (pk.kind == KeyKind::Dir) {
      c.append({"HSCAN", key, "0", "COUNT", k_scan_count});
    } else if (pk.kind == KeyKind::Xattr) {
      c.append({"HSCAN", key, "0", "COUNT", k_xattr_scan_count});
    } else {
      c.append({"STRLEN", key});
    }
    queued += 2;
    items.push_back({key, pk, n});
  }
  auto replies = c.read_replies(queued);
  std::size_t at = 0;
  for (const Item& it : items) {
    auto& type = replies[at++];
    TRY(_named(it.key, type));
    std::string_view t = type->view().str();
    auto& second = replies[at++];
    if (t == "none") {
      continue;
    }
    std::string_view want = it.pk.kind == KeyKind::Block ? "string" : "hash";
    if (t != want) {
      m_a.wrong_type(it.key, want, t, true, true);
      continue;
    }
    TRY(_named(it.key, second));
    if (it.pk.kind == KeyKind::Xattr) {
      TRY(walk_xattrs(c, *it.node, it.key, second->view()));
    } else if (it.pk.kind == KeyKind::Dir) {
      TRY(walk_dir(c, *it.node, it.key, second->view()));
    } else {
      m_a.block(*it.node, it.key, it.pk.index, static_cast<std::uint64_t>(second->view().integer()));
    }
  }
  if (m_progress != nullptr) {
    m_progress->add(to - from);
  }
  return {};
}

Status Scanner::walk_dir(Connection& c, Node& dir, std::string_view key, ReplyView page) {
  Reply next;
  for (;;) {
    if (!page.is_array() || page.size() != 2) {
      return _on_key(key, make_error(EIO, "bad HSCAN reply"));
    }
    ReplyView items = page[1];
    m_a.entries_seen(dir, items.size() / 2);
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      m_a.entry(dir.ino, items[i].str(), items[i + 1].str());
    }
    std::string cursor(page[0].str());
    if (cursor == "0") {
      return {};
    }
    auto more = c.command({"HSCAN", key, cursor, "COUNT", k_scan_count});
    TRY(_named(key, more));
    next = std::move(*more);
    page = next.view();
  }
}

Status Scanner::walk_xattrs(Connection& c, const Node& n, std::string_view key, ReplyView page) {
  Reply next;
  for (;;) {
    if (!page.is_array() || page.size() != 2) {
      return _on_key(key, make_error(EIO, "bad HSCAN reply"));
    }
    ReplyView items = page[1];
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      m_a.xattr(n, key, items[i].str(), items[i + 1].str());
    }
    std::string cursor(page[0].str());
    if (cursor == "0") {
      return {};
    }
    auto more = c.command({"HSCAN", key, cursor, "COUNT", k_xattr_scan_count});
    TRY(_named(key, more));
    next = std::move(*more);
    page = next.view();
  }
}

Status Scanner::read_orphans(Connection& c) {
  if (!m_a.has_orphans_hash()) {
    return {};
  }
  const std::string key = m_keys.orphans();
  std::string cursor = "0";
  do {
    auto r = c.command({"HSCAN", key, cursor, "COUNT", k_scan_count});
    TRY(_named(key, r));
    ReplyView v = r->view();
    if (!v.is_array() || v.size() != 2) {
      return _on_key(key, make_error(EIO, "bad HSCAN reply"));
    }
    cursor = std::string(v[0].str());
    ReplyView items = v[1];
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      c.append({"PTTL", m_keys.mount(items[i + 1].str())});
    }
    auto ttls = c.read_replies(items.size() / 2);
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      // (alive unless known gone, or endless as no live mount's is)
      auto& ttl = ttls[i / 2];
      m_a.orphan(items[i].str(), items[i + 1].str(), !ttl.ok() || lease_ttl_plausible(ttl->view().integer()));
    }
  } while (cursor != "0");
  return {};
}

}  // namespace

namespace {

// One check, and with `repair` its repair (fsck_scan runs it once more
// after a repair that set a type); `types_set`: how many types it set.
Result<FsckReport> _scan_once(Connection& c, const std::string& prefix, bool repair, Progress* progress, bool confirm,
                              const Reservation* held, std::size_t& types_set) {
  if (!repair || !confirm) {
    Scanner once(prefix, repair, progress, held);
    auto report = once.run(c);
    types_set = once.types_set();
    return report;
  }
  // Mounts change the filesystem under the check: a change seen half done
  // (a rename between two directories read apart, say) looks like damage
  // that is not there, and its repair would do damage. A second check
  // seldom sees the same change half done at the same place: only the
  // repairs both checks found are made.
  RepairSet first;
  {
    Scanner check(prefix, false, progress, held);
    TRY_ASSIGN(FsckReport report, check.run(c));
    first = check.analysis().repairs(report);
  }
  if (progress != nullptr) {
    progress->restart();
  }
  _test_pause(c, Keys(prefix), "fsck-recheck-pause");
  Scanner second(prefix, true, progress, held, &first);
  auto report = second.run(c);
  types_set = second.types_set();
  return report;
}

}  // namespace

Result<FsckReport> fsck_scan(Connection& c, const std::string& prefix, bool repair, Progress* progress, bool confirm,
                             const Reservation* held) {
  std::size_t types_set = 0;
  TRY_ASSIGN(FsckReport report, _scan_once(c, prefix, repair, progress, confirm, held, types_set));
  if (types_set == 0) {
    return report;
  }
  // An inode whose type the repair set was judged in nothing else (a bad
  // inode: finish_types): checked, and repaired, again. The report is what
  // the first run repaired, then all the second found.
  if (progress != nullptr) {
    progress->restart();
  }
  std::size_t again = 0;
  auto second = _scan_once(c, prefix, repair, progress, confirm, held, again);
  if (!second.ok()) {
    Error e = std::move(second).error();
    e.message = "repaired " + std::to_string(report.problems.size() - report.remaining()) + " of " +
                std::to_string(report.problems.size()) +
                " problems, then the check of the inodes whose type it set failed (" + e.message + "): run fsck again";
    return e;
  }
  std::erase_if(report.problems, [](const FsckProblem& p) { return !p.repaired; });
  report.problems.insert(report.problems.end(), std::make_move_iterator(second->problems.begin()),
                         std::make_move_iterator(second->problems.end()));
  second->problems = std::move(report.problems);
  return second;
}

Result<std::uint64_t> running_mounts(Connection& c, const Keys& keys) {
  TRY_ASSIGN(std::vector<std::string> live, live_mounts(c, keys));
  for (const std::string& session : live) {
    c.append({"PTTL", keys.mount(session)});
  }
  TRY_ASSIGN(std::vector<Reply> ttls, c.read_all());
  // (a session key that never lapses is no running mount's: the repair
  // removes it, lease_endless)
  return static_cast<std::uint64_t>(std::count_if(ttls.begin(), ttls.end(), [](const Reply& r) {
    return r.view().type() == ReplyView::Type::Integer && lease_ttl_plausible(r.view().integer());
  }));
}

}  // namespace redisfs::fsck_detail

namespace redisfs {

using namespace fsck_detail;

Result<std::uint64_t> count_live_mounts(Pool& pool, const std::string& prefix) {
  TRY(validate_prefix(prefix));
  TRY_ASSIGN(auto c, pool.acquire());
  TRY(check_toolkit_prefix(*c, prefix));
  return running_mounts(*c, Keys(prefix));
}

}  // namespace redisfs
