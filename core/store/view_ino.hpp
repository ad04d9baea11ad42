// Inode numbers of the snapshot views (redisfs(1), "SNAPSHOTS IN THE
// MOUNT"): how one mount hands the kernel the inodes of its live tree, of
// the .snapshots directory and of every snapshot browsed under it, without
// two of them ever sharing a number. Pure: no I/O, unit-tested on its own.
//
// A filesystem's inode numbers are below 2^53 (k_max_inode, superblock.hpp),
// and a snapshot, a copy of its origin, uses the same numbers. The kernel's
// inode number (fuse_ino_t) has 64 bits: the 11 above the 53 are a slot.
//
//   slot 0                  the live tree: the numbers are the Redis ones
//   slots 1 .. k_max_views  a snapshot's view: (slot << 53) | its number
//   slot k_snapdir_slot     the .snapshots directory itself (k_snapdir_ino)
//
// So telling a live inode from every other is one compare
// (ino <= k_max_inode), and at most k_max_views (2046) snapshots can be
// known to the kernel at once (fs/snapdir.cpp reuses the slot of a view the
// kernel has forgotten).
#pragma once

#include <cstdint>

#include "store/keys.hpp"
#include "store/superblock.hpp"

namespace redisfs {

inline constexpr unsigned k_view_shift = 53;
static_assert((std::uint64_t{1} << k_view_shift) - 1 == k_max_inode, "a view's slot sits above every inode number");
inline constexpr unsigned k_snapdir_slot = (1u << (64 - k_view_shift)) - 1;  // 2047
inline constexpr unsigned k_max_views = k_snapdir_slot - 1;                   // slots 1 .. 2046
inline constexpr Ino k_snapdir_ino = (Ino{k_snapdir_slot} << k_view_shift) | k_root_ino;

// Whether the kernel's inode number `ino` is one of the live tree's.
constexpr bool is_live_ino(Ino ino) { return ino <= k_max_inode; }
// The slot of `ino` (0: live; k_snapdir_slot: the .snapshots directory).
constexpr unsigned view_slot(Ino ino) { return static_cast<unsigned>(ino >> k_view_shift); }
// The filesystem's own number of a view's inode.
constexpr Ino view_inner(Ino ino) { return ino & k_max_inode; }
// What the kernel sees of inode `inner` of the snapshot in `slot`
// (1 .. k_max_views; `inner` at most k_max_inode).
constexpr Ino view_ino(unsigned slot, Ino inner) { return (Ino{slot} << k_view_shift) | inner; }

}  // namespace redisfs
