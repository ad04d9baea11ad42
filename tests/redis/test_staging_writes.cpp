// A restore's staging writes (core/snap/staging_writes.hpp) when the
// server ran one of them before its reply was lost: sent again, an HSET
// finds its own fields, and must not read as a duplicate; a real duplicate
// still does. (A refusal that reorders the pipeline is cli/snap_busy's.)
#include <doctest/doctest.h>

#include "fixture.hpp"
#include "snap/install.hpp"
#include "snap/staging_writes.hpp"

using namespace redisfs;
using redisfs::test::ok;
using redisfs::test::RedisFixture;

namespace {

const std::vector<std::pair<std::string, std::string>> k_fields{{"type", "file"}, {"mode", "0644"}, {"nlink", "1"}};

// Stages hash INODE:5 with k_fields (its HSET's reply lost with the
// connection, and `before` already there as if that HSET had run: the
// fields it finds when it is sent again); returns what settling says.
Status _stage_lost(RedisFixture& f, const Keys& staging, const std::vector<std::string>& before) {
  Connection& c = f.conn();
  StagingWrites w(c, staging, false);
  w.at({700, 9});  // where the record is in its dump
  REQUIRE(w.hash_begin("INODE:5").ok());
  REQUIRE(w.settle(0).ok());
  long long id = ok(c.command({"CLIENT", "ID"})).view().integer();
  REQUIRE(w.hash_fields("INODE:5", k_fields).ok());
  w.hash_end();
  auto other = test::connect("redisfs:test-other");
  std::vector<std::string> hset{"HSET", staging.absolute("INODE:5")};
  hset.insert(hset.end(), before.begin(), before.end());
  ok(other->command(hset));
  ok(other->command({"CLIENT", "KILL", "ID", std::to_string(id)}));
  return w.settle(0);
}

}  // namespace

TEST_CASE_FIXTURE(RedisFixture, "staging writes: an HSET sent again that finds its own fields is no duplicate") {
  Keys staging(extra_prefix());
  Status st = _stage_lost(*this, staging, {"type", "file", "mode", "0644", "nlink", "1"});
  REQUIRE_MESSAGE(st.ok(), st.error().message);
  CHECK(ok(conn().command({"HLEN", staging.absolute("INODE:5")})).view().integer() == 3);
  CHECK(ok(conn().command({"PTTL", staging.absolute("INODE:5")})).view().integer() > 0);
  CHECK(ok(conn().command({"PTTL", staging_index_key(staging)})).view().integer() > 0);
}

TEST_CASE_FIXTURE(RedisFixture, "staging writes: some of its fields there before is no duplicate either") {
  Keys staging(extra_prefix());
  Status st = _stage_lost(*this, staging, {"type", "file"});
  REQUIRE_MESSAGE(st.ok(), st.error().message);
  CHECK(ok(conn().command({"HLEN", staging.absolute("INODE:5")})).view().integer() == 3);
}

TEST_CASE_FIXTURE(RedisFixture, "staging writes: a field the record does not give is still a duplicate key") {
  Keys staging(extra_prefix());
  Status st = _stage_lost(*this, staging, {"type", "file", "uid", "0"});
  REQUIRE_FALSE(st.ok());
  // (found once every reply is in, as a doubt: named where its record is)
  CHECK(st.error().message == "dump: at byte 700: record 9 (key \"INODE:5\"): duplicate key 'INODE:5'");
}

TEST_CASE_FIXTURE(RedisFixture, "staging writes: duplicates in order are found as they come") {
  Keys staging(extra_prefix());
  StagingWrites w(conn(), staging, false);
  w.at({10, 1});
  REQUIRE(w.string("BLK:5:0", "data").ok());
  w.at({40, 2});
  REQUIRE(w.string("BLK:5:0", "again").ok());
  w.at({90, 3});  // (the reader has moved on: the fault names record 2)
  Status st = w.settle(0);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message == "dump: at byte 40: record 2 (key \"BLK:5:0\"): duplicate key 'BLK:5:0'");
  CHECK(conn().pending() == 0);  // drained: the connection is clean
  StagingWrites h(conn(), staging, true);
  h.at({100, 3});
  REQUIRE(h.hash_begin("INODE:6").ok());
  REQUIRE(h.hash_fields("INODE:6", k_fields).ok());
  h.at({150, 3});  // its next batch of fields
  REQUIRE(h.hash_fields("INODE:6", {{{"type", "dir"}}}).ok());
  h.hash_end();
  st = h.settle(0);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message == "dump: at byte 150: record 3 (key \"INODE:6\"): duplicate field in hash 'INODE:6'");
}
