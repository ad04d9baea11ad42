// core::Store against a real redis-server: every operation, its errors, and
// the multi-host cases (two Stores on one prefix stand for two mounts).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "fixture.hpp"
#include "redis/lua_scripts.hpp"
#include "snap/snapshot.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

std::unique_ptr<Store> _open(Pool& pool, const std::string& prefix, StoreOptions opts = {}) {
  auto s = Store::open(pool, prefix, std::move(opts));
  REQUIRE_MESSAGE(s.ok(), s.error().message);
  return std::move(s).value();
}

// A writeback mount's, with the caches it keeps (a minute here).
StoreOptions _writeback_options() {
  StoreOptions opts;
  opts.writeback = true;
  opts.attr_cache_seconds = 60;
  opts.names_cache_seconds = 60;
  return opts;
}

template <class T>
T _ok(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return std::move(r).value();
}

void _ok(Status s) { REQUIRE_MESSAGE(s.ok(), s.error().message); }

std::string _read_all(Store& s, Ino ino, std::size_t max = 1 << 24) {
  std::string out;
  _ok(s.read(ino, 0, max, out));
  return out;
}

std::vector<std::string> _names(Store& s, Ino dir) {
  std::vector<std::string> names;
  std::uint64_t cursor = 0;
  do {
    auto page = _ok(s.readdir(dir, cursor, 50, false));
    for (auto& e : page.entries) {
      names.push_back(e.name);
    }
    cursor = page.next_cursor;
  } while (cursor != 0);
  std::sort(names.begin(), names.end());
  return names;
}

// What `mine` reports of `dir` (its age in *age) is what a fresh Store
// reads from the server, field by field; returns the server's.
Attr _same_as_server(Store& mine_store, Pool& pool, const std::string& prefix, Ino dir, double* age = nullptr) {
  Attr mine = _ok(mine_store.getattr(dir, age));
  auto fresh = _open(pool, prefix);
  Attr server = _ok(fresh->getattr(dir));
  CHECK(mine.mode == server.mode);
  CHECK(mine.uid == server.uid);
  CHECK(mine.gid == server.gid);
  CHECK(mine.size == server.size);
  CHECK(mine.nlink == server.nlink);
  CHECK(mine.rdev == server.rdev);
  CHECK(mine.bytes == server.bytes);
  CHECK(mine.atime_ns == server.atime_ns);
  CHECK(mine.mtime_ns == server.mtime_ns);
  CHECK(mine.ctime_ns == server.ctime_ns);
  CHECK(mine.parent == server.parent);
  CHECK(mine.gen == server.gen);
  return server;
}

}  // namespace

TEST_SUITE_BEGIN("core::Store");

TEST_CASE_FIXTURE(RedisFixture, "open creates the filesystem once, with a root directory") {
  auto s = _open(pool, prefix);
  auto root = _ok(s->getattr(k_root_ino));
  CHECK(root.is_dir());
  CHECK(root.nlink == 2);
  CHECK((root.mode & 07777) == 0755);
  CHECK(s->superblock().version == k_format_version);
  CHECK(s->block_size() == k_default_block_size);
  auto again = _open(pool, prefix);
  CHECK(again->superblock().created_ns == s->superblock().created_ns);
}

TEST_CASE_FIXTURE(RedisFixture, "open refuses what is not a usable filesystem") {
  SUBCASE("keys but no superblock") {
    _ok(conn().command({"HSET", keys.inode(7), "type", "file"}));
    auto s = Store::open(pool, prefix, {});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find("no superblock") != std::string::npos);
  }
  SUBCASE("unknown format version") {
    _open(pool, prefix);
    _ok(conn().command({"HSET", keys.sb(), "version", "99"}));
    auto s = Store::open(pool, prefix, {});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find("version '99'") != std::string::npos);
  }
  SUBCASE("read-only open of an empty prefix") {
    StoreOptions o;
    o.read_only = true;
    auto s = Store::open(pool, prefix, o);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == ENOENT);
    CHECK(keys_under(prefix).empty());
  }
  SUBCASE("a read-only snapshot opened read-write") {
    _open(pool, prefix);
    _ok(conn().command({"HSET", keys.sb(), "read_only", "1", "origin", "SKX"}));
    auto s = Store::open(pool, prefix, {});
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == EROFS);
    StoreOptions ro;
    ro.read_only = true;
    CHECK(Store::open(pool, prefix, ro).ok());
    StoreOptions forced;
    forced.allow_snapshot_rw = true;
    CHECK(Store::open(pool, prefix, forced).ok());
  }
  SUBCASE("a bad prefix") {
    CHECK(Store::open(pool, "a:b", {}).code() == EINVAL);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "create, lookup, and the errors of names") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->mknod(k_root_ino, "a file", S_IFREG | 0640, 0, k_user));
  CHECK(f.is_reg());
  CHECK(f.uid == 1000);
  CHECK(f.gid == 1000);
  CHECK((f.mode & 07777) == 0640);
  CHECK(f.nlink == 1);
  CHECK(_ok(s->lookup(k_root_ino, "a file")).ino == f.ino);
  CHECK(s->lookup(k_root_ino, "missing").code() == ENOENT);
  CHECK(s->mknod(k_root_ino, "a file", S_IFREG | 0644, 0, k_user).code() == EEXIST);
  CHECK(s->mkdir(k_root_ino, "a file", 0755, k_user).code() == EEXIST);
  CHECK(s->mknod(k_root_ino, std::string(256, 'x'), S_IFREG | 0644, 0, k_user).code() == ENAMETOOLONG);
  CHECK(s->mknod(k_root_ino, std::string(255, 'x'), S_IFREG | 0644, 0, k_user).ok());
  std::string binary = "\xff\xfe name\nwith newline";
  CHECK(s->mknod(k_root_ino, binary, S_IFREG | 0644, 0, k_user).ok());
  CHECK(_ok(s->lookup(k_root_ino, binary)).is_reg());
  CHECK(s->mknod(f.ino, "x", S_IFREG | 0644, 0, k_user).code() == ENOTDIR);
  auto fifo = _ok(s->mknod(k_root_ino, "fifo", S_IFIFO | 0600, 0, k_user));
  CHECK(S_ISFIFO(fifo.mode));
  auto dev = _ok(s->mknod(k_root_ino, "dev", S_IFCHR | 0600, makedev(1, 3), k_user));
  CHECK(S_ISCHR(dev.mode));
  CHECK(dev.rdev == makedev(1, 3));
  auto root = _ok(s->getattr(k_root_ino));
  CHECK(root.mtime_ns >= f.mtime_ns);
}

// A directory's change count ('gen') is counted by the scripts as the
// decoder reads it (inode.cpp, k_max_gen): any decimal up to 2^53 - 1, the
// last wrapping to 1; a filesystem fsck finds clean never refuses a change
// (a 16-digit count used to: the scripts took at most 15).
TEST_CASE_FIXTURE(RedisFixture, "a directory's change count: every value a mount reads is counted, the last wraps") {
  auto s = _open(pool, prefix);
  auto dir = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto gen = [&](Ino ino) { return std::string(_ok(conn().command({"HGET", keys.inode(ino), "gen"})).view().str()); };
  auto set_gen = [&](Ino ino, const std::string& g) { _ok(conn().command({"HSET", keys.inode(ino), "gen", g})); };
  int n = 0;
  for (const auto& [from, to] :
       std::initializer_list<std::pair<std::string, std::string>>{{"999999999999999", "1000000000000000"},
                                                                  {"1000000000000000", "1000000000000001"},
                                                                  {"9007199254740990", "9007199254740991"},
                                                                  {"9007199254740991", "1"},
                                                                  {"00009007199254740991", "1"}}) {
    INFO(from);
    const std::string name = "f" + std::to_string(++n);
    set_gen(dir.ino, from);
    CHECK(_ok(s->getattr(dir.ino)).gen <= k_max_gen);  // (read by the decoder)
    _ok(s->create(dir.ino, name, S_IFREG | 0644, k_user));
    CHECK(gen(dir.ino) == to);
    set_gen(dir.ino, from);
    _ok(s->mkdir(dir.ino, name + "d", 0755, k_user));
    CHECK(gen(dir.ino) == to);
    set_gen(dir.ino, from);
    _ok(s->rename(dir.ino, name, dir.ino, name + "r", 0));
    CHECK(gen(dir.ino) == to);
    set_gen(dir.ino, from);
    set_gen(k_root_ino, from);
    _ok(s->rename(dir.ino, name + "r", k_root_ino, name, 0));
    CHECK(gen(dir.ino) == to);
    CHECK(gen(k_root_ino) == to);
    set_gen(k_root_ino, from);
    _ok(s->unlink(k_root_ino, name));
    CHECK(gen(k_root_ino) == to);
  }
  // past what the decoder reads: refused by both, before any write
  for (const std::string bad : {"9007199254740992", "-1", "1e3", "99999999999999999999"}) {
    INFO(bad);
    set_gen(dir.ino, bad);
    CHECK(s->getattr(dir.ino).code() == EIO);
    CHECK(s->create(dir.ino, "refused", S_IFREG | 0644, k_user).code() == EIO);
    CHECK(s->rename(dir.ino, "f1d", k_root_ino, "moved", 0).code() == EIO);
    CHECK(gen(dir.ino) == bad);
    CHECK(s->lookup(dir.ino, "refused").code() == ENOENT);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "getattr with an age: what our own changes read of a directory") {
  StoreOptions opts;
  opts.attr_cache_seconds = 60;
  auto s = _open(pool, prefix, opts);
  auto other = _open(pool, prefix);  // another mount: no cache
  auto dir = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto same = [&](const Attr& a, const Attr& b) {
    CHECK(a.ino == b.ino);
    CHECK(a.mode == b.mode);
    CHECK(a.nlink == b.nlink);
    CHECK(a.size == b.size);
    CHECK(a.mtime_ns == b.mtime_ns);
    CHECK(a.ctime_ns == b.ctime_ns);
  };
  double age = -1;
  // create, mkdir, unlink, rmdir leave the parent's new attributes behind
  auto f = _ok(s->create(dir.ino, "f", S_IFREG | 0644, k_user));
  auto cached = _ok(s->getattr(dir.ino, &age));
  CHECK(age > 0);
  CHECK(age < 60);
  same(cached, _ok(s->getattr(dir.ino)));
  CHECK(cached.mtime_ns >= f.mtime_ns);
  _ok(s->mkdir(dir.ino, "sub", 0700, k_user));
  cached = _ok(s->getattr(dir.ino, &age));
  CHECK(age > 0);
  CHECK(cached.nlink == 3);
  same(cached, _ok(s->getattr(dir.ino)));
  _ok(s->rmdir(dir.ino, "sub"));
  cached = _ok(s->getattr(dir.ino, &age));
  CHECK(age > 0);
  CHECK(cached.nlink == 2);
  same(cached, _ok(s->getattr(dir.ino)));
  _ok(s->unlink(dir.ino, "f"));
  cached = _ok(s->getattr(dir.ino, &age));
  CHECK(age > 0);
  same(cached, _ok(s->getattr(dir.ino)));

  // any other change of the directory made here drops it
  SetAttrRequest chmod;
  chmod.mode = 0711;
  _ok(s->setattr(dir.ino, chmod));
  auto after = _ok(s->getattr(dir.ino, &age));
  CHECK(age == 0);
  CHECK((after.mode & 07777) == 0711);
  _ok(s->create(dir.ino, "g", S_IFREG | 0644, k_user));
  REQUIRE(_ok(s->getattr(dir.ino, &age)).ino == dir.ino);
  CHECK(age > 0);
  _ok(s->setxattr(dir.ino, "user.k", "v", 0));
  CHECK(_ok(s->getattr(dir.ino, &age)).ctime_ns == _ok(s->getattr(dir.ino)).ctime_ns);
  CHECK(age == 0);
  _ok(s->create(dir.ino, "h", S_IFREG | 0644, k_user));
  _ok(s->rename(dir.ino, "h", k_root_ino, "h2", 0));
  CHECK(_ok(s->getattr(dir.ino, &age)).mtime_ns == _ok(s->getattr(dir.ino)).mtime_ns);
  CHECK(age == 0);

  // a change through another mount shows once the entry is older than the
  // ttl (as in the kernel's own attribute cache), at once without an age
  _ok(s->create(dir.ino, "i", S_IFREG | 0644, k_user));
  _ok(other->mkdir(dir.ino, "elsewhere", 0755, k_user));
  CHECK(_ok(s->getattr(dir.ino)).nlink == 3);
  CHECK(_ok(s->getattr(dir.ino, &age)).nlink == 2);
  CHECK(age > 0);

  // a store without a ttl never answers from it
  auto plain = _open(pool, prefix);
  _ok(plain->create(dir.ino, "j", S_IFREG | 0644, k_user));
  _ok(plain->getattr(dir.ino, &age));
  CHECK(age == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "lookup with an age: absent names of a directory this mount fills") {
  StoreOptions opts;
  opts.names_cache_seconds = 60;
  auto s = _open(pool, prefix, opts);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto other = _open(pool_b, prefix);  // another mount
  double age = -1;
  auto absent_here = [&](Ino dir, const std::string& name) {
    auto r = s->lookup(dir, name, &age);
    return r.code() == ENOENT && age > 0;
  };
  // every change to a directory's entries is counted in its 'gen'
  auto before = _ok(s->getattr(k_root_ino)).gen;
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  CHECK(_ok(s->getattr(k_root_ino)).gen == before + 1);
  CHECK(d.gen == 0);
  CHECK(absent_here(d.ino, "x"));
  CHECK_FALSE(absent_here(k_root_ino, "x"));  // not made by this mount: ask
  CHECK(s->lookup(k_root_ino, "x", &age).code() == ENOENT);
  CHECK(age == 0);

  // creates and removals made here keep the list whole
  auto f = _ok(s->create(d.ino, "f", S_IFREG | 0644, k_user));
  CHECK(_ok(s->lookup(d.ino, "f", &age)).ino == f.ino);
  CHECK(age == 0);
  CHECK(absent_here(d.ino, "g"));
  auto sub = _ok(s->mkdir(d.ino, "sub", 0755, k_user));
  CHECK(_ok(s->lookup(d.ino, "sub", &age)).ino == sub.ino);
  CHECK(absent_here(sub.ino, "deeper"));
  _ok(s->unlink(d.ino, "f"));
  CHECK(absent_here(d.ino, "f"));
  _ok(s->rmdir(d.ino, "sub"));
  CHECK(absent_here(d.ino, "sub"));
  CHECK(s->create(d.ino, "f", S_IFREG | 0644, k_user).ok());
  CHECK(s->create(d.ino, "f", S_IFREG | 0644, k_user).code() == EEXIST);  // a failed change drops the list
  CHECK_FALSE(absent_here(d.ino, "f2"));
  auto d2 = _ok(s->mkdir(k_root_ino, "d2", 0755, k_user));

  // another mount's name is not seen through the list until the next
  // change made here shows the count moved: like a negative dentry
  _ok(other->create(d2.ino, "theirs", S_IFREG | 0644, k_user));
  CHECK(absent_here(d2.ino, "theirs"));
  CHECK(_ok(s->lookup(d2.ino, "theirs")).is_reg());  // without an age: the server
  _ok(s->create(d2.ino, "mine", S_IFREG | 0644, k_user));
  CHECK(_ok(s->lookup(d2.ino, "theirs", &age)).is_reg());
  CHECK_FALSE(absent_here(d2.ino, "nothing"));  // the list is gone

  // other kinds of change drop the list at once
  auto d3 = _ok(s->mkdir(k_root_ino, "d3", 0755, k_user));
  auto g = _ok(s->create(d3.ino, "g", S_IFREG | 0644, k_user));
  _ok(s->rename(d3.ino, "g", d3.ino, "g2", 0));
  CHECK_FALSE(absent_here(d3.ino, "other"));
  CHECK(absent_here(d3.ino, "g"));  // renamed away here (RemovedNames)
  CHECK(_ok(s->lookup(d3.ino, "g2")).ino == g.ino);
  auto d4 = _ok(s->mkdir(k_root_ino, "d4", 0755, k_user));
  _ok(s->rename(k_root_ino, "d2", d4.ino, "moved", 0));  // into d4
  CHECK_FALSE(absent_here(d4.ino, "moved"));
  auto d5 = _ok(s->mkdir(k_root_ino, "d5", 0755, k_user));
  _ok(s->link(g.ino, d5.ino, "hard"));
  CHECK_FALSE(absent_here(d5.ino, "hard"));

  // a store without a ttl never answers from a list
  auto plain = _open(pool, prefix);
  auto d6 = _ok(plain->mkdir(k_root_ino, "d6", 0755, k_user));
  CHECK(plain->lookup(d6.ino, "x", &age).code() == ENOENT);
  CHECK(age == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "lookup with an age: names this mount removed, until made again") {
  StoreOptions opts;
  opts.names_cache_seconds = 60;
  auto s = _open(pool, prefix, opts);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto other = _open(pool_b, prefix);  // another mount
  double age = -1;
  auto absent_here = [&](const std::string& name) {
    auto r = s->lookup(k_root_ino, name, &age);
    return r.code() == ENOENT && age > 0 && age < 60;
  };
  auto present = [&](const std::string& name) { return s->lookup(k_root_ino, name, &age).ok() && age == 0; };
  // the root was not made by this mount: no DirNames list answers for it
  CHECK(s->lookup(k_root_ino, "j", &age).code() == ENOENT);
  CHECK(age == 0);
  // unlink, rmdir and rename away: absent without asking
  _ok(s->create(k_root_ino, "j", S_IFREG | 0644, k_user));
  _ok(s->unlink(k_root_ino, "j"));
  const auto trips = redis_counters().round_trips;
  CHECK(s->lookup(k_root_ino, "j", &age).code() == ENOENT);
  CHECK(redis_counters().round_trips == trips);
  CHECK(age > 0);
  _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  _ok(s->rmdir(k_root_ino, "d"));
  CHECK(absent_here("d"));
  auto a = _ok(s->create(k_root_ino, "a", S_IFREG | 0644, k_user));
  _ok(s->rename(k_root_ino, "a", k_root_ino, "b", 0));
  CHECK(absent_here("a"));
  CHECK(present("b"));
  // made again here (create, mkdir, symlink, mknod, link, rename to it): asked
  auto j = _ok(s->create(k_root_ino, "j", S_IFREG | 0644, k_user));
  CHECK(present("j"));
  _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  CHECK(present("d"));
  _ok(s->unlink(k_root_ino, "j"));
  _ok(s->symlink(k_root_ino, "j", "target", k_user));
  CHECK(present("j"));
  _ok(s->unlink(k_root_ino, "j"));
  _ok(s->mknod(k_root_ino, "j", S_IFIFO | 0644, 0, k_user));
  CHECK(present("j"));
  _ok(s->rename(k_root_ino, "b", k_root_ino, "a", 0));
  CHECK(present("a"));
  CHECK(absent_here("b"));
  _ok(s->link(a.ino, k_root_ino, "b"));
  CHECK(present("b"));
  (void)j;
  // another mount's create is unseen for the ttl (as behind a negative
  // dentry); a create here then meets EEXIST, and the name is asked again
  _ok(s->create(k_root_ino, "x", S_IFREG | 0644, k_user));
  _ok(s->unlink(k_root_ino, "x"));
  auto theirs = _ok(other->create(k_root_ino, "x", S_IFREG | 0644, k_user));
  CHECK(absent_here("x"));
  CHECK(s->create(k_root_ino, "x", S_IFREG | 0644, k_user).code() == EEXIST);
  CHECK(_ok(s->lookup(k_root_ino, "x", &age)).ino == theirs.ino);
  CHECK(age == 0);
  // ... and after the ttl, without any change here
  StoreOptions brief;
  brief.names_cache_seconds = 0.2;
  auto short_ttl = _open(pool, prefix, brief);
  _ok(short_ttl->create(k_root_ino, "y", S_IFREG | 0644, k_user));
  _ok(short_ttl->unlink(k_root_ino, "y"));
  _ok(other->create(k_root_ino, "y", S_IFREG | 0644, k_user));
  CHECK(short_ttl->lookup(k_root_ino, "y", &age).code() == ENOENT);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  CHECK(short_ttl->lookup(k_root_ino, "y", &age).ok());
  CHECK(age == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "directories: nlink, setgid inheritance, rmdir") {
  auto s = _open(pool, prefix);
  auto d = _ok(s->mkdir(k_root_ino, "d", 02775, Caller{1, 50}));
  CHECK(_ok(s->getattr(k_root_ino)).nlink == 3);
  CHECK(d.parent == k_root_ino);
  auto sub = _ok(s->mkdir(d.ino, "sub", 0755, k_user));
  CHECK(sub.gid == 50);                 // the setgid directory's group
  CHECK((sub.mode & S_ISGID) != 0);     // and its setgid bit
  auto file = _ok(s->mknod(d.ino, "f", S_IFREG | 0644, 0, k_user));
  CHECK(file.gid == 50);
  CHECK((file.mode & S_ISGID) == 0);
  CHECK(_ok(s->getattr(d.ino)).nlink == 3);
  CHECK(s->rmdir(k_root_ino, "d").code() == ENOTEMPTY);
  CHECK(s->rmdir(d.ino, "f").code() == ENOTDIR);
  CHECK(s->unlink(d.ino, "sub").code() == EISDIR);
  CHECK(_ok(s->rmdir(d.ino, "sub")) == sub.ino);
  CHECK(_ok(s->getattr(d.ino)).nlink == 2);
  // an orphan until purged: a process may still be inside it
  auto gone = _ok(s->getattr(sub.ino));
  CHECK(gone.nlink == 0);
  CHECK(s->mknod(sub.ino, "x", S_IFREG | 0644, 0, k_user).code() == ENOENT);
  CHECK(_ok(s->readdir(sub.ino, 0, 10, false)).entries.empty());
  _ok(s->purge(sub.ino));
  CHECK(s->getattr(sub.ino).code() == ENOENT);
  CHECK(s->rmdir(d.ino, "sub").code() == ENOENT);
}

TEST_CASE_FIXTURE(RedisFixture, "read and write: offsets, holes, blocks, append") {
  StoreOptions o;
  o.mkfs_block_size = 4096;
  auto s = _open(pool, prefix, o);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  std::string data;
  for (int i = 0; i < 10000; ++i) {
    data.push_back(static_cast<char>(i * 7 + 3));
  }
  CHECK(_ok(s->write(f.ino, 1000, data, false)) == 1000);
  auto a = _ok(s->getattr(f.ino));
  CHECK(a.size == 11000);
  std::string back = _read_all(*s, f.ino);
  REQUIRE(back.size() == 11000);
  CHECK(back.substr(0, 1000) == std::string(1000, '\0'));
  CHECK(back.substr(1000) == data);
  std::string part;
  _ok(s->read(f.ino, 4090, 20, part));
  CHECK(part == back.substr(4090, 20));
  _ok(s->read(f.ino, 10990, 100, part));
  CHECK(part.size() == 10);
  _ok(s->read(f.ino, 20000, 100, part));
  CHECK(part.empty());
  // a hole far away: only its block is stored
  CHECK(_ok(s->write(f.ino, 1 << 20, "end", false)) == (1u << 20));
  a = _ok(s->getattr(f.ino));
  CHECK(a.size == (1u << 20) + 3);
  CHECK(a.bytes == 11000 + 3);
  _ok(s->read(f.ino, 500000, 10, part));
  CHECK(part == std::string(10, '\0'));
  // The same as pieces (what the daemon hands the kernel): data out of the
  // server's reply, zeros for the hole in pieces of bounded size, in order.
  Store::ReadPieces pieces;
  _ok(s->read_pieces(f.ino, 10000, (1 << 20) - 10000 + 3, pieces));
  CHECK(pieces.size == (1u << 20) - 10000 + 3);
  CHECK(pieces.pieces.size() > 4);  // a 1 MiB hole is more than one piece of zeros
  std::string joined;
  for (std::string_view p : pieces.pieces) {
    CHECK(p.size() <= 256 * 1024);
    joined.append(p);
  }
  CHECK(joined.size() == pieces.size);
  CHECK(joined.substr(0, 1000) == data.substr(9000));
  CHECK(joined.substr(1000, joined.size() - 1003) == std::string(joined.size() - 1003, '\0'));
  CHECK(joined.substr(joined.size() - 3) == "end");
  // O_APPEND writes at the real end even when told an old offset
  CHECK(_ok(s->write(f.ino, 5, "APP", true)) == (1u << 20) + 3);
  CHECK(_ok(s->getattr(f.ino)).size == (1u << 20) + 6);
  CHECK(s->write(k_root_ino, 0, "x", false).code() == EINVAL);
}

// FUSE_HANDLE_KILLPRIV_V2 (fs/killpriv.hpp): the kernel's rule, applied
// on the server with the change.
TEST_CASE_FIXTURE(RedisFixture, "killpriv: a write, truncate or chown drops setuid and group-executable setgid") {
  auto s = _open(pool, prefix);
  auto server_mode = [&](Ino ino) { return _ok(s->getattr(ino)).mode & 07777; };
  auto file = [&](const char* name, std::uint32_t mode) {
    Attr f = _ok(s->mknod(k_root_ino, name, S_IFREG | 0644, 0, k_user));
    SetAttrRequest chmod;
    chmod.mode = mode;
    _ok(s->setattr(f.ino, chmod));
    return f.ino;
  };
  struct Case {
    std::uint32_t before, after;
  };
  for (Case c : {Case{04777, 0777}, Case{02777, 0777}, Case{02666, 02666}, Case{06755, 0755}, Case{0644, 0644}}) {
    CAPTURE(c.before);
    Ino w = file("w", c.before);
    WriteKill kill{true};
    _ok(s->write(w, 0, "data", false, &kill));
    CHECK(server_mode(w) == c.after);
    CHECK(kill.killed == (c.after != c.before));
    Ino t = file("t", c.before);
    SetAttrRequest trunc;
    trunc.size = 1;
    trunc.kill_suidgid = true;
    CHECK((_ok(s->setattr(t, trunc)).mode & 07777) == c.after);
    CHECK(server_mode(t) == c.after);
    CHECK(_ok(s->getattr(t)).size == 1);
    _ok(s->unlink(k_root_ino, "w"));
    _ok(s->unlink(k_root_ino, "t"));
  }
  // without the flag (a caller with CAP_FSETID): kept
  Ino root_w = file("root_w", 06777);
  WriteKill none;
  _ok(s->write(root_w, 0, "data", false, &none));
  CHECK(server_mode(root_w) == 06777);
  CHECK(!none.killed);
  // a chown with the flag: the bits go after the owner changed
  SetAttrRequest chown;
  chown.uid = 1234;
  chown.kill_suidgid = true;
  Attr after = _ok(s->setattr(root_w, chown));
  CHECK((after.mode & 07777) == 0777);
  CHECK(after.uid == 1234);
}

// Hostile state: a write that must drop the bits of an inode whose mode is
// not a mode is refused whole, before any byte lands (write.lua decides
// the kill before its first write); a chown likewise changes nothing.
TEST_CASE_FIXTURE(RedisFixture, "killpriv: a damaged mode refuses the change before anything is written") {
  auto s = _open(pool, prefix);
  Attr f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->write(f.ino, 0, "old", false));
  _ok(conn().command({"HSET", keys.inode(f.ino), "mode", "rwx"}));
  WriteKill kill{true};
  auto w = s->write(f.ino, 0, "new data", false, &kill);
  REQUIRE_FALSE(w.ok());
  CHECK(w.code() == EIO);
  CHECK(_ok(conn().command({"GET", keys.block(f.ino, 0)})).view().str() == "old");
  CHECK(_ok(conn().command({"HGET", keys.inode(f.ino), "size"})).view().str() == "3");
  SetAttrRequest chown;
  chown.uid = 1234;
  chown.kill_suidgid = true;
  CHECK(s->setattr(f.ino, chown).code() == EIO);
  CHECK(_ok(conn().command({"HGET", keys.inode(f.ino), "uid"})).view().str() == std::to_string(f.uid));
}

// An owner or a size is never read as 0 (decode_attr): a change whose
// reply carries the inode (chmod, link) and would leave one missing is
// refused before anything is written, as a malformed one is.
TEST_CASE_FIXTURE(RedisFixture, "an inode without its owner or size: a change that would leave it so is refused") {
  auto s = _open(pool, prefix);
  Attr f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 04755, 0, k_user));
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto field = [&](const char* name) {
    auto r = _ok(conn().command({"HGET", keys.inode(f.ino), name}));
    return r.view().is_nil() ? std::string("(nil)") : std::string(r.view().str());
  };
  _ok(conn().command({"HDEL", keys.inode(f.ino), "uid"}));
  auto fresh = _open(pool, prefix);            // (nothing cached)
  CHECK(fresh->getattr(f.ino).code() == EIO);  // (not a setuid file of root's)
  SetAttrRequest chmod;
  chmod.mode = 0700;
  auto r = s->setattr(f.ino, chmod);
  CHECK(r.code() == EIO);
  CHECK_MESSAGE(r.error().message.find("no 'uid' field") != std::string::npos, r.error().message);
  CHECK(field("mode") == "4755");
  _ok(conn().command({"HSET", keys.inode(f.ino), "uid", std::to_string(f.uid)}));
  _ok(conn().command({"HDEL", keys.inode(f.ino), "size"}));
  CHECK(s->link(f.ino, d.ino, "g").code() == EIO);
  CHECK(*_ok(conn().command({"HLEN", keys.dir(d.ino)})).view().as_int() == 0);
  CHECK(field("nlink") == "1");
  CHECK(_open(pool, prefix)->getattr(f.ino).code() == EIO);
  _ok(conn().command({"HSET", keys.inode(f.ino), "size", "0"}));
  CHECK(_ok(_open(pool, prefix)->getattr(f.ino)).uid == f.uid);
}

TEST_CASE_FIXTURE(RedisFixture,
                  "a damaged size refuses a write and a damaged accounting count never stops a change halfway") {
  auto s = _open(pool, prefix);
  Attr f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->write(f.ino, 0, "old", false));
  auto field = [&](const std::string& key, const char* name) {
    auto r = _ok(conn().command({"HGET", key, name}));
    return r.view().is_nil() ? std::string("(nil)") : std::string(r.view().str());
  };
  // the size decides where the file ends: refused, nothing written (the
  // old script wrote the block, then failed comparing with the size)
  // (past 1 PiB, 2^50, too: 2^50 itself is a size a file may have)
  for (const char* bad : {"big", "-1", "1125899906842625", "10000000000000000"}) {
    _ok(conn().command({"HSET", keys.inode(f.ino), "size", bad}));
    CHECK(s->write(f.ino, 0, "new data", false).code() == EIO);
    CHECK(_ok(conn().command({"GET", keys.block(f.ino, 0)})).view().str() == "old");
    CHECK(field(keys.inode(f.ino), "size") == bad);
  }
  _ok(conn().command({"HDEL", keys.inode(f.ino), "size"}));
  CHECK(s->write(f.ino, 0, "new data", false).code() == EIO);
  CHECK(_ok(conn().command({"GET", keys.block(f.ino, 0)})).view().str() == "old");
  _ok(conn().command({"HSET", keys.inode(f.ino), "size", "3"}));

  // the inode's and the superblock's bytes, the superblock's inodes: what
  // statfs and st_blocks show, which fsck recomputes. The change goes
  // through whole, and the damaged count stays as it was (the old scripts
  // failed at HINCRBY after their writes: EIO for a change made)
  _ok(conn().command({"HSET", keys.inode(f.ino), "bytes", "lots"}));
  _ok(conn().command({"HSET", keys.sb(), "bytes", "lots", "inodes", "many"}));
  _ok(s->write(f.ino, 0, "new data", false));
  CHECK(_ok(conn().command({"GET", keys.block(f.ino, 0)})).view().str() == "new data");
  CHECK(field(keys.inode(f.ino), "size") == "8");
  CHECK(field(keys.inode(f.ino), "bytes") == "lots");
  CHECK(field(keys.sb(), "bytes") == "lots");
  // and the file keeps its attributes: st_blocks counts its size until
  // fsck recomputes bytes
  CHECK(_ok(s->getattr(f.ino)).bytes == 8);
  // write.lua counts the inode's bytes in its HSET when it can, and leaves
  // the rest to HINCRBY: a count a double cannot hold exactly is still
  // counted, one HINCRBY refuses (a leading zero) still stays
  _ok(conn().command({"HSET", keys.inode(f.ino), "bytes", "1000000000000000"}));
  _ok(s->write(f.ino, 8, "!", false));
  CHECK(field(keys.inode(f.ino), "bytes") == "1000000000000001");
  _ok(conn().command({"HSET", keys.inode(f.ino), "bytes", "007"}));
  _ok(s->write(f.ino, 9, "?", false));
  CHECK(field(keys.inode(f.ino), "bytes") == "007");
  _ok(conn().command({"HSET", keys.inode(f.ino), "bytes", "-3"}));
  _ok(s->write(f.ino, 10, ".", false));
  CHECK(field(keys.inode(f.ino), "bytes") == "-2");
  CHECK(field(keys.sb(), "bytes") == "lots");
  _ok(conn().command({"HSET", keys.inode(f.ino), "bytes", "8"}));
  SetAttrRequest shrink;
  shrink.size = 2;
  auto shrunk = s->setattr(f.ino, shrink);
  REQUIRE_MESSAGE(shrunk.ok(), (shrunk.ok() ? "" : shrunk.error().message));
  CHECK(shrunk->size == 2);
  CHECK(_ok(conn().command({"GET", keys.block(f.ino, 0)})).view().str() == "ne");
  Attr g = _ok(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user));
  CHECK(field(keys.sb(), "inodes") == "many");
  _ok(s->unlink(k_root_ino, "g"));  // freed at once
  CHECK(s->getattr(g.ino).code() == ENOENT);
  _ok(s->unlink(k_root_ino, "f"));
  CHECK(s->getattr(f.ino).code() == ENOENT);
  CHECK(_ok(conn().command({"EXISTS", keys.block(f.ino, 0)})).view().integer() == 0);
  CHECK(field(keys.sb(), "inodes") == "many");
  CHECK(field(keys.sb(), "bytes") == "lots");
}

