// Copy-on-write snapshots (snapshot.hpp, CowSnapshot): the staging prefix
// gets the filesystem exactly as it was at the instant whatever the change
// scripts do meanwhile (every kind of change, through a Store whose
// connections learn of the snapshot from the scripts' COW replies); a
// snapshot whose copier stalls lapses, stops costing the writers, and is
// cleaned up by the next one; a freeze and a snapshot exclude each other.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <thread>

#include "fixture.hpp"
#include "redis/lua_scripts.hpp"
#include "snap/fs_report.hpp"
#include "snap/fsck.hpp"
#include "snap/install.hpp"
#include "snap/room.hpp"
#include "snap/snapshot.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::ok;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

struct Tree {
  Ino dir = 0, f1 = 0, f2 = 0, f3 = 0, f5 = 0, f6 = 0, sparse = 0, wide = 0, held = 0, empty = 0;
};

// Something of every kind: data over several blocks, a hole, xattrs, a
// directory longer than one HSCAN page, hard and symbolic links, an empty
// directory, an unlinked file still open.
Tree _populate(Store& s) {
  Tree t;
  t.dir = ok(s.mkdir(k_root_ino, "dir", 0755, k_user)).ino;
  t.f1 = ok(s.mknod(t.dir, "f1", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(t.f1, 0, std::string(3 * 4096, '1'), false));
  t.f2 = ok(s.mknod(t.dir, "f2", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(t.f2, 0, std::string(5000, '2'), false));
  t.f3 = ok(s.mknod(t.dir, "f3", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(t.f3, 0, std::string(70000, '3'), false));  // more than 16 blocks: unlink orphans it
  ok(s.mknod(t.dir, "f4", S_IFREG | 0644, 0, k_user));
  t.f5 = ok(s.mknod(k_root_ino, "f5", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(t.f5, 0, "five", false));
  t.f6 = ok(s.mknod(k_root_ino, "f6", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(t.f6, 0, "six", false));
  t.sparse = ok(s.mknod(k_root_ino, "sparse", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(t.sparse, 0, "start", false));
  ok(s.write(t.sparse, 9 * 4096, "end", false));
  ok(s.setxattr(t.f1, "user.a", "1", 0));
  ok(s.setxattr(t.f2, "user.b", "2", 0));
  t.wide = ok(s.mkdir(k_root_ino, "wide", 0755, k_user)).ino;
  for (int i = 0; i < 1200; ++i) {
    ok(s.mknod(t.wide, "w" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  ok(s.link(t.f1, k_root_ino, "f1 again"));
  ok(s.symlink(t.dir, "link", "../f5", k_user));
  t.empty = ok(s.mkdir(k_root_ino, "empty", 0700, k_user)).ino;
  t.held = ok(s.create(k_root_ino, "held", 0644, k_user)).ino;
  ok(s.write(t.held, 0, std::string(9000, 'h'), false));
  REQUIRE(ok(s.unlink(k_root_ino, "held")) == t.held);
  return t;
}

// Every change script, through the store, after the instant.
void _change_everything(Store& s, const Tree& t) {
  ok(s.write(t.f1, 4096, std::string(100, 'X'), false));        // over a block
  ok(s.write(t.f1, 0, "appended", true));                        // a new block
  SetAttrRequest cut;
  cut.size = 0;
  ok(s.setattr(t.f2, cut));                                      // truncate
  REQUIRE(ok(s.unlink(t.dir, "f3")) == t.f3);                    // orphaned
  ok(s.purge(t.f3));                                             // then freed
  ok(s.unlink(t.dir, "f4"));                                     // freed at once
  ok(s.rename(k_root_ino, "f6", k_root_ino, "f5", 0));           // over another file
  ok(s.rename(k_root_ino, "dir", t.wide, "moved", 0));           // a directory
  Ino fresh = ok(s.mknod(k_root_ino, "fresh", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(fresh, 0, std::string(5000, 'f'), false));
  ok(s.setxattr(fresh, "user.new", "n", 0));
  ok(s.setxattr(t.f1, "user.a", "changed", 0));
  ok(s.removexattr(t.f2, "user.b"));
  ok(s.setxattr(t.sparse, "user.s", "an xattr made after the instant", 0));
  ok(s.write(t.sparse, 5 * 4096, "in the hole", false));         // a block the instant did not have
  ok(s.rmdir(k_root_ino, "empty"));
  ok(s.mkdir(k_root_ino, "new dir", 0755, k_user));
  SetAttrRequest mode;
  mode.mode = 0600;
  mode.uid = 7;
  ok(s.setattr(t.f6, mode));  // (f6 is f5 now)
  ok(s.link(t.sparse, t.wide, "sparse again"));
  ok(s.symlink(k_root_ino, "new link", "fresh", k_user));
  for (int i = 0; i < 50; ++i) {
    ok(s.unlink(t.wide, "w" + std::to_string(i)));
    ok(s.mknod(t.wide, "n" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  // the orphan's last close frees it in the same step (release_orphan.lua)
  std::vector<Store::Release> last{{t.held, true}};
  CHECK(ok(std::move(s.release_files(last).at(0))) == Store::Released::done);
}

std::set<std::string> _index(Connection& c, const Keys& staging) {
  auto r = ok(c.command({"LRANGE", staging_index_key(staging), "0", "-1"}));
  std::set<std::string> out;
  for (std::size_t i = 0; i < r.view().size(); ++i) {
    out.insert(std::string(r.view()[i].str()));
  }
  return out;
}

long long _exists(Connection& c, const std::string& key) {
  return ok(c.command({"EXISTS", key})).view().integer();
}

}  // namespace

TEST_SUITE_BEGIN("core::cow");

TEST_CASE_FIXTURE(RedisFixture, "cow: the copy is the instant, whatever every change script does meanwhile") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Tree t = _populate(*s);
  const test::Content before = test::content(conn(), prefix);
  REQUIRE(before.count("ORPHANS") == 1);

  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  auto lease = ok(pool.acquire());
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, "a test"));
  CHECK(cow.dead_staging().empty());
  CHECK(cow.instant_ns() > 0);
  CHECK(ok(conn().command({"HGET", keys.cow(), "staging"})).view().str() == tk.prefix());

  _change_everything(*s, t);
  const test::Content changed = test::content(conn(), prefix);
  REQUIRE(changed != before);
  // The scripts copied what they changed, and marked what they made.
  CHECK(_exists(conn(), tk.inode(t.f1)) == 1);
  CHECK(_exists(conn(), tk.block(t.sparse, 5)) == 0);
  CHECK(ok(conn().command({"SISMEMBER", tk.touched(), "BLK:" + std::to_string(t.sparse) + ":5"})).view().integer() == 1);

  std::string warning;
  std::uint64_t n = ok(copy_keys_cow(*lease, keys, tk, cow, nullptr, &warning));
  CHECK_MESSAGE(warning.empty(), warning);
  ok(cow.end(*lease));
  CHECK(_exists(conn(), keys.cow()) == 0);

  const test::Content staged = test::content(conn(), tk.prefix());
  CHECK(staged.size() == before.size());
  for (const auto& [rel, value] : before) {
    auto it = staged.find(rel);
    if (it == staged.end()) {
      FAIL_CHECK("missing from the snapshot: " << rel);
    } else if (it->second != value) {
      FAIL_CHECK("differs from the instant: " << rel);
    }
  }
  for (const auto& [rel, value] : staged) {
    if (before.count(rel) == 0) {
      FAIL_CHECK("not in the instant: " << rel);
    }
  }
  // The index names each staged key once, but the superblock (its own).
  std::set<std::string> listed = _index(conn(), tk);
  CHECK(n == listed.size() + 1);
  std::set<std::string> staged_keys;
  for (const auto& [rel, value] : staged) {
    if (rel != "SB") {
      staged_keys.insert(rel);
    }
  }
  CHECK(listed == staged_keys);
  // Changes after the end are not copied.
  ok(s->write(t.f6, 0, "after", false));
  CHECK(test::content(conn(), tk.prefix()) == staged);

  ok(remove_staging(*lease, tk));
  CHECK(test::keys_under(conn(), tk.prefix()).empty());
  CHECK(_exists(conn(), staging_index_key(tk)) == 0);
}

std::set<std::string> _members(Connection& c, const std::string& key) {
  auto r = ok(c.command({"SMEMBERS", key}));
  std::set<std::string> out;
  for (std::size_t i = 0; i < r.view().size(); ++i) {
    out.insert(std::string(r.view()[i].str()));
  }
  return out;
}

std::string _block(Ino ino, std::uint64_t index) { return std::to_string(ino) + ":" + std::to_string(index); }

TEST_CASE_FIXTURE(RedisFixture,
                  "cow: blocks probed at the instant and taken later are the instant's, whatever changes between") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Tree t = _populate(*s);
  const test::Content before = test::content(conn(), prefix);

  Keys tk(make_temp_prefix(prefix, TempKind::Dump));
  auto lease = ok(pool.acquire());
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, ""));
  ok(s->write(t.f1, 0, "before the walk", false));  // the walk finds this block staged
  std::string warning;
  std::uint64_t n = ok(copy_keys_cow(*lease, keys, tk, cow, nullptr, &warning, nullptr, CowMode::Probe));
  CHECK_MESSAGE(warning.empty(), warning);
  CHECK(n == before.size());
  // Every block of the instant is listed; only the one a script copied is staged.
  std::set<std::string> listed = _index(conn(), tk);
  std::vector<std::string> blocks;
  for (const auto& [rel, value] : before) {
    if (parse_relative_key(rel).kind == KeyKind::Block) {
      blocks.push_back(rel);
      CHECK_MESSAGE(listed.count(rel) == 1, rel);
      CHECK_MESSAGE(_exists(conn(), tk.absolute(rel)) == (rel == "BLK:" + _block(t.f1, 0)), rel);
    }
  }
  REQUIRE(blocks.size() > 20);

  _change_everything(*s, t);  // between the walk and the takes
  REQUIRE(test::content(conn(), prefix) != before);
  // Taken in batches of 7 (the streamer pipelines them as here).
  for (std::size_t from = 0; from < blocks.size(); from += 7) {
    auto batch = std::span<const std::string>(blocks).subspan(from, std::min<std::size_t>(7, blocks.size() - from));
    cow_take_batch(*lease, keys, tk, cow, batch);
    std::vector<long long> found(batch.size(), -3);
    ok(cow_take_found(lease->read_reply(), keys, tk, found));
    for (std::size_t i = 0; i < batch.size(); ++i) {
      CHECK_MESSAGE(found[i] + 1 == static_cast<long long>(before.at(batch[i]).size()), batch[i]);  // ("s" + bytes)
    }
  }
  // The staging prefix now holds the instant, every key of it.
  CHECK(test::content(conn(), tk.prefix()) == before);
  // A block taken and removed is not copied again by a change.
  const std::string taken = tk.block(t.f1, 2);
  REQUIRE(_exists(conn(), taken) == 1);
  ok(conn().command({"UNLINK", taken}));
  ok(s->write(t.f1, 2 * 4096, "after the take", false));
  CHECK(_exists(conn(), taken) == 0);
  // A take run twice (its reply lost) answers alike.
  auto again = std::span<const std::string>(blocks).first(1);
  cow_take_batch(*lease, keys, tk, cow, again);
  std::vector<long long> found(1, -3);
  ok(cow_take_found(lease->read_reply(), keys, tk, found));
  CHECK(found[0] + 1 == static_cast<long long>(before.at(blocks[0]).size()));

  ok(cow.end(*lease));
  ok(remove_staging(*lease, tk));
  CHECK(test::keys_under(conn(), tk.prefix()).empty());
  CHECK(_exists(conn(), tk.touched()) == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "cow: a live snapshot whose ttl is damaged fails a change before it writes") {
  // (a key marked copied but not copied would be missing from the
  // snapshot: the change fails first, EIO, and nothing is marked)
  auto s = ok(Store::open(pool, prefix, {}));
  Ino f = ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user)).ino;
  ok(s->write(f, 0, "the instant's", false));
  const test::Content before = test::content(conn(), prefix);
  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  auto lease = ok(pool.acquire());
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, "a test"));
  const std::string ttl(ok(conn().command({"HGET", keys.cow(), "ttl"})).view().str());
  for (std::string bad : {"", "0", "-5", "2.5", "x"}) {
    CAPTURE(bad);
    if (bad.empty()) {
      ok(conn().command({"HDEL", keys.cow(), "ttl"}));
    } else {
      ok(conn().command({"HSET", keys.cow(), "ttl", bad}));
    }
    auto made = s->mkdir(k_root_ino, "d", 0755, k_user);
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().code == EIO);
    CHECK(ok(conn().command({"SCARD", tk.touched()})).view().integer() == 0);
    CHECK(test::content(conn(), prefix) == before);
  }
  ok(conn().command({"HSET", keys.cow(), "ttl", ttl}));
  ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  std::string warning;
  ok(copy_keys_cow(*lease, keys, tk, cow, nullptr, &warning));
  CHECK_MESSAGE(warning.empty(), warning);
  CHECK(test::content(conn(), tk.prefix()) == before);
  ok(cow.end(*lease));
  ok(remove_staging(*lease, tk));
}

TEST_CASE_FIXTURE(RedisFixture, "cow: a snapshot takes the change record of its instant, the source starts a new one") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Tree t = _populate(*s);
  // Nothing is tracked before the first snapshot: there is no record.
  CHECK(_exists(conn(), keys.changed()) == 0);
  // As if an earlier snapshot "p0" had been taken and f5 written since.
  const std::string p0(32, 'a');
  ok(conn().command({"SADD", keys.changed(), changed_since_member(p0)}));
  ok(s->write(t.f5, 1, "X", false));
  const std::set<std::string> at_instant{changed_since_member(p0), _block(t.f5, 0)};
  REQUIRE(_members(conn(), keys.changed()) == at_instant);

  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  auto lease = ok(pool.acquire());
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, "a test", Identity::Snapshot));
  REQUIRE(cow.changed_staged());
  const std::string id = cow.snapshot_id();
  // The instant: the snapshot has the record, the source a fresh one.
  CHECK(_members(conn(), tk.changed()) == at_instant);
  CHECK(_members(conn(), keys.changed()) == std::set<std::string>{changed_since_member(id)});

  _change_everything(*s, t);
  std::string warning;
  std::uint64_t n = ok(copy_keys_cow(*lease, keys, tk, cow, nullptr, &warning));
  CHECK_MESSAGE(warning.empty(), warning);
  ok(cow.end(*lease));
  // The copier and the change scripts left the snapshot's record alone.
  CHECK(_members(conn(), tk.changed()) == at_instant);
  std::set<std::string> listed = _index(conn(), tk);
  CHECK(listed.count("CHANGED") == 1);
  CHECK(n == listed.size());  // (the superblock counted, CHANGED not yet)
  // What the changes after the instant wrote or cut is in the source's.
  std::set<std::string> live = _members(conn(), keys.changed());
  CHECK(live.count(changed_since_member(id)) == 1);
  for (const std::string& b : {_block(t.f1, 1), _block(t.f1, 3), _block(t.sparse, 5)}) {
    CHECK_MESSAGE(live.count(b) == 1, b);
  }
  Ino fresh = ok(s->lookup(k_root_ino, "fresh")).ino;
  CHECK(live.count(_block(fresh, 0)) == 1);
  CHECK(live.count(_block(fresh, 1)) == 1);
  // A truncation that cuts a block short records it; one that drops whole
  // blocks needs no record (the base has them and the new state lacks them).
  SetAttrRequest cut;
  cut.size = 4100;
  ok(s->setattr(fresh, cut));
  CHECK(_members(conn(), keys.changed()).count(_block(fresh, 1)) == 1);
  ok(remove_staging(*lease, tk));
  CHECK(_exists(conn(), tk.changed()) == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "change record: bounded, and a record that is not a set never stops a write") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Ino f = ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user)).ino;
  // The cap in prelude.lua is keys.hpp's.
  CHECK(std::string(lua::script_source(lua::write).text).find("k_changed_cap = " + std::to_string(k_changed_cap)) !=
        std::string::npos);
  // Filled to the cap (a since member and k_changed_cap blocks), one more
  // block turns it into "overflow", which stops the tracking.
  std::vector<std::string> argv{"SADD", keys.changed(), changed_since_member(std::string(32, 'b'))};
  for (std::uint64_t i = 0; i < k_changed_cap - 1; ++i) {
    argv.push_back("999999:" + std::to_string(i));
  }
  ok(conn().command(argv));
  ok(s->write(f, 0, "a", false));
  CHECK(ok(conn().command({"SCARD", keys.changed()})).view().integer() == static_cast<long long>(k_changed_cap) + 1);
  ok(s->write(f, 4096, "b", false));
  CHECK(ok(conn().command({"GET", keys.changed()})).view().str() == k_changed_overflow);
  ok(s->write(f, 8192, "c", false));
  CHECK(ok(conn().command({"GET", keys.changed()})).view().str() == k_changed_overflow);
  // Hostile records: writes and truncations go on, the record untouched.
  for (const std::vector<std::string>& make : {std::vector<std::string>{"HSET", keys.changed(), "a", "b"},
                                               std::vector<std::string>{"RPUSH", keys.changed(), "1:0"}}) {
    ok(conn().command({"DEL", keys.changed()}));
    ok(conn().command(make));
    ok(s->write(f, 10, "more", false));
    SetAttrRequest cut;
    cut.size = 5;
    ok(s->setattr(f, cut));
    CHECK(ok(conn().command({"TYPE", keys.changed()})).view().str() == (make[0] == "HSET" ? "hash" : "list"));
  }
}

