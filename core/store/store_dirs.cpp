// A writeback mount's attribute changes of directories (chmod, chown,
// utimes) wait here and reach the server together.
//
// Why: tar and cp -a restore each directory's owner, mode and times once
// they are done with it: three setattrs, three round trips and three
// scripts a directory, a fifth of a writeback tar x's round trips. On the
// only mount of its filesystem they can wait, merged into one setattr.lua
// a directory, and go with what the mount sends next, many directories in
// one round trip.
//
// When they reach the server: before anything else this mount sends
// (acquire(): every operation that reaches the server but a gathered
// file's flush, whose writes no directory's attributes touch), at
// fsyncdir, at a snapshot's request, at unmount, and within two seconds
// whatever happens (the daemon's watch calls send_dir_changes). Until then
// the server has the old attributes, and a crash loses the new ones, as a
// local filesystem loses what its journal has not written yet.
//
// What this mount answers meanwhile: the setattr's reply, which the kernel
// keeps for attr_timeout, is the attributes the AttrCache held (a change's
// reply) with the change applied, ctime and the times set to "now" at this
// mount's estimate of the server's clock; the server then sets those very
// times (setattr.lua's instant), so what the mount showed does not change
// when the server answers again (a listing's getattr). The AttrCache then forgets the
// directory: anything else asked of it goes to the server, which has the
// changes first (acquire()), and a create in it is not deferred
// (defer_create needs the parent's attributes). A change waits only if
// the mount held the directory's attributes and no deferred create waits
// (a create made before it must land before it: the parent's times, its
// setgid bit); else it goes at once, after what waits.
//
// Order: one batch is on its way at a time (m_dir_send_mutex), and a
// change counts as waiting until its reply is read (m_dirs_waiting), so an
// operation that begins while a batch is on its way waits for it in
// acquire(): none reads or changes the server before a change whose
// setattr returned before it began. The changes of one batch are of
// different directories: their order does not matter.
//
// A refusal (damage; an outage costs latency, the runner retries) cannot
// be the setattr's any more: the directory keeps the server's attributes,
// the daemon logs the refusal (its watch), and the next fsyncdir or the
// unmount returns it (send_dir_changes). A snapshot's answer does not wait
// for it: what was refused will never be sent.
//
// Unlinks wait too (defer_unlink): rm -rf's unlinks are nine tenths of
// its round trips, each an unlink.lua the server runs in 40 us while the
// daemon waits 80 us for it. An unlink waits when it removes a file's
// last link (the mount made the file and linked it nowhere else, or a
// listing or a change showed it with one link) and the mount neither
// gathers the file nor holds it open (its open count would make the file
// this mount's orphan: that unlink goes at once, with the queued releases
// in front). Unlike attribute changes they are not merged, nor held back:
// the Store's thread (unlink_sender_loop) sends them at once, one batch on
// its way at a time, so those answered while a batch is on its way go
// together in the next, and the server's work overlaps the kernel's. The
// rules above hold for them: before anything else the mount sends
// (acquire(): m_dirs_waiting counts them), in order, refusals kept alike.
// One kind waits at a time (an unlink and a utimes of its directory do not
// commute): an unlink goes at once while attribute changes wait, and the
// other way round. The parent shows the change at once (m_unlink_parents:
// its count and times, "now" at this mount's estimate of the server's
// clock), and unlink.lua takes that instant, so the server stores what
// the mount showed; a create in it is not deferred meanwhile
// (defer_create needs the parent's attributes, forgotten here). An unlink
// that leaves an orphan after all (another mount's open count: damage, or
// a dead mount's not swept yet) is handed to the daemon (on_removal_landed),
// which purges it as it purges its unlinks' orphans; one that leaves the
// file links after all (the mount misjudged its last), or is refused, is
// handed over too: the daemon stops showing it freed.
//
// So does rmdir (defer_rmdir), of a directory this mount knows empty once
// the unlinks in it that wait have landed: one whose every name it knows
// (DirNames: one it made, or listed whole) and whose names left are all
// ones it removed (RemovedNames), so that the server cannot find it not
// empty (but for damage: a refusal, as above, the next fsyncdir's EIO).
// It waits behind them in the same queue (rmdir.lua takes the instant
// too); the parent shows one link fewer; the directory it leaves, this
// mount's orphan as every rmdir's, is handed to the daemon when it lands
// (on_removal_landed), which purges it once the kernel forgets it. With
// the listings of such directories served from memory (Store::readdir),
// rm -rf of a tree this mount wrote waits for the server not at all (a
// file's close brought back its attributes: Gathered::kept), and of a tree
// it listed, only for the attributes the first page brought.
#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

