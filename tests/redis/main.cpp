// The doctest main of redisfs_redis_tests. These tests need the private
// server that tests/with_redis.sh starts; run without it (no
// REDISFS_TEST_URL) they are skipped (exit 77), and they refuse to run on a
// server whose database is not empty, so they never touch real data. A
// listing of the cases (doctest_discover_tests asks for one after each
// build) needs no server.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fixture.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  // hiredis writes with write(2): a write to a connection the server has
  // closed raises SIGPIPE, which must be an EIO, not the end of the process.
  // Both mains ignore SIGPIPE for the same reason.
  std::signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--list-test-cases" || arg == "--list-test-suites") {
      return context.run();
    }
  }
  const char* url = std::getenv("REDISFS_TEST_URL");
  if (url == nullptr || *url == '\0') {
    std::fprintf(stderr, "skipped: REDISFS_TEST_URL is not set; run through tests/with_redis.sh\n");
    return 77;
  }
  if (auto status = redisfs::test::check_test_server(); !status.ok()) {
    std::fprintf(stderr, "redisfs_redis_tests: %s\n", status.error().message.c_str());
    return 1;
  }
  return context.run();
}
