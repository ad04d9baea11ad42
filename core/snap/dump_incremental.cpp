// Incremental dump and restore (dump_incremental.hpp).
#include "snap/dump_incremental.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <ostream>
#include <utility>

#include "redis/scan.hpp"
#include "snap/dump_rules.hpp"
#include "snap/fsck_layers.hpp"
#include "snap/install.hpp"
#include "snap/snapshot.hpp"
#include "snap/staging_writes.hpp"
#include "store/key_walk.hpp"
#include "store/superblock.hpp"
#include "util/progress.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"
#include "util/u64_set.hpp"
#include "version.hpp"

namespace redisfs {

namespace {

using Clock = std::chrono::steady_clock;
using Pairs = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view k_hscan_count = "1000";

Pairs _pairs(ReplyView flat) { return reply_pairs<std::string>(flat); }

// Every field of a hash, page by page (HSCAN; a repeated field dropped, so
// a walk that starts over after a server restart gives none twice), to
// `each`, starting from its first page when the caller pipelined it (and
// the server that answered before: ScanWalk::adopt_first); a hash of more
// than one page must hold as many fields as HLEN says. False when the key
// does not exist.
struct FirstPage {
  Reply page;
  std::string server_before;
};
Result<bool> _each_field(Connection& c, const std::string& key, std::string_view rel,
                         const std::function<Status(const Pairs&)>& each,
                         std::optional<FirstPage> first = std::nullopt) {
  U64Set seen;
  std::uint64_t count = 0;
  bool paged = false;
  ScanWalk walk(c, {"HSCAN", key}, {"COUNT", std::string(k_hscan_count)});
  if (first) {
    walk.adopt_first(std::move(first->page), std::move(first->server_before));
  }
  for (;;) {
    TRY_ASSIGN(auto page, walk.next());
    if (!page) {
      break;
    }
    paged = paged || !walk.done();
    Pairs pairs = _pairs(*page);
    if (paged) {
      std::erase_if(pairs, [&](const auto& p) { return !seen.insert(std::hash<std::string_view>{}(p.first)); });
    }
    count += pairs.size();
    if (!pairs.empty()) {
      TRY(each(pairs));
    }
  }
  if (paged) {
    TRY_ASSIGN(Reply len, c.command({"HLEN", key}));
    if (static_cast<std::uint64_t>(std::max(0LL, len.view().integer())) != count) {
      return make_error(EIO, "hash " + std::string(rel) + ": " + std::to_string(count) + " fields read but HLEN says " +
                                 std::to_string(len.view().integer()));
    }
  }
  return count > 0;
}

Result<Superblock> _read_sb(Connection& c, const Keys& keys, SbFields* fields = nullptr) {
  auto r = c.command({"HGETALL", keys.sb()});
  if (!r.ok()) {
    return superblock_read_error(c, keys, std::move(r).error());
  }
  Pairs pairs = _pairs(r->view());
  TRY_ASSIGN(Superblock sb, decode_superblock(keys.prefix(), pairs));
  if (fields != nullptr) {
    *fields = std::move(pairs);
  }
  return sb;
}

Status _walk_disagrees(const Keys& keys, const KeyWalkResult& walked) {
  if (walked.disagreement.empty()) {
    return {};
  }
  return make_error(EINVAL, "the structure of " + redisfs::quoted(keys.prefix()) + " disagrees with its superblock (" +
                                walked.disagreement + "); see `redisfs-snap fsck " + keys.prefix() + "`");
}

}  // namespace

// ---------------------------------------------------------------- digest

namespace {
// The superblock's fields that are the filesystem's state (the digest).
constexpr std::array<std::string_view, 9> k_lasting_sb = {"format", "version", "block_size", "root", "next_inode",
                                                          "inodes", "bytes", "created", "security_xattrs"};
}  // namespace

bool digest_counts(KeyKind kind, std::string_view field) {
  switch (kind) {
    case KeyKind::Superblock:
      return std::find(k_lasting_sb.begin(), k_lasting_sb.end(), field) != k_lasting_sb.end();
    case KeyKind::Inode:
      return field != "atime";
    case KeyKind::Dir:
    case KeyKind::Xattr:
    case KeyKind::Orphans:
      return true;
    default:
      return false;
  }
}

DigestSum::Term DigestSum::term(std::string_view key, std::string_view field, std::string_view value) {
  Sha256 sha;
  for (std::string_view part : {key, field, value}) {
    std::uint8_t len[8];
    for (int i = 0; i < 8; ++i) {
      len[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(part.size()) >> (8 * i));
    }
    sha.update(len, sizeof len);
    sha.update(part);
  }
  auto d = sha.digest();
  Term t{};
  std::copy(d.begin(), d.end(), t.begin());
  return t;
}

void DigestSum::add(const Term& t) {
  unsigned carry = 0;
  for (int i = 31; i >= 0; --i) {
    unsigned s = m_sum[static_cast<std::size_t>(i)] + t[static_cast<std::size_t>(i)] + carry;
    m_sum[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(s);
    carry = s >> 8;
  }
}

void DigestSum::sub(const Term& t) {
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    int s = int(m_sum[static_cast<std::size_t>(i)]) - int(t[static_cast<std::size_t>(i)]) - borrow;
    borrow = s < 0 ? 1 : 0;
    m_sum[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(s + (borrow << 8));
  }
}

std::string DigestSum::hex() const { return lower_hex(m_sum); }

Result<std::string> state_digest(Connection& c, const Keys& keys) {
  DigestSum sum;
  SbFields sb;
  TRY(_read_sb(c, keys, &sb));
  for (const auto& [f, v] : sb) {
    if (digest_counts(KeyKind::Superblock, f)) {
      sum.add("SB", f, v);
    }
  }
  KeyWalk walk(c, keys, KeyWalkOptions{false, 256, nullptr, k_hscans_at_once});
  TRY(walk.begin());
  TRY_ASSIGN(KeyWalkResult walked, walk.run([&](std::span<const std::string> rels, std::vector<long long>& found) -> Status {
    // Blocks are only measured (the walk's cross-check); every hash's first
    // page comes in the same pipeline.
    const std::string before = c.answered_by();
    for (const auto& rel : rels) {
      if (parse_relative_key(rel).kind == KeyKind::Block) {
        c.append({"STRLEN", keys.absolute(rel)});
      } else {
        c.append({"HSCAN", keys.absolute(rel), "0", "COUNT", k_hscan_count});
      }
    }
    std::vector<Result<Reply>> replies = c.read_replies(rels.size());
    for (std::size_t i = 0; i < rels.size(); ++i) {
      if (!replies[i].ok()) {
        if (c.broken()) {
          return std::move(replies[i]).error();
        }
        found[i] = -2;  // not of its type: the walk says so
        continue;
      }
      const ParsedKey pk = parse_relative_key(rels[i]);
      if (pk.kind == KeyKind::Block) {
        const long long n = replies[i]->view().integer();
        found[i] = n == 0 ? -1 : n;
        continue;
      }
      TRY_ASSIGN(bool any, _each_field(
                               c, keys.absolute(rels[i]), rels[i],
                               [&](const Pairs& pairs) -> Status {
                                 for (const auto& [f, v] : pairs) {
                                   if (digest_counts(pk.kind, f)) {
                                     sum.add(rels[i], f, v);
                                   }
                                 }
                                 return {};
                               },
                               FirstPage{std::move(replies[i]).value(), before}));
      found[i] = any ? 0 : -1;
    }
    return {};
  }));
  TRY(_walk_disagrees(keys, walked));
  return sum.hex();
}

// ---------------------------------------------------------------- tracking

namespace {

// The prefixes of the snapshots `ids` names (the register of filesystems,
// keys.hpp: one HMGET of each registered superblock, pipelined), each id to
// every prefix that carries it; an id with none, or only of a format
// version before tracking (superblock.hpp), is left out.
Result<std::vector<std::pair<std::string, std::string>>> _prefixes_of(Connection& c,
                                                                      const std::vector<std::string>& ids) {
  TRY_ASSIGN(Reply registered, c.command({"SMEMBERS", k_registry_key}));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < registered.view().size(); ++i) {
    std::string_view p = registered.view()[i].str();
    if (validate_prefix(p).ok() && temp_kind(p) == TempKind::None) {
      names.emplace_back(p);
    }
  }
  for (const std::string& p : names) {
    c.append({"HMGET", Keys(p).sb(), "snapshot_id", "version"});
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& p : names) {
    auto r = c.read_reply();
    if (!r.ok() && c.broken()) {
      return std::move(r).error();
    }
    if (!r.ok() || !r->view().is_array() || r->view().size() != 2 || r->view()[0].is_nil()) {
      continue;
    }
    std::uint64_t version = 0;
    std::string_view id = r->view()[0].str();
    if (parse_canonical_u64(r->view()[1].is_nil() ? "" : r->view()[1].str(), version) &&
        version >= static_cast<std::uint64_t>(k_tracking_version) &&
        std::find(ids.begin(), ids.end(), id) != ids.end()) {
      out.emplace_back(id, p);
    }
  }
  return out;
}

// Is `record` (some snapshot's CHANGED) a usable record of what changed
// since the snapshot `parent`: a set holding "since:<parent>"?
Result<bool> _usable_record(Connection& c, const std::string& record, const std::string& parent) {
  c.append({"TYPE", record});
  c.append({"SISMEMBER", record, changed_since_member(parent)});
  std::vector<Result<Reply>> r = c.read_replies(2);
  if (!r[0].ok()) {
    return std::move(r[0]).error();
  }
  return r[0]->view().str() == "set" && r[1].ok() && r[1]->view().integer() == 1;
}

// Whether `keys` was changed after its instant (mounted writable: its
// CHANGED is the string "written").
Result<bool> _written_after(Connection& c, const Keys& keys) {
  TRY_ASSIGN(Reply type, c.command({"TYPE", keys.changed()}));
  if (type.view().str() != "string") {
    return false;
  }
  TRY_ASSIGN(Reply value, c.command({"GET", keys.changed()}));
  return !value.view().is_nil() && value.view().str() == k_changed_written;
}

}  // namespace

// The blocks that can differ between BASE and SNAP by the change records
// (keys.hpp, CHANGED) of every snapshot after BASE up to SNAP in SNAP's
// lineage, each counting from the one before it: the name of a set holding
// them all (SNAP's own record, or their union in `scratch`, which then has
// the temporary TTL), or "" when one is missing, not a usable set, in
// another slot, when BASE or SNAP changed after its instant, or when one
// of them is of a format version before tracking (superblock.hpp: a
// daemon that records nothing may have written while that record ran).
Result<std::string> tracked_blocks(Connection& c, const Keys& sk, const Superblock& snap, const Keys& bk,
                                   const Superblock& base, const std::string& scratch) {
  const auto& lineage = snap.lineage;
  auto at = std::find(lineage.begin(), lineage.end(), base.snapshot_id);
  if (at == lineage.end() || lineage.back() != snap.snapshot_id || at + 1 == lineage.end() ||
      base.version < k_tracking_version || snap.version < k_tracking_version) {
    return std::string();
  }
  for (const Keys* k : {&sk, &bk}) {
    TRY_ASSIGN(bool written, _written_after(c, *k));
    if (written) {
      return std::string();
    }
  }
  const std::vector<std::string> chain(at + 1, lineage.end());  // each one's parent is the id before it
  std::vector<std::pair<std::string, std::string>> found{{snap.snapshot_id, sk.prefix()}};
  if (chain.size() > 1) {
    auto others = _prefixes_of(c, std::vector<std::string>(chain.begin(), chain.end() - 1));
    if (!others.ok()) {
      return c.broken() ? Result<std::string>(std::move(others).error()) : std::string();
    }
    found.insert(found.end(), others->begin(), others->end());
  }
  std::vector<std::string> records;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const std::string& parent = i == 0 ? base.snapshot_id : chain[i - 1];
    std::string usable;
    for (const auto& [id, prefix] : found) {
      Keys k(prefix);
      if (id != chain[i] || (c.cluster() && !same_slot(k, sk))) {
        continue;
      }
      TRY_ASSIGN(bool ok, _usable_record(c, k.changed(), parent));
      if (ok) {
        usable = k.changed();
        break;
      }
    }
    if (usable.empty()) {
      return std::string();
    }
    records.push_back(std::move(usable));
  }
  if (records.size() == 1) {
    return records[0];
  }
  std::vector<std::string> argv{"SUNIONSTORE", scratch};
  argv.insert(argv.end(), records.begin(), records.end());
  const std::string ttl = std::to_string(k_temp_ttl_ms);
  c.append(argv);
  c.append({"PEXPIRE", scratch, ttl});
  TRY_ASSIGN(std::vector<Reply> replies, c.read_all());
  if (replies[0].view().integer() > 0) {  // (an empty union makes no key)
    TRY(expire_made_key(c, replies[1], scratch, ttl));
  }
  return scratch;
}

