// The inode numbers of the snapshot views (view_ino.hpp): the live tree,
// .snapshots and every view's slot never share a number, and a view's
// number gives back its slot and its own inode.
#include <doctest/doctest.h>

#include <set>

#include "store/superblock.hpp"
#include "store/view_ino.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("view_ino");

TEST_CASE("live inode numbers are every number a filesystem hands out, and nothing else") {
  CHECK(is_live_ino(k_root_ino));
  CHECK(is_live_ino(k_max_inode));
  CHECK_FALSE(is_live_ino(k_max_inode + 1));
  CHECK_FALSE(is_live_ino(k_snapdir_ino));
  CHECK(view_slot(k_max_inode) == 0);
}

TEST_CASE("a view's number gives back its slot and its own inode, for every slot") {
  for (unsigned slot = 1; slot <= k_max_views; ++slot) {
    for (Ino inner : {Ino{1}, Ino{2}, Ino{123456789}, k_max_inode}) {
      Ino seen = view_ino(slot, inner);
      CHECK_FALSE(is_live_ino(seen));
      CHECK(view_slot(seen) == slot);
      CHECK(view_inner(seen) == inner);
      CHECK(seen != k_snapdir_ino);
    }
  }
}

TEST_CASE(".snapshots has a slot of its own, above every view's") {
  CHECK(view_slot(k_snapdir_ino) == k_snapdir_slot);
  CHECK(k_max_views == 2046);
  CHECK(k_snapdir_slot == k_max_views + 1);
  CHECK(view_slot(view_ino(k_max_views, k_max_inode)) < view_slot(k_snapdir_ino));
  // the largest number there is still has the .snapshots slot: no view reaches it
  CHECK(view_slot(~Ino{0}) == k_snapdir_slot);
}

TEST_CASE("the same inode in the live tree and in two views gets three numbers") {
  std::set<Ino> seen;
  for (Ino inner : {Ino{1}, Ino{7}, k_max_inode}) {
    seen.insert(inner);
    seen.insert(view_ino(1, inner));
    seen.insert(view_ino(2, inner));
    seen.insert(view_ino(k_max_views, inner));
  }
  seen.insert(k_snapdir_ino);
  CHECK(seen.size() == 3 * 4 + 1);
}

TEST_SUITE_END();
