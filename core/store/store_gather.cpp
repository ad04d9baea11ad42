// Gathering: the first writes and attribute changes of a file this mount
// created and holds open wait in the Store and reach the server together,
// in one round trip, when the file is closed (FLUSH), fsync'ed or released.
// On a writeback mount, so do those of any file open for writing (below).
//
// Why: a small file written by tar, cp or an unpacker costs a create, a few
// writes and three attribute changes (chown, chmod, utimes) before close;
// sent one by one that is five to nine round trips a file, gathered it is
// two (the create and the flush).
//
// What another mount sees: close-to-open consistency, as NFS promises. The
// name exists on the server from the create on (another host can look it
// up and open it; but see deferred creates below), and everything written
// before close(2) returns is on the server when it returns; another host
// may not see bytes or attribute changes of a file that is still open
// here. This mount sees its own changes at once: getattr, lookup and
// readdirplus answer with the gathered attributes, and a read, link,
// rename, unlink, xattr change or fsync sends what waits first. An error the server answers when the
// changes arrive (ENOSPC, EDQUOT...) is close(2)'s, as on NFS, also when
// another operation sent them: the file keeps it (`failed`) until its
// flush. What waits is lost if the daemon dies before close, like a local
// filesystem's unwritten page cache; a snapshot taken meanwhile has the
// file as the server has it (sent changes only).
//
// Bounds: at most gather_file_max bytes of data a file and gather_total_max
// in all wait here; an O_APPEND write, a size change, a write past the
// bound or a write that would pass the total sends what waits first and
// then goes to the server at once, and the file is not gathered any more
// (but a writeback mount's file past its own bound: see below).
//
// The changes are replayed in their order through the same scripts a
// direct call uses (write.lua, setattr.lua), pipelined: the server applies
// exactly what it would have applied one by one, a little later. The
// writes between two attribute changes, wherever in the file, are one
// write.lua (each piece over what the ones before it left: sqlite's
// pages, here and there, cost one script, not one each). An
// attribute change that follows a write rides in that write's script
// (write.lua applies it after the data, as setattr.lua would next), so the
// common file, written then chown'ed, chmod'ed and utimes'ed, costs one
// script; the data's and the change's "now" are then one instant, and a
// server that refuses the data (out of memory) refuses the change with it.
// So does a change before the data that the data's write may overtake,
// the result field for field the same (an owner or atime change, a kill:
// sqlite's chown of its new journal, as root; not a mode or an mtime).
// Times the scripts set to "now" are the server's clock at the flush;
// until then this mount shows its own estimate (our clock plus the offset
// the create's reply revealed). A write that must drop setuid/setgid
// (WriteKill) shows the new mode here at once and drops the server's in
// the script that carries its data, so no mount sees the new data with the
// old bits.
//
// Deferred creates (defer_create): on a writeback mount, the only mount of
// its filesystem, the create itself can wait with the file's changes, and
// a small file costs one round trip (its first close) instead of two. The
// mount answers the create: the inode number comes from the batch it
// holds (allocate_ino), the group from the parent when it is setgid, the
// times from its clock plus the server's offset (the last create's reply:
// the parent's change, the server's clock), which the create sends (the
// server stores the times the mount showed: the kernel keeps them, and
// writes nothing back of a file it did not change).
// Only in a directory whose every name it knows (DirNames, a directory it
// made), or under a name it removed (RemovedNames: sqlite's journal), so
// that the name is known absent and the create cannot meet EEXIST later,
// and whose attributes it holds (the setgid rule). The name
// goes into DirNames and the name cache at once; the parent's attributes
// are dropped (its mtime, ctime and count change when the create lands).
// Until then the server has no trace of the file, and nothing may read the
// server as if it had: every operation that reaches the server but a
// gathered file's own takes its connection from acquire(), which sends
// every deferred create first (send_deferred_creates: the create alone, the
// changes wait on), after the directory attribute changes that wait
// (store_dirs.cpp). Operations on the file itself send it as they send its
// changes (settle). A getxattr of a security.* attribute answered from the
// superblock's flag, a lookup answered from DirNames and a getattr of the
// file are no operations on the server: they send nothing.
// At the flush the create leads the pipeline: in the script of the file's
// first data when its changes start with data (create_write.lua, create.lua's
// work then write.lua's: a small file's create and data pay one script's
// fixed cost on the server, not two), else as create.lua alone; its reply
// is judged as a direct create's is (created). A create refused then (the
// inode number in use: damage) is the close's error, and its name and the
// parent's list go; the data in its script is not written (its TMP keys
// go), and the changes behind it ran on no file and wrote nothing. Data
// refused in the create's script leaves the file made and empty, as the
// two scripts in turn would: the close reports the refusal.
// A create refused for a freeze or a snapshot's copy is sent again by the
// runner (redis.cpp) after the changes behind it ran, on no file: they are
// sent again after it, in order. A crash before the flush leaves nothing on
// the server (the file was never there: no OPEN count, no orphan), as a
// local filesystem loses a create its journal never wrote.
//
// Writeback mounts (open_for_writing): the only mount of its filesystem
// gathers the writes of every file open for writing, not only one it
// made: the kernel's writeback cache sends a file's dirty pages at fsync,
// close and syncfs, and each WRITE would be a round trip (sqlite's
// commit: a few pages, then fsync). The open reads the file's attributes
// in its own round trip (open.lua), the basis of what this mount shows
// while changes wait; it is used only if no change of the file through
// this mount ran beside the open (AttrCache::watch; never when the cache
// is off), else the file's writes go at once. Such a file, and a file a
// writeback mount created, gathers on after its changes were sent by an
// fsync, a read, a snapshot's request or its own bound (`resumable`: what
// waits goes, the write that passed the bound waits) or a close(2)
// (FLUSH: of one descriptor of the open, maybe a forked child's, while
// others go on writing); its release, a truncation, a write past the
// total bound, a link, an xattr change and an unlink or rename of the
// file end it (the last four change its links or ctime on the server:
// what this mount shows is the server's again). What the mount promises
// (redisfs(1)): what fsync returned for, and files closed, are on the
// server; a crash loses what was written after, as a local disk does.
// syncfs(2) sends nothing of a file still open: no FUSE request comes
// for it (nor does the kernel wait for a FUSE filesystem's writes at
// syncfs: a snapshot's request writes back the open files' pages itself,
// Session::write_back_open_files). The size the
// server has before the waiting changes (`server_size`) lets the flush
// send a piece that covers all its block holds as a TMP key; the count of
// bytes (st_blocks) grows only by what a write adds past the end (exact
// again at the flush); times are this mount's clock plus the offset the
// last create's reply showed (none before the first), as for a deferred
// create. (The kernel of a writeback mount keeps mtime and ctime itself
// and sends them: a SETATTR, gathered too.) Its close and fsync ask the
// last script for the file's fields (send_gathered's `fields`), kept in
// AttrCache by the rules of any change's (a change of the file's own over
// the round trip): once the file is released, the mount's listings answer
// with them (Store::readdir: rm -rf of a tree the mount wrote reads
// nothing). A send that does not ask (a read's, an unlink's) drops them.
//
// Memory: the strings that held a file's writes are kept for the next
// files (m_gather_buffers, util/buffer_pool.hpp: at most 16 of 64 KiB).
//
// Locking: m_gather_mutex guards the map, the byte total and the kept
// strings; each file's own mutex is held while a change is absorbed and
// while its changes are sent, so a write that arrives meanwhile waits and
// cannot overtake them.
// A file leaves the map only after its changes were sent.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>