// ---------------------------------------------------------------- dump

namespace {

// The two passes of the dump (dump_incremental.hpp), on one connection.
class IncrementalDumper {
 public:
  // `tracked`: the set of the blocks that can differ (tracked_blocks), ""
  // to compare every block.
  IncrementalDumper(Connection& c, const Keys& snap, const Keys& base, dump::Writer& w, Progress& progress,
                    std::uint32_t block_size, std::string tracked)
      : m_c(c),
        m_snap(snap),
        m_base(base),
        m_w(w),
        m_progress(progress),
        m_tracked(std::move(tracked)),
        // A batch's changed blocks come back in one reply: about 8 MiB.
        m_batch(std::clamp<std::size_t>((8u << 20) / std::max<std::uint32_t>(block_size, 1), 2, 1000)),
        // Where inc_compare.lua XORs two blocks (in SNAP's slot, removed
        // by the script itself).
        m_scratch(Keys(make_temp_prefix(snap.prefix(), TempKind::Dump)).absolute("CMP")) {}

  std::uint64_t blocks() const { return m_blocks; }
  std::uint64_t deletes() const { return m_deletes; }

  // SNAP's keys that are new or changed.
  Status changed() {
    KeyWalk walk(m_c, m_snap, KeyWalkOptions{false, m_batch, nullptr});
    TRY(walk.begin());
    TRY_ASSIGN(KeyWalkResult walked, walk.run([&](std::span<const std::string> rels, std::vector<long long>& found) {
      return compare(rels, found);
    }));
    return _walk_disagrees(m_snap, walked);
  }

