// The .snapshots directory and the snapshots' views (see snapdir.hpp).
#include "snapdir.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "log.hpp"
#include "ops.hpp"
#include "store/superblock.hpp"
#include "util/text.hpp"

namespace redisfs {

using Clock = std::chrono::steady_clock;

// A view's Store is closed after this long without an op, and its slot may
// then go to another snapshot (if the kernel holds none of its inodes).
static constexpr auto k_view_idle = std::chrono::seconds(60);
// The longest the kernel keeps what it knows of .snapshots and the views.
static constexpr double k_view_timeout = 1.0;
// How old the list of snapshots may be when .snapshots is listed or a name
// in it is looked up; a name not in it is looked up again once it is this
// old (a snapshot just taken shows at once).
static constexpr auto k_list_age = std::chrono::milliseconds(1000);
static constexpr auto k_list_age_missing = std::chrono::milliseconds(100);
// How often an op's ENOENT or an open may ask whether a view is gone.
static constexpr auto k_gone_check_pause = std::chrono::milliseconds(100);
// The block size .snapshots reports (it holds no data).
static constexpr std::uint32_t k_snapdir_block = 4096;

static std::int64_t _ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

SnapDir::SnapDir(Pool& pool, Session& session, std::string origin, SnapdirMode mode)
    : m_pool(pool), m_session(session), m_origin(std::move(origin)), m_mode(mode) {}

ReplyTree SnapDir::tree(std::uint32_t block_size) const {
  return ReplyTree{block_size, std::min(m_session.options().attr_timeout, k_view_timeout),
                   std::min(m_session.options().entry_timeout, k_view_timeout)};
}

std::vector<SnapshotRef> SnapDir::list(std::chrono::milliseconds max_age) {
  std::lock_guard<std::mutex> refreshing(m_list_mutex);
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_have_list && Clock::now() - m_listed < max_age) {
      return m_list;
    }
  }
  Result<std::vector<SnapshotRef>> got = make_error(EIO, "no connection");
  if (Result<Pool::Lease> lease = m_pool.acquire(); lease) {
    got = snapshots_of(**lease, m_origin);
  } else {
    got = lease.error();
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  m_listed = Clock::now();
  if (!got) {
    log_warning("cannot list the snapshots of " + m_origin + " for " + std::string(k_snapdir_name) + ": " +
                got.error().message);
    return m_list;
  }
  std::vector<SnapshotRef> named;
  for (SnapshotRef& ref : *got) {
    if (check_file_name(ref.prefix).ok()) {
      named.push_back(std::move(ref));
    } else {
      log_debug(std::string(k_snapdir_name) + ": snapshot " + ref.prefix + " is not listed: its name is not a file name");
    }
  }
  m_list = std::move(named);
  m_have_list = true;
  return m_list;
}

bool SnapDir::slot_free(const View& view, const std::vector<bool>& known) const {
  auto idle = Clock::now() - Clock::time_point(Clock::duration(view.last_used.load()));
  return !known[view.slot] && idle >= k_view_idle;
}

std::shared_ptr<View> SnapDir::view_of(const SnapshotRef& ref) {
  std::lock_guard<std::mutex> lock(m_mutex);
  for (unsigned slot = 1; slot < m_fresh; ++slot) {
    std::shared_ptr<View>& v = m_slots[slot];
    // (A view of another snapshot under the same name is left to
    // check_gone, which asks the server: `ref` may come from an older list.)
    if (v && v->prefix == ref.prefix && v->identity == ref.identity && !v->gone) {
      v->last_used = _ticks(Clock::now());
      return v;
    }
  }
  unsigned slot = 0;
  if (m_fresh <= k_max_views) {
    slot = m_fresh++;
  } else {
    // Every slot was given once: take one the kernel holds no inode of,
    // idle for a while (an op under way on it would hand out its inodes).
    std::vector<bool> known(k_snapdir_slot + 1, false);
    for (Ino ino : m_session.known_above(k_max_inode)) {
      known[view_slot(ino)] = true;
    }
    for (unsigned s = 1; s <= k_max_views && slot == 0; ++s) {
      if (!m_slots[s] || slot_free(*m_slots[s], known)) {
        slot = s;
      }
    }
    if (slot == 0) {
      return nullptr;
    }
  }
  auto v = std::make_shared<View>();
  v->prefix = ref.prefix;
  v->identity = ref.identity;
  v->slot = slot;
  v->last_used = _ticks(Clock::now());
  m_slots[slot] = v;
  return v;
}

