// fsck: two streaming passes over the keyspace, an analysis over one small
// record per inode, and a staged repair (see fsck.hpp for the contract).
//
// Pass 1 reads what every later judgement needs: the superblock and each
// inode hash, into a vector of Node sorted by inode number. Pass 2 walks
// every directory hash and measures every block against those nodes:
// entries add links (or, for directories, name a "home"), blocks add stored
// bytes. Entries that name a directory from somewhere other than its
// 'parent' are kept aside (they are problems either way) and settled in the
// analysis: the first one becomes the home if the parent has none (the
// parent field is wrong), the rest are extra. The analysis then marks the
// lost inodes (no entry, no orphan record) and the directory cycles that the
// root cannot reach, counts subdirectories, and compares every counter with
// the value it will have once the other problems are repaired. An orphan is
// an inode in ORPHANS with nlink 0 that no entry names: an unlinked file, or
// a removed directory (empty, its entries hash deleted), kept until purged.
//
// Repair is a list of actions, one per problem, run in stages so that each
// step sees the state the previous stages left: 0 the inode counter, 1
// removals and parent fields, 2 counters (exact values from the scan), 3
// reattaching into /lost+found (relative changes, like link and mkdir do).
#include "fsck.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "inode.hpp"
#include "install.hpp"
#include "keys.hpp"
#include "progress.hpp"
#include "snapshot.hpp"
#include "store.hpp"
#include "superblock.hpp"

namespace redisfs {

namespace {

constexpr std::string_view k_scan_count = "1000";
constexpr std::string_view k_xattr_scan_count = "100";  // values may be large
constexpr std::size_t k_pipeline = 128;  // keys per pipelined round trip
constexpr std::string_view k_lost_found = "lost+found";
// next_inode must leave this many inode numbers below 2^53 (mounts take
// them in ranges of 256) unless the inodes really go that high.
constexpr std::uint64_t k_next_inode_room = 1ull << 16;

// Cuts a block to ARGV[1] bytes (never 0 here) in one step, without sending
// its bytes back and forth.
constexpr std::string_view k_trim_script =
    "local n = tonumber(ARGV[1]) "
    "if redis.call('STRLEN', KEYS[1]) > n then "
    "redis.call('SET', KEYS[1], redis.call('GETRANGE', KEYS[1], 0, n - 1)) end "
    "return 1";

enum class NodeType : std::uint8_t { Unknown, File, Dir, Symlink, Special };

struct Node {
  Ino ino = 0;
  std::int64_t nlink = 0;
  std::uint64_t size = 0;
  Ino parent = 0;
  std::int64_t bytes_field = 0;
  std::uint64_t links = 0;    // entries naming it (not directories)
  std::uint64_t stored = 0;   // its blocks' bytes, as they will be after repair
  Ino home = 0;               // directories: the directory holding the kept entry
  std::uint64_t subdirs = 0;  // directories whose kept entry is in this one
  NodeType type = NodeType::Unknown;
  bool bad = false;           // undecodable: counted, never judged or changed
  bool in_orphans = false;
  bool walked = false;        // its DIR hash was read (SCAN may return a key twice)
  bool has_entries = false;   // its DIR hash holds at least one entry
  bool lost = false;
  bool detached = false;
  std::uint8_t visit = 0;     // cycle search: 0 new, 1 on the current path, 2 done
};

enum class Op : std::uint8_t { None, HDel, HSet, Del, Trim, Reattach };
enum Stage : int { k_stage_counter = 0, k_stage_remove = 1, k_stage_count = 2, k_stage_attach = 3 };

struct Action {
  Op op = Op::None;
  int stage = k_stage_remove;
  std::string key;
  std::string field;
  std::string value;
  Ino ino = 0;
  std::string deletes;  // FsckProblem::deletes: the data this action deletes
};

// An entry naming a directory from somewhere other than its parent field.
struct Suspect {
  Ino container = 0;
  std::string name;
  Ino target = 0;
};

// Names, values and keys quoted in a problem or an error are cut to this
// many bytes (then "..."), so a 1 MB key makes a short line.
constexpr std::size_t k_shown_max = 100;
// And a whole detail or error message to this many.
constexpr std::size_t k_detail_max = 600;

std::string _str(std::uint64_t n) { return std::to_string(n); }

std::string _cut(std::string_view s, std::size_t max) {
  return s.size() <= max ? std::string(s) : std::string(s.substr(0, max)) + "...";
}

// 'name' (cut); fsck_problem_line shows its bytes as printable text.
std::string _quote(std::string_view s) {
  return s.size() <= k_shown_max ? "'" + std::string(s) + "'" : "'" + std::string(s.substr(0, k_shown_max)) + "'...";
}

// A key for an error message, printable and cut.
std::string _printable(std::string_view s);
std::string _shown_key(std::string_view key) { return _printable(_cut(key, k_shown_max)); }

// An error of the server (or a lost connection) while reading or changing
// `key`: the message names the key, in one bounded line.
Error _on_key(std::string_view key, const Error& e) {
  return make_error(e.code, _shown_key(key) + ": " + _printable(_cut(e.message, k_detail_max)));
}
Status _named(std::string_view key, const Result<Reply>& r) {
  if (r.ok()) {
    return {};
  }
  return _on_key(key, r.error());
}

bool _digits_u64(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

std::optional<std::int64_t> _i64(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::uint64_t _div_ceil(std::uint64_t a, std::uint64_t b) { return a == 0 ? 0 : (a - 1) / b + 1; }

NodeType _node_type(std::string_view name) {
  if (name == "file") {
    return NodeType::File;
  }
  if (name == "dir") {
    return NodeType::Dir;
  }
  if (name == "symlink") {
    return NodeType::Symlink;
  }
  return type_bits(name) ? NodeType::Special : NodeType::Unknown;
}

std::string_view _type_word(NodeType t) {
  switch (t) {
    case NodeType::File:
      return "a regular file";
    case NodeType::Dir:
      return "a directory";
    case NodeType::Symlink:
      return "a symlink";
    case NodeType::Special:
      return "a special file";
    case NodeType::Unknown:
      break;
  }
  return "of unknown type";
}

// Reads `n` pipelined replies, all of them, so the connection is clean
// whatever happened; the caller judges each one.
std::vector<Result<Reply>> _read_n(Connection& c, std::size_t n) {
  std::vector<Result<Reply>> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(c.read_reply());
  }
  return out;
}

Status _exec(Connection& c, const std::vector<Args>& cmds) {
  c.append({"MULTI"});
  for (const auto& cmd : cmds) {
    c.append(cmd);
  }
  c.append({"EXEC"});
  auto replies = _read_n(c, cmds.size() + 2);
  for (auto& r : replies) {
    if (!r.ok()) {
      return std::move(r).error();
    }
  }
  ReplyView v = replies.back()->view();
  if (!v.is_array()) {
    return make_error(EIO, "transaction aborted");
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].type() == ReplyView::Type::Error) {
      return make_error(errno_for_redis_error(v[i].str()), std::string(v[i].str()));
    }
  }
  return {};
}

Result<std::string> _server_now(Connection& c) {
  TRY_ASSIGN(Reply r, c.command({"TIME"}));
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != 2) {
    return make_error(EIO, "bad TIME reply");
  }
  std::string usec(v[1].str());
  while (usec.size() < 6) {
    usec.insert(usec.begin(), '0');
  }
  return std::string(v[0].str()) + usec + "000";
}