  // BASE's keys that SNAP lacks.
  Status gone() {
    KeyWalk walk(m_c, m_base, KeyWalkOptions{false, 1000, nullptr});
    TRY(walk.begin());
    TRY_ASSIGN(KeyWalkResult walked, walk.run([&](std::span<const std::string> rels, std::vector<long long>& found) -> Status {
      std::vector<std::string> keys;
      std::vector<std::string> args;
      for (const auto& rel : rels) {
        keys.push_back(m_base.absolute(rel));
        args.emplace_back(parse_relative_key(rel).kind == KeyKind::Block ? "b" : "h");
      }
      for (const auto& rel : rels) {
        keys.push_back(m_snap.absolute(rel));
      }
      TRY_ASSIGN(Reply r, m_c.eval(lua::inc_gone, keys, args));
      ReplyView v = r.view();
      if (!v.is_array() || v.size() != rels.size()) {
        return make_error(EIO, "redis: bad reply from inc_gone");
      }
      for (std::size_t i = 0; i < rels.size(); ++i) {
        found[i] = v[i][0].integer();
        if (v[i][1].integer() == 1) {
          TRY(m_w.write_delete(rels[i]));
          ++m_deletes;
        }
      }
      m_progress.add(rels.size());
      return check_cancel();
    }));
    return _walk_disagrees(m_base, walked);
  }

