// NodeTable: a count, a 4-bit tag and a flag per 64-bit key (the daemon's
// table of the inodes the kernel holds a lookup of: the lookup count, the
// S_IFMT bits the kernel knows the inode as, and whether the kernel may
// hold pages of it).
//
// Open addressing with linear probing, one 16-byte slot per element (the
// key, then the count and the tag packed in one word) and a load of at
// most 4/5: 20 to 40 bytes per element, where a node-based map costs about
// 80 and more allocations than elements. A listing of a 200,000-entry
// directory with readdirplus hands the kernel 200,000 lookups: 4 MiB here.
// Removal shifts the elements that follow back (no tombstones), and the
// table shrinks to a quarter when it is at most 1/10 full, so memory is
// given back as the kernel forgets (bytes() tells the owner when a large
// block went, to trim the allocator).
//
// Counts go up to 2^59 - 1 (a lookup a nanosecond would take 18 years). Key
// 0 marks an empty slot: never a key (no inode is numbered 0). Not thread
// safe: the owner locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace redisfs {

class NodeTable {
 public:
  static constexpr std::uint64_t k_count_max = (std::uint64_t{1} << 59) - 1;

  // One more count of `key` (nonzero), whose tag (0..15) is now `tag`; its
  // flag stays as it was (unset for a new key).
  void add(std::uint64_t key, std::uint32_t tag) {
    if ((m_size + 1) * 5 > m_slots.size() * 4) {
      rehash(m_slots.empty() ? k_min_slots : m_slots.size() * 2);
    }
    std::size_t i = find_slot(key);
    Slot& s = m_slots[i];
    if (s.key == 0) {
      s.key = key;
      ++m_size;
    }
    s.packed = ((s.packed >> k_count_shift) + 1) << k_count_shift | (s.packed & k_flag) | (tag & 0xF);
  }

  // Sets the flag of `key`, until the key leaves the table; false when it
  // is not there.
  bool set_flag(std::uint64_t key) {
    if (m_size == 0 || key == 0) {
      return false;
    }
    Slot& s = m_slots[find_slot(key)];
    if (s.key == 0) {
      return false;
    }
    s.packed |= k_flag;
    return true;
  }
  bool flag(std::uint64_t key) const {
    const Slot* s = find(key);
    return s != nullptr && (s->packed & k_flag) != 0;
  }

  // The count of `key` (0: not in the table) and its tag.
  std::uint64_t count(std::uint64_t key) const {
    const Slot* s = find(key);
    return s == nullptr ? 0 : s->packed >> k_count_shift;
  }
  std::uint32_t tag(std::uint64_t key) const {
    const Slot* s = find(key);
    return s == nullptr ? 0 : static_cast<std::uint32_t>(s->packed & 0xF);
  }
  bool contains(std::uint64_t key) const { return find(key) != nullptr; }

  // Takes `n` counts of `key` away; the key leaves the table when none is
  // left. False when the key was not there.
  bool release(std::uint64_t key, std::uint64_t n) {
    if (m_size == 0 || key == 0) {
      return false;
    }
    std::size_t i = find_slot(key);
    Slot& s = m_slots[i];
    if (s.key == 0) {
      return false;
    }
    if ((s.packed >> k_count_shift) > n) {
      s.packed -= n << k_count_shift;
      return true;
    }
    erase_at(i);
    if (m_slots.size() > k_min_slots && m_size * 10 <= m_slots.size()) {
      rehash(m_slots.size() / 4 < k_min_slots ? k_min_slots : m_slots.size() / 4);
    }
    return true;
  }

  std::size_t size() const { return m_size; }
  // The bytes its slots take.
  std::size_t bytes() const { return m_slots.capacity() * sizeof(Slot); }

  // Calls fn(key, count, tag) for every element, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const Slot& s : m_slots) {
      if (s.key != 0) {
        fn(s.key, s.packed >> k_count_shift, static_cast<std::uint32_t>(s.packed & 0xF));
      }
    }
  }

 private:
  struct Slot {
    std::uint64_t key = 0;
    std::uint64_t packed = 0;  // count << 5 | flag << 4 | tag
  };
  static constexpr unsigned k_count_shift = 5;
  static constexpr std::uint64_t k_flag = 0x10;
  static constexpr std::size_t k_min_slots = 64;

  std::size_t home(std::uint64_t key) const {
    key ^= key >> 32;  // the high bits (a snapshot view's slot) count too
    return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ull) >> m_shift);
  }
  // The slot of `key`, or the empty slot where it would go.
  std::size_t find_slot(std::uint64_t key) const {
    const std::size_t mask = m_slots.size() - 1;
    std::size_t i = home(key);
    while (m_slots[i].key != 0 && m_slots[i].key != key) {
      i = (i + 1) & mask;
    }
    return i;
  }
  const Slot* find(std::uint64_t key) const {
    if (m_size == 0 || key == 0) {
      return nullptr;
    }
    const Slot& s = m_slots[find_slot(key)];
    return s.key == 0 ? nullptr : &s;
  }
  // Empties slot i and moves back each element after it that may sit
  // there (its home is not strictly between the hole and itself).
  void erase_at(std::size_t hole) {
    const std::size_t mask = m_slots.size() - 1;
    for (std::size_t j = (hole + 1) & mask; m_slots[j].key != 0; j = (j + 1) & mask) {
      std::size_t h = home(m_slots[j].key);
      bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (!stays) {
        m_slots[hole] = m_slots[j];
        hole = j;
      }
    }
    m_slots[hole] = Slot{};
    --m_size;
  }
  void rehash(std::size_t slots) {
    std::vector<Slot> old;
    old.swap(m_slots);
    m_slots.assign(slots, Slot{});
    m_shift = 64;
    for (std::size_t n = slots; n > 1; n >>= 1) {
      --m_shift;
    }
    const std::size_t mask = slots - 1;
    for (const Slot& s : old) {
      if (s.key != 0) {
        std::size_t i = home(s.key);
        while (m_slots[i].key != 0) {
          i = (i + 1) & mask;
        }
        m_slots[i] = s;
      }
    }
  }

  std::vector<Slot> m_slots;
  std::size_t m_size = 0;
  unsigned m_shift = 64;
};

}  // namespace redisfs
