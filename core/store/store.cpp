// Store: opening a filesystem (superblock, format checks, mkfs), sync,
// the machinery every change shares (eval_change, inode allocation),
// getattr and statfs. Its other parts: store_names.cpp (names and
// directories), store_data.cpp (file contents, symlinks, setattr),
// store_xattr.cpp, store_session.cpp (opens, orphans, mount sessions),
// store_gather.cpp (a new file's gathered changes).
#include "store/store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "redis/scan.hpp"
#include "snap/install.hpp"
#include "snap/snapshot.hpp"
#include "store/fs_usage.hpp"
#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

Result<Attr> attr_from_reply(Ino ino, ReplyView r) {
  if (!r.is_array() || r.size() == 0) {
    return make_error(ENOENT, "no inode " + std::to_string(ino));
  }
  return decode_attr(ino, reply_pairs(r));
}

Error key_refused(std::string_view what, const std::string& key, const Error& e) {
  if (e.fault != Fault::None) {
    return e;
  }
  return make_error(EIO, std::string(what) + " (" + key + "): " + e.message);
}

Result<Attr> attr_from_read(const Keys& keys, Ino ino, const Result<Reply>& r) {
  if (!r.ok()) {
    return key_refused("inode " + std::to_string(ino), keys.inode(ino), r.error());
  }
  return attr_from_reply(ino, r->view());
}

Store::Store(Pool& pool, const std::string& prefix, StoreOptions opts)
    : m_pool(pool),
      m_keys(prefix),
      m_opts(std::move(opts)),
      // A writeback mount keeps the attributes of every file it wrote and
      // closed for its listings (Gathered::kept): room for a large tree's
      // (about 200 bytes an entry, 6.5 MB at most), where a default mount
      // keeps those of the parents its changes read.
      m_attrs(m_opts.attr_cache_seconds, m_opts.writeback ? 32768 : 4096),
      m_dir_names(m_opts.names_cache_seconds),
      m_removed(m_opts.names_cache_seconds),
      m_first_pages(m_opts.attr_cache_seconds) {
  if (m_opts.session.empty()) {
    m_opts.session = random_hex(8);
  }
}

Store::~Store() {
  stop_unlink_sender();
  if (m_registered) {
    (void)end_session();  // best effort: the key expires anyway
  }
}

// The replicas a change waits for when the mount did not say: the
// server's min-replicas-to-write (0 when it cannot be read).
static int _min_replicas_to_write(Connection& c) {
  auto r = c.command({"CONFIG", "GET", "min-replicas-to-write"});
  if (r.ok() && r->view().size() == 2) {
    return static_cast<int>(r->view()[1].as_int().value_or(0));
  }
  return 0;
}

// The replicas connected to the server (INFO replication), if it says.
static std::optional<long long> _connected_replicas(Connection& c) {
  auto r = c.command({"INFO", "replication"});
  if (!r.ok() || !r->view().is_string()) {
    return std::nullopt;
  }
  auto n = info_field(r->view().str(), "connected_slaves");
  long long v = 0;
  if (!n || std::from_chars(n->data(), n->data() + n->size(), v).ec != std::errc()) {
    return std::nullopt;
  }
  return v;
}

// A restore or copy killed while moving its keys in left a journal: finish
// its move first (EBUSY while the tool itself still runs; what was done in
// `finished`); then refuse a prefix a running tool has reserved.
static Status _check_not_reserved(Pool& pool, Connection& c, const Keys& keys, std::string& finished) {
  TRY_ASSIGN(finished, finish_install_reserved(pool, keys));
  TRY_ASSIGN(auto holder, reservation_holder(c, keys));
  if (holder) {
    return make_error(EBUSY, "prefix '" + keys.prefix() + "' is reserved by a running " + *holder +
                                 ", which is filling, replacing or removing it; mount it when that has ended" +
                                 endless_lease_hint(c, keys.reserved(), keys.prefix()));
  }
  return {};
}

