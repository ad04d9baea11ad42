#include "store.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <random>
#include <thread>

#include "fs_usage.hpp"
#include "install.hpp"

namespace redisfs {

namespace {

constexpr std::uint64_t k_truncate_step_blocks = 1024;
constexpr std::uint64_t k_alloc_batch = 256;
constexpr std::size_t k_name_cache_max = 65536;
constexpr int k_retry_max = 16;
constexpr std::int64_t k_relatime_ns = 24LL * 3600 * 1000000000;
constexpr std::size_t k_inline_max = 16 * 1024;
// unlink.lua frees a file nobody holds open at once when it has at most
// this many blocks (1 MiB at the default block size); a bigger one is an
// orphan, freed in truncate steps by purge.
constexpr std::uint64_t k_unlink_free_blocks = 16;
constexpr std::int64_t k_security_recheck_ns = 1000000000;

std::string _random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string out;
  static const char* k_hex = "0123456789abcdef";
  for (std::size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rd()) & 0xffu;
    out.push_back(k_hex[b >> 4]);
    out.push_back(k_hex[b & 15]);
  }
  return out;
}

std::string _str(std::uint64_t n) { return std::to_string(n); }

bool _parse_u64(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// The rules live with the inode codec (inode.hpp), which fsck shares.
Status _check_name(std::string_view name) { return check_file_name(name); }
Status _check_xattr_name(std::string_view name) { return check_xattr_name(name); }

bool _is_retry(ReplyView r) { return r.is_array() && r.size() >= 1 && r[0].str() == "RETRY"; }

// At most 64 bytes of a value, for a message (a message is one bounded
// line, whatever a hand-edited key holds).
std::string _bounded(std::string_view text) {
  constexpr std::size_t k_max = 64;
  std::string out;
  for (char ch : text.substr(0, k_max)) {
    out.push_back(ch >= 0x20 && ch < 0x7f ? ch : '?');
  }
  if (text.size() > k_max) {
    out += "...";
  }
  return out;
}

// What is wrong with a reply that should have been `want`: the server's
// error (WRONGTYPE: a key of another type) or the type it has.
std::string _reply_problem(ReplyView r, std::string_view want) {
  switch (r.type()) {
    case ReplyView::Type::Error:
      return "not " + std::string(want) + ": " + _bounded(r.str());
    case ReplyView::Type::Array:
      return "an array where " + std::string(want) + " was expected";
    case ReplyView::Type::Integer:
      return "an integer where " + std::string(want) + " was expected";
    case ReplyView::Type::Nil:
      return "nothing where " + std::string(want) + " was expected";
    default:
      return "an odd reply where " + std::string(want) + " was expected";
  }
}

std::uint64_t _div_ceil(std::uint64_t a, std::uint64_t b) { return a == 0 ? 0 : (a - 1) / b + 1; }

}  // namespace

Result<Attr> attr_from_reply(Ino ino, ReplyView r) {
  if (!r.is_array() || r.size() == 0) {
    return make_error(ENOENT, "no inode " + std::to_string(ino));
  }
  FieldList fields;
  fields.reserve(r.size() / 2);
  for (std::size_t i = 0; i + 1 < r.size(); i += 2) {
    fields.emplace_back(r[i].str(), r[i + 1].str());
  }
  return decode_attr(ino, fields);
}

namespace {

// The attributes of `ino` at index `at` of a change script's array reply,
// for the AttrCache; none when the reply is not that shape (RETRY).
std::vector<Attr> _fresh_attr(Ino ino, ReplyView v, std::size_t at) {
  if (!v.is_array() || v.size() <= at || v[0].str() == "RETRY") {
    return {};
  }
  auto attr = attr_from_reply(ino, v[at]);
  if (!attr) {
    return {};
  }
  return {std::move(*attr)};
}

}  // namespace

// ---------------------------------------------------------------- open

Store::Store(Pool& pool, const std::string& prefix, StoreOptions opts)
    : m_pool(pool),
      m_keys(prefix),
      m_opts(std::move(opts)),
      m_attrs(m_opts.attr_cache_seconds),
      m_dir_names(m_opts.names_cache_seconds) {
  if (m_opts.session.empty()) {
    m_opts.session = _random_hex(8);
  }
}

Store::~Store() {
  if (m_registered) {
    (void)end_session();  // best effort: the key expires anyway
  }
}

Result<std::unique_ptr<Store>> Store::open(Pool& pool, const std::string& prefix, StoreOptions opts) {
  TRY(validate_prefix(prefix));
  std::unique_ptr<Store> s(new Store(pool, prefix, std::move(opts)));
  // Keyless commands (SCAN, WAIT...) go to this filesystem's slot; changes
  // whose reply is lost are checked in this mount's outcome records.
  pool.route_keyless(s->m_keys.sb());
  if (!s->m_opts.read_only) {
    pool.set_op_log(s->m_keys.op_log(s->m_opts.session));
  }
  TRY_ASSIGN(auto c, pool.acquire());
  if (c->cluster()) {
    TRY(check_cluster_prefix(prefix));
  }
  s->m_master_id = c->server_id();
  if (s->m_opts.sync_replicas < 0) {
    s->m_opts.sync_replicas = 0;
    auto r = c->command({"CONFIG", "GET", "min-replicas-to-write"});
    if (r.ok() && r->view().size() == 2) {
      s->m_opts.sync_replicas = static_cast<int>(r->view()[1].as_int().value_or(0));
    }
  }
  // Alive from the start: another mount's purge_dead_orphans must never
  // take this one's orphans for a dead mount's, and a restore, copy or
  // delete that reserves the prefix after this point sees the mount and
  // leaves it alone (install.hpp). A read-only open (perhaps on a replica)
  // may fail to say so; it has no orphans to protect.
  if (Status hb = s->heartbeat(); !hb.ok() && !s->m_opts.read_only) {
    return std::move(hb).error();
  }
  // A restore or copy killed while moving its keys in left a journal:
  // finish its move first (EBUSY while the tool itself still runs).
  TRY(finish_install_reserved(pool, s->m_keys));
  TRY_ASSIGN(auto holder, reservation_holder(*c, s->m_keys));
  if (holder) {
    return make_error(EBUSY, "prefix '" + prefix + "' is reserved by a running " + *holder +
                                 ", which is filling, replacing or removing it; mount it when that has ended");
  }
  if (!s->m_opts.read_only) {
    // In the register of filesystems before mkfs can make one (keys.hpp):
    // `list` reads it instead of SCANning the server. Best effort (an ACL
    // user may not write it; list then SCANs).
    (void)c->command({"SADD", k_registry_key, prefix});
  }
  TRY_ASSIGN(Reply exists, c->command({"EXISTS", s->m_keys.sb()}));
  if (exists.view().integer() == 0) {
    // A prefix with keys but no superblock is a half-restored or
    // half-deleted filesystem: never build a new one on top of it.
    std::string cursor = "0";
    std::string match = s->m_keys.match_all();
    do {
      TRY_ASSIGN(Reply r, c->command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"}));
      cursor = std::string(r.view()[0].str());
      ReplyView keys = r.view()[1];
      for (std::size_t i = 0; i < keys.size(); ++i) {
        auto rel = s->m_keys.relative(keys[i].str());
        auto kind = rel ? parse_relative_key(*rel).kind : KeyKind::Unknown;
        if (is_filesystem_key(kind) || kind == KeyKind::Unknown) {
          std::string key(keys[i].str().substr(0, 200));
          return make_error(EIO, "prefix '" + prefix + "' holds keys but no superblock (" + key +
                                     "): an interrupted restore or delete? Check it with `redisfs-snap fsck " + prefix +
                                     "` or remove it with `redisfs-snap delete " + prefix + "`");
        }
      }
    } while (cursor != "0");
    if (s->m_opts.read_only || !s->m_opts.create) {
      return make_error(ENOENT, "no filesystem at prefix '" + prefix + "'");
    }
    TRY_ASSIGN(Reply made, c->eval(lua::mkfs, {s->m_keys.sb(), s->m_keys.inode(k_root_ino), s->m_keys.reserved()},
                                   {_str(s->m_opts.mkfs_block_size), _str(s->m_opts.mkfs_owner.uid),
                                    _str(s->m_opts.mkfs_owner.gid), "0755", std::to_string(k_format_version)}));
    if (made.view().integer() == -1) {
      return make_error(EBUSY, "prefix '" + prefix + "' was reserved by a restore, copy or delete as it was about to "
                                   "be created; mount it when that has ended");
    }
  }
  TRY(s->load_superblock(*c));
  if (s->m_sb.read_only && !s->m_opts.read_only && !s->m_opts.allow_snapshot_rw) {
    return make_error(EROFS, "prefix '" + prefix + "' is " + describe_snapshot(prefix, s->m_sb) +
                                 ": mount it with --read-only (or --writable-snapshot to change it anyway)");
  }
  return s;
}

Status Store::sync() {
  if (m_opts.read_only || m_opts.sync_replicas <= 0) {
    return {};
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  auto timeout = m_pool.url().timeout;
  TRY_ASSIGN(long long confirmed, c->wait_replicas(m_opts.sync_replicas, timeout));
  {
    // The changes since the last sync may have been acknowledged by a
    // master that is gone (SIGKILLed before its replicas had them): WAIT on
    // the new one cannot vouch for them.
    std::string id = c->server_id();
    std::lock_guard lock(m_sync_mutex);
    if (!id.empty() && id != m_master_id) {
      std::string was = m_master_id;
      m_master_id = id;
      if (!was.empty()) {
        return make_error(EIO, "fsync: the master changed since the last sync (a failover or a restart): changes the "
                               "old one acknowledged may be lost");
      }
    }
  }
  if (confirmed < m_opts.sync_replicas) {
    return make_error(EIO, "fsync: " + std::to_string(confirmed) + " of " + std::to_string(m_opts.sync_replicas) +
                               " replicas confirmed the changes within " +
                               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                               " s (--sync-replicas)");
  }
  return {};
}

Status Store::load_superblock(Connection& c) {
  TRY_ASSIGN(Reply r, c.command({"HGETALL", m_keys.sb()}));
  ReplyView v = r.view();
  SbFields fields;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    fields.emplace_back(v[i].str(), v[i + 1].str());
  }
  TRY_ASSIGN(m_sb, decode_superblock(m_keys.prefix(), fields));
  std::string created;
  std::string snapshot_created;
  std::string dumped;
  for (const auto& [name, value] : fields) {
    if (name == "created") {
      created = value;
    } else if (name == "snapshot_created") {
      snapshot_created = value;
    } else if (name == "dumped") {
      dumped = value;
    }
  }
  m_identity = created + '/' + snapshot_created + '/' + dumped;
  return {};
}

Status Store::check_same_filesystem() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Reply r, c->command({"HMGET", m_keys.sb(), "created", "snapshot_created", "dumped"}));
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != 3) {
    return make_error(EIO, "bad HMGET reply");
  }
  if (v[0].is_nil()) {
    return make_error(ESTALE, "the filesystem under this mount was deleted (" + m_keys.sb() + " is gone)");
  }
  std::string identity =
      std::string(v[0].str()) + '/' + std::string(v[1].str()) + '/' + std::string(v[2].str());
  if (identity != m_identity) {
    return make_error(ESTALE, "the filesystem under this mount was replaced by another one (" + m_keys.sb() +
                                  ": created/snapshot_created/dumped " + _bounded(identity) + ", not " +
                                  _bounded(m_identity) + ")");
  }
  return {};
}

