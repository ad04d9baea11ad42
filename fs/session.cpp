// Per-mount state: lookup counts, orphans, queued releases (see
// session.hpp).
#include "session.hpp"

#include <malloc.h>

#include <chrono>
#include <string>
#include <vector>

#include "log.hpp"
#include "util/text.hpp"

namespace redisfs {

// How long the release thread lets releases gather before it sends them
// (unless a script's worth, Store::k_release_batch, is queued sooner). A
// release only takes this mount's open count off the file on the server:
// close(2) does not wait for it, the file's data went before it (FLUSH),
// and an unlink or a rename on this mount sends the queued releases in
// front of itself (take_releases). Only another mount's unlink within the
// window sees the file still open and leaves an orphan, which the release
// then frees (released(): purge). Long enough that tar x, which closes a
// file every half millisecond or so, sends about ten a batch: one script,
// one round trip and three wake-ups of this thread per batch.
static constexpr auto k_release_gather = std::chrono::milliseconds(5);
// How long a purge waits for a change to take it in front (purge_later),
// when no release is queued: rm -rf removes another name within
// milliseconds, and nothing waits for a purge.
static constexpr auto k_purge_gather = std::chrono::milliseconds(20);
// SCAN pages (of 1000 keys) drop_unsure_opens reads at most.
static constexpr std::size_t k_drop_scan_calls = 1024;
// Absent names kept for invalidate_kernel, on mounts whose kernel keeps
// them at least k_long_entry_timeout seconds.
static constexpr std::size_t k_absent_max = 16384;
static constexpr double k_long_entry_timeout = 60.0;
// How often an op's ENOENT may ask whether the filesystem is gone.
static constexpr auto k_gone_check_pause = std::chrono::milliseconds(100);
// When the kernel has forgotten enough that the table of its lookups
// shrinks from at least this size, the heap is trimmed.
static constexpr std::size_t k_trim_after_bytes = std::size_t{1} << 20;

Session::Session(Store& store, MountOptions opts)
    : m_store(store), m_opts(opts), m_kernel_sizes(!opts.writeback && !opts.frozen) {
  // A writeback mount's unlink that waited (Store::defer_unlink) may leave
  // an orphan after all (another mount's open count holds the file): this
  // mount's, as _remove in op_unlink.cpp makes it. Or it may leave the
  // file links, or be refused: the file is not freed after all, and its
  // times go to the server again (is_freed).
  m_store.on_removal_landed([this](Ino ino, Store::Landed what) {
    if (what == Store::Landed::kept) {
      unfreed(ino);
      log_info("inode " + std::to_string(ino) +
               ": an unlink that waited did not free it (refused, or it keeps other links): its changes go to the "
               "server again");
      return;
    }
    if (orphaned(ino)) {
      purge_later(ino);
    }
  });
}

Session::~Session() {
  finish_releases();
  m_store.on_removal_landed({});
}

void Session::drop_unsure_opens() {
  if (gone()) {
    return;
  }
  if (!m_opens_unsure) {
    auto changed = m_store.server_changed();
    if (!changed) {
      log_warning("cannot tell whether the server changed during the mount: " + changed.error().message);
      return;
    }
    if (!*changed) {
      return;
    }
    log_info(
        "the server changed during the mount (a failover or a restart): removing this mount's open counts "
        "whose closes it may have lost");
  }
  auto dropped = m_store.drop_own_opens(k_drop_scan_calls);
  if (!dropped) {
    log_warning("cannot remove this mount's open counts left by failed opens or closes (live mounts will, "
                "once its session expires): " + dropped.error().message);
  } else if (*dropped > 0) {
    log_info("removed " + counted(*dropped, "open count", "open counts") + " left by failed opens or closes");
  }
  // Among them, perhaps an orphan's last: purge_orphans frees every orphan
  // the server still gives to this mount, not only those it knows of.
  if (auto own = m_store.own_orphans(); !own) {
    log_warning("cannot read this mount's orphans (the next mount frees them): " + own.error().message);
  } else {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_orphans.insert(own->begin(), own->end());
  }
}

bool Session::hold_opens_again() {
  if (m_opts.read_only) {
    return true;  // it records no opens
  }
  std::vector<std::pair<Ino, std::uint32_t>> held;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    held.assign(m_holds.begin(), m_holds.end());
  }
  auto raised = m_store.hold_opens(held);
  if (!raised) {
    if (!m_hold_failing) {  // (once a run of failures: the watcher tries every 2 s)
      log_warning("the server changed (a failover or a restart): cannot count again the " +
                  counted(held.size(), "open file", "open files") + " this mount holds: " + raised.error().message);
    }
    m_hold_failing = true;
    return false;
  }
  m_hold_failing = false;
  log_info("the server changed (a failover or a restart): it counts again the " +
           counted(held.size(), "open file", "open files") + " this mount holds (the server lacked " +
           std::to_string(*raised) + " of the counts: opens it lost with the restart, or had not yet recorded)");
  return true;
}