class Checker {
 public:
  Checker(const std::string& prefix, bool repair, Progress* progress)
      : m_keys(prefix), m_repair(repair), m_progress(progress) {}

  Result<FsckReport> run(Connection& c);

 private:
  Status guard_freeze(Connection& c);
  Status scan(Connection& c, Status (Checker::*batch)(Connection&, ReplyView, std::size_t, std::size_t));
  Status first_pass(Connection& c);
  Status first_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to);
  Status second_pass(Connection& c);
  Status second_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to);
  Status walk_dir(Connection& c, Node& dir, std::string_view key, ReplyView first_page);
  Status read_orphans(Connection& c);
  Status read_opens(Connection& c, std::string_view key, ReplyView fields);
  Status walk_xattrs(Connection& c, const Node& n, std::string_view key, ReplyView first_page);
  void xattr(const Node& n, std::string_view key, std::string_view name, std::string_view value);
  void read_superblock(ReplyView fields);
  void read_inode(Ino ino, std::string_view key, ReplyView fields);
  void entry(Ino container, std::string_view name, std::string_view value);
  void block(Node& n, std::string_view key, std::uint64_t index, std::uint64_t len);
  void check_superblock();
  void analyse();
  void find_cycles();
  void check_counters();
  void settle_repairability();
  void repair(Connection& c);
  Status apply(Connection& c, const Action& a);
  Status count_dir_change(Connection& c, const std::string& key);
  Status reattach(Connection& c, Ino ino);
  Result<Ino> lost_found(Connection& c);

  Node* find(Ino ino);
  void add(std::string_view kind, std::string key, std::string detail, Action action = {});
  void wrong_type(std::string_view key, std::string_view want, std::string_view got, bool deletable,
                  bool holds_data);

  Keys m_keys;
  bool m_repair;
  Progress* m_progress;
  FsckReport m_report;
  std::vector<Action> m_actions;  // parallel to m_report.problems

  std::vector<Node> m_nodes;  // sorted by ino after pass 1
  std::vector<Suspect> m_suspects;
  std::uint64_t m_keys_seen = 0;
  bool m_any_fs_key = false;

  bool m_have_sb = false;
  bool m_sb_wrong_type = false;
  bool m_sb_ok = false;  // a redisfs superblock we understand: repair allowed
  SbFields m_sb_fields;
  std::string m_sb_next, m_sb_inodes, m_sb_bytes;
  bool m_sb_has_next = false, m_sb_has_inodes = false, m_sb_has_bytes = false;
  std::uint64_t m_bs = 0;  // 0: unknown, block geometry is not judged
  bool m_orphans_hash = false;
  bool m_security_xattr = false;  // some file has a valid security.* attribute
  bool m_root_ok = false;
  std::uint64_t m_stored_total = 0;

  Ino m_lf_entry = 0;  // what "/lost+found" names
  Ino m_lf = 0;        // the /lost+found used by repair
};

Node* Checker::find(Ino ino) {
  auto it = std::lower_bound(m_nodes.begin(), m_nodes.end(), ino, [](const Node& n, Ino i) { return n.ino < i; });
  return it != m_nodes.end() && it->ino == ino ? &*it : nullptr;
}

void Checker::add(std::string_view kind, std::string key, std::string detail, Action action) {
  FsckProblem p;
  p.kind = std::string(kind);
  p.key = std::move(key);
  p.detail = std::move(detail);
  p.repairable = action.op != Op::None;
  p.deletes = p.repairable ? action.deletes : std::string();
  m_report.problems.push_back(std::move(p));
  m_actions.push_back(std::move(action));
}

// `holds_data`: the key may hold file data (a block, entries, attributes,
// an inode), so deleting it is a data-deleting repair; else it is records
// of the running system. Inodes and the superblock are never deleted.
void Checker::wrong_type(std::string_view key, std::string_view want, std::string_view got, bool deletable,
                         bool holds_data) {
  Action a;
  if (deletable) {
    a.op = Op::Del;
    a.key = std::string(key);
    if (holds_data) {
      a.deletes = "the key (a " + std::string(got) + ")";
    }
  }
  std::string why = "a " + std::string(got) + ", not a " + std::string(want);
  if (!deletable) {
    why += " (not repaired: fix or remove it by hand)";
  }
  add(fsck_kind::k_wrong_type, std::string(key), why, a);
}

// ---------------------------------------------------------------- run

Result<FsckReport> Checker::run(Connection& c) {
  if (m_repair) {
    TRY(guard_freeze(c));
  }
  TRY(first_pass(c));
  if (!m_any_fs_key) {
    return make_error(ENOENT, "no filesystem at prefix '" + m_keys.prefix() + "'");
  }
  std::sort(m_nodes.begin(), m_nodes.end(), [](const Node& a, const Node& b) { return a.ino < b.ino; });
  m_nodes.erase(std::unique(m_nodes.begin(), m_nodes.end(), [](const Node& a, const Node& b) { return a.ino == b.ino; }),
                m_nodes.end());
  if (m_progress != nullptr) {
    m_progress->set_total(2 * m_keys_seen);
  }
  check_superblock();
  TRY(second_pass(c));
  TRY(read_orphans(c));
  analyse();
  settle_repairability();
  if (m_repair) {
    repair(c);
  }
  for (const Node& n : m_nodes) {
    ++m_report.inodes;
    m_report.dirs += n.type == NodeType::Dir ? 1 : 0;
    m_report.files += n.type == NodeType::File ? 1 : 0;
  }
  return std::move(m_report);
}

Status Checker::guard_freeze(Connection& c) {
  auto r = c.command({"PTTL", m_keys.freeze()});
  TRY(_named(m_keys.freeze(), r));
  if (r->view().integer() >= 0) {
    return make_error(EBUSY, "a snapshot of '" + m_keys.prefix() + "' is being taken (" + m_keys.freeze() +
                                 " exists): repair when it has ended");
  }
  // A snapshot being taken copy-on-write: a repair's changes would not be
  // copied first (fsck changes keys directly, not through the scripts).
  // (A damaged record, not a hash or naming another prefix, is a problem
  // this repair removes.)
  auto cow = c.command({"HMGET", m_keys.cow(), "staging", "deadline"});
  TRY_ASSIGN(std::int64_t now_ns, server_time_ns(c));
  auto deadline = cow.ok() && cow->view().size() == 2 ? cow->view()[1].as_int() : std::nullopt;
  if (deadline && *deadline * 1000000 > now_ns && is_cow_staging(m_keys.prefix(), cow->view()[0].str())) {
    return make_error(EBUSY, "a snapshot of '" + m_keys.prefix() + "' is being taken (" + m_keys.cow() +
                                 "): repair when it has ended");
  }
  // A restore, copy or delete filling, replacing or removing it: repairing
  // what it is halfway through would break what it is building.
  TRY_ASSIGN(auto holder, reservation_holder(c, m_keys));
  if (holder) {
    return make_error(EBUSY, "'" + m_keys.prefix() + "' is reserved by a running " + *holder +
                                 ": repair when it has ended");
  }
  auto journal = c.command({"EXISTS", m_keys.installing()});
  TRY(_named(m_keys.installing(), journal));
  if (journal->view().integer() == 1) {
    return make_error(EBUSY, "a restore or copy into '" + m_keys.prefix() + "' was interrupted while moving its keys (" +
                                 m_keys.installing() + "): mount it once to finish that move first");
  }
  return {};
}