std::vector<std::pair<Ino, std::string>> Store::known_names() {
  std::vector<std::pair<Ino, std::string>> out;
  std::lock_guard lock(m_names_mutex);
  out.reserve(m_names.size());
  for (const auto& [key, ino] : m_names) {
    auto slash = key.find('/');
    std::uint64_t parent = 0;
    if (slash != std::string::npos && _parse_u64(std::string_view(key).substr(0, slash), parent)) {
      out.emplace_back(parent, key.substr(slash + 1));
    }
  }
  return out;
}

Status Store::writable() const {
  if (m_opts.read_only) {
    return make_error(EROFS, "read-only mount");
  }
  return {};
}

// ---------------------------------------------------------------- helpers

Result<Reply> Store::eval_change(Connection& c, lua::ScriptId script, const std::vector<std::string>& keys,
                                 const std::vector<std::string>& args, const FreshAttrs& fresh,
                                 Ino reporting_dir) {
  // Every inode and directory a script may change is among its KEYS
  // (prelude.lua).
  std::vector<Ino> inodes;
  if (m_attrs.enabled() || m_dir_names.enabled()) {
    for (const std::string& key : keys) {
      auto rel = m_keys.relative(key);
      ParsedKey parsed = rel ? parse_relative_key(*rel) : ParsedKey{};
      if (parsed.kind == KeyKind::Inode) {
        inodes.push_back(parsed.ino);
      } else if (parsed.kind == KeyKind::Dir && parsed.ino != reporting_dir) {
        m_dir_names.forget(parsed.ino);
      }
    }
  }
  AttrCache::Change change = m_attrs.begin(inodes);
  // The runner waits out a freeze (snapshot) and outages (redis.hpp).
  auto r = c.eval(script, keys, args);
  m_attrs.end(change, r.ok() && fresh ? fresh(r->view()) : std::vector<Attr>{});
  if (!r.ok() && reporting_dir != 0) {
    m_dir_names.forget(reporting_dir);  // it may or may not have run
  }
  return r;
}

Result<Ino> Store::allocate_ino(Connection& c) {
  std::lock_guard lock(m_alloc_mutex);
  if (m_next_ino == 0 || m_next_ino > m_last_ino) {
    TRY_ASSIGN(Reply r, eval_change(c, lua::alloc, {m_keys.sb(), m_keys.freeze()}, {_str(k_alloc_batch)}));
    auto last = r.view().as_int();
    if (!last || *last < static_cast<long long>(k_alloc_batch)) {
      return make_error(EIO, "bad inode allocation reply");
    }
    m_last_ino = static_cast<Ino>(*last);
    m_next_ino = m_last_ino - k_alloc_batch + 1;
  }
  return m_next_ino++;
}

void Store::remember(Ino parent, std::string_view name, Ino ino) {
  std::string key = _str(parent) + '/' + std::string(name);
  std::lock_guard lock(m_names_mutex);
  if (m_names.size() >= k_name_cache_max) {
    m_names.clear();
  }
  m_names[std::move(key)] = ino;
}

void Store::forget_name(Ino parent, std::string_view name) {
  std::string key = _str(parent) + '/' + std::string(name);
  std::lock_guard lock(m_names_mutex);
  m_names.erase(key);
}

Result<Ino> Store::entry_ino(Connection& c, Ino parent, std::string_view name, bool use_cache) {
  if (use_cache) {
    std::string key = _str(parent) + '/' + std::string(name);
    std::lock_guard lock(m_names_mutex);
    auto it = m_names.find(key);
    if (it != m_names.end()) {
      return it->second;
    }
  }
  TRY_ASSIGN(Reply r, c.command({"HGET", m_keys.dir(parent), name}));
  std::uint64_t ino = 0;
  if (r.view().is_nil()) {
    return make_error(ENOENT, "no such entry");
  }
  if (!_parse_u64(r.view().str(), ino) || ino == 0) {
    return make_error(EIO, "directory " + _str(parent) + ": malformed entry");
  }
  return ino;
}

Result<std::vector<Ino>> Store::ancestors(Connection& c, Ino dir) {
  std::vector<Ino> chain{dir};
  Ino cur = dir;
  while (cur != k_root_ino) {
    if (chain.size() > 8192) {
      // A cycle of 'parent' fields (a hand-edited or damaged filesystem):
      // EIO, which the daemon logs, not a routine ELOOP.
      return make_error(EIO, "directory " + _str(dir) + ": its chain of 'parent' fields does not reach the root");
    }
    TRY_ASSIGN(Reply r, c.command({"HMGET", m_keys.inode(cur), "type", "parent"}));
    ReplyView v = r.view();
    std::uint64_t p = 0;
    if (!v.is_array() || v.size() != 2 || v[0].is_nil()) {
      return make_error(ENOENT, "directory " + _str(cur) + " was removed");
    }
    if (v[0].str() != "dir") {
      // A damaged or hand-edited filesystem: EIO, which the daemon logs.
      return make_error(EIO, "directory " + _str(dir) + ": inode " + _str(cur) + " in its chain of parents is a " +
                                 _bounded(v[0].str()) + ", not a directory");
    }
    if (!_parse_u64(v[1].str(), p) || p == 0) {
      return make_error(EIO, "directory " + _str(cur) + ": bad 'parent' field '" + _bounded(v[1].str()) + "'");
    }
    cur = p;
    chain.push_back(cur);
  }
  return chain;
}

