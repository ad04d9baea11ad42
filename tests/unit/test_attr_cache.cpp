// AttrCache: when a change may leave a directory's attributes behind, and
// when it must not (overlapping changes, forget, expiry).
#include <doctest/doctest.h>

#include "store/attr_cache.hpp"

using namespace redisfs;
using namespace std::chrono_literals;

static Attr _dir(Ino ino, std::int64_t mtime) {
  Attr a;
  a.ino = ino;
  a.mode = S_IFDIR | 0755;
  a.nlink = 2;
  a.mtime_ns = mtime;
  return a;
}

TEST_CASE("attr cache: a change alone keeps what it read, for the ttl") {
  AttrCache cache(1.0);
  REQUIRE(cache.enabled());
  auto change = cache.begin({7, 8});
  CHECK_FALSE(cache.get(7));  // in flight
  cache.end(change, {_dir(7, 100)});
  auto hit = cache.get(7);
  REQUIRE(hit);
  CHECK(hit->attr.mtime_ns == 100);
  CHECK(hit->age >= 0);
  CHECK(hit->age < 1.0);
  CHECK_FALSE(cache.get(8));  // named, but nothing read of it
  CHECK_FALSE(cache.get(7, AttrCache::Clock::now() + 1001ms));
}

TEST_CASE("attr cache: a new change drops the entry at once") {
  AttrCache cache(1.0);
  cache.end(cache.begin({7}), {_dir(7, 100)});
  REQUIRE(cache.get(7));
  auto change = cache.begin({7});
  CHECK_FALSE(cache.get(7));
  cache.end(change);
  CHECK_FALSE(cache.get(7));
}

TEST_CASE("attr cache: overlapping changes keep nothing, in either order") {
  AttrCache cache(1.0);
  SUBCASE("first ends first") {
    auto a = cache.begin({7});
    auto b = cache.begin({7});
    cache.end(a, {_dir(7, 100)});
    CHECK_FALSE(cache.get(7));
    cache.end(b, {_dir(7, 200)});
    CHECK_FALSE(cache.get(7));  // b may have run on the server before a
  }
  SUBCASE("second ends first") {
    auto a = cache.begin({7});
    auto b = cache.begin({7});
    cache.end(b, {_dir(7, 200)});
    cache.end(a, {_dir(7, 100)});
    CHECK_FALSE(cache.get(7));
  }
  SUBCASE("one after the other is fine again") {
    auto a = cache.begin({7});
    auto b = cache.begin({7});
    cache.end(a);
    cache.end(b);
    cache.end(cache.begin({7}), {_dir(7, 300)});
    REQUIRE(cache.get(7));
    CHECK(cache.get(7)->attr.mtime_ns == 300);
  }
  SUBCASE("changes of other inodes do not interfere") {
    auto a = cache.begin({7});
    auto b = cache.begin({9});
    cache.end(b, {_dir(9, 900)});
    cache.end(a, {_dir(7, 700)});
    CHECK(cache.get(7));
    CHECK(cache.get(9));
  }
}

TEST_CASE("attr cache: forget wins over a change in flight") {
  AttrCache cache(1.0);
  auto a = cache.begin({7});
  cache.forget(7);
  cache.end(a, {_dir(7, 100)});
  CHECK_FALSE(cache.get(7));
  cache.end(cache.begin({7}), {_dir(7, 200)});
  cache.forget(7);
  CHECK_FALSE(cache.get(7));
}

TEST_CASE("attr cache: an inode named twice by one change counts once") {
  AttrCache cache(1.0);
  auto a = cache.begin({7, 7});
  cache.end(a, {_dir(7, 100)});
  CHECK(cache.get(7));
}

TEST_CASE("attr cache: disabled with a zero ttl") {
  AttrCache cache(0);
  CHECK_FALSE(cache.enabled());
  cache.end(cache.begin({7}), {_dir(7, 100)});
  CHECK_FALSE(cache.get(7));
}

