// An orphan's last release frees it in the same step (Store::Release with
// `orphan`, release_orphan.lua): in one round trip, never while another
// mount holds the file open (it is handed to that mount instead), never
// under a freeze (the caller's purge then waits it out), and on damaged
// keys an error or a purge left to the caller, never a lost key.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include "fixture.hpp"
#include "redis/trip_count.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::ok;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

std::unique_ptr<Store> _open(Pool& pool, const std::string& prefix) {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  return ok(Store::open(pool, prefix, opts));
}

// The one release of `ino` as this mount's orphan.
Result<Store::Released> _release_orphan(Store& s, Ino ino) {
  std::vector<Store::Release> one{{ino, true}};
  return std::move(s.release_files(one).at(0));
}

// A file created open by `s`, with `bytes` of data, then unlinked by `s`
// while open: this mount's orphan.
Ino _orphan(Store& s, std::size_t bytes) {
  Ino f = ok(s.create(k_root_ino, "f", 0644, k_user)).ino;
  ok(s.write(f, 0, std::string(bytes, 'o'), false));
  ok(s.setxattr(f, "user.x", "1", 0));
  REQUIRE(ok(s.unlink(k_root_ino, "f")) == f);
  return f;
}

std::string _field(Connection& c, const std::string& key, const std::string& field) {
  auto r = ok(c.command({"HGET", key, field}));
  return r.view().is_nil() ? std::string() : std::string(r.view().str());
}

}  // namespace

TEST_SUITE_BEGIN("core::release_orphan");

TEST_CASE_FIXTURE(RedisFixture, "an orphan's last release frees it in its own round trip, nothing left") {
  auto s = _open(pool, prefix);
  const std::string inodes = _field(conn(), keys.sb(), "inodes");
  const std::string bytes = _field(conn(), keys.sb(), "bytes");
  Ino f = _orphan(*s, 3 * 4096 + 10);  // 4 blocks
  CHECK(_field(conn(), keys.orphans(), std::to_string(f)) == s->session());
  (void)_release_orphan(*s, 999999);  // (a script's first use may load it)
  const auto trips = redis_counters().round_trips;
  CHECK(ok(_release_orphan(*s, f)) == Store::Released::done);
  CHECK(redis_counters().round_trips == trips + 1);
  CHECK(s->getattr(f).code() == ENOENT);
  CHECK(_field(conn(), keys.sb(), "inodes") == inodes);
  CHECK(_field(conn(), keys.sb(), "bytes") == bytes);
  for (const auto& k : keys_under(prefix)) {
    auto pk = parse_relative_key(*keys.relative(k));
    CHECK(pk.ino != f);  // no INODE, XATTR, BLK, OPEN of it
    CHECK(pk.kind != KeyKind::Orphans);
  }
  ok(s->purge(f));  // the forget's purge, should one come, finds nothing to do
}

TEST_CASE_FIXTURE(RedisFixture, "an orphan's release: not the last hold, too big, or not an orphan") {
  auto s = _open(pool, prefix);
  Ino f = _orphan(*s, 100);
  ok(s->open_file(f));  // opened twice here
  CHECK(ok(_release_orphan(*s, f)) == Store::Released::held);
  CHECK(ok(s->getattr(f)).nlink == 0);  // still there: one open is left
  CHECK(ok(_release_orphan(*s, f)) == Store::Released::done);
  CHECK(s->getattr(f).code() == ENOENT);

  // more blocks than the release names: left for the caller's purge
  Ino big = _orphan(*s, 20 * 4096);
  CHECK(ok(_release_orphan(*s, big)) == Store::Released::purge);
  CHECK(ok(conn().command({"EXISTS", keys.open(big)})).view().integer() == 0);  // released all the same
  ok(s->purge(big));
  CHECK(s->getattr(big).code() == ENOENT);

  // linked again meanwhile (not an orphan any more): a plain release
  Ino g = ok(s->create(k_root_ino, "g", 0644, k_user)).ino;
  CHECK(ok(_release_orphan(*s, g)) == Store::Released::held);
  CHECK(ok(s->getattr(g)).nlink == 1);
  CHECK(ok(conn().command({"EXISTS", keys.open(g)})).view().integer() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "an orphan held open by another mount is handed to it, which frees it at its close") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  Ino f = ok(a->create(k_root_ino, "f", 0644, k_user)).ino;
  ok(a->write(f, 0, "payload", false));
  ok(b->open_file(f));
  REQUIRE(ok(a->unlink(k_root_ino, "f")) == f);  // a's orphan, open on both
  CHECK(ok(_release_orphan(*a, f)) == Store::Released::done);
  CHECK(_field(conn(), keys.orphans(), std::to_string(f)) == b->session());  // handed over
  std::string back;
  ok(b->read(f, 0, 100, back));
  CHECK(back == "payload");                       // another host holding the file keeps it alive
  std::vector<Store::Release> plain{{f, false}};  // b did not unlink it: a plain release
  CHECK(ok(std::move(b->release_files(plain).at(0))) == Store::Released::purge);
  ok(b->purge(f));
  CHECK(b->getattr(f).code() == ENOENT);
  CHECK(ok(conn().command({"EXISTS", keys.orphans()})).view().integer() == 0);

  // recorded under the other mount already: a's release only releases
  Ino g = ok(a->create(k_root_ino, "g", 0644, k_user)).ino;
  ok(b->open_file(g));
  REQUIRE(ok(b->unlink(k_root_ino, "g")) == g);  // b's orphan
  CHECK(ok(_release_orphan(*a, g)) == Store::Released::held);
  CHECK(_field(conn(), keys.orphans(), std::to_string(g)) == b->session());
  CHECK(ok(_release_orphan(*b, g)) == Store::Released::done);  // b's last close frees it
  CHECK(b->getattr(g).code() == ENOENT);
}

