// The outage notes (core/redis/outage.hpp): what a wait says, once, and
// when. The calls' side, through a real server's BUSY, is test_connection's
// case "calls that wait out BUSY say so once"; a mount's freeze,
// tests/mount/frozen_writer.sh.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "redis/outage.hpp"

using redisfs::Error;
using redisfs::OutageNote;
using Kind = OutageNote::Kind;
using namespace std::chrono_literals;

namespace {
// Keeps the notes said while it lives; the reporter goes with it.
struct Notes {
  std::vector<OutageNote> said;
  Notes() {
    redisfs::set_outage_reporter([this](const OutageNote& n) { said.push_back(n); });
  }
  ~Notes() { redisfs::set_outage_reporter(nullptr); }
  Notes(const Notes&) = delete;
  Notes& operator=(const Notes&) = delete;
};
const Error k_refused{EIO, "redis: LOADING Redis is loading the dataset in memory"};
}  // namespace

TEST_CASE("an outage is said once when a call has waited a second, once when a call succeeds") {
  Notes notes;
  auto now = std::chrono::steady_clock::now();
  redisfs::outage_waiting(Kind::Server, now, k_refused);  // (not a second yet)
  redisfs::outage_over(Kind::Server);
  CHECK(notes.said.empty());
  redisfs::outage_waiting(Kind::Server, now - 2s, k_refused);
  redisfs::outage_waiting(Kind::Server, now - 3s, k_refused);  // (another call: said already)
  REQUIRE(notes.said.size() == 1);
  CHECK(notes.said[0].kind == Kind::Server);
  CHECK(!notes.said[0].over);
  CHECK(
      redisfs::outage_text(notes.said[0], 30s) ==
      "calls wait for the server, each up to 30 s (--timeout): redis: LOADING Redis is loading the dataset in memory");
  CHECK(redisfs::outage_text(notes.said[0], 500ms).find("each up to 0.5 s (--timeout)") != std::string::npos);
  redisfs::outage_over(Kind::Server);
  redisfs::outage_over(Kind::Server);
  REQUIRE(notes.said.size() == 2);
  CHECK(notes.said[1].over);
  CHECK(notes.said[1].waited >= 2s);  // (from the call that said it)
  CHECK(redisfs::outage_text(notes.said[1], 30s).starts_with("the server answers again, 2."));
}

TEST_CASE("a freeze is noted apart from the server, and a change that gives up ends its note unsaid") {
  Notes notes;
  auto now = std::chrono::steady_clock::now();
  redisfs::outage_waiting(Kind::Freeze, now - 2s, Error{EIO, "redis: FROZEN the filesystem is frozen"});
  redisfs::outage_over(Kind::Server);  // (a read meanwhile: the freeze goes on)
  REQUIRE(notes.said.size() == 1);
  CHECK(notes.said[0].kind == Kind::Freeze);
  CHECK(redisfs::outage_text(notes.said[0], 30s) ==
        "changes wait for the end of the filesystem's freeze (a delete, an install or a snapshot), each up to 120 s");
  redisfs::outage_given_up(Kind::Freeze);
  redisfs::outage_over(Kind::Freeze);  // (nothing was going on any more)
  // A change that waited with the one that gave up is not said again.
  redisfs::outage_waiting(Kind::Freeze, now - 2s, Error{EIO, "redis: FROZEN the filesystem is frozen"});
  CHECK(notes.said.size() == 1);
}

TEST_CASE("a tool's wait for another says its own words") {
  Notes notes;
  redisfs::report_wait({Kind::Holder, false, "waiting for another snapshot of 'SKX' to end (SKX:COW)", {}});
  REQUIRE(notes.said.size() == 1);
  CHECK(redisfs::outage_text(notes.said[0], 30s) == "waiting for another snapshot of 'SKX' to end (SKX:COW)");
  CHECK(redisfs::outage_text({Kind::Holder, true, "another snapshot of 'SKX' ended", 2500ms}, 30s) ==
        "another snapshot of 'SKX' ended; waited 2.5 s");
}