TEST_CASE_FIXTURE(RedisFixture, "killpriv: a gathered write drops the bits here at once, on the server at the flush") {
  auto s = _open(pool, prefix);
  Attr f = _ok(s->create(k_root_ino, "new", S_IFREG | 06777, k_user, true));
  REQUIRE(s->gathering(f.ino));
  WriteKill kill{true};
  _ok(s->write(f.ino, 0, "data", false, &kill));
  CHECK(kill.killed);
  CHECK((_ok(s->getattr(f.ino)).mode & 07777) == 0777);  // this mount's view
  SetAttrRequest chmod;                                  // a later chmod is not undone by the earlier kill
  chmod.mode = 04755;
  _ok(s->setattr(f.ino, chmod));
  _ok(s->flush(f.ino));
  auto other = _open(pool, prefix);  // another mount: the server's
  CHECK((_ok(other->getattr(f.ino)).mode & 07777) == 04755);
  Attr g = _ok(s->create(k_root_ino, "new2", S_IFREG | 04777, k_user, true));
  WriteKill kill2{true};
  _ok(s->write(g.ino, 0, "data", false, &kill2));
  _ok(s->flush(g.ino));
  CHECK((_ok(other->getattr(g.ino)).mode & 07777) == 0777);
  // tar's chown then chmod of a new file: merged, the chmod's bits win
  Attr h = _ok(s->create(k_root_ino, "new3", S_IFREG | 0600, k_user, true));
  SetAttrRequest chown;
  chown.uid = 1234;
  chown.kill_suidgid = true;
  _ok(s->setattr(h.ino, chown));
  SetAttrRequest suid;
  suid.mode = 04755;
  _ok(s->setattr(h.ino, suid));
  SetAttrRequest chown_after;  // and a chown after a chmod kills after it
  chown_after.gid = 99;
  chown_after.kill_suidgid = true;
  Attr i = _ok(s->create(k_root_ino, "new4", S_IFREG | 0600, k_user, true));
  _ok(s->setattr(i.ino, suid));
  _ok(s->setattr(i.ino, chown_after));
  _ok(s->flush(h.ino));
  _ok(s->flush(i.ino));
  CHECK((_ok(other->getattr(h.ino)).mode & 07777) == 04755);
  CHECK((_ok(other->getattr(i.ino)).mode & 07777) == 0755);
  CHECK((_ok(s->getattr(i.ino)).mode & 07777) == 0755);
}

// write.lua with an attribute change after its data (a gathered file's
// flush, one script) against write.lua then setattr.lua (what the flush
// sent before): every key of the filesystem the same, field by field, but
// for the instant "now" stands for (one in the combined script).
namespace {

// A file set up by hand, with fixed times: the superblock, the inode, a
// block of 3 bytes, and a change record that is on (track_blocks).
struct ScriptFile {
  Keys k;
  Ino ino = 7;
  std::string tmp() const { return k.temp("s", 1); }
  void setup(Connection& c, const std::string& mode) const {
    _ok(c.command({"HSET", k.sb(), "format", "redisfs", "block_size", "65536", "inodes", "2", "bytes", "3"}));
    _ok(c.command({"HSET", k.inode(ino), "type", "file", "mode", mode, "uid", "1000", "gid", "1000"}));
    _ok(c.command({"HSET", k.inode(ino), "size", "3", "nlink", "1", "rdev", "0", "bytes", "3"}));
    _ok(c.command({"HSET", k.inode(ino), "atime", "1000", "mtime", "1000", "ctime", "1000"}));
    _ok(c.command({"SET", k.block(ino, 0), "old"}));
    _ok(c.command({"SADD", k.changed(), "since"}));
  }
  // write.lua's keys and arguments for `data` at 0 (through a TMP key, set
  // here, when `through_tmp`), then `tail` (the kill slot and an
  // attribute change).
  std::vector<std::string> keys(bool through_tmp) const {
    return {k.sb(), k.freeze(), k.inode(ino), k.changed(), k.block(ino, 0), through_tmp ? tmp() : k.inode(ino)};
  }
  std::vector<std::string> args(Connection& c, const std::string& data, bool through_tmp,
                                const std::vector<std::string>& tail) const {
    if (through_tmp) {
      _ok(c.command({"SET", tmp(), data, "PX", "600000"}));
    }
    // (the first argument: where the data ends)
    std::vector<std::string> a{std::to_string(data.size()), "", "", "0", std::to_string(data.size()),
                               through_tmp ? "" : data};
    a.insert(a.end(), tail.begin(), tail.end());
    return a;
  }
};

std::int64_t _server_ns(Connection& c) {
  Reply t = _ok(c.command({"TIME"}));
  return std::stoll(std::string(t.view()[0].str())) * 1000000000 + std::stoll(std::string(t.view()[1].str())) * 1000;
}

// Every key under `prefix`, relative, with its value, one a line; a value
// of the server's clock in [from, to] reads NOW, and lands in *nows.
std::string _state(Connection& c, const std::string& prefix, std::int64_t from, std::int64_t to,
                   std::set<std::string>* nows = nullptr) {
  auto clock = [&](std::string v) {
    long long n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec == std::errc() && end == v.data() + v.size() && n >= from && n <= to) {
      if (nows != nullptr) {
        nows->insert(v);
      }
      return std::string("NOW");
    }
    return v;
  };
  std::string out;
  for (const std::string& key : redisfs::test::keys_under(c, prefix)) {
    out += key.substr(prefix.size()) + " =";
    std::string type(_ok(c.command({"TYPE", key})).view().str());
    if (type == "string") {
      out += " " + std::string(_ok(c.command({"GET", key})).view().str());
    } else if (type == "hash") {
      Reply h = _ok(c.command({"HGETALL", key}));
      std::map<std::string, std::string> fields;
      for (std::size_t i = 0; i + 1 < h.view().size(); i += 2) {
        fields[std::string(h.view()[i].str())] = clock(std::string(h.view()[i + 1].str()));
      }
      for (const auto& [f, v] : fields) {
        out += " " + f + ":" + v;
      }
    } else if (type == "set") {
      Reply m = _ok(c.command({"SMEMBERS", key}));
      std::set<std::string> members;
      for (std::size_t i = 0; i < m.view().size(); ++i) {
        members.insert(std::string(m.view()[i].str()));
      }
      for (const auto& v : members) {
        out += " " + v;
      }
    } else {
      out += " ?" + type;
    }
    out += "\n";
  }
  return out;
}

// (for _state: no value reads NOW)
constexpr std::int64_t k_no_clock = 1;

// What tar does last to each file and directory: chown 1234:99, chmod
// `mode`, and utimes (atime 1000000000123, mtime 2000000000456).
struct TarChanges {
  SetAttrRequest chown;
  SetAttrRequest chmod;
  SetAttrRequest utimes;
};
TarChanges _tar_changes(std::uint32_t mode) {
  TarChanges t;
  t.chown.uid = 1234;
  t.chown.gid = 99;
  t.chmod.mode = mode;
  t.utimes.atime = SetAttrRequest::Time::Set;
  t.utimes.atime_ns = 1000000000123;
  t.utimes.mtime = SetAttrRequest::Time::Set;
  t.utimes.mtime_ns = 2000000000456;
  return t;
}

// The reply of a write.lua, as text: "<size> <killed or ->".
std::string _write_reply(const Reply& r) {
  ReplyView v = r.view();
  return std::string(v[0].str()) + " " + (v.size() > 2 && !v[2].is_nil() ? std::string(v[2].str()) : "-");
}

}  // namespace

TEST_CASE_FIXTURE(RedisFixture, "write.lua with an attribute change leaves what write.lua then setattr.lua leave") {
  Connection& c = conn();
  struct Case {
    const char* name;
    std::string mode_before;
    std::string data;
    bool kill;
    std::vector<std::string> attrs;  // setattr.lua's first six arguments
    std::string mode_after;
  };
  const std::string big(20000, 'b');  // (a TMP key, RENAMEd into place)
  const Case cases[] = {
      {"tar: chown, chmod, utimes",
       "0644",
       "new data",
       false,
       {"0600", "1234", "99", "1000000000123", "2000000000456", ""},
       "0600"},
      {"tar, a big file", "0644", big, false, {"0755", "0", "0", "1000000000123", "2000000000456", ""}, "0755"},
      {"a write's kill, then a chmod", "6755", "new data", true, {"0640", "", "", "", "", ""}, "0640"},
      {"a write's kill, then a chown's", "6775", big, true, {"", "1234", "", "", "", "kill"}, "0775"},
      {"a chmod that sets setuid after a write's kill: kept", "6777", "x", true, {"4755", "", "", "", "", ""}, "4755"},
      {"a chown's kill of a new mode", "0644", "x", false, {"6775", "", "5", "", "", "kill"}, "0775"},
      {"times: now", "0644", "new data", false, {"", "", "", "now", "now", ""}, "0644"},
      {"times: one now, one explicit", "0644", "new data", false, {"", "", "", "now", "2000000000456", ""}, "0644"},
      {"only the ctime", "2755", "x", true, {"", "", "", "", "", ""}, "0755"},
  };
  for (const Case& t : cases) {
    const std::string name = t.name;
    CAPTURE(name);
    const bool through_tmp = t.data.size() >= 1024;
    ScriptFile one{Keys(extra_prefix())};   // write.lua, then setattr.lua
    ScriptFile both{Keys(extra_prefix())};  // write.lua with the change
    one.setup(c, t.mode_before);
    both.setup(c, t.mode_before);
    const std::int64_t from = _server_ns(c);
    Reply w = _ok(c.eval(
        lua::write, one.keys(through_tmp),
        one.args(c, t.data, through_tmp, t.kill ? std::vector<std::string>{"kill"} : std::vector<std::string>{})));
    std::vector<std::string> set_args = t.attrs;
    set_args.emplace_back("");
    _ok(c.eval(lua::setattr, std::vector<std::string>{one.k.sb(), one.k.freeze(), one.k.inode(one.ino)}, set_args));
    std::vector<std::string> tail{t.kill ? "kill" : ""};
    tail.insert(tail.end(), t.attrs.begin(), t.attrs.end());
    Reply wa = _ok(c.eval(lua::write, both.keys(through_tmp), both.args(c, t.data, through_tmp, tail)));
    const std::int64_t to = _server_ns(c);
    CHECK(_write_reply(wa) == _write_reply(w));
    std::set<std::string> nows;
    const std::string after = _state(c, both.k.prefix(), from, to, &nows);
    CHECK(after == _state(c, one.k.prefix(), from, to));
    CHECK(nows.size() == 1);  // the data's and the change's "now": one instant
    CHECK(_ok(c.command({"HGET", both.k.inode(both.ino), "mode"})).view().str() == t.mode_after);
    CHECK(after.find(":TMP:") == std::string::npos);
  }
}

// A gathered file's writes between two changes go as one write.lua, its
// pieces anywhere, a block named more than once (append_gathered).
TEST_CASE_FIXTURE(RedisFixture, "write.lua: several pieces in turn, and refused whole over a damaged block") {
  Connection& c = conn();
  ScriptFile f{keys};
  f.setup(c, "0644");  // block 0 holds "old", size 3
  const std::string tmp = f.tmp();
  const std::string tmp2 = keys.temp("s", 2);
  const std::string blk0 = keys.block(f.ino, 0);
  const std::string blk2 = keys.block(f.ino, 2);
  const std::string inode = keys.inode(f.ino);
  const std::string big(2000, 'B');
  SUBCASE("each piece over what the ones before it left") {
    // 100: "abc"; 0: 2000 bytes through a TMP key (RENAMEd: it covers all
    // the block holds by then); 1500: "zz"; block 2 at 10: 5000 bytes
    _ok(c.command({"SET", tmp, big, "PX", "600000"}));
    _ok(c.command({"SET", tmp2, std::string(5000, 'C'), "PX", "600000"}));
    const std::uint64_t end = 2 * 65536 + 10 + 5000;
    _ok(c.eval(lua::write,
               std::vector<std::string>{keys.sb(), keys.freeze(), inode, keys.changed(), blk0, inode, blk0, tmp, blk0,
                                        inode, blk2, tmp2},
               std::vector<std::string>{std::to_string(end), "", "", "100", "3", "abc", "0", "2000", "", "1500", "2",
                                        "zz", "10", "5000", ""}));
    std::string want0 = big;
    want0.replace(1500, 2, "zz");
    CHECK(_ok(c.command({"GET", blk0})).view().str() == want0);
    CHECK(_ok(c.command({"GET", blk2})).view().str() == std::string(10, '\0') + std::string(5000, 'C'));
    CHECK(_ok(c.command({"HGET", inode, "size"})).view().str() == std::to_string(end));
    CHECK(_ok(c.command({"HGET", inode, "bytes"})).view().str() == std::to_string(2000 + 5010));
    CHECK(_ok(c.command({"EXISTS", tmp, tmp2})).view().integer() == 0);
  }
  SUBCASE("thousands of pieces, change tracking on: every block recorded") {
    // (track_blocks adds them in slices: unpack takes a few thousand)
    std::vector<std::string> k{keys.sb(), keys.freeze(), inode, keys.changed()};
    std::vector<std::string> a{"", "", ""};
    std::string want = "old";
    for (std::size_t i = 0; i < 9000; ++i) {
      const std::size_t at = (i % 2 == 0 ? i : 9000 - i) * 7;
      k.push_back(i % 3 == 0 ? blk2 : blk0);
      k.push_back(inode);
      a.insert(a.end(), {std::to_string(at), "1", "x"});
      if (i % 3 != 0) {
        want.resize(std::max(want.size(), at + 1), '\0');
        want[at] = 'x';
      }
    }
    a[0] = std::to_string(2 * 65536 + 9000 * 7 + 1);
    _ok(c.eval(lua::write, k, a));
    CHECK(_ok(c.command({"GET", blk0})).view().str() == want);
    CHECK(_ok(c.command({"SISMEMBER", keys.changed(), std::to_string(f.ino) + ":2"})).view().integer() == 1);
    CHECK(_ok(c.command({"SISMEMBER", keys.changed(), std::to_string(f.ino) + ":0"})).view().integer() == 1);
  }
  SUBCASE("a damaged block among them: nothing written, no TMP key left") {
    _ok(c.command({"HSET", blk2, "not", "a string"}));
    const std::string before = _state(c, prefix, k_no_clock, 0);
    _ok(c.command({"SET", tmp, std::string(5000, 'C'), "PX", "600000"}));
    auto r = c.eval(
        lua::write, std::vector<std::string>{keys.sb(), keys.freeze(), inode, keys.changed(), blk0, inode, blk2, tmp},
        std::vector<std::string>{std::to_string(2 * 65536 + 5000), "", "", "0", "3", "new", "0", "5000", ""});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EIO);
    CHECK(_state(c, prefix, k_no_clock, 0) == before);
  }
  SUBCASE("a piece's TMP key another client made no string: nothing written, no TMP key left") {
    const std::string before = _state(c, prefix, k_no_clock, 0);
    _ok(c.command({"SET", tmp, std::string(5000, 'C'), "PX", "600000"}));
    _ok(c.command({"HSET", tmp2, "not", "a string"}));
    auto r = c.eval(
        lua::write,
        std::vector<std::string>{keys.sb(), keys.freeze(), inode, keys.changed(), blk0, inode, blk0, tmp, blk2, tmp2},
        std::vector<std::string>{std::to_string(2 * 65536 + 5000), "", "", "0", "3", "new", "10", "5000", "", "0",
                                 "5000", ""});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EIO);
    CHECK(r.error().message.find("is not a string") != std::string::npos);
    CHECK(_state(c, prefix, k_no_clock, 0) == before);
    CHECK(_ok(c.command({"EXISTS", tmp, tmp2})).view().integer() == 0);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "write.lua with an attribute change: refused whole before anything is written") {
  Connection& c = conn();
  ScriptFile f{keys};
  SUBCASE("a kill that meets a damaged mode, the change's") {
    f.setup(c, "rwx");
    for (bool through_tmp : {false, true}) {
      CAPTURE(through_tmp);
      const std::string data = through_tmp ? std::string(5000, 'n') : "new";
      const std::string before = _state(c, prefix, k_no_clock, 0);
      auto args = f.args(c, data, through_tmp, {"", "", "1234", "", "", "", "kill"});
      auto r = c.eval(lua::write, f.keys(through_tmp), args);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == EIO);
      CHECK(_state(c, prefix, k_no_clock, 0) == before);  // no byte, no size, no owner; the TMP key gone
    }
  }
  SUBCASE("a damaged new mode to kill") {
    f.setup(c, "0644");
    const std::string before = _state(c, prefix, k_no_clock, 0);
    auto r = c.eval(lua::write, f.keys(false), f.args(c, "new", false, {"", "z9", "", "", "", "", "kill"}));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EIO);
    CHECK(_state(c, prefix, k_no_clock, 0) == before);
  }
  SUBCASE("malformed: a part of a change") {
    f.setup(c, "0644");
    const std::string before = _state(c, prefix, k_no_clock, 0);
    auto r = c.eval(lua::write, f.keys(false), f.args(c, "new", false, {"", "0600", "", ""}));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EINVAL);
    CHECK(_state(c, prefix, k_no_clock, 0) == before);
  }
  SUBCASE("frozen: nothing written until the freeze is gone, then all of it once") {
    f.setup(c, "0644");
    ScriptFile one{Keys(extra_prefix())};
    one.setup(c, "0644");
    const std::vector<std::string> attrs{"0600", "1234", "99", "1000000000123", "now", ""};
    _ok(c.command({"SET", keys.freeze(), "delete", "PX", "30000"}));
    std::vector<std::string> tail{""};
    tail.insert(tail.end(), attrs.begin(), attrs.end());
    const auto args = f.args(c, std::string(5000, 'n'), true, tail);
    const std::string before = _state(c, prefix, k_no_clock, 0);
    const std::int64_t from = _server_ns(c);
    std::optional<Result<Reply>> frozen;
    std::thread writer([&] {
      auto other = redisfs::test::connect();
      frozen = other->eval(lua::write, f.keys(true), args);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(_state(c, prefix, k_no_clock, 0) == before);  // refused with FROZEN so far: the data waits in its TMP key
    CHECK(_ok(c.command({"EXISTS", f.tmp()})).view().integer() == 1);
    _ok(c.command({"DEL", keys.freeze()}));
    writer.join();
    REQUIRE(frozen);
    REQUIRE_MESSAGE(frozen->ok(), frozen->error().message);
    _ok(c.eval(lua::write, one.keys(true), one.args(c, std::string(5000, 'n'), true, {})));
    std::vector<std::string> set_args = attrs;
    set_args.emplace_back("");
    _ok(c.eval(lua::setattr, std::vector<std::string>{one.k.sb(), one.k.freeze(), one.k.inode(one.ino)}, set_args));
    const std::int64_t to = _server_ns(c);
    CHECK(_state(c, prefix, from, to) == _state(c, one.k.prefix(), from, to));
  }
}

// A writeback mount whose kernel keeps regular files' mtime and ctime
// (and writes them back with SETATTR, its ctime in FUSE_SET_ATTR_CTIME):
// write.lua's 'k' leaves both to it and counts the change in 'gen' (an
// incremental dump sees every change of data in the inode); a change that
// brings the kernel's instant stores it as the ctime.
TEST_CASE_FIXTURE(RedisFixture, "write.lua 'k': the kernel keeps a file's times, gen counts the change") {
  Connection& c = conn();
  ScriptFile f{keys};
  f.setup(c, "0644");  // mtime and ctime 1000, no gen
  auto field = [&](const char* name) {
    Reply r = _ok(c.command({"HGET", keys.inode(f.ino), name}));
    return r.view().is_nil() ? std::string("-") : std::string(r.view().str());
  };
  auto write = [&](const std::string& flags, const std::string& data, std::vector<std::string> tail = {}) {
    auto a = f.args(c, data, false, tail);
    a[2] = flags;
    return c.eval(lua::write, f.keys(false), a);
  };
  SUBCASE("the data leaves the times, and counts up gen") {
    _ok(write("k", "new"));  // the same size: only the bytes change
    CHECK(field("mtime") == "1000");
    CHECK(field("ctime") == "1000");
    CHECK(field("gen") == "1");
    CHECK(_ok(c.command({"GET", keys.block(f.ino, 0)})).view().str() == "new");
    Reply r = _ok(write("1k", "newer"));  // with the fields in the reply
    CHECK(r.view()[0].str() == "5");
    CHECK(r.view()[1].size() > 0);
    CHECK(field("gen") == "2");
    CHECK(field("mtime") == "1000");
    CHECK(field("size") == "5");
  }
  SUBCASE("a damaged or spent gen starts again at 1: a count, nothing refers to it") {
    for (const char* bad : {"x", "-3", "9007199254740991", "123456789012345678"}) {
      CAPTURE(bad);
      _ok(c.command({"HSET", keys.inode(f.ino), "gen", bad}));
      _ok(write("k", "abc"));
      CHECK(field("gen") == "1");
    }
  }
  SUBCASE("the change after the data takes the kernel's instant as its ctime and its now") {
    const std::int64_t from = _server_ns(c);
    _ok(write("k", "new", {"", "0600", "", "", "now", "2000000000456", "", "1500000000789"}));
    CHECK(field("ctime") == "1500000000789");
    CHECK(field("atime") == "1500000000789");
    CHECK(field("mtime") == "2000000000456");
    CHECK(field("mode") == "0600");
    // without 'k' the data stamps the server's clock, then the change
    // stores the instant it brings
    _ok(write("", "data", {"", "", "", "", "", "", "", "1600000000000"}));
    CHECK(field("ctime") == "1600000000000");
    CHECK(std::stoll(field("mtime")) >= from);
    // and without an instant, the server's clock, as before
    _ok(write("k", "data", {"", "0640", "", "", "", "", ""}));
    CHECK(std::stoll(field("ctime")) >= from);
  }
  SUBCASE("malformed flags or instant: refused, nothing written") {
    const std::string before = _state(c, prefix, k_no_clock, 0);
    for (const auto& [flags, instant] : std::vector<std::pair<std::string, std::string>>{
             {"2", ""}, {"k1", ""}, {"kk", ""}, {"k", "12a"}, {"k", "-5"}, {"k", "12345678901234567890"}}) {
      CAPTURE(flags);
      CAPTURE(instant);
      std::vector<std::string> tail;
      if (!instant.empty()) {
        tail = {"", "", "", "", "", "", "", instant};
      }
      auto r = write(flags, "new", tail);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == EINVAL);
      CHECK(_state(c, prefix, k_no_clock, 0) == before);
    }
  }
}