// A prefix with keys but no superblock is a half-restored or half-deleted
// filesystem: never build a new one on top of it.
static Status _check_no_keys_without_superblock(Connection& c, const Keys& keys) {
  const std::string& prefix = keys.prefix();
  ScanWalk walk(c, {"SCAN"}, {"MATCH", keys.match_all(), "COUNT", "1000"});
  for (;;) {
    TRY_ASSIGN(auto found, walk.next());
    if (!found) {
      break;
    }
    for (std::size_t i = 0; i < found->size(); ++i) {
      auto rel = keys.relative((*found)[i].str());
      auto kind = rel ? parse_relative_key(*rel).kind : KeyKind::Unknown;
      if (is_filesystem_key(kind) || kind == KeyKind::Unknown) {
        std::string key((*found)[i].str().substr(0, 200));
        return make_error(EIO, "prefix '" + prefix + "' holds keys but no superblock (" + key +
                                   "): an interrupted restore or delete? Check it with `redisfs-snap fsck " + prefix +
                                   "` or remove it with `redisfs-snap delete " + prefix + "`");
      }
    }
  }
  return {};
}

// A new filesystem under a prefix that holds no key (mkfs.lua).
static Status _mkfs(Connection& c, const Keys& keys, const StoreOptions& opts) {
  TRY_ASSIGN(Reply made, c.eval(lua::mkfs, {keys.sb(), keys.inode(k_root_ino), keys.reserved()},
                                {std::to_string(opts.mkfs_block_size), std::to_string(opts.mkfs_owner.uid),
                                 std::to_string(opts.mkfs_owner.gid), "0755", std::to_string(k_format_version)}));
  if (made.view().integer() == -1) {
    return make_error(EBUSY, "prefix '" + keys.prefix() +
                                 "' was reserved by a restore, copy or delete as it was about "
                                 "to be created; mount it when that has ended");
  }
  return {};
}

Result<std::unique_ptr<Store>> Store::open(Pool& pool, const std::string& prefix, StoreOptions opts) {
  TRY(validate_prefix(prefix));
  if (opts.view) {
    opts.read_only = true;
    opts.create = false;
  }
  std::unique_ptr<Store> s(new Store(pool, prefix, std::move(opts)));
  // Keyless commands (SCAN, WAIT...) go to this filesystem's slot; changes
  // whose reply is lost are checked in this mount's outcome records.
  if (!s->m_opts.view) {
    pool.route_keyless(s->m_keys.sb());
  }
  if (!s->m_opts.read_only) {
    pool.set_op_log(s->m_keys.op_log(s->m_opts.session));
    // Until this open reads the superblock, no identity: a Store opened
    // again on the same pool (after a rollback, say) must not be refused
    // with the one it replaces. Set again below, once known.
    pool.set_identity({}, {});
  }
  TRY_ASSIGN(auto c, pool.acquire());
  if (c->cluster()) {
    TRY(check_cluster_prefix(prefix));
  }
  if (!s->m_opts.view) {
    // (before the first script: the session's registration)
    s->m_scripts_preloaded = c->preload_scripts();
  }
  s->m_opened_changes = pool.note_server(c->server());
  s->m_synced_changes = s->m_opened_changes;
  if (s->m_opts.sync_replicas < 0) {
    s->m_opts.sync_replicas = _min_replicas_to_write(*c);
  }
  if (s->m_opts.sync_replicas > 0 && !s->m_opts.read_only) {
    s->m_replicas_at_open = _connected_replicas(*c);
  }
  // Alive from the start: another mount's purge_dead_orphans must never
  // take this one's orphans for a dead mount's, and a restore, copy or
  // delete that reserves the prefix after this point sees the mount and
  // leaves it alone (install.hpp). A read-only open (perhaps on a replica)
  // may fail to say so; it has no orphans to protect.
  if (Status hb = s->m_opts.view ? Status{} : s->heartbeat(); !hb.ok()) {
    if (!s->m_opts.read_only || hb.code() == EBUSY) {
      return std::move(hb).error();
    }
    TRY(s->check_not_held(*c));  // not registered (a replica?): still not under a writeback mount
  }
  TRY(_check_not_reserved(pool, *c, s->m_keys, s->m_finished_install));
  if (!s->m_opts.read_only) {
    // In the register of filesystems before mkfs can make one (keys.hpp):
    // `list` reads it instead of SCANning the server. Best effort (an ACL
    // user may not write it; list then SCANs).
    (void)c->command({"SADD", k_registry_key, prefix});
  }
  TRY_ASSIGN(Reply sb_type, c->command({"TYPE", s->m_keys.sb()}));
  const bool exists = sb_type.view().str() != "none";
  if (exists && sb_type.view().str() != "hash") {
    return superblock_not_hash(s->m_keys);
  }
  if (!exists && s->m_opts.view) {
    return make_error(ENOENT, "no filesystem at prefix '" + prefix + "'");
  }
  if (!exists) {
    TRY(_check_no_keys_without_superblock(*c, s->m_keys));
    if (s->m_opts.read_only || !s->m_opts.create) {
      return make_error(ENOENT, "no filesystem at prefix '" + prefix + "'");
    }
    TRY(_mkfs(*c, s->m_keys, s->m_opts));
  }
  TRY(s->load_superblock(*c));
  TRY(s->opened_snapshot(*c));
  if (!s->m_opts.read_only) {
    // From here on every change checks, in its own script, that this is
    // still the filesystem opened (ESTALE once it was replaced).
    pool.set_identity(prefix, s->m_identity);
  }
  return s;
}

