// parse_redis_url and RedisUrl::display: every accepted form, percent-encoded
// credentials, IPv6 hosts, databases, the inputs we refuse, and the rule
// that neither display() nor an error message ever shows a password.
#include <doctest/doctest.h>

#include <string>

#include "redis/redis.hpp"

using redisfs::parse_redis_url;
using redisfs::RedisUrl;

static RedisUrl _parse(const std::string& s) {
  auto r = parse_redis_url(s);
  REQUIRE_MESSAGE(r.ok(), s << ": " << (r.ok() ? "" : r.error().message));
  return r.value();
}

TEST_SUITE_BEGIN("redis_url");

TEST_CASE("tcp URLs: host, port, db") {
  RedisUrl u = _parse("redis://localhost");
  CHECK_FALSE(u.is_unix);
  CHECK(u.host == "localhost");
  CHECK(u.port == 6379);
  CHECK(u.db == 0);
  CHECK(u.user.empty());
  CHECK(u.password.empty());

  u = _parse("redis://10.0.0.7:6380/3");
  CHECK(u.host == "10.0.0.7");
  CHECK(u.port == 6380);
  CHECK(u.db == 3);

  u = _parse("redis://h/");
  CHECK(u.host == "h");
  CHECK(u.db == 0);

  u = _parse("redis://h:65535/15");
  CHECK(u.port == 65535);
  CHECK(u.db == 15);
}

TEST_CASE("credentials and percent-encoding") {
  RedisUrl u = _parse("redis://alice:s3cret@h:1/2");
  CHECK(u.user == "alice");
  CHECK(u.password == "s3cret");
  CHECK(u.host == "h");
  CHECK(u.port == 1);
  CHECK(u.db == 2);

  u = _parse("redis://:only-pass@h");
  CHECK(u.user.empty());
  CHECK(u.password == "only-pass");

  u = _parse("redis://bob@h");
  CHECK(u.user == "bob");
  CHECK(u.password.empty());

  u = _parse("redis://us%65r:p%40ss%3Aw%2Fo%25rd@h");
  CHECK(u.user == "user");
  CHECK(u.password == "p@ss:w/o%rd");

  // The last '@' ends the credentials: a raw '@' in a password still parses.
  u = _parse("redis://u:a@b@host:7");
  CHECK(u.password == "a@b");
  CHECK(u.host == "host");
  CHECK(u.port == 7);

  // A raw '/' or '?' in a password ends the host's part early: the '@'
  // left after it is named, not the database or the port it lands in.
  for (const char* url : {"redis://:pa/ss@h:6379", "rediss://u:a?b@h", "redis-sentinel://:x/y@h:1/m"}) {
    auto r = parse_redis_url(url);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("must be percent-encoded (%2F") != std::string::npos);
    CHECK(r.error().message.find("database") == std::string::npos);
  }
  // A unix socket's path may hold an '@'.
  CHECK(_parse("unix://u@/run/redis@a.sock").path == "/run/redis@a.sock");
  CHECK(_parse("unix:///run/redis@a.sock").path == "/run/redis@a.sock");
}

TEST_CASE("IPv6 hosts") {
  RedisUrl u = _parse("redis://[::1]:6380/1");
  CHECK(u.host == "::1");
  CHECK(u.port == 6380);
  CHECK(u.db == 1);
  CHECK(u.display() == "redis://[::1]:6380/1");

  u = _parse("redis://[fe80::1:2]");
  CHECK(u.host == "fe80::1:2");
  CHECK(u.port == 6379);

  u = _parse("redis://u:pw@[2001:db8::5]:7000");
  CHECK(u.host == "2001:db8::5");
  CHECK(u.port == 7000);
  CHECK(u.password == "pw");
}

TEST_CASE("unix socket URLs") {
  RedisUrl u = _parse("unix:///run/redis/redis.sock");
  CHECK(u.is_unix);
  CHECK(u.path == "/run/redis/redis.sock");
  CHECK(u.db == 0);
  CHECK(u.display() == "unix:///run/redis/redis.sock");

  u = _parse("unix:///tmp/r.sock?db=4");
  CHECK(u.path == "/tmp/r.sock");
  CHECK(u.db == 4);
  CHECK(u.display() == "unix:///tmp/r.sock?db=4");
}

TEST_CASE("a port or a database: whole decimal digits, leading zeros allowed, within its range") {
  RedisUrl u = _parse("redis://h:06379/007");
  CHECK(u.port == 6379);
  CHECK(u.db == 7);
  u = _parse("redis://h:65535/1048576");
  CHECK(u.port == 65535);
  CHECK(u.db == 1048576);
  u = _parse("unix:///a.sock?db=0");
  CHECK(u.db == 0);
}