// Through the Store: the kernel's ctime of a setattr (gathered or not) is
// the one stored, and a write-back mount's data leaves the times.
TEST_CASE_FIXTURE(RedisFixture, "setattr with the kernel's ctime, and writes that leave a writeback mount's times") {
  auto s = _open(pool, prefix, _writeback_options());  // (the only mount: the server's fields are read)
  Connection& c = conn();
  auto stored = [&](Ino ino, const char* name) {
    Reply r = _ok(c.command({"HGET", keys.inode(ino), name}));
    return r.view().is_nil() ? std::string("-") : std::string(r.view().str());
  };
  s->set_kernel_file_times(true);
  SetAttrRequest back;  // the kernel's write-back of a file's times
  back.mtime = SetAttrRequest::Time::Set;
  back.mtime_ns = 1700000000000000001;
  back.ctime_ns = 1700000000000000002;
  for (bool gathered : {true, false}) {
    CAPTURE(gathered);
    Attr f = _ok(s->create(k_root_ino, gathered ? "g" : "n", S_IFREG | 0644, k_user, true));
    if (!gathered) {
      _ok(s->flush(f.ino));
      REQUIRE_FALSE(s->gathering(f.ino));
    }
    _ok(s->write(f.ino, 0, "data", false));
    _ok(s->setattr(f.ino, back));
    _ok(s->flush(f.ino));
    CHECK(stored(f.ino, "mtime") == std::to_string(back.mtime_ns));
    CHECK(stored(f.ino, "ctime") == std::to_string(*back.ctime_ns));
    // a second write the kernel stamped within the same tick: no write-back follows
    _ok(s->write(f.ino, 0, "DATA", false));
    _ok(s->flush(f.ino));
    CHECK(stored(f.ino, "mtime") == std::to_string(back.mtime_ns));
    CHECK(stored(f.ino, "ctime") == std::to_string(*back.ctime_ns));
    CHECK(_ok(c.command({"GET", keys.block(f.ino, 0)})).view().str() == "DATA");
    CHECK(stored(f.ino, "gen") == "2");
  }
  SUBCASE("a mount whose kernel keeps no times: the data's instant, the server's") {
    s->set_kernel_file_times(false);
    Attr f = _ok(s->create(k_root_ino, "plain", S_IFREG | 0644, k_user, true));
    _ok(s->flush(f.ino));
    _ok(s->setattr(f.ino, back));
    _ok(s->write(f.ino, 0, "data", false));
    _ok(s->flush(f.ino));
    CHECK(std::stoll(stored(f.ino, "mtime")) > back.mtime_ns);
    CHECK(std::stoll(stored(f.ino, "ctime")) > *back.ctime_ns);
    CHECK(stored(f.ino, "gen") == "-");
  }
}

// tar's file (writes, then chown, chmod and utimes) reaches the server in
// one script at its flush; the shapes that do not fit keep their several.
// Thousands of scattered writes waiting (1-byte pwrites to a new file):
// they go as several write.lua calls, each within what a script can
// take (track_blocks unpacks its blocks for SADD, at most ~8000), while
// an incremental dump's change tracking is on.
TEST_CASE_FIXTURE(RedisFixture, "gather: thousands of scattered writes flush in scripts of bounded size") {
  auto s = _open(pool, prefix);
  auto other = _open(pool, prefix);
  Connection& c = conn();
  _ok(c.command({"SADD", keys.changed(), "since"}));  // (tracking on: CHANGED exists)
  Attr f = _ok(s->create(k_root_ino, "scattered", S_IFREG | 0644, k_user, true));
  REQUIRE(s->gathering(f.ino));
  std::string want;
  for (std::size_t i = 0; i < 9000; ++i) {
    const std::size_t at = i * 29;
    const std::string byte(1, static_cast<char>('a' + i % 26));
    _ok(s->write(f.ino, at, byte, false));
    want.resize(at, '\0');
    want += byte;
  }
  REQUIRE(s->gathering(f.ino));  // (all of it waited)
  const long long before = test::command_calls(c, "evalsha");
  _ok(s->flush(f.ino));
  // (one block piece each: k_gather_script_blocks a script; +1 when the
  // server learns write.lua here: NOSCRIPT, then EVALSHA again)
  const long long scripts = (9000 + Store::k_gather_script_blocks - 1) / Store::k_gather_script_blocks;
  const long long calls = test::command_calls(c, "evalsha") - before;
  CHECK(calls >= scripts);
  CHECK(calls <= scripts + 1);
  CHECK(_ok(other->getattr(f.ino)).size == want.size());
  CHECK(_read_all(*other, f.ino) == want);
  CHECK(_ok(c.command({"SISMEMBER", keys.changed(), std::to_string(f.ino) + ":3"})).view().integer() == 1);
}

TEST_CASE_FIXTURE(RedisFixture, "gather: the data and the attribute change after it flush in one script") {
  auto s = _open(pool, prefix);
  auto other = _open(pool, prefix);  // another mount: the server's
  Connection& c = conn();
  auto evalsha = [&] { return test::command_calls(c, "evalsha"); };
  auto [chown, chmod, utimes] = _tar_changes(04750);
  chown.kill_suidgid = true;
  struct Shape {
    const char* name;
    // 0: a write (the next piece), 1: chown, 2: chmod, 3: utimes, 4: a
    // write over earlier bytes, 5: a write past the end, past a hole
    std::vector<int> steps;
    long long scripts;
  };
  const Shape shapes[] = {
      {"tar: writes, chown, chmod, utimes", {0, 0, 1, 2, 3}, 1},
      {"writes only", {0, 0}, 1},
      {"attributes only", {1, 2, 3}, 1},
      {"attributes, writes, attributes", {2, 0, 3}, 2},
      {"writes, attributes, writes, attributes", {0, 2, 0, 3}, 2},
      // an owner change before the data rides in the data's script (the
      // write overtakes it: the same fields); a mode or mtime cannot
      {"sqlite's journal: chown, writes", {1, 0, 0}, 1},
      {"chown, writes, chmod, utimes", {1, 0, 2, 3}, 1},
      {"utimes, writes", {3, 0}, 2},
      {"chmod, chown, writes", {2, 1, 0}, 2},
      // the writes between two changes, wherever they land, in one script
      {"sqlite's pages: here and there, then the mtime", {0, 4, 5, 3}, 1},
      {"chown, writes here and there", {1, 0, 5, 4}, 1},
      {"writes, chmod, writes elsewhere, utimes", {0, 2, 4, 3}, 2},
  };
  int n = 0;
  // (the server learns each script at its first call: NOSCRIPT, then a
  // second EVALSHA; not counted below)
  for (const SetAttrRequest& first : {chmod, utimes}) {
    Attr f = _ok(s->create(k_root_ino, "f" + std::to_string(n++), S_IFREG | 0644, k_user, true));
    if (n == 1) {
      _ok(s->write(f.ino, 0, "x", false));
    }
    _ok(s->setattr(f.ino, first));
    _ok(s->flush(f.ino));
  }
  for (const Shape& shape : shapes) {
    const std::string name = shape.name;
    CAPTURE(name);
    Attr f = _ok(s->create(k_root_ino, "f" + std::to_string(n++), S_IFREG | 0644, k_user, true));
    REQUIRE(s->gathering(f.ino));
    std::string data;
    for (int step : shape.steps) {
      if (step == 0) {
        std::string piece(data.empty() ? 3000 : 10, static_cast<char>('a' + data.size() % 26));
        _ok(s->write(f.ino, data.size(), piece, false));
        data += piece;
      } else if (step == 4) {
        _ok(s->write(f.ino, 1000, "over", false));
        data.replace(1000, 4, "over");
      } else if (step == 5) {
        const std::size_t at = data.size() + 70000;
        _ok(s->write(f.ino, at, "past a hole", false));
        data.resize(at, '\0');
        data += "past a hole";
      } else {
        _ok(s->setattr(f.ino, step == 1 ? chown : step == 2 ? chmod : utimes));
      }
    }
    Attr mine = _ok(s->getattr(f.ino));
    const long long before = evalsha();
    _ok(s->flush(f.ino));
    CHECK(evalsha() - before == shape.scripts);
    Attr theirs = _ok(other->getattr(f.ino));
    CHECK(theirs.size == data.size());
    CHECK(theirs.mode == mine.mode);
    CHECK(theirs.uid == mine.uid);
    CHECK(theirs.gid == mine.gid);
    CHECK(theirs.atime_ns == mine.atime_ns);
    if (shape.steps.back() == 3) {
      CHECK(theirs.atime_ns == 1000000000123);
      CHECK(theirs.mtime_ns == 2000000000456);
    } else if (std::find(shape.steps.begin(), shape.steps.end(), 0) != shape.steps.end()) {
      CHECK(theirs.mtime_ns > 2000000000456);  // the data's instant
    }
    CHECK(_read_all(*other, f.ino) == data);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "truncate: both ways, no stale bytes past the end") {
  StoreOptions o;
  o.mkfs_block_size = 4096;
  auto s = _open(pool, prefix, o);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->write(f.ino, 0, std::string(20000, 'a'), false));
  SetAttrRequest r;
  r.size = 5000;
  auto a = _ok(s->setattr(f.ino, r));
  CHECK(a.size == 5000);
  CHECK(a.bytes == 5000);
  r.size = 30000;
  CHECK(_ok(s->setattr(f.ino, r)).size == 30000);
  std::string back = _read_all(*s, f.ino);
  CHECK(back == std::string(5000, 'a') + std::string(25000, '\0'));
  r.size = 0;
  a = _ok(s->setattr(f.ino, r));
  CHECK(a.bytes == 0);
  for (const auto& k : keys_under(prefix)) {
    CHECK(k.find(":BLK:") == std::string::npos);
  }
  // a shrink that needs several steps
  _ok(s->write(f.ino, 0, std::string(3000 * 4096 + 17, 'b'), false));
  r.size = 4096 + 1;
  a = _ok(s->setattr(f.ino, r));
  CHECK(a.size == 4097);
  CHECK(a.bytes == 4097);
  CHECK(_read_all(*s, f.ino) == std::string(4097, 'b'));
}

TEST_CASE_FIXTURE(RedisFixture, "hold_opens: the opens a change of server lost are counted again and never lowered") {
  auto s = _open(pool, prefix);
  auto count = [&](Ino ino) {
    return std::string(_ok(conn().command({"HGET", keys.open(ino), s->session()})).view().str());
  };
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  auto g = _ok(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user));
  auto h = _ok(s->mknod(k_root_ino, "h", S_IFREG | 0644, 0, k_user));
  _ok(s->open_file(f.ino));
  _ok(s->open_file(f.ino));
  _ok(s->open_file(g.ino));
  _ok(conn().command({"HDEL", keys.open(f.ino), s->session()}));  // what the new server lost
  CHECK(_ok(s->unlink(k_root_ino, "h")) == 0);                    // freed meanwhile
  const std::pair<Ino, std::uint32_t> held[] = {{f.ino, 2}, {g.ino, 1}, {h.ino, 1}};
  CHECK(_ok(s->hold_opens(held)) == 1);
  CHECK(count(f.ino) == "2");
  CHECK(count(g.ino) == "1");
  CHECK(_ok(conn().command({"EXISTS", keys.open(h.ino)})).view().integer() == 0);  // no debris of a freed file
  const std::pair<Ino, std::uint32_t> fewer[] = {{f.ino, 1}};                      // a release in flight: never lowered
  CHECK(_ok(s->hold_opens(fewer)) == 0);
  CHECK(count(f.ino) == "2");
  // a damaged OPEN key is left to fsck, and the others are counted all the same
  _ok(conn().command({"SET", keys.open(g.ino), "stray"}));
  _ok(conn().command({"HDEL", keys.open(f.ino), s->session()}));
  CHECK(_ok(s->hold_opens(held)) == 1);
  CHECK(count(f.ino) == "2");
  CHECK(_ok(conn().command({"GET", keys.open(g.ino)})).view().str() == "stray");
  _ok(conn().command({"DEL", keys.open(g.ino)}));
  // what it is for: another mount's unlink leaves the file to this one
  auto other = _open(pool, prefix);
  CHECK(_ok(other->unlink(k_root_ino, "f")) == f.ino);
  CHECK(_ok(s->getattr(f.ino)).nlink == 0);
  // more files than one script takes
  std::vector<std::pair<Ino, std::uint32_t>> many;
  for (int i = 0; i < 300; ++i) {
    auto m = _ok(s->mknod(k_root_ino, "m" + std::to_string(i), S_IFREG | 0644, 0, k_user));
    _ok(s->open_file(m.ino));
    _ok(conn().command({"DEL", keys.open(m.ino)}));
    many.emplace_back(m.ino, 1);
  }
  CHECK(_ok(s->hold_opens(many)) == 300);
  CHECK(count(many.front().first) == "1");
  CHECK(count(many.back().first) == "1");
}

TEST_CASE_FIXTURE(RedisFixture, "hard links, unlink, orphans and purge") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->write(f.ino, 0, std::string(200000, 'z'), false));
  _ok(s->setxattr(f.ino, "user.k", "v", 0));
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  CHECK(_ok(s->link(f.ino, d.ino, "g")).nlink == 2);
  CHECK(s->link(d.ino, k_root_ino, "dlink").code() == EPERM);
  CHECK(s->link(f.ino, d.ino, "g").code() == EEXIST);
  CHECK(_ok(s->unlink(k_root_ino, "f")) == 0);
  CHECK(_ok(s->getattr(f.ino)).nlink == 1);
  _ok(s->open_file(f.ino));  // open: its last unlink keeps it, an orphan
  Ino orphan = _ok(s->unlink(d.ino, "g"));
  CHECK(orphan == f.ino);
  // unlinked but not purged: still readable (an open file)
  CHECK(_read_all(*s, f.ino).size() == 200000);
  CHECK(_ok(s->write(f.ino, 0, "still writable", false)) == 0);
  auto o = _ok(conn().command({"HGET", keys.orphans(), std::to_string(f.ino)}));
  CHECK(o.view().str() == s->session());
  CHECK(_ok(s->own_orphans()) == std::vector<Ino>{f.ino});  // what an unmount frees after a failover
  CHECK(_ok(_open(pool, prefix)->own_orphans()).empty());   // another mount's are not its own
  _ok(s->purge(f.ino));
  CHECK(s->getattr(f.ino).code() == ENOENT);
  CHECK(_ok(s->own_orphans()).empty());
  for (const auto& k : keys_under(prefix)) {
    auto rel = keys.relative(k);
    REQUIRE(rel);
    auto pk = parse_relative_key(*rel);
    CHECK(pk.ino != f.ino);
    CHECK(pk.kind != KeyKind::Orphans);
  }
  auto sb = _ok(conn().command({"HMGET", keys.sb(), "bytes", "inodes"}));
  CHECK(sb.view()[0].str() == "0");
  CHECK(sb.view()[1].str() == "2");
  _ok(s->rmdir(k_root_ino, "d"));
  _ok(s->purge(d.ino));
  sb = _ok(conn().command({"HMGET", keys.sb(), "bytes", "inodes"}));
  CHECK(sb.view()[1].str() == "1");
}

TEST_CASE_FIXTURE(RedisFixture, "create and unlink return the parent's fields as the change left them") {
  StoreOptions opts;
  opts.attr_cache_seconds = 60;
  auto s = _open(pool, prefix, opts);
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  // a directory without 'gen' yet (made by an older version): counted from 0
  _ok(conn().command({"HDEL", keys.inode(d.ino), "gen"}));
  auto same_as_server = [&](Ino dir) {
    double age = -1;
    Attr server = _same_as_server(*s, pool, prefix, dir, &age);
    REQUIRE(age >= 0);  // what the change's reply left in the cache
    return server;
  };
  auto f = _ok(s->create(d.ino, "f", S_IFREG | 0644, k_user));
  CHECK(same_as_server(d.ino).gen == 1);
  _ok(s->mkdir(d.ino, "sub", 0755, k_user));
  Attr after = same_as_server(d.ino);
  CHECK(after.gen == 2);
  CHECK(after.nlink == 3);
  _ok(s->symlink(d.ino, "l", "target", k_user));
  CHECK(same_as_server(d.ino).gen == 3);
  (void)f;
  _ok(s->unlink(d.ino, "f"));
  CHECK(same_as_server(d.ino).gen == 4);
  _ok(s->unlink(d.ino, "l"));
  CHECK(same_as_server(d.ino).gen == 5);
  CHECK(same_as_server(d.ino).nlink == 3);
}

// create, unlink and rmdir send the parent's "<gen>:<ctime>:<atime>" this mount
// holds (a basis) and get back only what they changed when the server's is
// the same (dir_read, dir_reply in prelude.lua); otherwise its fields. What
// the cache then holds of the parent must be the server's either way.
TEST_CASE_FIXTURE(RedisFixture, "the parent a change reports is the server's, also when another mount changed it") {
  StoreOptions opts;
  opts.attr_cache_seconds = 60;
  auto s = _open(pool, prefix, opts);
  auto other = _open(pool, prefix);  // another mount, no cache
  Connection& c = conn();
  auto hgetalls = [&] {
    std::string info(_ok(c.command({"INFO", "commandstats"})).view().str());
    auto at = info.find("cmdstat_hgetall:calls=");
    return at == std::string::npos ? 0 : std::atoll(info.c_str() + at + 22);
  };
  auto same_as_server = [&](Ino dir) { return _same_as_server(*s, pool, prefix, dir); };
  // the change's own report, not a getattr's HGETALL, answers
  auto from_cache = [&](Ino dir) {
    double age = -1;
    _ok(s->getattr(dir, &age));
    return age > 0;
  };
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));

  // no basis yet: the fields come back
  auto f = _ok(s->create(d.ino, "f", S_IFREG | 0644, k_user));
  CHECK(from_cache(d.ino));
  same_as_server(d.ino);
  // a basis the server still has: only the change, no HGETALL
  long long before = hgetalls();
  auto g = _ok(s->create(d.ino, "g", S_IFREG | 0644, k_user));
  CHECK(hgetalls() == before);
  CHECK(from_cache(d.ino));
  CHECK(same_as_server(d.ino).gen == 2);
  before = hgetalls();
  _ok(s->mkdir(d.ino, "sub", 0755, k_user));
  _ok(s->rmdir(d.ino, "sub"));
  _ok(s->symlink(d.ino, "l", "target", k_user));
  _ok(s->unlink(d.ino, "l"));
  CHECK(hgetalls() == before);
  CHECK(from_cache(d.ino));
  CHECK(same_as_server(d.ino).nlink == 2);

  // another mount adds an entry (gen moves): the basis is stale
  _ok(other->mknod(d.ino, "x", S_IFREG | 0644, 0, k_user));
  _ok(s->unlink(d.ino, "f"));
  CHECK(from_cache(d.ino));
  CHECK(same_as_server(d.ino).gen == 8);
  // another mount changes the attributes only (gen stays, ctime moves)
  SetAttrRequest chmod;
  chmod.mode = 0700;
  chmod.uid = 77;
  chmod.atime = SetAttrRequest::Time::Set;
  chmod.atime_ns = 1000000000123;
  _ok(other->setattr(d.ino, chmod));
  _ok(s->mkdir(d.ino, "sub", 0755, k_user));
  CHECK(from_cache(d.ino));
  Attr after = same_as_server(d.ino);
  CHECK((after.mode & 07777) == 0700);
  CHECK(after.uid == 77);
  CHECK(after.nlink == 3);
  _ok(other->setattr(d.ino, chmod));
  _ok(s->rmdir(d.ino, "sub"));
  CHECK(same_as_server(d.ino).nlink == 2);
  // another mount's rmdir and mkdir in it
  _ok(other->mkdir(d.ino, "sub", 0755, k_user));
  _ok(s->rmdir(d.ino, "sub"));
  CHECK(same_as_server(d.ino).gen == 12);
  _ok(other->mkdir(d.ino, "sub", 0755, k_user));
  _ok(s->create(d.ino, "h", S_IFREG | 0644, k_user));
  CHECK(same_as_server(d.ino).nlink == 3);
  // link: its reply has no parent; what this mount reports is the server's
  _ok(s->link(g.ino, d.ino, "g2"));
  _ok(other->unlink(d.ino, "h"));
  CHECK(same_as_server(d.ino).gen == 16);
  _ok(s->unlink(d.ino, "g2"));
  same_as_server(d.ino);

  // another mount's access, which stamps atime alone (touch_atime.lua):
  // the basis is stale
  _ok(s->create(d.ino, "j", S_IFREG | 0644, k_user));
  _ok(c.command({"HSET", keys.inode(d.ino), "atime", "1234567890000000001"}));
  before = hgetalls();
  _ok(s->unlink(d.ino, "j"));
  CHECK(hgetalls() == before + 1);
  CHECK(same_as_server(d.ino).atime_ns == 1234567890000000001);

  // a ctime the basis cannot name (not canonical): the fields come back
  _ok(s->create(d.ino, "i", S_IFREG | 0644, k_user));
  _ok(c.command({"HSET", keys.inode(d.ino), "ctime", "0123"}));
  before = hgetalls();
  _ok(s->unlink(d.ino, "i"));
  CHECK(hgetalls() == before + 1);
  same_as_server(d.ino);
  (void)f;
}

TEST_CASE_FIXTURE(RedisFixture, "create and unlink: a damaged field refuses the change before anything is written") {
  auto s = _open(pool, prefix);
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto f = _ok(s->mknod(d.ino, "f", S_IFREG | 0644, 0, k_user));
  auto field = [&](Ino ino, const char* name) {
    auto r = _ok(conn().command({"HGET", keys.inode(ino), name}));
    return r.view().is_nil() ? std::string("(nil)") : std::string(r.view().str());
  };
  auto entries = [&](Ino dir) { return *_ok(conn().command({"HLEN", keys.dir(dir)})).view().as_int(); };
  auto inodes = [&]() { return std::string(_ok(conn().command({"HGET", keys.sb(), "inodes"})).view().str()); };
  const std::string inodes_before = inodes();
  const std::string ctime = field(d.ino, "ctime");

  // the child's nlink
  _ok(conn().command({"HSET", keys.inode(f.ino), "nlink", "one"}));
  CHECK(s->unlink(d.ino, "f").code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(f.ino, "nlink") == "one");
  CHECK(field(d.ino, "ctime") == ctime);
  _ok(conn().command({"HSET", keys.inode(f.ino), "nlink", "1"}));

  // the parent's gen: neither unlink nor create
  _ok(conn().command({"HSET", keys.inode(d.ino), "gen", "many"}));
  CHECK(s->unlink(d.ino, "f").code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(f.ino, "nlink") == "1");
  CHECK(s->create(d.ino, "g", S_IFREG | 0644, k_user).code() == EIO);
  CHECK(s->mkdir(d.ino, "e", 0755, k_user).code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(d.ino, "ctime") == ctime);
  CHECK(field(d.ino, "gen") == "many");
  _ok(conn().command({"HSET", keys.inode(d.ino), "gen", "7"}));

  // the parent's nlink, which a new directory counts
  _ok(conn().command({"HSET", keys.inode(d.ino), "nlink", "two"}));
  CHECK(s->mkdir(d.ino, "e", 0755, k_user).code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(d.ino, "nlink") == "two");
  _ok(conn().command({"HSET", keys.inode(d.ino), "nlink", "2"}));

  // the parent's mode, and the gid a setgid parent passes on
  _ok(conn().command({"HSET", keys.inode(d.ino), "mode", "rwx"}));
  CHECK(s->create(d.ino, "g", S_IFREG | 0644, k_user).code() == EIO);
  _ok(conn().command({"HSET", keys.inode(d.ino), "mode", "2775"}));
  _ok(conn().command({"HDEL", keys.inode(d.ino), "gid"}));
  CHECK(s->create(d.ino, "g", S_IFREG | 0644, k_user).code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(d.ino, "ctime") == ctime);
  CHECK(field(d.ino, "gen") == "7");
  CHECK(inodes() == inodes_before);

  // repaired: both go, and count from the gen they found
  _ok(conn().command({"HSET", keys.inode(d.ino), "gid", "55"}));
  auto g = _ok(s->create(d.ino, "g", S_IFREG | 0644, k_user));
  CHECK(g.gid == 55);
  CHECK(field(d.ino, "gen") == "8");
  _ok(s->unlink(d.ino, "f"));
  CHECK(field(d.ino, "gen") == "9");
  CHECK(s->getattr(f.ino).code() == ENOENT);
  CHECK(entries(d.ino) == 1);

  // a stray key at the new inode's number, written after the mount checked
  // its batch of numbers: its INODE, or the OPEN key of a file created
  // open. The script refuses the number, changing nothing, and the create
  // takes the next one (this mount alone allocates: the next number is the
  // last one plus one); the stray keys stay, for fsck
  const std::string gen = field(d.ino, "gen");
  Ino next = _ok(s->mknod(d.ino, "n1", S_IFREG | 0644, 0, k_user)).ino + 1;
  _ok(conn().command({"SET", keys.open(next), "stray"}));
  CHECK(_ok(s->create(d.ino, "h", S_IFREG | 0644, k_user)).ino == next + 1);
  _ok(conn().command({"HSET", keys.inode(next + 2), "type", "file"}));
  CHECK(_ok(s->create(d.ino, "h2", S_IFREG | 0644, k_user)).ino == next + 3);
  CHECK(entries(d.ino) == 4);
  CHECK(field(d.ino, "gen") == std::to_string(std::stoll(gen) + 3));
  CHECK(field(next, "type") == "(nil)");
  CHECK(_ok(conn().command({"GET", keys.open(next)})).view().str() == "stray");
  CHECK(_ok(conn().command({"HGETALL", keys.inode(next + 2)})).view().size() == 2);
  CHECK(inodes() == std::to_string(std::stoll(inodes_before) + 3));  // g, n1, h, h2 made, f removed
}

TEST_CASE_FIXTURE(RedisFixture, "mkfs over a root inode of another type writes no superblock") {
  // (a stray the mount's check before mkfs did not see: made meanwhile)
  _ok(conn().command({"SET", keys.inode(k_root_ino), "stray"}));
  auto made = conn().eval(lua::mkfs, {keys.sb(), keys.inode(k_root_ino), keys.reserved()},
                          {"65536", "0", "0", "0755", "2"});
  CHECK_FALSE(made.ok());
  CHECK(_ok(conn().command({"EXISTS", keys.sb()})).view().integer() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "a damaged ORPHANS refuses rmdir and the unlink or rename that would add to it") {
  auto s = _open(pool, prefix);
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  auto g = _ok(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user));
  _ok(s->open_file(f.ino));
  _ok(s->open_file(g.ino));
  auto entries = [&]() { return *_ok(conn().command({"HLEN", keys.dir(k_root_ino)})).view().as_int(); };
  _ok(conn().command({"SET", keys.orphans(), "stray"}));
  CHECK(s->rmdir(k_root_ino, "d").code() == EIO);
  CHECK(s->unlink(k_root_ino, "f").code() == EIO);
  CHECK(s->rename(k_root_ino, "f", k_root_ino, "g", 0).code() == EIO);
  CHECK(entries() == 3);
  CHECK(_ok(s->getattr(d.ino)).nlink == 2);
  CHECK(_ok(s->getattr(f.ino)).nlink == 1);
  CHECK(_ok(s->getattr(g.ino)).nlink == 1);
  // a file nobody holds is freed, no orphan: its unlink goes
  _ok(s->mknod(k_root_ino, "h", S_IFREG | 0644, 0, k_user));
  CHECK(_ok(s->unlink(k_root_ino, "h")) == 0);
  _ok(conn().command({"DEL", keys.orphans()}));
  CHECK(_ok(s->rename(k_root_ino, "f", k_root_ino, "g", 0)) == g.ino);
  CHECK(_ok(s->rmdir(k_root_ino, "d")) == d.ino);
  CHECK(_ok(s->unlink(k_root_ino, "g")) == f.ino);
  CHECK(_ok(conn().command({"HLEN", keys.orphans()})).view().integer() == 3);
  // The last close of an orphan whose purge finds ORPHANS damaged frees
  // nothing: the inode and the superblock's count stay as they were.
  const std::string inodes_before(_ok(conn().command({"HGET", keys.sb(), "inodes"})).view().str());
  _ok(conn().command({"DEL", keys.orphans()}));
  _ok(conn().command({"SET", keys.orphans(), "stray"}));
  (void)_ok(s->release_file(f.ino));  // (its last open; whose orphan it is, the damaged ORPHANS does not say)
  CHECK(s->purge(f.ino).code() == EIO);
  CHECK(_ok(conn().command({"EXISTS", keys.inode(f.ino)})).view().integer() == 1);
  CHECK(_ok(conn().command({"HGET", keys.sb(), "inodes"})).view().str() == inodes_before);
}

