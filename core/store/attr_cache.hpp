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
//
// Reads also leave a hint here (note_accessed): a read's reply showed the
// file's access recorded (atime after mtime and ctime), so, under relatime,
// the next reads need not send the script that records one. It lives and
// dies like the attributes (ttl; begin() and forget() drop it), and a read
// that trusts it still checks its own reply (Store::read_pieces).
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

  // The access of `ino` is recorded, at `atime_ns` (the hint above).
  void note_accessed(Ino ino, std::int64_t atime_ns, Clock::time_point now = Clock::now());
  // The atime of the last note_accessed of `ino`, if it still holds.
  std::optional<std::int64_t> accessed(Ino ino, Clock::time_point now = Clock::now());

 private:
  struct Entry {
    std::uint64_t gen = 0;       // bumped by each begin()
    unsigned in_flight = 0;      // changes begun and not yet ended
    std::optional<Attr> attr;
    Clock::time_point read_at{};
    std::optional<std::int64_t> accessed;  // note_accessed's atime
    Clock::time_point accessed_at{};
  };
  // It holds attributes or a hint younger than ttl.
  bool fresh(const Entry& e, Clock::time_point now) const;

  Clock::duration m_ttl;
  std::size_t m_max;
  std::mutex m_mutex;
  std::unordered_map<Ino, Entry> m_entries;
};

}  // namespace redisfs