bool Session::check_gone(bool force) {
  if (gone()) {
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(m_gone_mutex);
    auto now = std::chrono::steady_clock::now();
    if (!force && now - m_gone_checked < k_gone_check_pause) {
      return false;
    }
    m_gone_checked = now;
  }
  Status same = m_store.check_same_filesystem();
  if (!same && same.code() == ESTALE) {
    mark_gone(same.error().message);
  }
  return gone();
}

void Session::mark_gone(const std::string& why) {
  if (m_gone.exchange(true)) {
    return;
  }
  log_error(why + ": every operation on this mount now fails with ESTALE; unmount it");
  std::function<void()> listener;
  {
    std::lock_guard<std::mutex> lock(m_gone_mutex);
    listener = m_gone_listener;
  }
  if (listener) {
    listener();
  }
}

void Session::on_gone(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(m_gone_mutex);
  m_gone_listener = std::move(listener);
}

void Session::invalidate_kernel(fuse_session* se) {
  std::vector<Ino> inodes{k_root_ino};
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_lookups.for_each([&inodes](Ino ino, std::uint64_t, std::uint32_t) {
      if (ino != k_root_ino) {
        inodes.push_back(ino);
      }
    });
  }
  for (Ino ino : inodes) {
    fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);  // attributes and cached data
  }
  std::size_t names = 0;
  std::vector<std::pair<Ino, std::string>> all = m_store.known_names();
  {
    std::lock_guard<std::mutex> lock(m_gone_mutex);
    all.insert(all.end(), m_absent.begin(), m_absent.end());
  }
  for (const auto& [parent, name] : all) {
    if (fuse_lowlevel_notify_inval_entry(se, parent, name.data(), name.size()) == 0) {
      ++names;
    }
  }
  log_debug("gone: asked the kernel to forget " + counted(inodes.size(), "inode", "inodes") + " and " +
            counted(names, "name", "names"));
}

void Session::opened(Ino ino, const Store::Seen& seen) {
  if (!seen || !m_kernel_sizes.differs(ino, seen->size)) {
    return;
  }
  if (fuse_session* se = m_fuse.load(); se != nullptr) {
    // (attributes only: no page to drop, no inode lock taken)
    (void)fuse_lowlevel_notify_inval_inode(se, ino, -1, 0);
  }
}

void Session::absent_name(Ino parent, std::string_view name) {
  if (m_opts.entry_timeout < k_long_entry_timeout) {
    return;  // the kernel forgets it soon enough by itself
  }
  std::lock_guard<std::mutex> lock(m_gone_mutex);
  if (m_absent.size() >= k_absent_max) {
    m_absent.erase(m_absent.begin(), m_absent.begin() + static_cast<std::ptrdiff_t>(k_absent_max / 2));
  }
  m_absent.emplace_back(parent, std::string(name));
}

void Session::open_begins(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  ++m_kernel_opens[ino];
}

bool Session::open_ends(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_kernel_opens.find(ino);
  if (it == m_kernel_opens.end() || --it->second == 0) {
    if (it != m_kernel_opens.end()) {
      m_kernel_opens.erase(it);
    }
    return true;
  }
  return false;
}

void Session::hold(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  ++m_holds[ino];
}

bool Session::holds(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_holds.count(ino) != 0;
}

void Session::release_later(Ino ino) {
  if (gone()) {
    return;  // nothing more goes to the server (its keys would be debris)
  }
  bool queued = false;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(m_release_mutex);
    if (!m_release_stop) {
      if (!m_releaser.joinable()) {
        // Started here, not in the constructor: fuse_daemonize() forks
        // after the Session exists, and threads do not survive a fork.
        m_releaser = std::thread([this] { release_loop(); });
      }
      m_releases.push_back(ino);
      // The thread waits for the first release, then for a batch's worth.
      wake = m_releases.size() == 1 || m_releases.size() == Store::k_release_batch;
      queued = true;
    }
  }
  if (!queued) {
    // the thread is gone: unmounting
    released(ino, m_store.release_files(releases_of({ino})).at(0));
  } else if (wake) {
    m_release_cv.notify_one();
  }
}