TEST_CASE_FIXTURE(RedisFixture, "cow: copy and dump while the writers run, then no trace of the snapshot") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Tree t = _populate(*s);
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    Ino f = ok(s->mknod(k_root_ino, "busy", S_IFREG | 0644, 0, k_user)).ino;
    while (!stop.load()) {
      auto w = s->write(f, 0, std::string(4096, static_cast<char>('a' + writes.load() % 26)), true);
      if (!w.ok()) {
        FAIL_CHECK(w.error().message);
        return;
      }
      ++writes;
    }
  });
  while (writes.load() < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::string dst = extra_prefix();
  CopyStats st = ok(copy_filesystem(pool, prefix, dst, CopyOptions{false, false, true}));
  CHECK_MESSAGE(st.warning.empty(), st.warning);
  stop = true;
  writer.join();
  CHECK(writes.load() > 5);
  CHECK(_exists(conn(), keys.cow()) == 0);
  // Nothing left under any staging prefix of the source.
  auto left = ok(conn().command({"SCAN", "0", "MATCH", prefix + "~*", "COUNT", "100000"}));
  CHECK(left.view()[1].size() == 0);
  // The snapshot's busy file holds whole 4 KiB writes only.
  StoreOptions ro;
  ro.read_only = true;
  auto snap = ok(Store::open(pool, dst, ro));
  Ino busy = ok(snap->lookup(k_root_ino, "busy")).ino;
  Attr a = ok(snap->getattr(busy));
  CHECK(a.size % 4096 == 0);
  (void)t;
}

