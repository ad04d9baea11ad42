// fsck's analysis (fsck_analysis.hpp): the rules, judged from facts.
//
// Pass 1 facts fill a vector of Node sorted by inode number. Pass 2 facts
// are checked against those nodes: entries add links (or, for directories,
// name a "home"), blocks add stored bytes. Entries that name a directory
// from somewhere other than its 'parent' are kept aside (they are problems
// either way) and settled in the analysis: the first one becomes the home
// if the parent has none (the parent field is wrong), the rest are extra.
// The analysis then marks the lost inodes (no entry, no orphan record) and
// the directory cycles that the root cannot reach, counts subdirectories,
// and compares every counter with the value it will have once the other
// problems are repaired. An orphan is an inode in ORPHANS with nlink 0 that
// no entry names: an unlinked file, or a removed directory (empty, its
// entries hash deleted), kept until purged.
//
// Counts are compared with what they will be once the other problems are
// repaired (a block past the end of a file is not counted in the file's
// bytes, an extra entry naming a directory does not count as a link), so
// one corruption is reported once. Each problem carries the Action that
// repairs it (fsck_repair.cpp), in four stages: 0 the inode counter and
// the sizes set from blocks (finish_sizes), 1 removals, trims and parent
// fields, 2 counters (exact values from the facts) and fields reset, 3
// reattaching into /lost+found.
#include "snap/fsck_analysis.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <new>

#include "snap/snapshot.hpp"
#include "util/reserve_hint.hpp"
#include "util/text.hpp"
#include "util/utf8.hpp"