TEST_CASE("attr cache: stays bounded, and never drops an entry in flight") {
  AttrCache cache(1.0, 8);
  auto held = cache.begin({1000});
  for (Ino ino = 1; ino <= 100; ++ino) {
    cache.end(cache.begin({ino}), {_dir(ino, 1)});
  }
  CHECK(cache.get(100));
  auto overlap = cache.begin({1000});  // 1000 is still in flight: not alone
  cache.end(held, {_dir(1000, 5)});
  cache.end(overlap, {_dir(1000, 6)});
  CHECK_FALSE(cache.get(1000));
}

TEST_CASE("attr cache: a read's access hint lasts the ttl, and any change or forget drops it") {
  AttrCache cache(1.0);
  CHECK_FALSE(cache.accessed(7));
  cache.note_accessed(7, 500);
  REQUIRE(cache.accessed(7));
  CHECK(*cache.accessed(7) == 500);
  CHECK_FALSE(cache.accessed(7, AttrCache::Clock::now() + 1001ms));
  CHECK_FALSE(cache.get(7));       // a hint is not attributes
  auto change = cache.begin({7});  // a write, a setattr, a read's own touch
  CHECK_FALSE(cache.accessed(7));
  cache.end(change);
  CHECK_FALSE(cache.accessed(7));
  cache.note_accessed(7, 600);
  cache.forget(7);
  CHECK_FALSE(cache.accessed(7));
  cache.note_accessed(8, 600);  // the hint keeps its entry when a change of another inode ends
  cache.end(cache.begin({9}), {_dir(9, 1)});
  CHECK(cache.accessed(8));
  AttrCache off(0);
  off.note_accessed(7, 500);
  CHECK_FALSE(off.accessed(7));
}

TEST_CASE("attr cache: a read alone keeps what it read, aged from when it was sent") {
  AttrCache cache(1.0);
  const auto sent = AttrCache::Clock::now() - 300ms;
  auto read = cache.begin_read({7, 8}, sent);
  CHECK_FALSE(cache.get(7, AttrCache::Clock::now(), true));  // a read drops nothing, holds nothing yet
  cache.end_read(read, {_dir(7, 100)});
  CHECK_FALSE(cache.get(7));  // a read's serves only who asks for reads too
  auto hit = cache.get(7, AttrCache::Clock::now(), true);
  REQUIRE(hit);
  CHECK(hit->attr.mtime_ns == 100);
  CHECK(hit->age >= 0.3);
  CHECK_FALSE(cache.get(8, AttrCache::Clock::now(), true));  // named, nothing read of it
  CHECK_FALSE(cache.get(7, sent + 1001ms, true));            // the ttl counts from the send
  cache.end_read(cache.begin_read({7}), {_dir(7, 200)});     // a newer read replaces it
  CHECK(cache.get(7, AttrCache::Clock::now(), true)->attr.mtime_ns == 200);
  cache.end(cache.begin({7}), {_dir(7, 300)});  // a change's serves everyone
  CHECK(cache.get(7)->attr.mtime_ns == 300);
  AttrCache off(0);
  off.end_read(off.begin_read({7}), {_dir(7, 100)});
  CHECK_FALSE(off.get(7, AttrCache::Clock::now(), true));
}

TEST_CASE("attr cache: a read's attributes come in the order of its inodes, some missing") {
  AttrCache cache(1.0);
  // 8 was removed between the listing and its reads; 9 is listed twice (two
  // names of one file)
  cache.end_read(cache.begin_read({7, 8, 9, 9, 10}), {_dir(7, 100), _dir(9, 300), _dir(9, 300), _dir(10, 400)});
  const auto now = AttrCache::Clock::now();
  CHECK(cache.get(7, now, true)->attr.mtime_ns == 100);
  CHECK_FALSE(cache.get(8, now, true));
  CHECK(cache.get(9, now, true)->attr.mtime_ns == 300);
  CHECK(cache.get(10, now, true)->attr.mtime_ns == 400);
  // out of that order: not kept (never taken for another inode's)
  AttrCache other(1.0);
  other.end_read(other.begin_read({1, 2}), {_dir(2, 200), _dir(1, 100)});
  // (asked after the read: at `now`, before it began, nothing is kept)
  const auto later = AttrCache::Clock::now();
  CHECK_FALSE(other.get(1, later, true));
  REQUIRE(other.get(2, later, true));
  CHECK(other.get(2, later, true)->attr.mtime_ns == 200);
}