#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

struct Store::DeferredCreate {
  Ino parent = 0;
  std::string name;
  std::uint32_t mode = 0;
  Caller who;
  std::uint32_t gid = 0;      // the group this mount answered with
  std::optional<Attr> basis;  // what it held of the parent then
  std::string shown;          // the file's times it answered with (ns): the server stores them
};

struct Store::Gathered {
  struct Change {
    bool is_write = false;
    bool kill = false;  // a write's FUSE_WRITE_KILL_SUIDGID (WriteKill)
    std::uint64_t offset = 0;
    std::string data;      // a write
    SetAttrRequest attrs;  // an attribute change (never a size)
  };

  std::mutex mutex;
  bool live = true;  // false once sent for good: nothing more is gathered
  // A writeback mount's file: it gathers on after its changes were sent
  // by an fsync, a close(2), a read or a snapshot's request, until its
  // release.
  bool resumable = false;
  std::uint64_t server_size = 0;  // the file's size on the server before `changes`
  std::optional<Error> failed;  // what the server refused when another op sent them (settle)
  Attr attr;                 // what this mount sees of the file
  std::int64_t skew_ns = 0;  // the server's clock minus ours
  std::vector<Change> changes;
  std::size_t bytes = 0;  // of data in `changes`
  std::unique_ptr<DeferredCreate> create;  // the file is not on the server yet
  // The last send of its changes left the server's fields of the file in
  // AttrCache (send_gathered's `fields`), and nothing was gathered since
  // (what was would be sent before the file leaves the map): its release
  // keeps them, and the mount's next listing needs no round trip for it.
  bool kept = false;
};