 private:
  Status compare(std::span<const std::string> rels, std::vector<long long>& found) {
    std::vector<std::string> keys;
    std::vector<std::string> args{m_carry, m_tracked.empty() ? "0" : "1"};
    for (const auto& rel : rels) {
      keys.push_back(m_snap.absolute(rel));
      ParsedKey pk = parse_relative_key(rel);
      args.push_back(pk.kind == KeyKind::Block   ? "b" + std::to_string(pk.ino) + ":" + std::to_string(pk.index)
                     : pk.kind == KeyKind::Inode ? "i" + std::to_string(pk.ino)
                                                 : std::string("h"));
    }
    for (const auto& rel : rels) {
      keys.push_back(m_base.absolute(rel));
    }
    keys.push_back(m_scratch);
    keys.push_back(m_tracked.empty() ? m_scratch : m_tracked);
    TRY_ASSIGN(Reply r, m_c.eval(lua::inc_compare, keys, args));
    ReplyView v = r.view();
    if (!v.is_array() || v.size() != rels.size() + 1) {
      return make_error(EIO, "redis: bad reply from inc_compare");
    }
    for (std::size_t i = 0; i < rels.size(); ++i) {
      ReplyView e = v[i];
      found[i] = e[0].integer();
      if (e[1].integer() != 1) {
        continue;
      }
      if (parse_relative_key(rels[i]).kind == KeyKind::Block) {
        TRY(m_w.write_string(rels[i], e[2].str()));
        ++m_blocks;
        continue;
      }
      TRY(m_w.begin_hash(rels[i]));
      TRY_ASSIGN(bool any, _each_field(m_c, m_snap.absolute(rels[i]), rels[i],
                                       [&](const Pairs& pairs) { return m_w.hash_fields(pairs); }));
      if (!any) {
        return make_error(EIO, "key " + rels[i] + " vanished while it was dumped");
      }
      TRY(m_w.end_hash());
    }
    m_carry = std::string(v[rels.size()].str());
    m_progress.add(rels.size());
    return check_cancel();
  }