TEST_CASE("attr cache: a read that a change or a forget overlaps keeps nothing") {
  AttrCache cache(1.0);
  SUBCASE("a change began during the read") {
    auto read = cache.begin_read({7});
    auto change = cache.begin({7});
    cache.end(change);
    cache.end_read(read, {_dir(7, 100)});  // it may have read the server before the change
    CHECK_FALSE(cache.get(7, AttrCache::Clock::now(), true));
  }
  SUBCASE("a change began during the read and is still in flight") {
    auto read = cache.begin_read({7});
    auto change = cache.begin({7});
    cache.end_read(read, {_dir(7, 100)});
    CHECK_FALSE(cache.get(7, AttrCache::Clock::now(), true));
    cache.end(change);
    CHECK_FALSE(cache.get(7, AttrCache::Clock::now(), true));
  }
  SUBCASE("a change was in flight when the read began") {
    auto change = cache.begin({7});
    auto read = cache.begin_read({7});
    cache.end(change);
    cache.end_read(read, {_dir(7, 100)});
    CHECK_FALSE(cache.get(7, AttrCache::Clock::now(), true));
  }
  SUBCASE("a forget (a gathered file's changes sent) came during the read") {
    auto read = cache.begin_read({7});
    cache.forget(7);
    cache.end_read(read, {_dir(7, 100)});
    CHECK_FALSE(cache.get(7, AttrCache::Clock::now(), true));
  }
  SUBCASE("a forget dropped the entry, and a change made it again") {
    auto read = cache.begin_read({7});
    cache.forget(7);
    cache.end(cache.begin({7}), {_dir(7, 300)});
    cache.end_read(read, {_dir(7, 100)});
    REQUIRE(cache.get(7));
    CHECK(cache.get(7)->attr.mtime_ns == 300);  // the change's, not the older read's
  }
  SUBCASE("a change that ended before the read began is older") {
    cache.end(cache.begin({7}), {_dir(7, 300)});
    cache.end_read(cache.begin_read({7}), {_dir(7, 400)});
    CHECK(cache.get(7, AttrCache::Clock::now(), true)->attr.mtime_ns == 400);
  }
  SUBCASE("a read does not spoil a change that overlaps it") {
    auto change = cache.begin({7});
    auto read = cache.begin_read({7});
    cache.end_read(read, {_dir(7, 100)});
    cache.end(change, {_dir(7, 300)});
    REQUIRE(cache.get(7));
    CHECK(cache.get(7)->attr.mtime_ns == 300);
  }
}

TEST_CASE("attr cache: a basis is a change's or a read's attributes of any age, none while a change is in flight") {
  AttrCache cache(1.0);
  CHECK_FALSE(cache.basis(7));
  cache.end(cache.begin({7}), {_dir(7, 100)});
  REQUIRE(cache.basis(7));
  CHECK(cache.basis(7)->mtime_ns == 100);
  auto change = cache.begin({7});
  CHECK_FALSE(cache.basis(7));  // in flight, and dropped
  cache.end(change);
  CHECK_FALSE(cache.basis(7));
  auto read = cache.begin_read({8}, AttrCache::Clock::now() - 2s);
  cache.end_read(read, {_dir(8, 200)});
  CHECK_FALSE(cache.get(8, AttrCache::Clock::now(), true));  // too old to answer
  REQUIRE(cache.basis(8));                                   // still a basis: the server checks it
  CHECK(cache.basis(8)->mtime_ns == 200);
  cache.forget(8);
  CHECK_FALSE(cache.basis(8));
  AttrCache off(0);
  off.end(off.begin({7}), {_dir(7, 100)});
  CHECK_FALSE(off.basis(7));
}

