// list's table and du (fs_report.hpp).
#include "snap/fs_report.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "redis/scan.hpp"
#include "snap/snapshot.hpp"
#include "store/keys.hpp"
#include "util/fault.hpp"
#include "util/progress.hpp"
#include "util/text.hpp"
#include "util/u64_set.hpp"

namespace redisfs {

namespace {

constexpr std::size_t k_inode_batch = 1000;  // inodes asked for at once
constexpr std::string_view k_hscan_count = "1000";

// Columns line up by characters, not bytes (the tree's "└─ " is 7 bytes).
std::size_t _display_width(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char ch) {
    return (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  }));
}

std::string _table(const std::vector<std::vector<std::string>>& rows, std::size_t right_from,
                   std::size_t right_to) {
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], _display_width(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      bool right = i >= right_from && i < right_to;
      std::string pad(width[i] - _display_width(row[i]), ' ');
      line += right ? pad + row[i] : row[i] + (i + 1 < row.size() ? pad : "");
      if (i + 1 < row.size()) {
        line += "  ";
      }
    }
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string human_age(std::int64_t then_ns, std::int64_t now_ns) {
  if (then_ns == 0) {
    return "-";
  }
  std::int64_t s = (now_ns - then_ns) / 1000000000;
  char buf[48];
  if (s < 0) {
    return iso_time_ns(then_ns).substr(0, 10);  // a clock ahead of the server's
  }
  if (s < 10) {
    return "just now";
  }
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%lld s ago", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lld min ago", static_cast<long long>(s / 60));
  } else if (s < 48 * 3600) {
    std::snprintf(buf, sizeof buf, "%lld h ago", static_cast<long long>(s / 3600));
  } else if (s < 60LL * 86400) {
    std::snprintf(buf, sizeof buf, "%lld d ago", static_cast<long long>(s / 86400));
  } else {
    return iso_time_ns(then_ns).substr(0, 10);
  }
  return buf;
}

std::string list_as_table(const std::vector<FsInfo>& list) {
  // The snapshot tree: each entry under its origin when the origin is
  // listed (a cycle, which no tool makes, falls back to the top level).
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < list.size(); ++i) {
    index.emplace(list[i].prefix, i);
  }
  std::vector<std::vector<std::size_t>> children(list.size());
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto it = list[i].origin.empty() ? index.end() : index.find(list[i].origin);
    bool cycle = false;
    for (auto up = it; up != index.end() && !cycle;) {
      cycle = up->second == i;
      up = list[up->second].origin.empty() ? index.end() : index.find(list[up->second].origin);
      if (up != index.end() && up->second == it->second) {
        break;  // a loop not through i
      }
    }
    if (it == index.end() || it->second == i || cycle) {
      roots.push_back(i);
    } else {
      children[it->second].push_back(i);
    }
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "KIND", "SIZE", "INODES", "CREATED", "STATE", "NOTE"});
  std::vector<char> shown(list.size(), 0);
  auto add = [&](auto&& self, std::size_t i, const std::string& lead, const std::string& branch) -> void {
    if (shown[i]) {
      return;
    }
    shown[i] = 1;
    const FsInfo& fs = list[i];
    std::int64_t t = fs.snapshot_created_ns != 0 ? fs.snapshot_created_ns : fs.created_ns;
    std::string state = fs.mounts == 0   ? "-"
                        : fs.mounts == 1 ? "mounted"
                                         : "mounted (" + std::to_string(fs.mounts) + ")";
    std::string note = !fs.problem.empty()         ? fs.problem
                       : !fs.restored_from.empty() ? "from a dump of " + fs.restored_from
                       : !fs.origin.empty() && index.find(fs.origin) == index.end() ? "copy of " + fs.origin
                                                                                    : "";
    // A copy being taken: how far its walk is.
    std::string kind = fs.progress >= 0 ? fs.kind + " " + std::to_string(fs.progress) + "%" : fs.kind;
    rows.push_back({lead + branch + fs.prefix, kind, human_bytes(fs.bytes), std::to_string(fs.inodes),
                    human_age(t, fs.listed_ns), state, note});
    const auto& kids = children[i];
    for (std::size_t k = 0; k < kids.size(); ++k) {
      bool last = k + 1 == kids.size();
      std::string next_lead = lead + (branch.empty() ? "" : branch == "└─ " ? "   " : "│  ");
      self(self, kids[k], next_lead, last ? "└─ " : "├─ ");
    }
  };
  for (std::size_t r : roots) {
    add(add, r, "", "");
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    add(add, i, "", "");  // anything a broken origin chain left out
  }
  return _table(rows, 2, 4);
}

namespace {

// The walk of disk_usage: a batch of directories' pages of entries, then
// the entries' inodes, pipelined, until no page is left.
class DuWalk {
 public:
  // `server`: the run_id of the server that named the root (empty: not
  // known, not watched).
  DuWalk(Connection& c, const Keys& keys, std::uint64_t root, std::string server, Progress* progress)
      : m_c(c), m_keys(keys), m_progress(progress), m_server(std::move(server)) {
    m_dirs.push_back(Dir{0, 0, root, "", {}});
    m_seen.insert(root);
    m_report.inodes = 1;
    if (m_progress != nullptr) {
      m_progress->add(1);
    }
  }