namespace {

// The data's part of create_write.lua's reply: '' or the refusal.
Status _data_refusal(ReplyView v) {
  std::string_view e = v[1].str();
  if (e.empty()) {
    return {};
  }
  return error_from_redis(e);  // (as the refusal of a script of its own would read)
}

}  // namespace

std::size_t Store::script_writes(const Gathered& file, std::size_t i, std::size_t end, std::uint64_t bs,
                                 std::vector<WritePiece>& writes) {
  const auto& changes = file.changes;
  writes.clear();
  std::size_t pieces = 0;
  for (; i < end; ++i) {
    const Gathered::Change& w = changes[i];
    const std::uint64_t last = w.offset + std::max<std::size_t>(w.data.size(), 1) - 1;
    const auto blocks = static_cast<std::size_t>(last / bs - w.offset / bs + 1);
    if (!writes.empty() && pieces + blocks > k_gather_script_blocks) {
      break;
    }
    writes.push_back({w.offset, w.data});
    pieces += blocks;
  }
  return i;
}

std::shared_ptr<Store::Gathered> Store::start_gathering(const Attr& attr) { return start_gathering(attr, nullptr); }

std::shared_ptr<Store::Gathered> Store::start_gathering(const Attr& attr, std::unique_ptr<DeferredCreate> create) {
  if (m_opts.gather_file_max == 0 || !attr.is_reg()) {
    return nullptr;
  }
  auto file = std::make_shared<Gathered>();
  file->attr = attr;
  file->skew_ns = attr.ctime_ns - _local_ns();  // (the file was made just now)
  file->create = std::move(create);
  file->resumable = m_opts.writeback;
  std::lock_guard lock(m_gather_mutex);
  if (file->create) {
    ++m_deferred_creates;
  }
  m_gathered[attr.ino] = file;
  m_gathered_count = m_gathered.size();
  return file;
}

Status Store::open_for_writing(Ino ino, Seen* seen) {
  if (!m_opts.writeback || m_opts.read_only || m_opts.gather_file_max == 0 || gathered(ino) != nullptr) {
    return open_file(ino, seen);
  }
  // The server's attributes at the open's instant are the basis of what
  // this mount shows while the file's writes wait: only if no change of
  // the file through this mount ran beside the open (the watch; nothing
  // else changes a writeback mount's filesystem).
  AttrCache::Change watch = m_attrs.watch(ino);
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(Reply r, c->eval(lua::open, {m_keys.inode(ino), m_keys.open(ino)}, {m_opts.session, "1"}));
  Result<Attr> attr = open_fields(ino, r.view());
  if (!attr || !attr->is_reg()) {
    return {};  // counted: the file's writes go at once (a damaged inode answers them)
  }
  auto file = std::make_shared<Gathered>();
  std::lock_guard file_lock(file->mutex);  // (a write that finds it waits for the verdict below)
  file->attr = *attr;
  const std::int64_t skew = m_server_skew_ns.load();
  file->skew_ns = skew == INT64_MIN ? 0 : skew;
  file->resumable = true;
  file->server_size = attr->size;
  {
    std::lock_guard lock(m_gather_mutex);
    if (!m_gathered.emplace(ino, file).second) {
      return {};  // another open of the file began gathering meanwhile
    }
    m_gathered_count = m_gathered.size();
  }
  if (!m_attrs.unchanged(watch)) {
    file->live = false;  // its attributes may be older than the server's
    forget_gathered(ino);
  }
  return {};
}

void Store::note_server_clock(std::int64_t server_ns) { m_server_skew_ns = server_ns - _local_ns(); }

std::optional<Attr> Store::defer_create(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who) {
  const std::int64_t skew = m_server_skew_ns.load();
  if (m_opts.gather_file_max == 0 || m_opts.read_only || skew == INT64_MIN || !check_file_name(name) || name == "." ||
      name == ".." || m_unlinks_waiting.load() != 0) {
    return std::nullopt;  // (an unlink that waits lands first: the create goes after it, now)
  }
  // Only a name this mount knows to be absent (DirNames: the whole list
  // of a directory it made; RemovedNames: a name it removed, as sqlite
  // its journal at every commit; nobody else changes the filesystem of a
  // writeback mount), so that the create cannot meet EEXIST at the flush,
  // and a parent whose mode and group it holds (the setgid rule).
  std::optional<Attr> basis = m_attrs.basis(parent);
  if (!basis || !basis->is_dir() || basis->nlink == 0 ||
      !(m_dir_names.absent(parent, name) || m_removed.absent(parent, name))) {
    return std::nullopt;
  }
  Ino ino = 0;
  {
    std::lock_guard lock(m_alloc_mutex);
    ino = take_ino_locked();
    if (ino == 0) {
      return std::nullopt;  // (the create that goes now takes the next batch)
    }
  }
  auto create = std::make_unique<DeferredCreate>();
  create->parent = parent;
  create->name = std::string(name);
  create->mode = mode & 07777;
  create->who = who;
  create->gid = (basis->mode & S_ISGID) != 0 ? basis->gid : who.gid;
  create->basis = basis;
  create->shown = std::to_string(_local_ns() + skew);
  Result<Attr> attr = _new_node_attr(ino, "file", format_mode(create->mode), std::to_string(who.uid),
                                     std::to_string(create->gid), "0", create->shown, {}, {});
  if (!attr) {
    return std::nullopt;
  }
  // The parent's times and count change when the create lands: what this
  // mount holds of them goes now, and its next getattr asks the server
  // (which sends the create first: acquire()).
  m_attrs.forget(parent);
  names_changed(parent);
  m_dir_names.adding(parent, name, ino);
  m_removed.forget(parent, name);
  remember(parent, name, ino, true);
  start_gathering(*attr, std::move(create));
  return *attr;
}