// What opening a snapshot takes, once its superblock is read.
Status Store::opened_snapshot(Connection& c) {
  if (!m_sb.read_only) {
    return {};
  }
  if (m_opts.read_only) {
    if (!m_opts.view && m_registered) {
      TRY_ASSIGN(m_frozen, keeps_what_it_reads(c));
    }
    return {};
  }
  // (session.lua refused it already, and set the "written" below: this is
  // a prefix a snapshot replaced since)
  if (!m_opts.allow_snapshot_rw) {
    return snapshot_rw_refusal();
  }
  // No longer the state of its instant: its change record says so for
  // good (keys.hpp, CHANGED), and incremental dumps against it or of it
  // compare every block.
  TRY(c.command({"SET", m_keys.changed(), k_changed_written}));
  return {};
}

// A registered read-only mount of a snapshot keeps what it reads while no
// writable mount changed the snapshot (CHANGED "written"): session.lua
// refuses the first writable mount while this one is registered, and a
// reader that registers after it reads "written" here.
Result<bool> Store::keeps_what_it_reads(Connection& c) {
  TRY_ASSIGN(Reply type, c.command({"TYPE", m_keys.changed()}));
  if (type.view().str() != "string") {
    return true;
  }
  TRY_ASSIGN(Reply changed, c.command({"GET", m_keys.changed()}));
  return changed.view().str() != k_changed_written;
}

Status Store::sync() {
  if (m_opts.read_only || m_opts.sync_replicas <= 0) {
    return {};
  }
  TRY_ASSIGN(auto c, acquire());
  auto timeout = m_pool.url().timeout;
  TRY_ASSIGN(long long confirmed, c->wait_replicas(m_opts.sync_replicas, timeout));
  // The changes since the last sync may have been acknowledged by a
  // server that is gone (a master SIGKILLed before its replicas had them):
  // WAIT on the new one cannot vouch for them.
  const std::uint64_t changes = m_pool.note_server(c->server());
  if (m_synced_changes.exchange(changes) != changes) {
    return make_error(EIO,
                      "fsync: the master changed since the last sync (a failover or a restart): changes the "
                      "old one acknowledged may be lost");
  }
  if (confirmed < m_opts.sync_replicas) {
    return make_error(EIO, "fsync: " + std::to_string(confirmed) + " of " + std::to_string(m_opts.sync_replicas) +
                               " replicas confirmed the changes within " +
                               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                               " s (--sync-replicas)");
  }
  return {};
}

Result<bool> Store::server_changed() {
  if (m_opts.read_only) {
    return false;  // nothing it wrote to lose
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  TRY(c->command({"PING"}));  // reaches the server of now
  return m_pool.note_server(c->server()) != m_opened_changes;
}

Status Store::load_superblock(Connection& c) {
  TRY_ASSIGN(Reply r, c.command({"HGETALL", m_keys.sb()}));
  ReplyView v = r.view();
  SbFields fields;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    fields.emplace_back(v[i].str(), v[i + 1].str());
  }
  TRY_ASSIGN(m_sb, decode_superblock(m_keys.prefix(), fields));
  std::string_view values[std::size(k_identity_fields)];
  for (const auto& [name, value] : fields) {
    for (std::size_t i = 0; i < std::size(k_identity_fields); ++i) {
      if (name == k_identity_fields[i]) {
        values[i] = value;
      }
    }
  }
  m_identity = filesystem_identity(values[0], values[1], values[2], values[3]);
  return {};
}