namespace {

// At most this many directories wait: a batch stays one bounded round
// trip, and the daemon's memory bounded.
constexpr std::size_t k_dirs_waiting_max = 1024;
// At most this many unlinks wait (one round trip of unlink.lua calls).
constexpr std::size_t k_unlinks_waiting_max = 1024;

// A removal refused after its call returned is reported by the next
// fsyncdir: a refusal that says the directory is not as this mount knew
// it (damage) is EIO there, what fsync(2) returns for a change that did
// not land; the message keeps the server's reason.
Error _as_fsync_error(Error e) {
  if (e.code == ENOTEMPTY || e.code == ENOENT || e.code == ENOTDIR || e.code == EISDIR) {
    e.message += " (" + std::string(std::strerror(e.code)) + ")";
    e.code = EIO;
  }
  return e;
}

}  // namespace

bool Store::gather_dir_setattr(Ino ino, const SetAttrRequest& req, Attr& out) {
  const std::int64_t skew = m_server_skew_ns.load();
  if (!m_opts.writeback || m_opts.read_only || m_opts.gather_file_max == 0 || req.size || !_changes_attrs(req) ||
      skew == INT64_MIN || m_deferred_creates.load() != 0) {
    return false;
  }
  std::lock_guard lock(m_dirs_mutex);
  if (!m_unlinks.empty()) {
    return false;  // (one kind of change waits at a time: it goes after them)
  }
  auto it = m_dirs.find(ino);
  if (it == m_dirs.end()) {
    std::optional<AttrCache::Hit> held = m_attrs.get(ino);
    if (m_dirs.size() >= k_dirs_waiting_max || !held || !held->attr.is_dir() || held->attr.nlink == 0) {
      return false;
    }
    it = m_dirs.emplace(ino, WaitingDir{held->attr, {}}).first;
    ++m_dirs_waiting;
  }
  // The server gets the times this mount shows: "now" as this mount's
  // estimate of the server's clock, and that instant as the ctime (after
  // the one it held: a ctime never goes back).
  Attr& a = it->second.attr;
  const std::int64_t now = std::max(_local_ns() + skew, a.ctime_ns + 1);
  SetAttrRequest set = req;
  for (auto [time, ns] : {std::pair{&set.atime, &set.atime_ns}, std::pair{&set.mtime, &set.mtime_ns}}) {
    if (*time == SetAttrRequest::Time::Now) {
      *time = SetAttrRequest::Time::Set;
      *ns = now;
    }
  }
  _merge_setattr(it->second.change, set);
  _apply_setattr(a, set, now);
  out = a;
  m_attrs.forget(ino);  // (what it held is older than this answer)
  return true;
}

void Store::send_waiting_dirs() {
  send_waiting_attrs();
  send_waiting_unlinks();
}

void Store::dir_change_refused(Error e) {
  std::lock_guard lock(m_dirs_mutex);
  if (!m_dirs_failure) {
    m_dirs_failure = std::move(e);
    m_dirs_failure_shown = false;
  }
}