std::shared_ptr<View> SnapDir::view_in(unsigned slot) {
  if (slot == 0 || slot > k_max_views) {
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_slots[slot];
}

std::shared_ptr<Store> SnapDir::store_of(View& view, Error& error) {
  std::lock_guard<std::mutex> lock(view.mutex);
  if (view.gone) {
    return nullptr;
  }
  view.last_used = _ticks(Clock::now());
  if (view.store) {
    return view.store;
  }
  StoreOptions so;
  so.view = true;
  so.noatime = true;
  so.sync_replicas = 0;
  so.gather_file_max = 0;
  Result<std::unique_ptr<Store>> opened = Store::open(m_pool, view.prefix, so);
  if (!opened) {
    if (opened.error().code == ENOENT) {
      view.gone = true;  // deleted since it was listed
      return nullptr;
    }
    error = opened.error();
    return nullptr;
  }
  if ((*opened)->identity() != view.identity) {
    view.gone = true;  // another snapshot under the same name since it was listed
    return nullptr;
  }
  log_debug(std::string(k_snapdir_name) + "/" + view.prefix + ": opened (slot " + std::to_string(view.slot) + ")");
  view.store = std::shared_ptr<Store>(std::move(*opened));
  view.opened = true;
  return view.store;
}

bool SnapDir::check_gone(View& view, bool force) {
  if (view.gone) {
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(view.mutex);
    auto now = Clock::now();
    if (!force && now - view.checked < k_gone_check_pause) {
      return false;
    }
    view.checked = now;
  }
  Result<Pool::Lease> lease = m_pool.acquire();
  if (!lease) {
    return false;
  }
  Status same = check_filesystem_identity(**lease, Keys(view.prefix), view.identity, "the snapshot");
  if (same && !view.written) {
    // (a set, the snapshot's change record, answers WRONGTYPE: unchanged)
    Result<Reply> changed = (*lease)->command({"GET", Keys(view.prefix).changed()});
    if (changed.ok() && changed->view().str() == k_changed_written) {
      view.written = true;
      log_info(std::string(k_snapdir_name) + "/" + view.prefix +
               ": the snapshot was mounted writable (--writable-snapshot); its files are read again at each open");
    }
  }
  if (same || same.code() != ESTALE) {
    return false;
  }
  std::lock_guard<std::mutex> lock(view.mutex);
  if (!view.gone.exchange(true)) {
    log_info(std::string(k_snapdir_name) + "/" + view.prefix + ": " + same.error().message +
             "; its view answers ESTALE");
  }
  view.store.reset();
  return true;
}

void SnapDir::watch(fuse_session* se) {
  std::vector<std::shared_ptr<View>> views;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (unsigned slot = 1; slot < m_fresh; ++slot) {
      if (m_slots[slot] && !m_slots[slot]->invalidated) {
        views.push_back(m_slots[slot]);
      }
    }
  }
  auto now = Clock::now();
  for (const std::shared_ptr<View>& v : views) {
    if (!v->gone) {
      {
        std::lock_guard<std::mutex> lock(v->mutex);
        if (v->store && now - Clock::time_point(Clock::duration(v->last_used.load())) >= k_view_idle) {
          v->store.reset();  // ops under way keep theirs until they end
          log_debug(std::string(k_snapdir_name) + "/" + v->prefix + ": closed (idle)");
        }
      }
      // (A view never opened: the kernel holds none of its inodes.)
      if (!v->opened || !check_gone(*v, true)) {
        continue;
      }
    }
    // Gone: the kernel forgets its name in .snapshots, and the attributes
    // and pages of every inode of it that it holds.
    v->invalidated = true;
    std::size_t inodes = 0;
    for (Ino ino : m_session.known_above(k_max_inode)) {
      if (view_slot(ino) == v->slot && fuse_lowlevel_notify_inval_inode(se, ino, 0, 0) == 0) {
        ++inodes;
      }
    }
    (void)fuse_lowlevel_notify_inval_entry(se, k_snapdir_ino, v->prefix.data(), v->prefix.size());
    log_debug(std::string(k_snapdir_name) + "/" + v->prefix + ": asked the kernel to forget " +
              counted(inodes, "inode", "inodes") + " of the gone view");
  }
}

