// DirNames: every name of a directory this mount is filling, and the inode
// each names, as of a moment, so that a lookup of a new name need not ask
// the server (and a writeback mount's listing need not either: below).
//
// Creating a file costs the kernel's LOOKUP of the name (negative) and then
// the CREATE: two round trips. In a directory this mount made (mkdir),
// the mount knows every name, as long as no other host changed the
// directory since. The server counts every change to a directory's entries
// in the directory inode's 'gen' field (prelude.lua: dir_changed), and the
// create/unlink/rmdir scripts return it, read atomically with their change:
// when it is exactly one more than the count the mount knew, no other
// change came between, so the mount's list is still the whole list, now as
// of that script.
//
// A name not in the list is then absent "as of" that moment, and the
// answer is good for as long as the kernel would have kept a negative entry
// made then (the entry timeout): it is the same promise as the kernel's own
// negative dentry cache, never a stronger one, as long as every writer of a
// DIR hash counts its change in 'gen' (the scripts and fsck do). The
// caller tells the kernel only the time left. When such an answer turns
// out stale (another host made the name since), the create that follows
// fails with EEXIST and op_create sends the open back to the VFS.
//
// Lists are dropped at the first doubt: a count that does not follow, a
// change of another kind (rename, link, a failed or lost script, but for
// an rmdir or rename refused because a directory is not empty: that
// refusal comes before any change, Store::eval_change), or a list grown
// past its limit. Only a mkdir starts one. When the limit is
// reached, lists that have not changed for a ttl (too old to answer for
// anything) make room, and then the older half of the others. A writeback mount's listing that read a directory
// whole, with its count, atomically, starts one too (known()).
//
// A writeback mount, the only mount of its filesystem, lists a directory
// from its list (entries(): Store::readdir), as a local filesystem lists
// one from its cache: no other host changes it, and every change this
// mount makes keeps the list or drops it as above.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/keys.hpp"

namespace redisfs {

class DirNames {
 public:
  using Clock = std::chrono::steady_clock;

  // At most `max_names` names and lists together are kept.
  explicit DirNames(double ttl_seconds = 0, std::size_t max_names = 1 << 16);

  bool enabled() const { return m_ttl.count() > 0; }

  // `dir` was just made empty, with `gen` changes counted, by a script sent
  // at `sent` (before the script ran: the list is at least that fresh).
  void start(Ino dir, std::uint64_t gen, Clock::time_point sent);
  struct Entry {
    std::string name;
    Ino ino = 0;
  };
  // A read sent at `sent` found `dir` holding `names`, and no more, with
  // `gen` changes counted (atomically: Store::first_page_known).
  void known(Ino dir, std::uint64_t gen, Clock::time_point sent, const std::vector<Entry>& names);
  // A script sent at `sent` added `name` (naming `ino`) to `dir`, or
  // removed it, and the directory's count is `gen` after it.
  void added(Ino dir, std::uint64_t gen, Clock::time_point sent, std::string_view name, Ino ino);
  void removed(Ino dir, std::uint64_t gen, Clock::time_point sent, std::string_view name);
  // `name` (naming `ino`) is being added to `dir` by a change this mount
  // has not sent yet (a writeback mount's deferred create): it is no
  // longer absent, and the count moves when that change's added() comes.
  void adding(Ino dir, std::string_view name, Ino ino);
  // Something else changed `dir`, or may have: drop its list.
  void forget(Ino dir);

  // Seconds since the moment `name` was known to be absent from `dir`;
  // nullopt when that is not known (no list, an old one, or the name is in
  // it).
  std::optional<double> absent(Ino dir, std::string_view name, Clock::time_point now = Clock::now());

  // Every name of `dir` and the inode it names, when a list no older than
  // the ttl holds fewer than `below` of them; else nullopt.
  std::optional<std::vector<Entry>> entries(Ino dir, std::size_t below, Clock::time_point now = Clock::now());
  // How many names it holds over all lists, and at most.
  std::size_t size();
  std::size_t capacity() const { return m_max; }

 private:
  // Room for one more name or list (see dir_names.cpp); it may drop any
  // list, the caller's too. Called locked.
  bool has_room(Clock::time_point now);
  void forget_locked(Ino dir);
  // added() and removed(): `ino` 0 removes.
  void changed(Ino dir, std::uint64_t gen, Clock::time_point sent, std::string_view name, Ino ino);

  struct List {
    std::unordered_map<std::string, Ino> names;
    std::uint64_t gen = 0;
    Clock::time_point as_of{};
  };
  // The list of `dir`, if one is no older than the ttl. Called locked.
  const List* fresh(Ino dir, Clock::time_point now) const;

  Clock::duration m_ttl;
  std::size_t m_max;
  std::size_t m_total = 0;  // names over all lists
  std::mutex m_mutex;
  std::unordered_map<Ino, List> m_lists;
};

}  // namespace redisfs