Status Store::check_same_filesystem() {
  TRY_ASSIGN(auto c, m_pool.acquire());
  return check_filesystem_identity(*c, m_keys, m_identity);
}

Status check_filesystem_identity(Connection& c, const Keys& keys, std::string_view expected, std::string_view what) {
  TRY_ASSIGN(Reply r, c.command({"HMGET", keys.sb(), std::string(k_identity_fields[0]), std::string(k_identity_fields[1]),
                                  std::string(k_identity_fields[2]), std::string(k_identity_fields[3])}));
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != std::size(k_identity_fields)) {
    return make_error(EIO, "bad HMGET reply");
  }
  if (v[0].is_nil()) {
    // Gone for good, or only while an install moves another filesystem in:
    // the install's outcome decides (the old one comes back if it fails).
    TRY_ASSIGN(Reply installing, c.command({"EXISTS", keys.installing()}));
    if (installing.view().integer() != 0) {
      return make_error(EAGAIN, std::string(what) + " is being replaced (" + keys.sb() + " is gone while " +
                                    keys.installing() + " journals a restore or rollback moving another one in)");
    }
    return make_error(ESTALE, std::string(what) + " was deleted (" + keys.sb() + " is gone)");
  }
  std::string identity = filesystem_identity(v[0].str(), v[1].str(), v[2].str(), v[3].str());
  if (identity != expected) {
    return make_error(ESTALE, std::string(what) + " was replaced by another one (" + keys.sb() +
                                  ": created/snapshot_created/dumped/rolled_back " + _bounded(identity) + ", not " +
                                  _bounded(std::string(expected)) + ")");
  }
  return {};
}

Status Store::writable() const {
  if (m_opts.read_only) {
    return make_error(EROFS, "read-only mount");
  }
  return {};
}

Result<Reply> Store::eval_change(Connection& c, lua::ScriptId script, const std::vector<std::string>& keys,
                                 const std::vector<std::string>& args, const FreshAttrs& fresh, Ino reporting_dir,
                                 Prerequisites* before) {
  // Every inode and directory a script may change is among its KEYS
  // (prelude.lua).
  std::vector<Ino> inodes;
  std::vector<Ino> dirs;  // whose names it may change
  for (const std::string& key : keys) {
    auto rel = m_keys.relative(key);
    ParsedKey parsed = rel ? parse_relative_key(*rel) : ParsedKey{};
    if (parsed.kind == KeyKind::Inode) {
      inodes.push_back(parsed.ino);
    } else if (parsed.kind == KeyKind::Dir) {
      dirs.push_back(parsed.ino);
      if (parsed.ino != reporting_dir) {
        m_dir_names.forget(parsed.ino);
      }
    }
  }
  AttrCache::Change change = m_attrs.begin(inodes);
  // The runner waits out a freeze (snapshot) and outages (redis.hpp).
  const bool first = before != nullptr && !before->sent;
  std::vector<Result<Reply>> replies;
  if (first) {
    before->queue(c);
    before->sent = true;
  }
  auto r = first ? c.eval_after(replies, script, keys, args) : c.eval(script, keys, args);
  if (first) {
    before->judge(replies);
  }
  m_attrs.end(change, r.ok() && fresh ? fresh(r->view()) : std::vector<Attr>{});
  for (Ino dir : dirs) {
    names_changed(dir);  // (what its listings read before it landed is stale)
  }
  // It may or may not have run, or it found the directory not as this mount
  // knew it; but a directory entry that names a directory not empty (rmdir
  // and rename refuse it, before any write) says nothing against the rest.
  if (!r.ok() && reporting_dir != 0 && !(r.error().fault == Fault::None && r.error().code == ENOTEMPTY)) {
    m_dir_names.forget(reporting_dir);
  }
  return r;
}