void SnapDir::shadowed() {
  if (!m_shadow_said.exchange(true)) {
    log_info("the root holds a real entry named " + std::string(k_snapdir_name) +
             ": it is shown, and the snapshots' directory is not reachable through this mount");
  }
}

namespace view {

namespace {

// A view's inode and what serves it, for the length of one op.
struct Target {
  std::shared_ptr<View> view;
  std::shared_ptr<Store> store;
  Ino inner = 0;
  ReplyTree tree;

  Attr seen(Attr attr) const {
    attr.ino = view_ino(view->slot, attr.ino);
    return attr;
  }
};

// The listing of .snapshots, fixed at opendir: offset i + 3 follows entry i
// (0 is the start, 1 follows ".", 2 follows "..").
struct SnapdirHandle {
  std::vector<std::pair<std::string, Ino>> entries;
};

}  // namespace

static SnapDir* _snapdir(fuse_req_t req) { return session_of(req).snapdir(); }

// The view of `ino` and its Store; none after replying ESTALE (the
// snapshot is gone, or the slot is no view) or the error that kept the
// Store from opening.
static std::optional<Target> _target(fuse_req_t req, Ino ino, std::string_view op) {
  SnapDir* sd = _snapdir(req);
  std::shared_ptr<View> v = sd != nullptr ? sd->view_in(view_slot(ino)) : nullptr;
  if (!v || v->gone) {
    reply_err(req, ESTALE);
    return std::nullopt;
  }
  Error error{EIO, "cannot open the snapshot"};
  std::shared_ptr<Store> store = sd->store_of(*v, error);
  if (!store) {
    if (v->gone) {
      reply_err(req, ESTALE);
    } else {
      log_op_error(op, ino, {}, make_error(error.code, v->prefix + ": " + error.message));
      reply_err(req, error);
    }
    return std::nullopt;
  }
  return Target{v, store, view_inner(ino), sd->tree(store->block_size())};
}

// A Store call of the view failed: an inode found missing asks whether
// the snapshot is gone (then ESTALE).
static void _fail(fuse_req_t req, Target& t, std::string_view op, Ino ino, std::string_view name, const Error& error) {
  if ((error.code == ENOENT || error.code == ESTALE) && _snapdir(req)->check_gone(*t.view)) {
    reply_err(req, ESTALE);
    return;
  }
  log_op_error(op, ino, name, error);
  reply_err(req, error);
}

// .snapshots itself: read-only, owned like the root, as old as the newest
// snapshot in it.
static Result<Attr> _snapdir_attr(Session& session, const std::vector<SnapshotRef>& list) {
  TRY_ASSIGN(Attr root, session.store().getattr(k_root_ino));
  Attr a;
  a.ino = k_snapdir_ino;
  a.mode = S_IFDIR | 0555;
  a.uid = root.uid;
  a.gid = root.gid;
  a.nlink = 2 + list.size();
  a.parent = k_root_ino;
  std::int64_t newest = root.ctime_ns;
  for (const SnapshotRef& ref : list) {
    newest = std::max(newest, ref.snapshot_created_ns);
  }
  a.atime_ns = a.mtime_ns = a.ctime_ns = newest;
  return a;
}

void lookup_snapdir(fuse_req_t req, Session& session) {
  SnapDir& sd = *session.snapdir();
  Result<Attr> attr = _snapdir_attr(session, sd.list(k_list_age));
  if (!attr) {
    reply_fail(req, "lookup", k_root_ino, k_snapdir_name, attr.error());
    return;
  }
  reply_entry(req, session, sd.tree(k_snapdir_block), *attr, "lookup");
}

// lookup of a snapshot's name in .snapshots: its view's root.
static void _lookup_snapshot(fuse_req_t req, SnapDir& sd, std::string_view name) {
  std::vector<SnapshotRef> list = sd.list(k_list_age);
  auto find = [&] { return std::find_if(list.begin(), list.end(), [&](const SnapshotRef& r) { return r.prefix == name; }); };
  auto it = find();
  if (it == list.end()) {
    list = sd.list(k_list_age_missing);  // taken just now?
    it = find();
  }
  if (it == list.end()) {
    reply_negative_entry(req, sd.tree(k_snapdir_block));
    return;
  }
  std::shared_ptr<View> v = sd.view_of(*it);
  if (!v) {
    log_op_error("lookup", k_snapdir_ino, name,
                 make_error(ENFILE, "the kernel holds " + std::to_string(k_max_views) +
                                        " snapshots' views already, the most a mount can show at once"));
    reply_err(req, ENFILE);
    return;
  }
  std::optional<Target> t = _target(req, view_ino(v->slot, k_root_ino), "lookup");
  if (!t) {
    return;
  }
  Result<Attr> root = t->store->getattr(k_root_ino);
  if (!root) {
    _fail(req, *t, "lookup", k_snapdir_ino, name, root.error());
    return;
  }
  reply_entry(req, sd.session(), t->tree, t->seen(*root), "lookup");
}

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (Status st = check_name(name); !st) {
    reply_err(req, st.error());
    return;
  }
  if (parent == k_snapdir_ino) {
    SnapDir* sd = _snapdir(req);
    if (sd == nullptr) {
      reply_err(req, ESTALE);
      return;
    }
    _lookup_snapshot(req, *sd, name);
    return;
  }
  std::optional<Target> t = _target(req, parent, "lookup");
  if (!t) {
    return;
  }
  Result<Attr> attr = t->store->lookup(t->inner, name);
  if (!attr && attr.code() == ENOENT) {
    if (_snapdir(req)->check_gone(*t->view)) {
      reply_err(req, ESTALE);
    } else {
      reply_negative_entry(req, t->tree);
    }
    return;
  }
  if (!attr) {
    _fail(req, *t, "lookup", parent, name, attr.error());
    return;
  }
  if (attr->ino == k_root_ino) {
    _fail(req, *t, "lookup", parent, name, make_error(EIO, "an entry names the root directory (inode 1)"));
    return;
  }
  reply_entry(req, session_of(req), t->tree, t->seen(*attr), "lookup");
}

