// Prefetch: a small file's first bytes, read in the round trip of its open.
//
// Reading a file cold costs three round trips: its LOOKUP (often answered
// by the listing in front of it), its OPEN (open.lua counts the open on
// the server) and its first READ. A read-write mount in the default mode
// drops a file's pages at every open, so after an open for reading the
// kernel's READs are sure to come, and for a small file they ask for its
// beginning (a writeback mount keeps them: the daemon asks for this only
// of a file the kernel cannot hold pages of, Session::may_hold_pages). So
// Store::open_file sends the read of the first
// bytes (the MULTI of Store::read_pieces, relatime's touch included) in
// front of open.lua, in the same round trip, and the open's handle keeps
// what came back. The open's READs answer from it (Store::read_prefetched),
// without a round trip, while all of these hold:
// - no change of the inode through this mount began, and no write of it
//   waits in the Store, since the read was sent (AttrCache::watch: every
//   change marks the inodes it names), so this mount reads what it wrote;
// - the read was sent less than the attribute cache's ttl ago: the bytes
//   are as fresh as the attributes the kernel holds (close-to-open: a
//   change another host closed before this open is in them);
// - the READ lies within the bytes read, or the file ended within them.
// Otherwise the READ goes to the server as any other, and the handle drops
// the prefetch; it drops it too after the READ that reaches its last byte
// (the kernel's read-ahead asks for a file in several READs: a reader
// with a small buffer gets 32 KiB first, then the rest). An open that is
// never read still recorded its access under relatime (as an NFS server
// does for the client's read-ahead).
//
// What every open of the process holds at once is bounded (k_budget): past
// it an open reads nothing ahead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "redis/redis.hpp"
#include "store/attr_cache.hpp"

namespace redisfs {

class Prefetch {
 public:
  // The most an open reads ahead: a file of up to this size is read whole
  // by its open's READs (one, or two for a reader with a small buffer).
  static constexpr std::uint64_t k_max_bytes = 128 * 1024;
  // The most every open of this process holds at once.
  static constexpr std::uint64_t k_budget = 64ULL * 1024 * 1024;

  Prefetch(const Prefetch&) = delete;
  Prefetch& operator=(const Prefetch&) = delete;
  ~Prefetch() { s_held.fetch_sub(m_reserved); }

  // Reserves `bytes` of the budget: false when it is spent.
  static bool reserve(std::uint64_t bytes);
  // What the opens of this process hold now.
  static std::uint64_t held() { return s_held.load(); }

 private:
  friend class Store;
  explicit Prefetch(std::uint64_t reserved) : m_reserved(reserved) {}

  std::uint64_t m_reserved;
  Reply m_exec;                   // the read's EXEC: {type, size, atime, mtime, ctime}, then block 0, 1, ...
  std::uint64_t m_covered = 0;    // bytes [0, m_covered) were asked for
  std::uint64_t m_file_size = 0;  // the file's size as of the read
  AttrCache::Change m_watch;
  std::chrono::steady_clock::time_point m_sent{};

  static inline std::atomic<std::uint64_t> s_held{0};
};

inline bool Prefetch::reserve(std::uint64_t bytes) {
  std::uint64_t now = s_held.load();
  do {
    if (now + bytes > k_budget) {
      return false;
    }
  } while (!s_held.compare_exchange_weak(now, now + bytes));
  return true;
}

}  // namespace redisfs
