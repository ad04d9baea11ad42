// AttrCache: the attributes our own changes left on an inode, for a while.
//
// After every create, unlink or mkdir the kernel forgets the attributes of
// the parent directory, and with default_permissions its next permission
// check asks for them again: one GETATTR, one round trip to Redis, per file
// made or removed. The script that made the change knows the parent's new
// attributes, atomically with the change, so the daemon can answer that
// GETATTR itself: it sends the gen, ctime and atime of what it holds of
// the parent (basis()), and the script returns the parent's fields only
// when the server's differ, else just what it changed (dir_reply in
// prelude.lua). Likewise after a write or a read of a file (its mtime,
// size or atime changed, so the kernel asks again): write.lua and
// touch_atime.lua return the inode's fields with their change.
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
// A read outside any change (a directory listing's attributes) is kept by
// the same rule (begin_read/end_read): only if no change of the inode was
// in flight when the read was sent and none began (nor a forget() came)
// before it was kept. Its age counts from when it was sent. The caller
// keeps out a file whose changes wait in the Store (gathering): only a
// change's or a read's reply of the server is kept, never what this mount
// has not sent. What a read kept serves only those who ask for it
// (get(..., reads_too)): the next listing, never getattr. The kernel asks
// for a directory's attributes right after it opened and listed it, and
// that answer must be the server's: a directory another mount removed
// fails there, and only there, for glibc's readdir takes the ENOENT of a
// listing (getdents) for the end of the directory
// (tests/mount/readdir_cursor.sh).
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
    Clock::time_point m_sent{};  // a read's: when it was sent
  };

  struct Hit {
    Attr attr;
    double age = 0;  // seconds since the change that read it
  };

  explicit AttrCache(double ttl_seconds = 0, std::size_t max_entries = 4096);

  bool enabled() const { return m_ttl.count() > 0; }
  Clock::duration ttl() const { return m_ttl; }

  // Marks `inos` as being changed: their cached attributes are dropped at
  // once, and a change that overlaps this one cannot store its result.
  Change begin(const std::vector<Ino>& inos);
  // Ends a change begun by begin(). `fresh` is what the change read of some
  // of its inodes, atomically with it: each is kept if the rules allow.
  void end(const Change& change, const std::vector<Attr>& fresh = {});

  // Marks `inos` as being read (a listing's HGETALLs): nothing is dropped,
  // and end_read keeps what the read brought only if no change or forget()
  // of the inode came in between.
  Change begin_read(const std::vector<Ino>& inos, Clock::time_point now = Clock::now());
  // Ends a read begun by begin_read: `read_attrs` (what it read of some of
  // its inodes, in the order begin_read was given them) is kept, aged from
  // begin_read, by the rule above; one out of that order is not kept.
  void end_read(const Change& read, const std::vector<Attr>& read_attrs);

  // The attributes held of `ino`, if younger than the ttl: a change's, or
  // with `reads_too` a read's as well.
  std::optional<Hit> get(Ino ino, Clock::time_point now = Clock::now(), bool reads_too = false);
  // A watch on `ino` (what a file's bytes read ahead lean on, prefetch.hpp):
  // unchanged() holds while no change of it begins and no forget() comes
  // after this call. `own` is how many changes of the caller's own are in
  // flight on it, begun just before (a touch of the atime sent with the
  // read): a change of anyone else's in flight makes the watch fail from
  // the start, for the server may run it before or after the read. Empty
  // (never unchanged) when the cache is off.
  Change watch(Ino ino, unsigned own = 0);
  bool unchanged(const Change& watch);
  // The attributes held of `ino`, a change's or a read's and of any age,
  // when no change of it is in flight: a basis for a guess that a script
  // checks against the server's before anything leans on it (the parent's
  // attributes of Store::create_node and remove_entry: dir_read in
  // prelude.lua; the blocks an unlink names: Store::push_free_keys). Never
  // an answer by itself.
  std::optional<Attr> basis(Ino ino);
  void forget(Ino ino);

  // How many inodes it holds, and at most (the daemon's statistics).
  std::size_t size();
  std::size_t capacity() const { return m_max; }

  // The access of `ino` is recorded, at `atime_ns` (the hint above).
  void note_accessed(Ino ino, std::int64_t atime_ns, Clock::time_point now = Clock::now());
  // The atime of the last note_accessed of `ino`, if it still holds.
  std::optional<std::int64_t> accessed(Ino ino, Clock::time_point now = Clock::now());

 private:
  struct Entry {
    std::uint64_t gen = 0;       // a new number (m_gen) at each begin() and forget()
    unsigned in_flight = 0;      // changes begun and not yet ended
    std::optional<Attr> attr;
    bool by_read = false;  // `attr` is a read's (end_read), not a change's
    Clock::time_point read_at{};
    std::optional<std::int64_t> accessed;  // note_accessed's atime
    Clock::time_point accessed_at{};
  };
  // It holds attributes or a hint younger than ttl.
  bool fresh(const Entry& e, Clock::time_point now) const;
  // Makes room for `more` entries (under the lock).
  void make_room(std::size_t more);

  Clock::duration m_ttl;
  std::size_t m_max;
  std::mutex m_mutex;
  std::unordered_map<Ino, Entry> m_entries;
  // The last generation handed out: an entry dropped and made again never
  // gets a number a mark already holds.
  std::uint64_t m_gen = 0;
};

}  // namespace redisfs