Result<Pool::Lease> Store::acquire() {
  if (m_dirs_waiting.load() != 0) {
    std::lock_guard send(m_dir_send_mutex);  // (and one on its way lands first)
    send_waiting_dirs();                     // (a refusal: for send_dir_changes)
  }
  send_deferred_creates();
  return m_pool.acquire();
}

void Store::send_deferred_creates() {
  if (m_deferred_creates.load() == 0) {
    return;
  }
  for (Ino ino : gathered_inos()) {
    auto [file, lock] = lock_live(ino);
    if (file && file->create) {
      (void)send_gathered(ino, *file, Then::create_only);  // (an error waits for the file's flush)
    }
  }
}

Status Store::created(Ino ino, Gathered& file, const DeferredCreate& create, const Result<Reply>& r, bool combined,
                      const AttrCache::Change& change, std::chrono::steady_clock::time_point sent) {
  std::vector<Attr> fresh;
  Result<Attr> attr = make_error(EIO, "bad create reply");
  if (!r.ok()) {
    attr = r.error();
  } else if (ReplyView v = r->view(); !combined || (v.is_array() && v.size() >= 2)) {
    if (combined) {
      v = v[0];
    }
    fresh = _fresh_parent(create.parent, v, 3, create.basis);
    CreateCall call = create_call(create.parent, create.name, "file", create.mode, 0, {}, create.who, ino, true);
    attr = created_attr(ino, v, call);
  }
  m_attrs.end(change, attr ? fresh : std::vector<Attr>{});
  if (!attr) {
    // The name is not on the server: nothing of it stays here either.
    m_dir_names.forget(create.parent);
    forget_name(create.parent, create.name);
    Error e = std::move(attr).error();
    e.message = "create of '" + _bounded(create.name) + "' in directory " + std::to_string(create.parent) +
                " (sent at the file's close): " + e.message;
    return e;
  }
  if (!fresh.empty()) {
    note_server_clock(fresh[0].ctime_ns);  // (the file's times are this mount's: `shown`)
  }
  if (fresh.empty()) {
    m_dir_names.forget(create.parent);
  } else {
    m_dir_names.added(create.parent, fresh[0].gen, sent, create.name, ino);
  }
  if (attr->gid != create.gid) {
    // The parent became setgid (or stopped) behind what this mount held:
    // the server's group stands, unless a chown waits.
    bool chown = std::any_of(file.changes.begin(), file.changes.end(),
                             [](const Gathered::Change& ch) { return !ch.is_write && ch.attrs.gid; });
    if (!chown) {
      file.attr.gid = attr->gid;
    }
  }
  return {};
}

std::shared_ptr<Store::Gathered> Store::gathered(Ino ino) {
  if (m_gathered_count.load() == 0) {
    return nullptr;
  }
  std::lock_guard lock(m_gather_mutex);
  auto it = m_gathered.find(ino);
  return it == m_gathered.end() ? nullptr : it->second;
}

bool Store::gathering(Ino ino) {
  auto file = gathered(ino);
  if (!file) {
    return false;
  }
  std::lock_guard lock(file->mutex);
  return file->live || file->failed.has_value();
}

Store::LockedGathered Store::lock_live(Ino ino) {
  LockedGathered found;
  found.file = gathered(ino);
  if (found.file) {
    found.lock = std::unique_lock(found.file->mutex);
    if (!found.file->live) {
      found.lock.unlock();
      found.file.reset();
    }
  }
  return found;
}

Status Store::stop_gathering(Ino ino, Gathered& file) {
  Status sent = send_gathered(ino, file, Then::stop);
  forget_gathered(ino);
  return sent;
}