void Store::send_waiting_attrs() {
  struct Sent {
    Ino ino;
    SetAttrRequest change;  // with the instant the mount showed (ctime_ns)
  };
  std::vector<Sent> batch;
  {
    std::lock_guard lock(m_dirs_mutex);
    batch.reserve(m_dirs.size());
    for (const auto& [ino, dir] : m_dirs) {
      batch.push_back({ino, dir.change});
      batch.back().change.ctime_ns = dir.attr.ctime_ns;
    }
    m_dirs.clear();
  }
  if (batch.empty()) {
    return;
  }
  std::vector<Ino> inos;
  inos.reserve(batch.size());
  for (const Sent& sent : batch) {
    inos.push_back(sent.ino);
  }
  AttrCache::Change change = m_attrs.begin(inos);
  std::vector<Attr> fresh;  // (in the order of `inos`)
  std::optional<Error> refused;
  auto c = m_pool.acquire();
  if (!c) {
    refused = c.error();
  } else {
    const std::string sb = m_keys.sb();
    const std::string freeze = m_keys.freeze();
    for (const auto& [ino, req] : batch) {
      const std::string inode = m_keys.inode(ino);
      std::vector<std::string> args = setattr_args(req, true);
      const std::string_view keys[] = {sb, freeze, inode};
      const std::vector<std::string_view> argv(args.begin(), args.end());
      (*c)->append_eval(lua::setattr, keys, argv);
    }
    for (const auto& [ino, req] : batch) {
      // (every reply read: the connection goes back with nothing pending)
      Result<Reply> r = (*c)->read_reply();
      Result<Attr> attr = r.ok() ? attr_from_reply(ino, r->view()) : Result<Attr>(r.error());
      if (attr.ok()) {
        fresh.push_back(std::move(attr).value());
      } else if (!refused) {
        refused = std::move(attr).error();
        refused->message = "attribute change of directory " + std::to_string(ino) +
                           " (sent after its setattr returned): " + refused->message;
      }
    }
  }
  m_attrs.end(change, fresh);  // (the server's attributes: the next change of one may wait again)
  m_dirs_waiting -= batch.size();
  if (refused) {
    dir_change_refused(std::move(*refused));
  }
}

