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
#include <algorithm>
#include <vector>

#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

namespace {

// At most this many directories wait: a batch stays one bounded round
// trip, and the daemon's memory bounded.
constexpr std::size_t k_dirs_waiting_max = 1024;

}  // namespace

bool Store::gather_dir_setattr(Ino ino, const SetAttrRequest& req, Attr& out) {
  const std::int64_t skew = m_server_skew_ns.load();
  if (!m_opts.writeback || m_opts.read_only || m_opts.gather_file_max == 0 || req.size || !_changes_attrs(req) ||
      skew == INT64_MIN || m_deferred_creates.load() != 0) {
    return false;
  }
  std::lock_guard lock(m_dirs_mutex);
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
  struct Sent {
    Ino ino;
    SetAttrRequest change;
    std::int64_t instant;
  };
  std::vector<Sent> batch;
  {
    std::lock_guard lock(m_dirs_mutex);
    batch.reserve(m_dirs.size());
    for (const auto& [ino, dir] : m_dirs) {
      batch.push_back({ino, dir.change, dir.attr.ctime_ns});
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
    for (const auto& [ino, req, instant] : batch) {
      const std::string inode = m_keys.inode(ino);
      std::vector<std::string> args = setattr_args(req, true);
      args.push_back(std::to_string(instant));
      const std::string_view keys[] = {sb, freeze, inode};
      const std::vector<std::string_view> argv(args.begin(), args.end());
      (*c)->append_eval(lua::setattr, keys, argv);
    }
    for (const auto& [ino, req, instant] : batch) {
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
    std::lock_guard lock(m_dirs_mutex);
    if (!m_dirs_failure) {
      m_dirs_failure = std::move(refused);
      m_dirs_failure_shown = false;
    }
  }
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