  Connection& m_c;
  const Keys& m_snap;
  const Keys& m_base;
  dump::Writer& m_w;
  Progress& m_progress;
  std::string m_tracked;
  std::size_t m_batch;
  std::string m_scratch;
  std::string m_carry;
  std::uint64_t m_blocks = 0;
  std::uint64_t m_deletes = 0;
};

// Why `dump SNAP --since BASE` cannot be, in one line; else both superblocks.
Result<std::pair<Superblock, Superblock>> _check_pair(Connection& c, const Keys& sk, const Keys& bk) {
  auto snap = _read_sb(c, sk);
  if (!snap.ok()) {
    return std::move(snap).error();
  }
  TRY_ASSIGN(Superblock base, _read_sb(c, bk));
  const std::string s = redisfs::quoted(sk.prefix());
  const std::string b = redisfs::quoted(bk.prefix());
  if (base.snapshot_id.empty()) {
    return make_error(EINVAL, b + " has no snapshot id (it is not a snapshot, or was made before lineage); take a new "
                                  "snapshot with `redisfs-snap copy` and dump against that");
  }
  if (snap->snapshot_id.empty()) {
    return make_error(EINVAL, s + " has no snapshot id: an incremental dump is taken of a snapshot (`redisfs-snap copy`)");
  }
  if (!descends_from(*snap, base)) {
    return make_error(EINVAL, s + " does not descend from " + b + " (snapshot " + base.snapshot_id +
                                  " is not in its lineage)");
  }
  if (snap->block_size != base.block_size) {
    return make_error(EINVAL, s + " and " + b + " have different block sizes");
  }
  if (c.cluster() && !same_slot(sk, bk)) {
    return make_error(EINVAL, s + " and " + b + " are in different cluster slots (keep the hash tag in both names)");
  }
  for (const auto* keys : {&sk, &bk}) {
    TRY_ASSIGN(auto mounts, live_mounts(c, *keys));
    const bool ro = keys == &sk ? snap->read_only : base.read_only;
    if (!mounts.empty() && !ro) {
      return make_error(EBUSY, redisfs::quoted(keys->prefix()) + " is writable and mounted; unmount it first" +
                                   live_mounts_hint(c, *keys, mounts));
    }
  }
  return std::make_pair(std::move(snap).value(), std::move(base));
}

}  // namespace

Result<DumpStats> dump_incremental(Pool& pool, const std::string& prefix, const std::string& base, std::ostream& out,
                                   const DumpOptions& opts) {
  TRY(validate_prefix(prefix));
  TRY(validate_prefix(base));
  auto start = Clock::now();
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY(check_toolkit_prefix(c, prefix));
  TRY(check_toolkit_prefix(c, base));
  const std::string what = "dump " + prefix + " --since " + base;
  Keys sk(prefix);
  Keys bk(base);
  // (read as they are, not through a snapshot: an interrupted move into
  // either is finished first, and one a running tool may be making refused)
  std::string finished;
  for (const Keys* k : {&sk, &bk}) {
    if (Status done = finish_install_before_read(pool, *k, false, finished); !done.ok()) {
      return make_error(done.code(), what + ": " + done.error().message);
    }
  }
  auto pair = _check_pair(c, sk, bk);
  if (!pair.ok()) {
    return make_error(pair.error().code, what + ": " + pair.error().message);
  }
  auto& [snap_sb, base_sb] = *pair;
  // Only the blocks the change records name are compared, when they can
  // tell (REDISFS_FAULT=inc-compare-all: every block, for the tests that
  // check both ways give the same dump).
  const std::string scratch = Keys(make_temp_prefix(prefix, TempKind::Dump)).absolute("TRACKED");
  std::string tracked;
  if (!fault_injected("inc-compare-all")) {
    TRY_ASSIGN(tracked, tracked_blocks(c, sk, snap_sb, bk, base_sb, scratch));
  }
  Progress progress(what, 0, "keys", opts.quiet);
  auto body = [&]() -> Result<DumpStats> {
    DumpStats stats;
    stats.prefix = prefix;
    stats.warning = finished;
    stats.snapshot_ns = snap_sb.snapshot_created_ns;
    TRY_ASSIGN(std::string digest, state_digest(c, bk));
    dump::Header header{prefix, iso_time_ns(snap_sb.snapshot_created_ns), "redisfs-snap " REDISFS_VERSION, 0,
                        dump::k_version_incremental, base_sb.snapshot_id, digest};
    dump::Writer w(out, header);
    TRY(w.begin());
    SbFields sb;
    TRY(_read_sb(c, sk, &sb));
    TRY(w.begin_hash("SB"));
    TRY(w.hash_fields(sb));
    TRY(w.end_hash());
    progress.set_total(snap_sb.inodes + base_sb.inodes + (snap_sb.bytes + base_sb.bytes) / snap_sb.block_size, true);
    IncrementalDumper dumper(c, sk, bk, w, progress, snap_sb.block_size, tracked);
    TRY(dumper.changed());
    TRY(dumper.gone());
    TRY(check_cancel());
    TRY_ASSIGN(stats.trailer, w.finish());
    out.flush();
    if (!out) {
      return make_error(EIO, "write failed");
    }
    stats.base = base;
    return stats;
  };
  auto stats = body();
  progress.finish();
  c.drain();
  if (tracked == scratch) {
    (void)c.command({"UNLINK", scratch});
  }
  if (!stats.ok()) {
    return make_error(stats.error().code, what + ": " + stats.error().message);
  }
  stats->seconds = seconds_since(start);
  return stats;
}