void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (ino == k_snapdir_ino && session.snapdir() != nullptr) {
    SnapDir& sd = *session.snapdir();
    Result<Attr> attr = _snapdir_attr(session, sd.list(k_list_age));
    if (!attr) {
      reply_fail(req, "getattr", ino, {}, attr.error());
      return;
    }
    reply_attr(req, session, sd.tree(k_snapdir_block), *attr, "getattr");
    return;
  }
  std::optional<Target> t = _target(req, ino, "getattr");
  if (!t) {
    return;
  }
  Result<Attr> attr = t->store->getattr(t->inner);
  if (!attr) {
    _fail(req, *t, "getattr", ino, {}, attr.error());
    return;
  }
  reply_attr(req, session, t->tree, t->seen(*attr), "getattr");
}

void readlink(fuse_req_t req, fuse_ino_t ino) {
  std::optional<Target> t = _target(req, ino, "readlink");
  if (!t) {
    return;
  }
  Result<std::string> target = t->store->readlink(t->inner);
  if (!target) {
    _fail(req, *t, "readlink", ino, {}, target.error());
    return;
  }
  reply_readlink(req, *target);
}

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  SnapDir* sd = _snapdir(req);
  if (ino == k_snapdir_ino && sd != nullptr) {
    auto h = std::make_unique<SnapdirHandle>();
    for (const SnapshotRef& ref : sd->list(k_list_age)) {
      std::shared_ptr<View> v = sd->view_of(ref);
      // (Past k_max_views views the kernel holds, an entry has the
      // directory's own number until its lookup finds a slot.)
      h->entries.emplace_back(ref.prefix, v ? view_ino(v->slot, k_root_ino) : k_snapdir_ino);
    }
    fi->fh = reinterpret_cast<std::uint64_t>(h.release());
    fi->keep_cache = 0;
    fi->cache_readdir = 0;
    if (!reply_open(req, fi)) {
      delete reinterpret_cast<SnapdirHandle*>(fi->fh);  // no RELEASEDIR comes
    }
    return;
  }
  std::optional<Target> t = _target(req, ino, "opendir");
  if (!t) {
    return;
  }
  Result<Attr> attr = t->store->getattr(t->inner);
  if (!attr) {
    _fail(req, *t, "opendir", ino, {}, attr.error());
    return;
  }
  if (!attr->is_dir()) {
    reply_err(req, ENOTDIR);
    return;
  }
  unsigned slot = t->view->slot;
  Ino parent = t->inner == k_root_ino ? k_snapdir_ino : view_ino(slot, attr->parent != 0 ? attr->parent : t->inner);
  op::open_dir_handle(req, fi, *t->store, t->tree, t->inner, ino, parent, view_ino(slot, 0), t->store);
}