TEST_CASE_FIXTURE(RedisFixture, "rmdir and link: a damaged field refuses the change before anything is written") {
  auto s = _open(pool, prefix);
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto e = _ok(s->mkdir(d.ino, "e", 0755, k_user));
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  auto field = [&](Ino ino, const char* name) {
    auto r = _ok(conn().command({"HGET", keys.inode(ino), name}));
    return r.view().is_nil() ? std::string("(nil)") : std::string(r.view().str());
  };
  auto entries = [&](Ino dir) { return *_ok(conn().command({"HLEN", keys.dir(dir)})).view().as_int(); };
  const std::string ctime = field(d.ino, "ctime");

  // the parent's gen (rmdir and link count their change in it) and nlink
  // (rmdir takes one off): refused with nothing written, where the old
  // scripts failed at their HINCRBY with the entry already gone or made
  _ok(conn().command({"HSET", keys.inode(d.ino), "gen", "many"}));
  CHECK(s->rmdir(d.ino, "e").code() == EIO);
  CHECK(s->link(f.ino, d.ino, "g").code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(e.ino, "nlink") == "2");
  CHECK(field(f.ino, "nlink") == "1");
  _ok(conn().command({"HSET", keys.inode(d.ino), "gen", "7", "nlink", "three"}));
  CHECK(s->rmdir(d.ino, "e").code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(e.ino, "nlink") == "2");
  CHECK(field(d.ino, "ctime") == ctime);
  _ok(conn().command({"HSET", keys.inode(d.ino), "nlink", "3"}));

  // the linked inode's nlink
  _ok(conn().command({"HSET", keys.inode(f.ino), "nlink", "one"}));
  CHECK(s->link(f.ino, d.ino, "g").code() == EIO);
  CHECK(entries(d.ino) == 1);
  CHECK(field(d.ino, "gen") == "7");
  _ok(conn().command({"HSET", keys.inode(f.ino), "nlink", "1"}));

  // rename counts its change in both parents' gen, and takes a link off
  // the file it replaces
  auto h = _ok(s->mknod(k_root_ino, "h", S_IFREG | 0644, 0, k_user));
  _ok(conn().command({"HSET", keys.inode(d.ino), "gen", "many"}));
  CHECK(s->rename(k_root_ino, "h", d.ino, "h2", 0).code() == EIO);
  CHECK(s->rename(d.ino, "e", d.ino, "e2", 0).code() == EIO);
  CHECK(entries(d.ino) == 1);
  _ok(conn().command({"HSET", keys.inode(d.ino), "gen", "7"}));
  _ok(conn().command({"HSET", keys.inode(f.ino), "nlink", "one"}));
  CHECK(s->rename(k_root_ino, "h", k_root_ino, "f", 0).code() == EIO);
  CHECK(field(h.ino, "nlink") == "1");
  CHECK(_ok(s->lookup(k_root_ino, "h")).ino == h.ino);
  _ok(conn().command({"HSET", keys.inode(f.ino), "nlink", "1"}));
  CHECK(field(d.ino, "gen") == "7");
  CHECK(field(d.ino, "ctime") == ctime);

  // a name taken: EEXIST, nothing counted
  CHECK(s->link(f.ino, d.ino, "e").code() == EEXIST);
  CHECK(field(f.ino, "nlink") == "1");
  CHECK(field(d.ino, "gen") == "7");

  // repaired: both go, and count from what they found
  CHECK(_ok(s->link(f.ino, d.ino, "g")).nlink == 2);
  CHECK(field(d.ino, "gen") == "8");
  _ok(s->rmdir(d.ino, "e"));
  CHECK(field(d.ino, "gen") == "9");
  CHECK(field(d.ino, "nlink") == "2");
  CHECK(_ok(s->getattr(d.ino)).nlink == 2);
  CHECK(entries(d.ino) == 1);
}

TEST_CASE_FIXTURE(RedisFixture, "unlink and rename over a file report the inode they freed") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  auto g = _ok(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user));
  auto h = _ok(s->mknod(k_root_ino, "h", S_IFREG | 0644, 0, k_user));
  Ino freed = 99;
  CHECK(_ok(s->unlink(k_root_ino, "f", &freed)) == 0);
  CHECK(freed == f.ino);
  CHECK(s->getattr(f.ino).code() == ENOENT);
  CHECK(_ok(s->rename(k_root_ino, "g", k_root_ino, "h", 0, &freed)) == 0);
  CHECK(freed == h.ino);
  CHECK(s->getattr(h.ino).code() == ENOENT);
  // held open: an orphan, not freed
  _ok(s->open_file(g.ino));
  CHECK(_ok(s->unlink(k_root_ino, "h", &freed)) == g.ino);
  CHECK(freed == 0);
  CHECK(_ok(s->getattr(g.ino)).nlink == 0);
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto e = _ok(s->mknod(d.ino, "e", S_IFREG | 0644, 0, k_user));
  _ok(s->open_file(e.ino));
  auto x = _ok(s->mknod(d.ino, "x", S_IFREG | 0644, 0, k_user));
  CHECK(_ok(s->rename(d.ino, "x", d.ino, "e", 0, &freed)) == e.ino);
  CHECK(freed == 0);
  CHECK(_ok(s->getattr(x.ino)).nlink == 1);
}

TEST_CASE_FIXTURE(RedisFixture, "orphans of a dead mount are purged by the next one") {
  auto a = _open(pool, prefix);
  _ok(a->heartbeat());
  auto f = _ok(a->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(a->write(f.ino, 0, "data", false));
  _ok(a->open_file(f.ino));
  CHECK(_ok(a->unlink(k_root_ino, "f")) == f.ino);
  auto b = _open(pool, prefix);
  CHECK(_ok(b->purge_dead_orphans()) == 0);  // a is alive
  CHECK(_ok(a->getattr(f.ino)).nlink == 0);
  _ok(a->end_session());  // a "crashes" without purging
  CHECK(_ok(b->purge_dead_orphans()) == 1);
  CHECK(b->getattr(f.ino).code() == ENOENT);
}

TEST_CASE_FIXTURE(RedisFixture, "rename: replace, errors, flags, directories") {
  auto s = _open(pool, prefix);
  auto a = _ok(s->mknod(k_root_ino, "a", S_IFREG | 0644, 0, k_user));
  auto b = _ok(s->mknod(k_root_ino, "b", S_IFREG | 0644, 0, k_user));
  auto d1 = _ok(s->mkdir(k_root_ino, "d1", 0755, k_user));
  auto d2 = _ok(s->mkdir(k_root_ino, "d2", 0755, k_user));
  auto inner = _ok(s->mkdir(d1.ino, "inner", 0755, k_user));

  CHECK(s->rename(k_root_ino, "a", k_root_ino, "b", k_rename_noreplace).code() == EEXIST);
  CHECK(s->rename(k_root_ino, "a", k_root_ino, "nope", k_rename_exchange).code() == ENOENT);
  CHECK(s->rename(k_root_ino, "missing", k_root_ino, "x", 0).code() == ENOENT);
  CHECK(s->rename(k_root_ino, "a", k_root_ino, "d2", 0).code() == EISDIR);
  CHECK(s->rename(k_root_ino, "d2", k_root_ino, "a", 0).code() == ENOTDIR);
  CHECK(s->rename(k_root_ino, "d2", k_root_ino, "d1", 0).code() == ENOTEMPTY);
  CHECK(s->rename(k_root_ino, "d1", inner.ino, "x", 0).code() == EINVAL);
  CHECK(s->rename(k_root_ino, "d1", d1.ino, "x", 0).code() == EINVAL);
  CHECK(_ok(s->rename(k_root_ino, "a", k_root_ino, "a", 0)) == 0);

  // over an existing file: the old one becomes an orphan while open ...
  _ok(s->open_file(b.ino));
  CHECK(_ok(s->rename(k_root_ino, "a", k_root_ino, "b", 0)) == b.ino);
  CHECK(_ok(s->lookup(k_root_ino, "b")).ino == a.ino);
  CHECK(s->lookup(k_root_ino, "a").code() == ENOENT);
  CHECK(_ok(s->getattr(b.ino)).nlink == 0);
  _ok(s->purge(b.ino));
  CHECK(s->getattr(b.ino).code() == ENOENT);
  // ... and is freed by the rename itself when nobody has it open
  auto c = _ok(s->mknod(k_root_ino, "c", S_IFREG | 0644, 0, k_user));
  _ok(s->write(c.ino, 0, "bytes", false));
  _ok(s->setxattr(c.ino, "user.x", "y", 0));
  CHECK(_ok(s->rename(k_root_ino, "b", k_root_ino, "c", 0)) == 0);
  CHECK(s->getattr(c.ino).code() == ENOENT);
  for (const std::string& k : {keys.inode(c.ino), keys.xattr(c.ino), keys.block(c.ino, 0)}) {
    CHECK(_ok(conn().command({"EXISTS", k})).view().integer() == 0);
  }
  CHECK(_ok(conn().command({"HEXISTS", keys.orphans(), std::to_string(c.ino)})).view().integer() == 0);
  _ok(s->rename(k_root_ino, "c", k_root_ino, "b", 0));

  // a directory to another parent: nlinks and parent follow
  CHECK(_ok(s->rename(d1.ino, "inner", d2.ino, "moved", 0)) == 0);
  CHECK(_ok(s->getattr(d1.ino)).nlink == 2);
  CHECK(_ok(s->getattr(d2.ino)).nlink == 3);
  CHECK(_ok(s->getattr(inner.ino)).parent == d2.ino);
  CHECK(_ok(s->lookup(inner.ino, "..")).ino == d2.ino);

  // over an empty directory
  CHECK(_ok(s->rename(k_root_ino, "d1", d2.ino, "moved", 0)) == inner.ino);
  CHECK(_ok(s->getattr(inner.ino)).nlink == 0);
  _ok(s->purge(inner.ino));
  CHECK(s->getattr(inner.ino).code() == ENOENT);
  CHECK(_ok(s->getattr(d2.ino)).nlink == 3);
  CHECK(_ok(s->getattr(k_root_ino)).nlink == 3);

  // exchange a file and a directory across parents
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  CHECK(_ok(s->rename(k_root_ino, "f", d2.ino, "moved", k_rename_exchange)) == 0);
  CHECK(_ok(s->lookup(k_root_ino, "f")).ino == d1.ino);
  CHECK(_ok(s->lookup(d2.ino, "moved")).ino == f.ino);
  CHECK(_ok(s->getattr(d1.ino)).parent == k_root_ino);
  CHECK(_ok(s->getattr(k_root_ino)).nlink == 4);
  CHECK(_ok(s->getattr(d2.ino)).nlink == 2);
  // exchanging a directory into its own subtree
  auto deep = _ok(s->mkdir(d1.ino, "deep", 0755, k_user));
  CHECK(s->rename(k_root_ino, "f", deep.ino, "x", k_rename_exchange).code() == ENOENT);
  _ok(s->mknod(deep.ino, "x", S_IFREG | 0644, 0, k_user));
  CHECK(s->rename(k_root_ino, "f", deep.ino, "x", k_rename_exchange).code() == EINVAL);
}

TEST_CASE_FIXTURE(RedisFixture, "two mounts: stale names are retried, never acted on") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto f1 = _ok(a->mknod(k_root_ino, "x", S_IFREG | 0644, 0, k_user));
  CHECK(_ok(b->lookup(k_root_ino, "x")).ino == f1.ino);  // b remembers x -> f1
  _ok(a->open_file(f1.ino));  // (open: unlink keeps it, an orphan)
  CHECK(_ok(a->unlink(k_root_ino, "x")) == f1.ino);
  auto f2 = _ok(a->mknod(k_root_ino, "x", S_IFREG | 0644, 0, k_user));
  // b's memory says f1; the script answers RETRY and b unlinks f2 (and,
  // nobody holding it open, frees it at once)
  CHECK(_ok(b->unlink(k_root_ino, "x")) == 0);
  CHECK(a->getattr(f2.ino).code() == ENOENT);
  CHECK(_ok(a->getattr(f1.ino)).nlink == 0);
  // directory move checked against a chain that changed under b
  auto p = _ok(a->mkdir(k_root_ino, "p", 0755, k_user));
  auto q = _ok(a->mkdir(k_root_ino, "q", 0755, k_user));
  CHECK(_ok(b->rename(k_root_ino, "q", p.ino, "q", 0)) == 0);  // b: q into p
  CHECK(a->rename(k_root_ino, "p", q.ino, "p", 0).code() == EINVAL);  // a: p into q: a loop
  // inode numbers of the two mounts never collide
  std::set<Ino> seen;
  for (int i = 0; i < 300; ++i) {
    auto x = _ok(a->mknod(k_root_ino, "a" + std::to_string(i), S_IFREG | 0644, 0, k_user));
    auto y = _ok(b->mknod(k_root_ino, "b" + std::to_string(i), S_IFREG | 0644, 0, k_user));
    CHECK(seen.insert(x.ino).second);
    CHECK(seen.insert(y.ino).second);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "concurrent appends from two mounts lose nothing") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto f = _ok(a->mknod(k_root_ino, "log", S_IFREG | 0644, 0, k_user));
  auto writer = [&](Store& s, char c) {
    for (int i = 0; i < 200; ++i) {
      REQUIRE(s.write(f.ino, 0, std::string(10, c), true).ok());
    }
  };
  std::thread ta(writer, std::ref(*a), 'a');
  std::thread tb(writer, std::ref(*b), 'b');
  ta.join();
  tb.join();
  std::string all = _read_all(*a, f.ino);
  REQUIRE(all.size() == 4000);
  for (std::size_t i = 0; i < all.size(); i += 10) {
    CHECK(all.substr(i, 10) == std::string(10, all[i]));  // each record whole
  }
}

TEST_CASE_FIXTURE(RedisFixture, "a freeze holds changes back until it is lifted") {
  auto s = _open(pool, prefix);
  _ok(conn().command({"SET", keys.freeze(), "test", "PX", "5000"}));
  std::atomic<bool> done{false};
  std::thread t([&] {
    auto r = s->mkdir(k_root_ino, "later", 0755, k_user);
    CHECK(r.ok());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(done.load());
  CHECK(_ok(s->getattr(k_root_ino)).nlink == 2);  // reads go on
  _ok(conn().command({"DEL", keys.freeze()}));
  t.join();
  CHECK(done.load());
  CHECK(_ok(s->lookup(k_root_ino, "later")).is_dir());
}

TEST_CASE_FIXTURE(RedisFixture, "a freeze no freezer set holds nothing up") {
  // A freezer sets its freeze 10 s ahead and refreshes it (snapshot.hpp):
  // one with no time to live, or set further ahead than any holder sets a
  // lease, is damage or another program's. Every change script and every
  // freezer takes it for none (prelude.lua, freeze_alive), where it would
  // hold every change back, each for 120 s and then EBUSY, for as long.
  auto s = _open(pool, prefix);
  Ino f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user)).ino;
  std::vector<std::string> lease;
  SUBCASE("no time to live") {}
  SUBCASE("a year ahead") { lease = {"PX", std::to_string(365LL * 24 * 3600 * 1000)}; }
  std::vector<std::string> set{"SET", keys.freeze(), "not a freezer's"};
  set.insert(set.end(), lease.begin(), lease.end());
  _ok(conn().command(Args(set)));
  _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  _ok(s->write(f, 0, "data", false));
  _ok(s->rename(k_root_ino, "d", k_root_ino, "e", 0));
  CHECK(_ok(s->unlink(k_root_ino, "f")) == 0);
  CHECK(_ok(s->lookup(k_root_ino, "e")).is_dir());
  // nor a snapshot (cow_begin.lua), which has the changes
  const std::string snap = extra_prefix();
  _ok(copy_filesystem(pool, prefix, snap, CopyOptions{false, false, true}));
  CHECK(_ok(conn().command({"HEXISTS", Keys(snap).dir(k_root_ino), "e"})).view().integer() == 1);
  // a freezer replaces it, and the changes then wait for that one
  auto c = _ok(pool.acquire());
  Freeze mine = _ok(Freeze::acquire(*c, keys, std::chrono::milliseconds(200)));
  const long long pttl = _ok(conn().command({"PTTL", keys.freeze()})).view().integer();
  CHECK(pttl > 0);
  CHECK(pttl <= k_freeze_ttl_ms);
  std::atomic<bool> done{false};
  std::thread t([&] {
    CHECK(s->rmdir(k_root_ino, "e").ok());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(done.load());
  _ok(mine.release(*c));
  t.join();
  CHECK(s->lookup(k_root_ino, "e").code() == ENOENT);
}

TEST_CASE_FIXTURE(RedisFixture, "read-only stores refuse every change") {
  _open(pool, prefix);
  StoreOptions o;
  o.read_only = true;
  auto s = _open(pool, prefix, o);
  CHECK(s->mkdir(k_root_ino, "x", 0755, k_user).code() == EROFS);
  CHECK(s->mknod(k_root_ino, "x", S_IFREG | 0644, 0, k_user).code() == EROFS);
  CHECK(s->setxattr(k_root_ino, "user.x", "v", 0).code() == EROFS);
  SetAttrRequest r;
  r.mode = 0700;
  CHECK(s->setattr(k_root_ino, r).code() == EROFS);
  CHECK(s->rename(k_root_ino, "a", k_root_ino, "b", 0).code() == EROFS);
}

// What someone else wrote on the server that the kernel cannot take: a
// symlink's target (readlink of an inode the kernel still holds) and an
// attribute's value are EIO saying why; a listing of attributes leaves out
// the names it cannot take (LeftOut) and lists the others.
TEST_CASE_FIXTURE(RedisFixture, "targets, attribute values and names the kernel cannot take") {
  auto s = _open(pool, prefix);
  auto l = _ok(s->symlink(k_root_ino, "l", "target", k_user));
  std::string target;
  SUBCASE("too long") { target = std::string(k_symlink_max + 1, 't'); }
  SUBCASE("empty") { target = ""; }
  SUBCASE("a NUL byte") { target = std::string("a\0b", 3); }
  _ok(conn().command({"HSET", keys.inode(l.ino), "target", target}));
  auto r = s->readlink(l.ino);
  REQUIRE(!r.ok());
  CHECK(r.code() == EIO);
  CHECK(r.error().message.find("inode " + std::to_string(l.ino) + ": ") == 0);

  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->setxattr(f.ino, "user.a", "1", 0));
  _ok(conn().command({"HSET", keys.xattr(f.ino), "user.big", std::string(k_xattr_value_max + 1, 'v')}));
  CHECK(s->getxattr(f.ino, "user.big").code() == EIO);
  _ok(conn().command({"HSET", keys.xattr(f.ino), "", "v", "plain", "v", "user." + std::string(251, 'n'), "v"}));
  LeftOut left_out;
  auto names = _ok(s->listxattr(f.ino, left_out));
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"user.a", "user.big"});
  CHECK(left_out.count == 3);
  CHECK(!left_out.why.empty());
}

TEST_CASE_FIXTURE(RedisFixture, "xattrs, setattr and times") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  CHECK(s->getxattr(f.ino, "user.a").code() == ENODATA);
  CHECK(s->setxattr(f.ino, "plain", "1", 0).code() == EOPNOTSUPP);
  CHECK(s->setxattr(f.ino, "foo.bar", "1", 0).code() == EOPNOTSUPP);
  CHECK(s->getxattr(f.ino, "foo.bar").code() == EOPNOTSUPP);
  CHECK(s->setxattr(f.ino, "user.a", "1", k_xattr_replace).code() == ENODATA);
  _ok(s->setxattr(f.ino, "user.a", std::string("\0bin\xff", 5), k_xattr_create));
  CHECK(s->setxattr(f.ino, "user.a", "2", k_xattr_create).code() == EEXIST);
  CHECK(_ok(s->getxattr(f.ino, "user.a")) == std::string("\0bin\xff", 5));
  LeftOut left_out;
  CHECK(_ok(s->listxattr(f.ino, left_out)) == std::vector<std::string>{"user.a"});
  CHECK(left_out.count == 0);
  CHECK(s->setxattr(f.ino, "user.big", std::string(65537, 'v'), 0).code() == E2BIG);
  // security.* names are answered from the superblock's flag until a file
  // has one, here or on another mount; until then there are no security
  // labels at all (EOPNOTSUPP, which ls remembers for the whole device)
  CHECK(s->getxattr(f.ino, "security.capability").code() == ENODATA);
  CHECK(s->getxattr(f.ino, "security.selinux").code() == EOPNOTSUPP);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto other = _open(pool_b, prefix);
  CHECK(other->getxattr(f.ino, "security.capability").code() == ENODATA);
  CHECK(other->getxattr(f.ino, "security.selinux").code() == EOPNOTSUPP);
  _ok(s->setxattr(f.ino, "security.capability", "cap", 0));
  CHECK(_ok(s->getxattr(f.ino, "security.capability")) == "cap");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(_ok(other->getxattr(f.ino, "security.capability")) == "cap");
  CHECK(other->getxattr(f.ino, "security.selinux").code() == ENODATA);
  _ok(s->removexattr(f.ino, "user.a"));
  CHECK(s->removexattr(f.ino, "user.a").code() == ENODATA);

  SetAttrRequest r;
  r.mode = 04755;
  r.uid = 5;
  r.gid = 6;
  r.atime = SetAttrRequest::Time::Set;
  r.atime_ns = 1234567890123456789;
  r.mtime = SetAttrRequest::Time::Set;
  r.mtime_ns = 987654321;
  auto a = _ok(s->setattr(f.ino, r));
  CHECK((a.mode & 07777) == 04755);
  CHECK(a.is_reg());
  CHECK(a.uid == 5);
  CHECK(a.gid == 6);
  CHECK(a.atime_ns == 1234567890123456789);
  CHECK(a.mtime_ns == 987654321);
  CHECK(a.ctime_ns > f.ctime_ns - 1);
  SetAttrRequest now;
  now.mtime = SetAttrRequest::Time::Now;
  auto b = _ok(s->setattr(f.ino, now));
  CHECK(b.mtime_ns > 987654321);
  CHECK(b.atime_ns == 1234567890123456789);
}