// ---------------------------------------------------------------- reads

Result<Attr> Store::getattr(Ino ino, double* age) {
  if (age != nullptr) {
    *age = 0;
    if (auto hit = m_attrs.get(ino)) {
      *age = hit->age;
      return hit->attr;
    }
  }
  if (auto mine = gathered_attr(ino)) {
    return *mine;  // what this mount changed is newer than the server's
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Reply r, c->command({"HGETALL", m_keys.inode(ino)}));
  return attr_from_reply(ino, r.view());
}

Result<Attr> Store::lookup(Ino parent, std::string_view name, double* age) {
  Result<Attr> attr = lookup_server(parent, name, age);
  if (attr.ok()) {
    overlay_gathered(*attr);
  }
  return attr;
}

Result<Attr> Store::lookup_server(Ino parent, std::string_view name, double* age) {
  if (name.size() > k_name_max) {
    return make_error(ENAMETOOLONG, "file name longer than 255 bytes");
  }
  if (name == ".") {
    return getattr(parent);
  }
  if (age != nullptr) {
    *age = 0;
    if (name != "..") {
      if (auto known = m_dir_names.absent(parent, name)) {
        *age = *known;
        return make_error(ENOENT, "no such entry");
      }
    }
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  if (name == "..") {
    TRY_ASSIGN(Reply r, c->command({"HGET", m_keys.inode(parent), "parent"}));
    std::uint64_t p = 0;
    if (r.view().is_nil() || !_parse_u64(r.view().str(), p)) {
      return make_error(ENOENT, "no parent");
    }
    TRY_ASSIGN(Reply a, c->command({"HGETALL", m_keys.inode(p)}));
    return attr_from_reply(p, a.view());
  }
  // With a remembered guess, the entry and the guessed inode come back in
  // one round trip; the guess is only used if the entry still names it.
  Ino guess = 0;
  {
    std::string key = _str(parent) + '/' + std::string(name);
    std::lock_guard lock(m_names_mutex);
    auto it = m_names.find(key);
    if (it != m_names.end()) {
      guess = it->second;
    }
  }
  c->append({"HGET", m_keys.dir(parent), name});
  if (guess != 0) {
    c->append({"HGETALL", m_keys.inode(guess)});
  }
  auto entry = c->read_reply();
  Result<Reply> guessed = guess != 0 ? c->read_reply() : Result<Reply>(Reply());
  TRY(entry);
  if (entry->view().is_nil()) {
    forget_name(parent, name);
    return make_error(ENOENT, "no such entry");
  }
  std::uint64_t ino = 0;
  if (!_parse_u64(entry->view().str(), ino) || ino == 0) {
    return make_error(EIO, "directory " + _str(parent) + ": malformed entry");
  }
  if (ino == guess && guessed.ok()) {
    return attr_from_reply(ino, guessed->view());
  }
  TRY_ASSIGN(Reply a, c->command({"HGETALL", m_keys.inode(ino)}));
  auto attr = attr_from_reply(ino, a.view());
  if (attr.ok()) {
    remember(parent, name, ino);
  }
  return attr;
}

Result<std::string> Store::readlink(Ino ino) {
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Reply r, c->command({"HMGET", m_keys.inode(ino), "type", "target"}));
  ReplyView v = r.view();
  if (v.size() < 2 || v[0].is_nil()) {
    return make_error(ENOENT, "no inode " + _str(ino));
  }
  if (v[0].str() != "symlink") {
    return make_error(EINVAL, "not a symlink");
  }
  return std::string(v[1].str());
}

Status Store::read(Ino ino, std::uint64_t offset, std::size_t size, std::string& out) {
  ReadPieces got;
  TRY(read_pieces(ino, offset, size, got));
  out.clear();
  out.reserve(got.size);
  for (std::string_view piece : got.pieces) {
    out.append(piece);
  }
  return {};
}

// What holes and short blocks read as: pieces of at most this many zeros.
static constexpr std::size_t k_zeros = 256 * 1024;
static const std::string k_zero_bytes(k_zeros, '\0');

Status Store::read_pieces(Ino ino, std::uint64_t offset, std::size_t size, ReadPieces& out) {
  out.pieces.clear();
  out.size = 0;
  if (size == 0) {
    return {};
  }
  if (m_gathered_count.load() != 0) {
    TRY(settle(ino));  // this mount reads what it wrote
  }
  const std::uint64_t bs = m_sb.block_size;
  if (offset >= k_max_file_size) {
    return {};
  }
  size = static_cast<std::size_t>(std::min<std::uint64_t>(size, k_max_file_size - offset));
  const std::uint64_t first = offset / bs;
  const std::uint64_t last = (offset + size - 1) / bs;
  // One MULTI/EXEC in one round trip: the size and the bytes of one
  // instant (a concurrent write is seen whole or not at all), and the
  // bytes never pass through Lua. A full server refuses every command
  // queued in a MULTI (it may grow without bound): then read.lua, a
  // no-writes script that a full server runs, reads the same at once.
  TRY_ASSIGN(auto c, m_pool.acquire());
  c->append({"MULTI"});
  c->append({"HMGET", m_keys.inode(ino), "type", "size", "atime", "mtime", "ctime"});
  std::vector<std::string> block_keys;
  std::vector<std::string> ranges;
  for (std::uint64_t b = first; b <= last; ++b) {
    std::uint64_t lo = b == first ? offset - b * bs : 0;
    std::uint64_t hi = b == last ? offset + size - 1 - b * bs : bs - 1;
    block_keys.push_back(m_keys.block(ino, b));
    ranges.push_back(_str(lo));
    ranges.push_back(_str(hi));
    c->append({"GETRANGE", block_keys.back(), ranges[ranges.size() - 2], ranges.back()});
  }
  c->append({"EXEC"});
  std::optional<Error> failure;
  Reply exec;
  while (c->pending() > 0) {
    auto r = c->read_reply();
    if (!r.ok()) {
      if (!failure) {
        failure = std::move(r).error();
      }
    } else if (c->pending() == 0) {
      exec = std::move(r).value();
    }
  }
  if (failure && (failure->code == ENOSPC || failure->fault != Fault::None)) {
    // (A transaction is not retried piece by piece: through an outage,
    // read.lua is, like every script that changes nothing.)
    std::vector<std::string> keys{m_keys.inode(ino)};
    keys.insert(keys.end(), block_keys.begin(), block_keys.end());
    auto r = c->eval(lua::read, keys, ranges);
    if (!r) {
      return make_error(r.code(), "inode " + _str(ino) + ": " + r.error().message);
    }
    failure.reset();
    exec = std::move(r).value();
  }
  if (failure) {
    return std::move(*failure);
  }
  out.reply = std::move(exec);  // (the pieces point into it)
  ReplyView v = out.reply.view();
  if (!v.is_array() || v.size() != 2 + (last - first)) {
    return make_error(EIO, "inode " + _str(ino) + ": bad read reply");
  }
  ReplyView meta = v[0];
  if (!meta.is_array() || meta.size() != 5) {
    return make_error(EIO, "inode " + _str(ino) + ": " + _reply_problem(meta, "a hash"));
  }
  if (meta[0].is_nil()) {
    return make_error(ESTALE, "inode " + _str(ino) + " was removed");
  }
  for (std::uint64_t b = first; b <= last; ++b) {
    ReplyView chunk = v[1 + (b - first)];
    if (!chunk.is_string()) {
      // A block key of another type (a hash, a list): GETRANGE answers
      // WRONGTYPE, which must never be read back as the file's bytes.
      return make_error(EIO, "inode " + _str(ino) + ": block " + _str(b) + " (" + m_keys.block(ino, b) +
                                 "): " + _reply_problem(chunk, "a string"));
    }
  }
  std::uint64_t file_size = 0;
  if (!_parse_u64(meta[1].str(), file_size) || file_size > k_max_file_size) {
    return make_error(EIO, "inode " + _str(ino) + ": bad size '" + _bounded(meta[1].str()) + "'");
  }
  std::size_t avail = file_size > offset ? static_cast<std::size_t>(std::min<std::uint64_t>(size, file_size - offset)) : 0;
  auto zeros = [&out](std::size_t n) {
    for (; n > 0; n -= std::min(n, k_zeros)) {
      out.pieces.emplace_back(k_zero_bytes.data(), std::min(n, k_zeros));
    }
  };
  std::size_t done = 0;  // bytes of the answer placed so far
  for (std::uint64_t b = first; b <= last; ++b) {
    std::string_view chunk = v[1 + (b - first)].str();
    std::uint64_t lo = b == first ? offset - b * bs : 0;
    std::uint64_t pos = b * bs + lo - offset;  // where this chunk lands in the answer
    if (pos >= avail) {
      break;
    }
    zeros(pos - done);  // the end of a short block before it
    std::size_t n = std::min<std::size_t>(chunk.size(), avail - pos);
    if (n > 0) {
      out.pieces.push_back(chunk.substr(0, n));
    }
    done = pos + n;
  }
  zeros(avail - done);
  out.size = avail;
  if (!m_opts.noatime && !m_opts.read_only) {
    // relatime, as Linux mounts by default: record an access when the last
    // one is older than the last change, or a day old.
    std::int64_t atime = 0;
    std::int64_t mtime = 0;
    std::int64_t ctime = 0;
    std::from_chars(meta[2].str().data(), meta[2].str().data() + meta[2].str().size(), atime);
    std::from_chars(meta[3].str().data(), meta[3].str().data() + meta[3].str().size(), mtime);
    std::from_chars(meta[4].str().data(), meta[4].str().data() + meta[4].str().size(), ctime);
    if (atime <= mtime || atime <= ctime || now_ns() - atime > k_relatime_ns) {
      auto t = c->eval(lua::touch_atime, {m_keys.freeze(), m_keys.inode(ino)}, {});
      (void)t;  // best effort: an access time is not worth failing a read
    }
  }
  return {};
}

