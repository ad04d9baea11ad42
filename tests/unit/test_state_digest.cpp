// The state digest's choice of keys (dump_incremental.hpp): the kinds whose
// fields it counts, as verify of a chain asks them (digest_has_kind), are
// the kinds digest_counts counts a field of; the rest of the digest is
// tested against a server (redis/test_diff, cli/snap_incremental).
#include <doctest/doctest.h>

#include <string_view>

#include "snap/dump_incremental.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("state_digest");

TEST_CASE("digest_has_kind names exactly the kinds digest_counts counts a field of") {
  // A field of each kind's own that the digest counts, where it counts one.
  auto counts_some_field = [](KeyKind kind) {
    for (std::string_view field : {"format", "mode", "name", "user.a", "1", "atime"}) {
      if (digest_counts(kind, field)) {
        return true;
      }
    }
    return false;
  };
  int in_digest = 0;
  for (int k = 0; k <= static_cast<int>(KeyKind::Unknown); ++k) {
    auto kind = static_cast<KeyKind>(k);
    CAPTURE(k);
    CHECK(digest_has_kind(kind) == counts_some_field(kind));
    in_digest += digest_has_kind(kind) ? 1 : 0;
  }
  CHECK(in_digest == 5);  // SB, INODE, DIR, XATTR, ORPHANS
  CHECK_FALSE(digest_has_kind(KeyKind::Block));
  CHECK_FALSE(digest_has_kind(KeyKind::Open));
}

TEST_SUITE_END();
