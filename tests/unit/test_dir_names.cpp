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

TEST_CASE("dir names: bounded, and a list that would grow past the bound goes") {
  DirNames names(1.0, 5);
  const auto t0 = DirNames::Clock::now();
  names.start(1, 0, t0);
  names.added(1, 1, t0, "a", 100);
  names.added(1, 2, t0, "b", 100);
  names.start(2, 0, t0);
  names.start(3, 0, t0);  // 3 lists + 2 names: full
  names.start(4, 0, t0);  // not kept
  CHECK_FALSE(names.absent(4, "x", t0));
  CHECK(names.absent(2, "x", t0));
  CHECK(names.absent(3, "x", t0));
  names.added(1, 3, t0, "c", 100);  // would pass the bound: dropped
  CHECK_FALSE(names.absent(1, "x", t0));
  names.start(4, 0, t0);  // room again
  CHECK(names.absent(4, "x", t0));
}

TEST_CASE("dir names: when full, lists too old to answer make room") {
  DirNames names(1.0, 3);
  const auto t0 = DirNames::Clock::now();
  names.start(1, 0, t0);
  names.start(2, 0, t0);
  names.start(3, 0, t0 + 1500ms);  // full now
  names.start(4, 0, t0 + 1600ms);  // 1 and 2 are too old: they go, 4 comes
  CHECK(names.absent(4, "x", t0 + 1700ms));
  CHECK(names.absent(3, "x", t0 + 1700ms));
  names.start(5, 0, t0 + 1700ms);
  names.start(6, 0, t0 + 1700ms);  // 3, 4, 5 still fresh: no room
  CHECK_FALSE(names.absent(6, "x", t0 + 1700ms));
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
