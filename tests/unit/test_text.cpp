#include <doctest/doctest.h>

#include "text.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("core::text");

TEST_CASE("shown text is bounded and one line") {
  std::string huge(1 << 20, 'k');
  std::string s = quoted(huge);
  CHECK(s.size() == k_shown_max + 5);  // quotes and "..."
  CHECK(s.ends_with("...'"));
  CHECK(quoted("a\nb\x01\xff") == "'a\\x0ab\\x01\\xff'");
  CHECK(quoted("it's") == "'it\\'s'");
  CHECK(shown("back\\slash", 100, 0) == "back\\\\slash");
  CHECK(shown("abcdef", 3, 0) == "abc...");
}

TEST_SUITE_END();