TEST_CASE_FIXTURE(RedisFixture, "cow: a lapsed snapshot fails its copy, costs the writers nothing, and the next one removes it") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Tree t = _populate(*s);
  auto lease = ok(pool.acquire());
  Keys first(make_temp_prefix(prefix, TempKind::Copy));
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, first, "first"));
  ok(s->write(t.f1, 0, "copied first", false));
  CHECK(_exists(conn(), first.block(t.f1, 0)) == 1);
  const auto staged = test::keys_under(conn(), first.prefix());

  ok(conn().command({"HSET", keys.cow(), "deadline", "1"}));  // as if its copier had stalled
  ok(s->write(t.f2, 0, "not copied", false));
  CHECK(test::keys_under(conn(), first.prefix()) == staged);
  std::string warning;
  CHECK(copy_keys_cow(*lease, keys, first, cow, nullptr, &warning).code() == EAGAIN);
  CHECK(cow.end(*lease).code() == EAGAIN);
  CHECK(_exists(conn(), keys.cow()) == 1);  // its copier is gone: the next snapshot finds it

  Keys second(make_temp_prefix(prefix, TempKind::Copy));
  CowSnapshot next = ok(CowSnapshot::begin(*lease, keys, second, "second"));
  CHECK(next.dead_staging() == first.prefix());
  ok(remove_staging(*lease, Keys(next.dead_staging())));
  CHECK(test::keys_under(conn(), first.prefix()).empty());
  CHECK(_exists(conn(), first.touched()) == 0);
  ok(next.end(*lease));
  ok(remove_staging(*lease, second));
  CHECK(test::keys_under(conn(), second.prefix()).empty());
}

