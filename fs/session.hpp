// Session: the state of one mount, shared by every op.
//
// The kernel counts the lookups we hand out (every entry reply, every
// readdirplus entry) and gives them back with FORGET. An inode that loses
// its last name while this host still holds a lookup of it (an open file,
// typically) becomes an orphan: Store::unlink/rename report it, and its
// data lives on in Redis until the kernel forgets it here, then purge()
// frees it. Lookup counts are kept only for inodes the kernel knows.
//
// Locking: one mutex guards the counts and the orphan set; nothing else
// happens under it (no Redis call, no reply).
#pragma once

#include <fuse_lowlevel.h>

#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "result.hpp"
#include "store.hpp"

namespace redisfs {

struct MountOptions {
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  bool read_only = false;
};

class Session {
 public:
  Session(Store& store, MountOptions opts) : m_store(store), m_opts(opts) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Store& store() { return m_store; }
  const MountOptions& options() const { return m_opts; }

  // One more lookup handed to the kernel: count it before the reply goes.
  void add_lookup(Ino ino);
  // Gives back `n` lookups; true when `ino` is an orphan of this mount that
  // the kernel no longer knows: the caller purges it after replying.
  [[nodiscard]] bool forget(Ino ino, std::uint64_t n);
  // `ino` lost its last link by an op of this mount. True when the kernel
  // holds no lookup of it: the caller purges it after replying.
  [[nodiscard]] bool orphaned(Ino ino);

  // Store::purge, logging a failure (the orphan stays in <prefix>:ORPHANS
  // and the next mount's purge_dead_orphans frees it).
  void purge(Ino ino);
  // At unmount: the kernel does not forget everything, so purge what is
  // left of this mount's orphans.
  void purge_orphans();

  std::size_t known_inodes();

 private:
  Store& m_store;
  MountOptions m_opts;
  std::mutex m_mutex;
  std::unordered_map<Ino, std::uint64_t> m_lookups;
  std::unordered_set<Ino> m_orphans;
};

Session& session_of(fuse_req_t req);
Caller caller_of(fuse_req_t req);
// ENAMETOOLONG for a name longer than k_name_max bytes.
Status check_name(std::string_view name);

}  // namespace redisfs