// ---------------------------------------------------------------- pass 1

// Every key of the prefix, SCAN page by page, handed to `batch` in
// pipelines of k_pipeline keys.
Status Checker::scan(Connection& c, Status (Checker::*batch)(Connection&, ReplyView, std::size_t, std::size_t)) {
  std::string cursor = "0";
  const std::string match = m_keys.match_all();
  do {
    TRY(check_cancel());
    auto r = c.command({"SCAN", cursor, "MATCH", match, "COUNT", k_scan_count});
    TRY(_named(match, r));
    ReplyView v = r->view();
    if (!v.is_array() || v.size() != 2) {
      return _on_key(match, make_error(EIO, "bad SCAN reply"));
    }
    cursor = std::string(v[0].str());
    ReplyView keys = v[1];
    for (std::size_t at = 0; at < keys.size(); at += k_pipeline) {
      TRY((this->*batch)(c, keys, at, std::min(keys.size(), at + k_pipeline)));
    }
  } while (cursor != "0");
  return {};
}

Status Checker::first_pass(Connection& c) { return scan(c, &Checker::first_batch); }

Status Checker::first_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to) {
  struct Item {
    std::string_view key;
    ParsedKey pk;
  };
  std::vector<Item> items;
  std::size_t queued = 0;
  for (std::size_t i = from; i < to; ++i) {
    std::string_view key = keys[i].str();
    auto rel = m_keys.relative(key);
    ParsedKey pk = rel ? parse_relative_key(*rel) : ParsedKey{};
    ++m_keys_seen;
    switch (pk.kind) {
      case KeyKind::Superblock:
      case KeyKind::Inode:
        c.append({"TYPE", key});
        c.append({"HGETALL", key});
        queued += 2;
        items.push_back({key, pk});
        m_any_fs_key = true;
        break;
      case KeyKind::Orphans:
        c.append({"TYPE", key});
        queued += 1;
        items.push_back({key, pk});
        m_any_fs_key = true;
        break;
      case KeyKind::Cow:
        c.append({"TYPE", key});
        c.append({"HGET", key, "staging"});
        queued += 2;
        items.push_back({key, pk});
        break;
      case KeyKind::Freeze:
        c.append({"PTTL", key});
        queued += 1;
        items.push_back({key, pk});
        break;
      case KeyKind::Open:
        c.append({"TYPE", key});
        c.append({"HGETALL", key});
        queued += 2;
        items.push_back({key, pk});
        break;
      case KeyKind::Mount:
      case KeyKind::Mounts:
      case KeyKind::Touched:
      case KeyKind::Temp:
      case KeyKind::OpLog:
      case KeyKind::Reserved:
      case KeyKind::Installing:
        break;
      case KeyKind::Unknown:
        m_any_fs_key = true;
        add(fsck_kind::k_unknown_key, std::string(key), "not a key of the redisfs schema (left alone)");
        break;
      default:
        m_any_fs_key = true;  // directories, xattrs, blocks: pass 2
        break;
    }
  }
  auto replies = _read_n(c, queued);
  std::size_t at = 0;
  for (const Item& it : items) {
    if (it.pk.kind == KeyKind::Open) {
      auto& type = replies[at++];
      auto& sessions = replies[at++];
      TRY(_named(it.key, type));
      std::string_view t = type->view().str();
      if (t == "none") {
        continue;
      }
      if (t != "hash") {
        wrong_type(it.key, "hash", t, true, false);
        continue;
      }
      TRY(_named(it.key, sessions));
      TRY(read_opens(c, it.key, sessions->view()));
      continue;
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
        continue;
      }
      Action a;
      a.op = Op::Del;
      a.key = std::string(it.key);
      add(fsck_kind::k_bad_cow, std::string(it.key),
          "a snapshot record that is not a hash or names a staging prefix not of this filesystem: every change "
          "fails while it lives",
          a);
      continue;
    }
    if (it.pk.kind == KeyKind::Freeze) {
      auto& ttl = replies[at++];
      TRY(_named(it.key, ttl));
      if (ttl->view().integer() == -1) {
        Action a;
        a.op = Op::Del;
        a.key = std::string(it.key);
        add(fsck_kind::k_freeze_no_ttl, std::string(it.key),
            "a snapshot freeze that never expires blocks every change to the filesystem", a);
      }
      continue;
    }
    auto& type = replies[at++];
    TRY(_named(it.key, type));
    std::string_view t = type->view().str();
    if (it.pk.kind == KeyKind::Orphans) {
      if (t == "hash") {
        m_orphans_hash = true;
      } else if (t != "none") {
        wrong_type(it.key, "hash", t, true, false);
      }
      continue;
    }
    auto& fields = replies[at++];
    if (t == "none") {
      continue;  // gone since SCAN
    }
    if (t != "hash") {
      // Neither is deleted: an inode of the wrong type still owns its
      // blocks, entries and attributes (a bad node keeps them).
      if (it.pk.kind == KeyKind::Superblock) {
        m_sb_wrong_type = true;
      } else {
        Node n;
        n.ino = it.pk.ino;
        n.bad = true;
        m_nodes.push_back(n);
      }
      wrong_type(it.key, "hash", t, false, true);
      continue;
    }
    TRY(_named(it.key, fields));
    if (it.pk.kind == KeyKind::Superblock) {
      read_superblock(fields->view());
    } else {
      read_inode(it.pk.ino, it.key, fields->view());
    }
  }
  if (m_progress != nullptr) {
    m_progress->add(to - from);
  }
  return {};
}

// Opens counted for a mount that is gone (it crashed): they keep nothing
// alive (purge ignores them), but they are garbage; so is a count that is
// not a positive number (open.lua and release.lua could not count it).
Status Checker::read_opens(Connection& c, std::string_view key, ReplyView v) {
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    std::string session(v[i].str());
    std::string_view count = v[i + 1].str();
    Action a;
    a.op = Op::HDel;
    a.key = std::string(key);
    a.field = session;
    std::uint64_t n = 0;
    if (!parse_canonical_u64(count, n) || n == 0 || n > k_max_inode) {
      add(fsck_kind::k_stale_open, std::string(key),
          "opens of mount " + _quote(session) + " counted as " + _quote(count) + ", not a positive number", a);
      continue;
    }
    const std::string mount = m_keys.mount(session);
    auto alive = c.command({"EXISTS", mount});
    TRY(_named(mount, alive));
    if (alive->view().integer() == 0) {
      add(fsck_kind::k_stale_open, std::string(key), "opens of mount " + _quote(session) + ", which is gone", a);
    }
  }
  return {};
}

void Checker::read_superblock(ReplyView v) {
  m_have_sb = v.size() > 0;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    std::string_view k = v[i].str();
    std::string val(v[i + 1].str());
    m_sb_fields.emplace_back(std::string(k), val);
    if (k == "next_inode") {
      m_sb_next = val;
      m_sb_has_next = true;
    } else if (k == "inodes") {
      m_sb_inodes = val;
      m_sb_has_inodes = true;
    } else if (k == "bytes") {
      m_sb_bytes = val;
      m_sb_has_bytes = true;
    }
  }
}