TEST_CASE_FIXTURE(RedisFixture, "cow: a freeze and fsck --repair wait for a live snapshot, and a snapshot for a freeze") {
  auto s = ok(Store::open(pool, prefix, {}));
  auto lease = ok(pool.acquire());
  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, "test"));
  CHECK(Freeze::acquire(*lease, keys, std::chrono::milliseconds(200)).code() == EBUSY);
  // fsck --repair changes keys directly, not through the scripts: it waits
  // too (a check alone goes on).
  s.reset();
  auto repair = fsck(pool, prefix, true, nullptr);
  CHECK(repair.code() == EBUSY);
  CHECK(repair.error().message.find("snapshot") != std::string::npos);
  CHECK(fsck(pool, prefix, false, nullptr).ok());
  // So does another snapshot, for as long as this one lives.
  std::atomic<bool> second_began{false};
  std::thread other([&] {
    auto c = test::connect();
    Keys tk2(make_temp_prefix(prefix, TempKind::Dump));
    auto next = CowSnapshot::begin(*c, keys, tk2, "second");
    REQUIRE_MESSAGE(next.ok(), next.error().message);
    second_began = true;
    CHECK(next->dead_staging().empty());
    ok(next->end(*c));
    ok(remove_staging(*c, tk2));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(second_began.load());
  ok(cow.end(*lease));
  other.join();
  CHECK(second_began.load());
  ok(remove_staging(*lease, tk));

  Freeze f = ok(Freeze::acquire(*lease, keys));
  std::atomic<bool> began{false};
  std::thread snap([&] {
    auto c = test::connect();
    auto next = CowSnapshot::begin(*c, keys, tk, "after the freeze");
    REQUIRE_MESSAGE(next.ok(), next.error().message);
    began = true;
    ok(next->end(*c));
    ok(remove_staging(*c, tk));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(began.load());
  ok(f.release(*lease));
  snap.join();
  CHECK(began.load());
}

TEST_CASE_FIXTURE(RedisFixture, "cow: list shows a copy being taken as copying N%, until it ends or lapses") {
  auto s = ok(Store::open(pool, prefix, {}));
  ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto lease = ok(pool.acquire());
  std::string dst = extra_prefix();
  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  auto find = [&](const std::string& p) -> std::optional<FsInfo> {
    for (const FsInfo& fs : ok(list_filesystems(pool, false))) {
      if (fs.prefix == p) {
        return fs;
      }
    }
    return std::nullopt;
  };
  {
    CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, dst));
    ok(conn().command({"HSET", keys.cow(), "done", "1", "total", "4"}));
    auto shown = find(dst);
    REQUIRE(shown.has_value());
    CHECK(shown->kind == "copying");
    CHECK(shown->progress == 25);
    CHECK(shown->origin == prefix);
    CHECK(list_as_table({*shown}).find("copying 25%") != std::string::npos);
    CHECK(list_as_json({*shown}).find("\"progress\": 25") != std::string::npos);
    CHECK(find(prefix)->progress == -1);
    // hostile counts: shown within 0-99%, no overflow
    ok(conn().command({"HSET", keys.cow(), "done", "9223372036854775807", "total", "3"}));
    CHECK(find(dst)->progress == 99);
    ok(conn().command({"HSET", keys.cow(), "done", "-5"}));
    CHECK(find(dst)->progress == 0);
    // a deadline further ahead than a copier sets it (int64's largest ms):
    // no copier wrote it, so no copy is being taken (no overflow either)
    const std::string deadline(ok(conn().command({"HGET", keys.cow(), "deadline"})).view().str());
    ok(conn().command({"HSET", keys.cow(), "deadline", "9223372036854775807"}));
    CHECK_FALSE(find(dst).has_value());
    ok(conn().command({"HSET", keys.cow(), "deadline", deadline}));
    CHECK(find(dst).has_value());
    ok(cow.end(*lease));
    CHECK_FALSE(find(dst).has_value());
    ok(remove_staging(*lease, tk));
  }
  {
    CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, dst));
    CHECK(find(dst).has_value());
    ok(conn().command({"HSET", keys.cow(), "deadline", "1"}));  // its copier died
    CHECK_FALSE(find(dst).has_value());
    // a dump's snapshot names no destination
    CowSnapshot next = ok(CowSnapshot::begin(*lease, keys, tk, ""));
    CHECK(ok(list_filesystems(pool, false)).size() >= 1);
    for (const FsInfo& fs : ok(list_filesystems(pool, false))) {
      CHECK(fs.kind != "copying");
    }
    ok(next.end(*lease));
    ok(remove_staging(*lease, tk));
  }
}

