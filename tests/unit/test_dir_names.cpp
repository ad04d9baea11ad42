// DirNames: when a directory's name list may answer "absent", and when
// it must be dropped (a count that does not follow, forget, expiry, size).
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "store/dir_names.hpp"

using namespace redisfs;
using namespace std::chrono_literals;

TEST_CASE("dir names: a directory made here answers for absent names, for the ttl") {
  DirNames names(1.0);
  REQUIRE(names.enabled());
  const auto t0 = DirNames::Clock::now();
  CHECK_FALSE(names.absent(7, "a", t0));  // no list
  names.start(7, 0, t0);
  auto age = names.absent(7, "a", t0 + 10ms);
  REQUIRE(age);
  CHECK(*age == doctest::Approx(0.010).epsilon(0.01));
  CHECK_FALSE(names.absent(7, "a", t0 + 1000ms));  // as old as a negative entry may be
  CHECK_FALSE(names.absent(8, "a", t0));
}

TEST_CASE("dir names: changes that follow the count keep the list whole") {
  DirNames names(1.0);
  const auto t0 = DirNames::Clock::now();
  names.start(7, 0, t0);
  names.added(7, 1, t0 + 1ms, "a", 100);
  names.added(7, 2, t0 + 2ms, "b", 100);
  CHECK_FALSE(names.absent(7, "a", t0 + 3ms));  // present: ask the server
  CHECK_FALSE(names.absent(7, "b", t0 + 3ms));
  REQUIRE(names.absent(7, "c", t0 + 3ms));
  CHECK(*names.absent(7, "c", t0 + 3ms) == doctest::Approx(0.001).epsilon(0.01));  // as of the last change
  names.removed(7, 3, t0 + 4ms, "a");
  CHECK(names.absent(7, "a", t0 + 5ms));
  // each change sent later keeps the list fresh past the first ttl
  names.added(7, 4, t0 + 900ms, "d", 100);
  CHECK(names.absent(7, "a", t0 + 1500ms));
}

TEST_CASE("dir names: a change by someone else drops the list") {
  DirNames names(1.0);
  const auto t0 = DirNames::Clock::now();
  names.start(7, 5, t0);
  names.added(7, 7, t0 + 1ms, "a", 100);  // 6 was another mount's
  CHECK_FALSE(names.absent(7, "zzz", t0 + 2ms));
  names.added(7, 8, t0 + 3ms, "b", 100);  // no list any more: nothing comes back
  CHECK_FALSE(names.absent(7, "zzz", t0 + 4ms));
}

TEST_CASE("dir names: forget, and a new start, replace the list") {
  DirNames names(1.0);
  const auto t0 = DirNames::Clock::now();
  names.start(7, 0, t0);
  names.added(7, 1, t0, "a", 100);
  names.forget(7);
  CHECK_FALSE(names.absent(7, "b", t0));
  names.start(7, 3, t0);
  CHECK(names.absent(7, "a", t0));  // a new, empty directory with that number
}

TEST_CASE("dir names: bounded, and when full the older half of the lists makes room") {
  DirNames names(1.0, 6);
  const auto t0 = DirNames::Clock::now();
  auto at = [&](int ms) { return t0 + std::chrono::milliseconds(ms); };
  names.start(1, 0, at(0));
  names.added(1, 1, at(1), "a", 100);
  names.start(2, 0, at(2));
  names.start(3, 0, at(3));
  names.start(4, 0, at(4));
  names.start(5, 0, at(5));  // 5 lists + 1 name: full
  for (Ino dir = 1; dir <= 5; ++dir) {
    CHECK(names.absent(dir, "x", at(6)));
  }
  names.start(6, 0, at(6));  // 1, 2 and 3 (the older half) go; 6 comes
  for (Ino dir = 1; dir <= 3; ++dir) {
    CHECK_FALSE(names.absent(dir, "x", at(7)));
  }
  for (Ino dir = 4; dir <= 6; ++dir) {
    CHECK(names.absent(dir, "x", at(7)));
  }
  // a name that would not fit makes room the same way
  names.start(7, 0, at(8));
  names.start(8, 0, at(9));
  names.start(9, 0, at(9));             // full
  names.added(8, 1, at(10), "b", 100);  // 4, 5 and 6 go
  CHECK(names.absent(8, "x", at(11)));
  CHECK_FALSE(names.absent(8, "b", at(11)));
  CHECK_FALSE(names.absent(4, "x", at(11)));
  CHECK(names.absent(7, "x", at(11)));
}