void Session::purge_later(Ino ino) {
  if (gone()) {
    return;
  }
  bool queued = false;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(m_release_mutex);
    if (!m_release_stop) {
      if (!m_releaser.joinable()) {
        m_releaser = std::thread([this] { release_loop(); });  // (see release_later)
      }
      wake = m_releases.empty() && m_purges.empty();
      m_purges.push_back(ino);
      queued = true;
    }
  }
  if (!queued) {
    purge(ino);  // the thread is gone: unmounting
  } else if (wake) {
    m_release_cv.notify_one();
  }
}

void Session::purged(Ino ino, const Result<Store::Released>& done) {
  if (gone()) {
    return;
  }
  if (done.ok() && *done == Store::Released::done) {
    log_debug("purged orphan inode " + std::to_string(ino));
    return;
  }
  // Not finished by the first attempt (a file's blocks, holders, a freeze,
  // COW, a lost reply): Store::purge goes all the way.
  purge(ino);
}

std::vector<Store::Release> Session::queued_of(const std::vector<Ino>& inos, const std::vector<Ino>& purges) {
  std::vector<Store::Release> out = releases_of(inos);
  for (Ino ino : purges) {
    out.push_back(Store::Release{ino, false, true});
  }
  return out;
}

std::vector<Store::Release> Session::releases_of(const std::vector<Ino>& inos) {
  std::vector<Store::Release> out;
  out.reserve(inos.size());
  std::lock_guard<std::mutex> lock(m_mutex);
  for (Ino ino : inos) {
    out.push_back(Store::Release{ino, m_orphans.count(ino) != 0});
  }
  return out;
}

void Session::released(Ino ino, const Result<Store::Released>& done) {
  bool purge_now = false;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    bool still_held = false;
    if (auto h = m_holds.find(ino); h != m_holds.end()) {
      still_held = --h->second > 0;
      if (!still_held) {
        m_holds.erase(h);
      }
    }
    if (done.ok() && *done == Store::Released::done) {
      // Freed, or handed to the mount that holds it: this mount is done
      // with it. (A writeback mount is the only one: freed.)
      m_orphans.erase(ino);
      m_forgotten.erase(ino);
      if (m_opts.writeback && m_lookups.contains(ino)) {
        m_freed.insert(ino);  // its kernel may still write its times back
      }
    } else if (done.ok()) {
      // an orphan nobody holds (perhaps another mount's), or one the kernel
      // forgot, leaving it to this release
      purge_now = *done == Store::Released::purge || (!still_held && m_forgotten.count(ino) != 0);
    }
  }
  if (gone()) {
    return;
  }
  if (!done) {
    // The open stays counted until the mount ends (its session expires):
    // the file may then outlive its last close, never the reverse.
    log_op_error("release", ino, {}, done.error());
    opens_unsure();
  } else if (purge_now && purge(ino)) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_orphans.erase(ino);  // the kernel's forget has nothing left to do
    m_forgotten.erase(ino);
  }
}

void Session::judge_releases(std::span<const Store::Release> releases, std::vector<Result<Store::Released>>& results) {
  if (results.size() != releases.size()) {
    results = m_store.release_files(releases);
  }
  for (std::size_t i = 0; i < releases.size(); ++i) {
    if (releases[i].purge) {
      purged(releases[i].ino, results[i]);
    } else {
      released(releases[i].ino, results[i]);
    }
  }
}

std::vector<Store::Release> Session::take_releases() {
  std::vector<Ino> batch;
  std::vector<Ino> purges;
  {
    std::lock_guard<std::mutex> lock(m_release_mutex);
    batch.swap(m_releases);
    purges.swap(m_purges);
  }
  if (gone()) {
    return {};  // nothing more goes to the server
  }
  return queued_of(batch, purges);
}

void Session::finish_releases() {
  std::thread releaser;
  {
    std::lock_guard<std::mutex> lock(m_release_mutex);
    m_release_stop = true;
    releaser = std::move(m_releaser);
  }
  m_release_cv.notify_one();
  if (releaser.joinable()) {
    releaser.join();  // it sends what is queued before it stops
  }
}

