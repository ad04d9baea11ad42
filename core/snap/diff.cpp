// redisfs-snap diff: see diff.hpp for the method and its cost.
#include "snap/diff.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "redis/scan.hpp"
#include "snap/dump_format.hpp"
#include "snap/install.hpp"
#include "snap/room.hpp"
#include "snap/snapshot.hpp"
#include "store/superblock.hpp"
#include "util/progress.hpp"
#include "util/reserve_hint.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"
#include "util/u64_set.hpp"

namespace redisfs {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t k_batch = 256;          // inodes read per round trip
constexpr std::string_view k_hscan_count = "1000";

// What the walk keeps of one inode.
struct Record {
  Ino ino = 0;
  Ino parent = 0;              // the directory it was first found in (the root: 0)
  std::uint64_t meta = 0;      // INODE (but atime, ctime, parent) and XATTR
  std::uint64_t ctime = 0;     // digest of the ctime field
  std::uint64_t entries = 0;   // directories: their entries
  char type = '?';
};

bool _by_ino(const Record& a, const Record& b) { return a.ino < b.ino; }

std::uint64_t _first64(const Sha256& h) {
  auto d = h.digest();
  std::uint64_t v = 0;
  std::memcpy(&v, d.data(), sizeof v);
  return v;
}

void _put(Sha256& h, std::string_view s) {
  std::uint64_t n = s.size();
  h.update(&n, sizeof n);
  h.update(s);
}

std::uint64_t _digest(std::string_view s) {
  Sha256 h;
  _put(h, s);
  return _first64(h);
}

std::uint64_t _entry_digest(std::string_view name, std::string_view ino) {
  Sha256 h;
  _put(h, name);
  _put(h, ino);
  return _first64(h);
}

char _type_letter(std::string_view t) {
  static constexpr std::pair<std::string_view, char> k_types[] = {
      {"file", 'f'}, {"dir", 'd'}, {"symlink", 'l'}, {"fifo", 'p'}, {"chr", 'c'}, {"blk", 'b'}, {"sock", 's'}};
  for (const auto& [name, letter] : k_types) {
    if (t == name) {
      return letter;
    }
  }
  return '?';
}

Status _bad(std::string_view key, std::string_view what) {
  return make_error(EIO, "redis: bad " + std::string(what) + " reply for " + std::string(key));
}

// The pairs of an HGETALL or HSCAN page (reply_pairs).
using Pairs = std::vector<std::pair<std::string_view, std::string_view>>;

// One state of the filesystem, as it was at one instant.
class Side {
 public:
  Side(Connection& c, std::string prefix) : m_c(c), m_source(prefix), m_read(std::move(prefix)) {}
  Side(const Side&) = delete;
  Side& operator=(const Side&) = delete;
  ~Side() { (void)finish(); }

  const Keys& source() const { return m_source; }

  // A state that may change: read it through a copy-on-write snapshot.
  Status begin_instant() {
    Keys staging(make_temp_prefix(m_source.prefix(), TempKind::Dump));
    TRY_ASSIGN(CowSnapshot cow, CowSnapshot::begin(m_c, m_source, staging, ""));
    if (!cow.dead_staging().empty()) {
      (void)remove_staging(m_c, Keys(cow.dead_staging()));
    }
    m_cow.emplace(std::move(cow));
    m_staging.emplace(staging);
    m_room.stages_at(m_staging->sb());
    m_read = staging;
    return {};
  }

  // The walk is done: the writers stop copying for us (what is staged stays
  // until finish()).
  Status end_instant() {
    if (m_cow && m_cow->alive()) {
      return m_cow->end(m_c);
    }
    return {};
  }

  // Ends the snapshot and removes its staging prefix (idempotent).
  Status finish() {
    if (!m_staging) {
      return {};
    }
    m_c.drain();
    Status ended = end_instant();
    Status removed = remove_staging(m_c, *m_staging);
    m_staging.reset();
    m_cow.reset();
    return removed.ok() ? ended : removed;
  }

  std::uint64_t staged() const { return m_staged; }
  const std::vector<Record>& nodes() const { return m_nodes; }

