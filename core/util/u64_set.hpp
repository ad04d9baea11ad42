// A set of 64-bit numbers (hashes of names, inode numbers), open
// addressing: 8 to 16 bytes per element, so a million elements cost a few
// MB, not their names. dump_io dedupes the fields of big hashes with it,
// the key walk (key_walk.hpp) the inodes it has seen.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace redisfs {

class U64Set {
 public:
  // False when `v` was there already. 0 and 1 are one element (0 marks an
  // empty slot).
  bool insert(std::uint64_t v) {
    if (v == 0) {
      v = 1;
    }
    if ((m_size + 1) * 2 > m_slots.size()) {
      grow();
    }
    std::size_t mask = m_slots.size() - 1;
    for (std::size_t i = _mix(v) & mask;; i = (i + 1) & mask) {
      if (m_slots[i] == v) {
        return false;
      }
      if (m_slots[i] == 0) {
        m_slots[i] = v;
        ++m_size;
        return true;
      }
    }
  }
  void clear() {
    m_slots.clear();
    m_slots.shrink_to_fit();
    m_size = 0;
  }
  std::size_t size() const { return m_size; }

 private:
  static std::uint64_t _mix(std::uint64_t h) { return (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull; }
  void grow() {
    std::vector<std::uint64_t> old;
    old.swap(m_slots);
    m_slots.assign(std::max<std::size_t>(64, old.size() * 2), 0);
    m_size = 0;
    for (std::uint64_t h : old) {
      if (h != 0) {
        insert(h);
      }
    }
  }

  std::vector<std::uint64_t> m_slots;
  std::size_t m_size = 0;
};

}  // namespace redisfs