// ---------------------------------------------------------------- restore

IncrementalRestore::IncrementalRestore(Pool* pool, Connection* c, const RestoreOptions& opts, Progress& progress)
    : m_pool(pool), m_c(c), m_opts(opts), m_progress(progress) {}

IncrementalRestore::~IncrementalRestore() = default;

// Is the target exactly the base? One line when not; the target is only read.
Status IncrementalRestore::check_base(Connection& c) {
  Keys t(m_target);
  const std::string refuse = "refusing to apply the incremental dump to " + redisfs::quoted(m_target) + ": ";
  TRY_ASSIGN(Reply exists, c.command({"EXISTS", t.sb()}));
  if (exists.view().integer() != 1) {
    return make_error(ENOENT, refuse + "there is no filesystem there (restore the full dump of its base first)");
  }
  auto sb = _read_sb(c, t);
  if (!sb.ok()) {
    return make_error(sb.error().code, refuse + sb.error().message);
  }
  if (sb->snapshot_id != m_header.base_snapshot_id) {
    return make_error(EINVAL, refuse + "it is " +
                                  (sb->snapshot_id.empty() ? std::string("not a snapshot (no snapshot id)")
                                                           : "snapshot " + sb->snapshot_id) +
                                  ", the dump applies to snapshot " + m_header.base_snapshot_id);
  }
  TRY_ASSIGN(auto mounts, live_mounts(c, t));
  if (!mounts.empty()) {
    return make_error(
        EBUSY, refuse + "it " + mounted_count(mounts.size()) + "; unmount it first" + live_mounts_hint(c, t, mounts));
  }
  auto digest = state_digest(c, t);
  if (!digest.ok()) {
    return make_error(digest.error().code, refuse + digest.error().message);
  }
  if (*digest != m_header.base_digest) {
    return make_error(EINVAL, refuse +
                                  "its state digest is not the dump's base_digest: it has changed since snapshot " +
                                  m_header.base_snapshot_id + ", or the dump was not taken against this state");
  }
  m_block_size = sb->block_size;
  return {};
}