// A batch's numbers that a key already holds are skipped: only damage
// puts one there (a stray INODE or OPEN key past the superblock's
// next_inode), and a create given such a number would be refused ("inode
// number already in use") after the mount had answered with it, a
// deferred create's data lost at its close (fsck reports the stray keys).
// One pipelined round trip of EXISTS a batch (256 creates).
Result<Ino> Store::allocate_ino(Connection& c) {
  std::lock_guard lock(m_alloc_mutex);
  for (int batch = 0; batch < 4; ++batch) {
    if (Ino ino = take_ino_locked(); ino != 0) {
      return ino;
    }
    TRY_ASSIGN(Reply r, eval_change(c, lua::alloc, {m_keys.sb(), m_keys.freeze()}, {std::to_string(k_alloc_batch)}));
    auto last = r.view().as_int();
    if (!last || *last < static_cast<long long>(k_alloc_batch)) {
      return make_error(EIO, "bad inode allocation reply");
    }
    const Ino first = static_cast<Ino>(*last) - k_alloc_batch + 1;
    for (Ino n = first; n <= static_cast<Ino>(*last); ++n) {
      c.append({"EXISTS", m_keys.inode(n), m_keys.open(n)});
    }
    TRY_ASSIGN(std::vector<Reply> held, c.read_all());
    m_ino_taken.clear();
    for (std::size_t i = 0; i < held.size(); ++i) {
      if (held[i].view().integer() != 0) {
        m_ino_taken.insert(first + i);
      }
    }
    m_last_ino = static_cast<Ino>(*last);
    m_next_ino = first;
  }
  return make_error(EIO, "no free inode number in 4 batches (damage: see fsck)");
}

Ino Store::take_ino_locked() {
  while (m_next_ino != 0 && m_next_ino <= m_last_ino) {
    const Ino ino = m_next_ino++;
    if (m_ino_taken.count(ino) == 0) {
      return ino;
    }
  }
  return 0;
}

Result<Attr> Store::getattr(Ino ino, double* age) {
  if (age != nullptr) {
    *age = 0;
  }
  if (m_gathered_count.load() != 0) {
    if (auto mine = gathered_attr(ino)) {
      return *mine;  // what this mount changed is newer than the server's (and than what the cache holds)
    }
  }
  if (age != nullptr) {
    if (m_unlinks_waiting.load() != 0) {
      if (auto shown = unlinked_parent_attr(ino)) {
        return *shown;  // its unlinks wait (store_dirs.cpp)
      }
    }
    if (auto hit = m_attrs.get(ino)) {
      *age = hit->age;
      return hit->attr;
    }
  }
  TRY_ASSIGN(auto c, acquire());
  if (m_first_pages.wanted(ino) != 0) {
    return getattr_with_first_page(*c, ino);
  }
  return read_inode(*c, ino);
}

Result<Attr> Store::read_inode(Connection& c, Ino ino) {
  if (!m_attrs.enabled() || m_attrs.basis(ino)) {
    // (what a change left stays: getattr answers from it, never from a read)
    return attr_from_read(m_keys, ino, c.command({"HGETALL", m_keys.inode(ino)}));
  }
  AttrCache::Change read = m_attrs.begin_read({ino});
  Result<Attr> attr = attr_from_read(m_keys, ino, c.command({"HGETALL", m_keys.inode(ino)}));
  std::vector<Attr> keep;
  if (attr.ok() && gathered(ino) == nullptr) {
    keep.push_back(*attr);
  }
  m_attrs.end_read(read, keep);
  return attr;
}

Result<StatFs> Store::statfs() {
  TRY_ASSIGN(auto c, acquire());
  c->append({"HMGET", m_keys.sb(), "inodes", "bytes"});
  c->append({"INFO", "memory"});
  TRY_ASSIGN(auto replies, c->read_all());
  StatFs s;
  s.block_size = m_sb.block_size;
  ReplyView sb = replies[0].view();
  if (sb.size() == 2) {
    parse_u64(sb[0].str(), s.inodes);
    parse_u64(sb[1].str(), s.used_bytes);
  }
  std::string_view info = replies[1].view().str();
  FsUsage u = fs_usage(s.used_bytes, info_u64(info, "used_memory"), info_u64(info, "maxmemory"),
                       info_u64(info, "total_system_memory"));
  s.total_bytes = u.size;
  s.free_bytes = u.free;
  return s;
}

Store::CacheSizes Store::cache_sizes() {
  return {m_attrs.size(),         m_attrs.capacity(), m_dir_names.size(),
          m_dir_names.capacity(), m_removed.size(),   m_removed.capacity()};
}

}  // namespace redisfs