TEST_CASE("bad URLs are refused with EINVAL") {
  const char* bad[] = {
      "",
      "localhost:6379",
      "http://h",
      "rediss://",
      "redis://a:1,b:2",
      "redis-sentinel://h:26379",
      "redis-sentinel://h:26379/",
      "redis-sentinel:///mymaster",
      "redis-sentinel://h:1,/m",
      "redis-sentinel://h:26379/m?db=x",
      "unix://u@relative.sock",
      "redis://h:",
      "redis://",
      "redis://:6379",
      "redis://h:0",
      "redis://h:65536",
      "redis://h:-1",
      "redis://h:abc",
      "redis://h/x",
      "redis://h/-1",
      "redis://h/1?x",
      "redis://[::1",
      "redis://[::1]x",
      "redis://[]:1",
      "redis://u:%zz@h",
      "redis://u:%4@h",
      "redis://u:%@h",
      "unix://",
      "unix://relative.sock",
      "unix:///a.sock?x=1",
      "unix:///a.sock?db=",
      "unix:///a.sock?db=x",
      "unix:///a.sock?db=-1",
      // a port or a database is digits only, whole (parse_u64)
      "redis://h:-0",
      "redis://h:+6379",
      "redis://h: 6379",
      "redis://h:6379 ",
      "redis://h:18446744073709551617",
      "redis://h/-0",
      "redis://h/+1",
      "redis://h/ 1",
      "redis://h/1048577",
      "redis://h/99999999999999999999",
      "unix:///a.sock?db=-0",
      "unix:///a.sock?db=+1",
      "unix:///a.sock?db=1 ",
  };
  for (const char* s : bad) {
    auto r = parse_redis_url(s);
    CHECK_MESSAGE(!r.ok(), std::string(s));
    if (!r.ok()) {
      CHECK(r.error().code == EINVAL);
      CHECK_MESSAGE(r.error().message.find("Redis URL") != std::string::npos, r.error().message);
    }
  }
}

TEST_CASE("TLS, ACL users over unix sockets, sentinels") {
  RedisUrl u = _parse("rediss://bob:pw@cache.example:6380/2");
  CHECK(u.tls.enabled);
  CHECK(u.host == "cache.example");
  CHECK(u.port == 6380);
  CHECK(u.db == 2);
  CHECK(u.display() == "rediss://bob:***@cache.example:6380/2");

  u = _parse("unix://carol@/run/redis.sock?db=4");
  CHECK(u.is_unix);
  CHECK(u.user == "carol");
  CHECK(u.password.empty());
  CHECK(u.path == "/run/redis.sock");
  CHECK(u.db == 4);
  CHECK(u.display() == "unix://carol@/run/redis.sock?db=4");
  u = _parse("unix://carol:s%40cret@/run/redis.sock");
  CHECK(u.password == "s@cret");
  CHECK(u.display().find("s@cret") == std::string::npos);

  u = _parse("redis-sentinel://dave:pw@10.0.0.1:26379,[::1]:26380,s3/prod%2Dfs?db=1");
  CHECK(u.is_sentinel());
  CHECK_FALSE(u.tls.enabled);
  REQUIRE(u.sentinels.size() == 3);
  CHECK(u.sentinels[0].host == "10.0.0.1");
  CHECK(u.sentinels[0].port == 26379);
  CHECK(u.sentinels[1].host == "::1");
  CHECK(u.sentinels[1].port == 26380);
  CHECK(u.sentinels[2].host == "s3");
  CHECK(u.sentinels[2].port == 26379);
  CHECK(u.master_name == "prod-fs");
  CHECK(u.user == "dave");
  CHECK(u.password == "pw");
  CHECK(u.db == 1);
  CHECK(u.display() == "redis-sentinel://dave:***@10.0.0.1:26379,[::1]:26380,s3:26379/prod-fs?db=1");
  CHECK(_parse("rediss-sentinel://h:1/m").tls.enabled);
}

TEST_CASE("passwords never show") {
  RedisUrl u = _parse("redis://alice:hunter2@db.example:6390/5");
  CHECK(u.display() == "redis://alice:***@db.example:6390/5");
  CHECK(u.display().find("hunter2") == std::string::npos);

  u = _parse("redis://:hunter2@h");
  CHECK(u.display() == "redis://:***@h:6379");

  u = _parse("redis://alice@h");
  CHECK(u.display() == "redis://alice@h:6379");

  RedisUrl sock = _parse("unix:///tmp/r.sock");
  sock.password = "hunter2";  // e.g. from REDISFS_PASSWORD
  CHECK(sock.display().find("hunter2") == std::string::npos);

  for (const char* s : {"redis://u:hunter2@h:99999", "redis://u:hunter2@h/x", "redis://u:hunter2%zz@h",
                        "redis://u:hunter2@[::1"}) {
    auto r = parse_redis_url(s);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("hunter2") == std::string::npos);
  }
}

TEST_SUITE_END();

TEST_CASE("percent-encoding takes exactly two hex digits") {
  CHECK(parse_redis_url("redis://u:%-1@h").code() == EINVAL);
  CHECK(parse_redis_url("redis://u:%+f@h").code() == EINVAL);
  CHECK(parse_redis_url("redis://u:%4@h").code() == EINVAL);
  CHECK(parse_redis_url("redis://u:%zz@h").code() == EINVAL);
  auto ok = parse_redis_url("redis://u:%41%2f@h");
  REQUIRE(ok.ok());
  CHECK(ok->password == "A/");
}
