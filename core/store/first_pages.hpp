// FirstPages: the first page of a directory listing, read by the getattr
// that comes between its opendir and its first readdir, in that getattr's
// round trip.
//
// rm -rf (and every fts walk that checks a directory before it descends)
// opens each directory twice: the first listing reads a page and its
// entries' attributes, which invalidates the directory's atime in the
// kernel, so the second opendir's fstat sends a GETATTR. That GETATTR
// must be answered by the server (a directory another mount removed fails
// there: op_getattr.cpp, AttrCache), and the listing that follows reads
// the first page again (HSCAN): two round trips, one after the other. While
// a listing of the directory waits for its first page (opened here, not
// read yet), the getattr sends the HSCAN of the first page with its
// HGETALL, and that listing's first read takes the page instead of asking
// again (Store::getattr, Store::readdir): one round trip.
//
// What a listing then shows: the names the server held when the getattr
// read them, which came after the listing was opened (a page read before
// the opendir is never taken), as POSIX allows for a directory that
// changes after opendir; a rewinddir reads the directory again, as ever.
// A page is taken once, by a listing opened before it was read, and only
// for `ttl` after it was read (the attribute timeout: no older than the
// getattr's own answer may be); a page not taken goes when no listing of
// its directory waits any more. At most one page per directory is kept.
// Nor is one read before a change of its names by this mount landed
// (changed): a listing with attributes (readdirplus) makes the kernel
// link a name to its inode, and a name this mount renamed or removed in
// between would stay linked there (a second name of a file that has one:
// its unlink then removed nothing, and a writeback mount, taking that
// unlink for the file's last, dropped the file's later times).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "store/dir_page.hpp"
#include "store/keys.hpp"

namespace redisfs {

class FirstPages {
 public:
  using Clock = std::chrono::steady_clock;

  // A ttl of 0 turns it off: wanted() is always false.
  explicit FirstPages(double ttl_seconds = 0);

  // A listing of `dir` that reads pages of up to `max` entries was opened
  // and has not read its first page yet; done() when it has, or was closed
  // without.
  void waits(Ino dir, std::size_t max);
  void done(Ino dir);
  // The page size of a listing of `dir` that waits for its first page; 0:
  // none waits.
  std::size_t wanted(Ino dir);

  // The first page of `dir` (cursor 0) and its parent, read by a request
  // sent at `sent`.
  void keep(Ino dir, Clock::time_point sent, DirPage page, Ino parent);
  // This mount changed the names of `dir` (a create, link, rename or
  // removal: landed on the server, or answered before it did): a page read
  // before now is stale, kept or on its way.
  void changed(Ino dir, Clock::time_point now = Clock::now());
  // The page kept for `dir`, if it was read after `opened` and not more
  // than the ttl ago; it is then gone.
  struct Taken {
    DirPage page;
    Ino parent = 0;
  };
  std::optional<Taken> take(Ino dir, Clock::time_point opened, Clock::time_point now = Clock::now());

 private:
  struct Entry {
    int waiting = 0;  // listings opened that have not read their first page
    std::size_t max = 0;
    std::optional<Taken> page;
    Clock::time_point sent{};     // when the page's request was sent
    Clock::time_point changed{};  // this mount's last change of its names
  };

  Clock::duration m_ttl;
  std::mutex m_mutex;
  std::unordered_map<Ino, Entry> m_dirs;
};

// NamesChanged: when this mount last changed the names of a directory, for
// the pages of its listings read before (FirstPages' page, a page a
// listing holds across the kernel's requests: DirReader): such a page may
// hold a name since renamed or removed, which a readdirplus must not hand
// the kernel with its inode, or the kernel links it (a second name of a
// file that has one: an unlink of it removed nothing on the server, and a
// writeback mount, taking it for the file's last name, answered the
// file's later time write-backs itself). The names themselves may be
// listed (POSIX: a directory that changes after opendir). 4,096 slots by
// the directory's number: two directories that share one cost a listing
// its attributes (the lookups that follow), never a stale name's inode.
class NamesChanged {
 public:
  using Clock = std::chrono::steady_clock;
  void changed(Ino dir, Clock::time_point now = Clock::now()) {
    std::atomic<Clock::rep>& slot = m_at[dir % m_at.size()];
    Clock::rep seen = slot.load();
    const Clock::rep t = now.time_since_epoch().count();
    while (seen < t && !slot.compare_exchange_weak(seen, t)) {
    }
  }
  // Whether a change of `dir` landed (or was answered) at `asked` or after.
  bool since(Ino dir, Clock::time_point asked) const {
    return m_at[dir % m_at.size()].load() >= asked.time_since_epoch().count();
  }

 private:
  std::array<std::atomic<Clock::rep>, 4096> m_at{};
};

}  // namespace redisfs
