// fsck of a state made of layers (fsck_layers.hpp), and fsck_delta: the
// state an incremental restore's apply would leave, read from the server.
#include "snap/fsck_layers.hpp"

#include <algorithm>
#include <functional>

#include "redis/redis.hpp"
#include "redis/scan.hpp"
#include "snap/fsck_analysis.hpp"
#include "snap/install.hpp"
#include "store/key_walk.hpp"

namespace redisfs {

namespace fsck_detail {

bool LayerIndex::before(const Entry& a, const Entry& b) {
  if (a.kind != b.kind) {
    return a.kind < b.kind;
  }
  return a.ino != b.ino ? a.ino < b.ino : a.index < b.index;
}

void LayerIndex::name(const ParsedKey& pk, std::uint32_t layer, bool deleted) {
  const std::uint64_t index = pk.kind == KeyKind::Block ? pk.index : 0;
  m_entries.push_back(Entry{pk.ino, index, layer, static_cast<std::uint8_t>(pk.kind), deleted});
}

// One entry per key: the last layer's, a deletion only when that layer
// does not also write the key.
void LayerIndex::seal() {
  std::stable_sort(m_entries.begin(), m_entries.end(), before);
  std::vector<Entry> out;
  out.reserve(m_entries.size());
  for (const Entry& e : m_entries) {
    if (!out.empty() && !before(out.back(), e)) {
      Entry& last = out.back();
      last.deleted = e.layer == last.layer ? last.deleted && e.deleted : e.deleted;
      last.layer = e.layer;
      continue;
    }
    out.push_back(e);
  }
  m_entries = std::move(out);
}

bool LayerIndex::decides(const ParsedKey& pk, std::uint32_t layer) const {
  Entry probe{pk.ino, pk.kind == KeyKind::Block ? pk.index : 0, 0, static_cast<std::uint8_t>(pk.kind), false};
  auto it = std::lower_bound(m_entries.begin(), m_entries.end(), probe, before);
  if (it == m_entries.end() || before(probe, *it)) {
    return layer == 0;
  }
  return it->layer == layer && !it->deleted;
}

}  // namespace fsck_detail

namespace {

using namespace fsck_detail;

constexpr long long k_list_page = 1000;
constexpr std::string_view k_hscan_count = "1000";

// Every page of a hash from `first` (the reply to HSCAN key 0, read after
// `server_before` answered: ScanWalk::adopt_first) on, each page's flat
// field/value array to `each`. A walk that would start over (the server
// restarted under it) fails: the analysis may not be fed an entry twice.
Status _pages(Connection& c, const std::string& key, Reply first, std::string server_before,
              const std::function<void(ReplyView)>& each) {
  ScanWalk walk(c, {"HSCAN", key}, {"COUNT", std::string(k_hscan_count)});
  walk.adopt_first(std::move(first), std::move(server_before));
  for (;;) {
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      return {};
    }
    if (walk.started_over()) {
      return make_error(EAGAIN, "the Redis server changed (a restart or a failover) while " + key + " was read");
    }
    each(*page);
  }
}

FieldList _fields(ReplyView flat) {
  FieldList out;
  out.reserve(flat.size() / 2);
  for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
    out.emplace_back(flat[i].str(), flat[i + 1].str());
  }
  return out;
}

// Whether the first page of an HSCAN says the hash exists (a page may be
// empty with more to come).
bool _hscan_found(ReplyView v) { return v.size() == 2 && (v[1].size() > 0 || v[0].str() != "0"); }

// What the key walk is told of a key (key_walk.hpp: -1 absent, -2 not of
// its type, a block's length, else 0) from what batch() asked of it (of a
// block: its STRLEN, and whether it exists: Redis keeps an empty string).
long long _found(const ParsedKey& pk, bool inodes, const Result<Reply>& reply, bool block_exists) {
  if (!reply.ok()) {
    return -2;
  }
  ReplyView v = reply->view();
  if (pk.kind == KeyKind::Block) {
    return block_exists ? v.integer() : -1;
  }
  if (pk.kind == KeyKind::Inode && inodes) {
    return v.size() > 0 ? 0 : -1;  // HGETALL
  }
  if ((pk.kind == KeyKind::Dir || pk.kind == KeyKind::Xattr) && !inodes) {
    return _hscan_found(v) ? 0 : -1;
  }
  return v.integer() == 1 ? 0 : -1;  // EXISTS
}