// The thread wakes at the first queued release, waits k_release_gather for
// more (or until a script's worth is queued), and sends all of them;
// whatever is queued while a batch is on its way goes in the next one.
// Purges alone wait k_purge_gather (a release queued meanwhile ends that
// wait), for a change to take them first.
void Session::release_loop() {
  std::vector<Ino> batch;
  std::vector<Ino> purges;
  std::unique_lock<std::mutex> lock(m_release_mutex);
  for (;;) {
    m_release_cv.wait(lock, [this] { return m_release_stop || !m_releases.empty() || !m_purges.empty(); });
    if (m_releases.empty() && m_purges.empty()) {
      return;  // stopping, and nothing left to send
    }
    if (!m_release_stop && m_releases.empty()) {
      m_release_cv.wait_for(lock, k_purge_gather, [this] { return m_release_stop || !m_releases.empty(); });
    }
    if (!m_release_stop && !m_releases.empty()) {
      m_release_cv.wait_for(lock, k_release_gather,
                            [this] { return m_release_stop || m_releases.size() >= Store::k_release_batch; });
    }
    batch.swap(m_releases);
    purges.swap(m_purges);
    if ((batch.empty() && purges.empty()) || gone()) {
      batch.clear();  // taken by a change, or nothing more goes to the server
      purges.clear();
      continue;
    }
    lock.unlock();
    std::vector<Store::Release> all = queued_of(batch, purges);
    std::vector<Result<Store::Released>> done = m_store.release_files(all);
    judge_releases(all, done);
    batch.clear();
    purges.clear();
    lock.lock();
  }
}

void Session::add_lookup(Ino ino, std::uint32_t type) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_lookups.add(ino, (type & S_IFMT) >> 12);
}

std::uint32_t Session::known_type(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_lookups.tag(ino) << 12;
}

void Session::pages_cached(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_lookups.set_flag(ino);
}

bool Session::may_hold_pages(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_lookups.flag(ino);
}

void Session::write_back_open_files(fuse_session* se) {
  std::vector<Ino> held;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (const auto& [ino, count] : m_holds) {
      if (m_lookups.flag(ino)) {
        held.push_back(ino);
      }
    }
  }
  for (Ino ino : held) {
    // (the kernel writes a dirty page back before it lets it go: launder)
    (void)fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
  }
}

bool Session::forget(Ino ino, std::uint64_t n) {
  bool trim = false;
  bool purge = false;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    const std::size_t before = m_lookups.bytes();
    if (m_lookups.count(ino) > n) {
      m_lookups.release(ino, n);
      return false;
    }
    m_lookups.release(ino, n);
    m_kernel_sizes.forget(ino);
    if (m_orphans.count(ino) != 0 && m_holds.count(ino) != 0) {
      m_forgotten.insert(ino);  // its release is on its way: released() frees or purges it
    } else {
      purge = m_orphans.erase(ino) > 0;
    }
    m_freed.erase(ino);
    trim = before >= k_trim_after_bytes && m_lookups.bytes() < before;
  }
  if (trim) {
    trim_heap("the kernel forgot most of the inodes it held");
  }
  return purge;
}

bool Session::orphaned(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_lookups.contains(ino)) {
    m_orphans.insert(ino);
    return false;
  }
  return true;
}

bool Session::own_orphan(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_orphans.count(ino) != 0;
}

void Session::freed(Ino ino) {
  if (!m_opts.writeback) {
    return;  // only a writeback mount's kernel writes times back (is_freed)
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_lookups.contains(ino)) {
    m_freed.insert(ino);
  }
}

void Session::unfreed(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_freed.erase(ino);
}

bool Session::is_freed(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_freed.count(ino) != 0;
}

bool Session::purge(Ino ino) {
  if (gone()) {
    return false;
  }
  Status st = m_store.purge(ino);
  if (!st) {
    log_op_error("purge", ino, {}, st.error());
    return false;
  }
  log_debug("purged orphan inode " + std::to_string(ino));
  return true;
}

void Session::purge_orphans() {
  std::vector<Ino> left;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    left.assign(m_orphans.begin(), m_orphans.end());
    m_orphans.clear();
    m_forgotten.clear();
  }
  for (Ino ino : left) {
    purge(ino);
  }
}

std::vector<Ino> Session::known_above(Ino floor) {
  std::vector<Ino> out;
  std::lock_guard<std::mutex> lock(m_mutex);
  m_lookups.for_each([floor, &out](Ino ino, std::uint64_t, std::uint32_t) {
    if (ino > floor) {
      out.push_back(ino);
    }
  });
  return out;
}

std::size_t Session::known_inodes() {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_lookups.size();
}

void trim_heap(const char* why) {
  malloc_trim(0);
  log_debug(std::string(why) + ": heap trimmed");
}

Session& session_of(fuse_req_t req) { return *static_cast<Session*>(fuse_req_userdata(req)); }

Caller caller_of(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{static_cast<std::uint32_t>(ctx->uid), static_cast<std::uint32_t>(ctx->gid)};
}

Status check_name(std::string_view name) {
  if (name.size() > k_name_max) {
    return make_error(ENAMETOOLONG, "name longer than " + std::to_string(k_name_max) + " bytes");
  }
  return {};
}

}  // namespace redisfs