Result<bool> Store::gather_write(Ino ino, std::uint64_t offset, std::string_view data, bool append, WriteKill* kill) {
  auto [file, lock] = lock_live(ino);
  if (!file) {
    return false;
  }
  auto& changes = file->changes;
  const bool may = !append && offset <= k_max_file_size && data.size() <= k_max_file_size - offset;
  if (may && file->resumable && file->bytes + data.size() > m_opts.gather_file_max &&
      data.size() <= m_opts.gather_file_max) {
    // A file that gathers on: what waits goes now, and this write waits.
    if (Status sent = send_gathered(ino, *file, Then::resume); !sent) {
      forget_gathered(ino);  // (it gathers no more: the write reports the refusal)
      return sent.error();
    }
  }
  const bool next_piece = !changes.empty() && changes.back().is_write &&
                          changes.back().offset + changes.back().data.size() == offset;  // of a sequential write
  bool fits = may && file->bytes + data.size() <= m_opts.gather_file_max;
  std::string piece;
  if (fits) {
    std::lock_guard total(m_gather_mutex);
    fits = m_gathered_bytes + data.size() <= m_opts.gather_total_max;
    if (fits) {
      m_gathered_bytes += data.size();
      if (!next_piece) {
        piece = m_gather_buffers.take();
      }
    }
  }
  if (!fits) {
    TRY(stop_gathering(ino, *file));
    return false;
  }
  const bool kills = kill != nullptr && kill->suidgid;
  if (next_piece) {
    changes.back().data.append(data);
    changes.back().kill = changes.back().kill || kills;  // (the same bits go, a little earlier)
  } else {
    piece.assign(data);
    changes.push_back({true, kills, offset, std::move(piece), {}});
  }
  file->bytes += data.size();
  Attr& a = file->attr;
  if (kills && _killed_mode(a.mode) != a.mode) {
    a.mode = _killed_mode(a.mode);  // the server's goes with the data, at the flush
    kill->killed = true;
  }
  // The bytes past the end the file had add to the server's count (for
  // st_blocks; exact at the flush): an overwrite adds none.
  const std::uint64_t end = offset + data.size();
  a.bytes += end > a.size ? end - std::max<std::uint64_t>(offset, a.size) : 0;
  a.size = std::max<std::uint64_t>(a.size, end);
  a.mtime_ns = a.ctime_ns = _local_ns() + file->skew_ns;
  return true;
}

// Whether a write that follows `attrs` may go first, `attrs` riding in
// its script: the same result, field for field. A write sets size, mtime
// and ctime to its instant and may drop setuid/setgid (its kill); an owner
// or atime change, and a kill (idempotent), touch none of what it sets
// (a change's ctime is the same instant). A mode or an mtime does.
static bool _commutes_with_write(const SetAttrRequest& attrs) {
  return !attrs.mode && !attrs.size && attrs.mtime == SetAttrRequest::Time::Keep;
}

Result<bool> Store::gather_setattr(Ino ino, const SetAttrRequest& req, Attr& out) {
  auto [file, lock] = lock_live(ino);
  if (!file) {
    return false;
  }
  if (req.size) {
    TRY(stop_gathering(ino, *file));
    return false;
  }
  const bool change = _changes_attrs(req);
  Attr& a = file->attr;
  if (change) {
    auto& changes = file->changes;
    if (changes.empty() || changes.back().is_write) {
      changes.push_back({});
    }
    _merge_setattr(changes.back().attrs, req);  // consecutive changes as one
    _apply_setattr(a, req, _local_ns() + file->skew_ns);
  }
  out = a;
  return true;
}

void Store::gathered_accessed(Ino ino, std::int64_t atime_ns) {
  auto [file, lock] = lock_live(ino);
  if (!file) {
    return;
  }
  const bool set_here = std::any_of(file->changes.begin(), file->changes.end(), [](const Gathered::Change& ch) {
    return !ch.is_write && ch.attrs.atime != SetAttrRequest::Time::Keep;
  });
  if (!set_here) {
    file->attr.atime_ns = atime_ns;  // (a utimes that waits lands after the read's touch: it stands)
  }
}

std::optional<Attr> Store::gathered_attr(Ino ino) {
  auto [file, lock] = lock_live(ino);
  if (!file) {
    return std::nullopt;
  }
  return file->attr;
}

void Store::overlay_gathered(Attr& attr) {
  if (m_gathered_count.load() == 0 || !attr.is_reg()) {
    return;
  }
  if (auto mine = gathered_attr(attr.ino)) {
    // What waits here is newer than the server's; its links are the
    // server's (another host may have linked the file meanwhile).
    std::uint64_t nlink = attr.nlink;
    attr = *mine;
    attr.nlink = nlink;
  }
}