  Status run() {
    while (!m_pending.empty()) {
      TRY(check_cancel());
      std::size_t take = std::min(m_pending.size(), k_hscans_at_once);
      std::vector<Page> batch(m_pending.end() - static_cast<std::ptrdiff_t>(take), m_pending.end());
      m_pending.resize(m_pending.size() - take);
      TRY_ASSIGN(std::vector<Entry> entries, list(batch));
      for (std::size_t at = 0; at < entries.size(); at += k_inode_batch) {
        TRY(stat(entries, at, std::min(entries.size(), at + k_inode_batch)));
      }
    }
    return {};
  }

  // Every directory's total; the `limit` largest at most `depth` levels
  // down (0: any), most first.
  DuReport report(std::size_t limit, unsigned depth) {
    auto& dirs = m_dirs;
    // Children come after their parent: one pass backwards sums every tree.
    for (std::size_t i = dirs.size(); i-- > 1;) {
      DirUsage& up = dirs[dirs[i].parent].use;
      up.bytes += dirs[i].use.bytes;
      up.files += dirs[i].use.files;
      up.dirs += dirs[i].use.dirs;
    }
    m_report.bytes = dirs[0].use.bytes;
    std::vector<std::uint32_t> order;
    for (std::uint32_t i = 0; i < dirs.size(); ++i) {
      if (depth == 0 || dirs[i].depth <= depth) {
        order.push_back(i);
      }
    }
    std::size_t keep = std::min(limit, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      [&](std::uint32_t a, std::uint32_t b) {
                        return dirs[a].use.bytes != dirs[b].use.bytes ? dirs[a].use.bytes > dirs[b].use.bytes : a < b;
                      });
    for (std::size_t k = 0; k < keep; ++k) {
      std::uint32_t i = order[k];
      std::string path;
      for (std::uint32_t at = i; at != 0; at = dirs[at].parent) {
        path = "/" + dirs[at].name + path;
      }
      DirUsage use = dirs[i].use;
      use.path = path.empty() ? "/" : path;
      m_report.top.push_back(std::move(use));
    }
    return std::move(m_report);
  }

 private:
  struct Dir {
    std::uint32_t parent;
    unsigned depth;
    std::uint64_t ino;
    std::string name;
    DirUsage use;
  };
  struct Page {
    std::uint32_t dir;
    std::string cursor;
  };
  struct Entry {
    std::uint32_t dir;
    std::string name;
    std::uint64_t ino;
  };

  // One page of entries of each directory of `batch`; the next pages go
  // back to m_pending. EAGAIN when a page after a directory's first came
  // from another server than the walk's (a restart or a failover: its
  // cursor meant nothing there, and entries may be missed).
  Result<std::vector<Entry>> list(const std::vector<Page>& batch) {
    if (batch.back().cursor != "0" && fault_injected("scan-slow")) {  // tests: a walk to restart the server under
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    for (const Page& p : batch) {
      m_c.append({"HSCAN", m_keys.dir(m_dirs[p.dir].ino), p.cursor, "COUNT", k_hscan_count});
    }
    std::vector<Entry> entries;
    bool changed = false;
    for (const Page& p : batch) {
      TRY_ASSIGN(Reply r, m_c.read_reply());
      changed = changed ||
                (p.cursor != "0" && !m_server.empty() && !m_c.answered_by().empty() && m_c.answered_by() != m_server);
      ReplyView v = r.view();
      if (!v.is_array() || v.size() != 2) {
        return make_error(EIO, "redis: bad HSCAN reply for " + m_keys.dir(m_dirs[p.dir].ino));
      }
      std::string next(v[0].str());
      ReplyView kv = v[1];
      for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
        std::uint64_t ino = 0;
        if (parse_u64(kv[i + 1].str(), ino)) {
          entries.push_back(Entry{p.dir, std::string(kv[i].str()), ino});
        }
      }
      if (next != "0") {
        m_pending.push_back(Page{p.dir, std::move(next)});
      }
    }
    if (changed) {
      return make_error(EAGAIN, "the Redis server changed (a restart or a failover) during the walk");
    }
    return entries;
  }