Result<DirPage> Store::readdir(Ino dir, std::uint64_t cursor, std::size_t max, bool plus) {
  TRY_ASSIGN(auto c, m_pool.acquire());
  std::string cur = _str(cursor);
  std::string count = _str(std::max<std::size_t>(max, 1));
  TRY_ASSIGN(Reply r, c->command({"HSCAN", m_keys.dir(dir), cur, "COUNT", count}));
  ReplyView v = r.view();
  DirPage page;
  if (!v.is_array() || v.size() != 2 || !_parse_u64(v[0].str(), page.next_cursor)) {
    return make_error(EIO, "directory " + _str(dir) + ": bad HSCAN reply");
  }
  ReplyView items = v[1];
  page.entries.reserve(items.size() / 2);
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    DirEntry e;
    e.name = std::string(items[i].str());
    if (!_parse_u64(items[i + 1].str(), e.ino) || e.ino == 0) {
      continue;  // fsck reports it; a listing should not fail for it
    }
    page.entries.push_back(std::move(e));
  }
  // Types (or whole attributes) in one more round trip for the page.
  for (const auto& e : page.entries) {
    if (plus) {
      c->append({"HGETALL", m_keys.inode(e.ino)});
    } else {
      c->append({"HGET", m_keys.inode(e.ino), "type"});
    }
  }
  std::vector<DirEntry> kept;
  kept.reserve(page.entries.size());
  std::optional<Error> failure;
  for (auto& e : page.entries) {
    auto a = c->read_reply();
    if (!a.ok()) {
      if (!failure) {
        failure = std::move(a).error();
      }
      continue;
    }
    if (plus) {
      auto attr = attr_from_reply(e.ino, a->view());
      if (!attr.ok()) {
        continue;  // removed between the two round trips
      }
      e.type = attr->mode & S_IFMT;
      e.attr = std::move(attr).value();
      overlay_gathered(*e.attr);
      remember(dir, e.name, e.ino);
    } else {
      if (a->view().is_nil()) {
        continue;
      }
      auto t = type_bits(a->view().str());
      e.type = t ? *t : 0;
    }
    kept.push_back(std::move(e));
  }
  if (failure) {
    return std::move(*failure);
  }
  page.entries = std::move(kept);
  return page;
}

bool Store::security_xattrs_possible(Connection& c) {
  std::int64_t now = now_ns();
  if (now < m_security_checked_until.load()) {
    return m_security_possible.load();
  }
  auto r = c.command({"HEXISTS", m_keys.sb(), "security_xattrs"});
  bool possible = !r.ok() || r->view().integer() != 0;
  m_security_possible = possible;
  m_security_checked_until = now + k_security_recheck_ns;
  return possible;
}

Result<std::string> Store::getxattr(Ino ino, std::string_view name) {
  TRY(_check_xattr_name(name));
  TRY_ASSIGN(auto c, m_pool.acquire());
  // The kernel asks for security.capability before every write, ls -l for
  // security.selinux of every entry: answer from the superblock's flag
  // (rechecked each second) while no file has ever had a security.* one.
  // Then a filesystem without security labels says so for the SELinux one,
  // as filesystems without label support do: ls, find and tar remember
  // EOPNOTSUPP for the whole device and stop asking for every file.
  if (name.starts_with("security.") && !security_xattrs_possible(*c)) {
    if (name == "security.selinux") {
      return make_error(EOPNOTSUPP, "no security labels on this filesystem");
    }
    return make_error(ENODATA, "no such attribute");
  }
  c->append({"EXISTS", m_keys.inode(ino)});
  c->append({"HGET", m_keys.xattr(ino), name});
  TRY_ASSIGN(auto replies, c->read_all());
  if (replies[0].view().integer() == 0) {
    return make_error(ENOENT, "no inode " + _str(ino));
  }
  if (replies[1].view().is_nil()) {
    return make_error(ENODATA, "no such attribute");
  }
  return std::string(replies[1].view().str());
}

Result<std::vector<std::string>> Store::listxattr(Ino ino) {
  TRY_ASSIGN(auto c, m_pool.acquire());
  c->append({"EXISTS", m_keys.inode(ino)});
  c->append({"HKEYS", m_keys.xattr(ino)});
  TRY_ASSIGN(auto replies, c->read_all());
  if (replies[0].view().integer() == 0) {
    return make_error(ENOENT, "no inode " + _str(ino));
  }
  std::vector<std::string> names;
  ReplyView v = replies[1].view();
  names.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    names.emplace_back(v[i].str());
  }
  return names;
}

static std::uint64_t _info_field(std::string_view info, std::string_view field) {
  std::string needle = "\n" + std::string(field) + ":";
  auto pos = info.find(needle);
  if (pos == std::string_view::npos) {
    return 0;
  }
  pos += needle.size();
  std::uint64_t v = 0;
  std::from_chars(info.data() + pos, info.data() + info.size(), v);
  return v;
}

Result<StatFs> Store::statfs() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  c->append({"HMGET", m_keys.sb(), "inodes", "bytes"});
  c->append({"INFO", "memory"});
  TRY_ASSIGN(auto replies, c->read_all());
  StatFs s;
  s.block_size = m_sb.block_size;
  ReplyView sb = replies[0].view();
  if (sb.size() == 2) {
    _parse_u64(sb[0].str(), s.inodes);
    _parse_u64(sb[1].str(), s.used_bytes);
  }
  std::string info = "\n" + std::string(replies[1].view().str());
  FsUsage u = fs_usage(s.used_bytes, _info_field(info, "used_memory"), _info_field(info, "maxmemory"),
                       _info_field(info, "total_system_memory"));
  s.total_bytes = u.size;
  s.free_bytes = u.free;
  return s;
}

// ---------------------------------------------------------------- changes

