// RepeatFilter (core/util/repeat_filter.hpp): the daemon's warnings said
// again within a minute are held back and counted.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "util/repeat_filter.hpp"

using namespace redisfs;
using namespace std::chrono_literals;

TEST_CASE("repeat filter: a line said again within the window is held back, then shown with its count") {
  RepeatFilter f(60s);
  RepeatFilter::Clock::time_point t0{};
  CHECK(f.pass("read ino=5: EIO", t0) == "read ino=5: EIO");
  CHECK_FALSE(f.pass("read ino=5: EIO", t0 + 1s).has_value());
  CHECK_FALSE(f.pass("read ino=5: EIO", t0 + 59s).has_value());
  // another line is not held back by this one
  CHECK(f.pass("read ino=6: EIO", t0 + 2s) == "read ino=6: EIO");
  // after the window: shown, with how many were held back since it was
  CHECK(f.pass("read ino=5: EIO", t0 + 61s) == "read ino=5: EIO (said 2 more times in the 61 s before, not logged)");
  // and the window starts again from that showing
  CHECK_FALSE(f.pass("read ino=5: EIO", t0 + 100s).has_value());
  CHECK(f.pass("read ino=5: EIO", t0 + 121s) == "read ino=5: EIO (said 1 more time in the 60 s before, not logged)");
  // nothing held back: shown as it is
  CHECK(f.pass("read ino=6: EIO", t0 + 200s) == "read ino=6: EIO");
}

TEST_CASE("repeat filter: when full, old lines are forgotten, and a line with no room is shown") {
  RepeatFilter f(60s, 2);
  RepeatFilter::Clock::time_point t0{};
  CHECK(f.pass("a", t0).has_value());
  CHECK(f.pass("b", t0 + 10s).has_value());
  // full, neither is old: "c" finds no room, so it is shown every time
  CHECK(f.pass("c", t0 + 20s) == "c");
  CHECK(f.pass("c", t0 + 21s) == "c");
  CHECK_FALSE(f.pass("a", t0 + 30s).has_value());
  // "a" was shown more than a window ago: forgotten to make room for "d",
  // whose repeat is then held back ("a"'s count goes with it)
  CHECK(f.pass("d", t0 + 65s) == "d");
  CHECK_FALSE(f.pass("d", t0 + 66s).has_value());
  CHECK(f.pass("a", t0 + 67s) == "a");
}