bool Store::combines_create(const Gathered& file) {
  const auto& changes = file.changes;
  return !changes.empty() &&
         (changes[0].is_write || (changes.size() > 1 && changes[1].is_write && _commutes_with_write(changes[0].attrs)));
}

std::size_t Store::append_gathered(Connection& c, Ino ino, Gathered& file, const CreateCall* create,
                                   std::size_t* create_reply, FieldsAt* fields) {
  const std::string sb = m_keys.sb();
  const std::string freeze = m_keys.freeze();
  const std::string inode = m_keys.inode(ino);
  std::size_t replies = 0;
  std::uint64_t size = file.server_size;  // the server's, as far as we know
  const auto& changes = file.changes;
  std::vector<WritePiece> writes;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    // The writes between two attribute changes go in one write.lua, and
    // the attribute change that follows them, if one does (tar's chown,
    // chmod and utimes after its writes), in the same script: one
    // script's fixed cost a file on the server (sqlite's pages, here and
    // there, then the mtime the kernel sends at fsync). So does a change
    // before them that they may overtake (sqlite's chown of its new
    // journal: an owner change), merged with the one after.
    SetAttrRequest then;
    bool has_then = false;
    if (!changes[i].is_write) {
      if (i + 1 < changes.size() && changes[i + 1].is_write && _commutes_with_write(changes[i].attrs)) {
        then = changes[i].attrs;
        has_then = true;
        ++i;
      } else {
        const bool last = fields != nullptr && i + 1 == changes.size();
        if (last) {
          *fields = FieldsAt::setattr;
        }
        std::vector<std::string> args = setattr_args(changes[i].attrs, last);
        const std::string_view keys[] = {sb, freeze, inode};
        const std::vector<std::string_view> argv(args.begin(), args.end());
        c.append_eval(lua::setattr, keys, argv);
        ++replies;
        continue;
      }
    }
    std::size_t end = i;
    bool kill = false;  // (one kill for them all: the bits go with the first data)
    for (; end < changes.size() && changes[end].is_write; ++end) {
      kill = kill || changes[end].kill;
    }
    if (end < changes.size()) {
      _merge_setattr(then, changes[end].attrs);  // (changes alternate: this one is no write)
      has_then = true;
    }
    // Scripts of at most k_gather_script_blocks pieces (thousands of
    // scattered small writes: a bounded script each); the change goes
    // with the last.
    const std::uint64_t bs = m_sb.block_size;
    while (i < end) {
      i = script_writes(file, i, end, bs, writes);
      // (the replies are only judged, but for the fields of the last
      // script when asked: the change after the writes, if any, is in it)
      const bool last = fields != nullptr && i == end && end + 1 >= changes.size();
      if (last) {
        *fields = create != nullptr ? FieldsAt::create_write : FieldsAt::write;
      }
      replies += append_writes(c, ino, writes, false, kill, last, size, i == end && has_then ? &then : nullptr, create);
      if (create != nullptr) {
        *create_reply = replies - 1;  // (the script's reply comes after its TMP SETs')
        create = nullptr;
      }
      for (const WritePiece& w : writes) {
        size = std::max<std::uint64_t>(size, w.offset + w.data.size());
      }
    }
    i = end;  // (the change after the writes, if any: sent with them)
  }
  return replies;
}

Status Store::send_gathered(Ino ino, Gathered& file, Then then, bool fields) {
  std::unique_ptr<DeferredCreate> create = std::move(file.create);
  if (create) {
    --m_deferred_creates;
  }
  const bool create_only = then == Then::create_only;
  if (then == Then::stop || (then == Then::resume && !file.resumable)) {
    file.live = false;
  }
  Status result;
  const bool changes = !create_only && !file.changes.empty();
  if (create || changes) {
    auto c = m_pool.acquire();
    result = c ? send_pipelined(**c, ino, file, create.get(), changes, fields && changes) : Status(c.error());
  }
  if (create_only) {
    if (result.ok()) {
      return result;  // the changes wait on
    }
    // The file is not on the server: what waits for it cannot land, and
    // the close reports why.
    file.live = false;
    file.failed = result.error();
  } else if (result.ok()) {
    file.server_size = file.attr.size;  // (what the writes made it: truncations stop gathering)
  } else {
    file.live = false;  // what comes next goes at once
  }
  std::lock_guard lock(m_gather_mutex);
  m_gathered_bytes -= file.bytes;
  file.bytes = 0;
  for (Gathered::Change& change : file.changes) {
    if (change.is_write) {
      m_gather_buffers.give(std::move(change.data));  // the next gathered file's
    }
  }
  file.changes.clear();
  return result;
}

