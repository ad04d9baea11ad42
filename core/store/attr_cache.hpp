// AttrCache: the attributes our own changes left on an inode, for a while.
//
// After every create, unlink or mkdir the kernel forgets the attributes of
// the parent directory, and with default_permissions its next permission
// check asks for them again: one GETATTR, one round trip to Redis, per file
// made or removed. The script that made the change already read the
// parent's new attributes, atomically with the change, so the daemon can
// answer that GETATTR itself. Likewise after a write or a read of a file
// (its mtime, size or atime changed, so the kernel asks again): write.lua
// and touch_atime.lua return the inode's fields with their change.
//
// The answer is exactly as fresh as the kernel's own attribute cache would
// have been had it kept the attributes: an entry is good for `ttl` seconds
// after the script ran (the caller passes the kernel the time left, so a
// change made through another mount still shows within attr_timeout).
//
// The hard part is concurrency. Two changes to one directory can run on
// two connections, and the server may run them in the other order than
// they began here; the attributes of whichever finishes last here are then
// not necessarily the newest. So a change first marks every inode it names
// (KEYS) as changing, and its result is kept only if no other change of
// that inode was in flight when it began and none began before it ended.
// Anything that changes an inode without going through begin()/end() must
// call forget().
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "store/inode.hpp"

namespace redisfs {

class AttrCache {
 public:
  using Clock = std::chrono::steady_clock;

  // A change in flight: what begin() saw of each inode it names.
  class Change {
   public:
    Change() = default;

   private:
    friend class AttrCache;
    struct Mark {
      Ino ino = 0;
      std::uint64_t gen = 0;
      bool alone = false;  // no other change of this inode was in flight
    };
    std::vector<Mark> m_marks;
  };

  struct Hit {
    Attr attr;
    double age = 0;  // seconds since the change that read it
  };

  explicit AttrCache(double ttl_seconds = 0, std::size_t max_entries = 4096);

  bool enabled() const { return m_ttl.count() > 0; }

  // Marks `inos` as being changed: their cached attributes are dropped at
  // once, and a change that overlaps this one cannot store its result.
  Change begin(const std::vector<Ino>& inos);
  // Ends a change begun by begin(). `fresh` is what the change read of some
  // of its inodes, atomically with it: each is kept if the rules allow.
  void end(const Change& change, const std::vector<Attr>& fresh = {});

  std::optional<Hit> get(Ino ino, Clock::time_point now = Clock::now());
  void forget(Ino ino);

 private:
  struct Entry {
    std::uint64_t gen = 0;       // bumped by each begin()
    unsigned in_flight = 0;      // changes begun and not yet ended
    std::optional<Attr> attr;
    Clock::time_point read_at{};
  };

  Clock::duration m_ttl;
  std::size_t m_max;
  std::mutex m_mutex;
  std::unordered_map<Ino, Entry> m_entries;
};

}  // namespace redisfs