// The two layers of an incremental restore on the server: the target (the
// base, layer 0) and the staging prefix (layer 1), fed to one analysis
// under the target's names.
class DeltaScan {
 public:
  DeltaScan(Connection& c, const Keys& staging, const Keys& target)
      : m_c(c), m_staging(staging), m_target(target), m_a(target.prefix()) {}

  Result<FsckReport> run();

 private:
  enum class Pass { Inodes, SubKeys };
  Status load_index();
  Status each_listed(const std::string& list, const std::function<Status(ReplyView)>& page);
  Status walk_base(Pass pass);
  Status staged(Pass pass);
  Status batch(const Keys& from, std::uint32_t layer, Pass pass, std::span<const std::string> rels,
               std::vector<long long>* found);
  Status feed(const Keys& from, Pass pass, const std::string& rel, const ParsedKey& pk, Result<Reply>& reply);
  Status orphans();

  Connection& m_c;
  const Keys& m_staging;
  const Keys& m_target;
  FsckAnalysis m_a;
  LayerIndex m_index;
  std::string m_before;  // the server that answered before batch()'s pipeline (_pages)
};

Result<FsckReport> DeltaScan::run() {
  TRY(load_index());
  TRY_ASSIGN(Reply sb, m_c.command({"HGETALL", m_staging.sb()}));
  SbFields fields;
  for (const auto& [k, v] : _fields(sb.view())) {
    fields.emplace_back(k, v);
  }
  m_a.superblock(std::move(fields));
  TRY(walk_base(Pass::Inodes));
  TRY(staged(Pass::Inodes));
  m_a.end_of_inodes();
  TRY(walk_base(Pass::SubKeys));
  TRY(staged(Pass::SubKeys));
  TRY(orphans());
  m_a.finish();
  return m_a.take_report();
}

// Every relative name of a staging list (index, deletions), a page at a time.
Status DeltaScan::each_listed(const std::string& list, const std::function<Status(ReplyView)>& page) {
  for (long long at = 0;; at += k_list_page) {
    TRY_ASSIGN(Reply r, m_c.command({"LRANGE", list, std::to_string(at), std::to_string(at + k_list_page - 1)}));
    TRY(page(r.view()));
    if (r.view().size() < static_cast<std::size_t>(k_list_page)) {
      return {};
    }
  }
}

Status DeltaScan::load_index() {
  auto name = [&](bool deleted) {
    return [this, deleted](ReplyView list) -> Status {
      for (std::size_t i = 0; i < list.size(); ++i) {
        m_index.name(parse_relative_key(list[i].str()), 1, deleted);
      }
      return {};
    };
  };
  TRY(each_listed(staging_deletes_key(m_staging), name(true)));
  TRY(each_listed(staging_index_key(m_staging), name(false)));
  m_index.seal();
  return {};
}

// The base's keys, found from its structure as the state digest found them.
Status DeltaScan::walk_base(Pass pass) {
  KeyWalk walk(m_c, m_target, KeyWalkOptions{false, 256, nullptr, k_hscans_at_once});
  TRY(walk.begin());
  TRY_ASSIGN(KeyWalkResult walked, walk.run([&](std::span<const std::string> rels, std::vector<long long>& found) {
    return batch(m_target, 0, pass, rels, &found);
  }));
  if (!walked.disagreement.empty()) {
    return make_error(EIO, "the base changed while it was checked (" + walked.disagreement + ")");
  }
  return {};
}

Status DeltaScan::staged(Pass pass) {
  return each_listed(staging_index_key(m_staging), [&](ReplyView list) -> Status {
    std::vector<std::string> rels;
    for (std::size_t i = 0; i < list.size(); ++i) {
      rels.emplace_back(list[i].str());
    }
    return batch(m_staging, 1, pass, rels, nullptr);
  });
}

