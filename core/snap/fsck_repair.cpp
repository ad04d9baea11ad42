// fsck's repair: runs the Action of every repairable problem the analysis
// found (fsck_analysis.hpp), each as its own atomic step (one command, a
// MULTI/EXEC, or a script: fsck_field.lua, fsck_trim.lua, fsck_del.lua,
// and fsck_apply.lua for a step of many commands that must not stop
// half-way), with the change record marked in that step (keys.hpp,
// CHANGED: "written" on a snapshot, "untracked" on a live filesystem, so
// an incremental dump across it compares every block), in four stages so
// that each step sees the state the previous stages left: 0 the inode
// counter (so new inodes get fresh numbers) and the sizes set from a
// file's blocks (so its trims find the room they were judged by), 1
// removals and parent fields, 2 counters (exact values from the scan), 3
// reattaching lost inodes into /lost+found (relative changes, made as
// link and mkdir make them).
#include <charconv>

#include "redis/redis.hpp"
#include "redis/scan.hpp"
#include "snap/fsck_analysis.hpp"
#include "snap/snapshot.hpp"

namespace redisfs::fsck_detail {

namespace {

constexpr std::string_view k_scan_count = "1000";

Status _exec(Connection& c, const std::vector<Args>& cmds) {
  TRY_ASSIGN(Reply replies, c.transaction(cmds));
  ReplyView v = replies.view();
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

// A repair whose field a mount changed since the check (under --force).
Error _changed() { return make_error(EAGAIN, "changed since the check: left as it is (run fsck again)"); }

// `cmds` (HSET, HDEL, HINCRBY, each naming its key first) as one step
// that writes all of them or nothing (fsck_apply.lua).
Status _apply(Connection& c, const std::vector<Args>& cmds) {
  std::vector<std::string> keys;
  std::vector<std::string> args;
  for (const Args& cmd : cmds) {
    keys.emplace_back(cmd.at(1));
    args.emplace_back(cmd.at(0));
    args.push_back(std::to_string(cmd.size() - 2));
    args.insert(args.end(), cmd.begin() + 2, cmd.end());
  }
  Result<Reply> r = c.eval(lua::fsck_apply, keys, args);
  if (!r.ok() && r.code() == EAGAIN && r.error().fault == Fault::None) {
    return _changed();  // (the script's answer: a condition, HEQUAL or HABSENT, no longer holds)
  }
  TRY(r);
  return {};
}

// Times a repair stamps (lost+found's), by the clock of the filesystem's
// server: its master's, on a cluster.
Result<std::string> _server_now(Connection& c, const Keys& keys) {
  TRY_ASSIGN(std::int64_t ns, server_time_ns(c, keys.sb()));
  return std::to_string(ns);
}

class Repairer {
 public:
  Repairer(Connection& c, FsckAnalysis& a, const std::function<Status()>& keep) : m_c(c), m_a(a), m_keep(keep) {}
  void run();

 private:
  Status apply(const Action& a);
  Status marked(Args change);
  std::string mark();
  Status field(const Action& a);
  Status del(const Action& a);
  Status reattach(Ino ino);
  Result<Args> still(const std::string& key, const std::string& field, const std::string& want);
  Result<Ino> lost_found();

  Connection& m_c;
  FsckAnalysis& m_a;
  const std::function<Status()>& m_keep;  // before each step (fsck_repair)
  Ino m_lf = 0;  // the /lost+found used by repair
  bool m_marked = false;  // the change record was marked
};

// ---------------------------------------------------------------- repair

void Repairer::run() {
  std::optional<Error> stopped;  // what `m_keep` said when it failed
  for (int stage = k_stage_counter; stage <= k_stage_attach; ++stage) {
    for (std::size_t i = 0; i < m_a.actions().size(); ++i) {
      FsckProblem& p = m_a.report().problems[i];
      if (!p.repairable || m_a.actions()[i].stage != stage) {
        continue;
      }
      if (Status kept = stopped || !m_keep ? Status{} : m_keep(); !kept.ok()) {
        stopped = std::move(kept).error();
      }
      if (stopped) {
        p.again = true;
        p.detail += " (not repaired: " + cut(stopped->message, k_detail_max) + ")";
        continue;
      }
      Status s = apply(m_a.actions()[i]);
      if (s.ok()) {
        p.repaired = true;
      } else {
        p.again = s.code() == EAGAIN;
        p.detail += " (repair failed: " + cut(s.error().message, k_detail_max) + ")";
      }
    }
  }
  if (m_marked) {
    (void)marked({});  // again, had a bad record of its own been deleted since
  }
}

// `change` (none: only the mark) in one MULTI with the change record's
// mark (the top of this file). A change of the record itself goes alone.
Status Repairer::marked(Args change) {
  const std::string record = m_a.keys().changed();
  if (!change.empty() && change[1] == record) {
    TRY(m_c.command(change));
    return {};
  }
  Args set{"SET", record, mark()};
  if (change.empty()) {
    TRY(m_c.command(set));
    return {};
  }
  return _exec(m_c, {set, change});
}

// The change record's mark (the top of this file), for a step about to
// write it.
std::string Repairer::mark() {
  m_marked = true;
  return std::string(m_a.is_snapshot() ? k_changed_written : k_changed_untracked);
}

// An HSET or HDEL, with the change record's mark and, when the hash is a
// directory's entries, the change counted in the directory's 'gen', as the
// scripts do (prelude.lua: dir_changed), in one step (fsck_field.lua): a
// mount trusts its list of a directory's names only while the count
// follows its own changes. The field changes only if it still holds what
// the check read: a number is read here first, as the check read it
// (seen_number), and the script compares its bytes.
Status Repairer::field(const Action& a) {
  std::vector<std::string> keys{a.key, m_a.keys().changed()};
  auto rel = m_a.keys().relative(a.key);
  if (ParsedKey parsed = rel ? parse_relative_key(*rel) : ParsedKey{}; parsed.kind == KeyKind::Dir) {
    keys.push_back(m_a.keys().inode(parsed.ino));
  }
  bool absent = a.seen_as == Seen::Absent;
  std::string seen = absent ? std::string() : a.seen;
  if (a.seen_as == Seen::Number) {
    TRY_ASSIGN(Args now, still(a.key, a.field, a.seen));
    absent = now[0] == "HABSENT";
    seen = absent ? std::string() : now[3];
  }
  std::vector<std::string> args{mark(), a.op == Op::HSet ? "HSET" : "HDEL", a.field, absent ? "absent" : "value", seen};
  if (a.op == Op::HSet) {
    args.push_back(a.value);
  }
  TRY_ASSIGN(Reply r, m_c.eval(lua::fsck_field, keys, args));
  if (r.view().type() == ReplyView::Type::Integer && r.view().integer() == 0) {
    return _changed();
  }
  return {};
}

// A removal made only if what the check found still holds (fsck_del.lua):
// the inode of a stray key still does not exist; a lease no holder set
// still is one (and a mount's session key's registration goes with it).
Status Repairer::del(const Action& a) {
  std::vector<std::string> keys{a.key, m_a.keys().changed()};
  std::vector<std::string> args{mark()};
  if (a.op == Op::DelStray) {
    keys.push_back(m_a.keys().inode(a.ino));
    args.emplace_back("stray");
  } else {
    args.emplace_back("lease");
    args.push_back(std::to_string(k_lease_max_ms));
    if (!a.field.empty()) {
      keys.push_back(m_a.keys().mounts());
      args.push_back(a.field);
    }
  }
  TRY_ASSIGN(Reply r, m_c.eval(lua::fsck_del, keys, args));
  if (r.view().type() == ReplyView::Type::Integer && r.view().integer() == 0) {
    return _changed();
  }
  return {};
}

Status Repairer::apply(const Action& a) {
  switch (a.op) {
    case Op::HDel:
    case Op::HSet:
      return field(a);
    case Op::Del:
      return marked({"DEL", a.key});
    case Op::DelStray:
    case Op::DelLease:
      return del(a);
    case Op::Trim: {
      TRY_ASSIGN(Reply r, m_c.eval(lua::fsck_trim, {a.key, m_a.keys().changed(), m_a.keys().inode(a.ino)},
                                   {mark(), a.value, a.field, std::to_string(m_a.block_size())}));
      if (r.view().type() == ReplyView::Type::Integer && r.view().integer() == 0) {
        return make_error(EAGAIN, "the file changed since the check: left as it is (run fsck again)");
      }
      return {};
    }
    case Op::Reattach:
      TRY(marked({}));
      return reattach(a.ino);
    case Op::None:
      break;
  }
  return make_error(EINVAL, "nothing to do");
}

Result<Ino> Repairer::lost_found() {
  if (m_lf != 0) {
    return m_lf;
  }
  if (m_a.lost_found_entry() != 0) {
    m_lf = m_a.lost_found_entry();
    return m_lf;
  }
  const std::string root = m_a.keys().inode(k_root_ino);
  const std::string root_dir = m_a.keys().dir(k_root_ino);
  TRY_ASSIGN(Reply taken, m_c.command({"HEXISTS", root_dir, k_lost_found}));
  if (taken.view().integer() != 0) {
    return make_error(EEXIST, "/lost+found appeared during the repair");
  }
  TRY_ASSIGN(Reply owner, m_c.command({"HMGET", root, "mode", "gid"}));
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
    TRY_ASSIGN(Reply r, m_c.command({"HINCRBY", m_a.keys().sb(), "next_inode", "1"}));
    Ino candidate = static_cast<Ino>(r.view().integer() - 1);
    TRY_ASSIGN(Reply e, m_c.command({"EXISTS", m_a.keys().inode(candidate)}));
    if (e.view().integer() == 0 && candidate > k_root_ino) {
      lf = candidate;
    }
  }
  if (lf == 0) {
    return make_error(EIO, "no free inode number for /lost+found");
  }
  TRY_ASSIGN(std::string now, _server_now(m_c, m_a.keys()));
  TRY(_apply(m_c, {
                      {"HABSENT", root_dir, std::string(k_lost_found)},  // (a mount's mkdir since)
                      {"HSET",   m_a.keys().inode(lf),
                       "type",   "dir",
                       "mode",   format_mode(mode),
                       "uid",    "0",
                       "gid",    gid,
                       "size",   "0",
                       "nlink",  "2",
                       "rdev",   "0",
                       "bytes",  "0",
                       "parent", "1",
                       "atime",  now,
                       "mtime",  now,
                       "ctime",  now},
                      {"HSET", root_dir, std::string(k_lost_found), std::to_string(lf)},
                      {"HINCRBY", root, "nlink", "1"},
                      {"HSET", root, "mtime", now, "ctime", now},
                      {"HINCRBY", root, "gen", "1"},
                      {"HINCRBY", m_a.keys().sb(), "inodes", "1"},
                  }));
  m_lf = lf;
  return m_lf;
}

// The condition, for fsck_apply.lua, that `field` of `key` still reads
// as the check read it, `want` (seen_number: absent reads as 0): HEQUAL with the bytes
// it holds now, or HABSENT; EAGAIN when it reads otherwise.
Result<Args> Repairer::still(const std::string& key, const std::string& field, const std::string& want) {
  Result<Reply> got = m_c.command({"HGET", key, field});
  if (!got.ok() && got.error().fault == Fault::None) {
    return _changed();  // (the server's refusal: no hash now)
  }
  TRY_ASSIGN(Reply r, std::move(got));
  if (r.view().is_nil()) {
    if (want != "0") {
      return _changed();
    }
    return Args{"HABSENT", key, field};
  }
  std::string raw(r.view().str());
  if (!number_still(field, raw, want)) {
    return _changed();
  }
  return Args{"HEQUAL", key, field, raw};
}

Status Repairer::reattach(Ino ino) {
  Node* n = m_a.find(ino);
  // What the check found still holds (asked again in the step, with the
  // name, which must be free: a mount's create since): the link count of
  // a file, the parent of a directory (a mount's link, unlink or rename
  // since changes them). Asked first: /lost+found is not made for nothing.
  const std::string inode = m_a.keys().inode(ino);
  TRY_ASSIGN(Args found, n->type == NodeType::Dir ? still(inode, "parent", parent_seen(*n))
                                                  : still(inode, "nlink", nlink_seen(*n)));
  TRY_ASSIGN(Ino lf, lost_found());
  const std::string lf_dir = m_a.keys().dir(lf);
  const std::string lf_inode = m_a.keys().inode(lf);
  std::string name = "#" + std::to_string(ino);
  for (int i = 1;; ++i) {
    TRY_ASSIGN(Reply r, m_c.command({"HEXISTS", lf_dir, name}));
    if (r.view().integer() == 0) {
      break;
    }
    name = "#" + std::to_string(ino) + "." + std::to_string(i);
  }
  TRY_ASSIGN(std::string now, _server_now(m_c, m_a.keys()));
  std::vector<Args> tx{std::move(found), {"HABSENT", lf_dir, name}};
  if (n->detached) {
    // Cut it out of its cycle: the entry naming it in its home goes.
    const std::string home_dir = m_a.keys().dir(n->home);
    const std::string want = std::to_string(ino);
    // (A walk that starts over after a server restart names an entry
    // twice at most: HDEL of a field gone is nothing.)
    ScanWalk walk(m_c, {"HSCAN", home_dir}, {"COUNT", std::string(k_scan_count)});
    for (;;) {
      TRY_ASSIGN(auto page, walk.next());
      if (!page) {
        break;
      }
      for (std::size_t i = 0; i + 1 < page->size(); i += 2) {
        if ((*page)[i + 1].str() == want) {
          tx.push_back({"HDEL", home_dir, std::string((*page)[i].str())});
        }
      }
    }
    tx.push_back({"HINCRBY", m_a.keys().inode(n->home), "nlink", "-1"});
    tx.push_back({"HSET", m_a.keys().inode(n->home), "mtime", now, "ctime", now});
    tx.push_back({"HINCRBY", m_a.keys().inode(n->home), "gen", "1"});
  }
  tx.push_back({"HSET", lf_dir, name, std::to_string(ino)});
  tx.push_back({"HINCRBY", lf_inode, "gen", "1"});
  if (n->type == NodeType::Dir) {
    tx.push_back({"HSET", m_a.keys().inode(ino), "parent", std::to_string(lf), "ctime", now});
    tx.push_back({"HINCRBY", lf_inode, "nlink", "1"});
  } else {
    tx.push_back({"HSET", m_a.keys().inode(ino), "nlink", "1", "ctime", now});
  }
  tx.push_back({"HSET", lf_inode, "mtime", now, "ctime", now});
  return _apply(m_c, tx);
}

}  // namespace

void fsck_repair(Connection& c, FsckAnalysis& analysis, const std::function<Status()>& keep) {
  Repairer(c, analysis, keep).run();
}

}  // namespace redisfs::fsck_detail