Status IncrementalRestore::on_header(const dump::Header& h) {
  m_active = true;
  m_header = h;
  if (auto st = validate_prefix(h.prefix); !st.ok()) {
    return make_error(EINVAL, "the header's prefix is not valid: " + st.error().message);
  }
  m_target = m_opts.prefix.value_or(h.prefix);
  TRY(validate_prefix(m_target));
  if (m_opts.resume) {
    // It is staged whole and applied in one journaled step: there is no
    // half-applied state to continue from, only the same restore again.
    return make_error(EINVAL, "an incremental dump cannot be resumed: restore it again without --resume");
  }
  if (m_opts.damaged) {
    // Its changes apply only onto exactly its base, and must leave a
    // filesystem fsck passes (check_result).
    return make_error(EINVAL, "--damaged takes a full dump; an incremental one applies only onto a sound base");
  }
  if (m_pool == nullptr) {
    return {};
  }
  TRY_ASSIGN(Pool::Lease lease, m_pool->acquire());
  TRY(check_toolkit_prefix(*lease, m_target));
  auto refused = [&](Error e) -> Status {
    m_refusal = e;
    return e;
  };
  if (Status st = refuse_evicting_target(*lease, m_opts, m_target); !st.ok()) {
    return refused(st.error());
  }
  if (m_c != nullptr) {
    auto reserved = Reservation::acquire(*m_pool, Keys(m_target), "restore");
    if (!reserved.ok()) {
      return refused(refusing_now(reserved.error()));
    }
    m_reservation = std::move(reserved).value();
    auto finished = finish_install(*lease, Keys(m_target));
    if (!finished.ok()) {
      // (the target's interrupted move, not the dump, is at fault)
      return refused(refusing_now(finished.error()));
    }
    m_finished = std::move(finished).value();
  } else if (m_opts.dry_run) {
    TRY_ASSIGN(Reply exists, lease->command({"EXISTS", Keys(m_target).sb()}));
    if (exists.view().integer() != 1) {
      return {};  // nothing to check the base against: the document alone
    }
  }
  if (Status st = check_base(*lease); !st.ok()) {
    return refused(st.error());
  }
  if (m_c != nullptr) {
    m_staging.emplace(make_temp_prefix(m_target, TempKind::Restore));
    m_room.stages_at(m_staging->sb());
    m_writes = std::make_unique<StagingWrites>(*m_c, *m_staging, false);
  }
  return {};
}

Status IncrementalRestore::record(std::string_view key, std::string_view type) {
  TRY(check_cancel());
  ParsedKey pk = parse_relative_key(key);
  if (!is_filesystem_key(pk.kind)) {
    return make_error(EINVAL, "key " + redisfs::quoted(key) + " is not a filesystem key of the redisfs schema");
  }
  if (!type.empty() && expected_type(pk.kind) != type) {
    return make_error(EINVAL, "key " + redisfs::quoted(key) + " must be a " + std::string(expected_type(pk.kind)) + ", not a " +
                                  std::string(type));
  }
  m_kind = pk.kind;
  m_progress.add(1);
  return {};
}

// (verify: no server to find them, see m_keys)
static Status _no_duplicate(U64Set& seen, std::string_view name, std::string_view what, std::string_view key) {
  if (!seen.insert(std::hash<std::string_view>{}(name))) {
    return make_error(EINVAL, std::string(what) + redisfs::quoted(key));
  }
  return {};
}

Status IncrementalRestore::on_string(std::string_view key, std::string&& value) {
  TRY(record(key, "string"));
  if (m_c == nullptr) {
    TRY(_no_duplicate(m_keys, key, "duplicate key ", key));
  }
  if (m_kind == KeyKind::Block && value.size() > m_max_block) {
    m_max_block = value.size();
    m_max_block_key = std::string(key);
  }
  if (!m_writes) {
    return {};
  }
  TRY(m_writes->string(key, value));
  return staged(value.size());
}

Status IncrementalRestore::staged(std::uint64_t bytes) {
  if (!m_writes || !m_room.due(bytes + 100)) {  // (a key costs the server about 100 bytes of its own)
    return {};
  }
  TRY(m_writes->settle(0));
  if (Status room = m_room.check(*m_c); !room.ok()) {
    m_refusal = room.error();
    return room;
  }
  return {};
}

Status IncrementalRestore::on_hash_begin(std::string_view key) {
  TRY(record(key, "hash"));
  m_pairs = 0;
  m_fields.clear();
  if (m_c == nullptr && m_kind != KeyKind::Superblock) {  // (a second SB: its own message below)
    TRY(_no_duplicate(m_keys, key, "duplicate key ", key));
  }
  if (m_kind == KeyKind::Superblock) {
    if (m_sb_seen) {
      return make_error(EINVAL, "duplicate key 'SB'");
    }
    m_sb_seen = true;
  }
  if (!m_writes) {
    return {};
  }
  return m_writes->hash_begin(key);
}

Status IncrementalRestore::on_hash_fields(std::string_view key, Pairs&& pairs) {
  if (pairs.empty()) {
    return {};
  }
  m_pairs += pairs.size();
  for (const auto& p : pairs) {
    m_hash_bytes += p.first.size() + p.second.size();
  }
  if (m_c == nullptr) {
    for (const auto& p : pairs) {
      TRY(_no_duplicate(m_fields, p.first, "duplicate field in hash ", key));
    }
  }
  if (m_kind == KeyKind::Superblock) {
    if (m_sb.size() + pairs.size() > 1000) {
      return make_error(EINVAL, "the superblock has more than 1000 fields");
    }
    m_sb.insert(m_sb.end(), pairs.begin(), pairs.end());
  }
  if (!m_writes) {
    return {};
  }
  return m_writes->hash_fields(key, pairs);
}