Result<Attr> Store::create_node(Ino parent, std::string_view name, std::string_view type, std::uint32_t mode,
                                std::uint64_t rdev, std::string_view target, const Caller& who, bool open,
                                bool gather) {
  TRY(writable());
  TRY(_check_name(name));
  if (name == "." || name == "..") {
    return make_error(EEXIST, "file exists");
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Ino ino, allocate_ino(*c));
  std::vector<std::string> keys{m_keys.sb(), m_keys.freeze(), m_keys.dir(parent), m_keys.inode(parent),
                                m_keys.inode(ino)};
  std::vector<std::string> args{std::string(name), std::string(type), format_mode(mode), _str(who.uid),
                                _str(who.gid),     _str(rdev),         std::string(target), _str(ino),
                                _str(parent)};
  if (open) {
    keys.push_back(m_keys.open(ino));
    args.push_back(m_opts.session);
  }
  const auto sent = DirNames::Clock::now();
  std::vector<Attr> fresh;
  TRY_ASSIGN(Reply r, eval_change(*c, lua::create, keys, args, [parent, &fresh](ReplyView v) {
    fresh = _fresh_attr(parent, v, 3);
    return fresh;
  }, parent));
  ReplyView v = r.view();
  Result<Attr> attr = make_error(EIO, "bad create reply");
  if (v.is_array() && v.size() == 4) {
    // The new inode is what create.lua was asked to write, with its clock,
    // and the group and mode a setgid parent passes on.
    std::string now(v[0].str());
    std::string size = type == "symlink" ? _str(target.size()) : "0";
    FieldList fields{{"type", type},          {"mode", v[2].str()},   {"uid", args[3]}, {"gid", v[1].str()},
                     {"size", size},          {"nlink", type == "dir" ? "2" : "1"},     {"rdev", args[5]},
                     {"bytes", "0"},          {"atime", now},         {"mtime", now},   {"ctime", now}};
    if (type == "dir") {
      fields.emplace_back("parent", args[8]);
    } else if (type == "symlink") {
      fields.emplace_back("target", target);
    }
    attr = decode_attr(ino, fields);
  }
  if (!attr || fresh.empty()) {
    m_dir_names.forget(parent);
    return attr;
  }
  m_dir_names.changed(parent, fresh[0].gen, sent, name, true);
  if (attr->is_dir()) {
    m_dir_names.start(ino, attr->gen, sent);
  }
  remember(parent, name, ino);
  if (gather) {
    start_gathering(*attr);
  }
  return attr;
}

Result<Attr> Store::mknod(Ino parent, std::string_view name, std::uint32_t mode, std::uint64_t rdev,
                          const Caller& who) {
  TRY(writable());
  std::string_view type = type_name(mode);
  if (type == "dir" || type == "symlink" || (mode & S_IFMT) == 0) {
    if ((mode & S_IFMT) != 0) {
      return make_error(EINVAL, "mknod cannot make directories or symlinks");
    }
    type = "file";
  }
  bool device = type == "chr" || type == "blk";
  return create_node(parent, name, type, mode, device ? rdev : 0, {}, who);
}

Result<Attr> Store::create(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who, bool gather) {
  return create_node(parent, name, "file", mode, 0, {}, who, true, gather);
}

Status Store::open_file(Ino ino) {
  if (m_opts.read_only) {
    return {};  // nothing to protect: a read-only mount never unlinks
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY(c->eval(lua::open, {m_keys.inode(ino), m_keys.open(ino)}, {m_opts.session}));
  return {};
}

Result<bool> Store::release_file(Ino ino) {
  if (m_opts.read_only) {
    return false;
  }
  if (m_gathered_count.load() != 0) {
    // No FLUSH came: send what waits before the file may be freed. (The
    // daemon's release flushes first and logs a failure; the open count
    // goes whatever happens here.)
    (void)flush(ino);
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Reply r, c->eval(lua::release, {m_keys.open(ino), m_keys.inode(ino), m_keys.orphans()},
                              {m_opts.session, _str(ino)}));
  return r.view().integer() == 1;
}

std::vector<Result<bool>> Store::release_files(std::span<const Ino> inos) {
  std::vector<Result<bool>> out;
  out.reserve(inos.size());
  if (m_opts.read_only) {
    out.assign(inos.size(), false);
    return out;
  }
  auto c = m_pool.acquire();
  if (!c) {
    out.assign(inos.size(), c.error());
    return out;
  }
  const std::string orphans = m_keys.orphans();
  for (Ino ino : inos) {
    const std::string open = m_keys.open(ino);
    const std::string inode = m_keys.inode(ino);
    const std::string num = _str(ino);
    const std::string_view keys[] = {open, inode, orphans};
    const std::string_view args[] = {m_opts.session, num};
    (*c)->append_eval(lua::release, keys, args);
  }
  for (std::size_t i = 0; i < inos.size(); ++i) {
    auto r = (*c)->read_reply();
    if (r) {
      out.emplace_back(r->view().integer() == 1);
    } else {
      out.emplace_back(r.error());
    }
  }
  return out;
}

Result<Attr> Store::mkdir(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who) {
  return create_node(parent, name, "dir", mode, 0, {}, who);
}

Result<Attr> Store::symlink(Ino parent, std::string_view name, std::string_view target, const Caller& who) {
  TRY(writable());
  if (target.empty()) {
    return make_error(ENOENT, "empty symlink target");
  }
  if (target.size() >= 4096) {
    return make_error(ENAMETOOLONG, "symlink target longer than 4095 bytes");
  }
  return create_node(parent, name, "symlink", 0777, 0, target, who);
}

Result<Attr> Store::link(Ino ino, Ino new_parent, std::string_view new_name) {
  TRY(writable());
  TRY(_check_name(new_name));
  if (m_gathered_count.load() != 0) {
    // The link's nlink and ctime land after what waits. A refusal (a full
    // server) is kept for the file's close; the link goes on its own merits.
    (void)settle(ino);
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Reply r, eval_change(*c, lua::link,
                                  {m_keys.sb(), m_keys.freeze(), m_keys.dir(new_parent), m_keys.inode(new_parent),
                                   m_keys.inode(ino)},
                                  {std::string(new_name), _str(ino)}));
  auto attr = attr_from_reply(ino, r.view());
  if (attr.ok()) {
    remember(new_parent, new_name, ino);
  }
  return attr;
}

// unlink and rmdir: the script removes `name` from `parent` if it still
// names the inode we guess (else RETRY with the one it names). The
// parent's fields come back at `parent_at` of the reply. Returns the reply
// and the inode removed.
Result<std::pair<Reply, Ino>> Store::remove_entry(lua::ScriptId script, Ino parent, std::string_view name,
                                                  bool dir, std::size_t parent_at) {
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Ino guess, entry_ino(*c, parent, name, true));
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    std::vector<std::string> keys{m_keys.sb(), m_keys.freeze(), m_keys.dir(parent), m_keys.inode(parent),
                                  m_keys.inode(guess)};
    if (dir) {
      keys.push_back(m_keys.dir(guess));
    }
    keys.push_back(m_keys.orphans());
    std::vector<std::string> args{std::string(name), _str(guess), m_opts.session};
    if (!dir) {
      keys.push_back(m_keys.xattr(guess));
      push_free_keys(guess, keys, args);
    }
    const auto sent = DirNames::Clock::now();
    std::vector<Attr> fresh;
    TRY_ASSIGN(Reply r, eval_change(*c, script, keys, args,
                                    [&](ReplyView v) {
                                      fresh = _fresh_attr(parent, v, parent_at);
                                      return fresh;
                                    },
                                    parent));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      if (!_parse_u64(v[1].str(), guess)) {
        m_dir_names.forget(parent);
        return make_error(EIO, "bad " + std::string(lua::script_source(script).name) + " reply");
      }
      continue;  // the script changed nothing: the list still holds
    }
    if (fresh.empty()) {
      m_dir_names.forget(parent);
    } else {
      m_dir_names.changed(parent, fresh[0].gen, sent, name, false);
    }
    forget_name(parent, name);
    return std::pair<Reply, Ino>{std::move(r), guess};
  }
  return make_error(EAGAIN, std::string(lua::script_source(script).name) + ": the entry kept changing");
}