namespace redisfs::fsck_detail {

namespace {

// next_inode must leave this many inode numbers below 2^53 (mounts take
// them in ranges of 256) unless the inodes really go that high.
constexpr std::uint64_t k_next_inode_room = 1ull << 16;

// 'name' (cut); fsck_problem_line shows its bytes as printable text.
std::string _quote(std::string_view s) {
  return s.size() <= k_shown_max ? "'" + std::string(s) + "'" : "'" + std::string(s.substr(0, k_shown_max)) + "'...";
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

// An HSet or HDel of `field` of `key` that the check read as `seen`.
Action _field_action(Op op, int stage, std::string key, std::string field, std::string value, Seen seen_as,
                     std::string seen) {
  return Action{op, stage, std::move(key), std::move(field), std::move(value), 0, {}, seen_as, std::move(seen)};
}

// "parent is N", or "parent cannot be read" (Node::parent_bad).
std::string _parent_shown(const Node& n) {
  return n.parent_bad ? "parent cannot be read" : "parent is " + std::to_string(n.parent);
}

// (Repairer::still reads an absent field as "0")
std::string _seen_bytes(const Node& n) {
  return n.bytes_bad ? "?" : n.bytes_missing ? "0" : std::to_string(n.bytes_field);
}

// A field of the superblock as the check read it.
Action _sb_action(int stage, const std::string& sb, const SbFields& fields, std::string_view field, std::string value) {
  for (const auto& [k, v] : fields) {
    if (k == field) {
      return _field_action(Op::HSet, stage, sb, std::string(field), std::move(value), Seen::Value, v);
    }
  }
  return _field_action(Op::HSet, stage, sb, std::string(field), std::move(value), Seen::Absent, {});
}

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

}  // namespace

std::string cut(std::string_view s, std::size_t max) {
  return s.size() <= max ? std::string(s) : std::string(s.substr(0, max)) + "...";
}

Node* FsckAnalysis::find(Ino ino) {
  auto it = std::lower_bound(m_nodes.begin(), m_nodes.end(), ino, [](const Node& n, Ino i) { return n.ino < i; });
  return it != m_nodes.end() && it->ino == ino ? &*it : nullptr;
}

void FsckAnalysis::add(std::string_view kind, std::string key, std::string detail, Action action) {
  FsckProblem p;
  p.kind = std::string(kind);
  p.key = std::move(key);
  p.detail = std::move(detail);
  p.repairable = action.op != Op::None;
  p.deletes = p.repairable ? action.deletes : std::string();
  m_report.problems.push_back(std::move(p));
  m_actions.push_back(std::move(action));
}

std::string seen_number(std::uint64_t v) {
  return v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ? std::to_string(v) : "?";
}

std::string parent_seen(const Node& n) { return n.parent_bad ? "?" : seen_number(n.parent); }

std::string nlink_seen(const Node& n) { return n.nlink_bad ? "?" : std::to_string(n.nlink); }

std::string seen_number(const std::optional<std::string_view>& raw) {
  if (!raw) {
    return "0";
  }
  std::optional<std::int64_t> v = _i64(*raw);
  return v ? std::to_string(*v) : "?";
}

namespace {
// An Action as one string, each part with its length first.
std::string _repair_key(const Action& a) {
  std::string k;
  for (std::string_view part :
       {std::string_view(a.key), std::string_view(a.field), std::string_view(a.value), std::string_view(a.seen)}) {
    k += std::to_string(part.size()) + ":" + std::string(part);
  }
  return k + std::to_string(static_cast<int>(a.op)) + "," + std::to_string(static_cast<int>(a.seen_as)) + "," +
         std::to_string(a.ino);
}
}  // namespace

RepairSet FsckAnalysis::repairs(const FsckReport& report) const {
  RepairSet set;
  for (std::size_t i = 0; i < m_actions.size() && i < report.problems.size(); ++i) {
    if (report.problems[i].repairable) {
      set.insert(_repair_key(m_actions[i]));
    }
  }
  return set;
}

void FsckAnalysis::confirm(const RepairSet& first) {
  for (std::size_t i = 0; i < m_actions.size(); ++i) {
    FsckProblem& p = m_report.problems[i];
    if (p.repairable && !first.contains(_repair_key(m_actions[i]))) {
      p.repairable = false;
      p.again = true;
      p.deletes.clear();
      p.detail +=
          " (not repaired: one of two checks of the mounted filesystem saw it, so it may be a change in "
          "flight; run fsck again)";
    }
  }
}

// ---------------------------------------------------------------- pass 1

void FsckAnalysis::unknown_key(std::string_view key) {
  add(fsck_kind::k_unknown_key, std::string(key), "not a key of the redisfs schema (left alone)");
}

void FsckAnalysis::wrong_type(std::string_view key, std::string_view want, std::string_view got, bool deletable,
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

// Neither is deleted: an inode of the wrong type still owns its blocks,
// entries and attributes (a bad node keeps them).
void FsckAnalysis::superblock_wrong_type(std::string_view key, std::string_view got) {
  m_sb_wrong_type = true;
  wrong_type(key, "hash", got, false, true);
}

void FsckAnalysis::inode_wrong_type(Ino ino, std::string_view key, std::string_view got) {
  Node n;
  n.ino = ino;
  n.bad = true;
  m_nodes.push_back(n);
  wrong_type(key, "hash", got, false, true);
}

// A snapshot being taken (snapshot.hpp) whose record change scripts cannot
// use: they refuse to run while it names a staging prefix not of this
// filesystem.
void FsckAnalysis::bad_cow(std::string_view key) {
  Action a;
  a.op = Op::Del;
  a.key = std::string(key);
  add(fsck_kind::k_bad_cow, std::string(key),
      "a snapshot record that is not a hash or names a staging prefix not of this filesystem: every change "
      "fails while it lives",
      a);
}

void FsckAnalysis::bad_changed(std::string_view key, std::string why) {
  Action a;
  a.op = Op::Del;
  a.key = std::string(key);
  add(fsck_kind::k_bad_changed, std::string(key),
      "a change record that is " + why + ": incremental dumps compare every block instead (the repair deletes it)", a);
}

namespace {

// How long a lease no holder set would live: "never expires" or "expires
// in N s" (a holder sets at most a minute, snapshot.hpp).
std::string _lease_life(std::int64_t pttl_ms) {
  if (pttl_ms < 0) {
    return "never expires";
  }
  return "expires only in " + std::to_string(pttl_ms / 1000) + " s (a running tool's or mount's lapses within " +
         std::to_string(k_lease_max_ms / 1000) + " s)";
}

}  // namespace

namespace {
// The kind and detail of a lease no holder set (FsckAnalysis::lease_endless).
std::pair<std::string_view, std::string> _lease_problem(FsckAnalysis::Lease which, std::int64_t pttl_ms) {
  struct Said {
    std::string_view kind;
    std::string_view what;  // the record, before "that never expires"
    std::string_view cost;  // what it does meanwhile
  };
  static constexpr Said k_said[] = {
      {fsck_kind::k_freeze_endless, "a snapshot freeze",
       "is no running tool's (mounts and freezers take it for none, prelude.lua's freeze_alive)"},
      {fsck_kind::k_claim_endless, "a writeback mount's claim", "keeps every other mount out"},
      {fsck_kind::k_reservation_endless, "a reservation", "refuses every mount, restore, copy and delete of it"},
      {fsck_kind::k_mount_endless, "a mount's session key",
       "counts a mount that is gone as live: delete, rollback and restore refuse, and the files it had open or "
       "unlinked are never freed (fsck takes them for a dead mount's)"},
  };
  const Said& said = k_said[static_cast<int>(which)];
  return {said.kind, std::string(said.what) + " that " + _lease_life(pttl_ms) + " " + std::string(said.cost)};
}
}  // namespace

void FsckAnalysis::lease_endless(Lease which, std::string_view key, std::int64_t pttl_ms) {
  Action a;
  a.op = Op::DelLease;
  a.key = std::string(key);
  if (auto rel = m_keys.relative(key); which == Lease::Mount && rel && rel->starts_with("MOUNT:")) {
    // its registration goes with it (a mount would prune it, prune_mounts.lua)
    a.field = std::string(rel->substr(6));
  }
  auto [kind, detail] = _lease_problem(which, pttl_ms);
  add(kind, std::string(key), std::move(detail), a);
}

FsckProblem fsck_replaced_reservation(std::string_view key, std::string_view replaced) {
  FsckProblem p;
  p.key = std::string(key);
  std::int64_t pttl = -1;
  if (replaced.starts_with("type ")) {
    p.kind = std::string(fsck_kind::k_wrong_type);
    p.detail = "a " + std::string(replaced.substr(5)) + ", not a string";
  } else {
    if (auto v = _i64(replaced.substr(std::min<std::size_t>(replaced.size(), 5)))) {
      pttl = *v;
    }
    auto [kind, detail] = _lease_problem(FsckAnalysis::Lease::Reservation, pttl);
    p.kind = std::string(kind);
    p.detail = std::move(detail);
  }
  p.detail += " (replaced by this repair's own reservation, which it removes at its end)";
  p.repairable = true;
  p.repaired = true;
  return p;
}

bool FsckAnalysis::open_count_valid(std::string_view count) {
  std::uint64_t n = 0;
  return parse_canonical_u64(count, n) && n != 0 && n <= k_max_inode;
}

// Opens counted for a mount that is gone (it crashed): they keep nothing
// alive (purge ignores them), but they are garbage; so is a count that is
// not a positive number (open.lua and release.lua could not count it).
void FsckAnalysis::open_session(std::string_view key, std::string_view session, std::string_view count,
                                bool mount_alive) {
  Action a;
  a.op = Op::HDel;
  a.key = std::string(key);
  a.field = std::string(session);
  a.seen_as = Seen::Value;
  a.seen = std::string(count);
  if (!open_count_valid(count)) {
    add(fsck_kind::k_stale_open, std::string(key),
        "opens of mount " + _quote(session) + " counted as " + _quote(count) + ", not a positive number", a);
  } else if (!mount_alive) {
    add(fsck_kind::k_stale_open, std::string(key), "opens of mount " + _quote(session) + ", which is gone", a);
  }
}

void FsckAnalysis::superblock(SbFields fields) {
  m_have_sb = !fields.empty();
  for (const auto& [k, val] : fields) {
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
  m_sb_fields.insert(m_sb_fields.end(), std::make_move_iterator(fields.begin()), std::make_move_iterator(fields.end()));
}

// The fields every inode the scripts write has (create.lua); a missing one
// makes the inode bad rather than read as 0: a file whose size is missing
// must not lose its blocks as "past the end". (nlink and bytes are
// counters: a missing one is a wrong count, set right by repair; parent
// likewise, from the entry naming the directory.)
constexpr std::string_view k_required_fields[] = {"type", "mode", "uid", "gid", "size", "rdev", "atime", "mtime",
                                                  "ctime"};

namespace {

// Why inode `ino` (its `fields`, `attr` decoded from them) is bad, or "".
std::string _undecodable(Ino ino, NodeType type, const Result<Attr>& attr, const FieldList& fields) {
  if (!attr.ok()) {
    return attr.error().message;
  }
  if (type == NodeType::Unknown) {
    return "unknown type";
  }
  if (ino > k_max_inode) {
    return "inode number " + std::to_string(ino) + " is not below 2^53 (scripts could not name it exactly)";
  }
  for (std::string_view f : k_required_fields) {
    auto has = [&](const auto& kv) { return kv.first == f; };
    if (std::none_of(fields.begin(), fields.end(), has)) {
      return "inode " + std::to_string(ino) + ": no '" + std::string(f) + "' field";
    }
  }
  return {};
}

// Fields the repair sets when they cannot be parsed, or are missing, if
// the inode then decodes (it is judged as it will be). Those that say
// nothing of the file's data or of who may reach it: a time, to the latest
// of the inode's times that parse (0 when none does); the rdev of what is
// no device, to 0; the link count is counted again (a wrong count,
// check_counters). Those the other keys tell: a file's size, to where its
// blocks' data ends (as e2fsck does; a hole at the end is lost, no data),
// known once the blocks are read (Node::size_from_blocks); the size of
// what has no blocks as create.lua sets it (a symlink's target's length,
// else 0); a directory's parent, from the entry naming it (as a parent
// that is wrong, Node::parent_bad); another inode's parent is removed
// (only a directory has one); a change count (gen) starts again at 0. An
// owner or a mode is never guessed (a
// guess could give a setuid file to root, or open a private one): they
// are set so that only root may reach the inode, an owner to 0 and the
// mode to 0000 (also a mode that parses, when an owner is set: 4755 of an
// unknown owner must not become root's), until chown and chmod set them
// again. Another field that cannot be parsed leaves the inode bad, to fix
// or remove by hand: a type, a device's rdev.
struct FieldReset {
  std::string_view field;
  std::optional<std::string_view> seen;  // as read; none: missing
  std::string value;
  std::string why;  // what the repair sets, and why ("(the repair sets ...)")
  Op op = Op::HSet;  // HDel: the repair removes it
};
struct Resets {
  std::vector<FieldReset> fields;  // set by the repair, each its own problem
  bool nlink = false;              // malformed: a wrong count
  bool size_from_blocks = false;   // a file's size: set at the end of pass 2
  std::optional<std::string_view> size_seen;
  bool parent_bad = false;  // a directory's: set from its entry
  FieldList patched;        // the inode as the repair leaves it (nlink, size, parent: 0)
};
constexpr std::string_view k_time_fields[] = {"atime", "mtime", "ctime"};

// `v` in `field` as the daemon decodes it, if it does.
Result<Attr> _decoded(std::string_view field, std::string_view v) {
  FieldList probe{{"type", "file"}, {"mode", "644"}, {"uid", "0"}, {"gid", "0"}, {"size", "0"}};
  std::erase_if(probe, [&](const auto& kv) { return kv.first == field; });
  probe.emplace_back(field, v);
  return decode_attr(0, probe);
}
std::optional<std::int64_t> _decoded_time(std::string_view v) {
  auto a = _decoded("atime", v);
  return a.ok() ? std::optional<std::int64_t>(a->atime_ns) : std::nullopt;
}

// Why field `f`, as read (none: missing), cannot be used: "no 'f'
// field", "malformed field 'f'", or the rule its value breaks ("size ...
// is above the largest file size (2^50)").
std::string _unreadable(std::string_view f, const std::optional<std::string_view>& seen) {
  if (!seen) {
    return "no '" + std::string(f) + "' field";
  }
  auto d = _decoded(f, *seen);
  constexpr std::string_view k_lead = "inode 0: ";
  if (!d.ok() && d.error().message.starts_with(k_lead) && !d.error().message.starts_with("inode 0: malformed")) {
    return d.error().message.substr(k_lead.size());
  }
  return "malformed field '" + std::string(f) + "'";
}

std::optional<std::string_view> _field(const FieldList& fields, std::string_view f) {
  auto it = std::find_if(fields.begin(), fields.end(), [&](const auto& kv) { return kv.first == f; });
  return it == fields.end() ? std::nullopt : std::optional<std::string_view>(it->second);
}

// The size, change count and parent part of _resets: what the other keys
// tell.
void _shape_resets(const FieldList& fields, NodeType type, Resets& out) {
  if (type == NodeType::Unknown) {
    return;  // (the inode stays bad)
  }
  auto raw_size = _field(fields, "size");
  if (!raw_size || !_decoded("size", *raw_size).ok()) {
    if (type == NodeType::File) {
      out.size_from_blocks = true;
      out.size_seen = raw_size;
    } else {
      auto target = _field(fields, "target");
      std::string v = type == NodeType::Symlink && target ? std::to_string(target->size()) : "0";
      out.fields.push_back(
          {"size", raw_size, v,
           "(the repair sets " + v +
               (type == NodeType::Symlink ? ", its target's length)"
                                          : ", as for every " + std::string(_type_word(type).substr(2)) + ")")});
    }
  }
  auto raw_gen = _field(fields, "gen");
  if (raw_gen && !_decoded("gen", *raw_gen).ok()) {
    // (a count of changes, which mounts compare with their own: one that
    // cannot decode the inode holds none of it)
    out.fields.push_back({"gen", raw_gen, "0", "(the repair sets 0, a change count starting again)"});
  }
  auto raw_parent = _field(fields, "parent");
  if (raw_parent && !_decoded("parent", *raw_parent).ok()) {
    if (type == NodeType::Dir) {
      out.parent_bad = true;
    } else {
      out.fields.push_back({"parent", raw_parent, {}, "(the repair removes it: only a directory has one)", Op::HDel});
    }
  }
}

// The owner and mode part of _resets. The mode comes first: the repair
// goes through the problems in order, so it is 0000 before an owner is 0.
void _owner_resets(const FieldList& fields, Resets& out) {
  std::vector<FieldReset> owners;
  for (std::string_view f : {std::string_view("uid"), std::string_view("gid")}) {
    auto raw = _field(fields, f);
    if (!raw || !_decoded(f, *raw).ok()) {
      owners.push_back({f, raw, "0",
                        "(the repair sets 0, root, and the mode 0000: only root may reach it until chown and "
                        "chmod set them again)"});
    }
  }
  auto raw_mode = _field(fields, "mode");
  auto mode = raw_mode ? _decoded("mode", *raw_mode) : Result<Attr>(make_error(EIO, "no mode"));
  if (!mode.ok()) {
    out.fields.push_back(
        {"mode", raw_mode, "0000", "(the repair sets 0000: only root may reach it until chmod sets a mode)"});
  } else if (!owners.empty() && (mode->mode & 07777) != 0) {
    out.fields.push_back({"mode", raw_mode, "0000",
                          "(its owner cannot be read: the repair sets the mode 0000 with it, so that no setuid or "
                          "private file becomes root's)"});
  }
  out.fields.insert(out.fields.end(), owners.begin(), owners.end());
}

// What the repair would set in `fields` (of an inode of `type`), as above.
// (The values live in `out`, which `out.patched` points into.)
void _resets(const FieldList& fields, NodeType type, Resets& out) {
  std::optional<std::int64_t> latest;
  for (std::string_view f : k_time_fields) {
    auto raw = _field(fields, f);
    auto t = raw ? _decoded_time(*raw) : std::nullopt;
    if (!t) {
      out.fields.push_back({f, raw, {}, {}});
    } else if (!latest || *t > *latest) {
      latest = t;
    }
  }
  for (FieldReset& r : out.fields) {
    r.value = std::to_string(latest.value_or(0));
    r.why = "(the repair sets the latest of its other times, " + r.value + ")";
  }
  auto raw_rdev = _field(fields, "rdev");
  if (type != NodeType::Special && (!raw_rdev || !_decoded("rdev", *raw_rdev).ok())) {
    out.fields.push_back({"rdev", raw_rdev, "0", "(the repair sets 0: it is no device, fifo or socket)"});
  }
  _shape_resets(fields, type, out);
  _owner_resets(fields, out);
  auto raw_nlink = _field(fields, "nlink");
  out.nlink = raw_nlink && !_decoded("nlink", *raw_nlink).ok();
  for (const auto& kv : fields) {
    auto reset = std::find_if(out.fields.begin(), out.fields.end(), [&](const auto& r) { return r.field == kv.first; });
    if (reset != out.fields.end() && reset->op == Op::HDel) {
      continue;
    }
    const bool zero = (out.nlink && kv.first == "nlink") || (out.size_from_blocks && kv.first == "size") ||
                      (out.parent_bad && kv.first == "parent");
    out.patched.emplace_back(kv.first, reset != out.fields.end() ? std::string_view(reset->value)
                                       : zero                    ? std::string_view("0")
                                                                 : kv.second);
  }
  for (const FieldReset& r : out.fields) {
    if (!r.seen) {
      out.patched.emplace_back(r.field, r.value);
    }
  }
  if (out.size_from_blocks && !out.size_seen) {
    out.patched.emplace_back("size", "0");
  }
}

// What an inode's keys tell of its type when its type field cannot be
// read: only a symlink has a target, only a directory a parent field or
// entries (and the root is one), only a file data; a device number is a
// device's (a character or a block one: the keys do not tell). A size
// above 0 without a target is a file's (create.lua gives a directory, a
// fifo, a socket or a device 0). Nothing tells a file with no data from a
// fifo or a socket.
enum Told : std::uint8_t {
  k_told_target = 1,
  k_told_parent = 2,
  k_told_root = 4,
  k_told_entries = 8,
  k_told_size = 16,
  k_told_blocks = 32,
  k_told_device = 64,
};
struct TypeSign {
  Told bit;
  NodeType type;
  std::string_view what;
};
constexpr TypeSign k_type_signs[] = {
    {k_told_target, NodeType::Symlink, "a target field"},
    {k_told_parent, NodeType::Dir, "a parent field"},
    {k_told_root, NodeType::Dir, "being the root"},
    {k_told_entries, NodeType::Dir, "directory entries"},
    {k_told_size, NodeType::File, "a size"},
    {k_told_blocks, NodeType::File, "data blocks"},
    {k_told_device, NodeType::Special, "a device number"},
};

// The Told bits an inode's own fields give (pass 1).
std::uint8_t _told_by_fields(Ino ino, const FieldList& fields) {
  std::uint8_t told = ino == k_root_ino ? k_told_root : 0;
  const bool target = _field(fields, "target").has_value();
  told |= target ? k_told_target : 0;
  told |= _field(fields, "parent") ? k_told_parent : 0;
  if (auto rdev = _field(fields, "rdev")) {
    auto d = _decoded("rdev", *rdev);
    told |= !d.ok() || d->rdev != 0 ? k_told_device : 0;
  }
  if (auto size = _field(fields, "size"); size && !target) {
    auto d = _decoded("size", *size);
    told |= d.ok() && d->size > 0 ? k_told_size : 0;
  }
  return told;
}

// "a and b", "a, b and c"
std::string _listed(const std::vector<std::string_view>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == items.size() ? " and " : ", ") + std::string(items[i]);
  }
  return out;
}

// The type `told` (Told bits) gives, or none, and the words of the line
// ("(the repair sets ...)" or "(not repaired: ...)").
std::pair<std::optional<std::string_view>, std::string> _type_told(std::uint8_t told) {
  std::vector<std::string_view> signs;
  std::vector<NodeType> types;
  for (const TypeSign& s : k_type_signs) {
    if ((told & s.bit) != 0) {
      signs.push_back(s.what);
      if (std::find(types.begin(), types.end(), s.type) == types.end()) {
        types.push_back(s.type);
      }
    }
  }
  if (types.empty()) {
    return {std::nullopt,
            "(not repaired: none of its keys tells a file without data from a fifo or a socket: set its type by "
            "hand)"};
  }
  if (types.size() > 1) {
    std::vector<std::string> each;
    for (const TypeSign& s : k_type_signs) {
      if ((told & s.bit) != 0) {
        each.push_back(std::string(s.what) + " (" + std::string(_type_word(s.type)) + "'s)");
      }
    }
    return {std::nullopt, "(not repaired: its keys disagree: " +
                              _listed(std::vector<std::string_view>(each.begin(), each.end())) + ": fix it by hand)"};
  }
  if (types[0] == NodeType::Special) {
    return {std::nullopt,
            "(not repaired: a device number tells a device, but not a character from a block one: set its type "
            "by hand)"};
  }
  const std::string_view name = types[0] == NodeType::Dir ? "dir" : types[0] == NodeType::File ? "file" : "symlink";
  return {name, "(the repair sets type " + std::string(name) + ", which " + _listed(signs) + " tell" +
                    (signs.size() == 1 ? "s" : "") + ", and the inode is then checked again)"};
}

}  // namespace

bool number_still(std::string_view field, std::string_view raw, std::string_view seen) {
  if (seen_number(raw) == seen) {
    return true;
  }
  return seen == "?" && !_decoded(field, raw).ok();
}

void FsckAnalysis::inode(Ino ino, std::string_view key, const FieldList& fields) {
  if (fields.empty()) {
    return;  // gone since SCAN
  }
  Node n;
  n.ino = ino;
  std::optional<std::int64_t> nlink;
  std::optional<std::int64_t> bytes;
  for (const auto& [k, val] : fields) {
    if (k == "type") {
      n.type = _node_type(val);
    } else if (k == "nlink") {
      nlink = _i64(val);
    } else if (k == "bytes") {
      bytes = _i64(val);
    }
  }
  // Every value judged below comes from the decoder (the daemon's own): a
  // value it cannot parse is never read as 0 or as a default, but for the
  // fields the repair sets (_resets).
  auto attr = decode_attr(ino, fields);
  std::string why = _undecodable(ino, n.type, attr, fields);
  Resets resets;
  if (!why.empty()) {
    _resets(fields, n.type, resets);
    auto again = decode_attr(ino, resets.patched);
    if ((!resets.fields.empty() || resets.nlink || resets.size_from_blocks || resets.parent_bad) &&
        _undecodable(ino, n.type, again, resets.patched).empty()) {
      attr = std::move(again);
      why.clear();
    }
  }
  if (!why.empty()) {
    n.bad = true;
    if (n.type == NodeType::Unknown && ino <= k_max_inode) {
      // (its line waits for what its other keys tell: finish_types)
      auto seen = _field(fields, "type");
      m_type_unread.push_back(
          {ino, seen ? std::optional<std::string>(*seen) : std::nullopt, _told_by_fields(ino, fields)});
    } else {
      add(fsck_kind::k_bad_inode, std::string(key),
          cut(why, k_detail_max) + " (not repaired: fix or remove it by hand)");
    }
  } else {
    for (const FieldReset& r : resets.fields) {
      const bool parses = r.field == "mode" && r.seen && _decoded("mode", *r.seen).ok();
      add(fsck_kind::k_bad_inode, std::string(key),
          "inode " + std::to_string(ino) + ": " +
              (parses ? "mode " + std::string(*r.seen) : _unreadable(r.field, r.seen)) + " " + r.why,
          _field_action(r.op, k_stage_count, std::string(key), std::string(r.field), r.value,
                        r.seen ? Seen::Value : Seen::Absent, std::string(r.seen.value_or(""))));
    }
    n.size = attr->size;
    n.parent = attr->parent;
    n.size_from_blocks = resets.size_from_blocks;
    n.parent_bad = resets.parent_bad;
    if (resets.size_from_blocks) {
      m_size_seen.emplace_back(ino, resets.size_seen ? std::optional<std::string>(*resets.size_seen) : std::nullopt);
    }
    n.nlink = resets.nlink ? 0 : nlink.value_or(0);  // (else decoded, so parsed when present)
    n.nlink_bad = resets.nlink;
    // likewise, except bytes, accounting alone, which the decoder lets
    // through malformed (Node::bytes_bad), a wrong count to repair
    const bool has_bytes =
        std::any_of(fields.begin(), fields.end(), [](const auto& kv) { return kv.first == "bytes"; });
    n.bytes_field = bytes.value_or(0);
    n.bytes_bad = has_bytes && !bytes;
    n.bytes_missing = !has_bytes;
  }
  m_nodes.push_back(n);
}

void FsckAnalysis::expect_inodes(std::uint64_t n) { reserve_hint(m_nodes, n, k_inodes_hint_max); }

void FsckAnalysis::end_of_inodes() {
  std::sort(m_nodes.begin(), m_nodes.end(), [](const Node& a, const Node& b) { return a.ino < b.ino; });
  m_nodes.erase(std::unique(m_nodes.begin(), m_nodes.end(), [](const Node& a, const Node& b) { return a.ino == b.ino; }),
                m_nodes.end());
  check_superblock();
}

bool FsckAnalysis::is_snapshot() const {
  return std::any_of(m_sb_fields.begin(), m_sb_fields.end(), [](const auto& f) {
    return f.first == "snapshot_id" || (f.first == "read_only" && f.second == "1");
  });
}

void FsckAnalysis::check_superblock() {
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

Node* FsckAnalysis::sub_key(std::string_view key, const ParsedKey& pk) {
  auto stray = [&](std::string detail, std::string deletes, Op op = Op::Del) {
    Action a;
    a.op = op;
    a.key = std::string(key);
    a.ino = pk.ino;
    a.deletes = std::move(deletes);
    add(fsck_kind::k_stray_key, std::string(key), std::move(detail), a);
    return nullptr;
  };
  Node* n = find(pk.ino);
  if (n == nullptr) {
    // (a file a mount made after pass 1 read the inodes, under --force,
    // may own it: the repair removes it only if the inode still does not
    // exist, Op::DelStray)
    return stray("inode " + std::to_string(pk.ino) + " does not exist",
                 pk.kind == KeyKind::Block ? "a data block"
                 : pk.kind == KeyKind::Dir ? "the directory entries it holds"
                                           : "the extended attributes it holds",
                 Op::DelStray);
  }
  if (pk.kind == KeyKind::Dir) {
    if (!n->bad && n->type != NodeType::Dir) {
      return stray("directory entries of inode " + std::to_string(pk.ino) + ", which is " + std::string(_type_word(n->type)),
                   "the directory entries it holds");
    }
    if (n->walked) {
      return nullptr;  // SCAN returned it twice
    }
    n->walked = true;
  } else if (pk.kind == KeyKind::Block && !n->bad && n->type != NodeType::File) {
    return stray("a data block of inode " + std::to_string(pk.ino) + ", which is " + std::string(_type_word(n->type)),
                 "a data block");
  }
  return n;
}

// An attribute the kernel could not list or read (a mount leaves its name
// out of listxattr, or answers EIO for its value) is removed by repair:
// that deletes its value, and says so.
void FsckAnalysis::xattr(const Node& n, std::string_view key, std::string_view name, std::string_view value) {
  std::string why;
  if (Status ok = check_xattr_name(name); !ok.ok()) {
    why = _quote(name) + " is not a valid attribute name (" + ok.error().message + ")";
  } else if (value.size() > k_xattr_value_max) {
    why = _quote(name) + " holds " + std::to_string(value.size()) + " bytes, more than an attribute may (64 KiB)";
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
  a.seen_as = Seen::Value;
  a.seen = std::string(value);
  a.deletes = "the attribute " + _quote(name) + " and its " + std::to_string(value.size()) + "-byte value";
  add(fsck_kind::k_bad_xattr, std::string(key), why, a);
}

void FsckAnalysis::entry(Ino container, std::string_view name, std::string_view value) {
  std::string dkey = m_keys.dir(container);
  if (Status ok = check_file_name(name); !ok.ok()) {
    // The kernel cannot use the name: the entry goes, and what it named
    // counts as unnamed here, so repair reattaches it in /lost+found unless
    // another entry names it.
    Action a = _field_action(Op::HDel, k_stage_remove, dkey, std::string(name), {}, Seen::Value, std::string(value));
    add(fsck_kind::k_bad_entry, dkey,
        _quote(name) + " (naming " + _quote(value) + ") is not a usable file name (" + ok.error().message +
            "); repair removes the entry and keeps what it names",
        a);
    return;
  }
  Ino ino = 0;
  std::string held(value);  // the entry as the repairs before a later one leave it
  if (!parse_canonical_u64(value, ino) || ino == 0) {
    Action a = _field_action(Op::None, k_stage_remove, dkey, std::string(name), {}, Seen::Value, std::string(value));
    if (parse_u64(value, ino) && ino != 0) {
      // Scripts compare inode numbers as strings: "007" would never match.
      a.op = Op::HSet;
      a.value = std::to_string(ino);
      held = a.value;
      add(fsck_kind::k_bad_entry, dkey, _quote(name) + " holds " + _quote(value) + ", not a canonical inode number", a);
    } else {
      a.op = Op::HDel;
      add(fsck_kind::k_bad_entry, dkey, _quote(name) + " holds " + _quote(value) + ", not an inode number", a);
      return;
    }
  }
  Node* t = find(ino);
  if (t == nullptr) {
    Action a = _field_action(Op::HDel, k_stage_remove, dkey, std::string(name), {}, Seen::Value, held);
    add(fsck_kind::k_dangling_entry, dkey, _quote(name) + " names inode " + std::to_string(ino) + ", which does not exist", a);
    return;
  }
  if (container == k_root_ino && name == k_lost_found) {
    m_lf_entry = ino;
  }
  if (t->type != NodeType::Dir) {
    ++t->links;
    if (t->type == NodeType::Unknown) {
      if (Node* c = find(container)) {
        c->names_unknown = true;
      }
    }
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
  m_suspects.push_back({container, std::string(name), ino, std::move(held)});
}

void FsckAnalysis::block(Node& n, std::string_view key, std::uint64_t index, std::uint64_t len) {
  ++m_report.blocks;
  m_report.bytes += len;
  n.has_blocks = n.has_blocks || n.bad;
  if (n.bad || m_bs == 0) {
    n.stored += len;
    m_stored_total += len;
    return;
  }
  if (n.size_from_blocks) {
    size_block(n, key, index, len);
    return;
  }
  len = judge_block(n.ino, key, index, len, n.size, false);
  n.stored += len;
  m_stored_total += len;
}

// A block of inode `ino` judged against `end`, where its file ends (or,
// `at_max`, the largest file size): a block past it goes, bytes past it
// or past the block size are cut (fsck_trim.lua, if the file's size still
// leaves that room: Repairer::apply). Returns the bytes it holds once
// repaired. (The lines are made only for a problem: this runs per block.)
std::uint64_t FsckAnalysis::judge_block(Ino ino, std::string_view key, std::uint64_t index, std::uint64_t len,
                                        std::uint64_t end, bool at_max) {
  const std::uint64_t bs = m_bs;
  Action a;
  a.op = Op::Trim;
  a.key = std::string(key);
  a.ino = ino;
  a.field = std::to_string(index);
  if (index >= _div_ceil(end, bs)) {
    a.value = "0";
    a.deletes = "a block of " + std::to_string(len) + " bytes";
    add(fsck_kind::k_block_past_eof, std::string(key),
        "block " + std::to_string(index) +
            (at_max ? " lies past the largest file size (2^50)" : " of a file of " + std::to_string(end) + " bytes") +
            " (" + std::to_string(len) + " bytes stored)",
        a);
    return 0;
  }
  std::uint64_t room = std::min(bs, end - index * bs);
  if (len <= room) {
    return len;
  }
  a.value = std::to_string(room);
  a.deletes = "the last " + std::to_string(len - room) + " bytes of the block";
  if (room == bs) {
    add(fsck_kind::k_oversized_block, std::string(key),
        "holds " + std::to_string(len) + " bytes, more than the block size " + std::to_string(bs), a);
  } else {
    add(fsck_kind::k_bytes_past_eof, std::string(key),
        "holds " + std::to_string(len) + " bytes, but " +
            (at_max ? std::string("the largest file size (2^50)") : "the file (" + std::to_string(end) + " bytes)") +
            " ends " + std::to_string(room) + " bytes into this block",
        a);
  }
  return room;
}

// A block of a file whose size cannot be read (Node::size_from_blocks):
// the size the repair sets is where the data of its blocks ends, so no
// byte is past it but those past the block size or the largest file size
// (trimmed after the size is set, which leaves them that room: Stage). An
// empty block holds no data and may lie past that end: finish_sizes
// judges it.
void FsckAnalysis::size_block(Node& n, std::string_view key, std::uint64_t index, std::uint64_t len) {
  const std::uint64_t kept = judge_block(n.ino, key, index, len, k_max_file_size, true);
  if (kept > 0) {
    n.size = std::max(n.size, index * m_bs + kept);
  } else if (len == 0 && index < _div_ceil(k_max_file_size, m_bs)) {  // (past it: gone already)
    m_empty_blocks.emplace_back(n.ino, index, std::string(key));
  }
  n.stored += kept;
  m_stored_total += kept;
}

// The size the repair sets of each file whose size cannot be read: where
// its blocks' data ends (size_block), set first (Stage): the trims of its
// blocks and their counts follow it. An empty block past that end goes.
void FsckAnalysis::finish_sizes() {
  std::sort(m_size_seen.begin(), m_size_seen.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < m_size_seen.size(); ++i) {
    const auto& [ino, seen] = m_size_seen[i];
    Node* n = find(ino);
    if ((i > 0 && m_size_seen[i - 1].first == ino) || n == nullptr || !n->size_from_blocks) {
      continue;  // (SCAN returned it twice)
    }
    const std::string key = m_keys.inode(ino);
    const std::string end = std::to_string(n->size);
    add(fsck_kind::k_bad_inode, key,
        "inode " + std::to_string(ino) + ": " + _unreadable("size", seen) +
            (m_bs == 0 ? " (its blocks cannot be judged without a valid superblock)"
             : n->size == 0
                 ? " (the repair sets 0: its blocks hold no data)"
                 : " (the repair sets " + end +
                       ", where the data of its blocks ends: a hole at its end, if it had one, is not kept)"),
        _field_action(Op::HSet, k_stage_counter, key, "size", end, seen ? Seen::Value : Seen::Absent,
                      seen.value_or("")));
  }
  for (auto& [ino, index, key] : m_empty_blocks) {
    judge_block(ino, key, index, 0, find(ino)->size, false);  // (a problem only past the end)
  }
}

// The line of each inode whose type cannot be read, and its repair when
// its keys tell the type (_type_told). It was judged as bad in everything
// else (its blocks, entries and counts: nothing is deleted on the strength
// of a type guessed), so the repair that sets a type checks again (fsck_scan).
void FsckAnalysis::finish_types() {
  std::sort(m_type_unread.begin(), m_type_unread.end(), [](const auto& a, const auto& b) { return a.ino < b.ino; });
  for (std::size_t i = 0; i < m_type_unread.size(); ++i) {
    const TypeUnread& u = m_type_unread[i];
    const Node* n = find(u.ino);
    if ((i > 0 && m_type_unread[i - 1].ino == u.ino) || n == nullptr) {
      continue;  // (SCAN returned it twice)
    }
    std::uint8_t told = u.told | (n->walked ? k_told_entries : 0) | (n->has_blocks ? k_told_blocks : 0);
    auto [type, words] = _type_told(told);
    const std::string key = m_keys.inode(u.ino);
    const std::string why = "inode " + std::to_string(u.ino) + ": " +
                            (u.seen ? "unknown type " + _quote(*u.seen) : std::string("no 'type' field"));
    Action a;
    if (type) {
      a = _field_action(Op::HSet, k_stage_remove, key, "type", std::string(*type), u.seen ? Seen::Value : Seen::Absent,
                        u.seen.value_or(""));
    }
    add(fsck_kind::k_bad_inode, key, why + " " + words, std::move(a));
  }
}

std::size_t FsckAnalysis::types_set() const {
  std::size_t set = 0;
  for (std::size_t i = 0; i < m_actions.size() && i < m_report.problems.size(); ++i) {
    const Action& a = m_actions[i];
    set += a.op == Op::HSet && a.field == "type" && m_report.problems[i].repaired ? 1 : 0;
  }
  return set;
}

// Whose orphans are they? A mount that is gone (killed) never frees its
// own: the next read-write mount does (purge_dead_orphans).
void FsckAnalysis::orphan(std::string_view field, std::string_view session, bool mount_alive) {
  const std::string key = m_keys.orphans();
  Ino ino = 0;
  Action a = _field_action(Op::HDel, k_stage_remove, key, std::string(field), {}, Seen::Value, std::string(session));
  if (!parse_canonical_u64(field, ino) || ino == 0) {
    add(fsck_kind::k_stale_orphan, key, _quote(field) + " is not an inode number", a);
    return;
  }
  Node* n = find(ino);
  if (n == nullptr) {
    add(fsck_kind::k_stale_orphan, key, "inode " + std::to_string(ino) + " does not exist", a);
    return;
  }
  n->in_orphans = true;
  n->orphan_dead = !mount_alive;
  m_orphan_records.emplace_back(ino, std::string(session));
  // (whether the next mount frees it is judged by check_orphans, once the
  // entries naming it and the link count the repair leaves are known)
}

// ---------------------------------------------------------------- analysis

void FsckAnalysis::finish() {
  finish_types();
  finish_sizes();
  analyse();
  settle_repairability();
  for (const Node& n : m_nodes) {
    ++m_report.inodes;
    m_report.dirs += n.type == NodeType::Dir ? 1 : 0;
    m_report.files += n.type == NodeType::File ? 1 : 0;
  }
}

// The root exists, is a directory, and is its own parent.
void FsckAnalysis::check_root() {
  Node* root = find(k_root_ino);
  if (root == nullptr) {
    add(fsck_kind::k_missing_root, m_keys.inode(k_root_ino), "the root directory (inode 1) does not exist");
  } else if (!root->bad && root->type != NodeType::Dir) {
    add(fsck_kind::k_missing_root, m_keys.inode(k_root_ino),
        "the root (inode 1) is " + std::string(_type_word(root->type)) + ", not a directory");
  } else {
    m_root_ok = !root->bad;
    if (m_root_ok && root->parent != k_root_ino) {
      Action a = _field_action(Op::HSet, k_stage_remove, m_keys.inode(k_root_ino), "parent", "1", Seen::Number,
                               parent_seen(*root));
      add(fsck_kind::k_wrong_parent, m_keys.inode(k_root_ino), "the root's " + _parent_shown(*root) + ", not itself",
          a);
    }
  }
}

// The ORPHANS record of `ino` as read (m_orphan_records sorted by
// check_orphans).
std::string FsckAnalysis::orphan_record(Ino ino) const {
  auto it = std::lower_bound(m_orphan_records.begin(), m_orphan_records.end(), ino,
                             [](const auto& r, Ino i) { return r.first < i; });
  return it != m_orphan_records.end() && it->first == ino ? it->second : std::string();
}

// An ORPHANS record of an inode still named (or of a directory still
// holding entries) is stale.
void FsckAnalysis::check_orphans() {
  std::stable_sort(m_orphan_records.begin(), m_orphan_records.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (Node& n : m_nodes) {
    if (!n.in_orphans) {
      continue;
    }
    Action drop = _field_action(Op::HDel, k_stage_remove, m_keys.orphans(), std::to_string(n.ino), {}, Seen::Value,
                                orphan_record(n.ino));
    if (n.type == NodeType::Dir) {
      // A removed directory is an orphan until purged: named by no entry,
      // and empty (rmdir and rename delete its entries hash).
      if (n.home != 0) {
        add(fsck_kind::k_stale_orphan, m_keys.orphans(),
            "directory " + std::to_string(n.ino) + " is recorded as an orphan, but it is named in directory " +
                std::to_string(n.home),
            drop);
        n.in_orphans = false;
      } else if (n.has_entries) {
        add(fsck_kind::k_stale_orphan, m_keys.orphans(),
            "directory " + std::to_string(n.ino) + " is recorded as an orphan, but it still holds entries", drop);
        n.in_orphans = false;
      }
    } else if (n.links > 0) {
      add(fsck_kind::k_stale_orphan, m_keys.orphans(),
          "inode " + std::to_string(n.ino) + " is recorded as an orphan, but " + std::to_string(n.links) +
              " entries name it",
          drop);
      n.in_orphans = false;
    }
    // An orphan of a mount that is gone, as the repair leaves it: the next
    // read-write mount frees it when its link count is then 0 (the repair
    // sets an orphan's to 0 but a directory's of unknown subdirectories; a
    // mount frees only an inode it can decode, and reads a negative count
    // as 0). A stale record the repair drops is no orphan of anyone's.
    if (n.in_orphans && n.orphan_dead &&
        (n.bad || !(n.type == NodeType::Dir && n.names_unknown) || (!n.nlink_bad && n.nlink <= 0))) {
      add(fsck_kind::k_dead_orphan, m_keys.orphans(),
          "inode " + std::to_string(n.ino) + " was unlinked while open by mount " + _quote(orphan_record(n.ino)) +
              ", which is gone; " +
              (n.bad ? "a read-write mount frees it once the inode is fixed" : "the next read-write mount frees it") +
              " (not repaired by fsck)");
      m_report.problems.back().mount_frees = !n.bad;
    }
  }
}

void FsckAnalysis::analyse() {
  check_root();

  for (const Suspect& s : m_suspects) {
    Node* d = find(s.target);
    std::string dkey = m_keys.dir(s.container);
    Action remove = _field_action(Op::HDel, k_stage_remove, dkey, s.name, {}, Seen::Value, s.value);
    if (s.target == k_root_ino) {
      add(fsck_kind::k_extra_entry, dkey, _quote(s.name) + " names the root directory", remove);
    } else if (d->home == 0) {
      d->home = s.container;
      Action a = _field_action(Op::HSet, k_stage_remove, m_keys.inode(s.target), "parent", std::to_string(s.container),
                               Seen::Number, parent_seen(*d));
      add(fsck_kind::k_wrong_parent, m_keys.inode(s.target),
          _parent_shown(*d) + ", but the directory is named by " + _quote(s.name) + " in directory " +
              std::to_string(s.container),
          a);
      d->parent = s.container;  // (as the repair leaves it, which a reattachment then finds)
      d->parent_bad = false;
      continue;
    } else {
      add(fsck_kind::k_extra_entry, dkey,
          _quote(s.name) + " names directory " + std::to_string(s.target) + ", which is already named in directory " +
              std::to_string(d->home),
          remove);
    }
    if (s.container == k_root_ino && s.name == k_lost_found && m_lf_entry == s.target) {
      m_lf_entry = 0;  // the repair removes it
    }
  }

  check_orphans();

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
void FsckAnalysis::find_cycles() {
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

void FsckAnalysis::check_counters() {
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
      if ((n.nlink_bad || n.nlink != want) && !n.names_unknown) {
        std::string why = n.in_orphans ? "it is a removed directory (an orphan)"
                                       : "the directory has " + std::to_string(n.subdirs) + " subdirectories (nlink " +
                                             std::to_string(want) + ")";
        add(fsck_kind::k_wrong_nlink, key,
            (n.nlink_bad ? std::string("nlink is not a number") : "nlink is " + std::to_string(n.nlink)) + ", but " +
                why,
            _field_action(Op::HSet, k_stage_count, key, "nlink", std::to_string(want), Seen::Number, nlink_seen(n)));
      }
    } else if (!n.lost) {
      std::int64_t want = static_cast<std::int64_t>(n.links);
      if (n.nlink_bad || n.nlink != want) {
        std::string why = n.in_orphans ? "it is an orphan (no entry names it)"
                                       : std::to_string(n.links) + (n.links == 1 ? " entry names it" : " entries name it");
        add(fsck_kind::k_wrong_nlink, key,
            (n.nlink_bad ? std::string("nlink is not a number") : "nlink is " + std::to_string(n.nlink)) + ", but " +
                why,
            _field_action(Op::HSet, k_stage_count, key, "nlink", std::to_string(want), Seen::Number, nlink_seen(n)));
      }
    }
    if (n.bytes_bad || n.bytes_missing || n.bytes_field < 0 || static_cast<std::uint64_t>(n.bytes_field) != n.stored) {
      add(fsck_kind::k_wrong_bytes, key,
          (n.bytes_bad       ? std::string("bytes is not a number")
           : n.bytes_missing ? std::string("no bytes field")
                             : "bytes is " + std::to_string(n.bytes_field)) +
              ", but its blocks hold " + std::to_string(n.stored),
          _field_action(Op::HSet, k_stage_count, key, "bytes", std::to_string(n.stored), Seen::Number, _seen_bytes(n)));
    }
    if (n.lost) {
      add(fsck_kind::k_lost_inode, key,
          n.type == NodeType::Dir ? "no entry names this directory"
                                  : "no entry names it and it is not an orphan (" + std::string(_type_word(n.type)) +
                                        ", " + std::to_string(n.size) + " bytes)",
          Action{Op::Reattach, k_stage_attach, key, {}, {}, n.ino, {}, Seen::Absent, {}});
    } else if (n.detached) {
      add(fsck_kind::k_detached_dir, key,
          "on a cycle of directories that the root does not reach (named in directory " + std::to_string(n.home) + ")",
          Action{Op::Reattach, k_stage_attach, key, {}, {}, n.ino, {}, Seen::Absent, {}});
    }
  }

  check_superblock_counters(max_ino);
}

// The superblock's counters, against the values the facts give.
void FsckAnalysis::check_superblock_counters(Ino max_ino) {
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
    why = "next_inode is " + _quote(m_sb_next) + ", within " + std::to_string(k_next_inode_room) +
          " of 2^53: few files could be created";
  } else if (v < 2) {
    why = "next_inode is " + _quote(m_sb_next) + ", but inode 1 is the root";
  } else if (v <= max_ino) {
    why = "next_inode is " + _quote(m_sb_next) + ", but inode " + std::to_string(max_ino) + " exists";
  }
  if (!why.empty()) {
    std::string want = std::to_string(std::max<Ino>(max_ino + 1, 2));
    add(fsck_kind::k_wrong_counter, sb, why + " (repair sets it to " + want + ")",
        _sb_action(k_stage_counter, sb, m_sb_fields, "next_inode", want));
  }
  // Until the flag is set, the daemon answers ENODATA for every security.*
  // attribute without asking (store.cpp): one it stores could not be read.
  if (m_security_xattr) {
    bool flagged = std::any_of(m_sb_fields.begin(), m_sb_fields.end(),
                               [](const auto& kv) { return kv.first == "security_xattrs" && kv.second == "1"; });
    if (!flagged) {
      add(fsck_kind::k_wrong_counter, sb, "security_xattrs is not 1, but a file has a security.* attribute",
          _sb_action(k_stage_count, sb, m_sb_fields, "security_xattrs", "1"));
    }
  }
  auto counter = [&](std::string_view field, bool has, const std::string& value, std::uint64_t want) {
    std::uint64_t got = 0;
    if (has && parse_canonical_u64(value, got) && got == want) {
      return;
    }
    add(fsck_kind::k_wrong_counter, sb,
        std::string(field) + " is " + (has ? _quote(value) : std::string("missing")) + ", but the filesystem holds " +
            std::to_string(want),
        _sb_action(k_stage_count, sb, m_sb_fields, field, std::to_string(want)));
  };
  counter("inodes", m_sb_has_inodes, m_sb_inodes, m_nodes.size());
  counter("bytes", m_sb_has_bytes, m_sb_bytes, m_stored_total);
}

void FsckAnalysis::settle_repairability() {
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

// ---------------------------------------------------------------- output

namespace {

// Length of the valid UTF-8 sequence at s[i] (utf8.hpp) that is
// printable: not one of the C1 controls U+0080..U+009F (0xc2 0x80..0x9f),
// or 0.
std::size_t _utf8_len(std::string_view s, std::size_t i) {
  std::size_t n = utf8_sequence_length(s, i);
  if (n == 2 && static_cast<unsigned char>(s[i]) == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
    return 0;
  }
  return n;
}

}  // namespace

std::string printable(std::string_view s) {
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

}  // namespace redisfs::fsck_detail
