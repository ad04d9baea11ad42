// Shared helpers of the tests against the private redis-server that
// tests/with_redis.sh starts (REDISFS_TEST_URL).
//
// Every test case works under its own random prefix ("T" + 16 hex digits),
// so cases never see each other's keys, and the fixture deletes the
// prefix's keys (SCAN + UNLINK) when the case ends, pass or fail:
//
//   TEST_CASE_FIXTURE(redisfs::test::RedisFixture, "store: mkdir") {
//     auto store = redisfs::Store::open(pool, prefix, {});
//     ...
//   }
//
// A case that needs a second filesystem (the target of a copy) asks for
// extra_prefix(): also random, also cleaned up.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis.hpp"
#include "store/keys.hpp"
#include "util/result.hpp"

namespace redisfs::test {

// REDISFS_TEST_URL, parsed (aborts the run with a message if it is unset
// or unparsable: main() has checked it already).
const RedisUrl& test_url();

// Connects, and refuses a server whose database holds keys.
Status check_test_server();

// "T" followed by 16 random hex digits: a valid, unused prefix.
std::string random_prefix();

// A fresh connection to the test server (not from any pool).
std::unique_ptr<Connection> connect(const std::string& client_name = "redisfs:test");

// Every key under "<prefix>:", sorted.
std::vector<std::string> keys_under(Connection& c, const std::string& prefix);
// Every filesystem key of a prefix (keys.hpp), relative, with its type and
// value ("s" + bytes, or "h" + sorted field/value pairs; the superblock
// without the marks a copy or restore adds: origin, read_only...).
using Content = std::map<std::string, std::string>;
Content content(Connection& c, const std::string& prefix);
// Deletes every key under "<prefix>:"; returns how many.
std::size_t delete_prefix(Connection& c, const std::string& prefix);
// How many times the server ran `command` (lower case, e.g. "evalsha"; the
// calls scripts make count too), from INFO commandstats: a case counts a
// step's calls as the difference of two readings.
long long command_calls(Connection& c, std::string_view command);
// How many error replies starting with `word` (BUSY, EXECABORT, FROZEN...)
// the server has sent, from INFO errorstats (its scripts' included).
long long error_replies(Connection& c, std::string_view word);

// A scratch directory for the case (under REDISFS_TEST_TMPDIR, else TMPDIR),
// removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

class RedisFixture {
 public:
  RedisFixture();
  ~RedisFixture();
  RedisFixture(const RedisFixture&) = delete;
  RedisFixture& operator=(const RedisFixture&) = delete;

  // A connection of the fixture's own, opened on first use; it stays out of
  // the pool so the code under test never shares it.
  Connection& conn();
  // Another random prefix, cleaned up like `prefix`.
  std::string extra_prefix();
  std::vector<std::string> keys_under(const std::string& p) { return test::keys_under(conn(), p); }

  Pool pool;
  std::string prefix;
  Keys keys;

 private:
  std::unique_ptr<Connection> m_conn;
  std::vector<std::string> m_prefixes;
};

// The value of a Result a case needs: REQUIRE (the case stops there, with
// the error's message) when it is an error.
template <class T>
T ok(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return std::move(r).value();
}

inline void ok(const Status& s) { REQUIRE_MESSAGE(s.ok(), s.error().message); }

}  // namespace redisfs::test