  // An error of the walk, naming a key of the snapshot read ('A~dump~..:DIR:4',
  // Connection names it): the user's key at that instant ('A:DIR:4') instead.
  Error source_named(Error e) const {
    const std::string read = "'" + m_read.prefix() + ":";
    if (std::size_t at = e.message.find(read); at != std::string::npos && m_read.prefix() != m_source.prefix()) {
      e.message.replace(at, read.size(), "'" + m_source.prefix() + ":");
    }
    return e;
  }

  const Record* find(Ino ino) const {
    auto it = std::lower_bound(m_nodes.begin(), m_nodes.end(), Record{ino}, _by_ino);
    return it != m_nodes.end() && it->ino == ino ? &*it : nullptr;
  }

  // The directories holding `ino` (one per link but those in the same
  // directory).
  std::vector<Ino> dirs_of(const Record& n) const {
    std::vector<Ino> out;
    if (n.parent != 0) {
      out.push_back(n.parent);
    }
    auto it = std::lower_bound(m_more.begin(), m_more.end(), std::make_pair(n.ino, Ino{0}));
    for (; it != m_more.end() && it->first == n.ino; ++it) {
      if (std::find(out.begin(), out.end(), it->second) == out.end()) {
        out.push_back(it->second);
      }
    }
    return out;
  }

  // Every entry of directory `dir`, page by page. A walk that would start
  // over (the server restarted under it) fails: what `each` was given of
  // it may not be taken back.
  Status entries(Ino dir, const std::function<void(std::string_view name, Ino ino)>& each) {
    std::string key = m_read.dir(dir);
    ScanWalk walk(m_c, {"HSCAN", key}, {"COUNT", std::string(k_hscan_count)});
    for (;;) {
      TRY_ASSIGN(auto page, walk.next());
      if (!page) {
        return {};
      }
      if (walk.started_over()) {
        return make_error(
            EAGAIN, "the Redis server changed (a restart or a failover) while diff read " + key + ": run it again");
      }
      for (const auto& [name, value] : reply_pairs(*page)) {
        std::uint64_t ino = 0;
        if (parse_u64(value, ino)) {
          each(name, ino);
        }
      }
    }
  }

  // Step 1 (diff.hpp): every inode the root reaches, breadth first.
  Status walk(Progress& progress) {
    // The superblock's inode count sizes the table (a hint, as fsck's: a
    // damaged or missing one only costs address space).
    if (auto counted = m_c.command({"HGET", m_source.sb(), "inodes"}); counted.ok()) {
      if (auto n = counted->view().as_int(); n && *n > 0) {
        reserve_hint(m_nodes, static_cast<std::uint64_t>(*n), k_inodes_hint_max);
      }
    }
    U64Set seen;
    seen.insert(k_root_ino);
    std::vector<std::pair<Ino, Ino>> level{{k_root_ino, 0}};  // (inode, the directory it was found in)
    while (!level.empty()) {
      std::vector<std::pair<Ino, Ino>> next;
      for (std::size_t at = 0; at < level.size(); at += k_batch) {
        std::size_t n = std::min(k_batch, level.size() - at);
        TRY(read_batch(std::span(level).subspan(at, n), seen, next));
        progress.add(n);
      }
      level = std::move(next);
    }
    std::sort(m_nodes.begin(), m_nodes.end(), _by_ino);
    std::sort(m_more.begin(), m_more.end());
    return {};
  }