Status Store::send_pipelined(Connection& c, Ino ino, Gathered& file, const DeferredCreate* create, bool changes,
                             bool fields) {
  AttrCache::Change change;
  AttrCache::Change own = flush_change(ino, file, fields);  // (the create's `change` then names the parent alone)
  const auto sent = DirNames::Clock::now();
  CreateCall call;
  // The deferred create first, in the same round trip: in the script of
  // the file's first data when the changes start with data (a small
  // file's create and data in one script: create_write.lua), else alone.
  const bool combined = create != nullptr && changes && combines_create(file);
  if (create != nullptr) {
    call = create_call(create->parent, create->name, "file", create->mode, 0, {}, create->who, ino, true);
    call.args.push_back(create->shown);
    call.args.push_back(_basis_arg(create->basis));
    change = fields ? m_attrs.begin({create->parent}) : m_attrs.begin({create->parent, ino});
  }
  if (create != nullptr && !combined) {
    const std::vector<std::string_view> keys(call.keys.begin(), call.keys.end());
    const std::vector<std::string_view> args(call.args.begin(), call.args.end());
    c.append_eval(lua::create, keys, args);
  }
  // Every reply is read, whatever fails: the connection goes back to the
  // pool with nothing pending. The first error is the flush's. The runner
  // sends a refused command again once the commands queued behind it ran
  // (redis.hpp, sent_again), but these depend on their order (a write over
  // an earlier one, a chmod before a write that drops setuid, the create
  // before them all): `reordered` when one was sent again and a later one
  // was not, so ran before it. (A change that ran before the create wrote
  // nothing: the file was not there.)
  RunOrder order;
  Status result;
  std::size_t create_reply = SIZE_MAX;  // (none combined)
  FieldsAt at = FieldsAt::none;
  std::vector<Attr> kept;  // the last reply's fields of the file
  auto read = [&](std::size_t replies) {
    Status first;
    kept.clear();
    for (std::size_t i = 0; i < replies; ++i) {
      Result<Reply> r = c.read_reply();
      order.saw(c);
      Status st = r.ok() ? Status() : Status(r.error());
      if (i == create_reply) {
        result = created(ino, file, *create, r, true, change, sent);
        st = result.ok() ? _data_refusal(r->view()) : Status();  // (a refused create: `result`)
      }
      if (i + 1 == replies && st.ok() && r.ok()) {
        kept = gathered_fields(ino, at, r->view());
      }
      if (!st && first.ok()) {
        first = std::move(st);
      }
    }
    return first;
  };
  const std::size_t replies =
      changes ? append_gathered(c, ino, file, combined ? &call : nullptr, &create_reply, fields ? &at : nullptr) : 0;
  if (create != nullptr && !combined) {
    result = created(ino, file, *create, c.read_reply(), false, change, sent);
    order.saw(c);
  }
  Status sent_changes = read(replies);
  create_reply = SIZE_MAX;
  if (order.reordered() && result.ok()) {
    // They go again, all of them, in order: the writes put the same bytes
    // at the same places, the attribute changes set the same values, and
    // the last of each wins, as it must. (Once: a second reordering would
    // take a second refusal in this very round trip.)
    order = RunOrder{};
    at = FieldsAt::none;
    sent_changes = read(append_gathered(c, ino, file, nullptr, nullptr, fields ? &at : nullptr));
  }
  if (!result.ok() || !sent_changes.ok() || order.reordered()) {
    kept.clear();  // (the last reply is not the last change that ran)
  }
  m_attrs.end(own, kept);
  file.kept = !kept.empty();
  return result.ok() ? sent_changes : result;
}

AttrCache::Change Store::flush_change(Ino ino, Gathered& file, bool fields) {
  if (fields) {
    return m_attrs.begin({ino});
  }
  if (file.kept) {
    m_attrs.forget(ino);  // (what this send sends changes it)
  }
  return {};
}

std::vector<Attr> Store::gathered_fields(Ino ino, FieldsAt at, ReplyView reply) {
  switch (at) {
    case FieldsAt::none:
      return {};
    case FieldsAt::write:
      return _fresh_attr(ino, reply, 1);
    case FieldsAt::create_write:
      return _fresh_attr(ino, reply, 2);
    case FieldsAt::setattr: {
      auto attr = attr_from_reply(ino, reply);
      return attr ? std::vector<Attr>{std::move(*attr)} : std::vector<Attr>{};
    }
  }
  return {};
}