// The attributes a readdirplus of .snapshots gives the entry of view
// inode `ino` (its root): none (nullopt) when it has no slot, is gone, or
// its Store does not open or answer; a lookup of the name then brings them,
// or says what is wrong.
static std::optional<Attr> _view_root_attr(SnapDir& sd, Ino ino, ReplyTree& tree) {
  std::shared_ptr<View> v = ino != k_snapdir_ino ? sd.view_in(view_slot(ino)) : nullptr;
  Error error{EIO, "cannot open the snapshot"};
  std::shared_ptr<Store> store = v && !v->gone ? sd.store_of(*v, error) : nullptr;
  if (!store) {
    return std::nullopt;
  }
  Result<Attr> root = store->getattr(k_root_ino);
  if (!root || !kernel_refuses(*root).empty()) {
    return std::nullopt;
  }
  tree = sd.tree(store->block_size());
  root->ino = view_ino(v->slot, root->ino);
  return root.value();
}

// A listing of .snapshots; readdirplus hands each snapshot's root with its
// attributes (a lookup, counted once the reply is complete, as
// op_readdir.cpp does), so `ls -l .snapshots` sends no LOOKUP per entry.
static void _list_snapdir(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  const auto& h = *reinterpret_cast<SnapdirHandle*>(fi->fh);
  SnapDir* sd = _snapdir(req);
  std::string buf(size, '\0');
  std::size_t used = 0;
  std::vector<Ino> counted;
  for (auto i = static_cast<std::size_t>(std::max<off_t>(off, 0)); i < h.entries.size() + 2; ++i) {
    const char* name = i == 0 ? "." : i == 1 ? ".." : h.entries[i - 2].first.c_str();
    const Ino ino = i == 0 ? k_snapdir_ino : i == 1 ? k_root_ino : h.entries[i - 2].second;
    ReplyTree tree;
    std::optional<Attr> attr = plus && i >= 2 && sd != nullptr ? _view_root_attr(*sd, ino, tree) : std::nullopt;
    fuse_entry_param e{};  // "." and "..": no attributes (entry ino 0), as in any directory
    if (attr) {
      e = make_entry(tree, *attr);
    } else {
      e.attr.st_ino = ino;
      e.attr.st_mode = S_IFDIR;
    }
    auto next = static_cast<off_t>(i + 1);
    std::size_t need = plus ? fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next)
                            : fuse_add_direntry(req, buf.data() + used, size - used, name, &e.attr, next);
    if (need > size - used) {
      break;
    }
    used += need;
    if (attr) {
      counted.push_back(attr->ino);
    }
  }
  Session& session = session_of(req);
  for (Ino ino : counted) {
    session.add_lookup(ino, S_IFDIR);
  }
  reply_dir(req, session, std::string_view(buf.data(), used), counted);
}