 private:
  Status read_batch(std::span<const std::pair<Ino, Ino>> batch, U64Set& seen, std::vector<std::pair<Ino, Ino>>& next) {
    TRY(check_cancel());
    if (m_cow) {
      std::vector<std::string> rels;
      for (const auto& [ino, parent] : batch) {
        std::string n = std::to_string(ino);
        rels.push_back("INODE:" + n);
        rels.push_back("XATTR:" + n);
        rels.push_back("DIR:" + n);
      }
      std::vector<long long> found;
      TRY(cow_copy_keys(m_c, m_source, m_read, *m_cow, rels, found, &m_room));
      m_staged += static_cast<std::uint64_t>(std::count_if(found.begin(), found.end(), [](long long f) {
        return f >= 0;
      }));
      TRY(m_cow->keep_alive(m_c, m_nodes.size(), 0));
    }
    for (const auto& [ino, parent] : batch) {
      m_c.append({"HGETALL", m_read.inode(ino)});
      m_c.append({"HGETALL", m_read.xattr(ino)});
    }
    TRY_ASSIGN(std::vector<Reply> replies, m_c.read_all());
    std::vector<std::size_t> dirs;  // positions in m_nodes
    for (std::size_t i = 0; i < batch.size(); ++i) {
      ReplyView inode = replies[2 * i].view();
      ReplyView xattr = replies[2 * i + 1].view();
      if (!inode.is_array() || !xattr.is_array()) {
        return _bad(m_read.inode(batch[i].first), "HGETALL");
      }
      if (inode.size() == 0) {
        continue;  // an entry naming no inode (a damaged tree: fsck's to report)
      }
      Record node;
      node.ino = batch[i].first;
      node.parent = batch[i].second;
      Pairs fields = reply_pairs(inode);
      std::sort(fields.begin(), fields.end());
      Sha256 h;
      for (const auto& [k, v] : fields) {
        if (k == "ctime") {
          node.ctime = _digest(v);
        } else if (k == "type") {
          node.type = _type_letter(v);
        }
        if (k != "atime" && k != "ctime" && k != "parent") {
          _put(h, k);
          _put(h, v);
        }
      }
      Pairs xattrs = reply_pairs(xattr);
      std::sort(xattrs.begin(), xattrs.end());
      h.update(std::string_view("\0" "xattr", 6));
      for (const auto& [k, v] : xattrs) {
        _put(h, k);
        _put(h, v);
      }
      node.meta = _first64(h);
      if (node.type == 'd') {
        dirs.push_back(m_nodes.size());
      }
      m_nodes.push_back(node);
    }
    for (std::size_t at : dirs) {
      Record& dir = m_nodes[at];
      std::uint64_t sum = 0;
      TRY(entries(dir.ino, [&](std::string_view name, Ino child) {
        sum += _entry_digest(name, std::to_string(child));
        if (seen.insert(child)) {
          next.emplace_back(child, dir.ino);
        } else {
          m_more.emplace_back(child, dir.ino);  // a hard link (or a damaged tree's loop)
        }
      }));
      dir.entries = sum;
    }
    return {};
  }

  Connection& m_c;
  Keys m_source;
  Keys m_read;  // where the keys are read: the source, or the snapshot's staging prefix
  std::optional<CowSnapshot> m_cow;
  std::optional<Keys> m_staging;
  std::uint64_t m_staged = 0;
  RoomGuard m_room{"diff's snapshot"};        // (of the metadata it reads, room.hpp)
  std::vector<Record> m_nodes;                // sorted by inode after walk()
  std::vector<std::pair<Ino, Ino>> m_more;  // (inode, directory): links after the first, sorted
};

// A link: `name` in directory `dir`.
struct Link {
  Ino dir = 0;
  std::string name;
  bool operator<(const Link& o) const { return std::tie(name, dir) < std::tie(o.name, o.dir); }
  bool operator==(const Link& o) const { return dir == o.dir && name == o.name; }
};

// The names (and so the paths) a side gives its inodes, found only for
// what the diff reports: each directory asked about is read once.
class Names {
 public:
  explicit Names(Side& side) : m_side(side) {}

  // Asks for the names of `ino` in `dir` (and so, later, the path of `dir`).
  void want(Ino dir, Ino ino) { m_want[dir].insert(ino); }
  void want_dir(Ino dir) { m_want.try_emplace(dir); }

  // Reads what was asked for, and the names of every directory on the way
  // to the root.
  Status resolve() {
    // The ancestors, from the walk's records.
    std::vector<Ino> todo;
    for (const auto& [dir, inos] : m_want) {
      todo.push_back(dir);
    }
    while (!todo.empty()) {
      Ino d = todo.back();
      todo.pop_back();
      const Record* n = m_side.find(d);
      if (n == nullptr || n->parent == 0 || m_paths_wanted.count(d) != 0) {
        continue;
      }
      m_paths_wanted.insert(d);
      bool first = m_want.count(n->parent) == 0;
      m_want[n->parent].insert(d);
      if (first) {
        todo.push_back(n->parent);
      }
    }
    for (auto& [dir, inos] : m_want) {
      if (inos.empty()) {
        continue;
      }
      auto& got = m_names[dir];
      TRY(m_side.entries(dir, [&](std::string_view name, Ino ino) {
        if (inos.count(ino) != 0) {
          got.emplace(ino, std::string(name));
        }
      }));
    }
    return {};
  }

