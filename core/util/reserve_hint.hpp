// reserve_hint: room for a table's expected size, taken at once.
//
// A vector grown by doubling holds, at its peak, the old copy beside the
// new one, and leaves up to half the new one unused: for a table of a
// million inodes that is the difference between its size and three times
// it. The tools that build such tables (fsck, a dump's verify, diff) know
// roughly how many elements come, from a count someone else wrote (the
// superblock's 'inodes', a dump header's record count), so they reserve
// that room first. The count is only a hint and may be damaged or hostile:
// the room is capped at `max` elements, a failed allocation is ignored
// (the table then grows as it would have), and pages are only touched as
// elements arrive, so a count too high costs address space, not memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <new>

namespace redisfs {

// The most inodes a count read from a server or a dump may reserve room
// for: 16M (1.4 GB of address space for fsck's nodes, 0.8 GB for diff's
// records), which a damaged counter cannot exceed.
inline constexpr std::uint64_t k_inodes_hint_max = std::uint64_t{16} << 20;

// A few more than counted (`expected`): a counter lagging behind, the root.
template <class Vector>
void reserve_hint(Vector& v, std::uint64_t expected, std::uint64_t max) {
  std::uint64_t n = std::min(expected, max);
  n = std::min(n + n / 64 + 64, max);
  if (n <= v.capacity()) {
    return;
  }
  try {
    v.reserve(static_cast<typename Vector::size_type>(n));
  } catch (const std::bad_alloc&) {
    // only a hint
  }
}

}  // namespace redisfs