// The fields every inode the scripts write has (create.lua); a missing one
// makes the inode bad rather than read as 0: a file whose size is missing
// must not lose its blocks as "past the end". (nlink and bytes are
// counters: a missing one is a wrong count, set right by repair; parent
// likewise, from the entry naming the directory.)
constexpr std::string_view k_required_fields[] = {"type", "mode", "uid", "gid", "size", "rdev", "atime", "mtime",
                                                  "ctime"};

void Checker::read_inode(Ino ino, std::string_view key, ReplyView v) {
  if (v.size() == 0) {
    return;  // gone since SCAN
  }
  Node n;
  n.ino = ino;
  FieldList fields;
  fields.reserve(v.size() / 2);
  std::optional<std::int64_t> nlink;
  std::optional<std::int64_t> bytes;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    std::string_view k = v[i].str();
    std::string_view val = v[i + 1].str();
    fields.emplace_back(k, val);
    if (k == "type") {
      n.type = _node_type(val);
    } else if (k == "nlink") {
      nlink = _i64(val);
    } else if (k == "bytes") {
      bytes = _i64(val);
    }
  }
  // Every value judged below comes from the decoder (the daemon's own): a
  // value it cannot parse is never read as 0 or as a default.
  auto attr = decode_attr(ino, fields);
  std::string why;
  if (!attr.ok()) {
    why = attr.error().message;
  } else if (n.type == NodeType::Unknown) {
    why = "unknown type";
  } else if (ino > k_max_inode) {
    why = "inode number " + _str(ino) + " is not below 2^53 (scripts could not name it exactly)";
  } else {
    for (std::string_view f : k_required_fields) {
      auto has = [&](const auto& kv) { return kv.first == f; };
      if (std::none_of(fields.begin(), fields.end(), has)) {
        why = "inode " + _str(ino) + ": no '" + std::string(f) + "' field";
        break;
      }
    }
  }
  if (!why.empty()) {
    n.bad = true;
    add(fsck_kind::k_bad_inode, std::string(key),
        _cut(why, k_detail_max) + " (not repaired: fix or remove it by hand)");
  } else {
    n.size = attr->size;
    n.parent = attr->parent;
    n.nlink = nlink.value_or(0);      // decoded, so parsed when present
    n.bytes_field = bytes.value_or(0);  // likewise
  }
  m_nodes.push_back(n);
}

void Checker::check_superblock() {
  const std::string sb = m_keys.sb();
  if (!m_have_sb) {
    if (!m_sb_wrong_type) {
      add(fsck_kind::k_missing_superblock, sb, "no superblock: fsck repairs nothing without one");
    }
    return;
  }
  m_sb_ok = true;
  for (const SuperblockIssue& issue : superblock_issues(m_sb_fields)) {
    // The counters are judged (and repaired) against the scan later.
    if (issue.field == "next_inode" || issue.field == "inodes" || issue.field == "bytes") {
      continue;
    }
    add(fsck_kind::k_bad_superblock, sb, issue.detail + " (not repaired: fix it by hand)");
    if (issue.field == "format" || issue.field == "version" || issue.field == "block_size" || issue.field == "root") {
      m_sb_ok = false;
    }
  }
  if (!m_sb_ok) {
    return;
  }
  for (const auto& [k, v] : m_sb_fields) {
    std::uint64_t bs = 0;
    if (k == "block_size" && parse_canonical_u64(v, bs)) {
      m_bs = bs;
    }
  }
}

// ---------------------------------------------------------------- pass 2

Status Checker::second_pass(Connection& c) { return scan(c, &Checker::second_batch); }

Status Checker::second_batch(Connection& c, ReplyView keys, std::size_t from, std::size_t to) {
  struct Item {
    std::string_view key;
    ParsedKey pk;
    Node* node;
  };
  std::vector<Item> items;
  std::size_t queued = 0;
  auto stray = [&](std::string_view key, std::string detail, std::string deletes) {
    Action a;
    a.op = Op::Del;
    a.key = std::string(key);
    a.deletes = std::move(deletes);
    add(fsck_kind::k_stray_key, std::string(key), std::move(detail), a);
  };
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
    Node* n = find(pk.ino);
    if (n == nullptr) {
      stray(key, "inode " + _str(pk.ino) + " does not exist",
            pk.kind == KeyKind::Block ? "a data block"
            : pk.kind == KeyKind::Dir ? "the directory entries it holds"
                                      : "the extended attributes it holds");
      continue;
    }
    if (pk.kind == KeyKind::Dir) {
      if (!n->bad && n->type != NodeType::Dir) {
        stray(key, "directory entries of inode " + _str(pk.ino) + ", which is " + std::string(_type_word(n->type)),
              "the directory entries it holds");
        continue;
      }
      if (n->walked) {
        continue;  // SCAN returned it twice
      }
      n->walked = true;
      c.append({"TYPE", key});
      c.append({"HSCAN", key, "0", "COUNT", k_scan_count});
      queued += 2;
    } else if (pk.kind == KeyKind::Xattr) {
      c.append({"TYPE", key});
      c.append({"HSCAN", key, "0", "COUNT", k_xattr_scan_count});
      queued += 2;
    } else {
      if (!n->bad && n->type != NodeType::File) {
        stray(key, "a data block of inode " + _str(pk.ino) + ", which is " + std::string(_type_word(n->type)),
              "a data block");
        continue;
      }
      c.append({"TYPE", key});
      c.append({"STRLEN", key});
      queued += 2;
    }
    items.push_back({key, pk, n});
  }
  auto replies = _read_n(c, queued);
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
      wrong_type(it.key, want, t, true, true);
      continue;
    }
    TRY(_named(it.key, second));
    if (it.pk.kind == KeyKind::Xattr) {
      TRY(walk_xattrs(c, *it.node, it.key, second->view()));
    } else if (it.pk.kind == KeyKind::Dir) {
      TRY(walk_dir(c, *it.node, it.key, second->view()));
    } else {
      block(*it.node, it.key, it.pk.index, static_cast<std::uint64_t>(second->view().integer()));
    }
  }
  if (m_progress != nullptr) {
    m_progress->add(to - from);
  }
  return {};
}