TEST_CASE_FIXTURE(RedisFixture, "readdir pages through a large directory") {
  auto s = _open(pool, prefix);
  auto d = _ok(s->mkdir(k_root_ino, "big", 0755, k_user));
  std::vector<std::string> expect;
  for (int i = 0; i < 700; ++i) {
    expect.push_back("file-" + std::to_string(i));
    _ok(s->mknod(d.ino, expect.back(), S_IFREG | 0644, 0, k_user));
  }
  std::sort(expect.begin(), expect.end());
  CHECK(_names(*s, d.ino) == expect);
  auto page = _ok(s->readdir(d.ino, 0, 100, true));
  REQUIRE_FALSE(page.entries.empty());
  for (const auto& e : page.entries) {
    REQUIRE(e.attr);
    CHECK(e.attr->ino == e.ino);
    CHECK(e.type == S_IFREG);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "readdir: a damaged inode is listed without its attributes, and hides nothing") {
  auto s = _open(pool, prefix);
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto a = _ok(s->mknod(d.ino, "a", S_IFREG | 0644, 0, k_user));
  auto wrong = _ok(s->mknod(d.ino, "wrongtype", S_IFREG | 0644, 0, k_user));
  auto bad = _ok(s->mknod(d.ino, "malformed", S_IFREG | 0644, 0, k_user));
  auto gone = _ok(s->mknod(d.ino, "gone", S_IFREG | 0644, 0, k_user));
  _ok(conn().command({"DEL", keys.inode(wrong.ino)}));
  _ok(conn().command({"SADD", keys.inode(wrong.ino), "x"}));
  _ok(conn().command({"HSET", keys.inode(bad.ino), "mode", "rwx"}));
  _ok(conn().command({"DEL", keys.inode(gone.ino)}));  // as if removed between the two round trips
  for (bool plus : {true, false}) {
    CAPTURE(plus);
    auto fresh = _open(pool, prefix);  // nothing cached: every entry read from the server
    auto page = _ok(fresh->readdir(d.ino, 0, 100, plus));
    std::map<std::string, DirEntry> by_name;
    for (auto& e : page.entries) {
      by_name[e.name] = e;
    }
    REQUIRE(by_name.count("a") == 1);
    CHECK(by_name["a"].damage.empty());
    CHECK(by_name["a"].type == S_IFREG);
    CHECK(bool(by_name["a"].attr) == plus);
    REQUIRE(by_name.count("wrongtype") == 1);
    CHECK_FALSE(by_name["wrongtype"].attr);
    CHECK(by_name["wrongtype"].type == 0);
    CHECK(by_name["wrongtype"].damage.find(keys.inode(wrong.ino)) != std::string::npos);
    CHECK(by_name["wrongtype"].damage.find("WRONGTYPE") != std::string::npos);
    CHECK(by_name.count("gone") == 0);  // removed: left out, not damaged
    CHECK(page.entries.size() == 3);
    if (plus) {
      REQUIRE(by_name.count("malformed") == 1);
      CHECK_FALSE(by_name["malformed"].attr);
      CHECK(by_name["malformed"].damage.find("mode") != std::string::npos);
    } else {
      CHECK(by_name["malformed"].type == S_IFREG);  // without plus only its type is read, and it is sound
      CHECK(by_name["malformed"].damage.empty());
    }
    // the lookups: the damaged ones fail with EIO naming the inode
    auto lw = fresh->lookup(d.ino, "wrongtype");
    REQUIRE_FALSE(lw.ok());
    CHECK(lw.code() == EIO);
    CHECK(lw.error().message.find(keys.inode(wrong.ino)) != std::string::npos);
    CHECK(fresh->lookup(d.ino, "malformed").code() == EIO);
    CHECK(_ok(fresh->lookup(d.ino, "a")).ino == a.ino);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "readdir plus: attributes this mount read serve a listing again, names never") {
  StoreOptions opts;
  opts.attr_cache_seconds = 60;
  auto s = _open(pool, prefix, opts);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto other = _open(pool_b, prefix);  // another mount
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto f = _ok(s->mknod(d.ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->mknod(d.ino, "gone", S_IFREG | 0644, 0, k_user));
  _ok(s->mkdir(d.ino, "sub", 0700, k_user));
  auto list = [&](Store& st, std::uint64_t& trips) {
    std::map<std::string, DirEntry> out;
    Ino parent = 0;
    const auto before = redis_counters().round_trips;
    auto page = _ok(st.readdir(d.ino, 0, 256, true, &parent));
    trips = redis_counters().round_trips - before;
    CHECK(parent == k_root_ino);
    CHECK(page.next_cursor == 0);
    for (auto& e : page.entries) {
      REQUIRE(e.attr);
      CHECK(e.attr->ino == e.ino);
      out[e.name] = e;
    }
    return out;
  };
  std::uint64_t trips = 0;
  auto first = list(*s, trips);
  CHECK(trips == 2);  // the names (and the directory's fields), then the attributes
  CHECK(first.size() == 3);
  CHECK(first["f"].age == 0);
  // what a listing read serves the next listing, never getattr (the
  // kernel's getattr after an opendir must see another mount's rmdir)
  double age = -1;
  CHECK(_ok(s->getattr(f.ino, &age)).ino == f.ino);
  CHECK(age == 0);
  // at once again (rm -rf opens every directory twice): the names only
  auto again = list(*s, trips);
  CHECK(trips == 1);
  CHECK(again.size() == 3);
  CHECK(again["f"].age > 0);
  CHECK(again["f"].attr->mode == first["f"].attr->mode);

  // names come from the server every time: another mount's new and
  // removed names show at once, the new one with attributes just read
  _ok(other->mknod(d.ino, "theirs", S_IFREG | 0600, 0, k_user));
  _ok(other->unlink(d.ino, "gone"));
  auto changed = list(*s, trips);
  CHECK(trips == 2);
  CHECK(changed.count("gone") == 0);
  REQUIRE(changed.count("theirs") == 1);
  CHECK(changed["theirs"].age == 0);
  CHECK((changed["theirs"].attr->mode & 07777) == 0600);

  // a change made here drops what the listing kept of that inode
  SetAttrRequest chmod;
  chmod.mode = 0640;
  _ok(s->setattr(f.ino, chmod));
  auto mine = list(*s, trips);
  CHECK((mine["f"].attr->mode & 07777) == 0640);

  // another mount's change to an entry shows within the ttl, as in the
  // kernel's attribute cache (the age says how old), and at once on a
  // mount without one
  chmod.mode = 0600;
  _ok(other->setattr(f.ino, chmod));
  auto cached = list(*s, trips);
  CHECK(trips == 1);
  CHECK(cached["f"].age > 0);
  auto plain = _open(pool, prefix);
  auto fresh = list(*plain, trips);
  CHECK(trips == 2);
  CHECK((fresh["f"].attr->mode & 07777) == 0600);
  CHECK(fresh["f"].age == 0);
  _ok(plain->getattr(d.ino, &age));
  CHECK(age == 0);  // no cache: it asks

  // a file whose changes wait here (gathered) is listed with them, never
  // from what a listing kept
  auto g = _ok(s->create(d.ino, "g", S_IFREG | 0644, k_user, true));
  REQUIRE(s->gathering(g.ino));
  _ok(s->write(g.ino, 0, "12345", false));
  CHECK(list(*s, trips)["g"].attr->size == 5);
  _ok(s->write(g.ino, 5, "67890", false));
  CHECK(list(*s, trips)["g"].attr->size == 10);
  _ok(s->flush(g.ino));
  CHECK(list(*s, trips)["g"].attr->size == 10);
  _ok(other->write(g.ino, 10, "x", false));
  CHECK(list(*plain, trips)["g"].attr->size == 11);

  // a directory removed by another mount fails the listing with ENOENT,
  // whatever the cache holds of it
  _ok(other->mknod(d.ino, "x", S_IFREG | 0644, 0, k_user));
  for (const char* name : {"f", "g", "theirs", "x"}) {
    _ok(other->unlink(d.ino, name));
  }
  _ok(other->rmdir(d.ino, "sub"));
  CHECK(_ok(other->rmdir(k_root_ino, "d")) == d.ino);
  Ino parent = 0;
  CHECK(s->readdir(d.ino, 0, 256, true, &parent).code() == ENOENT);  // removed, not purged yet
  _ok(other->purge(d.ino));                                          // (its kernel forgot it)
  CHECK(s->readdir(d.ino, 0, 256, true, &parent).code() == ENOENT);
}

TEST_CASE_FIXTURE(RedisFixture, "rmdir with purges in front: the removed directories go in its round trip") {
  auto s = _open(pool, prefix);
  _ok(s->mkdir(k_root_ino, "warm", 0755, k_user));  // (a script's first use may load it)
  Ino warm = _ok(s->rmdir(k_root_ino, "warm"));
  _ok(s->purge(warm));
  auto top = _ok(s->mkdir(k_root_ino, "top", 0755, k_user));
  auto a = _ok(s->mkdir(top.ino, "a", 0755, k_user));
  auto b = _ok(s->mkdir(top.ino, "b", 0755, k_user));
  _ok(s->setxattr(a.ino, "user.k", "v", 0));
  // rmdir always orphans the directory: a process may be in it
  CHECK(_ok(s->rmdir(top.ino, "a")) == a.ino);
  CHECK(_ok(s->rmdir(top.ino, "b")) == b.ino);
  CHECK(_ok(conn().command({"HEXISTS", keys.orphans(), std::to_string(a.ino)})).view().integer() == 1);
  std::vector<Store::Release> purges{{a.ino, false, true}, {b.ino, false, true}};
  std::vector<Result<Store::Released>> released;
  const auto trips = redis_counters().round_trips;
  _ok(s->rmdir(k_root_ino, "top", purges, released));
  CHECK(redis_counters().round_trips == trips + 1);
  REQUIRE(released.size() == 2);
  for (auto& r : released) {
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(*r == Store::Released::done);
  }
  for (Ino ino : {a.ino, b.ino}) {
    CHECK(_ok(conn().command({"EXISTS", keys.inode(ino), keys.xattr(ino), keys.dir(ino)})).view().integer() == 0);
    CHECK(_ok(conn().command({"HEXISTS", keys.orphans(), std::to_string(ino)})).view().integer() == 0);
  }
  _ok(s->purge(top.ino));

  // a purge the first attempt cannot finish (a file with blocks) says so:
  // the caller goes on with Store::purge
  auto f = _ok(s->create(k_root_ino, "f", S_IFREG | 0644, k_user));
  _ok(s->write(f.ino, 0, std::string(2 << 20, 'x'), false));
  CHECK(_ok(s->unlink(k_root_ino, "f")) == f.ino);  // open here: an orphan
  std::vector<Store::Release> closing{{f.ino}};
  REQUIRE(s->release_files(closing)[0].ok());
  std::vector<Store::Release> purge{{f.ino, false, true}};
  auto r = s->release_files(purge);
  REQUIRE_MESSAGE(r[0].ok(), r[0].error().message);
  CHECK(*r[0] == Store::Released::purge);
  CHECK(_ok(conn().command({"EXISTS", keys.inode(f.ino)})).view().integer() == 1);
  _ok(s->purge(f.ino));
  CHECK(_ok(conn().command({"EXISTS", keys.inode(f.ino)})).view().integer() == 0);

  // an rmdir refused before anything went still sends them
  _ok(s->mkdir(k_root_ino, "c", 0755, k_user));
  Ino c = _ok(s->rmdir(k_root_ino, "c"));
  std::vector<Store::Release> alone{{c, false, true}};
  CHECK(s->rmdir(k_root_ino, "missing", alone, released).code() == ENOENT);
  REQUIRE(released.size() == 1);
  REQUIRE(released[0].ok());
  CHECK(*released[0] == Store::Released::done);
  CHECK(_ok(conn().command({"EXISTS", keys.inode(c)})).view().integer() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "a full server is ENOSPC and leaves the filesystem whole") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  auto info = _ok(conn().command({"INFO", "memory"}));
  std::string text(info.view().str());
  auto pos = text.find("used_memory:");
  REQUIRE(pos != std::string::npos);
  long long used = std::stoll(text.substr(pos + 12));
  std::string limit = std::to_string(used + (4 << 20));
  _ok(conn().command({"CONFIG", "SET", "maxmemory", limit}));
  Status last;
  std::uint64_t off = 0;
  for (int i = 0; i < 64 && last.ok(); ++i) {
    auto r = s->write(f.ino, off, std::string(1 << 20, 'x'), false);
    if (r.ok()) {
      off += 1 << 20;
    } else {
      last = std::move(r).error();
    }
  }
  _ok(conn().command({"CONFIG", "SET", "maxmemory", "0"}));
  CHECK(last.code() == ENOSPC);
  auto a = _ok(s->getattr(f.ino));
  CHECK(a.size == off);  // every write that reported success, none that failed
  CHECK(_read_all(*s, f.ino, 1 << 26) == std::string(off, 'x'));
}


namespace {

// Sets maxmemory to 1 byte (a server over its limit refuses every command
// that may grow memory) until it goes out of scope.
struct FullServer {
  explicit FullServer(Connection& c) : m_c(c) { _ok(c.command({"CONFIG", "SET", "maxmemory", "1"})); }
  ~FullServer() { (void)m_c.command({"CONFIG", "SET", "maxmemory", "0"}); }
  FullServer(const FullServer&) = delete;
  FullServer& operator=(const FullServer&) = delete;
  Connection& m_c;
};

}  // namespace

TEST_CASE_FIXTURE(RedisFixture, "on a full server only growth fails: opens, reads, truncation and removal work") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->create(k_root_ino, "f", 0644, k_user));
  _ok(s->write(f.ino, 0, std::string(200000, 'a'), false));
  CHECK(_ok(s->release_file(f.ino)) == false);
  auto g = _ok(s->create(k_root_ino, "g", 0644, k_user));
  _ok(s->write(g.ino, 0, "gone soon", false));
  CHECK(_ok(s->release_file(g.ino)) == false);
  auto d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  {
    FullServer full(conn());
    CHECK(conn().command({"SET", prefix + "-probe", "x"}).code() == ENOSPC);
    CHECK(s->write(f.ino, 200000, "more", false).code() == ENOSPC);
    _ok(s->open_file(f.ino));  // recorded: an open is not growth
    CHECK(_ok(conn().command({"HGET", keys.open(f.ino), s->session()})).view().str() == "1");
    CHECK(_read_all(*s, f.ino) == std::string(200000, 'a'));  // reads too
    SetAttrRequest shrink;
    shrink.size = 1000;
    CHECK(_ok(s->setattr(f.ino, shrink)).size == 1000);  // inside a block
    SetAttrRequest grow;
    grow.size = 1 << 20;
    CHECK(s->setattr(f.ino, grow).code() == ENOSPC);
    SetAttrRequest chmod;
    chmod.mode = 0600;
    CHECK((_ok(s->setattr(f.ino, chmod)).mode & 07777) == 0600);
    CHECK(_ok(s->release_file(f.ino)) == false);  // the close is counted too
    CHECK(_ok(conn().command({"EXISTS", keys.open(f.ino)})).view().integer() == 0);
    _ok(s->open_file(g.ino));
    CHECK(_ok(s->unlink(k_root_ino, "g")) == g.ino);
    CHECK(_ok(s->release_file(g.ino)) == true);
    _ok(s->purge(g.ino));
    CHECK(s->getattr(g.ino).code() == ENOENT);
    CHECK(_ok(s->rmdir(k_root_ino, "d")) == d.ino);
    _ok(s->purge(d.ino));
    CHECK(s->create(k_root_ino, "new", 0644, k_user).code() == ENOSPC);
    // the session stays alive (else other mounts would free what it holds),
    // and a read-write mount can start
    _ok(conn().command({"PEXPIRE", keys.mount(s->session()), "1000"}));
    _ok(s->heartbeat());
    CHECK(_ok(conn().command({"PTTL", keys.mount(s->session())})).view().integer() > 1000);
    auto again = _open(pool, prefix);
    _ok(again->end_session());
  }
  CHECK(_read_all(*s, f.ino) == std::string(1000, 'a'));
  for (const auto& k : keys_under(prefix)) {
    auto pk = parse_relative_key(*keys.relative(k));
    CHECK(pk.kind != KeyKind::Open);
    CHECK(pk.kind != KeyKind::Orphans);
  }
}

// fallocate(2)'s FALLOC_FL_PUNCH_HOLE (the mount's cases, against a local
// file: tests/mount/punch_hole.sh): damage, a full server, the kill, a
// writeback mount's times.
TEST_CASE_FIXTURE(RedisFixture, "punch_hole: damaged blocks, a full server, setuid, a writeback mount's times") {
  StoreOptions o;
  o.mkfs_block_size = 4096;
  auto s = _open(pool, prefix, o);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 06775, 0, k_user));
  _ok(s->write(f.ino, 0, std::string(6 * 4096, 'a'), false));
  auto bytes = [&](const std::string& key) {
    return std::string(_ok(conn().command({"HGET", key, "bytes"})).view().str());
  };
  // an edge block that is not a string refuses the punch whole: nothing changed
  _ok(conn().command({"DEL", keys.block(f.ino, 1)}));
  _ok(conn().command({"HSET", keys.block(f.ino, 1), "x", "y"}));
  const std::string sb_bytes = bytes(keys.sb());
  const Attr before = _ok(s->getattr(f.ino));
  Status refused = s->punch_hole(f.ino, 4096 + 10, 3 * 4096, nullptr);
  CHECK(refused.code() == EIO);
  CHECK(refused.error().message.find("is not a string") != std::string::npos);
  CHECK(_ok(conn().command({"STRLEN", keys.block(f.ino, 2)})).view().integer() == 4096);
  CHECK(bytes(keys.sb()) == sb_bytes);
  CHECK(_ok(s->getattr(f.ino)).mtime_ns == before.mtime_ns);
  // covered whole, it goes (it held no bytes of the file: nothing counted for it)
  _ok(s->punch_hole(f.ino, 4096, 2 * 4096 + 10, nullptr));
  CHECK(_ok(conn().command({"EXISTS", keys.block(f.ino, 1), keys.block(f.ino, 2)})).view().integer() == 0);
  CHECK(_ok(conn().command({"GETRANGE", keys.block(f.ino, 3), "0", "10"})).view().str() ==
        std::string(10, '\0') + "a");
  CHECK(bytes(keys.sb()) == std::to_string(std::stoll(sb_bytes) - 4096));
  CHECK(bytes(keys.inode(f.ino)) == std::to_string(5 * 4096));  // (the damaged one's count is fsck's to mend)
  // on a full server punching works (it frees), and a kill drops setuid and
  // setgid (group-executable) with it
  {
    FullServer full(conn());
    WriteKill kill{true};
    _ok(s->punch_hole(f.ino, 5 * 4096 - 1, 1 << 30, &kill));
    CHECK(kill.killed);
  }
  CHECK(_ok(s->getattr(f.ino)).mode == (S_IFREG | 0775));
  CHECK(_ok(s->getattr(f.ino)).size == 6 * 4096);
  CHECK(_ok(conn().command({"STRLEN", keys.block(f.ino, 4)})).view().integer() == 4095);
  CHECK(_ok(conn().command({"EXISTS", keys.block(f.ino, 5)})).view().integer() == 0);
  WriteKill again{true};
  _ok(s->punch_hole(f.ino, 0, 1, &again));
  CHECK_FALSE(again.killed);  // nothing left to drop
  CHECK(_read_all(*s, f.ino) == std::string(1, '\0') + std::string(4095, 'a') + std::string(2 * 4096, '\0') +
                                    std::string(10, '\0') + std::string(4086, 'a') + std::string(4095, 'a') +
                                    std::string(4097, '\0'));
  // a removed file is ESTALE; a length of 0 EINVAL
  auto g = _ok(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user));
  _ok(s->write(g.ino, 0, "gone", false));
  CHECK(s->punch_hole(g.ino, 0, 0, nullptr).code() == EINVAL);
  _ok(conn().command({"DEL", keys.inode(g.ino)}));
  CHECK(s->punch_hole(g.ino, 0, 1, nullptr).code() == ESTALE);
  // a writeback mount's punch leaves the times to the kernel and counts
  // the change in 'gen' (an incremental dump's comparison sees it)
  s.reset();
  auto wb = _open(pool, prefix, _writeback_options());
  const Attr kept = _ok(wb->getattr(f.ino));
  const std::string gen(_ok(conn().command({"HGET", keys.inode(f.ino), "gen"})).view().str());
  _ok(wb->punch_hole(f.ino, 4096 * 3, 4096, nullptr));
  CHECK(_ok(conn().command({"EXISTS", keys.block(f.ino, 3)})).view().integer() == 0);
  CHECK(std::string(_ok(conn().command({"HGET", keys.inode(f.ino), "gen"})).view().str()) != gen);
  CHECK(std::string(_ok(conn().command({"HGET", keys.inode(f.ino), "mtime"})).view().str()) ==
        std::to_string(kept.mtime_ns));
}

// copy_file_range(2) on the server (the mount's cases, against a local
// file: tests/mount/copy_range.sh; random ones: fsx.py).
TEST_CASE_FIXTURE(RedisFixture, "copy_range: COPY of aligned blocks, holes, damage, a full server, steps") {
  StoreOptions o;
  o.mkfs_block_size = 4096;
  auto s = _open(pool, prefix, o);
  auto a = _ok(s->mknod(k_root_ino, "a", S_IFREG | 0644, 0, k_user));
  auto b = _ok(s->mknod(k_root_ino, "b", S_IFREG | 06775, 0, k_user));
  std::string data;
  for (int i = 0; i < 3 * 4096 + 50; ++i) {
    data.push_back(static_cast<char>('a' + i % 26));
  }
  _ok(s->write(a.ino, 0, data, false));
  _ok(s->write(a.ino, 10 * 4096, "far", false));  // blocks 4-9 are holes
  const std::string full = _read_all(*s, a.ino);
  // aligned: blocks copied whole, holes stay holes, the kill asked for
  WriteKill kill{true};
  CHECK(_ok(s->copy_range(a.ino, 0, b.ino, 0, 1 << 20, &kill)) == full.size());
  CHECK(kill.killed);
  CHECK(_ok(s->getattr(b.ino)).mode == (S_IFREG | 0775));
  CHECK(_read_all(*s, b.ino) == full);
  CHECK(_ok(conn().command({"EXISTS", keys.block(b.ino, 5)})).view().integer() == 0);
  CHECK(std::string(_ok(conn().command({"HGET", keys.inode(b.ino), "bytes"})).view().str()) ==
        std::to_string(3 * 4096 + 50 + 3));
  // unaligned, within one file, ranges apart
  CHECK(_ok(s->copy_range(b.ino, 5, b.ino, 2 * 4096 + 100, 4096, nullptr)) == 4096);
  std::string want = full;
  want.replace(2 * 4096 + 100, 4096, full.substr(5, 4096));
  CHECK(_read_all(*s, b.ino) == want);
  // at and past the source's end: 0, and what is left
  CHECK(_ok(s->copy_range(a.ino, full.size(), b.ino, 0, 10, nullptr)) == 0);
  CHECK(_ok(s->copy_range(a.ino, 0, b.ino, 0, 0, nullptr)) == 0);
  CHECK(_ok(s->copy_range(a.ino, full.size() - 2, b.ino, 0, 10, nullptr)) == 2);
  // a source block of another type refuses the copy whole: nothing written
  auto c = _ok(s->mknod(k_root_ino, "c", S_IFREG | 0644, 0, k_user));
  _ok(s->write(c.ino, 0, "keep", false));
  _ok(conn().command({"DEL", keys.block(a.ino, 1)}));
  _ok(conn().command({"SADD", keys.block(a.ino, 1), "x"}));
  Result<std::uint64_t> refused = s->copy_range(a.ino, 0, c.ino, 0, 3 * 4096, nullptr);
  CHECK(refused.code() == EIO);
  CHECK(_read_all(*s, c.ino) == "keep");
  _ok(conn().command({"DEL", keys.block(a.ino, 1)}));
  // on a full server a copy is growth: ENOSPC, nothing written
  {
    FullServer full_server(conn());
    CHECK(s->copy_range(a.ino, 0, c.ino, 0, 4096, nullptr).code() == ENOSPC);
  }
  CHECK(_read_all(*s, c.ino) == "keep");
  // more pieces than one step takes: answered short
  auto big = _ok(s->mknod(k_root_ino, "big", S_IFREG | 0644, 0, k_user));
  _ok(s->write(big.ino, 0, std::string(1500 * 4096, 'z'), false));
  std::uint64_t first = _ok(s->copy_range(big.ino, 1, c.ino, 0, 1500 * 4096 - 1, nullptr));
  CHECK(first > 0);
  CHECK(first < 1500 * 4096 - 1);
  CHECK(_ok(s->getattr(c.ino)).size == first);
  // a removed source is ESTALE
  _ok(conn().command({"DEL", keys.inode(big.ino)}));
  CHECK(s->copy_range(big.ino, 0, c.ino, 0, 10, nullptr).code() == ESTALE);
}

TEST_CASE_FIXTURE(RedisFixture, "a block key of another type is EIO, never the file's bytes") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  const std::uint64_t bs = s->block_size();
  _ok(s->write(f.ino, 0, std::string(2 * bs + 10, 'b'), false));
  _ok(conn().command({"DEL", keys.block(f.ino, 1)}));
  _ok(conn().command({"HSET", keys.block(f.ino, 1), "x", "y"}));
  std::string out;
  Status whole = s->read(f.ino, 0, 3 * bs, out);
  CHECK(whole.code() == EIO);
  CHECK(whole.error().message.find("block 1") != std::string::npos);
  CHECK(out.find("WRONGTYPE") == std::string::npos);
  CHECK(s->read(f.ino, bs + 5, 10, out).code() == EIO);
  _ok(s->read(f.ino, 0, 10, out));  // the other blocks still read
  CHECK(out == std::string(10, 'b'));
  {
    FullServer full(conn());  // the script that reads on a full server too
    CHECK(s->read(f.ino, bs + 5, 10, out).code() == EIO);
  }
  // the inode hash of another type, and a size that is no number
  auto g = _ok(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user));
  _ok(conn().command({"HSET", keys.inode(g.ino), "size", "18446744073709551615"}));
  Status big = s->read(g.ino, 0, 10, out);
  CHECK(big.code() == EIO);
  CHECK(big.error().message.find("size") != std::string::npos);
}


TEST_CASE_FIXTURE(RedisFixture, "a file open on one mount outlives an unlink through another") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto f = _ok(a->create(k_root_ino, "f", 0644, k_user));  // created open by a
  _ok(a->write(f.ino, 0, "payload", false));
  _ok(b->open_file(f.ino));
  CHECK(_ok(a->release_file(f.ino)) == false);
  CHECK(_ok(a->unlink(k_root_ino, "f")) == f.ino);
  _ok(a->purge(f.ino));  // a is done with it, b is not: handed to b
  CHECK(_ok(conn().command({"HGET", keys.orphans(), std::to_string(f.ino)})).view().str() == b->session());
  CHECK(_read_all(*b, f.ino) == "payload");
  _ok(b->write(f.ino, 7, "+more", false));
  CHECK(_ok(b->release_file(f.ino)) == true);  // b's last close: b frees it
  _ok(b->purge(f.ino));
  CHECK(b->getattr(f.ino).code() == ENOENT);
  for (const auto& k : keys_under(prefix)) {
    auto pk = parse_relative_key(*keys.relative(k));
    CHECK(pk.ino != f.ino);  // no INODE, BLK, OPEN of it
    CHECK(pk.kind != KeyKind::Orphans);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "release_files: many releases in one pipeline, one result each") {
  auto s = _open(pool, prefix);
  auto kept = _ok(s->create(k_root_ino, "kept", 0644, k_user));      // created open
  auto twice = _ok(s->create(k_root_ino, "twice", 0644, k_user));    // and opened again
  auto gone = _ok(s->create(k_root_ino, "gone", 0644, k_user));      // unlinked while open
  _ok(s->open_file(twice.ino));
  CHECK(_ok(s->unlink(k_root_ino, "gone")) == gone.ino);
  std::vector<Store::Release> batch{{kept.ino}, {twice.ino}, {gone.ino}, {twice.ino}};
  auto done = s->release_files(batch);
  REQUIRE(done.size() == 4);
  for (auto& r : done) {
    REQUIRE_MESSAGE(r.ok(), r.error().message);
  }
  CHECK(*done[0] == Store::Released::held);
  CHECK(*done[1] == Store::Released::held);   // one open of it is left at that point
  CHECK(*done[2] == Store::Released::purge);  // the last hold on an orphan: the caller purges it
  CHECK(*done[3] == Store::Released::held);
  for (const auto& f : batch) {
    CHECK(_ok(conn().command({"EXISTS", keys.open(f.ino)})).view().integer() == 0);
  }
  // after a server restart the script is loaded again (NOSCRIPT is retried)
  _ok(s->open_file(kept.ino));
  _ok(conn().command({"SCRIPT", "FLUSH"}));
  std::vector<Store::Release> one{{kept.ino}};
  auto again = s->release_files(one);
  REQUIRE(again.size() == 1);
  REQUIRE_MESSAGE(again[0].ok(), again[0].error().message);
  CHECK(_ok(conn().command({"EXISTS", keys.open(kept.ino)})).view().integer() == 0);
  CHECK(s->release_files({}).empty());
}

TEST_CASE_FIXTURE(RedisFixture, "unlink with releases in front: one round trip, each judged, sent once") {
  auto s = _open(pool, prefix);
  auto warm = _ok(s->create(k_root_ino, "warm", 0644, k_user));  // (a script's first use may load it)
  std::vector<Store::Release> warm_release{{warm.ino}};
  CHECK(s->release_files(warm_release)[0].ok());
  _ok(s->unlink(k_root_ino, "warm"));
  // sqlite's journal: created open here, closed (its release queued), removed
  auto journal = _ok(s->create(k_root_ino, "journal", 0644, k_user));
  auto other_file = _ok(s->create(k_root_ino, "other", 0644, k_user));
  std::vector<Store::Release> releases{{journal.ino}, {other_file.ino}};
  std::vector<Result<Store::Released>> released;
  Ino freed = 0;
  const auto trips = redis_counters().round_trips;
  CHECK(_ok(s->unlink(k_root_ino, "journal", &freed, releases, released)) == 0);
  CHECK(redis_counters().round_trips == trips + 1);
  CHECK(freed == journal.ino);  // the release ran first: nobody held it, freed at once
  REQUIRE(released.size() == 2);
  for (auto& r : released) {
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(*r == Store::Released::held);
  }
  CHECK(s->getattr(journal.ino).code() == ENOENT);
  CHECK(_ok(conn().command({"EXISTS", keys.open(journal.ino)})).view().integer() == 0);
  CHECK(_ok(conn().command({"EXISTS", keys.open(other_file.ino)})).view().integer() == 0);

  // the unlink answered RETRY (another mount replaced the name): the
  // releases went with the first try only
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto held = _ok(s->create(k_root_ino, "r", 0644, k_user));    // open here
  CHECK(_ok(b->unlink(k_root_ino, "r")) == held.ino);           // orphaned: we hold it
  auto theirs = _ok(b->create(k_root_ino, "r", 0644, k_user));  // open there
  std::vector<Store::Release> once{{held.ino}};
  CHECK(_ok(s->unlink(k_root_ino, "r", nullptr, once, released)) == theirs.ino);
  REQUIRE(released.size() == 1);
  REQUIRE_MESSAGE(released[0].ok(), released[0].error().message);
  CHECK(*released[0] == Store::Released::purge);  // the last hold on an orphan: the caller purges it
  CHECK(_ok(conn().command({"EXISTS", keys.open(held.ino)})).view().integer() == 0);
  _ok(s->purge(held.ino));

  // an unlink refused before anything went still sends them
  auto last = _ok(s->create(k_root_ino, "last", 0644, k_user));
  std::vector<Store::Release> alone{{last.ino}};
  CHECK(s->unlink(k_root_ino, "missing", nullptr, alone, released).code() == ENOENT);
  REQUIRE(released.size() == 1);
  CHECK(released[0].ok());
  CHECK(_ok(conn().command({"EXISTS", keys.open(last.ino)})).view().integer() == 0);
  CHECK(s->unlink(k_root_ino, "bad/name", nullptr, alone, released).code() != 0);
  CHECK(released.size() == 1);
}

