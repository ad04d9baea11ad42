// core::ScanWalk against a real redis-server: a walk returns every field
// of a large hash; resumed from a cursor read elsewhere it goes on from
// there; resumed for another server (a run_id that is not this one's, as
// after a restart or a failover) it begins again from the start, and says
// so; resumed at "0" it is a walk from the start.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "fixture.hpp"
#include "redis/scan.hpp"

using namespace redisfs;
using redisfs::test::ok;
using redisfs::test::RedisFixture;

namespace {

constexpr int k_fields = 3000;  // a hashtable, not a listpack: many pages

// Fills the hash `key` with f0..f<k_fields-1>.
void _fill(Connection& c, const std::string& key) {
  for (int i = 0; i < k_fields; i += 500) {
    Args argv{"HSET", key};
    for (int j = i; j < i + 500; ++j) {
      argv.push_back("f" + std::to_string(j));
      argv.push_back("v");
    }
    ok(c.command(argv));
  }
}

struct Walked {
  std::set<std::string> fields;
  int pages = 0;
  int started_over = 0;
};

Walked _walk(ScanWalk& walk) {
  Walked w;
  for (;;) {
    auto page = ok(walk.next());
    if (!page) {
      break;
    }
    ++w.pages;
    if (walk.started_over()) {
      ++w.started_over;
      w.fields.clear();
    }
    for (std::size_t i = 0; i + 1 < page->size(); i += 2) {
      w.fields.emplace((*page)[i].str());
    }
  }
  return w;
}

}  // namespace

TEST_CASE_FIXTURE(RedisFixture, "ScanWalk: whole, resumed, resumed for another server, resumed at the start") {
  const std::string key = prefix + ":DIR:1";
  _fill(conn(), key);
  ScanWalk whole(conn(), {"HSCAN", key}, {"COUNT", "100"});
  Walked all = _walk(whole);
  REQUIRE(all.fields.size() == k_fields);
  CHECK(all.pages > 5);
  CHECK(all.started_over == 0);
  CHECK(whole.done());
  CHECK(whole.cursor() == "0");

  // A first page read by hand, and the rest by a resumed walk.
  Reply first = ok(conn().command({"HSCAN", key, "0", "COUNT", "100"}));
  const std::string server = conn().answered_by();
  const std::string cursor(first.view()[0].str());
  REQUIRE(cursor != "0");
  std::set<std::string> firsts;
  for (std::size_t i = 0; i + 1 < first.view()[1].size(); i += 2) {
    firsts.emplace(first.view()[1][i].str());
  }

  SUBCASE("resumed on the server that gave the cursor: the rest, from there") {
    ScanWalk rest(conn(), {"HSCAN", key}, {"COUNT", "100"});
    rest.resume(cursor, server);
    Walked w = _walk(rest);
    CHECK(w.started_over == 0);
    for (const auto& f : firsts) {
      w.fields.insert(f);
    }
    CHECK(w.fields.size() == k_fields);
  }
  SUBCASE("resumed for another server: from the start, all of it") {
    if (server.empty()) {
      return;  // (no run_id known: nothing is watched)
    }
    ScanWalk rest(conn(), {"HSCAN", key}, {"COUNT", "100"});
    rest.resume(cursor, "another-server-run-id");
    Walked w = _walk(rest);
    CHECK(w.started_over == 1);
    CHECK(w.fields.size() == k_fields);
  }
  SUBCASE("resumed at \"0\": a whole walk") {
    ScanWalk again(conn(), {"HSCAN", key}, {"COUNT", "100"});
    again.resume("0", "");
    Walked w = _walk(again);
    CHECK(w.started_over == 0);
    CHECK(w.fields.size() == k_fields);
    CHECK(again.server() == server);
  }
}