Status Checker::walk_dir(Connection& c, Node& dir, std::string_view key, ReplyView page) {
  Reply next;
  for (;;) {
    if (!page.is_array() || page.size() != 2) {
      return _on_key(key, make_error(EIO, "bad HSCAN reply"));
    }
    ReplyView items = page[1];
    dir.has_entries = dir.has_entries || items.size() >= 2;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      entry(dir.ino, items[i].str(), items[i + 1].str());
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

Status Checker::walk_xattrs(Connection& c, const Node& n, std::string_view key, ReplyView page) {
  Reply next;
  for (;;) {
    if (!page.is_array() || page.size() != 2) {
      return _on_key(key, make_error(EIO, "bad HSCAN reply"));
    }
    ReplyView items = page[1];
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      xattr(n, key, items[i].str(), items[i + 1].str());
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

// An attribute the kernel could not list or read (listxattr fails for the
// whole file) is removed by repair: that deletes its value, and says so.
void Checker::xattr(const Node& n, std::string_view key, std::string_view name, std::string_view value) {
  std::string why;
  if (Status ok = check_xattr_name(name); !ok.ok()) {
    why = _quote(name) + " is not a valid attribute name (" + ok.error().message + ")";
  } else if (value.size() > k_xattr_value_max) {
    why = _quote(name) + " holds " + _str(value.size()) + " bytes, more than an attribute may (64 KiB)";
  } else if (name.starts_with("user.") && !n.bad && n.type != NodeType::File && n.type != NodeType::Dir) {
    // The kernel reads user.* attributes of regular files and directories
    // only (ENODATA for the rest), though listxattr lists them.
    why = _quote(name) + " on " + std::string(_type_word(n.type)) +
          ": user.* attributes are only readable on regular files and directories";
  } else {
    if (name.starts_with("security.")) {
      m_security_xattr = true;
    }
    return;
  }
  Action a;
  a.op = Op::HDel;
  a.key = std::string(key);
  a.field = std::string(name);
  a.deletes = "the attribute " + _quote(name) + " and its " + _str(value.size()) + "-byte value";
  add(fsck_kind::k_bad_xattr, std::string(key), why, a);
}

void Checker::entry(Ino container, std::string_view name, std::string_view value) {
  std::string dkey = m_keys.dir(container);
  if (Status ok = check_file_name(name); !ok.ok()) {
    // The kernel cannot use the name: the entry goes, and what it named
    // counts as unnamed here, so repair reattaches it in /lost+found unless
    // another entry names it.
    Action a;
    a.op = Op::HDel;
    a.key = dkey;
    a.field = std::string(name);
    add(fsck_kind::k_bad_entry, dkey,
        _quote(name) + " (naming " + _quote(value) + ") is not a usable file name (" + ok.error().message +
            "); repair removes the entry and keeps what it names",
        a);
    return;
  }
  Ino ino = 0;
  if (!parse_canonical_u64(value, ino) || ino == 0) {
    Action a;
    a.key = dkey;
    a.field = std::string(name);
    if (_digits_u64(value, ino) && ino != 0) {
      // Scripts compare inode numbers as strings: "007" would never match.
      a.op = Op::HSet;
      a.value = _str(ino);
      add(fsck_kind::k_bad_entry, dkey, _quote(name) + " holds " + _quote(value) + ", not a canonical inode number", a);
    } else {
      a.op = Op::HDel;
      add(fsck_kind::k_bad_entry, dkey, _quote(name) + " holds " + _quote(value) + ", not an inode number", a);
      return;
    }
  }
  Node* t = find(ino);
  if (t == nullptr) {
    Action a;
    a.op = Op::HDel;
    a.key = dkey;
    a.field = std::string(name);
    add(fsck_kind::k_dangling_entry, dkey, _quote(name) + " names inode " + _str(ino) + ", which does not exist", a);
    return;
  }
  if (container == k_root_ino && name == k_lost_found) {
    m_lf_entry = ino;
  }
  if (t->type != NodeType::Dir) {
    ++t->links;
    return;
  }
  if (t->bad) {
    if (t->home == 0) {
      t->home = container;
    }
    return;
  }
  if (ino != k_root_ino && container == t->parent && t->home == 0) {
    t->home = container;
    return;
  }
  m_suspects.push_back({container, std::string(name), ino});
}

void Checker::block(Node& n, std::string_view key, std::uint64_t index, std::uint64_t len) {
  ++m_report.blocks;
  m_report.bytes += len;
  if (n.bad || m_bs == 0) {
    n.stored += len;
    m_stored_total += len;
    return;
  }
  const std::uint64_t bs = m_bs;
  Action a;
  a.key = std::string(key);
  if (index >= _div_ceil(n.size, bs)) {
    a.op = Op::Del;
    a.deletes = "a block of " + _str(len) + " bytes";
    add(fsck_kind::k_block_past_eof, std::string(key),
        "block " + _str(index) + " of a file of " + _str(n.size) + " bytes (" + _str(len) + " bytes stored)", a);
    return;
  }
  std::uint64_t room = std::min(bs, n.size - index * bs);
  if (len > room) {
    a.op = Op::Trim;
    a.value = _str(room);
    a.deletes = "the last " + _str(len - room) + " bytes of the block";
    if (room == bs) {
      add(fsck_kind::k_oversized_block, std::string(key),
          "holds " + _str(len) + " bytes, more than the block size " + _str(bs), a);
    } else {
      add(fsck_kind::k_bytes_past_eof, std::string(key),
          "holds " + _str(len) + " bytes, but the file (" + _str(n.size) + " bytes) ends " + _str(room) +
              " bytes into this block",
          a);
    }
    len = room;
  }
  n.stored += len;
  m_stored_total += len;
}

Status Checker::read_orphans(Connection& c) {
  if (!m_orphans_hash) {
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
    // Whose orphans are they? A mount that is gone (killed) never frees its
    // own: the next read-write mount does (purge_dead_orphans).
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      c.append({"EXISTS", m_keys.mount(items[i + 1].str())});
    }
    auto alive = _read_n(c, items.size() / 2);
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      std::string_view field = items[i].str();
      Ino ino = 0;
      Action a;
      a.op = Op::HDel;
      a.key = key;
      a.field = std::string(field);
      if (!parse_canonical_u64(field, ino) || ino == 0) {
        add(fsck_kind::k_stale_orphan, key, _quote(field) + " is not an inode number", a);
        continue;
      }
      Node* n = find(ino);
      if (n == nullptr) {
        add(fsck_kind::k_stale_orphan, key, "inode " + _str(ino) + " does not exist", a);
        continue;
      }
      n->in_orphans = true;
      auto& mount = alive[i / 2];
      if (mount.ok() && mount->view().integer() == 0 && n->nlink == 0) {
        add(fsck_kind::k_dead_orphan, key,
            "inode " + _str(ino) + " was unlinked while open by mount " + _quote(items[i + 1].str()) +
                ", which is gone; the next read-write mount frees it (not repaired by fsck)");
      }
    }
  } while (cursor != "0");
  return {};
}

// ---------------------------------------------------------------- analysis

void Checker::analyse() {
  Node* root = find(k_root_ino);
  if (root == nullptr) {
    add(fsck_kind::k_missing_root, m_keys.inode(k_root_ino), "the root directory (inode 1) does not exist");
  } else if (!root->bad && root->type != NodeType::Dir) {
    add(fsck_kind::k_missing_root, m_keys.inode(k_root_ino),
        "the root (inode 1) is " + std::string(_type_word(root->type)) + ", not a directory");
  } else {
    m_root_ok = !root->bad;
    if (m_root_ok && root->parent != k_root_ino) {
      Action a{Op::HSet, k_stage_remove, m_keys.inode(k_root_ino), "parent", "1", 0, {}};
      add(fsck_kind::k_wrong_parent, m_keys.inode(k_root_ino),
          "the root's parent is " + _str(root->parent) + ", not itself", a);
    }
  }

  for (const Suspect& s : m_suspects) {
    Node* d = find(s.target);
    std::string dkey = m_keys.dir(s.container);
    Action remove{Op::HDel, k_stage_remove, dkey, s.name, {}, 0, {}};
    if (s.target == k_root_ino) {
      add(fsck_kind::k_extra_entry, dkey, _quote(s.name) + " names the root directory", remove);
    } else if (d->home == 0) {
      d->home = s.container;
      Action a{Op::HSet, k_stage_remove, m_keys.inode(s.target), "parent", _str(s.container), 0, {}};
      add(fsck_kind::k_wrong_parent, m_keys.inode(s.target),
          "parent is " + _str(d->parent) + ", but the directory is named by " + _quote(s.name) + " in directory " +
              _str(s.container),
          a);
      continue;
    } else {
      add(fsck_kind::k_extra_entry, dkey,
          _quote(s.name) + " names directory " + _str(s.target) + ", which is already named in directory " +
              _str(d->home),
          remove);
    }
    if (s.container == k_root_ino && s.name == k_lost_found && m_lf_entry == s.target) {
      m_lf_entry = 0;  // the repair removes it
    }
  }

  for (Node& n : m_nodes) {
    if (!n.in_orphans) {
      continue;
    }
    Action drop{Op::HDel, k_stage_remove, m_keys.orphans(), _str(n.ino), {}, 0, {}};
    if (n.type == NodeType::Dir) {
      // A removed directory is an orphan until purged: named by no entry,
      // and empty (rmdir and rename delete its entries hash).
      if (n.home != 0) {
        add(fsck_kind::k_stale_orphan, m_keys.orphans(),
            "directory " + _str(n.ino) + " is recorded as an orphan, but it is named in directory " + _str(n.home),
            drop);
        n.in_orphans = false;
      } else if (n.has_entries) {
        add(fsck_kind::k_stale_orphan, m_keys.orphans(),
            "directory " + _str(n.ino) + " is recorded as an orphan, but it still holds entries", drop);
        n.in_orphans = false;
      }
    } else if (n.links > 0) {
      add(fsck_kind::k_stale_orphan, m_keys.orphans(),
          "inode " + _str(n.ino) + " is recorded as an orphan, but " + _str(n.links) + " entries name it", drop);
      n.in_orphans = false;
    }
  }

  for (Node& n : m_nodes) {
    if (n.bad || n.ino == k_root_ino) {
      continue;
    }
    n.lost = (n.type == NodeType::Dir ? n.home == 0 : n.links == 0) && !n.in_orphans;
  }
  find_cycles();
  for (const Node& n : m_nodes) {
    if (n.type == NodeType::Dir && n.ino != k_root_ino && !n.lost && n.home != 0) {
      if (Node* h = find(n.home)) {
        ++h->subdirs;
      }
    }
  }
  check_counters();
}

// A directory whose chain of homes loops without reaching the root (or a
// lost directory, which the repair reattaches) is cut loose: one directory
// of each such cycle moves to /lost+found.
void Checker::find_cycles() {
  std::vector<Node*> path;
  for (Node& start : m_nodes) {
    if (start.type != NodeType::Dir || start.visit != 0) {
      continue;
    }
    path.clear();
    Node* x = &start;
    while (x != nullptr && x->ino != k_root_ino && !x->lost && !x->bad && x->visit == 0) {
      x->visit = 1;
      path.push_back(x);
      x = find(x->home);
    }
    if (x != nullptr && x->visit == 1) {
      x->detached = true;  // back on the current path: a cycle
    }
    for (Node* p : path) {
      p->visit = 2;
    }
  }
}

void Checker::check_counters() {
  Ino max_ino = 0;  // of the inode numbers a script can hand out (the others are bad inodes)
  for (const Node& n : m_nodes) {
    if (n.ino <= k_max_inode) {
      max_ino = std::max(max_ino, n.ino);
    }
    if (n.bad) {
      continue;
    }
    const std::string key = m_keys.inode(n.ino);
    if (n.type == NodeType::Dir) {
      std::int64_t want = n.in_orphans ? 0 : static_cast<std::int64_t>(2 + n.subdirs);
      if (n.nlink != want) {
        std::string why = n.in_orphans ? "it is a removed directory (an orphan)"
                                       : "the directory has " + _str(n.subdirs) + " subdirectories (nlink " +
                                             std::to_string(want) + ")";
        add(fsck_kind::k_wrong_nlink, key, "nlink is " + std::to_string(n.nlink) + ", but " + why,
            Action{Op::HSet, k_stage_count, key, "nlink", std::to_string(want), 0, {}});
      }
    } else if (!n.lost) {
      std::int64_t want = static_cast<std::int64_t>(n.links);
      if (n.nlink != want) {
        std::string why = n.in_orphans ? "it is an orphan (no entry names it)"
                                       : _str(n.links) + (n.links == 1 ? " entry names it" : " entries name it");
        add(fsck_kind::k_wrong_nlink, key, "nlink is " + std::to_string(n.nlink) + ", but " + why,
            Action{Op::HSet, k_stage_count, key, "nlink", std::to_string(want), 0, {}});
      }
    }
    if (n.bytes_field < 0 || static_cast<std::uint64_t>(n.bytes_field) != n.stored) {
      add(fsck_kind::k_wrong_bytes, key,
          "bytes is " + std::to_string(n.bytes_field) + ", but its blocks hold " + _str(n.stored),
          Action{Op::HSet, k_stage_count, key, "bytes", _str(n.stored), 0, {}});
    }
    if (n.lost) {
      add(fsck_kind::k_lost_inode, key,
          n.type == NodeType::Dir ? "no entry names this directory"
                                  : "no entry names it and it is not an orphan (" + std::string(_type_word(n.type)) +
                                        ", " + _str(n.size) + " bytes)",
          Action{Op::Reattach, k_stage_attach, key, {}, {}, n.ino, {}});
    } else if (n.detached) {
      add(fsck_kind::k_detached_dir, key,
          "on a cycle of directories that the root does not reach (named in directory " + _str(n.home) + ")",
          Action{Op::Reattach, k_stage_attach, key, {}, {}, n.ino, {}});
    }
  }

  if (!m_have_sb) {
    return;
  }
  const std::string sb = m_keys.sb();
  // The daemon hands out next_inode and up: below an existing inode, every
  // create fails; at 2^53 or more Lua cannot count exactly.
  std::uint64_t v = 0;
  std::string why;
  if (!m_sb_has_next) {
    why = "next_inode is missing";
  } else if (!parse_canonical_u64(m_sb_next, v)) {
    why = "next_inode is " + _quote(m_sb_next) + ", not a number";
  } else if (v > k_max_inode) {
    why = "next_inode is " + _quote(m_sb_next) + ": inode numbers stay below 2^53";
  } else if (v > k_max_inode + 1 - k_next_inode_room && max_ino + 1 <= k_max_inode + 1 - k_next_inode_room) {
    // No filesystem gets there by creating files: a mount could create
    // only a few before it runs out of inode numbers.
    why = "next_inode is " + _quote(m_sb_next) + ", within " + _str(k_next_inode_room) +
          " of 2^53: few files could be created";
  } else if (v < 2) {
    why = "next_inode is " + _quote(m_sb_next) + ", but inode 1 is the root";
  } else if (v <= max_ino) {
    why = "next_inode is " + _quote(m_sb_next) + ", but inode " + _str(max_ino) + " exists";
  }
  if (!why.empty()) {
    std::string want = _str(std::max<Ino>(max_ino + 1, 2));
    add(fsck_kind::k_wrong_counter, sb, why + " (repair sets it to " + want + ")",
        Action{Op::HSet, k_stage_counter, sb, "next_inode", want, 0, {}});
  }
  // Until the flag is set, the daemon answers ENODATA for every security.*
  // attribute without asking (store.cpp): one it stores could not be read.
  if (m_security_xattr) {
    bool flagged = std::any_of(m_sb_fields.begin(), m_sb_fields.end(),
                               [](const auto& kv) { return kv.first == "security_xattrs" && kv.second == "1"; });
    if (!flagged) {
      add(fsck_kind::k_wrong_counter, sb, "security_xattrs is not 1, but a file has a security.* attribute",
          Action{Op::HSet, k_stage_count, sb, "security_xattrs", "1", 0, {}});
    }
  }
  auto counter = [&](std::string_view field, bool has, const std::string& value, std::uint64_t want) {
    std::uint64_t got = 0;
    if (has && parse_canonical_u64(value, got) && got == want) {
      return;
    }
    add(fsck_kind::k_wrong_counter, sb,
        std::string(field) + " is " + (has ? _quote(value) : std::string("missing")) + ", but the filesystem holds " +
            _str(want),
        Action{Op::HSet, k_stage_count, sb, std::string(field), _str(want), 0, {}});
  };
  counter("inodes", m_sb_has_inodes, m_sb_inodes, m_nodes.size());
  counter("bytes", m_sb_has_bytes, m_sb_bytes, m_stored_total);
}

void Checker::settle_repairability() {
  std::string no_attach;
  if (!m_root_ok) {
    no_attach = "cannot reattach it: the root directory is broken";
  } else if (m_lf_entry != 0) {
    Node* lf = find(m_lf_entry);
    if (lf == nullptr || lf->type != NodeType::Dir || lf->bad || lf->lost || lf->detached) {
      no_attach = "cannot reattach it: /lost+found is not a usable directory";
    }
  }
  for (std::size_t i = 0; i < m_actions.size(); ++i) {
    FsckProblem& p = m_report.problems[i];
    if (!m_sb_ok) {
      p.repairable = false;
    } else if (p.repairable && m_actions[i].op == Op::Reattach && !no_attach.empty()) {
      p.repairable = false;
      p.detail += "; " + no_attach;
    }
  }
}

// ---------------------------------------------------------------- repair

void Checker::repair(Connection& c) {
  for (int stage = k_stage_counter; stage <= k_stage_attach; ++stage) {
    for (std::size_t i = 0; i < m_actions.size(); ++i) {
      FsckProblem& p = m_report.problems[i];
      if (!p.repairable || m_actions[i].stage != stage) {
        continue;
      }
      Status s = apply(c, m_actions[i]);
      if (s.ok()) {
        p.repaired = true;
      } else {
        p.detail += " (repair failed: " + _cut(s.error().message, k_detail_max) + ")";
      }
    }
  }
}

// A repair that changes a directory's entries counts the change in the
// directory's 'gen', as the scripts do (prelude.lua: dir_changed): a mount
// trusts its list of a directory's names only while the count follows its
// own changes.
Status Checker::count_dir_change(Connection& c, const std::string& key) {
  auto rel = m_keys.relative(key);
  ParsedKey parsed = rel ? parse_relative_key(*rel) : ParsedKey{};
  if (parsed.kind != KeyKind::Dir) {
    return {};
  }
  const std::string inode = m_keys.inode(parsed.ino);
  TRY_ASSIGN(Reply exists, c.command({"EXISTS", inode}));
  if (exists.view().integer() == 1) {  // never make an inode of a stray DIR key
    TRY(c.command({"HINCRBY", inode, "gen", "1"}));
  }
  return {};
}

Status Checker::apply(Connection& c, const Action& a) {
  switch (a.op) {
    case Op::HDel:
      TRY(c.command({"HDEL", a.key, a.field}));
      return count_dir_change(c, a.key);
    case Op::HSet:
      TRY(c.command({"HSET", a.key, a.field, a.value}));
      return count_dir_change(c, a.key);
    case Op::Del:
      TRY(c.command({"DEL", a.key}));
      return {};
    case Op::Trim:
      TRY(c.command({"EVAL", k_trim_script, "1", a.key, a.value}));
      return {};
    case Op::Reattach:
      return reattach(c, a.ino);
    case Op::None:
      break;
  }
  return make_error(EINVAL, "nothing to do");
}

Result<Ino> Checker::lost_found(Connection& c) {
  if (m_lf != 0) {
    return m_lf;
  }
  if (m_lf_entry != 0) {
    m_lf = m_lf_entry;
    return m_lf;
  }
  const std::string root = m_keys.inode(k_root_ino);
  const std::string root_dir = m_keys.dir(k_root_ino);
  TRY_ASSIGN(Reply taken, c.command({"HEXISTS", root_dir, k_lost_found}));
  if (taken.view().integer() != 0) {
    return make_error(EEXIST, "/lost+found appeared during the repair");
  }
  TRY_ASSIGN(Reply owner, c.command({"HMGET", root, "mode", "gid"}));
  std::uint32_t mode = 0700;
  std::string gid = "0";
  {
    std::uint32_t root_mode = 0;
    std::string_view m = owner.view()[0].str();
    std::from_chars(m.data(), m.data() + m.size(), root_mode, 8);
    if (root_mode & S_ISGID) {
      // mkdir in a setgid directory: its group, and the setgid bit.
      mode |= S_ISGID;
      gid = std::string(owner.view()[1].str());
    }
  }
  Ino lf = 0;
  for (int attempt = 0; attempt < 64 && lf == 0; ++attempt) {
    TRY_ASSIGN(Reply r, c.command({"HINCRBY", m_keys.sb(), "next_inode", "1"}));
    Ino candidate = static_cast<Ino>(r.view().integer() - 1);
    TRY_ASSIGN(Reply e, c.command({"EXISTS", m_keys.inode(candidate)}));
    if (e.view().integer() == 0 && candidate > k_root_ino) {
      lf = candidate;
    }
  }
  if (lf == 0) {
    return make_error(EIO, "no free inode number for /lost+found");
  }
  TRY_ASSIGN(std::string now, _server_now(c));
  TRY(_exec(c, {
                   {"HSET", m_keys.inode(lf), "type", "dir", "mode", format_mode(mode), "uid", "0", "gid", gid, "size",
                    "0", "nlink", "2", "rdev", "0", "bytes", "0", "parent", "1", "atime", now, "mtime", now, "ctime",
                    now},
                   {"HSET", root_dir, std::string(k_lost_found), _str(lf)},
                   {"HINCRBY", root, "nlink", "1"},
                   {"HSET", root, "mtime", now, "ctime", now},
                   {"HINCRBY", root, "gen", "1"},
                   {"HINCRBY", m_keys.sb(), "inodes", "1"},
               }));
  m_lf = lf;
  return m_lf;
}

Status Checker::reattach(Connection& c, Ino ino) {
  TRY_ASSIGN(Ino lf, lost_found(c));
  Node* n = find(ino);
  const std::string lf_dir = m_keys.dir(lf);
  const std::string lf_inode = m_keys.inode(lf);
  std::string name = "#" + _str(ino);
  for (int i = 1;; ++i) {
    TRY_ASSIGN(Reply r, c.command({"HEXISTS", lf_dir, name}));
    if (r.view().integer() == 0) {
      break;
    }
    name = "#" + _str(ino) + "." + std::to_string(i);
  }
  TRY_ASSIGN(std::string now, _server_now(c));
  std::vector<Args> tx;
  if (n->detached) {
    // Cut it out of its cycle: the entry naming it in its home goes.
    const std::string home_dir = m_keys.dir(n->home);
    const std::string want = _str(ino);
    std::string cursor = "0";
    do {
      TRY_ASSIGN(Reply r, c.command({"HSCAN", home_dir, cursor, "COUNT", k_scan_count}));
      ReplyView v = r.view();
      cursor = std::string(v[0].str());
      for (std::size_t i = 0; i + 1 < v[1].size(); i += 2) {
        if (v[1][i + 1].str() == want) {
          tx.push_back({"HDEL", home_dir, std::string(v[1][i].str())});
        }
      }
    } while (cursor != "0");
    tx.push_back({"HINCRBY", m_keys.inode(n->home), "nlink", "-1"});
    tx.push_back({"HSET", m_keys.inode(n->home), "mtime", now, "ctime", now});
    tx.push_back({"HINCRBY", m_keys.inode(n->home), "gen", "1"});
  }
  tx.push_back({"HSET", lf_dir, name, _str(ino)});
  tx.push_back({"HINCRBY", lf_inode, "gen", "1"});
  if (n->type == NodeType::Dir) {
    tx.push_back({"HSET", m_keys.inode(ino), "parent", _str(lf), "ctime", now});
    tx.push_back({"HINCRBY", lf_inode, "nlink", "1"});
  } else {
    tx.push_back({"HSET", m_keys.inode(ino), "nlink", "1", "ctime", now});
  }
  tx.push_back({"HSET", lf_inode, "mtime", now, "ctime", now});
  return _exec(c, tx);
}

// ---------------------------------------------------------------- output

// Length of the valid UTF-8 sequence at s[i] (a printable one: no C1
// controls), or 0.
std::size_t _utf8_len(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    if (c == 0xc2) {
      lo = 0xa0;  // U+0080..U+009F are C1 controls
    }
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (i + len > s.size() || b(i + 1) < lo || b(i + 1) > hi) {
    return 0;
  }
  for (std::size_t k = 2; k < len; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) {
      return 0;
    }
  }
  return len;
}

std::string _printable(std::string_view s) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      ++i;
    } else if (std::size_t n = c >= 0x80 ? _utf8_len(s, i) : 0; n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\x";
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
      ++i;
    }
  }
  return out;
}

}  // namespace