Status IncrementalRestore::on_hash_end(std::string_view key) {
  if (m_pairs == 0) {
    return make_error(EINVAL, "hash " + redisfs::quoted(key) + " is empty (Redis has no empty hashes)");
  }
  if (m_writes) {
    m_writes->hash_end();
    TRY(staged(std::exchange(m_hash_bytes, 0)));
  }
  if (m_kind == KeyKind::Superblock) {
    TRY_ASSIGN(Superblock sb, decode_superblock(m_header.prefix, m_sb));
    if (sb.snapshot_id.empty() ||
        std::find(sb.lineage.begin(), sb.lineage.end(), m_header.base_snapshot_id) == sb.lineage.end()) {
      return make_error(EINVAL, "the dump's superblock does not descend from its base snapshot " +
                                    m_header.base_snapshot_id);
    }
    if (m_block_size != 0 && sb.block_size != m_block_size) {
      return make_error(EINVAL, "the dump's block size " + std::to_string(sb.block_size) + " is not the target's (" +
                                    std::to_string(m_block_size) + ")");
    }
    m_block_size = sb.block_size;
  }
  return {};
}

Status IncrementalRestore::on_delete(std::string_view key) {
  TRY(record(key, ""));
  if (m_kind == KeyKind::Superblock) {
    return make_error(EINVAL, "a deletion of the superblock");
  }
  if (!m_writes) {
    return {};
  }
  return m_writes->push(staging_deletes_key(*m_staging), key);
}

void IncrementalRestore::at(dump::Position p) {
  if (m_writes) {
    m_writes->at(p);
  }
}

Status IncrementalRestore::commit(RestoreStats& stats) {
  if (m_writes) {
    TRY(m_writes->settle(0));
  }
  if (!m_sb_seen) {
    return make_error(EINVAL, "dump: the incremental dump has no superblock (key 'SB')");
  }
  if (m_max_block > m_block_size) {
    return make_error(EINVAL, "dump: block " + redisfs::quoted(m_max_block_key) + " holds " + std::to_string(m_max_block) +
                                  " bytes, more than the block size " + std::to_string(m_block_size));
  }
  stats.prefix = m_target;
  stats.source_prefix = m_header.prefix;
  stats.base_snapshot_id = m_header.base_snapshot_id;
  add_warning(stats.warning, m_finished);
  if (m_c == nullptr) {
    return {};
  }
  TRY(check_cancel());
  TRY(m_reservation->verify(*m_c));
  TRY(mark_restored(*m_c, *m_staging, m_target, m_header.prefix, parse_dump_time_ns(m_header.created), m_opts.snapshot));
  TRY(check_result());
  crash_if_injected("restore-incremental-staged");
  auto applied = apply_staged_delta(*m_c, *m_staging, Keys(m_target));
  if (!applied.ok()) {
    return make_error(applied.error().code, "applying the incremental dump to " + redisfs::quoted(m_target) +
                                                " stopped midway (" + applied.error().message +
                                                "); the next tool or mount of it finishes the job");
  }
  (void)m_reservation->release();
  return {};
}

// What the apply would leave must be a filesystem fsck finds clean, as a
// full restore's staged one must (fsck_layers.hpp): records each sound can
// still leave an entry naming a deleted inode, a wrong nlink, a block past
// the end. Refused in one line naming the first problem.
Status IncrementalRestore::check_result() {
  auto report = fsck_delta(*m_c, *m_staging, Keys(m_target));
  if (!report.ok()) {
    return make_error(report.error().code, "checking what the incremental dump leaves: " + report.error().message);
  }
  if (report->problems.empty()) {
    return {};
  }
  return make_error(EINVAL, std::string(k_incremental_damaged) + fsck_summary_line(*report, m_target));
}

void IncrementalRestore::discard() {
  if (m_c == nullptr || !m_staging) {
    return;
  }
  if (m_writes) {
    m_writes->abandon();
  }
  auto journal = m_c->command({"GET", Keys(m_target).installing()});
  if (!journal.ok() || !journal->view().is_nil()) {
    return;  // applying: the staged keys are what the journal finishes with
  }
  (void)unlink_listed(*m_c, *m_staging, staging_index_key(*m_staging));
  (void)m_c->command({"UNLINK", staging_deletes_key(*m_staging)});
}

}  // namespace redisfs