TEST_CASE_FIXTURE(RedisFixture, "a file freed by another mount cannot be opened") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto f = _ok(a->create(k_root_ino, "f", 0644, k_user));
  _ok(a->release_file(f.ino));
  CHECK(_ok(b->lookup(k_root_ino, "f")).ino == f.ino);  // b looks it up ...
  CHECK(_ok(a->unlink(k_root_ino, "f")) == 0);  // ... a removes it, freed at once (nobody has it open)
  _ok(a->purge(f.ino));                          // (a no-op now)
  CHECK(b->open_file(f.ino).code() == ESTALE);  // ... b's open comes too late
  CHECK(_ok(conn().command({"EXISTS", keys.open(f.ino)})).view().integer() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "the opens of a dead mount do not keep a file") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto f = _ok(a->create(k_root_ino, "f", 0644, k_user));
  _ok(a->release_file(f.ino));
  _ok(b->open_file(f.ino));
  _ok(b->end_session());  // b dies with the file open
  CHECK(_ok(a->unlink(k_root_ino, "f")) == f.ino);
  _ok(a->purge(f.ino));
  CHECK(a->getattr(f.ino).code() == ENOENT);
  CHECK(_ok(conn().command({"EXISTS", keys.open(f.ino)})).view().integer() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "the last close frees an orphan, whichever mount unlinked it") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto f = _ok(a->create(k_root_ino, "f", 0644, k_user));
  _ok(a->write(f.ino, 0, std::string(100000, 'f'), false));
  CHECK(_ok(a->release_file(f.ino)) == false);
  _ok(b->open_file(f.ino));
  // a unlinks it and keeps it (its kernel still knows the inode: a never
  // purges it), b closes last
  CHECK(_ok(a->unlink(k_root_ino, "f")) == f.ino);
  CHECK(_ok(conn().command({"HGET", keys.orphans(), std::to_string(f.ino)})).view().str() == a->session());
  CHECK(_ok(b->release_file(f.ino)) == true);
  _ok(b->purge(f.ino));
  CHECK(b->getattr(f.ino).code() == ENOENT);
  _ok(a->purge(f.ino));  // a's own purge, later, finds nothing to do
  for (const auto& k : keys_under(prefix)) {
    auto pk = parse_relative_key(*keys.relative(k));
    CHECK(pk.ino != f.ino);
    CHECK(pk.kind != KeyKind::Orphans);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "a live mount sweeps the open counts and orphans of dead mounts") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto kept = _ok(a->create(k_root_ino, "kept", 0644, k_user));
  CHECK(_ok(a->release_file(kept.ino)) == false);
  auto gone = _ok(a->create(k_root_ino, "gone", 0644, k_user));
  _ok(a->write(gone.ino, 0, "bytes", false));
  CHECK(_ok(a->release_file(gone.ino)) == false);
  _ok(b->open_file(kept.ino));
  _ok(b->open_file(kept.ino));
  _ok(b->open_file(gone.ino));
  _ok(a->open_file(kept.ino));  // a live holder stays
  CHECK(_ok(a->unlink(k_root_ino, "gone")) == gone.ino);
  _ok(a->purge(gone.ino));  // held by b: handed to b
  CHECK(_ok(conn().command({"HGET", keys.orphans(), std::to_string(gone.ino)})).view().str() == b->session());
  _ok(conn().command({"DEL", keys.mount(b->session())}));  // b dies (kill -9: its key expires)
  bool pass_done = false;
  CHECK(_ok(a->sweep_dead_opens(1000, &pass_done)) == 2);
  CHECK(pass_done);
  auto holders = _ok(conn().command({"HGETALL", keys.open(kept.ino)}));
  REQUIRE(holders.view().size() == 2);
  CHECK(holders.view()[0].str() == a->session());
  CHECK(_ok(conn().command({"EXISTS", keys.open(gone.ino)})).view().integer() == 0);
  CHECK(a->getattr(gone.ino).code() == ENOENT);  // the orphan nobody holds is freed
  CHECK(_ok(conn().command({"EXISTS", keys.orphans()})).view().integer() == 0);
  CHECK(_ok(a->sweep_dead_mounts(1000)).opens == 0);  // nothing left to do
  CHECK(_ok(a->release_file(kept.ino)) == false);
  CHECK(_ok(conn().command({"EXISTS", keys.open(kept.ino)})).view().integer() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "sweeps: the open counts are looked for after a crash is seen and not at every call") {
  // Finding dead mounts' open counts takes a SCAN of the whole keyspace.
  // A mount looks at its first call, at the call that drops a dead mount's
  // registration, and otherwise sweep_recheck_seconds after its last look:
  // not at every heartbeat, which on a server crowded with other keys
  // would have every mount scan it without end.
  auto a = _open(pool, prefix);
  Connection& c = conn();
  auto scans = [&] { return test::command_calls(c, "scan"); };
  auto f = _ok(a->create(k_root_ino, "f", 0644, k_user));
  CHECK(_ok(a->release_file(f.ino)) == false);
  long long before = scans();
  _ok(a->sweep_dead_mounts(1000));
  CHECK(scans() > before);  // the first call looks
  before = scans();
  _ok(a->sweep_dead_mounts(1000));
  CHECK(scans() == before);  // nothing seen since: no look

  // b dies holding f open, and another mount dropped its registration
  // first (that mount looks): a does not, until its recheck
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  _ok(b->open_file(f.ino));
  _ok(c.command({"DEL", keys.mount(b->session())}));
  _ok(c.command({"HDEL", keys.mounts(), b->session()}));
  before = scans();
  auto swept = _ok(a->sweep_dead_mounts(1000));
  CHECK(scans() == before);
  CHECK(swept.opens == 0);
  CHECK(_ok(c.command({"HEXISTS", keys.open(f.ino), b->session()})).view().integer() == 1);

  // d dies holding f open, its registration left: the call that drops it
  // looks at once, and clears both dead counts
  Pool pool_d(test::test_url(), "redisfs:test-d");
  auto d = _open(pool_d, prefix);
  _ok(d->open_file(f.ino));
  _ok(c.command({"DEL", keys.mount(d->session())}));
  before = scans();
  swept = _ok(a->sweep_dead_mounts(1000));
  CHECK(scans() > before);
  CHECK(swept.registrations == 1);
  CHECK(swept.opens == 2);
  CHECK(_ok(c.command({"EXISTS", keys.open(f.ino)})).view().integer() == 0);

  // the recheck: with sweep_recheck_seconds 0, every call looks
  StoreOptions often;
  often.sweep_recheck_seconds = 0;
  auto e = _open(pool, prefix, often);
  _ok(e->sweep_dead_mounts(1000));
  before = scans();
  _ok(e->sweep_dead_mounts(1000));
  CHECK(scans() > before);
}

TEST_CASE_FIXTURE(RedisFixture, "sweeps: a file they cannot clear does not keep the others") {
  // A dead mount b held three files open: the orphan o, which is damaged
  // (its inode is not a hash), the file k and the orphan q. The sweeps
  // report o and clear everything else, every heartbeat.
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  Ino ino[3];
  for (int i = 0; i < 3; ++i) {
    const std::string name = "f" + std::to_string(i);
    ino[i] = _ok(a->create(k_root_ino, name, 0644, k_user)).ino;
    CHECK(_ok(a->release_file(ino[i])) == false);
    _ok(b->open_file(ino[i]));
  }
  const Ino o = ino[0], k = ino[1], q = ino[2];
  CHECK(_ok(b->unlink(k_root_ino, "f0")) == o);
  CHECK(_ok(b->unlink(k_root_ino, "f2")) == q);
  _ok(conn().command({"DEL", keys.inode(o)}));
  _ok(conn().command({"SET", keys.inode(o), "damaged"}));
  const std::string dead = b->session();
  _ok(conn().command({"DEL", keys.mount(dead)}));  // b dies (kill -9: its key expires)
  for (int beat = 0; beat < 2; ++beat) {
    CAPTURE(beat);
    auto swept = a->sweep_dead_mounts(1000);
    REQUIRE_FALSE(swept.ok());
    CHECK(swept.error().message.find(keys.inode(o)) != std::string::npos);
    // what it cleared that beat: the first time the counts b held of k and
    // o (o stays, damaged), the orphan q and b's registration
    CHECK(swept.error().message.find(beat == 0 ? "(cleared all the same: 2 open counts, 1 orphan inode, 1 registration)"
                                               : "(cleared all the same: 0 open counts, 0 orphan inodes, 0 "
                                                 "registrations)") != std::string::npos);
    CHECK(_ok(conn().command({"HEXISTS", keys.open(k), dead})).view().integer() == 0);
    CHECK(_ok(conn().command({"EXISTS", keys.inode(q)})).view().integer() == 0);         // q freed
    CHECK(_ok(conn().command({"HEXISTS", keys.mounts(), dead})).view().integer() == 0);  // b's registration
    CHECK(_ok(conn().command({"GET", keys.inode(o)})).view().str() == "damaged");        // left for fsck
  }
}

TEST_CASE_FIXTURE(RedisFixture, "check_same_filesystem: deleted, or replaced by another filesystem") {
  auto s = _open(pool, prefix);
  _ok(s->check_same_filesystem());
  _ok(conn().command({"HSET", keys.sb(), "dumped", "12345"}));  // a restore over it
  auto replaced = s->check_same_filesystem();
  CHECK(replaced.code() == ESTALE);
  CHECK(replaced.error().message.find("replaced") != std::string::npos);
  _ok(conn().command({"HDEL", keys.sb(), "dumped"}));
  _ok(s->check_same_filesystem());
  auto sb = _ok(conn().command({"DUMP", keys.sb()}));
  _ok(conn().command({"DEL", keys.sb()}));
  auto deleted = s->check_same_filesystem();
  CHECK(deleted.code() == ESTALE);
  CHECK(deleted.error().message.find("deleted") != std::string::npos);
  // Gone while an install journals another filesystem moving in (a
  // rollback --force): not decided until it ends, replaced or put back.
  _ok(conn().command({"SET", keys.installing(), "phase swap"}));
  auto moving = s->check_same_filesystem();
  CHECK(moving.code() == EAGAIN);
  CHECK(moving.error().message.find("is being replaced") != std::string::npos);
  _ok(conn().command({"RESTORE", keys.sb(), "0", std::string(sb.view().str())}));  // a failed install puts it back
  _ok(s->check_same_filesystem());
  _ok(conn().command({"HSET", keys.sb(), "rolled_back", "12345"}));  // one that ends
  CHECK(s->check_same_filesystem().code() == ESTALE);
}

TEST_CASE_FIXTURE(RedisFixture, "drop_own_opens: what an open whose reply was lost left counted") {
  auto a = _open(pool, prefix);
  Pool pool_b(test::test_url(), "redisfs:test-b");
  auto b = _open(pool_b, prefix);
  auto f = _ok(a->create(k_root_ino, "f", 0644, k_user));  // counted, as if its reply never came
  auto g = _ok(a->create(k_root_ino, "g", 0644, k_user));
  _ok(b->open_file(g.ino));
  CHECK(_ok(a->drop_own_opens(16)) == 2);
  CHECK(_ok(conn().command({"EXISTS", keys.open(f.ino)})).view().integer() == 0);
  CHECK(_ok(conn().command({"HGET", keys.open(g.ino), b->session()})).view().str() == "1");  // b's stays
  CHECK(_ok(conn().command({"HEXISTS", keys.open(g.ino), a->session()})).view().integer() == 0);
}

TEST_SUITE_END();