TEST_CASE("dir names: when full, lists too old to answer make room first") {
  DirNames names(1.0, 3);
  const auto t0 = DirNames::Clock::now();
  names.start(1, 0, t0);
  names.start(2, 0, t0);
  names.start(3, 0, t0 + 1500ms);  // full now
  names.start(4, 0, t0 + 1600ms);  // 1 and 2 are too old: they go, 4 comes
  CHECK(names.absent(4, "x", t0 + 1700ms));
  CHECK(names.absent(3, "x", t0 + 1700ms));
  names.start(5, 0, t0 + 1700ms);
  names.start(6, 0, t0 + 1700ms);  // 3, 4, 5 still fresh: 3 and 4 go
  CHECK(names.absent(6, "x", t0 + 1700ms));
  CHECK(names.absent(5, "x", t0 + 1700ms));
  CHECK_FALSE(names.absent(3, "x", t0 + 1700ms));
}

TEST_CASE("dir names: a change whose own list goes to make room is not applied") {
  // (the change's list is too old, and the cache full: making room drops
  // it, and the change must not touch what is gone)
  DirNames names(1.0, 2);
  const auto t0 = DirNames::Clock::now();
  names.start(1, 0, t0);
  names.start(2, 0, t0 + 1400ms);  // full
  names.added(1, 1, t0 + 1500ms, "a", 100);
  CHECK_FALSE(names.absent(1, "x", t0 + 1500ms));
  names.adding(2, "b", 101);  // (room now)
  CHECK_FALSE(names.absent(2, "b", t0 + 1500ms));
  CHECK(names.absent(2, "x", t0 + 1500ms));
}

TEST_CASE("dir names: disabled with a zero ttl") {
  DirNames names(0);
  const auto t0 = DirNames::Clock::now();
  names.start(7, 0, t0);
  CHECK_FALSE(names.absent(7, "a", t0));
}

TEST_CASE("dir names: the entries of a list, for a writeback mount's listing") {
  DirNames names(1.0);
  const auto t0 = DirNames::Clock::now();
  CHECK_FALSE(names.entries(7, 10, t0));  // no list
  names.start(7, 0, t0);
  auto none = names.entries(7, 10, t0);
  REQUIRE(none);
  CHECK(none->empty());
  names.added(7, 1, t0, "a", 11);
  names.adding(7, "b", 12);  // a deferred create: listed at once
  names.added(7, 2, t0, "c", 13);
  names.removed(7, 3, t0, "a");
  auto listed = names.entries(7, 10, t0 + 1ms);
  REQUIRE(listed);
  std::map<std::string, Ino> got;
  for (const DirNames::Entry& e : *listed) {
    got[e.name] = e.ino;
  }
  CHECK(got == std::map<std::string, Ino>{{"b", 12}, {"c", 13}});
  CHECK_FALSE(names.entries(7, 2, t0 + 1ms));  // two names, not fewer than 2
  CHECK(names.entries(7, 3, t0 + 1ms));
  CHECK_FALSE(names.entries(7, 10, t0 + 1000ms));  // older than the ttl
  names.added(7, 5, t0 + 2ms, "d", 14);            // 4 was someone else's: the list goes
  CHECK_FALSE(names.entries(7, 10, t0 + 3ms));
}

TEST_CASE("dir names: a directory read whole is known, and follows from its count") {
  DirNames names(1.0, 6);
  const auto t0 = DirNames::Clock::now();
  names.known(7, 4, t0, {{"a", 11}, {"b", 12}});
  CHECK_FALSE(names.absent(7, "a", t0));
  CHECK(names.absent(7, "c", t0));
  names.added(7, 5, t0, "c", 13);
  auto listed = names.entries(7, 10, t0);
  REQUIRE(listed);
  CHECK(listed->size() == 3);
  names.known(7, 9, t0, {{"d", 14}});  // read again: replaces the list
  listed = names.entries(7, 10, t0);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().name == "d");
  names.added(7, 11, t0, "e", 15);  // 10 was someone else's
  CHECK_FALSE(names.entries(7, 10, t0));
  names.known(8, 0, t0, {{"1", 1}, {"2", 2}, {"3", 3}, {"4", 4}, {"5", 5}, {"6", 6}});  // past the bound: not kept
  CHECK_FALSE(names.entries(8, 10, t0));
}