TEST_CASE_FIXTURE(RedisFixture, "cow: a damaged or foreign snapshot record never sends data elsewhere, and fsck repairs it") {
  auto s = ok(Store::open(pool, prefix, {}));
  Ino f = ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user)).ino;
  std::string other = extra_prefix();  // someone else's filesystem
  ok(conn().command({"HSET", Keys(other).sb(), "format", "redisfs"}));
  // alive for 30 s more (a copier sets its deadline 10 s ahead; no
  // further than k_lease_max_ms counts as alive)
  const std::int64_t now_ms = ok(server_time_ns(conn(), "")) / 1000000;
  const std::string alive = std::to_string(now_ms + 30000);

  SUBCASE("not a hash: no snapshot is alive, changes go on") {
    ok(conn().command({"SET", keys.cow(), "junk"}));
    ok(s->write(f, 0, "still writable", false));
  }
  SUBCASE("alive, naming another filesystem: changes fail, nothing is copied there") {
    ok(conn().command({"HSET", keys.cow(), "staging", other, "deadline", alive, "ttl", "1000", "token", "t"}));
    CHECK_FALSE(s->write(f, 0, "refused", false).ok());
    CHECK(test::keys_under(conn(), other).size() == 1);
  }
  SUBCASE("naming another filesystem, alive further ahead than a copier sets it (2100): dead, changes go on") {
    ok(conn().command(
        {"HSET", keys.cow(), "staging", other, "deadline", "4102444800000", "ttl", "1000", "token", "t"}));
    ok(s->write(f, 0, "still writable", false));
    CHECK(test::keys_under(conn(), other).size() == 1);
  }
  SUBCASE("naming another filesystem, alive to the end of time (int64's largest ms): judged without overflow") {
    ok(conn().command(
        {"HSET", keys.cow(), "staging", other, "deadline", "9223372036854775807", "ttl", "1000", "token", "t"}));
    ok(s->write(f, 0, "still writable", false));
  }
  bool damaged = true;
  SUBCASE("a non-numeric deadline or TTL: not alive (a dead record, which the next snapshot replaces)") {
    ok(conn().command({"HSET", keys.cow(), "staging", prefix + "~copy~0123456789abcdef", "deadline", "soon",
                       "ttl", "x"}));
    ok(s->write(f, 0, "still writable", false));
    damaged = false;
    ok(conn().command({"DEL", keys.cow()}));
  }
  s.reset();
  FsckReport report = ok(fsck(pool, prefix, false, nullptr));
  bool found = false;
  for (const auto& p : report.problems) {
    found = found || (p.kind == fsck_kind::k_bad_cow && p.key == keys.cow());
  }
  CHECK(found == damaged);
  ok(fsck(pool, prefix, true, nullptr));
  CHECK(_exists(conn(), keys.cow()) == 0);
  s = ok(Store::open(pool, prefix, {}));
  ok(s->write(f, 0, "writable again", false));

  // A dead record naming another filesystem: the next snapshot replaces
  // it and leaves that filesystem alone.
  ok(conn().command({"HSET", keys.cow(), "staging", other, "deadline", "1", "ttl", "1000", "token", "t"}));
  auto lease = ok(pool.acquire());
  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, ""));
  CHECK(cow.dead_staging().empty());
  CHECK(test::keys_under(conn(), other).size() == 1);
  ok(cow.end(*lease));
  ok(remove_staging(*lease, tk));
}

TEST_CASE_FIXTURE(RedisFixture,
                  "cow: a record of this filesystem alive further ahead than a copier sets it holds nothing up") {
  // The bound in prelude.lua is snapshot.hpp's.
  CHECK(std::string(lua::script_source(lua::write).text).find("k_lease_max = " + std::to_string(k_lease_max_ms)) !=
        std::string::npos);
  auto s = ok(Store::open(pool, prefix, {}));
  Ino f = ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user)).ino;
  const std::int64_t now_ms = ok(server_time_ns(conn(), "")) / 1000000;
  Keys stale(make_temp_prefix(prefix, TempKind::Copy));
  auto plant = [&](std::int64_t deadline) {
    ok(conn().command({"HSET", keys.cow(), "staging", stale.prefix(), "deadline", std::to_string(deadline), "ttl",
                       "60000", "token", "t", "dst", "", "done", "0", "total", "0"}));
  };
  auto lease = ok(pool.acquire());
  SUBCASE("30 s ahead, as a copier could have set it: alive, changes copy first and a repair waits") {
    plant(now_ms + 30000);
    ok(s->write(f, 0, "copied first", false));
    CHECK_FALSE(test::keys_under(conn(), stale.prefix()).empty());
    s.reset();
    CHECK(fsck(pool, prefix, true, nullptr).code() == EBUSY);
    ok(conn().command({"DEL", keys.cow()}));
  }
  SUBCASE("years ahead: no copier wrote it, so it is dead for every change, repair and snapshot") {
    plant(4102444800000LL);  // 2100
    ok(s->write(f, 0, "not copied", false));
    CHECK(test::keys_under(conn(), stale.prefix()).empty());
    s.reset();
    ok(fsck(pool, prefix, true, nullptr));
    // the next snapshot does not wait for it: it takes its place, and names
    // its staging prefix for removal as a dead copier's
    Keys tk(make_temp_prefix(prefix, TempKind::Dump));
    CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, ""));
    CHECK(cow.dead_staging() == stale.prefix());
    ok(cow.end(*lease));
    ok(remove_staging(*lease, tk));
  }
  ok(remove_staging(*lease, stale));
}