void Store::push_free_keys(Ino ino, std::vector<std::string>& keys, std::vector<std::string>& args) const {
  keys.push_back(m_keys.open(ino));
  for (std::uint64_t b = 0; b < k_unlink_free_blocks; ++b) {
    keys.push_back(m_keys.block(ino, b));
  }
  args.push_back(_str(k_unlink_free_blocks * m_sb.block_size));
}

Result<Ino> Store::unlink(Ino parent, std::string_view name) {
  TRY(writable());
  TRY(_check_name(name));
  if (m_gathered_count.load() != 0) {
    settle_all();  // the name may be a file being gathered: its nlink and ctime change
  }
  TRY_ASSIGN(auto done, remove_entry(lua::unlink, parent, name, false, 2));
  ReplyView v = done.first.view();
  if (v.size() >= 4 && v[3].str() == "FREED") {
    return Ino{0};  // nobody held it open: unlink.lua freed it
  }
  auto left = v.size() >= 2 ? v[1].as_int() : std::nullopt;
  return left && *left <= 0 ? done.second : Ino{0};
}

Result<Ino> Store::rmdir(Ino parent, std::string_view name) {
  TRY(writable());
  TRY(_check_name(name));
  if (name == ".") {
    return make_error(EINVAL, "cannot remove '.'");
  }
  if (name == "..") {
    return make_error(ENOTEMPTY, "cannot remove '..'");
  }
  TRY_ASSIGN(auto done, remove_entry(lua::rmdir, parent, name, true, 1));
  return done.second;
}

Result<Ino> Store::rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                          unsigned flags) {
  TRY(writable());
  TRY(_check_name(name));
  TRY(_check_name(new_name));
  if (flags & ~(k_rename_noreplace | k_rename_exchange) ||
      (flags & k_rename_noreplace && flags & k_rename_exchange)) {
    return make_error(EINVAL, "bad rename flags");
  }
  if (m_gathered_count.load() != 0) {
    settle_all();  // either name may be a file being gathered
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY_ASSIGN(Ino src, entry_ino(*c, parent, name, true));
  Ino dst = 0;
  {
    auto d = entry_ino(*c, new_parent, new_name, true);
    if (d.ok()) {
      dst = *d;
    } else if (d.code() != ENOENT) {
      return std::move(d).error();
    }
  }
  std::vector<Ino> chain_a;
  std::vector<Ino> chain_b;
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    std::vector<std::string> keys{m_keys.sb(),           m_keys.freeze(),       m_keys.dir(parent),
                                  m_keys.inode(parent),  m_keys.dir(new_parent), m_keys.inode(new_parent),
                                  m_keys.inode(src),     m_keys.inode(dst),     m_keys.dir(dst),
                                  m_keys.xattr(dst),     m_keys.orphans()};
    std::vector<std::string> args{std::string(name),   std::string(new_name), _str(flags),
                                  _str(src),           _str(dst),             m_opts.session,
                                  _str(chain_a.size()), _str(chain_b.size()),  _str(parent),
                                  _str(new_parent)};
    for (const auto* chain : {&chain_a, &chain_b}) {
      for (Ino i : *chain) {
        keys.push_back(m_keys.inode(i));
        args.push_back(_str(i));
      }
    }
    push_free_keys(dst, keys, args);
    TRY_ASSIGN(Reply r, eval_change(*c, lua::rename, keys, args));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      if (v.size() < 3 || !_parse_u64(v[1].str(), src) || !_parse_u64(v[2].str(), dst)) {
        return make_error(EIO, "bad rename reply");
      }
      if (v.size() >= 4 && v[3].str() == "chain") {
        // Moving a directory to another parent: prove it does not land
        // inside itself, with the current chain of ancestors.
        TRY_ASSIGN(chain_a, ancestors(*c, new_parent));
        if (flags & k_rename_exchange) {
          TRY_ASSIGN(chain_b, ancestors(*c, parent));
        }
      }
      continue;
    }
    forget_name(parent, name);
    if (flags & k_rename_exchange) {
      remember(parent, name, dst);
    }
    remember(new_parent, new_name, src);
    std::uint64_t orphan = 0;
    if (v.size() >= 2) {
      _parse_u64(v[1].str(), orphan);
    }
    return orphan;
  }
  return make_error(EAGAIN, "rename: the entries kept changing");
}

// Existing block indexes of an inode in [from, to), largest first, found by
// SCAN: for a huge sparse file, cheaper than naming every possible block.
static Result<std::vector<std::uint64_t>> _existing_blocks(Connection& c, const Keys& keys, Ino ino,
                                                           std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> found;
  std::string pattern = keys.block(ino, 0);
  pattern.replace(pattern.size() - 1, 1, "*");
  std::string cursor = "0";
  do {
    TRY_ASSIGN(Reply r, c.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "10000"}));
    cursor = std::string(r.view()[0].str());
    ReplyView list = r.view()[1];
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto rel = keys.relative(list[i].str());
      ParsedKey k = rel ? parse_relative_key(*rel) : ParsedKey{};
      if (k.kind == KeyKind::Block && k.ino == ino && k.index >= from && k.index < to) {
        found.push_back(k.index);
      }
    }
  } while (cursor != "0");
  std::sort(found.rbegin(), found.rend());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

Status Store::truncate(Connection& c, Ino ino, std::uint64_t new_size, bool final_times, bool may_scan) {
  const std::uint64_t bs = m_sb.block_size;
  TRY_ASSIGN(Reply sr, c.command({"HGET", m_keys.inode(ino), "size"}));
  if (sr.view().is_nil()) {
    return make_error(ENOENT, "no inode " + _str(ino));
  }
  std::uint64_t cur = 0;
  _parse_u64(sr.view().str(), cur);
  bool scanned = false;
  std::vector<std::uint64_t> existing;
  for (int attempt = 0; attempt < 1 << 30; ++attempt) {
    std::vector<std::string> keys{m_keys.sb(), m_keys.freeze(), m_keys.inode(ino)};
    std::vector<std::string> args;
    std::uint64_t target = new_size;
    bool last_step = true;
    std::size_t taken = 0;
    lua::ScriptId script = lua::truncate;
    if (new_size > cur) {
      // Growth has a script of its own: truncate.lua runs on a full server.
      script = lua::extend;
      args = {_str(new_size), _str(cur), final_times ? "1" : "0"};
    } else if (new_size == cur) {
      keys.push_back(m_keys.inode(ino));  // no boundary block
      args = {_str(new_size), _str(cur), "-1", final_times ? "1" : "0"};
    } else {
      std::uint64_t first_dead = _div_ceil(new_size, bs);
      std::uint64_t end = _div_ceil(cur, bs);
      std::string keep = "-1";
      if (may_scan && !scanned && end - first_dead > 64 * k_truncate_step_blocks) {
        // Purging a huge sparse file: when it has more possible blocks than
        // the server has keys, find the real ones. Only for orphans: nobody
        // can write into the range behind our back.
        TRY_ASSIGN(Reply n, c.command({"DBSIZE"}));
        if (static_cast<std::uint64_t>(n.view().integer()) < end - first_dead) {
          TRY_ASSIGN(existing, _existing_blocks(c, m_keys, ino, first_dead, end));
          scanned = true;
        }
      }
      if (scanned) {
        while (!existing.empty() && existing.front() >= end) {
          existing.erase(existing.begin());
        }
        std::size_t take = std::min<std::size_t>(existing.size(), k_truncate_step_blocks);
        if (take < existing.size()) {
          target = existing[take - 1] * bs;
          last_step = false;
        }
        if (!last_step || new_size % bs == 0) {
          keys.push_back(m_keys.inode(ino));
        } else {
          keys.push_back(m_keys.block(ino, new_size / bs));
          keep = _str(new_size % bs);
        }
        for (std::size_t i = 0; i < take; ++i) {
          keys.push_back(m_keys.block(ino, existing[i]));
        }
        taken = take;
        first_dead = end;  // nothing more to name below
      } else if (end > first_dead && end - first_dead > k_truncate_step_blocks) {
        // Too many blocks for one script: drop the last ones first; the
        // size only goes down, so every step is a consistent file.
        first_dead = end - k_truncate_step_blocks;
        target = first_dead * bs;
        last_step = false;
        keys.push_back(m_keys.inode(ino));
      } else if (new_size % bs != 0) {
        keys.push_back(m_keys.block(ino, new_size / bs));
        keep = _str(new_size % bs);
      } else {
        keys.push_back(m_keys.inode(ino));
      }
      for (std::uint64_t b = first_dead; b < end; ++b) {
        keys.push_back(m_keys.block(ino, b));
      }
      args = {_str(target), _str(cur), keep, (last_step && final_times) ? "1" : "0"};
    }
    TRY_ASSIGN(Reply r, eval_change(c, script, keys, args));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      if (v.size() < 2 || !_parse_u64(v[1].str(), cur)) {
        return make_error(EIO, "inode " + _str(ino) + ": bad " + std::string(lua::script_source(script).name) + " reply");
      }
      continue;
    }
    if (last_step) {
      return {};
    }
    existing.erase(existing.begin(), existing.begin() + static_cast<std::ptrdiff_t>(taken));
    cur = target;
  }
  return make_error(EAGAIN, "truncate: the size kept changing");
}

