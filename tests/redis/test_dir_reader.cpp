// core::DirReader against a real redis-server: offsets resume a listing on
// any handle, names present throughout a listing that others change (the
// hash grows and rehashes) come back once, and equal name hashes are kept
// together.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "store/dir_reader.hpp"
#include "fixture.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::RedisFixture;
using redisfs::test::ok;

namespace {

const Caller k_user{1000, 1000};

std::unique_ptr<Store> _open(Pool& pool, const std::string& prefix) { return ok(Store::open(pool, prefix, {})); }

// Everything after `offset`, as (name, offset after it).
std::vector<std::pair<std::string, std::uint64_t>> _rest(DirReader& r, std::uint64_t offset, bool plus = false) {
  ok(r.seek(offset, plus));
  std::vector<std::pair<std::string, std::uint64_t>> out;
  while (const DirEntry* e = ok(r.current())) {
    out.emplace_back(e->name, r.current_offset());
    r.advance();
  }
  return out;
}

}  // namespace

TEST_SUITE_BEGIN("core::DirReader");

TEST_CASE_FIXTURE(RedisFixture, "every offset resumes the listing right after its entry, on any handle") {
  auto s = _open(pool, prefix);
  auto d = ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  for (int i = 0; i < 1000; ++i) {
    ok(s->mknod(d.ino, "f" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  DirReader r(*s, d.ino, 64);
  auto all = _rest(r, 0, true);
  REQUIRE(all.size() == 1000);
  std::set<std::string> names;
  std::set<std::uint64_t> offsets;
  for (auto& [name, off] : all) {
    names.insert(name);
    offsets.insert(off);
    CHECK(off >= DirReader::k_first_entry_offset);
    CHECK(off < (std::uint64_t{1} << 63));
  }
  CHECK(names.size() == 1000);
  CHECK(offsets.size() == 1000);
  for (std::size_t i = 0; i < all.size(); i += 37) {
    DirReader other(*s, d.ino, 64);  // a handle that never held the page
    auto rest = _rest(other, all[i].second);
    CHECK(rest == std::vector(all.begin() + static_cast<std::ptrdiff_t>(i) + 1, all.end()));
  }
  CHECK(_rest(r, 1) == all);  // after "." and ".."
  CHECK(_rest(r, 2) == all);
  CHECK(_rest(r, all.back().second).empty());
}

TEST_CASE_FIXTURE(RedisFixture, "names the kernel cannot take are left out, counted, and offsets still resume") {
  auto s = _open(pool, prefix);
  auto d = ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  for (int i = 0; i < 300; ++i) {
    ok(s->mknod(d.ino, "f" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  const std::string ino = std::to_string(d.ino);  // (what they name does not matter)
  const std::vector<std::string> bad = {"", ".", "..", "a/b", std::string("n\0ul", 4), std::string(256, 'L')};
  for (const std::string& name : bad) {
    ok(conn().command({"HSET", Keys(prefix).dir(d.ino), name, ino}));
  }
  DirReader r(*s, d.ino, 64);
  auto all = _rest(r, 0, true);
  CHECK(all.size() == 300);
  LeftOut out = r.take_left_out();
  CHECK(out.count == bad.size());
  CHECK(std::find(bad.begin(), bad.end(), out.name) != bad.end());
  CHECK(r.take_left_out().count == 0);  // (taken)
  DirReader other(*s, d.ino, 64);
  CHECK(_rest(other, all[150].second) == std::vector(all.begin() + 151, all.end()));
}

TEST_CASE_FIXTURE(RedisFixture, "a reply that filled up at the end of a page goes on without reading it again") {
  auto s = _open(pool, prefix);
  auto d = ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  for (int i = 0; i < 1000; ++i) {  // past 512: a hashtable, not one listpack reply
    ok(s->mknod(d.ino, "f" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  DirReader r(*s, d.ino, 64);
  ok(r.seek(0, true));
  std::uint64_t last_of_first = 0;
  const std::uint64_t first_page = ok(r.current()) ? r.current_offset() >> 32 : 0;
  while (ok(r.current()) && (r.current_offset() >> 32) == first_page) {
    last_of_first = r.current_offset();
    r.advance();
  }
  // The reader holds the second page now; the kernel asks for what
  // follows the last entry it got, the first page's last.
  REQUIRE(ok(r.current()));
  const std::string first_of_second = ok(r.current())->name;
  const std::uint64_t before = redis_counters().round_trips;
  ok(r.seek(last_of_first, true));
  CHECK(redis_counters().round_trips == before);
  REQUIRE(ok(r.current()));
  CHECK(ok(r.current())->name == first_of_second);
}

TEST_CASE_FIXTURE(RedisFixture, "names present throughout come back once while others come and go") {
  auto s = _open(pool, prefix);
  auto d = ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  std::set<std::string> stable;
  for (int i = 0; i < 1500; ++i) {
    stable.insert("s" + std::to_string(i));
    ok(s->mknod(d.ino, "s" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  // Between pages another "mount" adds 120 names and removes 60: the hash
  // passes 2,048 entries and grows (a rehash) during the listing.
  auto other = _open(pool, prefix);
  DirReader r(*s, d.ino, 100);
  ok(r.seek(0, false));
  std::map<std::string, int> seen;
  int added = 0;
  std::uint64_t page = 0;
  while (const DirEntry* e = ok(r.current())) {
    ++seen[e->name];
    std::uint64_t off = r.current_offset();
    r.advance();
    if ((off >> 32) != page) {
      page = off >> 32;
      for (int i = 0; i < 120; ++i, ++added) {
        ok(other->mknod(d.ino, "n" + std::to_string(added), S_IFREG | 0644, 0, k_user));
      }
      for (int i = added - 120; i < added - 60; ++i) {
        ok(other->unlink(d.ino, "n" + std::to_string(i)));
      }
    }
  }
  CHECK(added > 600);
  for (const std::string& name : stable) {
    CHECK_MESSAGE(seen[name] == 1, name << " listed " << seen[name] << " times");
  }
}

TEST_CASE_FIXTURE(RedisFixture, "names with the same hash are kept together and resumed past together") {
  // Two names whose hash32 collide (birthday search; deterministic).
  std::unordered_map<std::uint32_t, std::string> by_hash;
  std::string a;
  std::string b;
  for (int i = 0; a.empty(); ++i) {
    std::string name = "c" + std::to_string(i);
    auto [it, fresh] = by_hash.emplace(DirReader::name_hash(name), name);
    if (!fresh) {
      a = it->second;
      b = name;
    }
  }
  auto s = _open(pool, prefix);
  auto d = ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  for (const std::string& name : {a, b, std::string("x"), std::string("y")}) {
    ok(s->mknod(d.ino, name, S_IFREG | 0644, 0, k_user));
  }
  DirReader r(*s, d.ino);
  ok(r.seek(0, false));
  int follows = 0;
  std::uint64_t collided = 0;
  while (const DirEntry* e = ok(r.current())) {
    if (r.must_follow()) {
      ++follows;
      CHECK((e->name == a || e->name == b));
      collided = r.current_offset();
    }
    r.advance();
  }
  CHECK(follows == 1);
  for (auto& [name, off] : _rest(r, collided)) {
    CHECK(name != a);
    CHECK(name != b);
  }
}

TEST_SUITE_END();