  // The inodes of entries [at, end): a file's bytes to its directory, a
  // directory to the walk.
  Status stat(const std::vector<Entry>& entries, std::size_t at, std::size_t end) {
    for (std::size_t i = at; i < end; ++i) {
      m_c.append({"HMGET", m_keys.inode(entries[i].ino), "type", "bytes", "nlink"});
    }
    std::uint64_t walked = 0;
    for (std::size_t i = at; i < end; ++i) {
      TRY_ASSIGN(Reply r, m_c.read_reply());
      ReplyView v = r.view();
      const Entry& e = entries[i];
      if (!v.is_array() || v.size() != 3 || v[0].is_nil()) {
        continue;  // an entry naming nothing (fsck's)
      }
      // Only what another entry may name again is remembered: directories
      // (a damaged tree may name one twice: the walk must not loop) and
      // files with several links (or a link count that does not read as
      // 1), so memory holds a record per directory, not per file.
      std::uint64_t nlink = 0;
      const bool once = v[0].str() != "dir" && !v[2].is_nil() && parse_u64(v[2].str(), nlink) && nlink == 1;
      if (!once && !m_seen.insert(e.ino)) {
        continue;  // a hard link seen before
      }
      ++walked;
      if (v[0].str() == "dir") {
        ++m_dirs[e.dir].use.dirs;
        m_dirs.push_back(Dir{e.dir, m_dirs[e.dir].depth + 1, e.ino, e.name, {}});
        m_pending.push_back(Page{static_cast<std::uint32_t>(m_dirs.size() - 1), "0"});
        continue;
      }
      std::uint64_t bytes = 0;
      if (!v[1].is_nil()) {
        (void)parse_u64(v[1].str(), bytes);
      }
      ++m_dirs[e.dir].use.files;
      m_dirs[e.dir].use.bytes += bytes;
    }
    m_report.inodes += walked;
    if (m_progress != nullptr) {
      m_progress->add(walked);
    }
    return {};
  }

  Connection& m_c;
  const Keys& m_keys;
  Progress* m_progress;
  std::vector<Dir> m_dirs;
  U64Set m_seen;
  std::vector<Page> m_pending{{0, "0"}};
  DuReport m_report;
  std::string m_server;
};

}  // namespace

static Result<DuReport> _disk_usage(Pool& pool, const std::string& prefix, std::size_t limit, unsigned depth,
                                    Progress* progress);

Result<DuReport> disk_usage(Pool& pool, const std::string& prefix, std::size_t limit, unsigned depth,
                            Progress* progress) {
  auto report = _disk_usage(pool, prefix, limit, depth, progress);
  if (!report.ok() && is_wrong_type(report.error())) {
    Error e = std::move(report).error();
    return with_damage_hint(make_error(e.code, "du " + prefix + ": " + e.message), {prefix});
  }
  return report;
}

static Result<DuReport> _disk_usage(Pool& pool, const std::string& prefix, std::size_t limit, unsigned depth,
                                    Progress* progress) {
  TRY(validate_prefix(prefix));
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY(check_toolkit_prefix(c, prefix));
  Keys keys(prefix);
  auto root_reply = c.command({"HMGET", keys.sb(), "root", "inodes"});
  if (!root_reply.ok()) {
    return superblock_read_error(c, keys, std::move(root_reply).error());
  }
  ReplyView rv = root_reply->view();
  std::uint64_t inodes = 0;
  if (!rv.is_array() || rv.size() != 2 || (rv[0].is_nil() && rv[1].is_nil())) {
    TRY_ASSIGN(Reply exists, c.command({"EXISTS", keys.sb()}));
    if (exists.view().integer() != 1) {
      return make_error(ENOENT, "no filesystem at prefix '" + prefix + "'");
    }
  }
  // The root is inode 1 (superblock.hpp): a superblock without the field
  // is whole, one that names another is damaged.
  if (rv.is_array() && rv.size() == 2 && !rv[0].is_nil() && rv[0].str() != "1") {
    return make_error(EINVAL, "the superblock of '" + prefix + "' names root " + quoted(rv[0].str(), 40) +
                                  ", not 1: run redisfs-snap fsck " + prefix);
  }
  const std::uint64_t root = k_root_ino;
  if (progress != nullptr && !rv[1].is_nil() && parse_u64(rv[1].str(), inodes)) {
    progress->set_total(inodes);
  }
  // A walk that a server change cut short begins again (ScanWalk's rule,
  // for the many walks of one pipeline).
  for (int restarts = 0;; ++restarts) {
    if (restarts > 0 && progress != nullptr) {
      progress->restart();  // (counted again: never more than the whole)
    }
    DuWalk walk(c, keys, root, c.answered_by(), progress);
    Status run = walk.run();
    if (!run && run.error().code == EAGAIN && restarts < ScanWalk::k_max_restarts) {
      continue;
    }
    TRY(run);
    return walk.report(limit, depth);
  }
}

std::string du_as_table(const DuReport& report) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"SIZE", "FILES", "DIRS", "DIRECTORY"});
  for (const DirUsage& d : report.top) {
    rows.push_back({human_bytes(d.bytes), std::to_string(d.files), std::to_string(d.dirs), shown(d.path, 4096, 0)});
  }
  return _table(rows, 0, 3);
}

std::string du_as_json(const std::string& prefix, const DuReport& report) {
  using Json = nlohmann::ordered_json;
  Json j;
  j["prefix"] = prefix;
  j["inodes"] = report.inodes;
  j["bytes"] = report.bytes;
  Json top = Json::array();
  for (const DirUsage& d : report.top) {
    top.push_back(Json{{"path", d.path}, {"bytes", d.bytes}, {"files", d.files}, {"dirs", d.dirs}});
  }
  j["top"] = std::move(top);
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace redisfs