TEST_CASE("attr cache: a watch holds until a change of its inode begins") {
  AttrCache cache(1.0);
  auto w = cache.watch(7);
  CHECK(cache.unchanged(w));
  cache.end(cache.begin({8}), {});  // another inode
  CHECK(cache.unchanged(w));
  auto change = cache.begin({7});
  CHECK_FALSE(cache.unchanged(w));  // in flight
  cache.end(change, {});
  CHECK_FALSE(cache.unchanged(w));         // and after it ended
  CHECK(cache.unchanged(cache.watch(7)));  // a new watch holds again
}

TEST_CASE("attr cache: a watch fails with a forget, and with a change of another in flight") {
  AttrCache cache(1.0);
  auto w = cache.watch(7);
  cache.forget(7);
  CHECK_FALSE(cache.unchanged(w));
  auto theirs = cache.begin({7});
  auto during = cache.watch(7);  // the server may run that change before or after the read
  cache.end(theirs, {});
  CHECK_FALSE(cache.unchanged(during));
}

TEST_CASE("attr cache: a watch taken behind the caller's own change holds after it ends") {
  AttrCache cache(1.0);
  auto mine = cache.begin({7});
  auto w = cache.watch(7, 1);
  cache.end(mine, {_dir(7, 100)});
  CHECK(cache.unchanged(w));
  REQUIRE(cache.get(7));  // what the change read is kept as before
  auto two = cache.begin({7});
  auto w2 = cache.watch(7, 0);  // the caller's own change is not counted: another is in flight
  cache.end(two, {});
  CHECK_FALSE(cache.unchanged(w2));
}

TEST_CASE("attr cache: no watch holds with the cache off, or once its entry made room") {
  AttrCache off(0.0);
  CHECK_FALSE(off.unchanged(off.watch(7)));
  AttrCache small(1.0, 2);
  auto w = small.watch(7);
  small.end(small.begin({8, 9}), {});  // room for 8 and 9: 7 (idle, nothing fresh) goes
  CHECK_FALSE(small.unchanged(w));
}

TEST_CASE("attr cache: a full cache of fresh entries makes room by dropping the older half") {
  // (a writeback mount's hour-long ttl: nothing goes stale while a tree is
  // written, and its newest entries are the ones its listings ask for next)
  AttrCache cache(3600.0, 8);
  const auto t0 = AttrCache::Clock::now();
  for (Ino ino = 1; ino <= 8; ++ino) {
    auto read = cache.begin_read({ino}, t0 + std::chrono::seconds(ino));
    cache.end_read(read, {_dir(ino, 100)});
  }
  const auto later = t0 + std::chrono::seconds(10);
  for (Ino ino = 1; ino <= 8; ++ino) {
    REQUIRE(cache.get(ino, later, true));
  }
  auto change = cache.begin({100});  // one more: the four oldest go
  for (Ino ino = 1; ino <= 4; ++ino) {
    CHECK_FALSE(cache.get(ino, later, true));
  }
  for (Ino ino = 5; ino <= 8; ++ino) {
    CHECK(cache.get(ino, later, true));
  }
  cache.end(change, {_dir(100, 100)});
  CHECK(cache.get(100));
  // An entry in flight is never dropped, however old
  AttrCache small(3600.0, 2);
  auto held = small.begin({1});
  small.end_read(small.begin_read({2}, t0), {_dir(2, 100)});
  small.end(small.begin({3}), {_dir(3, 100)});  // room for 3: 2 goes, 1 stays
  CHECK_FALSE(small.get(2, t0, true));
  small.end(held, {_dir(1, 100)});
  CHECK(small.get(1));
}
