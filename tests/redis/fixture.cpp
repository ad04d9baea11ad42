// The redis test fixture (see fixture.hpp).
#include "fixture.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>

namespace redisfs::test {

const RedisUrl& test_url() {
  static const RedisUrl url = [] {
    const char* env = std::getenv("REDISFS_TEST_URL");
    if (env == nullptr) {
      std::fprintf(stderr, "REDISFS_TEST_URL is not set: run through tests/with_redis.sh\n");
      std::abort();
    }
    auto parsed = parse_redis_url(env);
    if (!parsed.ok()) {
      std::fprintf(stderr, "REDISFS_TEST_URL: %s\n", parsed.error().message.c_str());
      std::abort();
    }
    return parsed.value();
  }();
  return url;
}

Status check_test_server() {
  TRY_ASSIGN(auto c, Connection::open(test_url(), "redisfs:test"));
  TRY_ASSIGN(Reply r, c->command({"DBSIZE"}));
  if (r.view().integer() != 0) {
    return make_error(ENOTEMPTY, "the test server's database is not empty (" + std::to_string(r.view().integer()) +
                                     " keys): refusing to run; use tests/with_redis.sh");
  }
  return {};
}

std::string random_prefix() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  char buf[20];
  std::snprintf(buf, sizeof buf, "T%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::unique_ptr<Connection> connect(const std::string& client_name) {
  auto c = Connection::open(test_url(), client_name);
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  return std::move(c).value();
}

// The keys matching `match` (SCAN MATCH), sorted.
static Result<std::vector<std::string>> _scan_matching(Connection& c, const std::string& match) {
  std::vector<std::string> out;
  std::string cursor = "0";
  do {
    TRY_ASSIGN(Reply r, c.command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"}));
    ReplyView v = r.view();
    cursor = std::string(v[0].str());
    for (std::size_t i = 0; i < v[1].size(); ++i) {
      out.emplace_back(v[1][i].str());
    }
  } while (cursor != "0");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The keys under `prefix` (prefix:*).
static Result<std::vector<std::string>> _scan(Connection& c, const std::string& prefix) {
  return _scan_matching(c, prefix + ":*");
}

std::vector<std::string> keys_under(Connection& c, const std::string& prefix) {
  auto keys = _scan(c, prefix);
  REQUIRE_MESSAGE(keys.ok(), (keys.ok() ? "" : keys.error().message));
  return std::move(keys).value();
}

// No doctest assertion here: it runs in the fixture's destructor.
// Pipelined: the types in one round trip, the values in another.
Content content(Connection& c, const std::string& prefix) {
  Keys keys(prefix);
  std::vector<std::string> names;
  std::vector<std::string> rels;
  for (const auto& key : keys_under(c, prefix)) {
    std::string rel(*keys.relative(key));
    if (is_filesystem_key(parse_relative_key(rel).kind)) {
      names.push_back(key);
      rels.push_back(std::move(rel));
    }
  }
  for (const auto& key : names) {
    c.append({"TYPE", key});
  }
  std::vector<Reply> types = ok(c.read_all());
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string_view t = types[i].view().str();
    c.append({t == "string" ? "GET" : t == "hash" ? "HGETALL" : "TYPE", names[i]});
  }
  std::vector<Reply> values = ok(c.read_all());
  Content out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& rel = rels[i];
    std::string t(types[i].view().str());
    ReplyView v = values[i].view();
    if (t == "string") {
      out[rel] = "s" + std::string(v.str());
    } else if (t == "hash") {
      std::map<std::string, std::string> fields;
      for (std::size_t j = 0; j + 1 < v.size(); j += 2) {
        fields[std::string(v[j].str())] = std::string(v[j + 1].str());
      }
      if (rel == "SB") {
        // What a restore or copy says of where the filesystem came from
        // (and the snapshot's identity, which a copy gives it).
        for (const char* mark :
             {"restored_from", "dumped", "read_only", "origin", "snapshot_created", "snapshot_id", "lineage"}) {
          fields.erase(mark);
        }
      }
      std::string s = "h";
      for (const auto& [f, val] : fields) {
        s += f + '\0' + val + '\0';
      }
      out[rel] = s;
    } else {
      out[rel] = "?" + t;
    }
  }
  return out;
}

// The number after `tag` in INFO `section` (0: no such line).
static long long _info_count(Connection& c, const char* section, const std::string& tag) {
  auto r = c.command({"INFO", section});
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  const std::string info(r->view().str());
  auto at = info.find(tag);
  return at == std::string::npos ? 0 : std::atoll(info.c_str() + at + tag.size());
}

long long command_calls(Connection& c, std::string_view command) {
  return _info_count(c, "commandstats", "cmdstat_" + std::string(command) + ":calls=");
}

long long error_replies(Connection& c, std::string_view word) {
  return _info_count(c, "errorstats", "errorstat_" + std::string(word) + ":count=");
}

// Unlinks the keys matching `match`: how many.
static std::size_t _delete_matching(Connection& c, const std::string& match) {
  auto scanned = _scan_matching(c, match);
  if (!scanned.ok()) {
    return 0;
  }
  const std::vector<std::string>& keys = scanned.value();
  for (std::size_t at = 0; at < keys.size(); at += 500) {
    Args argv{"UNLINK"};
    for (std::size_t i = at; i < std::min(keys.size(), at + 500); ++i) {
      argv.push_back(keys[i]);
    }
    (void)c.command(argv);
  }
  return keys.size();
}

std::size_t delete_prefix(Connection& c, const std::string& prefix) { return _delete_matching(c, prefix + ":*"); }

TempDir::TempDir() {
  const char* base = std::getenv("REDISFS_TEST_TMPDIR");
  if (base == nullptr || *base == '\0') {
    base = std::getenv("TMPDIR");
  }
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/case.XXXXXX";
  char* made = ::mkdtemp(tmpl.data());
  REQUIRE_MESSAGE(made != nullptr, "mkdtemp " << tmpl << " failed");
  m_path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(m_path, ec);
}

RedisFixture::RedisFixture() : pool(test_url(), "redisfs:test-pool"), prefix(random_prefix()), keys(prefix) {
  m_prefixes.push_back(prefix);
}

RedisFixture::~RedisFixture() {
  auto c = Connection::open(test_url(), "redisfs:test-cleanup");
  if (!c.ok()) {
    return;  // the server is gone: nothing to clean
  }
  for (const auto& p : m_prefixes) {
    delete_prefix(**c, p);
    // and its temporaries, which a case that fails or stops half-way (or
    // one that makes them by hand) leaves: staged restores and copies
    // (p~restore~..., p~copy~...), their indexes (p~index): a later case on
    // the same server must not find them (a run of every case in one
    // process, tests/with_redis.sh)
    _delete_matching(**c, p + "~*");
  }
}

Connection& RedisFixture::conn() {
  if (!m_conn) {
    m_conn = connect("redisfs:test-fixture");
  }
  return *m_conn;
}

std::string RedisFixture::extra_prefix() {
  m_prefixes.push_back(random_prefix());
  return m_prefixes.back();
}

}  // namespace redisfs::test
