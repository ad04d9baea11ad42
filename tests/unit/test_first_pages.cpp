// FirstPages: a first page read by a getattr while a listing waits goes to
// a listing opened before it was read, once, within the ttl; nothing is
// kept for a directory no listing waits on.
#include <doctest/doctest.h>

#include "store/first_pages.hpp"

using namespace redisfs;
using namespace std::chrono_literals;

static DirPage _page(std::initializer_list<const char*> names) {
  DirPage p;
  Ino ino = 10;
  for (const char* n : names) {
    DirEntry e;
    e.name = n;
    e.ino = ino++;
    p.entries.push_back(std::move(e));
  }
  return p;
}

TEST_CASE("first pages: wanted only while a listing waits") {
  FirstPages pages(1.0);
  CHECK(pages.wanted(7) == 0);
  pages.waits(7, 256);
  CHECK(pages.wanted(7) == 256);
  CHECK(pages.wanted(8) == 0);
  pages.waits(7, 256);
  pages.done(7);
  CHECK(pages.wanted(7) == 256);  // the other one still waits
  pages.done(7);
  CHECK(pages.wanted(7) == 0);
}

TEST_CASE("first pages: taken once, by a listing opened before the read, within the ttl") {
  FirstPages pages(1.0);
  const auto opened = FirstPages::Clock::now();
  pages.waits(7, 256);
  pages.keep(7, opened + 1ms, _page({"a", "b"}), 3);
  CHECK_FALSE(pages.take(7, opened + 2ms, opened + 3ms));  // read before that listing was opened
  auto t = pages.take(7, opened, opened + 3ms);
  REQUIRE(t);
  CHECK(t->parent == 3);
  REQUIRE(t->page.entries.size() == 2);
  CHECK(t->page.entries[1].name == "b");
  CHECK_FALSE(pages.take(7, opened, opened + 4ms));  // once

  pages.keep(7, opened + 5ms, _page({"c"}), 3);
  CHECK_FALSE(pages.take(7, opened, opened + 1006ms));  // older than the ttl
  CHECK_FALSE(pages.take(7, opened, opened + 7ms));     // and dropped
}

TEST_CASE("first pages: nothing kept without a listing, nor after the last one ends") {
  FirstPages pages(1.0);
  const auto t0 = FirstPages::Clock::now();
  pages.keep(7, t0, _page({"a"}), 1);  // none waits
  pages.waits(7, 256);
  CHECK_FALSE(pages.take(7, t0 - 1ms, t0 + 1ms));
  pages.keep(7, t0 + 2ms, _page({"a"}), 1);
  pages.keep(7, t0 + 1ms, _page({"old"}), 1);  // an older read does not replace it
  pages.done(7);                               // the page no listing took goes with it
  pages.waits(7, 256);
  CHECK_FALSE(pages.take(7, t0, t0 + 3ms));
  pages.keep(7, t0 + 4ms, _page({"b"}), 1);
  pages.keep(7, t0 + 3ms, _page({"old"}), 1);
  auto t = pages.take(7, t0, t0 + 5ms);
  REQUIRE(t);
  CHECK(t->page.entries.at(0).name == "b");
}

TEST_CASE("first pages: none read before this mount changed the directory's names") {
  FirstPages pages(1.0);
  const auto t0 = FirstPages::Clock::now();
  pages.waits(7, 256);
  pages.keep(7, t0 + 1ms, _page({"a", "b"}), 1);
  pages.changed(7, t0 + 2ms);  // (b renamed away: the kept page is stale)
  CHECK_FALSE(pages.take(7, t0, t0 + 3ms));
  pages.keep(7, t0 + 1ms, _page({"a", "b"}), 1);  // on its way during the change: stale too
  CHECK_FALSE(pages.take(7, t0, t0 + 3ms));
  pages.keep(7, t0 + 2ms, _page({"a", "b"}), 1);  // sent as it landed: may not hold it
  CHECK_FALSE(pages.take(7, t0, t0 + 3ms));
  pages.keep(7, t0 + 4ms, _page({"a"}), 1);  // read after it
  auto t = pages.take(7, t0, t0 + 5ms);
  REQUIRE(t);
  CHECK(t->page.entries.size() == 1);
  pages.changed(8, t0 + 6ms);  // no listing of it waits: nothing to drop
  CHECK(pages.wanted(8) == 0);
  pages.done(7);
}

TEST_CASE("first pages: a ttl of 0 turns it off") {
  FirstPages pages(0);
  pages.waits(7, 256);
  CHECK(pages.wanted(7) == 0);
  const auto t0 = FirstPages::Clock::now();
  pages.keep(7, t0, _page({"a"}), 1);
  CHECK_FALSE(pages.take(7, t0 - 1s, t0));  // (a page kept would be of age 0 here)
  pages.done(7);
}
