// verify (dump_verify.hpp): restore's rules and fsck's analysis, fed from a
// dump file in passes.
#include "snap/dump_verify.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "snap/dump_incremental.hpp"
#include "snap/dump_io.hpp"
#include "snap/dump_rules.hpp"
#include "snap/fsck_analysis.hpp"
#include "snap/fsck_layers.hpp"
#include "snap/install.hpp"
#include "util/progress.hpp"
#include "store/key_walk.hpp"
#include "snap/snapshot.hpp"
#include "util/text.hpp"

namespace redisfs {

using namespace fsck_detail;

namespace {

enum class Pass { Facts, Inodes, SubKeys };

using Pairs = std::vector<std::pair<std::string, std::string>>;

// The analysis names keys under a prefix; a dump's keys have none, and the
// problems are shown without it.
const std::string k_dump_prefix = "dump";

// HINCRBY on a superblock field, as Redis does it: a missing field counts
// from 0, one that is not an integer stays as it is (the command fails).
void _hincrby(SbFields& fields, std::string_view name, long long delta) {
  auto at = std::find_if(fields.begin(), fields.end(), [&](const auto& kv) { return kv.first == name; });
  if (at == fields.end()) {
    fields.emplace_back(std::string(name), std::to_string(delta));
    return;
  }
  long long v = 0;
  const std::string& s = at->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return;
  }
  at->second = std::to_string(v + delta);
}

std::optional<std::string_view> _field(const Pairs& pairs, std::string_view name) {
  for (const auto& [k, v] : pairs) {
    if (k == name) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

// Receives one pass over the dump. Pass::Facts applies the record rules
// and gathers the superblock, ORPHANS and the inodes; Pass::Inodes only the
// inodes (again, without the orphans restore drops); Pass::SubKeys the
// DIR, XATTR and BLK records.
class VerifySink : public dump::Sink {
 public:
  VerifySink(Pass pass, DumpRules& rules, FsckAnalysis& analysis, const std::map<Ino, StagedOrphan>& dropped)
      : m_pass(pass), m_rules(rules), m_a(analysis), m_dropped(dropped) {}

  // Pass::Facts: inodes restore may drop as orphans (nlink 0): what it
  // would subtract; and those already given to the analysis.
  std::map<Ino, StagedOrphan> candidates;
  std::vector<Ino> fed_candidates;
  Pairs orphans;
  std::unordered_set<Ino> orphan_inos;  // what drop_staged_orphans reads in ORPHANS
  bool orphans_seen = false;
  // Pass::SubKeys: for naming a dropped orphan's blocks.
  std::uint64_t block_size = 0;
  std::uint64_t total_records = 0;

  Status on_header(const dump::Header& h) override {
    if (m_pass != Pass::SubKeys) {
      // The passes that feed the inodes size the node table from the
      // records announced (at least the inodes; a hint, as fsck's
      // superblock count: FsckAnalysis::expect_inodes caps it).
      m_a.expect_inodes(h.record_count);
    }
    return m_pass == Pass::Facts ? m_rules.header(h) : Status{};
  }

  Status on_string(std::string_view key, std::string&& value) override { return string_record(key, value); }
  Status on_hash_fields(std::string_view key, Pairs&& pairs) override { return hash_fields(key, pairs); }

  // (the same, for a caller that keeps the value: DumpCheck)
  Status string_record(std::string_view key, std::string_view value) {
    TRY(begin(key, "string"));
    if (m_pass == Pass::Facts) {
      return m_rules.string_value(key, value);
    }
    if (m_pass == Pass::SubKeys && m_pk.kind == KeyKind::Block && !dropped_block()) {
      if (fsck_detail::Node* n = m_a.sub_key(m_keys.absolute(key), m_pk)) {
        m_a.block(*n, m_keys.absolute(key), m_pk.index, value.size());
      }
    }
    return {};
  }

  Status on_hash_begin(std::string_view key) override {
    TRY(begin(key, "hash"));
    m_pairs.clear();
    m_node = nullptr;
    if (m_pass == Pass::Facts) {
      return m_rules.hash_begin(key);
    }
    if (m_pass == Pass::SubKeys && (m_pk.kind == KeyKind::Dir || m_pk.kind == KeyKind::Xattr) &&
        !m_dropped.contains(m_pk.ino)) {
      m_node = m_a.sub_key(m_keys.absolute(key), m_pk);
    }
    return {};
  }

  Status hash_fields(std::string_view key, const Pairs& pairs) {
    if (m_pass == Pass::Facts) {
      TRY(m_rules.hash_fields(key, pairs));
      if (m_pk.kind == KeyKind::Orphans) {
        orphans.insert(orphans.end(), pairs.begin(), pairs.end());
      }
    }
    if (m_pk.kind == KeyKind::Inode && m_pass != Pass::SubKeys) {
      m_pairs.insert(m_pairs.end(), pairs.begin(), pairs.end());
    } else if (m_node != nullptr && m_pk.kind == KeyKind::Dir) {
      m_a.entries_seen(*m_node, pairs.size());
      for (const auto& [name, value] : pairs) {
        m_a.entry(m_node->ino, name, value);
      }
    } else if (m_node != nullptr && m_pk.kind == KeyKind::Xattr) {
      const std::string abs = m_keys.absolute(key);
      for (const auto& [name, value] : pairs) {
        m_a.xattr(*m_node, abs, name, value);
      }
    }
    return {};
  }

  Status on_hash_end(std::string_view key) override {
    if (m_pass == Pass::Facts) {
      TRY(m_rules.hash_end(key));
      if (m_pk.kind == KeyKind::Orphans) {
        orphans_seen = true;
        for (const auto& kv : orphans) {
          ParsedKey pk = parse_relative_key("INODE:" + kv.first);
          if (pk.kind == KeyKind::Inode) {
            orphan_inos.insert(pk.ino);
          }
        }
      }
    }
    if (m_pk.kind == KeyKind::Inode && m_pass != Pass::SubKeys) {
      inode(key);
    }
    return {};
  }

 private:
  Status begin(std::string_view key, std::string_view type) {
    TRY(check_cancel());
    if (m_pass == Pass::Facts) {
      TRY(m_rules.begin_record(key, type));
      m_pk = m_rules.parsed();
    } else {
      m_pk = parse_relative_key(key);
    }
    return {};
  }

  void inode(std::string_view key) {
    if (m_pass == Pass::Facts) {
      auto nlink = _field(m_pairs, "nlink");
      if (nlink && *nlink == "0") {
        if (auto drop = staged_orphan_drop(nlink, _field(m_pairs, "bytes"), _field(m_pairs, "size"), 1)) {
          candidates.emplace(m_pk.ino, *drop);
          if (!orphans_seen) {
            fed_candidates.push_back(m_pk.ino);  // ORPHANS may still name it
          } else if (orphan_inos.contains(m_pk.ino)) {
            return;  // restore drops it
          }
        }
      }
    } else if (m_dropped.contains(m_pk.ino)) {
      return;
    }
    FieldList fields;
    fields.reserve(m_pairs.size());
    for (const auto& [k, v] : m_pairs) {
      fields.emplace_back(k, v);
    }
    m_a.inode(m_pk.ino, m_keys.absolute(key), fields);
  }

  // A block of an orphan restore drops, and removes by name (or all of
  // them, for a file too sparse to name its blocks).
  bool dropped_block() const {
    auto it = m_dropped.find(m_pk.ino);
    if (it == m_dropped.end()) {
      return false;
    }
    auto named = nameable_blocks(it->second.size, it->second.bytes, static_cast<std::uint32_t>(block_size), total_records);
    return !named || m_pk.index < *named;
  }

  Pass m_pass;
  DumpRules& m_rules;
  FsckAnalysis& m_a;
  const std::map<Ino, StagedOrphan>& m_dropped;
  Keys m_keys{k_dump_prefix};
  ParsedKey m_pk;
  Pairs m_pairs;  // the current inode's fields
  fsck_detail::Node* m_node = nullptr;
};

}  // namespace

namespace {

// What restore makes of the dump's superblock before fsck sees it: marked
// as restored (without --snapshot), less the orphans it drops (`dropped`
// gets them).
SbFields _staged_superblock(const DumpRules& rules, const VerifySink& facts, std::map<Ino, StagedOrphan>& dropped) {
  SbFields sb = rules.superblock();
  apply_superblock_marks(sb, restored_superblock_marks(std::nullopt, rules.source_prefix(), rules.source_prefix(),
                                                       rules.dumped_ns(), false));
  for (Ino ino : facts.orphan_inos) {
    if (auto it = facts.candidates.find(ino); it != facts.candidates.end()) {
      dropped.emplace(ino, it->second);
      _hincrby(sb, "inodes", -1);
      _hincrby(sb, "bytes", -static_cast<long long>(it->second.bytes));
    }
  }
  return sb;
}

// One pass over `path` into `sink`.
Result<dump::Trailer> _pass(const std::string& path, dump::Sink& sink, const VerifyOptions& opts,
                            Compression* detected) {
  TRY_ASSIGN(std::ifstream in, open_dump_file(path));
  return read_dump_stream(in, sink, opts.limits, detected);
}

// The report of an incremental dump, whose first pass went to `inc`: its
// base, and what restore's record rules and its staged fsck refuse.
void _report_incremental(VerifyReport& report, IncrementalRestore& inc, const Result<dump::Trailer>& trailer) {
  report.incremental = true;
  report.source_prefix = inc.header().prefix;
  report.base_snapshot_id = inc.header().base_snapshot_id;
  report.base_digest = inc.header().base_digest;
  if (!trailer.ok()) {
    report.refusal = trailer.error().message;
    return;
  }
  RestoreStats stats;
  if (Status fin = inc.commit(stats); !fin.ok()) {
    report.refusal = fin.error().message;
  }
  report.trailer = *trailer;
}

// fsck's findings in `fsck`, into the report with the keys as the dump
// names them.
void _report_problems(FsckReport fsck, VerifyReport& report) {
  const Keys keys(k_dump_prefix);
  report.inodes = fsck.inodes;
  for (FsckProblem& p : fsck.problems) {
    if (auto rel = keys.relative(p.key)) {
      p.key = std::string(*rel);
    }
    report.problems.push_back(std::move(p));
  }
}

// The ORPHANS records restore keeps (not `dropped`), to the analysis.
void _kept_orphans(FsckAnalysis& analysis, const VerifySink& facts, const std::map<Ino, StagedOrphan>& dropped) {
  for (const auto& [field, session] : facts.orphans) {
    ParsedKey pk = parse_relative_key("INODE:" + field);
    if (pk.kind == KeyKind::Inode && dropped.contains(pk.ino)) {
      continue;
    }
    analysis.orphan(field, session, false);  // no mount of a staged copy lives
  }
}

// After a clean first pass over a full dump (`facts`): fsck's analysis of
// what restore would stage (the superblock it would write, the inodes, the
// sub-keys in one more pass, the orphans it keeps) into the report. Each
// pass must read the dump the first one read.
Status _analyse_full(const std::string& path, const VerifyOptions& opts, DumpRules& rules, const VerifySink& facts,
                     std::optional<FsckAnalysis>& analysis, std::map<Ino, StagedOrphan>& dropped,
                     VerifyReport& report) {
  SbFields sb = _staged_superblock(rules, facts, dropped);
  // An inode given to the analysis before ORPHANS named it as one restore
  // drops: read the inodes again, without the dropped ones.
  bool again = std::any_of(facts.fed_candidates.begin(), facts.fed_candidates.end(),
                           [&](Ino ino) { return dropped.contains(ino); });
  auto next_pass = [&](Pass pass) -> Status {
    VerifySink sink(pass, rules, *analysis, dropped);
    sink.block_size = rules.block_size();
    sink.total_records = rules.records();
    Compression ignored = Compression::None;
    auto t = _pass(path, sink, opts, &ignored);
    ++report.passes;
    if (!t.ok() || t->sha256 != report.trailer.sha256) {
      return make_error(EIO, path + " changed while it was verified (pass " + std::to_string(report.passes) +
                                 (t.ok() ? " read another dump)" : ": " + t.error().message + ")"));
    }
    return {};
  };
  if (again) {
    analysis.emplace(k_dump_prefix);
    TRY(next_pass(Pass::Inodes));
  }
  analysis->superblock(std::move(sb));
  analysis->end_of_inodes();
  TRY(next_pass(Pass::SubKeys));
  _kept_orphans(*analysis, facts, dropped);
  analysis->finish();
  _report_problems(analysis->take_report(), report);
  return {};
}

}  // namespace

// ---------------------------------------------------------------- DumpCheck

struct DumpCheck::Impl {
  DumpRules rules{false};  // (the server holds no key twice)
  std::map<Ino, StagedOrphan> dropped;
  FsckAnalysis analysis{k_dump_prefix};
  VerifySink facts{Pass::Facts, rules, analysis, dropped};
  VerifySink subs{Pass::SubKeys, rules, analysis, dropped};
  std::uint64_t announced = 0;  // the header's record count
  std::uint64_t inodes = 0;
  bool sub_keys = false;  // every inode went by: the other records go to `subs` too
  bool to_subs = false;   // the current record does
  std::string refusal;

  // What verify does between its passes (_analyse_full).
  bool start_sub_keys() {
    SbFields sb = _staged_superblock(rules, facts, dropped);
    if (std::any_of(facts.fed_candidates.begin(), facts.fed_candidates.end(),
                    [&](Ino ino) { return dropped.contains(ino); })) {
      return false;  // (an orphan restore drops went by before ORPHANS)
    }
    analysis.superblock(std::move(sb));
    analysis.end_of_inodes();
    subs.block_size = rules.block_size();
    subs.total_records = announced;
    sub_keys = true;
    return true;
  }
};

DumpCheck::DumpCheck(std::uint64_t inodes_max) : m(std::make_unique<Impl>()), m_inodes_max(inodes_max) {}
DumpCheck::~DumpCheck() = default;

void DumpCheck::give_up(std::string why) {
  m.reset();  // (its memory goes back at once)
  m_not_checked = std::move(why);
}

void DumpCheck::feed(Status st) {
  if (!st.ok() && m && m->refusal.empty()) {
    m->refusal = "dump: " + st.error().message;
  }
}

// Whether the record `key` begins is to be checked, and by which sinks.
bool DumpCheck::route(std::string_view key) {
  if (!m || !m->refusal.empty()) {
    return false;
  }
  const KeyKind kind = parse_relative_key(key).kind;
  const bool first = kind == KeyKind::Superblock || kind == KeyKind::Orphans || kind == KeyKind::Inode;
  if (first && m->sub_keys) {
    give_up("its records came out of order (" + std::string(key) + " after the inodes)");
    return false;
  }
  if (kind == KeyKind::Inode && ++m->inodes > m_inodes_max) {
    give_up("it has more than " + std::to_string(m_inodes_max) +
            " inodes (the check would hold 80 bytes of memory each): check the dump with redisfs-snap verify");
    return false;
  }
  if (!first && !m->sub_keys && !m->start_sub_keys()) {
    give_up("an orphan went by before ORPHANS");
    return false;
  }
  m->to_subs = m->sub_keys;
  return true;
}

void DumpCheck::header(const dump::Header& h) {
  dump::Header capped = h;  // (the node table is sized from it)
  capped.record_count = std::min(h.record_count, m_inodes_max);
  m->announced = h.record_count;
  feed(m->facts.on_header(capped));
}

void DumpCheck::string_record(std::string_view key, std::string_view value) {
  if (route(key)) {
    feed(m->facts.string_record(key, value));
    if (m->to_subs) {
      feed(m->subs.string_record(key, value));
    }
  }
}

void DumpCheck::hash_begin(std::string_view key) {
  if (route(key)) {
    feed(m->facts.on_hash_begin(key));
    if (m->to_subs) {
      feed(m->subs.on_hash_begin(key));
    }
  }
}

void DumpCheck::hash_fields(std::string_view key, const std::vector<std::pair<std::string, std::string>>& pairs) {
  if (m && m->refusal.empty()) {
    feed(m->facts.hash_fields(key, pairs));
    if (m->to_subs) {
      feed(m->subs.hash_fields(key, pairs));
    }
  }
}

void DumpCheck::hash_end(std::string_view key) {
  if (m && m->refusal.empty()) {
    feed(m->facts.on_hash_end(key));
    if (m->to_subs) {
      feed(m->subs.on_hash_end(key));
    }
  }
}

VerifyReport DumpCheck::finish() {
  VerifyReport report;
  if (!m) {
    return report;
  }
  report.source_prefix = m->rules.source_prefix();
  if (m->refusal.empty()) {
    feed(m->rules.finish());
  }
  if (!m->refusal.empty()) {
    report.refusal = m->refusal;
    return report;
  }
  if (!m->sub_keys && !m->start_sub_keys()) {
    give_up("an orphan went by before ORPHANS");
    return report;
  }
  _kept_orphans(m->analysis, m->facts, m->dropped);
  m->analysis.finish();
  _report_problems(m->analysis.take_report(), report);
  return report;
}

Result<VerifyReport> verify_dump(const std::string& path, const VerifyOptions& opts) {
  VerifyReport report;
  report.path = path;
  TRY(open_dump_file(path));  // refused before any pass: an unreadable file is not a bad dump
  DumpRules rules(true);
  std::map<Ino, StagedOrphan> dropped;
  std::optional<FsckAnalysis> analysis;
  analysis.emplace(k_dump_prefix);
  VerifySink facts(Pass::Facts, rules, *analysis, dropped);
  // An incremental dump goes to IncrementalRestore, with no server: the
  // record rules restore applies to it.
  RestoreOptions inc_opts;
  inc_opts.dry_run = true;
  inc_opts.limits = opts.limits;
  Progress quiet("verify", 0, "keys", true);
  IncrementalRestore inc(nullptr, nullptr, inc_opts, quiet);
  ChooseSink choose(facts, inc);
  auto trailer = _pass(path, choose, opts, &report.compression);
  report.passes = 1;
  if (inc.active()) {
    _report_incremental(report, inc, trailer);
    return report;
  }
  report.source_prefix = rules.source_prefix();
  if (trailer.ok()) {
    if (Status fin = rules.finish(); !fin.ok()) {
      report.refusal = "dump: " + fin.error().message;
    }
  } else {
    report.refusal = trailer.error().message;
  }
  if (!report.refusal.empty()) {
    return report;
  }
  report.trailer = *trailer;
  TRY(_analyse_full(path, opts, rules, facts, analysis, dropped, report));
  return report;
}

namespace {

// A metadata key of the digest, as its kind and inode: parse_relative_key
// reads only canonical names, so each key has one (and its name is not
// held, for what a chain's state costs is this map's per key).
struct DigestKey {
  KeyKind kind = KeyKind::Unknown;
  Ino ino = 0;
  bool operator==(const DigestKey&) const = default;
};
struct DigestKeyHash {
  std::size_t operator()(const DigestKey& k) const noexcept {
    return std::hash<Ino>{}(k.ino) * 31 + static_cast<std::size_t>(k.kind);
  }
};

// The state a chain leaves, as far as the digest and the link need it:
// each metadata key's sum of terms, their sum, the SB's snapshot_id.
struct ChainState {
  std::unordered_map<DigestKey, DigestSum::Term, DigestKeyHash> keys;
  DigestSum sum;
  std::string snapshot_id;
  std::string block_size;        // the superblock's, as the files so far leave it
  std::string other_block_size;  // a link's that is not its base's (restore refuses it)
};

// Applies one dump's records to the state: a key written replaces the
// key's terms, a deletion takes them out, unless the dump writes that key
// too (restore deletes first: fsck_layers.hpp).
// With an index, an incremental's keys are named in it as layer `layer`
// (fsck_layers.hpp).
// `keep`: a later file of the chain applies to the state this one leaves,
// so each key's terms are kept for it; else (the chain's last file, as a
// lone full dump is) only their sum, and memory holds nothing per key.
class ChainSink : public dump::Sink {
 public:
  ChainSink(ChainState& s, LayerIndex* index, std::uint32_t layer, bool keep)
      : m_s(s), m_index(index), m_layer(layer), m_keep(keep) {}
  Status on_header(const dump::Header& h) override {
    // Only an incremental has deletions (the reader refuses one in a full
    // dump), so only its writes are remembered for them: a chain's full
    // dump, the largest file, keeps just each key's terms.
    m_deletes = h.version == dump::k_version_incremental;
    return {};
  }
  Status on_string(std::string_view key, std::string&&) override {  // blocks: not in the digest
    name(key, false);
    return {};
  }
  Status on_hash_begin(std::string_view key) override {
    name(key, false);
    const ParsedKey pk = parse_relative_key(key);
    m_key = {pk.kind, pk.ino};
    m_key_sum = DigestSum{};
    if (m_key.kind == KeyKind::Superblock) {
      m_s.snapshot_id.clear();
    }
    return {};
  }
  Status on_hash_fields(std::string_view key, Pairs&& pairs) override {
    for (const auto& [f, v] : pairs) {
      if (digest_counts(m_key.kind, f)) {
        m_key_sum.add(key, f, v);
      }
      if (m_key.kind == KeyKind::Superblock && f == "snapshot_id") {
        m_s.snapshot_id = v;
      }
      if (m_key.kind == KeyKind::Superblock && f == "block_size") {
        if (!m_s.block_size.empty() && v != m_s.block_size) {
          m_s.other_block_size = v;
        } else {
          m_s.block_size = v;
        }
      }
    }
    return {};
  }
  Status on_hash_end(std::string_view /*key*/) override {
    if (!digest_has_kind(m_key.kind)) {
      return {};  // not a key of the digest
    }
    forget(m_key);
    m_s.sum.add(m_key_sum.value());
    if (m_keep) {
      m_s.keys.emplace(m_key, m_key_sum.value());
    }
    if (m_deletes) {  // (its deletions ask)
      m_written.insert(m_key);
    }
    return {};
  }
  Status on_delete(std::string_view key) override {
    name(key, true);
    const ParsedKey pk = parse_relative_key(key);
    if (const DigestKey k{pk.kind, pk.ino}; m_written.count(k) == 0) {
      forget(k);
    }
    return {};
  }

 private:
  void name(std::string_view key, bool deleted) {
    if (m_index != nullptr) {
      m_index->name(parse_relative_key(key), m_layer, deleted);
    }
  }
  void forget(const DigestKey& key) {
    if (auto it = m_s.keys.find(key); it != m_s.keys.end()) {
      m_s.sum.sub(it->second);
      m_s.keys.erase(it);
    }
  }

  ChainState& m_s;
  LayerIndex* m_index;
  std::uint32_t m_layer;
  bool m_keep;
  bool m_deletes = false;
  DigestKey m_key;
  DigestSum m_key_sum;
  std::unordered_set<DigestKey, DigestKeyHash> m_written;  // the digest's keys this dump writes
};

// One pass over a file of a chain (layer `layer`, fsck_layers.hpp) for the
// analysis of the state the chain leaves: pass 1 (`inodes`) the inodes the
// layer decides, and its superblock and ORPHANS kept; pass 2 its DIR, XATTR
// and BLK keys.
class LayerSink : public dump::Sink {
 public:
  LayerSink(bool inodes, std::uint32_t layer, const LayerIndex& index, FsckAnalysis& a)
      : m_inodes(inodes), m_layer(layer), m_index(index), m_a(a) {}

  std::optional<Pairs> sb;
  std::optional<Pairs> orphans;
  dump::Header header;

  Status on_header(const dump::Header& h) override {
    header = h;
    return {};
  }
  Status on_string(std::string_view key, std::string&& value) override {
    ParsedKey pk = parse_relative_key(key);
    if (!m_inodes && pk.kind == KeyKind::Block && m_index.decides(pk, m_layer)) {
      if (fsck_detail::Node* n = m_a.sub_key(m_keys.absolute(key), pk)) {
        m_a.block(*n, m_keys.absolute(key), pk.index, value.size());
      }
    }
    return check_cancel();
  }
  Status on_hash_begin(std::string_view key) override {
    m_pk = parse_relative_key(key);
    m_take = m_index.decides(m_pk, m_layer);
    m_pairs.clear();
    m_node = nullptr;
    if (m_take && !m_inodes && (m_pk.kind == KeyKind::Dir || m_pk.kind == KeyKind::Xattr)) {
      m_node = m_a.sub_key(m_keys.absolute(key), m_pk);
    }
    return check_cancel();
  }
  Status on_hash_fields(std::string_view key, Pairs&& pairs) override {
    if (m_take && m_inodes) {
      m_pairs.insert(m_pairs.end(), pairs.begin(), pairs.end());
    } else if (m_node != nullptr && m_pk.kind == KeyKind::Dir) {
      m_a.entries_seen(*m_node, pairs.size());
      for (const auto& [name, value] : pairs) {
        m_a.entry(m_node->ino, name, value);
      }
    } else if (m_node != nullptr) {
      for (const auto& [name, value] : pairs) {
        m_a.xattr(*m_node, m_keys.absolute(key), name, value);
      }
    }
    return {};
  }
  Status on_delete(std::string_view) override { return {}; }  // the index knows
  Status on_hash_end(std::string_view key) override {
    if (!m_take || !m_inodes) {
      return {};
    }
    if (m_pk.kind == KeyKind::Superblock) {
      sb = std::move(m_pairs);
    } else if (m_pk.kind == KeyKind::Orphans) {
      orphans = std::move(m_pairs);
    } else if (m_pk.kind == KeyKind::Inode) {
      FieldList fields(m_pairs.begin(), m_pairs.end());
      m_a.inode(m_pk.ino, m_keys.absolute(key), fields);
    }
    return {};
  }

 private:
  bool m_inodes;
  std::uint32_t m_layer;
  const LayerIndex& m_index;
  FsckAnalysis& m_a;
  Keys m_keys{k_dump_prefix};
  ParsedKey m_pk;
  bool m_take = false;
  Pairs m_pairs;
  fsck_detail::Node* m_node = nullptr;
};

// One more pass over a file verify_dump read: it must be the same dump.
Status _again(VerifyReport& r, dump::Sink& sink, const VerifyOptions& opts) {
  Compression ignored = Compression::None;
  auto t = _pass(r.path, sink, opts, &ignored);
  ++r.passes;
  if (!t.ok() || t->sha256 != r.trailer.sha256) {
    return make_error(EIO, r.path + " changed while it was verified (pass " + std::to_string(r.passes) +
                               (t.ok() ? " read another dump)" : ": " + t.error().message + ")"));
  }
  return {};
}

// fsck's analysis of the state `layers` (a full dump, then incrementals)
// leave, as the restore of the last one judges it before its apply: its
// superblock marked as restored, no orphan dropped. The problems go to the
// last file's report.
Status _fsck_link(const std::vector<VerifyReport*>& layers, const LayerIndex& index, const VerifyOptions& opts) {
  FsckAnalysis a(k_dump_prefix);
  SbFields sb;
  std::string source;
  std::int64_t dumped_ns = 0;
  Pairs orphans;
  for (std::uint32_t i = 0; i < layers.size(); ++i) {
    LayerSink sink(true, i, index, a);
    TRY(_again(*layers[i], sink, opts));
    if (sink.sb) {
      sb = std::move(*sink.sb);
      source = sink.header.prefix;
      dumped_ns = parse_dump_time_ns(sink.header.created);
    }
    if (sink.orphans) {
      orphans = std::move(*sink.orphans);
    }
  }
  auto origin = _field(sb, "origin");
  apply_superblock_marks(sb, restored_superblock_marks(origin ? std::optional<std::string>(*origin) : std::nullopt,
                                                       source, source, dumped_ns, false));
  a.superblock(std::move(sb));
  a.end_of_inodes();
  for (std::uint32_t i = 0; i < layers.size(); ++i) {
    LayerSink sink(false, i, index, a);
    TRY(_again(*layers[i], sink, opts));
  }
  for (const auto& [field, session] : orphans) {
    a.orphan(field, session, false);
  }
  a.finish();
  FsckReport fsck = a.take_report();
  VerifyReport& last = *layers.back();
  last.inodes = fsck.inodes;
  const Keys keys(k_dump_prefix);
  for (FsckProblem& p : fsck.problems) {
    if (auto rel = keys.relative(p.key)) {
      p.key = std::string(*rel);
    }
    last.problems.push_back(std::move(p));
  }
  return {};
}

// Whether the incremental `r` applies to what `before` leaves (`state`);
// else why not, in r.chain.
bool _link_holds(VerifyReport& r, const ChainState& state, const std::string& before) {
  r.base_checked = true;
  if (r.base_snapshot_id != state.snapshot_id) {
    r.chain.push_back("its base is snapshot " + redisfs::quoted(r.base_snapshot_id) + ", but " + before +
                      " leaves snapshot " + redisfs::quoted(state.snapshot_id));
  } else if (r.base_digest != state.sum.hex()) {
    r.chain.push_back("its base digest " + r.base_digest.substr(0, 16) + "... is not the state digest of what " +
                      before + " leaves (" + state.sum.hex().substr(0, 16) +
                      "...): the same snapshot id, another state");
  }
  return r.chain.empty();
}

}  // namespace

Status verify_chain(std::vector<VerifyReport>& reports, const VerifyOptions& opts) {
  std::optional<ChainState> state;
  std::string before;  // the file that left `state`
  // The files since the chain's full dump (fsck_layers.hpp's layers), and
  // whether each was sound: restore gets that far only then.
  std::vector<VerifyReport*> layers;
  LayerIndex index;
  bool sound = false;
  for (std::size_t at = 0; at < reports.size(); ++at) {
    VerifyReport& r = reports[at];
    if (!r.refusal.empty()) {
      state.reset();
      continue;
    }
    if (!r.incremental) {
      state.emplace();
      layers.clear();
      index = LayerIndex{};
    } else if (!state) {
      continue;  // nothing before it to check its base against
    } else if (!_link_holds(r, *state, before)) {
      state.reset();  // restore would refuse it: nothing after it can be checked
      continue;
    }
    sound = (layers.empty() || sound) && r.sound();
    layers.push_back(&r);
    const bool followed = at + 1 < reports.size() && reports[at + 1].incremental;
    ChainSink sink(*state, r.incremental ? &index : nullptr, static_cast<std::uint32_t>(layers.size() - 1), followed);
    TRY(_again(r, sink, opts));
    if (!state->other_block_size.empty()) {
      r.chain.push_back("its block size " + printable(cut(state->other_block_size, 20)) + " is not that of what " +
                        before + " leaves (" + state->block_size + "): restore refuses it");
      state.reset();
      continue;
    }
    index.seal();
    if (r.incremental && sound) {
      TRY(_fsck_link(layers, index, opts));
      if (!r.problems.empty()) {
        state.reset();  // restore refuses it too
        continue;
      }
    }
    before = r.path;
  }
  return {};
}

std::vector<std::string> verify_problem_lines(const VerifyReport& report) {
  std::vector<std::string> out;
  if (!report.refusal.empty()) {
    out.push_back(report.path + ": " + report.refusal);
  }
  for (const FsckProblem& p : report.problems) {
    FsckProblem shown = p;
    shown.repairable = false;  // nothing is repaired here: no "--repair deletes" suffix
    out.push_back(report.path + ": " + fsck_problem_line(shown));
  }
  for (const std::string& line : report.chain) {
    out.push_back(report.path + ": " + line);
  }
  return out;
}

std::string verify_as_json(const std::vector<VerifyReport>& reports, const std::vector<std::string>& errors) {
  using Json = nlohmann::ordered_json;
  Json files = Json::array();
  for (const VerifyReport& r : reports) {
    Json j;
    j["file"] = r.path;
    j["sound"] = r.sound();
    j["prefix"] = r.source_prefix;
    j["compression"] = compression_name(r.compression);
    j["records"] = r.trailer.records;
    j["bytes"] = r.trailer.bytes;
    j["sha256"] = r.trailer.sha256;
    j["inodes"] = r.inodes;
    j["incremental"] = r.incremental;
    if (r.incremental) {
      j["base_snapshot_id"] = r.base_snapshot_id;
      j["base_checked"] = r.base_checked;
    }
    j["refusal"] = r.refusal;
    Json problems = Json::array();
    for (const FsckProblem& p : r.problems) {
      problems.push_back(Json{{"kind", p.kind}, {"key", p.key}, {"detail", p.detail}});
    }
    j["problems"] = std::move(problems);
    j["chain"] = r.chain;
    files.push_back(std::move(j));
  }
  Json doc;
  doc["files"] = std::move(files);
  doc["errors"] = errors;
  doc["sound"] =
      errors.empty() && std::all_of(reports.begin(), reports.end(), [](const VerifyReport& r) { return r.sound(); });
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace redisfs