  // The names of `ino` in `dir` (after resolve()).
  std::vector<std::string> names(Ino dir, Ino ino) const {
    std::vector<std::string> out;
    auto d = m_names.find(dir);
    if (d != m_names.end()) {
      auto [from, to] = d->second.equal_range(ino);
      for (auto it = from; it != to; ++it) {
        out.push_back(it->second);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // "." for the root, "a/b" below it.
  std::string dir_path(Ino dir) {
    if (dir == k_root_ino) {
      return ".";
    }
    if (auto it = m_paths.find(dir); it != m_paths.end()) {
      return it->second;
    }
    const Record* n = m_side.find(dir);
    std::string path;
    if (n == nullptr || n->parent == 0) {
      path = "?" + std::to_string(dir);
    } else {
      auto own = names(n->parent, dir);
      path = join(n->parent, own.empty() ? "?" + std::to_string(dir) : own.front());
    }
    m_paths.emplace(dir, path);
    return path;
  }

  std::string join(Ino dir, std::string_view name) {
    std::string parent = dir_path(dir);
    return parent == "." ? std::string(name) : parent + "/" + std::string(name);
  }

  // Every link of `ino` on this side (after resolve(), having asked with
  // want_all()).
  std::vector<Link> links(const Record& n) const {
    std::vector<Link> out;
    for (Ino dir : m_side.dirs_of(n)) {
      for (std::string& name : names(dir, n.ino)) {
        out.push_back(Link{dir, std::move(name)});
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  void want_all(const Record& n) {
    for (Ino dir : m_side.dirs_of(n)) {
      want(dir, n.ino);
    }
  }

 private:
  Side& m_side;
  std::map<Ino, std::unordered_set<Ino>> m_want;
  std::unordered_set<Ino> m_paths_wanted;
  std::unordered_map<Ino, std::unordered_multimap<Ino, std::string>> m_names;
  std::unordered_map<Ino, std::string> m_paths;
};

// The links one changed directory gained and lost (step 2).
struct LinkChange {
  Ino ino = 0;
  Link link;
};

// What step 3 decided for one inode, before its paths are known.
struct Verdict {
  Ino ino = 0;
  char type_a = 0;   // non-zero: deleted (every A link is '-')
  char type_b = 0;   // non-zero: created (every B link is '+')
  bool modified = false;
  std::vector<Link> removed;  // same type on both sides: links only A has
  std::vector<Link> added;    // ...and only B has
};

// Whether A and B are two states of one filesystem (diff.hpp); how, in words.
Result<std::string> _relation(const std::string& a, const Superblock& sa, const std::string& b,
                              const Superblock& sb, bool force) {
  if (descends_from(sb, sa)) {
    return "'" + b + "' descends from snapshot '" + a + "'";
  }
  if (descends_from(sa, sb)) {
    return "'" + a + "' descends from snapshot '" + b + "'";
  }
  if ((sa.lineage.empty() || sb.lineage.empty()) && sa.created_ns == sb.created_ns) {
    return "both made by the same mkfs (created " + iso_time_ns(sa.created_ns) + ")";
  }
  if (force) {
    return std::string("unrelated (--force)");
  }
  return make_error(EINVAL, "'" + a + "' and '" + b +
                                "' are not two states of one filesystem (neither descends from the other); "
                                "use --force to compare them anyway");
}

// Step 2: the links each changed directory lost and gained.
Status _compare_dirs(Side& sa, Side& sb, std::vector<LinkChange>& removed, std::vector<LinkChange>& added,
                     std::uint64_t& compared) {
  const auto& na = sa.nodes();
  const auto& nb = sb.nodes();
  std::size_t i = 0;
  std::size_t j = 0;
  auto all = [&](Side& side, Ino dir, std::vector<LinkChange>& out) {
    return side.entries(dir, [&](std::string_view name, Ino ino) {
      out.push_back(LinkChange{ino, Link{dir, std::string(name)}});
    });
  };
  while (i < na.size() || j < nb.size()) {
    TRY(check_cancel());
    const Record* a = i < na.size() ? &na[i] : nullptr;
    const Record* b = j < nb.size() ? &nb[j] : nullptr;
    if (b == nullptr || (a != nullptr && a->ino < b->ino)) {
      if (a->type == 'd') {
        TRY(all(sa, a->ino, removed));
      }
      ++i;
      continue;
    }
    if (a == nullptr || b->ino < a->ino) {
      if (b->type == 'd') {
        TRY(all(sb, b->ino, added));
      }
      ++j;
      continue;
    }
    ++i;
    ++j;
    if (a->type != b->type) {
      if (a->type == 'd') {
        TRY(all(sa, a->ino, removed));
      }
      if (b->type == 'd') {
        TRY(all(sb, b->ino, added));
      }
      continue;
    }
    if (a->type != 'd' || a->entries == b->entries) {
      continue;
    }
    ++compared;
    std::unordered_map<std::string, Ino> before;  // one directory's entries
    TRY(sa.entries(a->ino, [&](std::string_view name, Ino ino) { before.emplace(std::string(name), ino); }));
    TRY(sb.entries(b->ino, [&](std::string_view name, Ino ino) {
      auto it = before.find(std::string(name));
      if (it != before.end() && it->second == ino) {
        before.erase(it);
      } else {
        added.push_back(LinkChange{ino, Link{b->ino, std::string(name)}});
      }
    }));
    for (auto& [name, ino] : before) {
      removed.push_back(LinkChange{ino, Link{a->ino, name}});
    }
  }
  auto by_ino = [](const LinkChange& x, const LinkChange& y) {
    return std::tie(x.ino, x.link) < std::tie(y.ino, y.link);
  };
  std::sort(removed.begin(), removed.end(), by_ino);
  std::sort(added.begin(), added.end(), by_ino);
  return {};
}

// Step 3: the verdict on every inode that changed.
std::vector<Verdict> _judge(const Side& sa, const Side& sb, const std::vector<LinkChange>& removed,
                            const std::vector<LinkChange>& added) {
  std::vector<Verdict> out;
  const auto& na = sa.nodes();
  const auto& nb = sb.nodes();
  std::size_t i = 0;
  std::size_t j = 0;
  std::size_t r = 0;
  std::size_t d = 0;
  auto take = [](const std::vector<LinkChange>& from, std::size_t& at, Ino ino, std::vector<Link>& to) {
    while (at < from.size() && from[at].ino < ino) {
      ++at;  // a link to an inode the walk did not keep (a damaged tree)
    }
    for (; at < from.size() && from[at].ino == ino; ++at) {
      to.push_back(from[at].link);
    }
  };
  while (i < na.size() || j < nb.size()) {
    const Record* a = i < na.size() ? &na[i] : nullptr;
    const Record* b = j < nb.size() ? &nb[j] : nullptr;
    Verdict v;
    if (b == nullptr || (a != nullptr && a->ino < b->ino)) {
      v.ino = a->ino;
      v.type_a = a->type;
      ++i;
    } else if (a == nullptr || b->ino < a->ino) {
      v.ino = b->ino;
      v.type_b = b->type;
      ++j;
    } else {
      v.ino = a->ino;
      ++i;
      ++j;
      if (a->type != b->type) {
        v.type_a = a->type;
        v.type_b = b->type;
      } else {
        take(removed, r, v.ino, v.removed);
        take(added, d, v.ino, v.added);
        bool relinked = !v.removed.empty() || !v.added.empty();
        v.modified = a->meta != b->meta || (a->ctime != b->ctime && !relinked);
        if (!v.modified && !relinked) {
          continue;
        }
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

// Step 1, each state as it was at one instant: a read-only snapshot does
// not change; anything else is read through a copy-on-write snapshot.
Status _walk_both(Side& sa, const Superblock& super_a, Side& sb, const Superblock& super_b, Progress& progress) {
  auto walk = [&](Side& side, const Superblock& super) -> Status {
    if (!super.read_only) {
      TRY(side.begin_instant());
    }
    TRY(side.walk(progress));
    return side.end_instant();
  };
  auto walked = walk(sa, super_a);
  if (walked.ok()) {
    walked = walk(sb, super_b);
  }
  progress.finish();
  return walked;
}

// The names each verdict's lines need: every link of what was deleted or
// created, the directories of links removed and added, every link of what
// was modified.
void _want_names(const std::vector<Verdict>& verdicts, const Side& sa, const Side& sb, Names& names_a, Names& names_b) {
  for (const Verdict& v : verdicts) {
    const Record* na = sa.find(v.ino);
    const Record* nb = sb.find(v.ino);
    if (v.type_a != 0 || v.type_b != 0) {
      if (v.type_a != 0) {
        names_a.want_all(*na);
      }
      if (v.type_b != 0) {
        names_b.want_all(*nb);
      }
      continue;
    }
    for (const Link& l : v.removed) {
      names_a.want_dir(l.dir);
    }
    for (const Link& l : v.added) {
      names_b.want_dir(l.dir);
    }
    if (v.modified) {
      names_b.want_all(*nb);
    }
  }
}

// The lines of one inode deleted (type_a) or created (type_b).
void _replaced_changes(const Verdict& v, const Record* na, const Record* nb, Names& names_a, Names& names_b,
                       std::vector<DiffChange>& changes) {
  if (v.type_a != 0) {
    for (const Link& l : names_a.links(*na)) {
      changes.push_back(DiffChange{'-', names_a.join(l.dir, l.name), "", v.type_a});
    }
    if (na->ino == k_root_ino) {
      changes.push_back(DiffChange{'-', ".", "", v.type_a});
    }
  }
  if (v.type_b != 0) {
    for (const Link& l : names_b.links(*nb)) {
      changes.push_back(DiffChange{'+', names_b.join(l.dir, l.name), "", v.type_b});
    }
    if (nb->ino == k_root_ino) {
      changes.push_back(DiffChange{'+', ".", "", v.type_b});
    }
  }
}

// The lines of every verdict (which it consumes), in the order diff prints them.
std::vector<DiffChange> _changes(std::vector<Verdict> verdicts, const Side& sa, const Side& sb, Names& names_a,
                                 Names& names_b) {
  std::vector<DiffChange> changes;
  for (const Verdict& v : verdicts) {
    const Record* na = sa.find(v.ino);
    const Record* nb = sb.find(v.ino);
    if (v.type_a != 0 || v.type_b != 0) {
      _replaced_changes(v, na, nb, names_a, names_b, changes);
      continue;
    }
    // Same inode, same type: removed and added links paired in name order
    // are renames; the rest are - and +.
    std::size_t pairs = std::min(v.removed.size(), v.added.size());
    std::vector<Link> plus(v.added.begin() + static_cast<std::ptrdiff_t>(pairs), v.added.end());
    for (std::size_t k = 0; k < pairs; ++k) {
      changes.push_back(DiffChange{'R', names_b.join(v.added[k].dir, v.added[k].name),
                                   names_a.join(v.removed[k].dir, v.removed[k].name), nb->type});
    }
    for (std::size_t k = pairs; k < v.removed.size(); ++k) {
      changes.push_back(DiffChange{'-', names_a.join(v.removed[k].dir, v.removed[k].name), "", na->type});
    }
    for (const Link& l : plus) {
      changes.push_back(DiffChange{'+', names_b.join(l.dir, l.name), "", nb->type});
    }
    if (v.modified) {
      if (nb->ino == k_root_ino) {
        changes.push_back(DiffChange{'M', ".", "", nb->type});
      }
      for (const Link& l : names_b.links(*nb)) {
        if (std::find(plus.begin(), plus.end(), l) == plus.end()) {
          changes.push_back(DiffChange{'M', names_b.join(l.dir, l.name), "", nb->type});
        }
      }
    }
  }
  verdicts.clear();
  std::sort(changes.begin(), changes.end(), [](const DiffChange& x, const DiffChange& y) {
    auto rank = [](char k) { return k == '-' ? 0 : k == 'R' ? 1 : k == '+' ? 2 : 3; };
    return std::make_tuple(std::string_view(x.path), rank(x.kind), std::string_view(x.from)) <
           std::make_tuple(std::string_view(y.path), rank(y.kind), std::string_view(y.from));
  });
  return changes;
}

}  // namespace

Result<DiffStats> diff_filesystems(Pool& pool, const std::string& a, const std::string& b, const DiffOptions& opts,
                                   const std::function<Status(const DiffChange&)>& emit) {
  TRY(validate_prefix(a));
  TRY(validate_prefix(b));
  if (a == b) {
    return make_error(EINVAL, "A and B are the same prefix '" + a + "'");
  }
  auto start = Clock::now();
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY(check_toolkit_prefix(c, a));
  TRY(check_toolkit_prefix(c, b));
  DiffStats stats;
  // (an interrupted move into either is no state to compare: finished
  // first; a live one is read through a snapshot, which waits for a running
  // mover, a snapshot as it is, which must have none)
  TRY(finish_install_before_read(pool, Keys(a), true, stats.warning));
  TRY(finish_install_before_read(pool, Keys(b), true, stats.warning));
  Side sa(c, a);
  Side sb(c, b);
  TRY_ASSIGN(Superblock super_a, read_superblock(c, sa.source()));
  TRY_ASSIGN(Superblock super_b, read_superblock(c, sb.source()));
  for (const auto& [side, super] : {std::pair{&sa, &super_a}, std::pair{&sb, &super_b}}) {
    if (super->read_only) {
      TRY(refuse_unfinished_install(c, side->source()));
    }
  }
  TRY_ASSIGN(stats.relation, _relation(a, super_a, b, super_b, opts.force));

  // Step 1. A live state held by a writeback mount is asked for what that
  // mount holds first (snapshot.hpp, sync_writeback_mount).
  for (const auto* side : {&sa, &sb}) {
    const Superblock& super = side == &sa ? super_a : super_b;
    if (!super.read_only) {
      TRY(sync_writeback_mount(c, side->source(), k_writeback_sync_wait, stats.warning));
    }
  }
  Progress progress("diff " + a + " " + b, super_a.inodes + super_b.inodes, "inodes", opts.quiet);
  if (Status walked = _walk_both(sa, super_a, sb, super_b, progress); !walked.ok()) {
    Error e = sb.source_named(sa.source_named(std::move(walked).error()));
    return with_damage_hint(make_error(e.code, "diff " + a + " " + b + ": " + e.message), {a, b});
  }
  stats.inodes_a = sa.nodes().size();
  stats.inodes_b = sb.nodes().size();
  stats.keys_staged = sa.staged() + sb.staged();

  // Steps 2 and 3.
  std::vector<LinkChange> removed;
  std::vector<LinkChange> added;
  TRY(_compare_dirs(sa, sb, removed, added, stats.dirs_compared));
  std::vector<Verdict> verdicts = _judge(sa, sb, removed, added);
  removed.clear();
  removed.shrink_to_fit();
  added.clear();
  added.shrink_to_fit();

  // The paths of what changed.
  Names names_a(sa);
  Names names_b(sb);
  _want_names(verdicts, sa, sb, names_a, names_b);
  TRY(names_a.resolve());
  TRY(names_b.resolve());
  // Nothing more is read: the staging prefixes go now.
  TRY(sa.finish());
  TRY(sb.finish());

  std::vector<DiffChange> changes = _changes(std::move(verdicts), sa, sb, names_a, names_b);
  for (const DiffChange& change : changes) {
    TRY(emit(change));
  }
  stats.changes = changes.size();
  stats.seconds = seconds_since(start);
  return stats;
}

namespace {

void _escaped(std::string& out, std::string_view path) {
  for (unsigned char ch : path) {
    if (ch > ' ' && ch < 0x7f && ch != '\\') {
      out.push_back(static_cast<char>(ch));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%04o", ch);
      out += buf;
    }
  }
}

}  // namespace

std::string diff_line(const DiffChange& change) {
  std::string out(1, change.kind);
  out.push_back('\t');
  if (change.kind == 'R') {
    _escaped(out, change.from);
    out += " -> ";
  }
  _escaped(out, change.path);
  return out;
}

std::string diff_json(const DiffChange& change) {
  std::string out = "{\"change\":\"";
  out.push_back(change.kind);
  out += "\",\"type\":\"";
  out.push_back(change.type);
  out += "\",\"path\":";
  dump::append_json_bytes(out, change.path);
  if (change.kind == 'R') {
    out += ",\"from\":";
    dump::append_json_bytes(out, change.from);
  }
  out += "}";
  return out;
}

}  // namespace redisfs
