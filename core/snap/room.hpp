// Room in the server for what a tool stages: a copy (its staging prefix,
// then the snapshot), a restore (the staged filesystem), each about the
// filesystem's size; a dump (the metadata, its blocks in flight, and what
// the writers copy for its snapshot: snapshot.hpp, CowKeeper, looks every
// second). All on a server whose mounts are writing too: a tool that ran
// it out of memory would fail midway (OOM) and, until it cleaned up, every
// mount's writes on that server would fail with ENOSPC.
//
// So a tool looks at the server before it stages anything, and again as
// it stages (due, check: more often as the server fills): once the free
// memory is below a margin it stops, with ENOSPC and one line saying what
// the server has, and cleans up as after any failure. The margin is what
// the writers keep: 5% of the limit, at most 256 MiB. A caller that
// batches keeps its batches within until_due(), so that even a small
// server's margin is not passed by a batch (by one huge key, it may).
// Nothing is refused up front from the superblock's counters: a damaged
// filesystem's may say anything, and a damaged filesystem is one a user
// most wants to copy or dump.
//
// The limit is the server's maxmemory, or with none (0: no limit), the
// server machine's memory (INFO total_system_memory, which other programs
// share: a bound, not a promise). No guard when it is unknown (neither is
// given, or an ACL denies INFO) or when the server evicts keys. On a Redis
// Cluster, the INFO goes to the master of the slot the tool stages in
// (the guard's `at` key, e.g. the staging prefix's superblock: a copy into
// another slot fills that one), not to the node the tool was given.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

// INFO memory's numbers (0 when absent).
struct ServerMemory {
  std::uint64_t used = 0;       // used_memory
  std::uint64_t maxmemory = 0;  // 0: no limit
  std::uint64_t total_system = 0;
  bool evicting = false;  // a maxmemory-policy other than noeviction

  static ServerMemory from_info(std::string_view info);
  // maxmemory, or the machine's memory; 0 when neither is known, or when
  // the server evicts keys to make room (then it never refuses a write for
  // want of it, and sits at its limit as a cache does: the user allowed
  // it, --allow-evicting-server).
  std::uint64_t limit() const { return evicting ? 0 : maxmemory != 0 ? maxmemory : total_system; }
  std::uint64_t free() const { return limit() > used ? limit() - used : 0; }
  // What the writers keep (see above).
  std::uint64_t margin() const;
  // "used 11.4 MiB of maxmemory 12.0 MiB" (or "of the machine's 23.4 GiB").
  std::string said() const;
};

class RoomGuard {
 public:
  // `what`: the lines' subject, e.g. "the copy", "the restore"; `at`: a
  // key of the prefix it stages in (see above; "": the connection's node).
  explicit RoomGuard(std::string what, std::string at = {}) : m_what(std::move(what)), m_at(std::move(at)) {}
  // The prefix it stages in is chosen later: a key of it.
  void stages_at(std::string at) { m_at = std::move(at); }

  // About `bytes` more were staged: whether to look at the server again
  // (check). The first call says so; then once a quarter of the room the
  // last look found above the margin is staged (a key may cost Redis twice
  // its bytes), at least every 16 MiB, at most every 64 KiB.
  bool due(std::uint64_t bytes) {
    m_since += bytes;
    return m_since >= m_next;
  }
  // Looks at the server: ENOSPC once its free memory is below the margin.
  Status check(Connection& c);
  // Whether `bytes` more fit above the margin now, by the same rule: for
  // a step that stages that much at once and may be skipped (a dump's
  // handover of its snapshot). Yes when there is no guard; else EAGAIN,
  // "the server has no room for <what> above ...".
  static Status fits(Connection& c, std::string_view at, std::uint64_t bytes, std::string_view what);
  // How many bytes may be staged before the next look is due: a caller
  // that batches its writes keeps a batch within it (at least one key).
  std::uint64_t until_due() const { return m_next > m_since ? m_next - m_since : 0; }
  // due(), then check() if so: for a caller whose connection is idle.
  Status staged(Connection& c, std::uint64_t bytes) { return due(bytes) ? check(c) : Status{}; }
  // The most a caller that stages and frees as it goes (a dump's blocks in
  // flight) should hold at once: what due() lets pass between two looks
  // (a quarter of the room above the margin), 0 before the first look.
  std::uint64_t span() const { return m_next; }

 private:
  std::string m_what;
  std::string m_at;
  std::uint64_t m_since = 0;
  std::uint64_t m_next = 0;
};

// INFO memory of the server `c` talks to (a cluster: the master of the
// slot of `at`, or with none, of the keyless commands' slot).
Result<ServerMemory> server_memory(Connection& c, std::string_view at = {});

}  // namespace redisfs