// What defer_unlink and defer_rmdir ask alike: a writeback mount that may
// let changes wait, and the inode `parent`/`name` names as far as it knows.
std::optional<Ino> Store::removal_may_wait(Ino parent, std::string_view name) {
  if (!m_opts.writeback || m_opts.read_only || m_opts.gather_file_max == 0 || m_server_skew_ns.load() == INT64_MIN ||
      m_deferred_creates.load() != 0 || !check_file_name(name) || name == "." || name == "..") {
    return std::nullopt;
  }
  std::lock_guard lock(m_names_mutex);
  auto it = m_names.find(std::to_string(parent) + '/' + std::string(name));
  if (it == m_names.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<Ino> Store::defer_unlink(Ino parent, std::string_view name, const std::function<bool(Ino)>& held,
                                       const std::function<void(Ino, bool)>& freeing) {
  std::optional<Ino> named = removal_may_wait(parent, name);
  if (!named) {
    return std::nullopt;
  }
  const Ino ino = *named;
  bool one_link = false;
  {
    std::lock_guard lock(m_names_mutex);
    one_link = m_one_link.count(ino) != 0;
  }
  // The last link of a file this mount neither gathers nor holds open
  // (one this mount made and linked nowhere else, or one a listing or a
  // change showed with one link): nothing of it is left to show once it
  // is answered. (A lookup or listing that showed a file this mount made
  // with another link took it out of m_one_link: links_seen.)
  if (!one_link) {
    std::optional<Attr> child = m_attrs.basis(ino);
    one_link = child && !child->is_dir() && child->nlink == 1;
  }
  if (!one_link || gathering(ino) || held(ino)) {
    return std::nullopt;
  }
  WaitingUnlink u{parent, std::string(name), ino, false, {}, {}, {}};
  u.keys = {m_keys.sb(),       m_keys.freeze(),  m_keys.dir(parent), m_keys.inode(parent),
            m_keys.inode(ino), m_keys.orphans(), m_keys.xattr(ino)};
  u.args = {u.name, std::to_string(ino), m_opts.session};
  push_free_keys(ino, u.keys, u.args);
  if (freeing) {
    freeing(ino, true);
  }
  if (!removal_waits(std::move(u))) {
    if (freeing) {
      freeing(ino, false);
    }
    return std::nullopt;
  }
  {
    std::lock_guard names(m_names_mutex);
    m_one_link.erase(ino);
  }
  return ino;
}

std::optional<Ino> Store::defer_rmdir(Ino parent, std::string_view name) {
  std::optional<Ino> named = removal_may_wait(parent, name);
  if (!named) {
    return std::nullopt;
  }
  const Ino ino = *named;
  // Empty once the unlinks in it that wait have landed: a directory this
  // mount knows whole (DirNames: one it made or listed whole) whose every
  // name left is one it removed since (RemovedNames: their unlinks wait,
  // ahead of this rmdir in the same queue). The kernel holds the
  // directory's lock, so no create in it comes meanwhile.
  std::optional<std::vector<DirNames::Entry>> left = m_dir_names.entries(ino, SIZE_MAX);
  if (!left) {
    return std::nullopt;
  }
  for (const DirNames::Entry& e : *left) {
    if (!m_removed.absent(ino, e.name)) {
      return std::nullopt;
    }
  }
  WaitingUnlink u{parent, std::string(name), ino, true, {}, {}, {}};
  u.keys = {m_keys.sb(),       m_keys.freeze(), m_keys.dir(parent), m_keys.inode(parent),
            m_keys.inode(ino), m_keys.dir(ino), m_keys.orphans()};
  u.args = {u.name, std::to_string(ino), m_opts.session};
  if (!removal_waits(std::move(u))) {
    return std::nullopt;
  }
  m_dir_names.forget(ino);  // (its own list: the directory is gone here)
  return ino;
}

bool Store::removal_waits(WaitingUnlink u) {
  const Ino parent = u.parent;
  const std::string name = u.name;
  {
    std::lock_guard lock(m_dirs_mutex);
    if (!m_dirs.empty() || m_unlinks.size() >= k_unlinks_waiting_max) {
      return false;  // (one kind of change waits at a time; this one goes after them)
    }
    auto shown = m_unlink_parents.find(parent);
    u.basis = shown != m_unlink_parents.end() ? std::optional<Attr>(shown->second.attr) : m_attrs.basis(parent);
    if (!u.basis || !u.basis->is_dir() || u.basis->nlink == 0 || (u.dir && u.basis->nlink <= 2)) {
      return false;
    }
    // The parent's new times: "now" as this mount's estimate of the
    // server's clock, after the ctime it held; the server sets them. An
    // rmdir takes one from its count (the subdirectory's "..").
    Attr after = *u.basis;
    after.gen += 1;
    after.mtime_ns = after.ctime_ns = std::max(_local_ns() + m_server_skew_ns.load(), u.basis->ctime_ns + 1);
    if (u.dir) {
      after.nlink -= 1;
    }
    u.args.push_back(std::to_string(after.ctime_ns));
    u.args.push_back(_basis_arg(u.basis));  // (the last)
    UnlinkedParent& p = m_unlink_parents[parent];
    p.attr = after;
    ++p.waiting;
    // What this mount knows of the name, the inode and the parent follows
    // now, before the sender can send it (and forget the name's absence
    // if the server refuses it).
    m_removed.removed(parent, name, RemovedNames::Clock::now());
    names_changed(parent);
    forget_name(parent, name);
    m_attrs.forget(u.ino);
    m_attrs.forget(parent);  // (what this mount shows of it: m_unlink_parents)
    m_unlinks.push_back(std::move(u));
    ++m_unlinks_waiting;
    ++m_dirs_waiting;
    if (!m_unlink_sender.joinable() && !m_unlink_sender_stop) {
      m_unlink_sender = std::thread([this] { unlink_sender_loop(); });
    }
  }
  m_unlinks_cv.notify_one();
  return true;
}

void Store::on_removal_landed(std::function<void(Ino, Landed)> listener) {
  std::lock_guard send(m_dir_send_mutex);  // (a batch on its way calls the listener it has)
  m_removal_landed = std::move(listener);
}

void Store::unlink_sender_loop() {
  std::unique_lock lock(m_dirs_mutex);
  for (;;) {
    m_unlinks_cv.wait(lock, [this] { return m_unlink_sender_stop || !m_unlinks.empty(); });
    if (m_unlink_sender_stop) {
      return;
    }
    if (m_session_taken.load()) {
      // Another mount holds the filesystem: what waits is dropped at the
      // unmount (drop_gathered), never sent.
      m_unlinks_cv.wait(lock, [this] { return m_unlink_sender_stop; });
      return;
    }
    lock.unlock();
    {
      std::lock_guard send(m_dir_send_mutex);
      send_waiting_dirs();  // (a refusal: for send_dir_changes)
    }
    lock.lock();
  }
}

void Store::stop_unlink_sender() {
  {
    std::lock_guard lock(m_dirs_mutex);
    m_unlink_sender_stop = true;
  }
  m_unlinks_cv.notify_all();
  if (m_unlink_sender.joinable()) {
    m_unlink_sender.join();
  }
}

std::optional<Attr> Store::unlinked_parent_attr(Ino ino) {
  std::lock_guard lock(m_dirs_mutex);
  auto it = m_unlink_parents.find(ino);
  if (it == m_unlink_parents.end()) {
    return std::nullopt;
  }
  return it->second.attr;
}

std::vector<Attr> Store::removal_landed(const WaitingUnlink& u, Result<Reply> r,
                                        std::vector<std::pair<Ino, Landed>>& landed) {
  std::vector<Attr> after;
  if (r.ok() && _is_retry(r->view())) {
    const std::string now_there(r->view().size() >= 2 ? r->view()[1].str() : "?");
    r = make_error(EIO, "the entry names inode " + now_there + " now, not " + std::to_string(u.ino) + ": not removed");
  } else if (r.ok() && u.dir) {
    after = _fresh_parent(u.parent, r->view(), 1, u.basis);
    landed.emplace_back(u.ino, Landed::orphan);  // (as every rmdir's: this mount's until the kernel forgets it)
  } else if (r.ok()) {
    after = _fresh_parent(u.parent, r->view(), 2, u.basis);
    const UnlinkOutcome out = _unlink_outcome(r->view());
    if (!out.freed && out.left && *out.left <= 0) {
      landed.emplace_back(u.ino, Landed::orphan);  // (an open count of another mount's holds it)
    } else if (!out.freed && out.left && *out.left > 0) {
      landed.emplace_back(u.ino, Landed::kept);  // (another link: this mount misjudged its last)
    }
  }
  if (!r.ok() && !u.dir) {
    landed.emplace_back(u.ino, Landed::kept);
  }
  if (!r.ok()) {
    const std::string what = u.dir ? "rmdir" : "unlink";
    Error e = std::move(r).error();
    e.message = what + " of '" + u.name + "' in directory " + std::to_string(u.parent) + " (sent after its " + what +
                " returned): " + e.message;
    dir_change_refused(_as_fsync_error(std::move(e)));
    m_removed.forget(u.parent, u.name);  // (it is still there)
  }
  return after;
}

// Every reply of a batch of removals (the connection goes back with
// nothing pending), in order. One refused and sent again (BUSY, NOSCRIPT,
// a freeze: redis.hpp, sent_again) ran after those behind it that were
// not: an rmdir behind the unlinks of its directory's last names found it
// not empty. So, as Store::write does (RunOrder), the removals the server
// refused behind the first one sent again go again, alone and in order,
// once those in front have run: a refusal wrote nothing, and the same
// arguments ask for the same change.
std::vector<Result<Reply>> Store::read_removals(Connection& c, const std::vector<WaitingUnlink>& batch) {
  std::vector<Result<Reply>> replies;
  replies.reserve(batch.size());
  RunOrder order;
  std::size_t first_again = SIZE_MAX;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    replies.push_back(c.read_reply());
    order.saw(c);
    if (c.sent_again() && first_again == SIZE_MAX) {
      first_again = i;
    }
  }
  if (!order.reordered()) {
    return replies;
  }
  for (std::size_t i = first_again + 1; i < batch.size(); ++i) {
    if (!replies[i].ok() && replies[i].error().fault == Fault::None) {
      const WaitingUnlink& u = batch[i];
      replies[i] = c.eval(u.dir ? lua::rmdir : lua::unlink, u.keys, u.args);
    }
  }
  return replies;
}

void Store::send_waiting_unlinks() {
  std::vector<WaitingUnlink> batch;
  {
    std::lock_guard lock(m_dirs_mutex);
    batch.swap(m_unlinks);
  }
  if (batch.empty()) {
    return;
  }
  std::vector<Ino> parents;
  for (const WaitingUnlink& u : batch) {
    if (std::find(parents.begin(), parents.end(), u.parent) == parents.end()) {
      parents.push_back(u.parent);
    }
  }
  AttrCache::Change change = m_attrs.begin(parents);
  std::unordered_map<Ino, Attr> fresh;  // each parent as its last unlink left it
  std::vector<std::pair<Ino, Landed>> landed;
  const auto sent = DirNames::Clock::now();
  auto c = m_pool.acquire();
  for (const WaitingUnlink& u : batch) {
    if (c) {
      const std::vector<std::string_view> keys(u.keys.begin(), u.keys.end());
      const std::vector<std::string_view> args(u.args.begin(), u.args.end());
      (*c)->append_eval(u.dir ? lua::rmdir : lua::unlink, keys, args);
    }
  }
  std::vector<Result<Reply>> replies;
  if (c) {
    replies = read_removals(**c, batch);
  } else {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      replies.emplace_back(c.error());
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const WaitingUnlink& u = batch[i];
    std::vector<Attr> after = removal_landed(u, std::move(replies[i]), landed);
    if (after.empty()) {
      m_dir_names.forget(u.parent);
      fresh.erase(u.parent);
    } else {
      m_dir_names.removed(u.parent, after[0].gen, sent, u.name);
      fresh[u.parent] = std::move(after[0]);
    }
  }
  std::vector<Attr> kept;
  for (auto& [ino, attr] : fresh) {
    kept.push_back(std::move(attr));
  }
  m_attrs.end(change, kept);  // (the server's: answers once no unlink of the parent waits)
  {
    std::lock_guard lock(m_dirs_mutex);
    for (const WaitingUnlink& u : batch) {
      auto it = m_unlink_parents.find(u.parent);
      if (it != m_unlink_parents.end() && --it->second.waiting == 0) {
        m_unlink_parents.erase(it);
      }
    }
  }
  for (const auto& [ino, what] : landed) {  // (before the counts: an unmount's flush_all waits for them)
    if (m_removal_landed) {
      m_removal_landed(ino, what);
    }
  }
  m_unlinks_waiting -= batch.size();
  m_dirs_waiting -= batch.size();
}

Status Store::send_dir_changes(DirRefusal report) {
  if (m_dirs_waiting.load() != 0) {
    std::lock_guard send(m_dir_send_mutex);
    send_waiting_dirs();
  }
  std::lock_guard lock(m_dirs_mutex);
  if (!m_dirs_failure || report == DirRefusal::none || (report == DirRefusal::once && m_dirs_failure_shown)) {
    return {};
  }
  Error failure = *m_dirs_failure;
  if (report == DirRefusal::take) {
    m_dirs_failure.reset();
    m_dirs_failure_shown = false;
  } else {
    m_dirs_failure_shown = true;
  }
  return failure;
}

}  // namespace redisfs
