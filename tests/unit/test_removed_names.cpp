// RemovedNames: a name this mount removed answers "absent" for the ttl,
// until it is made again; the memory is bounded.
#include <doctest/doctest.h>

#include "store/removed_names.hpp"

using namespace redisfs;
using namespace std::chrono_literals;

TEST_CASE("removed names: absent for the ttl from the removal, then asked again") {
  RemovedNames names(1.0);
  REQUIRE(names.enabled());
  const auto t0 = RemovedNames::Clock::now();
  CHECK_FALSE(names.absent(7, "j", t0));
  names.removed(7, "j", t0);
  auto age = names.absent(7, "j", t0 + 10ms);
  REQUIRE(age);
  CHECK(*age == doctest::Approx(0.010).epsilon(0.01));
  CHECK_FALSE(names.absent(8, "j", t0 + 10ms));    // another directory
  CHECK_FALSE(names.absent(7, "k", t0 + 10ms));    // another name
  CHECK_FALSE(names.absent(7, "j", t0 + 1000ms));  // as old as a negative entry may be
  CHECK(names.size() == 0);                        // and gone
}

TEST_CASE("removed names: made again here, the name is forgotten") {
  RemovedNames names(1.0);
  const auto t0 = RemovedNames::Clock::now();
  names.removed(7, "j", t0);
  names.forget(7, "j");
  CHECK_FALSE(names.absent(7, "j", t0 + 1ms));
  names.removed(7, "j", t0 + 2ms);  // removed once more: from then
  auto age = names.absent(7, "j", t0 + 3ms);
  REQUIRE(age);
  CHECK(*age == doctest::Approx(0.001).epsilon(0.01));
}

TEST_CASE("removed names: bounded, the expired go first, else the older half") {
  RemovedNames names(1.0, 3);
  const auto t0 = RemovedNames::Clock::now();
  names.removed(1, "a", t0);
  names.removed(1, "b", t0 + 600ms);
  names.removed(1, "c", t0 + 700ms);
  names.removed(1, "d", t0 + 1100ms);  // full: "a" has expired and goes
  CHECK(names.size() == 3);
  CHECK(names.absent(1, "b", t0 + 1200ms));
  CHECK(names.absent(1, "d", t0 + 1200ms));
  names.removed(1, "e", t0 + 1300ms);  // full, none expired: "b" and "c" go
  CHECK(names.size() == 2);
  CHECK(names.absent(1, "e", t0 + 1301ms));
  CHECK(names.absent(1, "d", t0 + 1301ms));
  CHECK_FALSE(names.absent(1, "c", t0 + 1301ms));
}

TEST_CASE("removed names: a ttl of 0 keeps nothing") {
  RemovedNames names(0);
  CHECK_FALSE(names.enabled());
  names.removed(7, "j", RemovedNames::Clock::now());
  CHECK(names.size() == 0);
  CHECK_FALSE(names.absent(7, "j"));
}