TEST_CASE("cow: staging prefixes of a filesystem, and only those") {
  CHECK(is_cow_staging("SKX", "SKX~copy~0123456789abcdef"));
  CHECK(is_cow_staging("SKX", "SKX~dump~0123456789abcdef"));
  CHECK(is_cow_staging("{fs}", make_temp_prefix("{fs}", TempKind::Copy)));
  std::string long_name = "{tag}" + std::string(190, 'x');
  CHECK(is_cow_staging(long_name, make_temp_prefix(long_name, TempKind::Dump)));
  CHECK_FALSE(is_cow_staging("SKX", "SKX"));
  CHECK_FALSE(is_cow_staging("SKX", "OTHER~copy~0123456789abcdef"));
  CHECK_FALSE(is_cow_staging("SKX", "SKX~restore~0123456789abcdef"));
  CHECK_FALSE(is_cow_staging("SKX", "SKX~copy~0123456789ABCDEF"));
  CHECK_FALSE(is_cow_staging("SKX", "SKX~copy~0123"));
  CHECK_FALSE(is_cow_staging("SKX", "SKX2~copy~0123456789abcdef"));
  CHECK_FALSE(is_cow_staging("SKX", "SKX~copy~0123456789abcdef:x"));
}

// A batch of the copier's, sent again after its reply was lost (a server
// restart: the runner sends cow_copy.lua again, as a read, since it is
// marked `--! resend`), answers as the first run did and lists nothing
// twice in the staging index, which the install moves by.
TEST_CASE_FIXTURE(RedisFixture, "cow: a copier's batch run twice answers alike and lists its keys once") {
  CHECK(lua::script_source(lua::cow_copy).resend);
  CHECK(lua::script_source(lua::cow_refresh).resend);
  CHECK(lua::script_source(lua::cow_begin).resend);
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Ino f = ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user)).ino;
  ok(s->write(f, 0, "data", false));
  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  auto lease = ok(pool.acquire());
  CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, "a test"));
  const std::string index = staging_index_key(tk);
  const std::vector<std::string> batch_keys{keys.cow(),       tk.touched(), index,         keys.inode(f),
                                            keys.block(f, 0), tk.inode(f),  tk.block(f, 0)};
  auto run = [&](const std::string& id) {
    const std::vector<std::string> args{cow.token(), std::to_string(k_temp_ttl_ms), "-b", "1", id};
    Reply r = ok(lease->eval(lua::cow_copy, batch_keys, args));
    REQUIRE(r.view().size() == 2);
    return std::pair{r.view()[0].integer(), r.view()[1].integer()};
  };
  CHECK(run("7") == std::pair<long long, long long>{0, 4});
  CHECK(run("7") == std::pair<long long, long long>{0, 4});  // the same batch again
  CHECK(ok(lease->command({"LLEN", index})).view().integer() == 2);
  CHECK(ok(lease->command({"PTTL", index})).view().integer() > 0);
  run("8");  // another batch (naming the same keys only here) lists them
  CHECK(ok(lease->command({"LLEN", index})).view().integer() == 4);
  ok(cow.end(*lease));
  ok(remove_staging(*lease, tk));
}

// A script that raises keeps what it wrote before (Redis has no rollback):
// cow_begin.lua and cow_copy.lua look at the staging keys they write last
// (the index, TOUCHED) before their first write, so that one of the wrong
// type (written by someone else under the staging prefix) fails them with
// nothing done: no COW record holding the prefix, no lineage, no copy.
TEST_CASE_FIXTURE(RedisFixture,
                  "cow: a staging index or TOUCHED of the wrong type fails begin and copy before they write") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Ino f = ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user)).ino;
  ok(s->write(f, 0, "data", false));
  ok(s->end_session());
  Connection& c = conn();
  ok(c.command({"SADD", keys.changed(), "since:0000000000000001"}));
  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  const std::string index = staging_index_key(tk);
  SUBCASE("cow_begin") {
    ok(c.command({"SET", index, "someone else's"}));
    const std::vector<std::string> k{keys.freeze(),  keys.cow(),   keys.sb(), tk.sb(),       tk.touched(),
                                     keys.changed(), tk.changed(), index,     keys.mounts(), keys.installing()};
    const std::vector<std::string> a{
        tk.prefix(), "00112233445566778899aabbccddeeff", "10000", "600000", "", "0123456789abcdef", "0",
        "16",        std::to_string(k_format_version)};
    Result<Reply> r = c.eval(lua::cow_begin, k, a);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("is not a list") != std::string::npos);
    CHECK(ok(c.command({"EXISTS", keys.cow(), tk.sb(), tk.changed()})).view().integer() == 0);
    CHECK(ok(c.command({"HEXISTS", keys.sb(), "lineage"})).view().integer() == 0);
    CHECK(ok(c.command({"SMEMBERS", keys.changed()})).view().size() == 1);  // (not taken over)
  }
  SUBCASE("cow_copy") {
    auto lease = ok(pool.acquire());
    CowSnapshot cow = ok(CowSnapshot::begin(*lease, keys, tk, "a test"));
    for (const auto& [key, type] : {std::pair{tk.touched(), "a set"}, std::pair{index, "a list"}}) {
      CAPTURE(key);
      ok(c.command({"DEL", tk.touched(), index}));
      ok(c.command({"SET", key, "someone else's"}));
      const std::vector<std::string> batch{keys.cow(),       tk.touched(), index,         keys.inode(f),
                                           keys.block(f, 0), tk.inode(f),  tk.block(f, 0)};
      const std::vector<std::string> args{cow.token(), std::to_string(k_temp_ttl_ms), "-b", "1", "9"};
      Result<Reply> r = lease->eval(lua::cow_copy, batch, args);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().message.find(std::string("is not ") + type) != std::string::npos);
      CHECK(ok(c.command({"EXISTS", tk.inode(f), tk.block(f, 0)})).view().integer() == 0);
    }
    ok(c.command({"DEL", tk.touched(), index}));
    ok(cow.end(*lease));
    ok(remove_staging(*lease, tk));
  }
}