// rollback --force replaces a mounted filesystem: from then on no change of
// the old mount may land in the new one, whether sent afterwards or retried
// behind the rollback's freeze. Each script checks the superblock's
// identity against the one the store opened, in its own atomic step
// (outcome.inc), and refuses with ESTALE before changing anything.
TEST_CASE_FIXTURE(RedisFixture, "a change to a filesystem replaced since open is refused with ESTALE") {
  auto s = _open(pool, prefix);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  CHECK(_ok(s->write(f.ino, 0, "before", false)) == 0);  // (the offset written at)
  auto block = [&] { return std::string(_ok(conn().command({"GET", keys.block(f.ino, 0)})).view().str()); };
  SUBCASE("sent after the replacement") {
    _ok(conn().command({"HSET", keys.sb(), "rolled_back", "12345"}));
    CHECK(s->write(f.ino, 0, "after!", false).code() == ESTALE);
    CHECK(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user).code() == ESTALE);
    CHECK(_ok(conn().command({"HEXISTS", keys.dir(k_root_ino), "g"})).view().integer() == 0);
  }
  SUBCASE("retried behind the freeze the replacement held") {
    _ok(conn().command({"SET", keys.freeze(), "test", "PX", "30000"}));
    std::atomic<int> code{-1};
    std::thread writer([&] { code = s->write(f.ino, 0, "after!", false).code(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // (not asserted: it waits either way)
    _ok(conn().command({"HSET", keys.sb(), "rolled_back", "12345"}));
    _ok(conn().command({"DEL", keys.freeze()}));
    writer.join();
    CHECK(code == ESTALE);
  }
  SUBCASE("the superblock gone") {
    _ok(conn().command({"RENAME", keys.sb(), keys.sb() + "-aside"}));
    CHECK(s->write(f.ino, 0, "after!", false).code() == ESTALE);
    _ok(conn().command({"RENAME", keys.sb() + "-aside", keys.sb()}));
  }
  CHECK(block() == "before");
}

namespace {

// How many of `ino`'s BLK keys (0..31) a script `run` sent named, as
// the server logged them (SLOWLOG: every command, with its first 32
// arguments; an unlink's keys end before that, at 3 + 8 + 16).
std::size_t _blocks_named(Connection& c, const Keys& keys, Ino ino, const std::function<void()>& run) {
  _ok(c.command({"CONFIG", "SET", "slowlog-max-len", "10000"}));
  _ok(c.command({"SLOWLOG", "RESET"}));
  _ok(c.command({"CONFIG", "SET", "slowlog-log-slower-than", "0"}));
  run();
  _ok(c.command({"CONFIG", "SET", "slowlog-log-slower-than", "10000"}));
  auto log = _ok(c.command({"SLOWLOG", "GET", "-1"}));
  std::set<std::string> blocks;
  for (std::uint64_t b = 0; b < 32; ++b) {
    blocks.insert(keys.block(ino, b));
  }
  std::size_t named = 0;
  for (std::size_t i = 0; i < log.view().size(); ++i) {
    ReplyView args = log.view()[i][3];
    std::string command = args.size() > 0 ? std::string(args[0].str()) : std::string();
    std::transform(command.begin(), command.end(), command.begin(), ::toupper);
    if (command != "EVALSHA" && command != "EVAL") {
      continue;  // (a script's own commands are logged too)
    }
    std::size_t in_this = 0;
    for (std::size_t j = 0; j < args.size(); ++j) {
      in_this += blocks.count(std::string(args[j].str()));
    }
    named = std::max(named, in_this);  // (a script's first use goes twice: NOSCRIPT)
  }
  return named;
}

// Nothing of `ino` is left under the prefix: no INODE, XATTR, BLK, OPEN,
// nor an ORPHANS entry.
void _nothing_left(RedisFixture& fx, Ino ino) {
  for (const auto& k : fx.keys_under(fx.prefix)) {
    auto pk = parse_relative_key(*fx.keys.relative(k));
    CHECK_MESSAGE(pk.ino != ino, k);
  }
  CHECK(_ok(fx.conn().command({"HEXISTS", fx.keys.orphans(), std::to_string(ino)})).view().integer() == 0);
}

}  // namespace

// An unlink (and an orphan's last release, and a rename over a file) names
// only the blocks the size this mount last saw of the file needs, for the
// script to free it at once: none for an empty file. Without a size (no
// attribute cache) it names the first 16 as before.
TEST_CASE_FIXTURE(RedisFixture, "unlink names the blocks the size it saw needs") {
  StoreOptions opts;
  opts.attr_cache_seconds = 60;
  opts.mkfs_block_size = 4096;
  auto s = _open(pool, prefix, opts);
  auto plain = _open(pool, prefix);  // no attribute cache: it knows no size
  const std::string bytes = std::string(_ok(conn().command({"HGET", keys.sb(), "bytes"})).view().str());
  auto e = _ok(s->create(k_root_ino, "e", S_IFREG | 0644, k_user));
  _ok(s->release_files(std::vector<Store::Release>{{e.ino}}).at(0));
  auto one = _ok(s->mknod(k_root_ino, "one", S_IFREG | 0644, 0, k_user));
  _ok(s->write(one.ino, 0, std::string(3000, 'a'), false));  // its reply: size 3000
  auto four = _ok(s->mknod(k_root_ino, "four", S_IFREG | 0644, 0, k_user));
  _ok(s->write(four.ino, 0, std::string(3 * 4096 + 1, 'b'), false));
  auto big = _ok(s->mknod(k_root_ino, "big", S_IFREG | 0644, 0, k_user));
  _ok(s->write(big.ino, 0, std::string(17 * 4096, 'c'), false));
  auto other = _ok(s->mknod(k_root_ino, "other", S_IFREG | 0644, 0, k_user));
  _ok(plain->write(other.ino, 0, std::string(3000, 'd'), false));
  (void)_ok(s->readdir(k_root_ino, 0, 100, true));  // as rm -rf lists first: e's size, 0
  Ino freed = 0;
  CHECK(_blocks_named(conn(), keys, e.ino, [&] { CHECK(_ok(s->unlink(k_root_ino, "e", &freed)) == 0); }) == 0);
  CHECK(freed == e.ino);
  CHECK(_blocks_named(conn(), keys, one.ino, [&] { CHECK(_ok(s->unlink(k_root_ino, "one", &freed)) == 0); }) == 1);
  CHECK(freed == one.ino);
  CHECK(_blocks_named(conn(), keys, four.ino, [&] { CHECK(_ok(s->unlink(k_root_ino, "four", &freed)) == 0); }) == 4);
  CHECK(freed == four.ino);
  // too big to be freed at once: no block named, an orphan for purge
  CHECK(_blocks_named(conn(), keys, big.ino, [&] { CHECK(_ok(s->unlink(k_root_ino, "big", &freed)) == big.ino); }) ==
        0);
  CHECK(freed == 0);
  _ok(s->purge(big.ino));
  // a mount that saw no size names the first 16
  CHECK(_blocks_named(conn(), keys, other.ino, [&] { CHECK(_ok(plain->unlink(k_root_ino, "other", &freed)) == 0); }) ==
        16);
  CHECK(freed == other.ino);
  for (Ino ino : {e.ino, one.ino, four.ino, big.ino, other.ino}) {
    _nothing_left(*this, ino);
  }
  CHECK(_ok(conn().command({"HGET", keys.sb(), "bytes"})).view().str() == bytes);
  // an orphan's last release, and a rename that replaces a file: the same
  auto o = _ok(s->create(k_root_ino, "o", S_IFREG | 0644, k_user));
  _ok(s->write(o.ino, 0, std::string(5000, 'o'), false));
  CHECK(_ok(s->unlink(k_root_ino, "o")) == o.ino);  // open: an orphan
  _ok(s->write(o.ino, 0, "x", false));              // (its reply: size 5000 again)
  std::vector<Store::Release> last{{o.ino, true}};
  CHECK(_blocks_named(conn(), keys, o.ino,
                      [&] { CHECK(_ok(s->release_files(last).at(0)) == Store::Released::done); }) == 2);
  _nothing_left(*this, o.ino);
  auto r = _ok(s->mknod(k_root_ino, "r", S_IFREG | 0644, 0, k_user));
  _ok(s->write(r.ino, 0, "r", false));
  _ok(s->mknod(k_root_ino, "src", S_IFREG | 0644, 0, k_user));
  CHECK(_blocks_named(conn(), keys, r.ino,
                      [&] { CHECK(_ok(s->rename(k_root_ino, "src", k_root_ino, "r", 0, &freed)) == 0); }) == 1);
  CHECK(freed == r.ino);
  _nothing_left(*this, r.ino);
}

// The size a mount saw is only a guess: another mount may have grown the
// file since. The script reads the real size, and a file bigger than the
// blocks named is not freed at once but left an orphan that purge frees
// whole (its truncate steps): never a block key left behind.
TEST_CASE_FIXTURE(RedisFixture, "unlink of a file another mount grew past the blocks it names frees every block") {
  StoreOptions opts;
  opts.attr_cache_seconds = 60;
  opts.mkfs_block_size = 4096;
  auto a = _open(pool, prefix, opts);
  auto b = _open(pool, prefix, opts);
  const std::string bytes = std::string(_ok(conn().command({"HGET", keys.sb(), "bytes"})).view().str());
  const std::string inodes = std::string(_ok(conn().command({"HGET", keys.sb(), "inodes"})).view().str());
  for (std::size_t grown : {std::size_t{5 * 4096 + 7}, std::size_t{40 * 4096 + 7}}) {
    CAPTURE(grown);
    // closed: the unlink leaves an orphan, which the daemon purges next
    auto f = _ok(a->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
    _ok(a->write(f.ino, 0, "small", false));  // a saw 5 bytes: one block
    _ok(b->write(f.ino, 0, std::string(grown, 'g'), false));
    Ino freed = 0;
    Ino orphan = 0;
    CHECK(_blocks_named(conn(), keys, f.ino, [&] { orphan = _ok(a->unlink(k_root_ino, "f", &freed)); }) == 1);
    CHECK(freed == 0);
    REQUIRE(orphan == f.ino);
    _ok(a->purge(orphan));
    _nothing_left(*this, f.ino);
    // open: its last release cannot free it either, and the caller purges
    auto g = _ok(a->create(k_root_ino, "g", S_IFREG | 0644, k_user));
    REQUIRE(_ok(a->unlink(k_root_ino, "g")) == g.ino);
    _ok(a->write(g.ino, 0, "small", false));  // a saw 5 bytes
    _ok(b->write(g.ino, 0, std::string(grown, 'g'), false));
    std::vector<Store::Release> last{{g.ino, true}};
    Store::Released done = Store::Released::held;
    CHECK(_blocks_named(conn(), keys, g.ino, [&] { done = _ok(a->release_files(last).at(0)); }) == 1);
    REQUIRE(done == Store::Released::purge);
    _ok(a->purge(g.ino));
    _nothing_left(*this, g.ino);
  }
  CHECK(_ok(conn().command({"HGET", keys.sb(), "bytes"})).view().str() == bytes);
  CHECK(_ok(conn().command({"HGET", keys.sb(), "inodes"})).view().str() == inodes);
}

// A garbage size (a damaged inode) is no size: unlink.lua frees nothing at
// once, whatever blocks it was named, and leaves the orphan (purge.lua and
// fsck deal with damage); nothing half done.
TEST_CASE_FIXTURE(RedisFixture, "unlink of a file with a garbage size frees nothing at once") {
  StoreOptions opts;
  opts.attr_cache_seconds = 60;
  opts.mkfs_block_size = 4096;
  auto s = _open(pool, prefix, opts);
  auto f = _ok(s->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->write(f.ino, 0, "data", false));
  _ok(conn().command({"HSET", keys.inode(f.ino), "size", "lots"}));
  Ino freed = 0;
  CHECK(_ok(s->unlink(k_root_ino, "f", &freed)) == f.ino);
  CHECK(freed == 0);
  CHECK(_ok(conn().command({"GET", keys.block(f.ino, 0)})).view().str() == "data");
  CHECK(_ok(conn().command({"HGET", keys.inode(f.ino), "nlink"})).view().str() == "0");
  CHECK(_ok(conn().command({"HEXISTS", keys.orphans(), std::to_string(f.ino)})).view().integer() == 1);
}

// A writeback mount's create, answered here, waits with the file's changes
// and leads their pipeline at the flush (Store::defer_create): one round
// trip for the create and the data. Here the server lost create.lua when
// the flush comes (as after a restart; a freeze or a snapshot's copy refuse
// alike): the runner loads it and sends it again, after the changes behind
// it ran on no file, and those go again after it, in order. Nothing is lost.
TEST_CASE_FIXTURE(RedisFixture, "deferred create: one round trip with its data, and its changes sent again after it") {
  auto s = _open(pool, prefix, _writeback_options());
  Attr dir = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto inodes = [&] { return std::string(_ok(conn().command({"HGET", keys.sb(), "inodes"})).view().str()); };
  const std::string before = inodes();
  auto trips = redis_counters().round_trips;  // (the process's: conn()'s count too)
  Attr f = _ok(s->create(dir.ino, "f", 0640, k_user, true));
  CHECK(_ok(s->getattr(f.ino)).mode == (S_IFREG | 0640));  // (this mount's answer)
  _ok(s->write(f.ino, 0, "hello", false));
  CHECK(redis_counters().round_trips == trips);
  CHECK(_ok(conn().command({"HGET", keys.dir(dir.ino), "f"})).view().is_nil());
  trips = redis_counters().round_trips;
  _ok(s->flush(f.ino));
  CHECK(redis_counters().round_trips == trips + 1);
  CHECK(_read_all(*s, f.ino) == "hello");

  // The changes: a write whose bytes go as a TMP key (RENAMEd into place)
  // and a chmod, in one write.lua.
  Attr g = _ok(s->create(dir.ino, "g", 0644, k_user, true));
  const std::string data(3000, 'g');
  _ok(s->write(g.ino, 0, data, false));
  SetAttrRequest chmod;
  chmod.mode = 0600;
  _ok(s->setattr(g.ino, chmod));
  CHECK(_ok(conn().command({"HGET", keys.dir(dir.ino), "g"})).view().is_nil());
  _ok(conn().command({"SCRIPT", "FLUSH"}));
  for (lua::ScriptId id : {lua::write, lua::setattr}) {
    _ok(conn().command({"SCRIPT", "LOAD", std::string(lua::script_source(id).text)}));
  }
  _ok(s->flush(g.ino));
  CHECK(_ok(conn().command({"HGET", keys.dir(dir.ino), "g"})).view().str() == std::to_string(g.ino));
  CHECK(_ok(conn().command({"HGET", keys.inode(g.ino), "size"})).view().str() == "3000");
  CHECK(_ok(conn().command({"HGET", keys.inode(g.ino), "mode"})).view().str() == "0600");
  CHECK(_read_all(*s, g.ino) == data);
  CHECK(_ok(s->getattr(dir.ino)).nlink == 2);
  CHECK(inodes() == std::to_string(std::stoll(before) + 2));

  // a second open of a file whose create waits sends the create first
  Attr h = _ok(s->create(dir.ino, "h", 0644, k_user, true));
  CHECK(_ok(conn().command({"HGET", keys.dir(dir.ino), "h"})).view().is_nil());
  _ok(s->open_file(h.ino));
  CHECK(_ok(conn().command({"HGET", keys.dir(dir.ino), "h"})).view().str() == std::to_string(h.ino));
  CHECK(_ok(conn().command({"HGET", keys.open(h.ino), s->session()})).view().str() == "2");
  _ok(s->flush(h.ino));
}

// A name a writeback mount removed is known absent (RemovedNames: nobody
// else changes its filesystem): made again, as sqlite's journal at every
// commit, its create waits too (Store::defer_create), also in a directory
// whose names the mount does not all know (here the root).
TEST_CASE_FIXTURE(RedisFixture, "deferred create: of a name this writeback mount removed") {
  auto s = _open(pool, prefix, _writeback_options());
  Attr j = _ok(s->create(k_root_ino, "journal", 0644, k_user, true));
  _ok(s->flush(j.ino));
  _ok(s->release_file(j.ino));
  CHECK(_ok(s->unlink(k_root_ino, "journal")) == Ino{0});
  auto trips = redis_counters().round_trips;
  Attr j2 = _ok(s->create(k_root_ino, "journal", 0644, k_user, true));
  _ok(s->write(j2.ino, 0, "again", false));
  CHECK(redis_counters().round_trips == trips);
  CHECK(_ok(conn().command({"HGET", keys.dir(k_root_ino), "journal"})).view().is_nil());
  trips = redis_counters().round_trips;  // (the check above counts too)
  _ok(s->flush(j2.ino));
  CHECK(redis_counters().round_trips == trips + 1);
  CHECK(_ok(conn().command({"HGET", keys.dir(k_root_ino), "journal"})).view().str() == std::to_string(j2.ino));
  CHECK(_read_all(*s, j2.ino) == "again");
}

// A writeback mount's deferred create rides in the script of its file's
// first data (create_write.lua): tar's small file (its create, data,
// chown, chmod and utimes) is one script at its flush, where it was two.
// Changes that start with a mode or an mtime keep the create alone. The
// server then holds what this mount showed.
TEST_CASE_FIXTURE(RedisFixture, "deferred create: the create rides in the script of the file's first data") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  Attr dir = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto evalsha = [&] { return test::command_calls(c, "evalsha"); };
  auto field = [&](Ino ino, const char* name) {
    return std::string(_ok(c.command({"HGET", keys.inode(ino), name})).view().str());
  };
  const auto [chown, chmod, utimes] = _tar_changes(0750);
  struct Shape {
    const char* name;
    std::vector<int> steps;  // 0: a write (the next piece), 1: chown, 2: chmod, 3: utimes
    long long scripts;
  };
  const Shape shapes[] = {
      {"tar: writes, chown, chmod, utimes", {0, 0, 1, 2, 3}, 1},
      {"writes only", {0}, 1},
      {"nothing: the create alone", {}, 1},
      {"sqlite's journal: chown, writes", {1, 0, 0}, 1},
      {"writes, chmod, writes, utimes", {0, 2, 0, 3}, 2},
      {"attributes only: the create and one setattr", {1, 2, 3}, 2},
      {"chmod, writes, utimes: the create alone first", {2, 0, 3}, 3},
      {"utimes, writes: the create alone first", {3, 0}, 3},
  };
  int n = 0;
  // (the server learns each script at its first call: NOSCRIPT, then a
  // second EVALSHA; not counted below)
  for (int first : {0, 2}) {
    Attr f = _ok(s->create(dir.ino, "warm" + std::to_string(n++), 0644, k_user, true));
    if (first == 0) {
      _ok(s->write(f.ino, 0, "x", false));
    }
    _ok(s->setattr(f.ino, chmod));
    _ok(s->flush(f.ino));
  }
  for (const Shape& shape : shapes) {
    const std::string name = shape.name;
    CAPTURE(name);
    Attr f = _ok(s->create(dir.ino, "f" + std::to_string(n++), 0644, k_user, true));
    std::string data;
    for (int step : shape.steps) {
      if (step == 0) {
        std::string piece(data.empty() ? 20000 : 10, static_cast<char>('a' + data.size() % 26));
        _ok(s->write(f.ino, data.size(), piece, false));
        data += piece;
      } else {
        _ok(s->setattr(f.ino, step == 1 ? chown : step == 2 ? chmod : utimes));
      }
    }
    Attr mine = _ok(s->getattr(f.ino));
    REQUIRE(field(f.ino, "type").empty());  // (the create waits)
    const long long before = evalsha();
    _ok(s->flush(f.ino));
    CHECK(evalsha() - before == shape.scripts);
    CHECK(_ok(c.command({"HGET", keys.dir(dir.ino), "f" + std::to_string(n - 1)})).view().str() ==
          std::to_string(f.ino));
    CHECK(field(f.ino, "size") == std::to_string(data.size()));
    CHECK(field(f.ino, "bytes") == std::to_string(data.size()));
    CHECK(field(f.ino, "mode") == format_mode(mine.mode & 07777));
    CHECK(field(f.ino, "uid") == std::to_string(mine.uid));
    CHECK(field(f.ino, "gid") == std::to_string(mine.gid));
    if (!shape.steps.empty() && shape.steps.back() == 3) {
      CHECK(field(f.ino, "atime") == "1000000000123");
      CHECK(field(f.ino, "mtime") == "2000000000456");
    }
    CHECK(_read_all(*s, f.ino) == data);
  }
  CHECK(_ok(s->getattr(dir.ino)).nlink == 2);
  for (const std::string& key : keys_under(prefix)) {
    CHECK(key.find(":TMP:") == std::string::npos);
  }
}

// What a refusal at the flush leaves when the create rides with the data
// (create_write.lua): as the two scripts in turn left it. The data
// refused: the file stands, empty, and the close reports the refusal; the
// create refused: nothing at all. No TMP key stays either way; a freeze
// holds the whole script back, its data waiting in its TMP key.
TEST_CASE_FIXTURE(RedisFixture, "deferred create with its data: refusals leave what the two scripts left") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  Attr dir = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto inodes = [&] { return std::string(_ok(c.command({"HGET", keys.sb(), "inodes"})).view().str()); };
  auto temps = [&] {
    std::size_t found = 0;
    for (const std::string& key : keys_under(prefix)) {
      found += key.find(":TMP:") != std::string::npos ? 1 : 0;
    }
    return found;
  };
  const std::string data(20000, 'd');  // (through a TMP key)
  const std::string before = inodes();
  Attr f = _ok(s->create(dir.ino, "f", 0644, k_user, true));
  _ok(s->write(f.ino, 0, data, false));
  _ok(s->write(f.ino, 70000, "past a hole", false));
  SUBCASE("the data refused: a damaged block") {
    _ok(c.command({"HSET", keys.block(f.ino, 1), "not", "a string"}));  // (64 KiB blocks: the second piece's)
    Status flushed = s->flush(f.ino);
    REQUIRE_FALSE(flushed.ok());
    CHECK(flushed.error().code == EIO);
    CHECK(_ok(c.command({"HGET", keys.dir(dir.ino), "f"})).view().str() == std::to_string(f.ino));
    CHECK(_ok(c.command({"HGET", keys.inode(f.ino), "size"})).view().str() == "0");
    CHECK(_ok(c.command({"EXISTS", keys.block(f.ino, 0)})).view().integer() == 0);
    CHECK(inodes() == std::to_string(std::stoll(before) + 1));
    CHECK(temps() == 0);
  }
  SUBCASE("the create refused: its inode number in use") {
    _ok(c.command({"HSET", keys.inode(f.ino), "type", "debris"}));
    Status flushed = s->flush(f.ino);
    REQUIRE_FALSE(flushed.ok());
    CHECK(flushed.error().code == EIO);
    CHECK(_ok(c.command({"HGET", keys.dir(dir.ino), "f"})).view().is_nil());
    CHECK(_ok(c.command({"HGETALL", keys.inode(f.ino)})).view().size() == 2);  // (the debris, untouched)
    CHECK(_ok(c.command({"EXISTS", keys.block(f.ino, 0)})).view().integer() == 0);
    CHECK(inodes() == before);
    CHECK(temps() == 0);
    CHECK(s->lookup(dir.ino, "f").code() == ENOENT);
  }
  SUBCASE("frozen: nothing until the freeze is gone, then all of it") {
    _ok(c.command({"SET", keys.freeze(), "delete", "PX", "30000"}));
    std::optional<Status> flushed;
    std::thread closer([&] { flushed = s->flush(f.ino); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(_ok(c.command({"HGET", keys.dir(dir.ino), "f"})).view().is_nil());
    CHECK(temps() == 1);  // the data waits in its TMP key
    _ok(c.command({"DEL", keys.freeze()}));
    closer.join();
    REQUIRE(flushed);
    REQUIRE_MESSAGE(flushed->ok(), flushed->error().message);
    std::string want = data;
    want.resize(70000, '\0');
    want += "past a hole";
    CHECK(_read_all(*s, f.ino) == want);
    CHECK(inodes() == std::to_string(std::stoll(before) + 1));
    CHECK(temps() == 0);
  }
}

// A writeback mount's attribute changes of a directory wait in the Store
// (store_dirs.cpp): tar's three for a directory cost no round trip, show
// at once, and reach the server merged, as one setattr.lua, before the
// next operation that reaches it. A change made while a deferred create
// waits goes at once. A refusal is logged once and returned to the next
// fsyncdir (send_dir_changes).
TEST_CASE_FIXTURE(RedisFixture, "writeback: a directory's attribute changes wait, merged, until the server is asked") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  auto field = [&](Ino ino, const char* name) {
    return std::string(_ok(c.command({"HGET", keys.inode(ino), name})).view().str());
  };
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  Attr e = _ok(s->mkdir(k_root_ino, "e", 0755, k_user));
  // (the server knows setattr.lua: no NOSCRIPT, then EVALSHA, below)
  _ok(c.command({"SCRIPT", "LOAD", std::string(lua::script_source(lua::setattr).text)}));
  SetAttrRequest chown;
  chown.uid = 1234;
  chown.gid = 99;
  SetAttrRequest chmod;
  chmod.mode = 02750;
  SetAttrRequest utimes;
  utimes.mtime = SetAttrRequest::Time::Set;
  utimes.mtime_ns = 2000000000456;
  SetAttrRequest touch;  // (times "now": the server sets what this mount showed)
  touch.atime = SetAttrRequest::Time::Now;
  touch.mtime = SetAttrRequest::Time::Now;
  auto trips = redis_counters().round_trips;
  Attr shown_d;
  for (const SetAttrRequest& req : {chown, chmod, utimes}) {
    shown_d = _ok(s->setattr(d.ino, req));
  }
  Attr touched = _ok(s->setattr(e.ino, touch));
  Attr shown = _ok(s->setattr(e.ino, chmod));
  CHECK(redis_counters().round_trips == trips);
  CHECK(shown.mode == (S_IFDIR | 02750));
  CHECK(field(d.ino, "mode") == "0755");
  const long long before = test::command_calls(c, "evalsha");
  Attr got = _ok(s->getattr(d.ino));                       // (the server's, after them)
  CHECK(test::command_calls(c, "evalsha") - before == 2);  // one a directory
  CHECK(got.mode == (S_IFDIR | 02750));
  CHECK(got.uid == 1234);
  CHECK(got.gid == 99);
  CHECK(got.mtime_ns == 2000000000456);
  CHECK(got.ctime_ns == shown_d.ctime_ns);
  CHECK(field(e.ino, "mode") == "2750");
  CHECK(field(e.ino, "atime") == std::to_string(touched.atime_ns));
  CHECK(field(e.ino, "mtime") == std::to_string(touched.mtime_ns));
  CHECK(field(e.ino, "ctime") == std::to_string(shown.ctime_ns));
  CHECK(shown.ctime_ns > touched.ctime_ns);
  _ok(s->send_dir_changes());

  // a deferred create waits: the change goes at once, after it
  Attr f = _ok(s->create(d.ino, "f", 0644, k_user, true));
  REQUIRE(field(f.ino, "type").empty());  // (the create waits)
  SetAttrRequest chmod2;
  chmod2.mode = 0700;
  _ok(s->setattr(e.ino, chmod2));
  CHECK(field(e.ino, "mode") == "0700");
  CHECK(field(f.ino, "type") == "file");
  _ok(s->flush(f.ino));

  // refused when sent: reported once, and the server's attributes stand
  _ok(s->mkdir(e.ino, "sub", 0755, k_user));  // (its reply: what this mount holds of e)
  SetAttrRequest chmod3;
  chmod3.mode = 0711;
  trips = redis_counters().round_trips;
  _ok(s->setattr(e.ino, chmod3));
  CHECK(redis_counters().round_trips == trips);
  _ok(c.command({"HSET", keys.inode(e.ino), "size", "lots"}));   // (damage: setattr.lua refuses)
  _ok(s->send_all_gathered());                                   // (a snapshot's answer: sent, the refusal kept)
  Status logged = s->send_dir_changes(Store::DirRefusal::once);  // (the daemon's log)
  REQUIRE_FALSE(logged.ok());
  CHECK(logged.error().code == EIO);
  CHECK(logged.error().message.find("directory " + std::to_string(e.ino)) != std::string::npos);
  CHECK(s->send_dir_changes(Store::DirRefusal::once).ok());  // (logged once)
  Status synced = s->send_dir_changes();                     // (fsyncdir)
  REQUIRE_FALSE(synced.ok());
  CHECK(synced.error().code == EIO);
  CHECK(s->send_dir_changes().ok());
  CHECK(field(e.ino, "mode") == "0700");

  // setattr.lua refuses an instant that is no number, writing nothing
  const std::vector<std::string> set_keys{keys.sb(), keys.freeze(), keys.inode(d.ino)};
  for (const char* instant : {"12x", "-5", "99999999999999999999"}) {
    auto r = c.eval(lua::setattr, set_keys, std::vector<std::string>{"0700", "", "", "", "", "", "", instant});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EINVAL);
  }
  CHECK(field(d.ino, "mode") == "2750");
}

// A writeback mount's unlink of a file's last link, that nobody here holds
// open, waits with the directory changes (Store::defer_unlink): answered at
// once, sent by the Store's own thread with those answered meanwhile (one
// batch on its way at a time), before anything else reaches the server. The
// parent shows the times and count the server then stores (unlink.lua's
// instant). CLIENT PAUSE WRITE holds a batch on its way, so that the next
// one waits.
TEST_CASE_FIXTURE(RedisFixture, "writeback: an unlink waits with the directory changes") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  auto field = [&](Ino ino, const char* name) {
    return std::string(_ok(c.command({"HGET", keys.inode(ino), name})).view().str());
  };
  auto entry = [&](Ino dir, const char* name) {
    return std::string(_ok(c.command({"HGET", keys.dir(dir), name})).view().str());
  };
  auto nobody = [](Ino) { return false; };
  // The Store's thread sent a batch (a round trip counts when it is sent).
  auto on_its_way = [](std::uint64_t trips) {
    for (int i = 0; i < 2000 && redis_counters().round_trips == trips; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(redis_counters().round_trips > trips);
  };
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  auto file = [&](const char* name) {  // (not open: mknod)
    Attr f = _ok(s->mknod(d.ino, name, S_IFREG | 0644, 0, k_user));
    _ok(s->write(f.ino, 0, "data", false));  // (its reply: what this mount holds of the file)
    return f;
  };
  _ok(c.command({"SCRIPT", "LOAD", std::string(lua::script_source(lua::unlink).text)}));

  // what goes now: a file held open here, a directory, a file with another link
  Attr held = file("held");
  CHECK_FALSE(s->defer_unlink(d.ino, "held", [&](Ino ino) { return ino == held.ino; }));
  _ok(s->mkdir(d.ino, "sub", 0755, k_user));
  CHECK_FALSE(s->defer_unlink(d.ino, "sub", nobody));
  Attr linked = file("linked");
  _ok(s->link(linked.ino, d.ino, "linked2"));
  CHECK_FALSE(s->defer_unlink(d.ino, "linked", nobody));
  CHECK_FALSE(s->defer_unlink(d.ino, "unknown", nobody));

  // one batch on its way, one waiting: the parent shows them both
  Attr a = file("a");
  Attr b = file("b");
  Attr before = _ok(s->getattr(d.ino));
  _ok(c.command({"CLIENT", "PAUSE", "1000", "WRITE"}));
  auto trips = redis_counters().round_trips;
  CHECK(s->defer_unlink(d.ino, "a", nobody) == a.ino);
  on_its_way(trips);
  trips = redis_counters().round_trips;
  CHECK(s->defer_unlink(d.ino, "b", nobody) == b.ino);
  double age = 1;
  Attr shown = _ok(s->getattr(d.ino, &age));
  CHECK(shown.gen == before.gen + 2);
  CHECK(shown.mtime_ns > before.mtime_ns);
  CHECK(shown.ctime_ns == shown.mtime_ns);
  CHECK(shown.nlink == before.nlink);
  CHECK(s->lookup(d.ino, "b", &age).code() == ENOENT);
  CHECK(redis_counters().round_trips == trips);  // (b waits for the batch on its way)
  // a directory change goes now (after them), not waiting behind them
  SetAttrRequest chmod;
  chmod.mode = 0700;
  _ok(s->setattr(d.ino, chmod));
  CHECK(field(d.ino, "mode") == "0700");
  CHECK(entry(d.ino, "a").empty());
  CHECK(entry(d.ino, "b").empty());
  CHECK(_ok(c.command({"EXISTS", keys.inode(a.ino), keys.inode(b.ino), keys.block(a.ino, 0)})).view().integer() == 0);
  Attr got = _ok(s->getattr(d.ino));  // (the server's)
  CHECK(got.gen == shown.gen);
  CHECK(got.mtime_ns == shown.mtime_ns);  // (the time this mount showed)
  CHECK(got.ctime_ns > shown.ctime_ns);   // (the chmod's)

  // Two new files' unlinks: the first on its way (held by the server's
  // pause), the second waiting behind it.
  auto one_on_its_way = [&](const char* first, const char* second) {
    Attr f1 = file(first);
    Attr f2 = file(second);
    _ok(c.command({"CLIENT", "PAUSE", "1000", "WRITE"}));
    const auto sent = redis_counters().round_trips;
    CHECK(s->defer_unlink(d.ino, first, nobody) == f1.ino);
    on_its_way(sent);
    CHECK(s->defer_unlink(d.ino, second, nobody) == f2.ino);
    return f2;
  };

  // a create while an unlink waits is not deferred: it goes after it
  one_on_its_way("c1", "c2");
  Attr made = _ok(s->create(d.ino, "c2", 0644, k_user, true));
  CHECK(field(made.ino, "type") == "file");  // (on the server already)
  CHECK(entry(d.ino, "c2") == std::to_string(made.ino));
  CHECK(entry(d.ino, "c1").empty());
  _ok(s->flush(made.ino));

  // what each landing did to its inode, as the listener hears it
  std::vector<Ino> orphans;
  std::vector<Ino> kept;
  s->on_removal_landed(
      [&](Ino ino, Store::Landed what) { (what == Store::Landed::orphan ? orphans : kept).push_back(ino); });

  // refused when sent (the name holds another inode now): reported once,
  // the name stays, and the file is not freed (the listener hears so)
  Attr r = file("r");
  _ok(c.command({"HSET", keys.dir(d.ino), "r", "999999"}));
  std::vector<std::pair<Ino, bool>> freeing;
  auto note_freeing = [&](Ino ino, bool yes) { freeing.emplace_back(ino, yes); };
  CHECK(s->defer_unlink(d.ino, "r", nobody, note_freeing) == r.ino);
  CHECK(freeing == std::vector<std::pair<Ino, bool>>{{r.ino, true}});
  Status logged = s->send_dir_changes(Store::DirRefusal::once);
  REQUIRE_FALSE(logged.ok());
  CHECK(logged.error().code == EIO);
  CHECK(logged.error().message.find("unlink of 'r' in directory " + std::to_string(d.ino)) != std::string::npos);
  CHECK(logged.error().message.find("names inode 999999") != std::string::npos);
  CHECK(s->send_dir_changes(Store::DirRefusal::once).ok());
  Status synced = s->send_dir_changes();
  REQUIRE_FALSE(synced.ok());
  CHECK(s->send_dir_changes().ok());
  CHECK(entry(d.ino, "r") == "999999");
  CHECK(field(r.ino, "nlink") == "1");
  CHECK(kept == std::vector<Ino>{r.ino});
  _ok(c.command({"HSET", keys.dir(d.ino), "r", std::to_string(r.ino)}));

  // a link this mount did not see (made behind its back): the unlink it
  // took for the last leaves the file that link, and the listener hears
  // the file was not freed
  Attr l = file("l");
  _ok(c.command({"HSET", keys.dir(d.ino), "l-behind", std::to_string(l.ino)}));
  _ok(c.command({"HINCRBY", keys.inode(l.ino), "nlink", "1"}));
  CHECK(s->defer_unlink(d.ino, "l", nobody) == l.ino);
  _ok(s->send_dir_changes());
  CHECK(entry(d.ino, "l").empty());
  CHECK(field(l.ino, "nlink") == "1");
  CHECK(kept == std::vector<Ino>{r.ino, l.ino});
  CHECK(orphans.empty());

  // an open count of another mount's keeps the file: an orphan, handed on
  Attr o = file("o");
  _ok(c.command({"HSET", keys.open(o.ino), "another-mount", "1"}));
  CHECK(s->defer_unlink(d.ino, "o", nobody) == o.ino);
  _ok(s->send_dir_changes());
  CHECK(orphans == std::vector<Ino>{o.ino});
  CHECK(field(o.ino, "nlink") == "0");
  CHECK(_ok(c.command({"HEXISTS", keys.orphans(), std::to_string(o.ino)})).view().integer() == 1);
  CHECK(kept.size() == 2);
  s->on_removal_landed({});

  // the unmount of a mount that stopped serving: what waits is dropped
  Attr p2 = one_on_its_way("p1", "p2");
  Store::Dropped dropped = s->drop_gathered();  // (after the batch on its way)
  CHECK(dropped.unlinks == 1);
  CHECK(entry(d.ino, "p1").empty());
  CHECK(entry(d.ino, "p2") == std::to_string(p2.ino));
  CHECK(_ok(s->lookup(d.ino, "p2", &age)).ino == p2.ino);
  _ok(s->flush_all());
  CHECK(entry(d.ino, "p2") == std::to_string(p2.ino));

  // unlink.lua refuses an instant that is no number, writing nothing
  // (when the basis is the server's: only then is the instant used)
  const std::string basis = field(d.ino, "gen") + ':' + field(d.ino, "ctime") + ':' + field(d.ino, "atime");
  const std::vector<std::string> unlink_keys{keys.sb(),          keys.freeze(),  keys.dir(d.ino),    keys.inode(d.ino),
                                             keys.inode(p2.ino), keys.orphans(), keys.xattr(p2.ino), keys.open(p2.ino)};
  for (const char* instant : {"12x", "-5", "99999999999999999999"}) {
    auto refused = c.eval(lua::unlink, unlink_keys,
                          std::vector<std::string>{"p2", std::to_string(p2.ino), "test", "0", instant, basis});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == EINVAL);
  }
  CHECK(entry(d.ino, "p2") == std::to_string(p2.ino));
  CHECK(field(d.ino, "gen") + ':' + field(d.ino, "ctime") + ':' + field(d.ino, "atime") == basis);
}

// A writeback mount's rmdir of a directory it made and emptied waits with
// its unlinks (Store::defer_rmdir), behind the unlinks in it that wait:
// answered at once, the parent shows the change (one link fewer), and the
// directory becomes this mount's orphan when it lands (the listener).
TEST_CASE_FIXTURE(RedisFixture, "writeback: an rmdir waits with the unlinks") {
  Ino theirs = 0;
  {
    auto other = _open(pool, prefix);  // (before the writeback mount, the only one then)
    theirs = _ok(other->mkdir(k_root_ino, "theirs", 0755, k_user)).ino;
  }
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  auto field = [&](Ino ino, const char* name) {
    return std::string(_ok(c.command({"HGET", keys.inode(ino), name})).view().str());
  };
  auto entry = [&](Ino dir, const char* name) {
    return std::string(_ok(c.command({"HGET", keys.dir(dir), name})).view().str());
  };
  auto nobody = [](Ino) { return false; };
  std::vector<Ino> orphans;
  s->on_removal_landed([&](Ino ino, Store::Landed what) {
    CHECK(what == Store::Landed::orphan);  // (no unlink here is refused or leaves links)
    orphans.push_back(ino);
  });
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));

  // what goes now: a name unknown, a directory with a name left in it, a
  // directory this mount did not make (no list of its names)
  CHECK_FALSE(s->defer_rmdir(d.ino, "unknown"));
  Attr full = _ok(s->mkdir(d.ino, "full", 0755, k_user));
  _ok(s->mknod(full.ino, "kept", S_IFREG | 0644, 0, k_user));
  Attr gone = _ok(s->mknod(full.ino, "gone", S_IFREG | 0644, 0, k_user));
  CHECK(s->defer_unlink(full.ino, "gone", nobody) == gone.ino);
  CHECK_FALSE(s->defer_rmdir(d.ino, "full"));  // ("kept" stays)
  CHECK(_ok(s->lookup(k_root_ino, "theirs")).ino == theirs);
  CHECK_FALSE(s->defer_rmdir(k_root_ino, "theirs"));
  _ok(s->send_dir_changes());

  // empty but for names whose unlinks wait: it waits behind them
  Attr e = _ok(s->mkdir(d.ino, "e", 0755, k_user));
  Attr f = _ok(s->mknod(e.ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(s->write(f.ino, 0, "data", false));
  Attr before = _ok(s->getattr(d.ino));
  CHECK(s->defer_unlink(e.ino, "f", nobody) == f.ino);
  CHECK(s->defer_rmdir(d.ino, "e") == e.ino);
  double age = 1;
  Attr shown = _ok(s->getattr(d.ino, &age));
  CHECK(shown.nlink == before.nlink - 1);
  CHECK(shown.gen == before.gen + 1);
  CHECK(shown.ctime_ns > before.ctime_ns);
  CHECK(s->lookup(d.ino, "e", &age).code() == ENOENT);
  _ok(s->send_dir_changes());
  CHECK(entry(d.ino, "e").empty());
  CHECK(field(e.ino, "nlink") == "0");
  CHECK(_ok(c.command({"EXISTS", keys.dir(e.ino), keys.inode(f.ino)})).view().integer() == 0);
  CHECK(_ok(c.command({"HEXISTS", keys.orphans(), std::to_string(e.ino)})).view().integer() == 1);
  CHECK(orphans == std::vector<Ino>{e.ino});
  Attr got = _ok(s->getattr(d.ino));  // (the server's: what this mount showed)
  CHECK(got.nlink == shown.nlink);
  CHECK(got.mtime_ns == shown.mtime_ns);
  CHECK(got.ctime_ns == shown.ctime_ns);
  _ok(s->purge(e.ino));

  // refused when sent (a name came behind this mount's back: damage, as
  // the only mount): reported, the directory stays
  Attr r = _ok(s->mkdir(d.ino, "r", 0755, k_user));
  _ok(c.command({"HSET", keys.dir(r.ino), "stray", "999999"}));
  CHECK(s->defer_rmdir(d.ino, "r") == r.ino);
  Status synced = s->send_dir_changes();
  REQUIRE_FALSE(synced.ok());
  CHECK(synced.error().code == EIO);  // (fsyncdir's error for a change that did not land)
  CHECK(synced.error().message.find("rmdir of 'r' in directory " + std::to_string(d.ino)) != std::string::npos);
  CHECK(synced.error().message.find("Directory not empty") != std::string::npos);
  CHECK(entry(d.ino, "r") == std::to_string(r.ino));
  CHECK(field(r.ino, "nlink") == "2");
  CHECK(_ok(s->lookup(d.ino, "r", &age)).ino == r.ino);
  CHECK(orphans.size() == 1);
  s->on_removal_landed({});

  // rmdir.lua refuses an instant that is no number, writing nothing (when
  // the basis is the server's: only then is the instant used)
  _ok(c.command({"HDEL", keys.dir(r.ino), "stray"}));
  const std::string basis = field(d.ino, "gen") + ':' + field(d.ino, "ctime") + ':' + field(d.ino, "atime");
  const std::vector<std::string> rmdir_keys{keys.sb(),         keys.freeze(),   keys.dir(d.ino), keys.inode(d.ino),
                                            keys.inode(r.ino), keys.dir(r.ino), keys.orphans()};
  for (const char* instant : {"12x", "-5", "99999999999999999999"}) {
    auto refused =
        c.eval(lua::rmdir, rmdir_keys, std::vector<std::string>{"r", std::to_string(r.ino), "test", instant, basis});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == EINVAL);
  }
  CHECK(entry(d.ino, "r") == std::to_string(r.ino));
  CHECK(field(d.ino, "gen") + ':' + field(d.ino, "ctime") + ':' + field(d.ino, "atime") == basis);
}

