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
  ok(conn().command({"SET", keys.freeze(), "test", "PX", "10000"}));
  CHECK(ok(_release_orphan(*s, f)) == Store::Released::purge);  // not held back
  CHECK(ok(conn().command({"EXISTS", keys.open(f)})).view().integer() == 0);
  CHECK(ok(conn().command({"EXISTS", keys.inode(f)})).view().integer() == 1);
  ok(conn().command({"DEL", keys.freeze()}));
  ok(s->purge(f));
  CHECK(s->getattr(f).code() == ENOENT);

  // a freeze no freezer set (no time to live: prelude.lua, freeze_alive)
  // holds nothing: the release frees the orphan
  Ino g = _orphan(*s, 100);
  ok(conn().command({"SET", keys.freeze(), "not a freezer's"}));
  CHECK(ok(_release_orphan(*s, g)) == Store::Released::done);
  CHECK(ok(conn().command({"EXISTS", keys.inode(g)})).view().integer() == 0);
  ok(conn().command({"DEL", keys.freeze()}));
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
  auto refused = _release_orphan(*s, h);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == EIO);
  CHECK(refused.error().message.find(keys.open(h) + " is not a hash") != std::string::npos);  // names the key
  // the orphan's purge (the sweep's) is refused the same, naming the key
  auto purged = s->purge(h);
  REQUIRE_FALSE(purged.ok());
  CHECK(purged.error().message.find(keys.open(h) + " is not a hash") != std::string::npos);
  CHECK(ok(conn().command({"GET", keys.open(h)})).view().str() == "not a hash");
  CHECK(ok(conn().command({"EXISTS", keys.inode(h)})).view().integer() == 1);
}

namespace {

// The files of one batch, made by `a` (this mount) with `b` another, each
// named with `tag`: their releases by `a`, and what each must answer.
struct Batch {
  std::vector<Store::Release> releases;
  std::vector<Ino> inos;
};

Batch _batch(Store& a, Store& b, Connection& c, const Keys& keys, const std::string& tag) {
  auto make = [&](const std::string& name) { return ok(a.create(k_root_ino, name + tag, 0644, k_user)).ino; };
  Batch out;
  Ino kept = make("kept");  // a's only open: the release takes its count off
  Ino twice = make("twice");
  ok(a.open_file(twice));  // opened twice: released twice in the batch
  Ino shared = make("shared");
  ok(b.open_file(shared));  // b still holds it
  Ino theirs = make("theirs");
  REQUIRE(ok(b.unlink(k_root_ino, "theirs" + tag)) == theirs);  // b's orphan, held by a only
  Ino mine = make("mine");
  REQUIRE(ok(a.unlink(k_root_ino, "mine" + tag)) == mine);  // a's orphan (release_orphan.lua)
  Ino broken = make("broken");
  ok(c.command({"DEL", keys.open(broken)}));
  ok(c.command({"SET", keys.open(broken), "not a hash"}));  // a damaged OPEN
  Ino nan = make("nan");
  ok(c.command({"HSET", keys.open(nan), a.session(), "many"}));  // a damaged count
  Ino bad_inode = make("badinode");
  ok(c.command({"HSET", keys.inode(bad_inode), "nlink", "x"}));  // no orphan it can judge
  Ino after = make("after");                                     // plain releases after the orphan's
  out.inos = {kept, twice, shared, theirs, mine, twice, broken, nan, bad_inode, after};
  for (Ino ino : out.inos) {
    out.releases.push_back({ino, ino == mine});
  }
  return out;
}

}  // namespace