void Store::forget_gathered(Ino ino, bool keep_attrs) {
  {
    std::lock_guard lock(m_gather_mutex);
    m_gathered.erase(ino);
    m_gathered_count = m_gathered.size();
  }
  // A listing that read the file while its changes were on their way
  // must not keep what it read (AttrCache::end_read). (What the last send
  // kept is the server's after them: that send's change kept it by the
  // same rule.)
  if (!keep_attrs) {
    m_attrs.forget(ino);
  }
}

Status Store::flush(Ino ino, bool resume) {
  auto file = gathered(ino);
  if (!file) {
    return {};
  }
  std::lock_guard lock(file->mutex);
  Status result;
  if (file->live) {
    // A writeback mount's close asks for the file's fields: once released,
    // the file is listed from them (page_from_names).
    result = send_gathered(ino, *file, resume ? Then::resume : Then::stop, m_opts.writeback);
    if (file->live) {
      return result;  // sent, and it gathers on
    }
  } else if (file->failed) {
    result = *file->failed;  // refused when settle() sent them: now the close reports it
  }
  file->failed.reset();
  forget_gathered(ino, result.ok() && file->kept);  // (a file that left the map meanwhile: no harm)
  return result;
}

Status Store::settle(Ino ino, bool resume) {
  auto [file, lock] = lock_live(ino);
  if (!file) {
    return {};
  }
  Status sent = send_gathered(ino, *file, resume ? Then::resume : Then::stop);
  if (file->live) {
    return sent;  // sent, and it gathers on
  }
  if (sent.ok()) {
    forget_gathered(ino);
  } else {
    file->failed = sent.error();  // kept for flush(): close(2) must not report success
  }
  return sent;
}

std::vector<Ino> Store::gathered_inos() {
  std::lock_guard lock(m_gather_mutex);
  std::vector<Ino> inos;
  inos.reserve(m_gathered.size());
  for (const auto& [ino, file] : m_gathered) {
    inos.push_back(ino);
  }
  return inos;
}

void Store::settle_all() {
  if (m_gathered_count.load() != 0) {
    (void)send_all_gathered();  // an error waits for that file's flush()
  }
}

void Store::settle_changed(std::initializer_list<Ino> inos) {
  if (m_gathered_count.load() != 0) {
    for (Ino ino : inos) {
      (void)settle(ino);  // what this mount shows of it is the server's again (an error waits for the close)
    }
  }
}

Status Store::each_gathered(const std::function<Status(Ino)>& step) {
  Status first;
  for (Ino ino : gathered_inos()) {
    if (Status st = step(ino); !st && first.ok()) {
      first = st;
    }
  }
  return first;
}

Status Store::flush_all() {
  Status dirs = send_dir_changes();
  Status files = each_gathered([this](Ino ino) { return flush(ino); });
  return dirs.ok() ? files : dirs;
}

Store::Dropped Store::drop_gathered() {
  Dropped dropped;
  for (Ino ino : gathered_inos()) {
    auto [file, lock] = lock_live(ino);
    if (file) {
      ++dropped.files;
      if (file->create) {
        ++dropped.creates;
        --m_deferred_creates;
        file->create.reset();
      }
      file->live = false;
      std::lock_guard gather(m_gather_mutex);
      m_gathered_bytes -= file->bytes;
      file->bytes = 0;
      file->changes.clear();
    }
    forget_gathered(ino);  // (one already sent, whose refusal waited for a close that never came: forgotten too)
  }
  {
    std::lock_guard lock(m_dirs_mutex);
    m_unlink_sender_stop = true;  // (it sends nothing after the batch on its way)
  }
  m_unlinks_cv.notify_all();
  std::lock_guard send(m_dir_send_mutex);  // (a batch on its way lands first)
  std::lock_guard lock(m_dirs_mutex);
  dropped.dirs = m_dirs.size();
  for (const auto& [ino, dir] : m_dirs) {
    m_attrs.forget(ino);
  }
  m_dirs_waiting -= m_dirs.size();
  m_dirs.clear();
  dropped.unlinks = m_unlinks.size();
  for (const WaitingUnlink& u : m_unlinks) {
    m_removed.forget(u.parent, u.name);
  }
  m_unlinks_waiting -= m_unlinks.size();
  m_dirs_waiting -= m_unlinks.size();
  m_unlinks.clear();
  m_unlink_parents.clear();  // (no batch on its way: m_dir_send_mutex)
  return dropped;
}

Status Store::send_all_gathered() {
  (void)send_dir_changes(DirRefusal::none);  // (a refusal: never sent, whatever the snapshot waits)
  return each_gathered([this](Ino ino) { return settle(ino, true); });
}

}  // namespace redisfs