TEST_CASE_FIXTURE(RedisFixture, "under a freeze the release goes and the orphan waits for the caller's purge") {
  auto s = _open(pool, prefix);
  Ino f = _orphan(*s, 100);
  ok(conn().command({"SET", keys.freeze(), "test"}));
  CHECK(ok(_release_orphan(*s, f)) == Store::Released::purge);  // not held back
  CHECK(ok(conn().command({"EXISTS", keys.open(f)})).view().integer() == 0);
  CHECK(ok(conn().command({"EXISTS", keys.inode(f)})).view().integer() == 1);
  ok(conn().command({"DEL", keys.freeze()}));
  ok(s->purge(f));
  CHECK(s->getattr(f).code() == ENOENT);
}

TEST_CASE_FIXTURE(RedisFixture, "an orphan's release on damaged keys: an error or a purge, never a lost key") {
  auto s = _open(pool, prefix);
  // the inode hash is not a hash: released, the orphan left for fsck
  Ino f = _orphan(*s, 100);
  ok(conn().command({"DEL", keys.inode(f)}));
  ok(conn().command({"SET", keys.inode(f), "not a hash"}));
  CHECK(ok(_release_orphan(*s, f)) == Store::Released::held);
  CHECK(ok(conn().command({"GET", keys.inode(f)})).view().str() == "not a hash");
  CHECK(_field(conn(), keys.orphans(), std::to_string(f)) == s->session());
  CHECK(ok(conn().command({"EXISTS", keys.block(f, 0)})).view().integer() == 1);
  CHECK(!s->purge(f).ok());  // the forget's purge: an error, logged

  // a block that is not a string: the caller's purge, which reports it
  const std::string other = extra_prefix();
  auto t = _open(pool, other);
  Ino g = _orphan(*t, 5000);
  const Keys tk(other);
  ok(conn().command({"DEL", tk.block(g, 1)}));
  ok(conn().command({"RPUSH", tk.block(g, 1), "a list"}));
  CHECK(ok(_release_orphan(*t, g)) == Store::Released::purge);
  CHECK(ok(conn().command({"EXISTS", tk.inode(g)})).view().integer() == 1);
  CHECK(ok(conn().command({"LLEN", tk.block(g, 1)})).view().integer() == 1);

  // the open counts are not a hash: an error, nothing changed
  Ino h = ok(s->create(k_root_ino, "h", 0644, k_user)).ino;
  REQUIRE(ok(s->unlink(k_root_ino, "h")) == h);
  ok(conn().command({"DEL", keys.open(h)}));
  ok(conn().command({"SET", keys.open(h), "not a hash"}));
  CHECK(!_release_orphan(*s, h).ok());
  CHECK(ok(conn().command({"GET", keys.open(h)})).view().str() == "not a hash");
  CHECK(ok(conn().command({"EXISTS", keys.inode(h)})).view().integer() == 1);
}

TEST_SUITE_END();