// Reads what `pass` needs of `rels` (keys of `from`, in layer `layer`), one
// pipeline, and hands the analysis those the layer decides. `found` (the
// key walk's) gets what existed and each block's length.
Status DeltaScan::batch(const Keys& from, std::uint32_t layer, Pass pass, std::span<const std::string> rels,
                        std::vector<long long>* found) {
  m_before = m_c.answered_by();
  std::size_t blocks = 0;
  for (const std::string& rel : rels) {
    const std::string key = from.absolute(rel);
    const KeyKind kind = parse_relative_key(rel).kind;
    if (kind == KeyKind::Block) {
      m_c.append({"STRLEN", key});
      m_c.append({"EXISTS", key});  // (0 bytes: an empty string, or none)
      ++blocks;
    } else if (kind == KeyKind::Inode && pass == Pass::Inodes) {
      m_c.append({"HGETALL", key});
    } else if ((kind == KeyKind::Dir || kind == KeyKind::Xattr) && pass == Pass::SubKeys) {
      m_c.append({"HSCAN", key, "0", "COUNT", k_hscan_count});
    } else {
      m_c.append({"EXISTS", key});
    }
  }
  auto all = m_c.read_replies(rels.size() + blocks);
  std::size_t at = 0;
  for (std::size_t i = 0; i < rels.size(); ++i) {
    Result<Reply>& reply = all[at++];
    const ParsedKey pk = parse_relative_key(rels[i]);
    bool exists = true;
    if (pk.kind == KeyKind::Block) {
      Result<Reply>& there = all[at++];
      exists = there.ok() && there->view().integer() == 1;
    }
    if (!reply.ok() && m_c.broken()) {
      return std::move(reply).error();
    }
    if (found != nullptr) {
      (*found)[i] = _found(pk, pass == Pass::Inodes, reply, exists);
    }
    if (reply.ok() && exists && m_index.decides(pk, layer)) {
      TRY(feed(from, pass, rels[i], pk, reply));
    }
  }
  return {};
}

// One key of a layer that decides it, to the analysis, named as the
// target's.
Status DeltaScan::feed(const Keys& from, Pass pass, const std::string& rel, const ParsedKey& pk, Result<Reply>& reply) {
  const std::string name = m_target.absolute(rel);
  if (pass == Pass::Inodes) {
    if (pk.kind == KeyKind::Inode) {
      m_a.inode(pk.ino, name, _fields(reply->view()));
    }
    return {};
  }
  if (pk.kind == KeyKind::Block) {
    const long long len = reply->view().integer();  // (it exists: batch())
    fsck_detail::Node* n = m_a.sub_key(name, pk);
    if (n != nullptr) {
      m_a.block(*n, name, pk.index, static_cast<std::uint64_t>(len));
    }
    return {};
  }
  if (pk.kind != KeyKind::Dir && pk.kind != KeyKind::Xattr) {
    return {};
  }
  if (!_hscan_found(reply->view())) {
    return {};  // no such key
  }
  fsck_detail::Node* n = m_a.sub_key(name, pk);
  if (n == nullptr) {
    return {};
  }
  return _pages(m_c, from.absolute(rel), std::move(*reply), m_before, [&](ReplyView items) {
    if (pk.kind == KeyKind::Dir) {
      m_a.entries_seen(*n, items.size() / 2);
    }
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      if (pk.kind == KeyKind::Dir) {
        m_a.entry(n->ino, items[i].str(), items[i + 1].str());
      } else {
        m_a.xattr(*n, name, items[i].str(), items[i + 1].str());
      }
    }
  });
}

// The ORPHANS of the layer that decides it. No mount of what a restore
// leaves lives yet (as for a staged full restore).
Status DeltaScan::orphans() {
  const ParsedKey pk = parse_relative_key("ORPHANS");
  const Keys* from = m_index.decides(pk, 1) ? &m_staging : m_index.decides(pk, 0) ? &m_target : nullptr;
  if (from == nullptr) {
    return {};  // deleted
  }
  const std::string before = m_c.answered_by();
  TRY_ASSIGN(Reply first, m_c.command({"HSCAN", from->orphans(), "0", "COUNT", k_hscan_count}));
  return _pages(m_c, from->orphans(), std::move(first), before, [&](ReplyView items) {
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      m_a.orphan(items[i].str(), items[i + 1].str(), false);
    }
  });
}

}  // namespace

Result<FsckReport> fsck_delta(Connection& c, const Keys& staging, const Keys& target) {
  return DeltaScan(c, staging, target).run();
}

}  // namespace redisfs