std::size_t FsckReport::remaining() const {
  return static_cast<std::size_t>(
      std::count_if(problems.begin(), problems.end(), [](const FsckProblem& p) { return !p.repaired; }));
}

Result<FsckReport> fsck(Pool& pool, const std::string& prefix, bool repair, Progress* progress) {
  TRY(validate_prefix(prefix));
  TRY_ASSIGN(auto c, pool.acquire());
  TRY(check_toolkit_prefix(*c, prefix));
  Checker checker(prefix, repair, progress);
  return checker.run(*c);
}

Result<std::uint64_t> count_live_mounts(Pool& pool, const std::string& prefix) {
  TRY(validate_prefix(prefix));
  Keys keys(prefix);
  TRY_ASSIGN(auto c, pool.acquire());
  TRY(check_toolkit_prefix(*c, prefix));
  std::vector<std::string> seen;
  std::string cursor = "0";
  const std::string match = keys.match_mounts();
  do {
    auto r = c->command({"SCAN", cursor, "MATCH", match, "COUNT", k_scan_count});
    TRY(_named(match, r));
    ReplyView v = r->view();
    if (!v.is_array() || v.size() != 2) {
      return _on_key(match, make_error(EIO, "bad SCAN reply"));
    }
    cursor = std::string(v[0].str());
    for (std::size_t i = 0; i < v[1].size(); ++i) {
      seen.emplace_back(v[1][i].str());
    }
  } while (cursor != "0");
  std::sort(seen.begin(), seen.end());
  return static_cast<std::uint64_t>(std::unique(seen.begin(), seen.end()) - seen.begin());
}

