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
#pragma once

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
    Clock::time_point sent{};  // when the page's request was sent
  };

  Clock::duration m_ttl;
  std::mutex m_mutex;
  std::unordered_map<Ino, Entry> m_dirs;
};

}  // namespace redisfs