std::vector<std::string> Store::setattr_args(const SetAttrRequest& req) {
  auto time_arg = [](SetAttrRequest::Time t, std::int64_t ns) -> std::string {
    switch (t) {
      case SetAttrRequest::Time::Keep:
        return "";
      case SetAttrRequest::Time::Now:
        return "now";
      case SetAttrRequest::Time::Set:
        return std::to_string(ns);
    }
    return "";
  };
  return {req.mode ? format_mode(*req.mode) : "", req.uid ? _str(*req.uid) : "", req.gid ? _str(*req.gid) : "",
          time_arg(req.atime, req.atime_ns), time_arg(req.mtime, req.mtime_ns)};
}

Result<Attr> Store::setattr(Ino ino, const SetAttrRequest& req) {
  TRY(writable());
  if (m_gathered_count.load() != 0) {
    Attr gathered;
    TRY_ASSIGN(bool absorbed, gather_setattr(ino, req, gathered));
    if (absorbed) {
      return gathered;
    }
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  if (req.size) {
    if (*req.size > k_max_file_size) {
      return make_error(EFBIG, "file size limit is 1 PiB");
    }
    TRY(truncate(*c, ino, *req.size, true, false));
  }
  bool other = req.mode || req.uid || req.gid || req.atime != SetAttrRequest::Time::Keep ||
               req.mtime != SetAttrRequest::Time::Keep;
  if (!other) {
    TRY_ASSIGN(Reply r, c->command({"HGETALL", m_keys.inode(ino)}));
    return attr_from_reply(ino, r.view());
  }
  TRY_ASSIGN(Reply r, eval_change(*c, lua::setattr, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino)},
                                  setattr_args(req)));
  return attr_from_reply(ino, r.view());
}

std::size_t Store::append_write(Connection& c, Ino ino, std::uint64_t offset, std::string_view data, bool append) {
  const std::uint64_t bs = m_sb.block_size;
  // Pieces of k_inline_max bytes or more travel as TMP keys set in the
  // same pipeline; smaller ones as script arguments.
  std::deque<std::string> owned;  // key names and numbers the views point into
  std::vector<std::string_view> keys;
  std::vector<std::string_view> args;
  auto keep = [&owned](std::string s) -> std::string_view { return owned.emplace_back(std::move(s)); };
  keys.push_back(keep(m_keys.sb()));
  keys.push_back(keep(m_keys.freeze()));
  std::string_view inode_key = keep(m_keys.inode(ino));
  keys.push_back(inode_key);
  args.push_back(keep(_str(offset)));
  args.push_back(append ? keep(_str(offset)) : std::string_view());
  std::size_t replies = 1;
  std::uint64_t pos = offset;
  std::size_t done = 0;
  while (done < data.size()) {
    std::uint64_t b = pos / bs;
    std::uint64_t in = pos - b * bs;
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bs - in, data.size() - done));
    std::string_view piece = data.substr(done, n);
    keys.push_back(keep(m_keys.block(ino, b)));
    args.push_back(keep(_str(in)));
    args.push_back(keep(_str(n)));
    if (n >= k_inline_max) {
      std::string_view tmp = keep(m_keys.temp(m_opts.session, m_temp_seq.fetch_add(1) + 1));
      c.append({"SET", tmp, piece, "PX", "600000"});
      ++replies;
      keys.push_back(tmp);
      args.emplace_back();
    } else {
      keys.push_back(inode_key);  // unused: the bytes are in ARGV
      args.push_back(piece);
    }
    pos += n;
    done += n;
  }
  c.append_eval(lua::write, keys, args);
  return replies;
}

Result<std::uint64_t> Store::write(Ino ino, std::uint64_t offset, std::string_view data, bool append) {
  TRY(writable());
  if (data.empty()) {
    return offset;
  }
  if (m_gathered_count.load() != 0) {
    TRY_ASSIGN(bool absorbed, gather_write(ino, offset, data, append));
    if (absorbed) {
      return offset;
    }
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  for (int attempt = 0; attempt < 1 << 20; ++attempt) {
    if (offset > k_max_file_size || data.size() > k_max_file_size - offset) {
      return make_error(EFBIG, "file size limit is 1 PiB");
    }
    append_write(*c, ino, offset, data, append);
    std::optional<Error> failure;
    Reply result;
    while (c->pending() > 0) {
      auto r = c->read_reply();
      if (c->pending() == 0) {
        if (r.ok()) {
          result = std::move(r).value();
        } else {
          failure = std::move(r).error();
        }
      } else if (!r.ok() && r.code() == EIO) {
        failure = std::move(r).error();  // connection lost; an OOM is the script's to report
      }
    }
    if (failure) {
      // (NOSCRIPT, FROZEN, outages: the runner has retried what it could.)
      return std::move(*failure);
    }
    ReplyView v = result.view();
    if (_is_retry(v)) {
      // O_APPEND and the file grew elsewhere: write at its real end.
      if (v.size() < 2 || !_parse_u64(v[1].str(), offset)) {
        return make_error(EIO, "bad write reply");
      }
      continue;
    }
    return offset;
  }
  return make_error(EAGAIN, "append: the file kept growing");
}

Status Store::setxattr(Ino ino, std::string_view name, std::string_view value, int flags) {
  TRY(writable());
  TRY(_check_xattr_name(name));
  if (name.size() > k_xattr_name_max) {
    return make_error(ERANGE, "attribute name longer than 255 bytes");
  }
  if (value.size() > k_xattr_value_max) {
    return make_error(E2BIG, "attribute value larger than 64 KiB");
  }
  std::string f = (flags & k_xattr_create) ? "1" : (flags & k_xattr_replace) ? "2" : "0";
  if (m_gathered_count.load() != 0) {
    (void)settle(ino);  // its ctime lands after what waits (a refusal waits for the close)
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY(eval_change(*c, lua::xattr_set, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino), m_keys.xattr(ino)},
                  {std::string(name), std::string(value), f}));
  if (name.starts_with("security.")) {
    m_security_checked_until = 0;
  }
  return {};
}

Status Store::removexattr(Ino ino, std::string_view name) {
  TRY(writable());
  TRY(_check_xattr_name(name));
  if (m_gathered_count.load() != 0) {
    (void)settle(ino);  // a refusal waits for the close: removing works on a full server
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY(eval_change(*c, lua::xattr_remove, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino), m_keys.xattr(ino)},
                  {std::string(name)}));
  return {};
}

// ---------------------------------------------------------------- orphans, sessions

Status Store::purge(Ino ino) {
  if (m_opts.read_only) {
    return {};
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    TRY_ASSIGN(Reply holders, c->command({"HKEYS", m_keys.open(ino)}));
    std::vector<std::string> keys{m_keys.sb(),      m_keys.freeze(), m_keys.inode(ino), m_keys.xattr(ino),
                                  m_keys.orphans(), m_keys.dir(ino), m_keys.open(ino)};
    std::vector<std::string> args{_str(ino), m_opts.session};
    for (std::size_t i = 0; i < holders.view().size(); ++i) {
      std::string session(holders.view()[i].str());
      keys.push_back(m_keys.mount(session));
      args.push_back(std::move(session));
    }
    TRY_ASSIGN(Reply r, eval_change(*c, lua::purge, keys, args));
    ReplyView v = r.view();
    if (!_is_retry(v)) {
      return {};  // purged, relinked, or handed to the mount that holds it open
    }
    if (v.size() >= 2) {
      TRY(truncate(*c, ino, 0, false, true));
    }
  }
  return make_error(EAGAIN, "purge of inode " + _str(ino) + " did not finish");
}