// cow_begin.lua sent again after its reply was lost (it is marked
// `--! resend`): the second run finds its own instant (its staging prefix
// and token) and answers what the first answered, changing nothing; once
// that snapshot lapsed it answers LAPSED, never a new instant over the
// copies its writers made for the first.
TEST_CASE_FIXTURE(RedisFixture, "cow: cow_begin run twice answers its instant again, LAPSED once dead") {
  auto s = ok(Store::open(pool, prefix, {}));
  ok(s->end_session());
  Connection& c = conn();
  ok(c.command({"SADD", keys.changed(), "since:0000000000000001", "INODE:1"}));
  Keys tk(make_temp_prefix(prefix, TempKind::Copy));
  const std::vector<std::string> k{keys.freeze(), keys.cow(),       keys.sb(),    tk.sb(),
                                   tk.touched(),  keys.changed(),   tk.changed(), staging_index_key(tk),
                                   keys.mounts(), keys.installing()};
  const std::vector<std::string> a{
      tk.prefix(), "00112233445566778899aabbccddeeff", "10000", "600000", "", "0123456789abcdef", "0",
      "16",        std::to_string(k_format_version)};
  auto run = [&] {
    Reply r = ok(c.eval(lua::cow_begin, k, a));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < r.view().size(); ++i) {
      out.emplace_back(r.view()[i].is_string() ? std::string(r.view()[i].str())
                                               : std::to_string(r.view()[i].integer()));
    }
    return out;
  };
  std::vector<std::string> first = run();
  REQUIRE(first.size() == 4);
  CHECK(first[0] == "OK");
  CHECK(first[3] == "1");  // the source's record went to the staging prefix
  const std::string lineage(ok(c.command({"HGET", keys.sb(), "lineage"})).view().str());
  CHECK(run() == first);  // the same begin again
  CHECK(ok(c.command({"HGET", keys.sb(), "lineage"})).view().str() == lineage);
  CHECK(ok(c.command({"SMEMBERS", keys.changed()})).view().size() == 1);  // (the fresh record, untouched)
  CHECK(ok(c.command({"SCARD", tk.changed()})).view().integer() == 2);    // (the staged one, not replaced)
  CHECK(ok(c.command({"LLEN", staging_index_key(tk)})).view().integer() == 1);
  // another begin (another token) waits for it
  std::vector<std::string> b = a;
  b[1] = "ffeeddccbbaa99887766554433221100";
  CHECK(ok(c.eval(lua::cow_begin, k, b)).view()[0].str() == "BUSY");
  // dead: the same begin gets LAPSED and changes nothing
  ok(c.command({"HSET", keys.cow(), "deadline", "1"}));
  CHECK(run() == std::vector<std::string>{"LAPSED"});
  CHECK(ok(c.command({"HGET", keys.cow(), "deadline"})).view().str() == "1");
  auto lease = ok(pool.acquire());
  ok(remove_staging(*lease, tk));
  ok(c.command({"DEL", keys.cow()}));
  // a move into the source (install.hpp) that no freeze guards any more:
  // its mover is gone, half of it is in place; while a freeze guards it,
  // wait for the mover
  ok(c.command({"SET", keys.installing(), "delta x -"}));
  CHECK(run() == std::vector<std::string>{"INSTALLING"});
  ok(c.command({"SET", keys.freeze(), "mover", "PX", "10000"}));
  CHECK(run() == std::vector<std::string>{"BUSY", "frozen"});
  ok(c.command({"DEL", keys.freeze(), keys.installing()}));
  CHECK(ok(c.command({"EXISTS", keys.cow()})).view().integer() == 0);  // (neither began one)
}

// A batch of an install's move (move_keys.lua), sent again after its reply
// was lost (it is marked `--! resend`): the second run moves nothing
// twice, and answers 2 for the keys the first run moved (install.cpp
// counts them as moved), -1 for a key that is nowhere.
TEST_CASE_FIXTURE(RedisFixture, "install: a batch of the move run twice moves nothing twice and answers 2") {
  CHECK(lua::script_source(lua::move_keys).resend);
  Connection& c = conn();
  const Keys from(prefix + "~restore~00000000000000aa");
  ok(c.command({"SET", from.absolute("BLK:5:0"), "a"}));
  ok(c.command({"HSET", from.inode(5), "type", "file"}));
  const std::vector<std::string> batch{from.absolute("BLK:5:0"), from.inode(5), from.inode(6),
                                       keys.absolute("BLK:5:0"), keys.inode(5), keys.inode(6)};
  auto run = [&] {
    const std::vector<std::string> args{"1", "0"};
    Reply r = ok(c.eval(lua::move_keys, batch, args));
    std::vector<long long> out;
    for (std::size_t i = 0; i < r.view().size(); ++i) {
      out.push_back(r.view()[i].integer());
    }
    return out;
  };
  CHECK(run() == std::vector<long long>{1, 1, -1});
  CHECK(run() == std::vector<long long>{2, 2, -1});  // the same batch again
  CHECK(ok(c.command({"GET", keys.absolute("BLK:5:0")})).view().str() == "a");
  CHECK(ok(c.command({"EXISTS", from.absolute("BLK:5:0"), from.inode(5)})).view().integer() == 0);
  // a destination that is there, with its source: left alone (0)
  ok(c.command({"SET", from.absolute("BLK:5:0"), "b"}));
  CHECK(run() == std::vector<long long>{0, 2, -1});
  CHECK(ok(c.command({"GET", keys.absolute("BLK:5:0")})).view().str() == "a");
}

// freeze_acquire.lua sent again after its reply was lost (it is marked
// `--! resend`): its second run finds the freeze its first run set, by the
// token, and answers 1 again; another freezer still waits (0).
TEST_CASE_FIXTURE(RedisFixture, "freeze: freeze_acquire run twice with one token answers 1 both times") {
  CHECK(lua::script_source(lua::freeze_acquire).resend);
  CHECK_FALSE(lua::script_source(lua::freeze_release).resend);
  Connection& c = conn();
  const std::vector<std::string> k{keys.freeze(), keys.cow()};
  const std::vector<std::string> mine{"0123456789abcdef", "10000"};
  const std::vector<std::string> other{"fedcba9876543210", "10000"};
  CHECK(ok(c.eval(lua::freeze_acquire, k, mine)).view().integer() == 1);
  CHECK(ok(c.eval(lua::freeze_acquire, k, mine)).view().integer() == 1);  // the same run again
  CHECK(ok(c.eval(lua::freeze_acquire, k, other)).view().integer() == 0);
  CHECK(ok(c.command({"GET", keys.freeze()})).view().str() == "0123456789abcdef");
}