bool fsck_kind_may_be_transient(std::string_view kind) {
  using namespace fsck_kind;
  for (std::string_view k : {k_wrong_counter, k_dangling_entry, k_extra_entry, k_wrong_nlink, k_wrong_parent,
                             k_lost_inode, k_detached_dir, k_stale_orphan, k_dead_orphan, k_stray_key,
                             k_block_past_eof, k_bytes_past_eof, k_wrong_bytes, k_stale_open}) {
    if (kind == k) {
      return true;
    }
  }
  return false;
}

namespace {
std::string _base_line(const FsckProblem& p) {
  return _printable(_cut(p.kind, k_shown_max)) + ": " + _shown_key(p.key) + ": " +
         _printable(_cut(p.detail, k_detail_max));
}
}  // namespace

std::string fsck_problem_line(const FsckProblem& p) {
  std::string line = _base_line(p);
  const std::string deletes = _printable(_cut(p.deletes, k_shown_max * 2));
  if (p.repaired) {
    line += deletes.empty() ? " (repaired)" : " (repaired: deleted " + deletes + ")";
  } else if (p.repairable && !deletes.empty()) {
    line += " (--repair deletes " + deletes + ")";
  }
  return line;
}

std::string fsck_dry_run_line(const FsckProblem& p) {
  if (!p.repairable) {
    return "no repair: " + _base_line(p);
  }
  if (!p.deletes.empty()) {
    return "repair, DELETES DATA (" + _printable(_cut(p.deletes, k_shown_max * 2)) + "): " + _base_line(p);
  }
  return "repair: " + _base_line(p);
}