Result<std::size_t> Store::purge_dead_orphans() {
  if (m_opts.read_only) {
    return std::size_t{0};
  }
  std::vector<Ino> dead;
  {
    TRY_ASSIGN(auto c, m_pool.acquire());
    TRY_ASSIGN(Reply r, c->command({"HGETALL", m_keys.orphans()}));
    ReplyView v = r.view();
    std::vector<std::pair<Ino, std::string>> all;
    for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
      std::uint64_t ino = 0;
      if (_parse_u64(v[i].str(), ino)) {
        all.emplace_back(ino, std::string(v[i + 1].str()));
      }
    }
    for (const auto& [ino, session] : all) {
      c->append({"EXISTS", m_keys.mount(session)});
    }
    TRY_ASSIGN(auto alive, c->read_all());
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].second != m_opts.session && alive[i].view().integer() == 0) {
        dead.push_back(all[i].first);
      }
    }
  }
  for (Ino ino : dead) {
    TRY(purge(ino));
  }
  return dead.size();
}

Result<std::size_t> Store::sweep_dead_opens(std::size_t max_scan_calls, bool* pass_done) {
  if (pass_done != nullptr) {
    *pass_done = false;
  }
  if (m_opts.read_only) {
    return std::size_t{0};
  }
  std::lock_guard lock(m_sweep_mutex);
  TRY_ASSIGN(auto c, m_pool.acquire());
  std::vector<Ino> found;
  const std::string match = m_keys.match_opens();
  for (std::size_t call = 0; call < std::max<std::size_t>(max_scan_calls, 1); ++call) {
    TRY_ASSIGN(Reply r, c->command({"SCAN", m_sweep_cursor, "MATCH", match, "COUNT", "1000"}));
    ReplyView v = r.view();
    if (!v.is_array() || v.size() != 2) {
      return make_error(EIO, "bad SCAN reply");
    }
    m_sweep_cursor = std::string(v[0].str());
    for (std::size_t i = 0; i < v[1].size(); ++i) {
      auto rel = m_keys.relative(v[1][i].str());
      ParsedKey k = rel ? parse_relative_key(*rel) : ParsedKey{};
      if (k.kind == KeyKind::Open) {
        found.push_back(k.ino);
      }
    }
    if (m_sweep_cursor == "0") {
      if (pass_done != nullptr) {
        *pass_done = true;
      }
      break;
    }
  }
  if (found.empty()) {
    return std::size_t{0};
  }
  // The sessions holding each file open, then which of them are alive.
  for (Ino ino : found) {
    c->append({"HKEYS", m_keys.open(ino)});
  }
  std::vector<std::vector<std::string>> holders(found.size());
  for (std::size_t i = 0; i < found.size(); ++i) {
    auto r = c->read_reply();
    if (!r.ok() || !r->view().is_array()) {
      continue;  // gone meanwhile, or not a hash (fsck reports that)
    }
    for (std::size_t j = 0; j < r->view().size(); ++j) {
      std::string session(r->view()[j].str());
      if (session != m_opts.session) {
        holders[i].push_back(std::move(session));
      }
    }
  }
  for (const auto& list : holders) {
    for (const std::string& session : list) {
      c->append({"EXISTS", m_keys.mount(session)});
    }
  }
  TRY_ASSIGN(auto alive, c->read_all());
  std::size_t at = 0;
  std::size_t removed = 0;
  std::vector<Ino> free;
  for (std::size_t i = 0; i < found.size(); ++i) {
    std::vector<std::string> keys{m_keys.open(found[i]), m_keys.inode(found[i]), m_keys.orphans()};
    std::vector<std::string> args{_str(found[i])};
    for (const std::string& session : holders[i]) {
      if (at < alive.size() && alive[at].view().integer() == 0) {
        keys.push_back(m_keys.mount(session));
        args.push_back(session);
      }
      ++at;
    }
    if (args.size() == 1) {
      continue;
    }
    TRY_ASSIGN(Reply r, c->eval(lua::sweep_open, keys, args));
    ReplyView v = r.view();
    if (v.is_array() && v.size() == 2) {
      removed += static_cast<std::size_t>(std::max<long long>(v[0].integer(), 0));
      if (v[1].integer() == 1) {
        free.push_back(found[i]);
      }
    }
  }
  for (Ino ino : free) {
    TRY(purge(ino));
  }
  return removed;
}

Result<std::size_t> Store::drop_own_opens(std::size_t max_scan_calls) {
  if (m_opts.read_only) {
    return std::size_t{0};
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  const std::string match = m_keys.match_opens();
  std::string cursor = "0";
  std::size_t removed = 0;
  for (std::size_t call = 0; call < std::max<std::size_t>(max_scan_calls, 1); ++call) {
    TRY_ASSIGN(Reply r, c->command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"}));
    ReplyView v = r.view();
    if (!v.is_array() || v.size() != 2) {
      return make_error(EIO, "bad SCAN reply");
    }
    cursor = std::string(v[0].str());
    for (std::size_t i = 0; i < v[1].size(); ++i) {
      c->append({"HDEL", v[1][i].str(), m_opts.session});  // HDEL runs on a full server too
    }
    while (c->pending() > 0) {
      auto done = c->read_reply();
      if (done.ok() && done->view().integer() > 0) {
        ++removed;
      }
    }
    if (cursor == "0") {
      break;
    }
  }
  return removed;
}

Result<Store::SweepResult> Store::sweep_dead_mounts(std::size_t max_scan_calls) {
  SweepResult done;
  TRY_ASSIGN(done.orphans, purge_dead_orphans());
  TRY_ASSIGN(done.opens, sweep_dead_opens(max_scan_calls));
  // The mounts' register (keys.hpp) keeps a crashed mount's field: drop it,
  // or every copy, delete and list would read it again.
  if (m_opts.read_only) {
    return done;
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  auto listed = c->command({"HKEYS", m_keys.mounts()});
  if (!listed.ok()) {
    if (c->broken()) {
      return std::move(listed).error();
    }
    return done;  // not a hash: fsck's to report
  }
  const Reply& ids = *listed;
  std::vector<std::string> keys{m_keys.mounts()};
  std::vector<std::string> args;
  for (std::size_t i = 0; i < ids.view().size(); ++i) {
    std::string id(ids.view()[i].str());
    if (id != m_opts.session) {
      keys.push_back(m_keys.mount(id));
      args.push_back(std::move(id));
    }
  }
  if (!args.empty()) {
    TRY_ASSIGN(Reply r, c->eval(lua::prune_mounts, keys, args));
    done.registrations = static_cast<std::size_t>(std::max(0LL, r.view().integer()));
  }
  return done;
}

Status Store::heartbeat() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  std::string info = m_opts.session_info.empty() ? std::string(m_opts.read_only ? "ro" : "rw") : m_opts.session_info;
  TRY(c->eval(lua::session, {m_keys.mount(m_opts.session), m_keys.mounts()},
              {info, std::to_string(k_session_ttl_ms), m_opts.session}));
  m_registered = true;
  if (!m_opts.read_only) {
    // The changes set the outcome records' TTL only when a connection's
    // field is new; a live mount keeps them (redis.hpp).
    std::string ttl = std::to_string(op_log_ttl(m_pool.url()).count());
    TRY(c->command({"PEXPIRE", m_keys.op_log(m_opts.session), ttl}));
  }
  return {};
}

Status Store::end_session() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  c->append({"DEL", m_keys.mount(m_opts.session), m_keys.op_log(m_opts.session)});
  c->append({"HDEL", m_keys.mounts(), m_opts.session});
  TRY(c->read_all());
  m_registered = false;
  return {};
}

}  // namespace redisfs
