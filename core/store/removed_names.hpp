// RemovedNames: the names this mount itself removed a moment ago (unlink,
// rmdir, the source of a rename), so that the kernel's lookup of one need
// not ask the server.
//
// The kernel's unlink zeroes the removed name's entry timeout (its dentry
// stays negative but is asked about again), so a program that removes a
// file and makes it again under the same name, as sqlite does with its
// journal at every commit, costs a LOOKUP round trip each time. A name this
// mount removed is absent as of the moment the removing script was sent,
// and that answer is good for as long as the kernel would have kept a
// negative entry made then (the entry timeout): the same promise as any
// negative entry the daemon hands out, never a stronger one. Another
// host's create of the name within that time is unseen here, as it is
// behind a negative dentry; a create of ours then meets EEXIST on the
// server, and op_create sends the open back to the VFS (the create forgets
// the name here first, so the new lookup asks the server).
//
// A name is forgotten when this mount makes it again (create, mkdir,
// mknod, symlink, link or rename to it, whether that succeeds or not),
// when a listing or a lookup shows it present, and at the entry timeout.
// At most `max` names are kept: when full, the expired ones go, and if
// none has expired, the older half.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/keys.hpp"

namespace redisfs {

class RemovedNames {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RemovedNames(double ttl_seconds = 0, std::size_t max = 4096);

  bool enabled() const { return m_ttl.count() > 0; }

  // A script sent at `sent` removed `name` from `dir`.
  void removed(Ino dir, std::string_view name, Clock::time_point sent);
  // `name` may be in `dir` again.
  void forget(Ino dir, std::string_view name);
  // Seconds since `name` was known absent from `dir` (less than the ttl);
  // nullopt when not known.
  std::optional<double> absent(Ino dir, std::string_view name, Clock::time_point now = Clock::now());
  std::size_t size();
  std::size_t capacity() const { return m_max; }

 private:
  static std::string key(Ino dir, std::string_view name);

  Clock::duration m_ttl;
  std::size_t m_max;
  std::mutex m_mutex;
  std::unordered_map<std::string, Clock::time_point> m_names;  // "dir/name" -> when it was absent
};

}  // namespace redisfs