void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (ino == k_snapdir_ino) {
    _list_snapdir(req, size, off, fi, false);
  } else {
    op::readdir(req, ino, size, off, fi);
  }
}

void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (ino == k_snapdir_ino) {
    _list_snapdir(req, size, off, fi, true);
  } else {
    op::readdirplus(req, ino, size, off, fi);
  }
}

void releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == k_snapdir_ino) {
    delete reinterpret_cast<SnapdirHandle*>(fi->fh);
    fi->fh = 0;
    reply_ok(req);
  } else {
    op::releasedir(req, ino, fi);
  }
}

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0) {
    reply_err(req, EROFS);
    return;
  }
  std::optional<Target> t = _target(req, ino, "open");
  if (!t) {
    return;
  }
  if (_snapdir(req)->check_gone(*t->view)) {
    reply_err(req, ESTALE);  // its cached pages are another snapshot's
    return;
  }
  // A snapshot does not change (another one under its name gets other
  // inode numbers), unless a mount made it writable.
  fi->keep_cache = t->view->written ? 0 : 1;
  fi->direct_io = 0;
  fi->fh = 0;
  fi->noflush = 1;
  (void)reply_open(req, fi);  // (nothing held)
}

void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  if (off < 0) {
    reply_err(req, EINVAL);
    return;
  }
  std::optional<Target> t = _target(req, ino, "read");
  if (!t) {
    return;
  }
  Store::ReadPieces data;
  if (Status st = t->store->read_pieces(t->inner, static_cast<std::uint64_t>(off), size, data); !st) {
    _fail(req, *t, "read", ino, {}, st.error());
    return;
  }
  reply_pieces(req, data.pieces);
}

// As op::lseek, from the snapshot's blocks (nothing of it is gathered).
void lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* /*fi*/) {
  if (op::lseek_answered(req, off, whence)) {
    return;
  }
  std::optional<Target> t = _target(req, ino, "lseek");
  if (!t) {
    return;
  }
  Result<std::uint64_t> at = t->store->seek_data(t->inner, static_cast<std::uint64_t>(off), whence == SEEK_DATA);
  if (!at) {
    if (at.error().code == ENXIO) {
      reply_err(req, ENXIO);
    } else {
      _fail(req, *t, "lseek", ino, {}, at.error());
    }
    return;
  }
  reply_lseek(req, *at);
}

void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (ino == k_snapdir_ino) {
    reply_err(req, ENODATA);
    return;
  }
  std::optional<Target> t = _target(req, ino, "getxattr");
  if (!t) {
    return;
  }
  Result<std::string> value = t->store->getxattr(t->inner, name);
  if (!value) {
    _fail(req, *t, "getxattr", ino, name, value.error());
    return;
  }
  reply_sized(req, *value, size);
}

void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  if (ino == k_snapdir_ino) {
    reply_sized(req, {}, size);
    return;
  }
  std::optional<Target> t = _target(req, ino, "listxattr");
  if (!t) {
    return;
  }
  LeftOut left_out;
  Result<std::vector<std::string>> names = t->store->listxattr(t->inner, left_out);
  log_left_out("listxattr", ino, left_out, "attribute name", "removes such attributes");
  if (!names) {
    _fail(req, *t, "listxattr", ino, {}, names.error());
    return;
  }
  reply_names(req, *names, size);
}

void statfs(fuse_req_t req, fuse_ino_t ino) {
  if (ino == k_snapdir_ino) {
    op::statfs(req, k_root_ino);
    return;
  }
  std::optional<Target> t = _target(req, ino, "statfs");
  if (!t) {
    return;
  }
  Result<StatFs> fs = t->store->statfs();
  if (!fs) {
    _fail(req, *t, "statfs", ino, {}, fs.error());
    return;
  }
  reply_statfs(req, op::statvfs_of(*fs));
}

void nothing(fuse_req_t req) { reply_ok(req); }

void refuse(fuse_req_t req) { reply_err(req, EROFS); }

}  // namespace view
}  // namespace redisfs