// Four more scripts sent again after a lost reply (marked `--! resend`):
// an incremental dump's comparison, a writeback mount's release of its
// hold, a sweep's drop of dead mounts' registrations, and a frozen
// snapshot's restart of change tracking. Run twice, each leaves what one
// run leaves, and the answer its caller reads is the same.
TEST_CASE_FIXTURE(RedisFixture,
                  "resend: writeback_release, prune_mounts, changes_restart, inc_compare run twice as once") {
  CHECK(lua::script_source(lua::writeback_release).resend);
  CHECK(lua::script_source(lua::prune_mounts).resend);
  CHECK(lua::script_source(lua::changes_restart).resend);
  CHECK(lua::script_source(lua::inc_compare).resend);
  Connection& c = conn();

  // an incremental dump's comparison: a read of two snapshots, its
  // scratch key gone after each run
  const Keys a(prefix + "-new");
  const Keys b(prefix + "-base");
  ok(c.command({"HSET", a.inode(5), "size", "3", "mtime", "2"}));
  ok(c.command({"HSET", b.inode(5), "size", "3", "mtime", "1"}));
  ok(c.command({"SET", a.block(5, 0), "abc"}));
  ok(c.command({"SET", b.block(5, 0), "abd"}));
  const std::string scratch = a.absolute("scratch");
  const std::vector<std::string> ik{a.inode(5), a.block(5, 0), b.inode(5), b.block(5, 0), scratch, scratch};
  const std::vector<std::string> ia{"", "0", "i5", "b5:0"};
  for (int run = 0; run < 2; ++run) {
    CAPTURE(run);
    Reply r = ok(c.eval(lua::inc_compare, ik, ia));
    REQUIRE(r.view().size() == 3);
    CHECK(r.view()[0][1].integer() == 1);  // the inode changed
    REQUIRE(r.view()[1].size() == 3);
    CHECK(r.view()[1][1].integer() == 1);  // so did its block, which comes along
    CHECK(r.view()[1][2].str() == "abc");
    CHECK(r.view()[2].str().empty());
    CHECK(ok(c.command({"EXISTS", scratch})).view().integer() == 0);
  }
  ok(c.command({"DEL", a.inode(5), b.inode(5), a.block(5, 0), b.block(5, 0)}));

  // the hold: removed once; a second run removes no other mount's
  // (Store::end_session does not read the answer)
  const std::vector<std::string> wk{keys.writeback()};
  ok(c.command({"SET", keys.writeback(), "mine", "PX", "30000"}));
  CHECK(ok(c.eval(lua::writeback_release, wk, std::vector<std::string>{"mine"})).view().integer() == 1);
  CHECK(ok(c.eval(lua::writeback_release, wk, std::vector<std::string>{"mine"})).view().integer() == 0);
  CHECK(ok(c.command({"EXISTS", keys.writeback()})).view().integer() == 0);
  ok(c.command({"SET", keys.writeback(), "other", "PX", "30000"}));
  CHECK(ok(c.eval(lua::writeback_release, wk, std::vector<std::string>{"mine"})).view().integer() == 0);
  CHECK(ok(c.command({"GET", keys.writeback()})).view().str() == "other");

  // the register: the dead mount's field goes, the live one's stays, and
  // both runs count the dead mount (the open counts' sweep follows it)
  ok(c.command({"HSET", keys.mounts(), "live", "host 1 /a", "dead", "host 2 /b"}));
  ok(c.command({"SET", keys.mount("live"), "v2 host:1 /a", "PX", "30000"}));
  const std::vector<std::string> pk{keys.mounts(), keys.mount("live"), keys.mount("dead")};
  const std::vector<std::string> ids{"live", "dead"};
  CHECK(ok(c.eval(lua::prune_mounts, pk, ids)).view().integer() == 1);
  CHECK(ok(c.eval(lua::prune_mounts, pk, ids)).view().integer() == 1);  // the same run again
  Reply left = ok(c.command({"HKEYS", keys.mounts()}));
  REQUIRE(left.view().size() == 1);
  CHECK(left.view()[0].str() == "live");

  // change tracking starts again from the new snapshot, once
  ok(c.command({"DEL", keys.mounts(), keys.writeback()}));
  auto s = ok(Store::open(pool, prefix, {}));
  ok(s->end_session());
  ok(c.command({"SADD", keys.changed(), "since:old", "INODE:5"}));
  const std::vector<std::string> ck{keys.sb(), keys.changed(), keys.mounts()};
  const std::vector<std::string> ca{"0011223344556677", std::to_string(k_format_version)};
  for (int run = 0; run < 2; ++run) {
    CAPTURE(run);
    CHECK(ok(c.eval(lua::changes_restart, ck, ca)).view().integer() == 1);
    Reply members = ok(c.command({"SMEMBERS", keys.changed()}));
    REQUIRE(members.view().size() == 1);
    CHECK(members.view()[0].str() == "since:0011223344556677");
  }
}

// RoomGuard (room.hpp): what it reads of the server, and an ACL that
// denies INFO (no guard rather than a failed copy).
TEST_CASE_FIXTURE(RedisFixture, "the room guard: maxmemory bounds what a tool stages, and without INFO there is no guard") {
  Connection& c = conn();
  auto mem = server_memory(c);
  REQUIRE(mem.ok());
  CHECK(mem->used > 0);
  const std::uint64_t limit = mem->used + (std::uint64_t{8} << 20);
  REQUIRE(c.command({"CONFIG", "SET", "maxmemory", std::to_string(limit)}).ok());
  RoomGuard room("the test");
  CHECK(room.due(0));  // the first look is due at once
  CHECK(room.check(c).ok());
  CHECK_FALSE(room.due(64 << 10));  // then after a quarter of the room above the margin
  CHECK(room.due(2 << 20));
  // Filled past the margin (before maxmemory refuses a write): check()
  // stops the tool.
  Status stopped;
  for (int i = 0; i < 64 && stopped.ok(); ++i) {
    REQUIRE(c.command({"SET", keys.absolute("filler:" + std::to_string(i)), std::string(256 << 10, 'x')}).ok());
    stopped = room.check(c);
  }
  REQUIRE_FALSE(stopped.ok());
  CHECK(stopped.code() == ENOSPC);
  CHECK(stopped.error().message.starts_with("the test stopped: the server is nearly out of memory (used "));

  std::string user = "u" + prefix;
  REQUIRE(c.command({"ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-info"}).ok());
  RedisUrl url = test::test_url();
  url.user = user;
  url.password = "pw";
  auto denied = Connection::open(url, "redisfs:test-room");
  REQUIRE(denied.ok());
  CHECK((*denied)->command({"INFO", "memory"}).error().code == EACCES);
  auto unknown = server_memory(**denied);
  REQUIRE(unknown.ok());
  CHECK(unknown->limit() == 0);
  CHECK(room.check(**denied).ok());
  (void)c.command({"ACL", "DELUSER", user});
  (void)c.command({"CONFIG", "SET", "maxmemory", "0"});
}