// The removals that wait go in one pipeline; one refused and sent again
// (here NOSCRIPT: the server lost unlink.lua but not rmdir.lua) ran after
// the rmdir behind it, which found its directory not empty. The rmdir goes
// again once they have run: rm -rf of a tree succeeds. (A freeze holds
// the first batch on its way while the rest queue behind it, one batch.)
TEST_CASE_FIXTURE(RedisFixture, "writeback: an rmdir behind unlinks sent again goes again after them") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  auto nobody = [](Ino) { return false; };
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  Attr x = _ok(s->mkdir(d.ino, "x", 0755, k_user));
  Attr e = _ok(s->mkdir(d.ino, "e", 0755, k_user));
  Attr f1 = _ok(s->mknod(e.ino, "f1", S_IFREG | 0644, 0, k_user));
  Attr f2 = _ok(s->mknod(e.ino, "f2", S_IFREG | 0644, 0, k_user));
  _ok(s->send_dir_changes());

  _ok(c.command({"SET", keys.freeze(), "token", "PX", "60000"}));
  struct Thaw {
    Connection& c;
    std::string key;
    ~Thaw() { (void)c.command({"DEL", key}); }
  } thaw{c, keys.freeze()};
  const long long frozen = test::error_replies(c, "FROZEN");
  CHECK(s->defer_rmdir(d.ino, "x") == x.ino);  // the first batch, refused FROZEN until the thaw
  for (int i = 0; i < 5000 && test::error_replies(c, "FROZEN") == frozen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(test::error_replies(c, "FROZEN") > frozen);
  CHECK(s->defer_unlink(e.ino, "f1", nobody) == f1.ino);  // the second batch: all three
  CHECK(s->defer_unlink(e.ino, "f2", nobody) == f2.ino);
  CHECK(s->defer_rmdir(d.ino, "e") == e.ino);
  _ok(c.command({"SCRIPT", "FLUSH"}));
  _ok(c.command({"SCRIPT", "LOAD", lua::script_source(lua::rmdir).text}));
  const long long noscript = test::error_replies(c, "NOSCRIPT");
  const long long notempty = test::error_replies(c, "ENOTEMPTY");
  _ok(c.command({"DEL", keys.freeze()}));

  Status synced = s->send_dir_changes();
  CHECK_MESSAGE(synced.ok(), (synced.ok() ? "" : synced.error().message));
  CHECK(test::error_replies(c, "NOSCRIPT") >= noscript + 2);   // both unlinks went again...
  CHECK(test::error_replies(c, "ENOTEMPTY") == notempty + 1);  // ...after the rmdir: refused once
  CHECK(_ok(c.command({"HLEN", keys.dir(d.ino)})).view().integer() == 0);
  CHECK(_ok(c.command({"EXISTS", keys.dir(e.ino), keys.inode(f1.ino), keys.inode(f2.ino)})).view().integer() == 0);
  CHECK(s->lookup(d.ino, "e").code() == ENOENT);
}

// A writeback mount lists a directory it made, whole in one page, from
// what it knows (DirNames, the AttrCache): no round trip, the entries the
// server holds; a gathered file's attributes, or those it does not hold,
// in one. A directory whose unlinks wait, or one too large for a page, is
// read from the server, as a mount that is not the only one reads all.
// README and redisfs(1): what a writeback mount keeps of its files'
// attributes for its listings, "32,768 files at most"; a default mount
// 4,096. Filled through listings (readdirplus), which keep what they read.
TEST_CASE_FIXTURE(RedisFixture, "the attributes kept for listings: 32,768 inodes on a writeback mount, 4,096 else") {
  constexpr int k_files = 33000;
  Ino dir = 0;
  {
    auto s = _open(pool, prefix);
    dir = _ok(s->mkdir(k_root_ino, "d", 0755, k_user)).ino;
    for (int i = 0; i < k_files; ++i) {
      _ok(s->mknod(dir, "f" + std::to_string(i), S_IFREG | 0644, 0, k_user));
    }
  }
  auto list_all = [&](Store& s) {
    std::size_t seen = 0, most = 0;
    std::uint64_t cursor = 0;
    do {
      DirPage page = _ok(s.readdir(dir, cursor, 1024, true, nullptr));
      seen += page.entries.size();
      cursor = page.next_cursor;
      most = std::max(most, s.cache_sizes().attrs);
    } while (cursor != 0);
    CHECK(seen >= static_cast<std::size_t>(k_files));
    return most;
  };
  {
    StoreOptions plain;
    plain.attr_cache_seconds = 60;
    auto s = _open(pool, prefix, plain);
    CHECK(s->cache_sizes().attrs_max == 4096);
    const std::size_t most_plain = list_all(*s);
    CHECK(most_plain <= 4096);
    CHECK(most_plain > 2048);  // (full, then halved: it did fill)
  }
  auto wb = _open(pool, prefix, _writeback_options());  // (the only mount)
  CHECK(wb->cache_sizes().attrs_max == 32768);
  const std::size_t most_wb = list_all(*wb);
  CHECK(most_wb <= 32768);
  CHECK(most_wb > 16384);
}

TEST_CASE_FIXTURE(RedisFixture, "writeback: a file written and closed here is listed from its flush's reply") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  SetAttrRequest chmod;
  chmod.mode = 0640;
  // Flushes whose last script differs: data and the change after it in one
  // (tar's file: its create rides in it too, create_write.lua), a change
  // alone (setattr.lua), data alone on a file opened for writing (write.lua)
  Attr tar = _ok(s->create(d.ino, "tar", 0600, k_user, true));
  _ok(s->write(tar.ino, 0, "12345", false));
  _ok(s->setattr(tar.ino, chmod));
  Attr empty = _ok(s->create(d.ino, "empty", 0600, k_user, true));
  _ok(s->setattr(empty.ino, chmod));
  Attr old = _ok(s->mknod(d.ino, "old", S_IFREG | 0644, 0, k_user));
  _ok(s->open_for_writing(old.ino));
  _ok(s->write(old.ino, 3, "abc", false));
  // and one whose changes a read sent (no fields asked) after its close's
  // flush, in a directory of its own: the server's is read again
  Attr d2 = _ok(s->mkdir(k_root_ino, "d2", 0755, k_user));
  Attr again = _ok(s->create(d2.ino, "again", 0600, k_user, true));
  _ok(s->write(again.ino, 0, "a", false));
  _ok(s->flush(again.ino, true));
  _ok(s->write(again.ino, 1, "bc", false));
  std::string out;
  _ok(s->read(again.ino, 0, 10, out));
  CHECK(out == "abc");
  for (Ino ino : {tar.ino, empty.ino, old.ino, again.ino}) {
    _ok(s->flush(ino, true));  // close(2)
    _ok(s->flush(ino));        // its release
    _ok(s->release_files(std::vector<Store::Release>{{ino}}).at(0));
  }
  auto listed = [&](Ino dir, std::uint64_t& trips) {
    const auto before = redis_counters().round_trips;
    DirPage page = _ok(s->readdir(dir, 0, 256, true, nullptr));
    trips = redis_counters().round_trips - before;
    std::map<std::string, Attr> attrs;
    for (const DirEntry& e : page.entries) {
      REQUIRE(e.attr);
      attrs[e.name] = *e.attr;
    }
    return attrs;
  };
  std::uint64_t trips = 99;
  std::map<std::string, Attr> shown = listed(d.ino, trips);
  CHECK(trips == 0);
  std::uint64_t trips2 = 99;
  shown.merge(listed(d2.ino, trips2));
  CHECK(trips2 == 1);
  REQUIRE(shown.size() == 4);
  for (const auto& [name, a] : shown) {
    CAPTURE(name);
    Attr there = _ok(attr_from_reply(a.ino, _ok(c.command({"HGETALL", keys.inode(a.ino)})).view()));
    CHECK(a.mode == there.mode);
    CHECK(a.uid == there.uid);
    CHECK(a.gid == there.gid);
    CHECK(a.size == there.size);
    CHECK(a.nlink == there.nlink);
    CHECK(a.bytes == there.bytes);
    CHECK(a.atime_ns == there.atime_ns);
    CHECK(a.mtime_ns == there.mtime_ns);
    CHECK(a.ctime_ns == there.ctime_ns);
  }
  CHECK(shown["tar"].mode == (S_IFREG | 0640));
  CHECK(shown["tar"].size == 5);
  CHECK(shown["empty"].mode == (S_IFREG | 0640));
  CHECK(shown["old"].size == 6);
  CHECK(shown["again"].size == 3);
  listed(d2.ino, trips);
  CHECK(trips == 0);  // (what that read brought is kept)
  // Not on a default mount: a file's attributes go with its release
  s.reset();
  auto plain = _open(pool, prefix, [] {
    StoreOptions o;
    o.attr_cache_seconds = 60;
    return o;
  }());
  Attr f = _ok(plain->create(d.ino, "plain", 0600, k_user, true));
  _ok(plain->write(f.ino, 0, "x", false));
  _ok(plain->flush(f.ino));
  _ok(plain->release_files(std::vector<Store::Release>{{f.ino}}).at(0));
  double age = -1;
  const auto before = redis_counters().round_trips;
  CHECK(_ok(plain->getattr(f.ino, &age)).size == 1);
  CHECK(redis_counters().round_trips - before == 1);
}

TEST_CASE_FIXTURE(RedisFixture, "writeback: a directory this mount made is listed from memory") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  auto nobody = [](Ino) { return false; };
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  std::map<std::string, Ino> made;
  for (const char* name : {"a", "b", "c"}) {
    made[name] = _ok(s->mknod(d.ino, name, S_IFREG | 0644, 0, k_user)).ino;
  }
  made["sub"] = _ok(s->mkdir(d.ino, "sub", 0700, k_user)).ino;
  made["ln"] = _ok(s->symlink(d.ino, "ln", "a", k_user)).ino;
  _ok(s->unlink(d.ino, "c"));
  made.erase("c");
  auto listed = [&](bool plus, std::uint64_t* trips = nullptr, std::size_t max = 256) {
    const auto before = redis_counters().round_trips;
    Ino parent = 0;
    DirPage page = _ok(s->readdir(d.ino, 0, max, plus, &parent));
    if (trips != nullptr) {
      *trips = redis_counters().round_trips - before;
    }
    CHECK(parent == k_root_ino);
    std::map<std::string, Ino> names;
    for (const DirEntry& e : page.entries) {
      names[e.name] = e.ino;
      CHECK(e.type == (e.name == "sub" ? S_IFDIR : e.name == "ln" ? S_IFLNK : S_IFREG));
      CHECK(bool(e.attr) == plus);
      if (e.attr) {
        CHECK(e.attr->ino == e.ino);
        CHECK(e.attr->mode == (e.type | (e.name == "sub" ? 0700u : e.name == "ln" ? 0777u : 0644u)));
      }
    }
    CHECK(page.next_cursor == 0);
    return names;
  };
  // what the server holds: the same
  auto there = [&] {
    std::map<std::string, Ino> names;
    Reply r = _ok(c.command({"HGETALL", keys.dir(d.ino)}));
    ReplyView all = r.view();
    for (std::size_t i = 0; i + 1 < all.size(); i += 2) {
      names[std::string(all[i].str())] = std::stoull(std::string(all[i + 1].str()));
    }
    return names;
  };
  CHECK(there() == made);
  std::uint64_t trips = 99;
  CHECK(listed(true, &trips) == made);
  CHECK(trips <= 1);  // (the attributes a create's reply did not bring: read, and kept)
  CHECK(listed(true, &trips) == made);
  CHECK(trips == 0);
  CHECK(listed(false, &trips) == made);
  CHECK(trips == 0);
  // a file gathered here (created, open): its attributes from the server,
  // the create sent first, in one round trip
  Attr g = _ok(s->create(d.ino, "g", 0644, k_user, true));
  _ok(s->write(g.ino, 0, "12345", false));
  made["g"] = g.ino;
  CHECK(listed(true, &trips) == made);
  CHECK(trips >= 1);
  _ok(s->flush(g.ino));
  _ok(s->release_files(std::vector<Store::Release>{{g.ino}}).at(0));
  // an unlink that waits: read from the server, after it
  CHECK(s->defer_unlink(d.ino, "b", nobody) == made["b"]);
  made.erase("b");
  CHECK(listed(true, &trips) == made);
  CHECK(trips >= 1);
  CHECK(_ok(c.command({"HEXISTS", keys.dir(d.ino), "b"})).view().integer() == 0);
  // a page too small for the directory: the server's (which sends a hash
  // this small whole)
  CHECK(listed(true, &trips, 2) == made);
  CHECK(trips >= 1);
  // a rename drops what the mount knew: the server's again
  _ok(s->rename(d.ino, "a", d.ino, "a2", 0));
  made["a2"] = made["a"];
  made.erase("a");
  CHECK(listed(true, &trips) == made);
  CHECK(trips >= 1);
  CHECK(there() == made);
  // not a writeback mount: always the server's
  s.reset();
  auto plain = _open(pool, prefix, [] {
    StoreOptions o;
    o.attr_cache_seconds = 60;
    o.names_cache_seconds = 60;
    return o;
  }());
  Attr p = _ok(plain->mkdir(k_root_ino, "p", 0755, k_user));
  _ok(plain->mknod(p.ino, "x", S_IFREG | 0644, 0, k_user));
  const auto before = redis_counters().round_trips;
  CHECK(_ok(plain->readdir(p.ino, 0, 256, true)).entries.size() == 1);
  CHECK(redis_counters().round_trips > before);
}

// A writeback mount that lists a directory whole (one page) reads its
// change count with it, atomically: it knows every name from then on, as
// if it had made the directory (DirNames::known), so the next listing
// asks nothing and its rmdir may wait. A page with an entry left out
// (damage) teaches nothing.
TEST_CASE_FIXTURE(RedisFixture, "writeback: a directory listed whole is known as one made here") {
  Ino old = 0;
  Ino damaged = 0;
  {
    auto before = _open(pool, prefix);  // (before the writeback mount, the only one then)
    old = _ok(before->mkdir(k_root_ino, "old", 0755, k_user)).ino;
    for (const char* name : {"x", "y"}) {
      _ok(before->mknod(old, name, S_IFREG | 0644, 0, k_user));
    }
    damaged = _ok(before->mkdir(k_root_ino, "damaged", 0755, k_user)).ino;
    _ok(before->mknod(damaged, "fine", S_IFREG | 0644, 0, k_user));
  }
  Connection& c = conn();
  _ok(c.command({"HSET", keys.dir(damaged), "bad", "not-a-number"}));
  auto s = _open(pool, prefix, _writeback_options());
  _ok(s->mkdir(k_root_ino, "new", 0755, k_user));   // (its reply: the server's clock, for what waits)
  (void)_ok(s->readdir(k_root_ino, 0, 256, true));  // (as rm -rf lists the parent first: their attributes)
  auto nobody = [](Ino) { return false; };
  auto trips_of = [&](Ino dir, std::size_t* n = nullptr) {
    const auto before = redis_counters().round_trips;
    Ino parent = 0;
    DirPage page = _ok(s->readdir(dir, 0, 256, true, &parent));
    CHECK(parent == k_root_ino);
    if (n != nullptr) {
      *n = page.entries.size();
    }
    return redis_counters().round_trips - before;
  };
  std::size_t n = 0;
  CHECK(trips_of(old, &n) >= 1);
  CHECK(n == 2);
  CHECK(trips_of(old, &n) == 0);
  CHECK(n == 2);
  CHECK(trips_of(damaged, &n) >= 1);
  CHECK(n == 1);
  CHECK(trips_of(damaged) >= 1);  // (not learned)
  // a name it now knows absent: no lookup asks the server, and the rmdir
  // of the emptied directory waits
  const auto before = redis_counters().round_trips;
  double age = 1;
  CHECK(s->lookup(old, "z", &age).code() == ENOENT);
  CHECK(redis_counters().round_trips == before);
  // a create in it is answered here, sent at its flush
  Attr z = _ok(s->create(old, "z", 0644, k_user, true));
  CHECK(redis_counters().round_trips == before);
  CHECK(_ok(c.command({"HEXISTS", keys.dir(old), "z"})).view().integer() == 0);
  _ok(s->flush(z.ino));
  _ok(s->release_files(std::vector<Store::Release>{{z.ino}}).at(0));
  CHECK(_ok(c.command({"HGET", keys.dir(old), "z"})).view().str() == std::to_string(z.ino));
  CHECK(s->defer_unlink(old, "z", nobody));
  CHECK(s->defer_unlink(old, "x", nobody));
  CHECK(s->defer_unlink(old, "y", nobody));
  CHECK(s->defer_rmdir(k_root_ino, "old") == old);
  _ok(s->send_dir_changes());
  CHECK(_ok(c.command({"HEXISTS", keys.dir(k_root_ino), "old"})).view().integer() == 0);
  CHECK(_ok(c.command({"EXISTS", keys.dir(old)})).view().integer() == 0);
  _ok(s->purge(old));
  _ok(c.command({"HDEL", keys.dir(damaged), "bad"}));
}

// Keys past the superblock's next_inode (damage) never cost a create: a
// batch's numbers that an INODE or OPEN key holds are skipped when the
// batch is reserved (a deferred create, answered before the server sees
// it, too), and a create refused for a number held since then takes the
// next one. The stray keys stay as they were, for fsck.
TEST_CASE_FIXTURE(RedisFixture, "a stray inode or open key never costs a create") {
  Connection& c = conn();
  { auto first = _open(pool, prefix, _writeback_options()); }  // (the filesystem)
  const long long n = std::stoll(std::string(_ok(c.command({"HGET", keys.sb(), "next_inode"})).view().str()));
  const Ino next = static_cast<Ino>(n);
  _ok(c.command({"HSET", keys.inode(next), "type", "debris"}));
  _ok(c.command({"HSET", keys.open(next + 1), "x", "1"}));
  _ok(c.command({"HSET", keys.inode(next + 3), "type", "debris"}));
  auto s = _open(pool, prefix, _writeback_options());
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  CHECK(d.ino == next + 2);
  Attr f = _ok(s->create(d.ino, "f", 0644, k_user, true));  // (deferred: answered here)
  CHECK(f.ino == next + 4);
  _ok(s->write(f.ino, 0, "kept", false));
  _ok(s->flush(f.ino));
  CHECK(_read_all(*s, f.ino) == "kept");
  // held after the batch was checked: the create takes the next number
  _ok(c.command({"HSET", keys.inode(next + 5), "type", "debris"}));
  Attr e = _ok(s->mkdir(k_root_ino, "e", 0755, k_user));
  CHECK(e.ino == next + 6);
  for (Ino stray : {next, next + 3, next + 5}) {
    CHECK(_ok(c.command({"HGETALL", keys.inode(stray)})).view().size() == 2);
  }
}

// The unmount of a mount that stopped serving (another mount holds its
// filesystem now: fs/op_init.cpp) drops what waits instead of sending it:
// a deferred create and its data, an existing file's gathered writes, a
// directory's attribute changes. Nothing reaches the server, then or later.
TEST_CASE_FIXTURE(RedisFixture, "drop_gathered: what waits is forgotten, unsent") {
  auto s = _open(pool, prefix, _writeback_options());
  Connection& c = conn();
  auto field = [&](Ino ino, const char* name) {
    return std::string(_ok(c.command({"HGET", keys.inode(ino), name})).view().str());
  };
  Attr d = _ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  Attr g = _ok(s->create(d.ino, "g", 0644, k_user, false));
  _ok(s->write(g.ino, 0, "on the server", false));
  _ok(s->open_for_writing(g.ino));
  auto trips = redis_counters().round_trips;
  Attr f = _ok(s->create(d.ino, "f", 0644, k_user, true));  // (deferred)
  _ok(s->write(f.ino, 0, "never sent", false));
  _ok(s->write(g.ino, 0, "NEVER", false));
  REQUIRE(redis_counters().round_trips == trips);  // (all of it waits)
  _ok(s->flush(f.ino, true));                      // (the create lands: a directory change may wait again)
  _ok(s->write(f.ino, 20, "nor this", false));
  SetAttrRequest chmod;
  chmod.mode = 0700;
  _ok(s->setattr(d.ino, chmod));
  trips = redis_counters().round_trips;
  Store::Dropped dropped = s->drop_gathered();
  CHECK(dropped.files == 2);
  CHECK(dropped.creates == 0);
  CHECK(dropped.dirs == 1);
  CHECK_FALSE(s->gathering(f.ino));
  CHECK_FALSE(s->gathering(g.ino));
  _ok(s->flush_all());  // (nothing left to send)
  CHECK(redis_counters().round_trips == trips);
  CHECK(field(d.ino, "mode") == "0755");
  CHECK(field(f.ino, "size") == "10");
  CHECK(field(g.ino, "size") == "13");
  CHECK(_read_all(*s, g.ino) == "on the server");

  // a create that never reached the server: nothing of it does
  _ok(s->mkdir(d.ino, "sub", 0755, k_user));  // (its reply: what a deferred create needs of the parent)
  Attr h = _ok(s->create(d.ino, "h", 0644, k_user, true));
  _ok(s->write(h.ino, 0, "never", false));
  dropped = s->drop_gathered();
  CHECK(dropped.files == 1);
  CHECK(dropped.creates == 1);
  CHECK(dropped.dirs == 0);
  _ok(s->flush_all());
  CHECK(_ok(c.command({"HGET", keys.dir(d.ino), "h"})).view().is_nil());
  CHECK(_ok(c.command({"EXISTS", keys.inode(h.ino)})).view().integer() == 0);
  SetAttrRequest chmod2;  // (no deferred create counts as waiting: a directory change waits again)
  chmod2.mode = 0711;
  _ok(s->mkdir(d.ino, "sub2", 0755, k_user));
  trips = redis_counters().round_trips;
  _ok(s->setattr(d.ino, chmod2));
  CHECK(redis_counters().round_trips == trips);
}

// A writeback mount's open for writing of a file that exists gathers its
// writes (Store::open_for_writing): none reaches the server before the
// fsync (flush with resume), which sends them in one round trip and lets
// the file gather on; a read sends what waits and shows the server's
// atime after it; a second open keeps what waits; close (flush) ends it,
// and so does an unlink. On a default mount nothing is gathered.
TEST_CASE_FIXTURE(RedisFixture, "writeback: an existing file open for writing gathers until its close") {
  auto s = _open(pool, prefix, _writeback_options());
  Attr f = _ok(s->create(k_root_ino, "f", 0644, k_user, false));
  std::string want(100000, 'a');
  _ok(s->write(f.ino, 0, want, false));
  auto server = [&](const char* field) {
    return std::string(_ok(conn().command({"HGET", keys.inode(f.ino), field})).view().str());
  };
  auto put = [&](std::uint64_t off, const std::string& data) {
    _ok(s->write(f.ino, off, data, false));
    if (want.size() < off + data.size()) {
      want.resize(off + data.size());
    }
    want.replace(off, data.size(), data);
  };

  _ok(s->open_for_writing(f.ino));
  REQUIRE(s->gathering(f.ino));
  auto trips = redis_counters().round_trips;
  put(70000, std::string(5000, 'B'));  // inside, across a block's end
  put(99000, std::string(3000, 'C'));  // past the end
  put(0, std::string(65536, 'D'));     // a whole block (the server's file is bigger)
  CHECK(redis_counters().round_trips == trips);
  Attr mine = _ok(s->getattr(f.ino));
  CHECK(mine.size == 102000);
  CHECK(mine.bytes == 102000);  // (an overwrite adds no byte)
  CHECK(server("size") == "100000");
  trips = redis_counters().round_trips;
  _ok(s->flush(f.ino, true));  // fsync
  CHECK(redis_counters().round_trips == trips + 1);
  CHECK(server("size") == "102000");
  CHECK(server("bytes") == "102000");
  CHECK(s->gathering(f.ino));

  put(50, "after the fsync");
  CHECK(server("size") == "102000");
  CHECK(_read_all(*s, f.ino) == want);  // sends what waits first
  CHECK(s->gathering(f.ino));
  CHECK(_ok(s->getattr(f.ino)).atime_ns == std::stoll(server("atime")));  // the read's touch
  _ok(s->open_for_writing(f.ino));                                        // a second open: what waits stays
  put(200, "second open");
  _ok(s->open_for_writing(f.ino));
  CHECK(s->gathering(f.ino));
  _ok(s->flush(f.ino));  // close
  CHECK_FALSE(s->gathering(f.ino));
  CHECK(server("size") == std::to_string(want.size()));
  CHECK(_read_all(*s, f.ino) == want);  // (the server's: nothing waits)

  _ok(s->open_for_writing(f.ino));
  put(300, "then unlinked");
  CHECK(_ok(s->unlink(k_root_ino, "f")) == f.ino);  // an orphan: open here
  CHECK_FALSE(s->gathering(f.ino));
  CHECK(_ok(s->getattr(f.ino)).nlink == 0);
  CHECK(_read_all(*s, f.ino) == want);

  // st_blocks: an overwrite inside a sparse file adds no byte to the count
  Attr h = _ok(s->create(k_root_ino, "h", 0644, k_user, false));
  _ok(s->write(h.ino, 0, std::string(1000, 'a'), false));
  _ok(s->write(h.ino, 290000, std::string(10, 'z'), false));
  _ok(s->open_for_writing(h.ino));
  _ok(s->write(h.ino, 0, std::string(500, 'b'), false));
  _ok(s->write(h.ino, 289000, std::string(500, 'c'), false));  // (into the hole)
  const std::uint64_t shown = _ok(s->getattr(h.ino)).bytes;
  _ok(s->flush(h.ino));
  CHECK(shown == std::stoull(std::string(_ok(conn().command({"HGET", keys.inode(h.ino), "bytes"})).view().str())));

  // a damaged inode (not a hash) is opened, counted, and not gathered
  Attr d = _ok(s->create(k_root_ino, "damaged", 0644, k_user, false));
  _ok(conn().command({"DEL", keys.inode(d.ino)}));
  _ok(conn().command({"SET", keys.inode(d.ino), "not a hash"}));
  _ok(s->open_for_writing(d.ino));
  CHECK_FALSE(s->gathering(d.ino));
  CHECK(_ok(conn().command({"HGET", keys.open(d.ino), s->session()})).view().str() == "2");
  s.reset();

  auto plain = _open(pool, prefix);  // (the writeback mount's claim went with it)
  Attr g = _ok(plain->create(k_root_ino, "g", 0644, k_user, false));
  _ok(plain->open_for_writing(g.ino));
  CHECK_FALSE(plain->gathering(g.ino));
}

// A gathered file's changes depend on their order, but the runner sends a
// refused command again after the ones queued behind it ran (redis.hpp,
// sent_again). Here setattr.lua is refused (the server lost it: NOSCRIPT)
// and the write behind it, which drops setuid, ran first on the old mode:
// the flush sends the changes again, in order, and the chmod's setuid goes
// as the write said (tar's -p of a setuid file, then a write by the owner).
// Also: a write over an earlier one keeps the later bytes.
TEST_CASE_FIXTURE(RedisFixture, "gather: changes the runner reordered are sent again in order") {
  auto s = _open(pool, prefix);
  auto other = _open(pool, prefix);  // another mount: the server's
  Attr f = _ok(s->create(k_root_ino, "f", S_IFREG | 0644, k_user, true));
  REQUIRE(s->gathering(f.ino));
  SetAttrRequest suid;
  suid.mode = 04755;
  _ok(s->setattr(f.ino, suid));
  WriteKill kill{true};
  _ok(s->write(f.ino, 0, "first", false, &kill));
  CHECK((_ok(s->getattr(f.ino)).mode & 07777) == 0755);  // this mount's view
  _ok(s->write(f.ino, 0, "again", false));               // over the first bytes
  SetAttrRequest utimes;                                 // (in that write's script)
  utimes.mtime = SetAttrRequest::Time::Set;
  utimes.mtime_ns = 2000000000456;
  _ok(s->setattr(f.ino, utimes));
  _ok(conn().command({"SCRIPT", "FLUSH"}));
  _ok(conn().command({"SCRIPT", "LOAD", std::string(lua::script_source(lua::write).text)}));
  _ok(s->flush(f.ino));
  Attr server = _ok(other->getattr(f.ino));
  CHECK((server.mode & 07777) == 0755);
  CHECK(server.mtime_ns == 2000000000456);
  CHECK(_read_all(*other, f.ino) == "again");
}

// A writeback mount's end releases its claim (WRITEBACK) whatever else
// fails: with the mounts' register damaged by someone else (not a hash),
// the claim still goes at once, and the next mount is not refused until
// the claim lapses.
TEST_CASE_FIXTURE(RedisFixture, "a writeback mount's end releases its claim beside a damaged register") {
  StoreOptions wb;
  wb.writeback = true;
  auto s = _open(pool, prefix, wb);
  CHECK(_ok(conn().command({"EXISTS", keys.writeback()})).view().integer() == 1);
  _ok(conn().command({"DEL", keys.mounts()}));
  _ok(conn().command({"SET", keys.mounts(), "damaged"}));
  Status ended = s->end_session();
  CHECK_FALSE(ended.ok());  // (the register's answer: WRONGTYPE)
  CHECK(_ok(conn().command({"EXISTS", keys.writeback()})).view().integer() == 0);
  _ok(conn().command({"DEL", keys.mounts()}));
  auto next = _open(pool, prefix);  // not refused
  CHECK(next->session() != s->session());
}