TEST_CASE_FIXTURE(RedisFixture,
                  "a batch of releases is one script per run of plain ones, each file answered as alone") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  Ino warm = ok(a->create(k_root_ino, "warm", 0644, k_user)).ino;  // (a script's first use may load it)
  std::vector<Store::Release> warm_release{{warm}};
  REQUIRE(a->release_files(warm_release).at(0).ok());

  // each file released on its own, as a pipeline of single releases did
  Batch one = _batch(*a, *b, conn(), keys, "1");
  std::vector<Result<Store::Released>> alone;
  for (const auto& r : one.releases) {
    std::vector<Store::Release> single{r};
    alone.push_back(std::move(a->release_files(single).at(0)));
  }
  // the same files, released in one batch
  Batch all = _batch(*a, *b, conn(), keys, "2");
  ok(conn().command({"CONFIG", "RESETSTAT"}));
  const auto trips = redis_counters().round_trips;
  auto together = a->release_files(all.releases);
  CHECK(redis_counters().round_trips - trips == 1);
  CHECK(test::command_calls(conn(), "evalsha") == 3);  // the plain ones before the orphan, the orphan's, those after it

  REQUIRE(together.size() == all.releases.size());
  const char* names[] = {"kept",        "twice",  "shared", "theirs",   "mine",
                         "twice again", "broken", "nan",    "badinode", "after"};
  for (std::size_t i = 0; i < together.size(); ++i) {
    const std::string name = names[i];
    CAPTURE(name);
    REQUIRE(alone[i].ok() == together[i].ok());
    if (alone[i].ok()) {
      CHECK(*alone[i] == *together[i]);
    } else {
      CHECK(alone[i].error().code == EIO);
      CHECK(together[i].error().code == EIO);
    }
  }
  auto answer = [&](std::size_t i) { return ok(std::move(together[i])); };
  CHECK(answer(0) == Store::Released::held);
  CHECK(answer(1) == Store::Released::held);   // one open of it is left at that point
  CHECK(answer(2) == Store::Released::held);   // b holds it
  CHECK(answer(3) == Store::Released::purge);  // b's orphan nobody holds any more: a purges it
  CHECK(answer(4) == Store::Released::done);   // a's orphan, freed by its release
  CHECK(answer(5) == Store::Released::held);
  CHECK(together[6].error().code == EIO);  // a damaged OPEN: an error for it, nothing changed
  CHECK(together[7].error().code == EIO);
  CHECK(answer(8) == Store::Released::held);
  CHECK(answer(9) == Store::Released::held);

  for (const Batch* batch : {&one, &all}) {
    const auto& f = batch->inos;
    for (std::size_t i : {0, 1, 3, 4, 8, 9}) {
      CHECK(ok(conn().command({"EXISTS", keys.open(f[i])})).view().integer() == 0);
    }
    CHECK(_field(conn(), keys.open(f[2]), b->session()) == "1");  // b's open is left
    CHECK(ok(conn().command({"EXISTS", keys.open(f[2])})).view().integer() == 1);
    CHECK(_field(conn(), keys.open(f[2]), a->session()).empty());
    CHECK(ok(conn().command({"GET", keys.open(f[6])})).view().str() == "not a hash");
    CHECK(_field(conn(), keys.open(f[7]), a->session()) == "many");
    CHECK(a->getattr(f[4]).code() == ENOENT);  // freed
    ok(a->purge(f[3]));
    CHECK(a->getattr(f[3]).code() == ENOENT);
  }
  CHECK(ok(conn().command({"EXISTS", keys.orphans()})).view().integer() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "releases past a script's worth go in more scripts, still one round trip") {
  auto s = _open(pool, prefix);
  Ino f = ok(s->create(k_root_ino, "f", 0644, k_user)).ino;
  const std::size_t n = Store::k_release_batch + 10;
  for (std::size_t i = 1; i < n; ++i) {
    ok(s->open_file(f));
  }
  std::vector<Store::Release> batch(n, Store::Release{f});
  REQUIRE(s->release_files(std::span(batch).first(1)).at(0).ok());  // (a script's first use may load it)
  ok(s->open_file(f));
  ok(conn().command({"CONFIG", "RESETSTAT"}));
  const auto trips = redis_counters().round_trips;
  auto done = s->release_files(batch);
  CHECK(redis_counters().round_trips - trips == 1);
  CHECK(test::command_calls(conn(), "evalsha") == 2);
  REQUIRE(done.size() == n);
  for (auto& r : done) {
    CHECK(ok(std::move(r)) == Store::Released::held);
  }
  CHECK(ok(conn().command({"EXISTS", keys.open(f)})).view().integer() == 0);
}

TEST_SUITE_END();
