// KernelSizes: the size the kernel holds of each regular file of the live
// tree, as this mount last told it: what close-to-open needs (op_open.cpp).
//
// The kernel keeps a file's attributes for attr_timeout and reads no byte
// past the size it holds. A file another host grew or shrank since this
// mount last answered for it would be read cut at the old size, or would
// show it to stat, until then, although an open reads its bytes afresh:
// close-to-open, as NFS promises it, is that an open sees what another
// host's close left. So every reply that hands the kernel a regular
// file's attributes records their size here (an entry, an attribute
// reply, a listing's entry), and so does a short READ (the kernel then
// cuts the size it holds to the end of what came); an open reads the
// server's size (Store::open_file's `seen`), and when it differs from
// what the kernel was told the daemon has the kernel drop the file's
// attributes (attributes only: no page, no inode lock), so that its next
// stat, or read past the size, asks. A file not held here counts as told
// another size (one more GETATTR). The kernel's own changes of the size
// (a write past the end, a truncate) make it ask by itself: it drops the
// size it holds there.
//
// Not closed: two replies carrying one file's attributes, in flight at
// once from two threads, may reach the kernel in the other order than they
// were recorded here; the kernel may then hold the other one's size until
// attr_timeout, as it would without this. At most k_max files are held;
// past that it starts again empty. Off (nothing held, every size differs)
// on a mount whose files nothing else changes: a writeback mount, a
// read-only mount of a snapshot. Thread safe.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "store/inode.hpp"

namespace redisfs {

class KernelSizes {
 public:
  static constexpr std::size_t k_max = std::size_t{1} << 16;

  explicit KernelSizes(bool on) : m_on(on) {}

  // The kernel was handed `attr` (recorded for a regular file only).
  void told(const Attr& attr) { told(attr.ino, attr.mode, attr.size); }
  void told(Ino ino, std::uint32_t mode, std::uint64_t size) {
    if (!m_on || !S_ISREG(mode)) {
      return;
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_sizes.size() >= k_max && m_sizes.count(ino) == 0) {
      m_sizes.clear();
    }
    m_sizes[ino] = size;
  }
  // A READ of `ino` answered short, ending at `end`: the kernel cuts the
  // size it holds there if it held more.
  void read_short(Ino ino, std::uint64_t end) {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (auto it = m_sizes.find(ino); it != m_sizes.end() && it->second > end) {
      it->second = end;
    }
  }
  // Whether the kernel may hold another size of `ino` than `size`.
  bool differs(Ino ino, std::uint64_t size) {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto it = m_sizes.find(ino);
    return it == m_sizes.end() || it->second != size;
  }
  // The kernel forgot `ino`, or a reply telling it did not reach it.
  void forget(Ino ino) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_sizes.erase(ino);
  }

 private:
  const bool m_on;
  std::mutex m_mutex;
  std::unordered_map<Ino, std::uint64_t> m_sizes;
};

}  // namespace redisfs
