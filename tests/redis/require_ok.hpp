// The redis suite's way to unwrap a Result: REQUIRE that it succeeded (the
// message is the error's), then its value.
#pragma once

#include <doctest/doctest.h>

#include "result.hpp"

namespace redisfs::test {

template <class T>
T ok(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return std::move(r).value();
}

inline void ok(Status s) { REQUIRE_MESSAGE(s.ok(), s.error().message); }

}  // namespace redisfs::test