std::string fsck_summary_line(const FsckReport& report, std::string_view prefix) {
  if (report.problems.empty()) {
    return {};
  }
  std::size_t more = report.problems.size() - 1;
  FsckProblem first = report.problems.front();
  if (!prefix.empty()) {
    if (auto rel = Keys(std::string(prefix)).relative(first.key)) {
      first.key = std::string(*rel);
    }
  }
  std::string line = _base_line(first);
  if (more > 0) {
    line += " (and " + std::to_string(more) + (more == 1 ? " more problem)" : " more problems)");
  }
  return line;
}

std::string fsck_as_json(const std::string& prefix, bool repair, const FsckReport& report) {
  using Json = nlohmann::ordered_json;
  Json j;
  j["prefix"] = prefix;
  j["repair"] = repair;
  j["clean"] = report.remaining() == 0;
  j["inodes"] = report.inodes;
  j["dirs"] = report.dirs;
  j["files"] = report.files;
  j["blocks"] = report.blocks;
  j["bytes"] = report.bytes;
  Json problems = Json::array();
  for (const auto& p : report.problems) {
    Json q;
    q["kind"] = p.kind;
    q["key"] = p.key;
    q["detail"] = p.detail;
    q["deletes"] = p.deletes;
    q["repairable"] = p.repairable;
    q["repaired"] = p.repaired;
    problems.push_back(std::move(q));
  }
  j["problems"] = std::move(problems);
  j["remaining"] = report.remaining();
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace redisfs
