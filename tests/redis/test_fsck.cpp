// core::fsck against a real redis-server: a healthy filesystem built through
// Store checks clean; then each case corrupts it one way with raw commands,
// checks that fsck finds exactly that, that --repair fixes it, and that a
// second fsck is clean.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "fixture.hpp"
#include "snap/dump_io.hpp"
#include "snap/fsck.hpp"
#include "snap/install.hpp"
#include "snap/rollback.hpp"
#include "snap/snapshot.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};
constexpr std::uint32_t k_bs = 4096;

template <class T>
T _ok(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return std::move(r).value();
}

void _ok(Status s) { REQUIRE_MESSAGE(s.ok(), s.error().message); }

std::string _str(std::uint64_t n) { return std::to_string(n); }

std::string _dump(const FsckReport& r) {
  std::string out;
  for (const auto& p : r.problems) {
    out += fsck_problem_line(p) + "\n";
  }
  return out;
}

std::vector<std::string> _kinds(const FsckReport& r) {
  std::vector<std::string> k;
  for (const auto& p : r.problems) {
    k.push_back(p.kind);
  }
  std::sort(k.begin(), k.end());
  return k;
}

std::vector<std::string> _sorted(std::vector<std::string_view> v) {
  std::vector<std::string> out(v.begin(), v.end());
  std::sort(out.begin(), out.end());
  return out;
}

// The inodes of the healthy filesystem.
struct Tree {
  std::unique_ptr<Store> store;
  Ino d = 0;      // /d
  Ino sub = 0;    // /sub (made in /d, moved to /)
  Ino f = 0;      // /d/f and /sub/hard: 10000 bytes, an xattr
  Ino sparse = 0; // /sparse: a hole then 3 bytes at 5 blocks
  Ino fifo = 0;   // /fifo
  Ino ln = 0;     // /ln -> d/f
  Ino open = 0;   // unlinked, not purged: an orphan
  Ino empty = 0;  // /d/empty: a file of 0 bytes
  Ino rmme = 0;   // removed, not purged: an orphan directory
  // also /d/x2 (a directory), /e1 (a directory), /sub/e2 and /o2 (files)
};

class FsckFixture : public RedisFixture {
 public:
  Tree build() {
    Tree t;
    StoreOptions o;
    o.mkfs_block_size = k_bs;
    t.store = _ok(Store::open(pool, prefix, o));
    Store& s = *t.store;
    t.d = _ok(s.mkdir(k_root_ino, "d", 0755, k_user)).ino;
    t.sub = _ok(s.mkdir(t.d, "sub", 0700, k_user)).ino;
    t.f = _ok(s.mknod(t.d, "f", S_IFREG | 0644, 0, k_user)).ino;
    _ok(s.write(t.f, 0, std::string(10000, 'x'), false));
    _ok(s.link(t.f, k_root_ino, "hard"));
    _ok(s.setxattr(t.f, "user.a", "value", 0));
    _ok(s.rename(t.d, "sub", k_root_ino, "sub", 0));
    _ok(s.rename(k_root_ino, "hard", t.sub, "hard", 0));
    t.sparse = _ok(s.mknod(k_root_ino, "sparse", S_IFREG | 0600, 0, k_user)).ino;
    _ok(s.write(t.sparse, 5 * k_bs, "end", false));
    t.fifo = _ok(s.mknod(k_root_ino, "fifo", S_IFIFO | 0600, 0, k_user)).ino;
    t.ln = _ok(s.symlink(k_root_ino, "ln", "d/f", k_user)).ino;
    t.empty = _ok(s.mknod(t.d, "empty", S_IFREG | 0644, 0, k_user)).ino;
    // shrunk mid-block, then grown again: no stale bytes
    Ino g = _ok(s.mknod(t.d, "g", S_IFREG | 0644, 0, k_user)).ino;
    _ok(s.write(g, 0, std::string(3 * k_bs, 'g'), false));
    SetAttrRequest shrink;
    shrink.size = k_bs + 10;
    _ok(s.setattr(g, shrink));
    // removed and purged
    Ino gone = _ok(s.mknod(k_root_ino, "gone", S_IFREG | 0644, 0, k_user)).ino;
    _ok(s.write(gone, 0, std::string(9000, 'z'), false));
    CHECK(_ok(s.unlink(k_root_ino, "gone")) == 0);  // nobody has it open: freed at once
    _ok(s.purge(gone));                              // (a no-op)
    // removed while someone may still be in it: an orphan directory
    t.rmme = _ok(s.mkdir(k_root_ino, "rmme", 0755, k_user)).ino;
    _ok(s.rmdir(k_root_ino, "rmme"));
    // removed while open: an orphan with its data
    t.open = _ok(s.mknod(k_root_ino, "open", S_IFREG | 0644, 0, k_user)).ino;
    _ok(s.write(t.open, 0, "still readable", false));
    _ok(s.open_file(t.open));
    CHECK(_ok(s.unlink(k_root_ino, "open")) == t.open);
    // renames: a directory over an empty one elsewhere, an exchange of a
    // file and a directory across directories, a file over a file
    Ino x1 = _ok(s.mkdir(k_root_ino, "x1", 0755, k_user)).ino;
    _ok(s.mkdir(t.d, "x2", 0755, k_user));
    Ino x2 = _ok(s.rename(k_root_ino, "x1", t.d, "x2", 0));
    _ok(s.purge(x2));
    CHECK(_ok(s.getattr(x1)).parent == t.d);
    _ok(s.mknod(k_root_ino, "e1", S_IFREG | 0644, 0, k_user));
    _ok(s.mkdir(t.sub, "e2", 0755, k_user));
    _ok(s.rename(k_root_ino, "e1", t.sub, "e2", k_rename_exchange));
    Ino o1 = _ok(s.mknod(k_root_ino, "o1", S_IFREG | 0644, 0, k_user)).ino;
    _ok(s.write(o1, 0, std::string(100, 'o'), false));
    Ino o2 = _ok(s.mknod(k_root_ino, "o2", S_IFREG | 0644, 0, k_user)).ino;
    _ok(s.write(o2, 0, std::string(200, 'p'), false));
    _ok(s.setxattr(o2, "user.z", "z", 0));
    // (nobody has o2 open: the rename frees it at once, no orphan)
    CHECK(_ok(s.rename(k_root_ino, "o1", k_root_ino, "o2", 0)) == 0);
    CHECK(s.getattr(o2).code() == ENOENT);
    _ok(s.removexattr(t.f, "user.a"));
    _ok(s.setxattr(t.f, "user.b", "v", 0));
    return t;
  }

  FsckReport check(bool repair = false) { return _ok(fsck(pool, prefix, repair, nullptr)); }

  void cmd(std::initializer_list<std::string_view> argv) { _ok(conn().command(argv)); }

  // fsck finds exactly `kinds` (all repairable), repair fixes them all, and
  // a second fsck is clean.
  void expect_repaired(std::vector<std::string_view> kinds) {
    auto before = check();
    INFO(_dump(before));
    CHECK(_kinds(before) == _sorted(kinds));
    for (const auto& p : before.problems) {
      CHECK_MESSAGE(p.repairable, fsck_problem_line(p));
      CHECK_FALSE(p.repaired);
    }
    auto fixed = check(true);
    INFO(_dump(fixed));
    CHECK(_kinds(fixed) == _sorted(kinds));
    CHECK(fixed.remaining() == 0);
    auto after = check();
    INFO(_dump(after));
    CHECK(after.problems.empty());
  }

  Ino lookup(Ino dir, const std::string& name) {
    auto r = _ok(conn().command({"HGET", keys.dir(dir), name}));
    REQUIRE_FALSE(r.view().is_nil());
    return std::stoull(std::string(r.view().str()));
  }
};

}  // namespace

TEST_SUITE_BEGIN("core::fsck");

TEST_CASE_FIXTURE(FsckFixture, "a healthy filesystem is clean") {
  auto t = build();
  auto r = check();
  INFO(_dump(r));
  CHECK(r.problems.empty());
  CHECK(r.inodes == 15);  // root d sub f sparse fifo ln empty g open rmme, x2 e1 e2 o2
  CHECK(r.dirs == 6);
  CHECK(r.files == 7);
  CHECK(r.blocks == 3 + 1 + 2 + 1 + 1);  // f, sparse, g, open, o2
  CHECK(r.bytes == 10000 + 3 + k_bs + 10 + 14 + 100);
  // repair of a clean filesystem changes nothing
  auto before = keys_under(prefix);
  auto again = check(true);
  CHECK(again.problems.empty());
  CHECK(keys_under(prefix) == before);
}

TEST_CASE_FIXTURE(FsckFixture, "orphans of a mount that is gone are reported, and left to the next mount") {
  auto t = build();
  _ok(t.store->end_session());  // as a mount killed with the files open
  auto r = check();
  INFO(_dump(r));
  // (the open file's count, left by the dead mount, is fsck's to remove)
  CHECK(_kinds(r) ==
        _sorted({fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan, fsck_kind::k_stale_open}));
  for (const auto& p : r.problems) {
    CHECK(p.repairable == (p.kind == fsck_kind::k_stale_open));
  }
  auto repaired = check(true);
  CHECK(repaired.remaining() == 2);
  // The next read-write mount frees them, and fsck is clean again.
  StoreOptions o;
  auto next = _ok(Store::open(pool, prefix, o));
  CHECK(_ok(next->purge_dead_orphans()) == 2);
  auto after = check();
  INFO(_dump(after));
  CHECK(after.problems.empty());
}

// ... but not one whose inode it cannot decode: the line says so.
TEST_CASE_FIXTURE(FsckFixture, "an orphan of a mount that is gone whose inode is bad waits for the inode's fix") {
  auto t = build();
  _ok(t.store->end_session());
  cmd({"HSET", keys.inode(t.open), "type", "x"});
  auto r = check();
  INFO(_dump(r));
  CHECK(_kinds(r) ==
        _sorted({fsck_kind::k_bad_inode, fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan, fsck_kind::k_stale_open}));
  std::size_t waiting = 0;
  for (const auto& p : r.problems) {
    if (p.kind == fsck_kind::k_dead_orphan && p.detail.find("inode " + std::to_string(t.open) + " ") == 0) {
      CHECK_MESSAGE(p.detail.find("frees it once the inode is fixed") != std::string::npos, p.detail);
      ++waiting;
    }
  }
  CHECK(waiting == 1);
}

// ... and one whose link count is no number: counted again by the repair,
// then the next mount's to free, in one run.
TEST_CASE_FIXTURE(FsckFixture, "an orphan of a mount that is gone whose link count is no number") {
  auto t = build();
  _ok(t.store->end_session());
  cmd({"HSET", keys.inode(t.open), "nlink", "none"});
  auto r = check(true);
  INFO(_dump(r));
  CHECK(_kinds(r) == _sorted({fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan, fsck_kind::k_stale_open,
                              fsck_kind::k_wrong_nlink}));
  CHECK(_ok(conn().command({"HGET", keys.inode(t.open), "nlink"})).view().str() == "0");
  auto again = check();
  CHECK(_kinds(again) == _sorted({fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan}));
}

// The report of an orphan the next mount frees goes by the state the
// repair leaves: an orphan whose link count the repair sets to 0 is
// reported before the repair as after it (the check after a repair finds
// no problem the one before did not), and a record the repair drops as
// stale (its inode still named) is no orphan of anyone's.
TEST_CASE_FIXTURE(FsckFixture, "an orphan of a mount that is gone is reported as the repair leaves it") {
  auto t = build();
  _ok(t.store->end_session());
  const std::string dead(_ok(conn().command({"HGET", keys.orphans(), _str(t.open)})).view().str());
  SUBCASE("unnamed, with a link count the repair sets to 0") {
    cmd({"HSET", keys.inode(t.open), "nlink", "1"});
    auto r = check();
    INFO(_dump(r));
    CHECK(_kinds(r) == _sorted({fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan, fsck_kind::k_stale_open,
                                fsck_kind::k_wrong_nlink}));
    auto fixed = check(true);
    CHECK(fixed.remaining() == 2);
    auto again = check();
    INFO(_dump(again));
    CHECK(_kinds(again) == _sorted({fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan}));
  }
  SUBCASE("still named, with a link count of 0") {
    cmd({"HSET", keys.inode(t.f), "nlink", "0"});
    cmd({"HSET", keys.orphans(), _str(t.f), dead});
    auto r = check();
    INFO(_dump(r));
    CHECK(_kinds(r) == _sorted({fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan, fsck_kind::k_stale_open,
                                fsck_kind::k_stale_orphan, fsck_kind::k_wrong_nlink}));
    for (const auto& p : r.problems) {
      CHECK_MESSAGE(p.detail.find("inode " + _str(t.f) + " was unlinked") == std::string::npos, p.detail);
    }
    auto fixed = check(true);
    CHECK(fixed.remaining() == 2);
    auto again = check();
    INFO(_dump(again));
    CHECK(_kinds(again) == _sorted({fsck_kind::k_dead_orphan, fsck_kind::k_dead_orphan}));
    CHECK(_ok(conn().command({"HGET", keys.inode(t.f), "nlink"})).view().str() == "2");  // (its two names)
  }
}

TEST_CASE_FIXTURE(FsckFixture, "a prefix with no filesystem") {
  CHECK(fsck(pool, prefix, false, nullptr).code() == ENOENT);
  CHECK(fsck(pool, "bad:prefix", false, nullptr).code() == EINVAL);
}

TEST_CASE_FIXTURE(FsckFixture, "link counts") {
  auto t = build();
  SUBCASE("a file's nlink off by one") {
    cmd({"HINCRBY", keys.inode(t.f), "nlink", "1"});
    expect_repaired({fsck_kind::k_wrong_nlink});
    CHECK(_ok(t.store->getattr(t.f)).nlink == 2);
  }
  SUBCASE("an entry removed behind the file's back") {
    cmd({"HDEL", keys.dir(t.sub), "hard"});
    expect_repaired({fsck_kind::k_wrong_nlink});
    CHECK(_ok(t.store->getattr(t.f)).nlink == 1);
  }
  SUBCASE("a directory's nlink") {
    cmd({"HSET", keys.inode(k_root_ino), "nlink", "7"});
    expect_repaired({fsck_kind::k_wrong_nlink});
    CHECK(_ok(t.store->getattr(k_root_ino)).nlink == 5);  // d, sub, e1
  }
  SUBCASE("an orphan's nlink") {
    cmd({"HSET", keys.inode(t.open), "nlink", "1"});
    expect_repaired({fsck_kind::k_wrong_nlink});
    CHECK(_ok(t.store->getattr(t.open)).nlink == 0);
  }
}

TEST_CASE_FIXTURE(FsckFixture, "entries") {
  auto t = build();
  SUBCASE("a dangling entry") {
    cmd({"HSET", keys.dir(t.d), "ghost", "999"});
    const auto gen = _ok(t.store->getattr(t.d)).gen;
    expect_repaired({fsck_kind::k_dangling_entry});
    CHECK(t.store->lookup(t.d, "ghost").code() == ENOENT);
    CHECK(_ok(t.store->getattr(t.d)).gen == gen + 1);  // counted, as the scripts count changes
  }
  SUBCASE("a dangling entry in a directory whose inode is damaged") {
    // (the entry goes; the damaged inode, reported on its own, is left
    // as it is: no 'gen' counted into a key of another type, or into a
    // 'gen' that is no count)
    cmd({"HSET", keys.dir(t.d), "ghost", "999"});
    SUBCASE("a set") {
      cmd({"DEL", keys.inode(t.d)});
      cmd({"SADD", keys.inode(t.d), "x"});
    }
    SUBCASE("a 'gen' that is no count") { cmd({"HSET", keys.inode(t.d), "gen", "many"}); }
    auto r = _ok(fsck(pool, prefix, true, nullptr));
    INFO(_dump(r));
    bool dangling = false;
    for (const auto& p : r.problems) {
      if (p.kind == fsck_kind::k_dangling_entry) {
        dangling = true;
        CHECK(p.repaired);
        CHECK(p.detail.find("repair failed") == std::string::npos);
      }
    }
    CHECK(dangling);
    CHECK(_ok(conn().command({"HEXISTS", keys.dir(t.d), "ghost"})).view().integer() == 0);
  }
  SUBCASE("an inode deleted under its entry") {
    cmd({"DEL", keys.inode(t.empty)});
    expect_repaired({fsck_kind::k_dangling_entry, fsck_kind::k_wrong_counter});
    CHECK(t.store->lookup(t.d, "empty").code() == ENOENT);
    CHECK(_ok(t.store->statfs()).inodes == 14);
  }
  SUBCASE("an entry that is not an inode number") {
    cmd({"HSET", keys.dir(t.d), "junk", "12abc"});
    expect_repaired({fsck_kind::k_bad_entry});
  }
  SUBCASE("an entry with a non-canonical number is rewritten") {
    cmd({"HSET", keys.dir(k_root_ino), "fifo", "0" + _str(t.fifo)});
    expect_repaired({fsck_kind::k_bad_entry});
    CHECK(lookup(k_root_ino, "fifo") == t.fifo);
  }
  SUBCASE("a non-canonical entry that also names nothing, or a directory named elsewhere: one repair") {
    // (the removal after the rewrite finds the entry as the rewrite left it)
    cmd({"HSET", keys.dir(t.d), "ghost", "0999999"});
    cmd({"HSET", keys.dir(t.d), "alias", "0" + _str(t.sub)});
    expect_repaired(
        {fsck_kind::k_bad_entry, fsck_kind::k_bad_entry, fsck_kind::k_dangling_entry, fsck_kind::k_extra_entry});
  }
  SUBCASE("a second entry naming a directory") {
    cmd({"HSET", keys.dir(t.d), "alias", _str(t.sub)});
    expect_repaired({fsck_kind::k_extra_entry});
    CHECK(t.store->lookup(t.d, "alias").code() == ENOENT);
    CHECK(lookup(k_root_ino, "sub") == t.sub);
  }
  SUBCASE("an entry naming the root") {
    cmd({"HSET", keys.dir(t.sub), "up", "1"});
    expect_repaired({fsck_kind::k_extra_entry});
  }
}

TEST_CASE_FIXTURE(FsckFixture, "directory parents") {
  auto t = build();
  SUBCASE("a directory with the wrong parent") {
    cmd({"HSET", keys.inode(t.sub), "parent", _str(t.d)});
    expect_repaired({fsck_kind::k_wrong_parent});
    CHECK(_ok(t.store->getattr(t.sub)).parent == k_root_ino);
  }
  SUBCASE("the root's parent") {
    cmd({"HSET", keys.inode(k_root_ino), "parent", "0"});
    expect_repaired({fsck_kind::k_wrong_parent});
  }
  // /a/b, then a moved into b by hand, keeping every count right, a's
  // parent field set to `parent` (b: right); returns a and b
  auto cycle = [&](std::optional<Ino> parent) {
    Ino a = _ok(t.store->mkdir(k_root_ino, "a", 0755, k_user)).ino;
    Ino b = _ok(t.store->mkdir(a, "b", 0755, k_user)).ino;
    cmd({"HDEL", keys.dir(k_root_ino), "a"});
    cmd({"HINCRBY", keys.inode(k_root_ino), "nlink", "-1"});
    cmd({"HSET", keys.dir(b), "a", _str(a)});
    cmd({"HSET", keys.inode(a), "parent", _str(parent.value_or(b))});
    cmd({"HINCRBY", keys.inode(b), "nlink", "1"});
    return std::pair{a, b};
  };
  SUBCASE("a cycle of directories the root does not reach") {
    auto [a, b] = cycle(std::nullopt);
    expect_repaired({fsck_kind::k_detached_dir});
    Ino lf = lookup(k_root_ino, "lost+found");
    Ino moved = lookup(lf, "#" + _str(a)) == a ? a : b;
    CHECK(_ok(t.store->getattr(moved)).parent == lf);
  }
  SUBCASE("a cycle whose parent field is wrong too: one repair sets it, and reattaches") {
    // (the reattachment's check of the parent finds what the earlier
    // stage left, not what the scan read)
    cycle(t.d);
    expect_repaired({fsck_kind::k_wrong_parent, fsck_kind::k_detached_dir});
  }
}

TEST_CASE_FIXTURE(FsckFixture, "lost inodes go to /lost+found") {
  auto t = build();
  SUBCASE("a file whose only entry was removed") {
    cmd({"HDEL", keys.dir(k_root_ino), "fifo"});
    const auto root_gen = _ok(t.store->getattr(k_root_ino)).gen;
    expect_repaired({fsck_kind::k_lost_inode});
    CHECK(_ok(t.store->getattr(k_root_ino)).gen == root_gen + 1);  // lost+found made
    auto lf = _ok(t.store->lookup(k_root_ino, "lost+found"));
    CHECK(lf.gen == 1);  // the file put in it
    CHECK(lf.is_dir());
    CHECK((lf.mode & 07777) == 0700);
    CHECK(lf.parent == k_root_ino);
    CHECK(lf.nlink == 2);
    CHECK(_ok(t.store->lookup(lf.ino, "#" + _str(t.fifo))).ino == t.fifo);
    CHECK(_ok(t.store->getattr(t.fifo)).nlink == 1);
    CHECK(_ok(t.store->getattr(k_root_ino)).nlink == 6);
    CHECK(_ok(t.store->statfs()).inodes == 16);
  }
  SUBCASE("a directory whose entry was removed") {
    cmd({"HDEL", keys.dir(k_root_ino), "d"});
    // the root still counts it as a subdirectory
    expect_repaired({fsck_kind::k_lost_inode, fsck_kind::k_wrong_nlink});
    Ino lf = lookup(k_root_ino, "lost+found");
    CHECK(lookup(lf, "#" + _str(t.d)) == t.d);
    CHECK(_ok(t.store->getattr(t.d)).parent == lf);
    CHECK(_ok(t.store->getattr(lf)).nlink == 3);
    std::string data;
    _ok(t.store->read(t.f, 0, 20000, data));
    CHECK(data == std::string(10000, 'x'));
  }
  SUBCASE("an inode no entry ever named") {
    cmd({"HSET", keys.inode(200), "type", "file", "mode", "0644", "uid", "0", "gid", "0", "size", "0", "nlink", "0",
         "rdev", "0", "bytes", "0", "atime", "1", "mtime", "1", "ctime", "1"});
    cmd({"HINCRBY", keys.sb(), "inodes", "1"});
    expect_repaired({fsck_kind::k_lost_inode});
  }
  SUBCASE("an existing /lost+found is reused") {
    Ino lf = _ok(t.store->mkdir(k_root_ino, "lost+found", 0700, k_user)).ino;
    cmd({"HDEL", keys.dir(t.d), "empty"});
    cmd({"HDEL", keys.dir(t.sub), "hard"});
    cmd({"HDEL", keys.dir(t.d), "f"});
    expect_repaired({fsck_kind::k_lost_inode, fsck_kind::k_lost_inode});
    CHECK(lookup(lf, "#" + _str(t.empty)) == t.empty);
    CHECK(lookup(lf, "#" + _str(t.f)) == t.f);
    CHECK(_ok(t.store->getattr(t.f)).nlink == 1);
  }
  SUBCASE("a /lost+found that is not a directory") {
    _ok(t.store->mknod(k_root_ino, "lost+found", S_IFREG | 0600, 0, k_user));
    cmd({"HDEL", keys.dir(k_root_ino), "fifo"});
    auto r = check(true);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == fsck_kind::k_lost_inode);
    CHECK_FALSE(r.problems[0].repairable);
    CHECK_FALSE(r.problems[0].repaired);
  }
}

// Making /lost+found and reattaching into it change several keys in one
// step (fsck_apply.lua): all of it or nothing. (The analysis reattaches
// nothing into a damaged directory; this holds whatever it lets through,
// or a change made between the scan and the repair.)
TEST_CASE_FIXTURE(FsckFixture, "a repair step of several keys writes all of them or nothing") {
  Connection& c = conn();
  const std::string a = prefix + ":T:a", b = prefix + ":T:b", str = prefix + ":T:s", fresh = prefix + ":T:new";
  cmd({"HSET", a, "nlink", "2", "gen", "7"});
  cmd({"HSET", b, "nlink", "lots"});
  cmd({"SET", str, "a string"});
  auto get = [&](const std::string& key, const std::string& field) {
    Reply r = _ok(c.command({"HGET", key, field}));
    return r.view().is_nil() ? std::string("(none)") : std::string(r.view().str());
  };
  auto apply = [&](std::initializer_list<std::string> names, std::initializer_list<std::string> args) {
    return c.eval(lua::fsck_apply, names, args);
  };
  // a count that is not one: nothing written, the key and field named
  auto r = apply({a, fresh, b}, {"HINCRBY", "2", "nlink", "1", "HSET", "2", "x", "1", "HINCRBY", "2", "nlink", "1"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == EIO);
  CHECK(r.error().message.find(b + " nlink is not a count") != std::string::npos);
  CHECK(get(a, "nlink") == "2");
  CHECK(_ok(c.command({"EXISTS", fresh})).view().integer() == 0);
  // a key that is not a hash: likewise
  r = apply({a, str}, {"HDEL", "1", "gen", "HSET", "2", "x", "1"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find(str + " is a string") != std::string::npos);
  CHECK(get(a, "gen") == "7");
  // a change count that is not one is left as it is; the rest is written
  cmd({"HSET", b, "gen", "many"});
  r = apply({b, a, fresh}, {"HINCRBY", "2", "gen", "1", "HINCRBY", "2", "gen", "1", "HSET", "4", "x", "1", "y", "2"});
  REQUIRE(r.ok());
  CHECK(r->view().integer() == 2);
  CHECK(get(b, "gen") == "many");
  CHECK(get(a, "gen") == "8");
  CHECK(get(fresh, "y") == "2");
  // counted as the mounts' scripts count it: the last one a double holds
  // exactly (what a mount reads) wraps to 1
  cmd({"HSET", a, "gen", "9007199254740991"});
  cmd({"HSET", b, "gen", "9007199254740990"});
  r = apply({a, b}, {"HINCRBY", "2", "gen", "1", "HINCRBY", "2", "gen", "1"});
  REQUIRE(r.ok());
  CHECK(get(a, "gen") == "1");
  CHECK(get(b, "gen") == "9007199254740991");
  cmd({"HSET", a, "gen", "7"});
  // what the check found (HEQUAL, HABSENT) no longer holds: nothing
  // written (EAGAIN, naming it); still holds: the rest is written
  r = apply({a, fresh, a}, {"HEQUAL", "2", "nlink", "3", "HSET", "2", "z", "1", "HINCRBY", "2", "nlink", "1"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == EAGAIN);
  CHECK(r.error().message.find(a + " nlink changed since the check") != std::string::npos);
  r = apply({fresh, a}, {"HABSENT", "1", "y", "HINCRBY", "2", "nlink", "1"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == EAGAIN);
  CHECK(get(a, "nlink") == "2");
  CHECK(get(fresh, "z") == "(none)");
  r = apply({a, fresh, fresh}, {"HEQUAL", "2", "nlink", "2", "HABSENT", "1", "z", "HSET", "2", "z", "1"});
  REQUIRE(r.ok());
  CHECK(r->view().integer() == 1);
  CHECK(get(fresh, "z") == "1");
  CHECK(get(a, "nlink") == "2");
  // malformed arguments: refused, nothing written
  r = apply({a}, {"HEQUAL", "1", "nlink"});
  CHECK_FALSE(r.ok());
  r = apply({a}, {"HABSENT", "2", "x", "y"});
  CHECK_FALSE(r.ok());
  r = apply({a}, {"DEL", "0"});
  CHECK_FALSE(r.ok());
  r = apply({a}, {"HSET", "4", "x", "1"});
  CHECK_FALSE(r.ok());
  r = apply({a}, {"HSET", "2", "x", "1", "extra"});
  CHECK_FALSE(r.ok());
  r = apply({a}, {"HSET", "1", "x"});
  CHECK_FALSE(r.ok());
  r = apply({a}, {"HINCRBY", "2", "x", "one"});
  CHECK_FALSE(r.ok());
  r = apply({a}, {"HDEL", "0"});
  CHECK_FALSE(r.ok());
  CHECK(get(a, "x") == "(none)");
}

TEST_CASE_FIXTURE(FsckFixture, "a repaired field goes with its mark and its directory's count, or nothing does") {
  Connection& c = conn();
  const std::string dir = prefix + ":T:dir", ino = prefix + ":T:ino", record = prefix + ":T:record",
                    str = prefix + ":T:s", block = prefix + ":T:block";
  cmd({"HSET", dir, "ghost", "999", "kept", "5"});
  cmd({"HSET", ino, "type", "dir", "gen", "7"});
  cmd({"SET", str, "a string"});
  auto get = [&](const std::string& key, const std::string& field) {
    Reply r = _ok(c.command({"HGET", key, field}));
    return r.view().is_nil() ? std::string("(none)") : std::string(r.view().str());
  };
  auto exists = [&](const std::string& key) { return _ok(c.command({"EXISTS", key})).view().integer() != 0; };
  // a key that is no hash: refused before the mark and the count
  auto r = c.eval(lua::fsck_field, {str, record, ino}, {"untracked", "HDEL", "ghost", "value", "999"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == EIO);
  CHECK(r.error().message.find(str + " is a string") != std::string::npos);
  CHECK_FALSE(exists(record));
  CHECK(get(ino, "gen") == "7");
  // a field that holds other than what the check read (a mount changed
  // it since): 0, nothing written, neither the mark nor the count
  auto changed = [&](const std::vector<std::string>& k, const std::vector<std::string>& args) {
    Reply got = _ok(c.eval(lua::fsck_field, k, args));
    return got.view().type() == ReplyView::Type::Integer && got.view().integer() == 0;
  };
  CHECK(changed({dir, record, ino}, {"untracked", "HDEL", "ghost", "value", "99"}));
  CHECK(changed({dir, record, ino}, {"untracked", "HDEL", "ghost", "absent", ""}));
  CHECK(changed({dir, record, ino}, {"untracked", "HSET", "ghost", "value", "0999", "9"}));
  CHECK(changed({dir, record, ino}, {"untracked", "HSET", "new", "value", "1", "9"}));
  CHECK(get(dir, "ghost") == "999");
  CHECK(get(dir, "new") == "(none)");
  CHECK_FALSE(exists(record));
  CHECK(get(ino, "gen") == "7");
  // an entry removed: the mark and the count with it
  r = c.eval(lua::fsck_field, {dir, record, ino}, {"untracked", "HDEL", "ghost", "value", "999"});
  REQUIRE(r.ok());
  CHECK(r->view().integer() == 1);
  CHECK(get(dir, "ghost") == "(none)");
  CHECK(_ok(c.command({"GET", record})).view().str() == "untracked");
  CHECK(get(ino, "gen") == "8");
  // found as the repair leaves it (sent again after a lost reply, or a
  // mount made the same change): 1, nothing written
  cmd({"DEL", record});
  CHECK_FALSE(changed({dir, record, ino}, {"untracked", "HDEL", "ghost", "value", "999"}));
  CHECK_FALSE(changed({dir, record, ino}, {"untracked", "HSET", "kept", "absent", "", "5"}));
  CHECK_FALSE(exists(record));
  CHECK(get(ino, "gen") == "8");
  // a field the check found absent is set
  r = c.eval(lua::fsck_field, {dir, record, ino}, {"untracked", "HSET", "born", "absent", "", "12"});
  REQUIRE(r.ok());
  CHECK(get(dir, "born") == "12");
  CHECK(get(ino, "gen") == "9");
  // a stray entries key (no inode) makes no inode; a 'gen' that is no
  // count is left as it is; the field is written all the same
  r = c.eval(lua::fsck_field, {dir, record, prefix + ":T:none"}, {"written", "HSET", "kept", "value", "5", "6"});
  REQUIRE(r.ok());
  CHECK(get(dir, "kept") == "6");
  CHECK_FALSE(exists(prefix + ":T:none"));
  cmd({"HSET", ino, "gen", "many"});
  r = c.eval(lua::fsck_field, {dir, record, ino}, {"written", "HDEL", "kept", "value", "6"});
  REQUIRE(r.ok());
  CHECK(get(ino, "gen") == "many");
  // malformed calls: refused, nothing written
  cmd({"DEL", record});
  CHECK_FALSE(c.eval(lua::fsck_field, {dir, record}, {"m", "DEL", "x", "absent", ""}).ok());
  CHECK_FALSE(c.eval(lua::fsck_field, {dir, record}, {"m", "HSET", "x", "absent", ""}).ok());
  CHECK_FALSE(c.eval(lua::fsck_field, {dir, record}, {"m", "HDEL", "x", "absent", "", "y"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_field, {dir, record}, {"m", "HDEL", "x", "absent", "y"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_field, {dir, record}, {"m", "HDEL", "x", "some", "y"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_field, {dir, record}, {"m", "HDEL", "x"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_field, {dir}, {"m", "HDEL", "x", "absent", ""}).ok());
  CHECK_FALSE(exists(record));
  // a block cut to the room its file's size leaves in it (block 1 of 8
  // bytes, a file of 12: 4), with the mark; a key that is no block, or
  // malformed arguments, refused before it
  const std::string file = prefix + ":T:file";
  cmd({"HSET", file, "type", "file", "size", "12"});
  cmd({"SET", block, "0123456789"});
  auto trim = [&](const std::string& key, const std::vector<std::string>& args) {
    const std::vector<std::string> k{key, record, file};
    return c.eval(lua::fsck_trim, k, args);
  };
  CHECK_FALSE(trim(ino, {"untracked", "4", "1", "8"}).ok());
  CHECK_FALSE(trim(block, {"untracked", "four", "1", "8"}).ok());
  CHECK_FALSE(trim(block, {"untracked", "9", "1", "8"}).ok());  // (more room than a block)
  CHECK_FALSE(trim(block, {"untracked", "4", "1", "0"}).ok());
  CHECK_FALSE(trim(block, {"untracked", "4", "1"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_trim, {block, record}, {"untracked", "4", "1", "8"}).ok());
  CHECK_FALSE(exists(record));
  // a file whose size leaves another room now (a mount grew it since the
  // check), or that is gone: 0, nothing written
  cmd({"HSET", file, "size", "20"});
  CHECK(_ok(trim(block, {"untracked", "4", "1", "8"})).view().integer() == 0);
  cmd({"HSET", file, "type", "dir", "size", "12"});
  CHECK(_ok(trim(block, {"untracked", "4", "1", "8"})).view().integer() == 0);
  cmd({"HSET", file, "type", "file", "size", "12x"});
  CHECK(_ok(trim(block, {"untracked", "4", "1", "8"})).view().integer() == 0);
  CHECK(_ok(c.command({"GET", block})).view().str() == "0123456789");
  CHECK_FALSE(exists(record));
  // cut; a second run (a lost reply sent again) finds it cut and writes
  // nothing
  cmd({"HSET", file, "size", "12"});
  CHECK(_ok(trim(block, {"untracked", "4", "1", "8"})).view().integer() == 1);
  CHECK(_ok(c.command({"GET", block})).view().str() == "0123");
  CHECK(_ok(c.command({"GET", record})).view().str() == "untracked");
  cmd({"DEL", record});
  CHECK(_ok(trim(block, {"untracked", "4", "1", "8"})).view().integer() == 1);
  CHECK(_ok(c.command({"GET", block})).view().str() == "0123");
  CHECK_FALSE(exists(record));
  // no room at all: the block past the end goes; so does one whose index
  // no Lua number holds (past any file), and a file of 1 PiB is judged
  CHECK(_ok(trim(block, {"written", "0", "2", "8"})).view().integer() == 1);
  CHECK_FALSE(exists(block));
  CHECK(_ok(trim(block, {"written", "0", "2", "8"})).view().integer() == 1);  // (gone: nothing to do)
  cmd({"SET", block, ""});                                                    // an empty block past the end goes too
  CHECK(_ok(trim(block, {"written", "0", "2", "8"})).view().integer() == 1);
  CHECK_FALSE(exists(block));
  cmd({"SET", block, "zz"});
  CHECK(_ok(trim(block, {"written", "0", "99999999999999999999", "8"})).view().integer() == 1);
  CHECK_FALSE(exists(block));
  cmd({"SET", block, "0123456789"});
  cmd({"HSET", file, "size", "1125899906842620"});  // (16 digits: 1 PiB - 4, 4 into block 140737488355327)
  CHECK(_ok(trim(block, {"written", "4", "140737488355327", "8"})).view().integer() == 1);
  CHECK(_ok(c.command({"GET", block})).view().str() == "0123");
  CHECK_FALSE(trim(block, {"written", "0", "x1", "8"}).ok());
  CHECK(_ok(c.command({"GET", record})).view().str() == "written");
}

TEST_CASE_FIXTURE(FsckFixture, "a stray key or a lease goes only if what the check found still holds") {
  Connection& c = conn();
  const std::string block = prefix + ":T:block", ino = prefix + ":T:ino", record = prefix + ":T:record",
                    lease = prefix + ":T:lease", mounts = prefix + ":T:mounts";
  auto del = [&](const std::vector<std::string>& k, const std::vector<std::string>& args) {
    return _ok(c.eval(lua::fsck_del, k, args)).view().integer();
  };
  auto exists = [&](const std::string& key) { return _ok(c.command({"EXISTS", key})).view().integer() != 0; };
  // a block whose inode exists now (a mount made the file since the
  // check): 0, nothing written
  cmd({"SET", block, "data"});
  cmd({"HSET", ino, "type", "file"});
  CHECK(del({block, record, ino}, {"untracked", "stray"}) == 0);
  CHECK(exists(block));
  CHECK_FALSE(exists(record));
  // its inode still absent: removed with the mark; a second run (a lost
  // reply sent again) finds it gone and writes nothing
  cmd({"DEL", ino});
  CHECK(del({block, record, ino}, {"untracked", "stray"}) == 1);
  CHECK_FALSE(exists(block));
  CHECK(_ok(c.command({"GET", record})).view().str() == "untracked");
  cmd({"DEL", record});
  CHECK(del({block, record, ino}, {"untracked", "stray"}) == 1);
  CHECK_FALSE(exists(record));
  // a lease its holder refreshed since (a time to live within what a
  // holder sets): 0, nothing written
  cmd({"SET", lease, "v1 host"});
  cmd({"HSET", mounts, "s1", "v1 host", "s2", "other"});
  cmd({"PEXPIRE", lease, "30000"});
  CHECK(del({lease, record, mounts}, {"untracked", "lease", "60000", "s1"}) == 0);
  CHECK(exists(lease));
  CHECK_FALSE(exists(record));
  // one that never lapses, or lives longer than any holder sets: removed,
  // with its registration
  cmd({"PEXPIRE", lease, "90000"});
  CHECK(del({lease, record, mounts}, {"untracked", "lease", "60000", "s1"}) == 1);
  CHECK_FALSE(exists(lease));
  CHECK(_ok(c.command({"HKEYS", mounts})).view().size() == 1);
  // a register that is no hash (fsck's finding of its own): the lease
  // still goes, with its mark
  cmd({"DEL", record});
  cmd({"SET", lease, "v1 host"});
  cmd({"SET", mounts, "damaged"});
  CHECK(del({lease, record, mounts}, {"untracked", "lease", "60000", "s1"}) == 1);
  CHECK_FALSE(exists(lease));
  CHECK(_ok(c.command({"GET", record})).view().str() == "untracked");
  cmd({"SET", lease, "frozen"});
  CHECK(del({lease, record}, {"written", "lease", "60000"}) == 1);
  CHECK_FALSE(exists(lease));
  CHECK(_ok(c.command({"GET", record})).view().str() == "written");
  // malformed calls: refused, nothing written
  cmd({"DEL", record});
  cmd({"SET", lease, "x"});
  CHECK_FALSE(c.eval(lua::fsck_del, {lease, record}, {"m", "stray"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_del, {lease, record, ino}, {"m", "lease"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_del, {lease, record}, {"m", "lease", "soon"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_del, {lease, record, mounts}, {"m", "lease", "60000"}).ok());
  CHECK_FALSE(c.eval(lua::fsck_del, {lease, record}, {"m", "gone"}).ok());
  CHECK(exists(lease));
  CHECK_FALSE(exists(record));
}

// reserve_repair.lua: fsck --repair's reservation, taken as a tool's SET
// NX PX is, and over one no holder set, saying what it replaced.
TEST_CASE_FIXTURE(FsckFixture, "fsck --repair reserves the prefix, over a reservation no tool holds") {
  Connection& c = conn();
  const std::string key = prefix + ":T:reserved";
  auto reserve = [&](const std::string& token) {
    Reply r = _ok(c.eval(lua::reserve_repair, {key}, {token, "30000", "60000"}));
    ReplyView v = r.view();
    REQUIRE(v.size() == 2);
    return std::to_string(v[0].integer()) + " " + std::string(v[1].str());
  };
  auto pttl = [&] { return _ok(c.command({"PTTL", key})).view().integer(); };
  CHECK(reserve("t1 fsck") == "1 ");  // none: taken, with a time to live
  CHECK(_ok(c.command({"GET", key})).view().str() == "t1 fsck");
  CHECK(pttl() > 0);
  CHECK(reserve("t1 fsck") == "1 ");  // the same run again (a lost reply): still ours
  CHECK(reserve("t2 fsck") == "0 ");  // a live holder's: refused, nothing written
  CHECK(_ok(c.command({"GET", key})).view().str() == "t1 fsck");
  cmd({"PERSIST", key});  // never lapses: no holder's
  CHECK(reserve("t2 fsck") == "1 pttl -1");
  CHECK(_ok(c.command({"GET", key})).view().str() == "t2 fsck");
  cmd({"PEXPIRE", key, "90000"});  // longer than any holder sets
  std::string longer = reserve("t3 fsck");
  REQUIRE(longer.starts_with("1 pttl "));
  CHECK(std::stoll(longer.substr(7)) > 60000);
  cmd({"DEL", key});
  cmd({"HSET", key, "a", "b"});  // no string
  CHECK(reserve("t4 fsck") == "1 type hash");
  CHECK(_ok(c.command({"GET", key})).view().str() == "t4 fsck");
  CHECK_FALSE(c.eval(lua::reserve_repair, {key}, {"t5", "30000", "soon"}).ok());  // malformed: nothing written
  CHECK(_ok(c.command({"GET", key})).view().str() == "t4 fsck");
  CHECK(lua::script_source(lua::reserve_repair).resend);
}

TEST_CASE_FIXTURE(FsckFixture, "orphans") {
  auto t = build();
  SUBCASE("an orphan record of a linked file") {
    cmd({"HSET", keys.orphans(), _str(t.f), "dead-session"});
    expect_repaired({fsck_kind::k_stale_orphan});
  }
  SUBCASE("an orphan record of a missing inode") {
    cmd({"HSET", keys.orphans(), "4242", "dead-session"});
    expect_repaired({fsck_kind::k_stale_orphan});
  }
  SUBCASE("an orphan directory's nlink") {
    cmd({"HSET", keys.inode(t.rmme), "nlink", "2"});
    expect_repaired({fsck_kind::k_wrong_nlink});
  }
  SUBCASE("an orphan directory that still holds an entry") {
    cmd({"HSET", keys.dir(t.rmme), "late", _str(t.fifo)});
    cmd({"HINCRBY", keys.inode(t.fifo), "nlink", "1"});
    // dropped from ORPHANS, reattached with its entry; its nlink is counted
    expect_repaired({fsck_kind::k_stale_orphan, fsck_kind::k_lost_inode, fsck_kind::k_wrong_nlink});
    Ino lf = lookup(k_root_ino, "lost+found");
    CHECK(lookup(lf, "#" + _str(t.rmme)) == t.rmme);
    CHECK(_ok(t.store->getattr(t.rmme)).nlink == 2);
  }
  SUBCASE("an orphan that lost its record is kept, in /lost+found") {
    cmd({"HDEL", keys.orphans(), _str(t.open)});
    expect_repaired({fsck_kind::k_lost_inode});
    std::string data;
    _ok(t.store->read(t.open, 0, 100, data));
    CHECK(data == "still readable");
  }
}

TEST_CASE_FIXTURE(FsckFixture, "blocks and byte counts") {
  auto t = build();
  SUBCASE("a block past the end of file") {
    cmd({"SET", keys.block(t.f, 100), "zzz"});
    expect_repaired({fsck_kind::k_block_past_eof});
    CHECK(_ok(conn().command({"EXISTS", keys.block(t.f, 100)})).view().integer() == 0);
  }
  SUBCASE("bytes past the end of file in the last block") {
    cmd({"APPEND", keys.block(t.f, 2), "garbage"});
    expect_repaired({fsck_kind::k_bytes_past_eof});
    CHECK(_ok(conn().command({"STRLEN", keys.block(t.f, 2)})).view().integer() == 10000 - 2 * k_bs);
    std::string data;
    _ok(t.store->read(t.f, 0, 20000, data));
    CHECK(data == std::string(10000, 'x'));
  }
  SUBCASE("an empty block past the end of file") {
    cmd({"SET", keys.block(t.f, 3), ""});
    expect_repaired({fsck_kind::k_block_past_eof});
    CHECK(_ok(conn().command({"EXISTS", keys.block(t.f, 3)})).view().integer() == 0);
  }
  SUBCASE("a block longer than the block size") {
    cmd({"APPEND", keys.block(t.f, 0), "more"});
    expect_repaired({fsck_kind::k_oversized_block});
    CHECK(_ok(conn().command({"STRLEN", keys.block(t.f, 0)})).view().integer() == k_bs);
  }
  SUBCASE("blocks of a missing inode, of a directory, and an orphan xattr hash") {
    cmd({"SET", keys.block(777, 0), "x"});
    cmd({"SET", keys.block(t.d, 0), "x"});
    cmd({"HSET", keys.xattr(778), "user.x", "y"});
    cmd({"HSET", keys.dir(t.fifo), "x", _str(t.f)});
    expect_repaired({fsck_kind::k_stray_key, fsck_kind::k_stray_key, fsck_kind::k_stray_key,
                     fsck_kind::k_stray_key});
    CHECK(_ok(t.store->getattr(t.f)).nlink == 2);
  }
  SUBCASE("an inode's bytes") {
    cmd({"HSET", keys.inode(t.f), "bytes", "1"});
    expect_repaired({fsck_kind::k_wrong_bytes});
    CHECK(_ok(t.store->getattr(t.f)).bytes == 10000);
  }
  SUBCASE("an inode's bytes that is not a number, as a file with no blocks") {
    cmd({"HSET", keys.inode(t.f), "bytes", "lots"});
    cmd({"HSET", keys.inode(t.fifo), "bytes", "lots"});
    expect_repaired({fsck_kind::k_wrong_bytes, fsck_kind::k_wrong_bytes});
    CHECK(_ok(t.store->getattr(t.f)).bytes == 10000);
    CHECK(_ok(t.store->getattr(t.fifo)).bytes == 0);
  }
  SUBCASE("an inode with no bytes field, also one whose blocks hold nothing (the key walk reads it unreadable)") {
    cmd({"HDEL", keys.inode(t.f), "bytes"});
    cmd({"HDEL", keys.inode(t.fifo), "bytes"});
    expect_repaired({fsck_kind::k_wrong_bytes, fsck_kind::k_wrong_bytes});
    CHECK(_ok(t.store->getattr(t.f)).bytes == 10000);
    CHECK(std::string(_ok(conn().command({"HGET", keys.inode(t.fifo), "bytes"})).view().str()) == "0");
  }
}

TEST_CASE_FIXTURE(FsckFixture, "superblock") {
  auto t = build();
  SUBCASE("wrong counters") {
    cmd({"HINCRBY", keys.sb(), "inodes", "5"});
    cmd({"HSET", keys.sb(), "bytes", "1"});
    cmd({"HSET", keys.sb(), "next_inode", "2"});
    expect_repaired({fsck_kind::k_wrong_counter, fsck_kind::k_wrong_counter, fsck_kind::k_wrong_counter});
    auto sf = _ok(t.store->statfs());
    CHECK(sf.inodes == 15);
    CHECK(sf.used_bytes == 10000 + 3 + k_bs + 10 + 14 + 100);
    // new inodes still get fresh numbers after the repair
    auto reopened = _ok(Store::open(pool, prefix, {}));
    auto n = _ok(reopened->mknod(k_root_ino, "new", S_IFREG | 0644, 0, k_user));
    CHECK(n.ino > t.open);
    CHECK(check().problems.empty());
  }
  SUBCASE("a missing superblock: nothing is repaired") {
    cmd({"HINCRBY", keys.inode(t.f), "nlink", "1"});
    cmd({"DEL", keys.sb()});
    auto before = keys_under(prefix);
    auto r = check(true);
    CHECK(_kinds(r) == _sorted({fsck_kind::k_missing_superblock, fsck_kind::k_wrong_nlink}));
    CHECK(r.remaining() == 2);
    for (const auto& p : r.problems) {
      CHECK_FALSE(p.repairable);
    }
    CHECK(keys_under(prefix) == before);
  }
  SUBCASE("a bad block size") {
    cmd({"HSET", keys.sb(), "block_size", "1000"});
    auto r = check();
    CHECK(_kinds(r) == _sorted({fsck_kind::k_bad_superblock}));
  }
  SUBCASE("a freeze that never expires") {
    cmd({"SET", keys.freeze(), "token"});
    expect_repaired({fsck_kind::k_freeze_endless});
  }
  SUBCASE("a writeback claim that never expires (no mount comes up while it stands)") {
    cmd({"SET", keys.writeback(), "1.5"});
    auto refused = Store::open(pool, prefix, {});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("fsck --repair " + prefix) != std::string::npos);
    expect_repaired({fsck_kind::k_claim_endless});
    auto s = Store::open(pool, prefix, {});
    REQUIRE_MESSAGE(s.ok(), s.error().message);
  }
  SUBCASE("a writeback claim with a TTL is a live mount's: no problem") {
    cmd({"SET", keys.writeback(), "1.5", "PX", "60000"});
    CHECK(check().problems.empty());
  }
  // A holder refreshes its lease every few seconds and sets it at most a
  // minute ahead: one set for years is no running tool's or mount's.
  SUBCASE("a freeze that expires only in ten years: no freezer's, and the repair does not wait for it") {
    cmd({"SET", keys.freeze(), "token", "PX", "315360000000"});
    expect_repaired({fsck_kind::k_freeze_endless});
    // nor does a freezer (prelude.lua, freeze_alive): it takes its place
    cmd({"SET", keys.freeze(), "token", "PX", "315360000000"});
    auto lease = _ok(pool.acquire());
    Freeze f = _ok(Freeze::acquire(*lease, keys, std::chrono::milliseconds(100)));
    CHECK(_ok(lease->command({"PTTL", keys.freeze()})).view().integer() <= k_freeze_ttl_ms);
    CHECK(f.release(*lease).ok());
  }
  SUBCASE("a writeback claim that expires only in a year keeps mounts out until repaired") {
    cmd({"SET", keys.writeback(), "1.5", "PX", "31536000000"});
    REQUIRE_FALSE(Store::open(pool, prefix, {}).ok());
    expect_repaired({fsck_kind::k_claim_endless});
    auto s = Store::open(pool, prefix, {});
    REQUIRE_MESSAGE(s.ok(), s.error().message);
  }
  SUBCASE("a reservation that never lapses, or only in a year: reported, and the repair does not wait for it") {
    if (std::string ttl; true) {
      SUBCASE("none") {}
      SUBCASE("a year") { ttl = "31536000000"; }
      if (ttl.empty()) {
        cmd({"SET", keys.reserved(), "abc restore by host:1"});
      } else {
        cmd({"SET", keys.reserved(), "abc restore by host:1", "PX", ttl});
      }
    }
    auto refused = Reservation::acquire(pool, keys, "restore");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("fsck --repair " + prefix) != std::string::npos);
    auto mounted = Store::open(pool, prefix, {});  // (a mount refuses a reserved prefix too)
    REQUIRE_FALSE(mounted.ok());
    CHECK(mounted.error().message.find("fsck --repair " + prefix) != std::string::npos);
    expect_repaired({fsck_kind::k_reservation_endless});
    CHECK(_ok(conn().command({"EXISTS", keys.reserved()})).view().integer() == 0);
    CHECK(Reservation::acquire(pool, keys, "restore").ok());
  }
  SUBCASE("a running tool's reservation: no problem, and the repair waits for it") {
    cmd({"SET", keys.reserved(), "abc restore by host:1", "PX", "30000"});
    CHECK(check().problems.empty());
    auto refused = fsck(pool, prefix, true, nullptr);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == EBUSY);
    CHECK(refused.error().message.find("restore by host:1") != std::string::npos);
    auto reserved = Reservation::acquire(pool, keys, "restore");
    REQUIRE_FALSE(reserved.ok());
    CHECK(reserved.error().message.find("fsck") == std::string::npos);
    auto mounted = Store::open(pool, prefix, {});
    REQUIRE_FALSE(mounted.ok());
    CHECK(mounted.error().message.find("fsck") == std::string::npos);
  }
  SUBCASE("repair waits for a snapshot") {
    cmd({"SET", keys.freeze(), "token", "PX", "60000"});
    CHECK(check().problems.empty());
    CHECK(fsck(pool, prefix, true, nullptr).code() == EBUSY);
  }
}

TEST_CASE_FIXTURE(FsckFixture, "keys outside the schema") {
  auto t = build();
  SUBCASE("an unknown key is reported, never removed") {
    cmd({"SET", prefix + ":junk", "1"});
    auto r = check(true);
    CHECK(_kinds(r) == _sorted({fsck_kind::k_unknown_key}));
    CHECK(r.remaining() == 1);
    CHECK(_ok(conn().command({"EXISTS", prefix + ":junk"})).view().integer() == 1);
  }
  SUBCASE("a key of the wrong type") {
    cmd({"DEL", keys.xattr(t.f)});
    cmd({"SET", keys.xattr(t.f), "not a hash"});
    expect_repaired({fsck_kind::k_wrong_type});
  }
  SUBCASE("a mount's outcome records of another type: its changes are made, not failed, and fsck removes them") {
    const std::string op_log = keys.op_log(t.store->session());
    cmd({"DEL", op_log});
    cmd({"SET", op_log, "not a hash"});
    _ok(t.store->mkdir(k_root_ino, "made", 0755, k_user));  // (outcome.inc: the record costs the record only)
    CHECK(_ok(conn().command({"HEXISTS", keys.dir(k_root_ino), "made"})).view().integer() == 1);
    expect_repaired({fsck_kind::k_wrong_type});
    CHECK(_ok(conn().command({"EXISTS", op_log})).view().integer() == 0);
  }
  SUBCASE("opens of a mount that is gone") {
    _ok(t.store->open_file(t.f));  // a live mount's open: fine
    cmd({"HSET", keys.open(t.f), "crashed-mount", "2"});
    expect_repaired({fsck_kind::k_stale_open});
    CHECK(_ok(conn().command({"HGET", keys.open(t.f), t.store->session()})).view().str() == "1");
    CHECK(_ok(conn().command({"HEXISTS", keys.open(t.f), "crashed-mount"})).view().integer() == 0);
  }
  SUBCASE("a mount session key that never lapses is no live mount's: it goes, with its registration and opens") {
    std::string ttl;
    SUBCASE("no time to live") {}
    SUBCASE("a year") { ttl = "31536000000"; }
    if (ttl.empty()) {
      cmd({"SET", keys.mount("ghost"), "v1 host 1 /mnt"});
    } else {
      cmd({"SET", keys.mount("ghost"), "v1 host 1 /mnt", "PX", ttl});
    }
    cmd({"HSET", keys.mounts(), "ghost", "v1 host 1 /mnt"});
    cmd({"HSET", keys.open(t.f), "ghost", "2"});
    expect_repaired({fsck_kind::k_mount_endless, fsck_kind::k_stale_open});
    CHECK(_ok(conn().command({"EXISTS", keys.mount("ghost")})).view().integer() == 0);
    CHECK(_ok(conn().command({"HEXISTS", keys.mounts(), "ghost"})).view().integer() == 0);
    CHECK(_ok(conn().command({"HEXISTS", keys.open(t.f), "ghost"})).view().integer() == 0);
    // (the fixture's own mount, live, keeps its registration)
    CHECK(_ok(conn().command({"HEXISTS", keys.mounts(), t.store->session()})).view().integer() == 1);
  }
  SUBCASE("a registered mount whose session key never lapses: the refusals it causes name the repair") {
    _ok(t.store->end_session());  // (the fixture's own mount: gone)
    const std::string ghost_key = keys.mount("ghost");
    std::string ttl;
    SUBCASE("no time to live") {}
    SUBCASE("a year") { ttl = "31536000000"; }
    SUBCASE("a live mount's (its TTL): no hint") { ttl = "30000"; }
    cmd({"HSET", keys.mounts(), "ghost", "v2 host:1 /mnt"});
    if (ttl.empty()) {
      cmd({"SET", ghost_key, "v2 host:1 /mnt"});
    } else {
      cmd({"SET", ghost_key, "v2 host:1 /mnt", "PX", ttl});
    }
    const bool live = ttl == "30000";
    const std::string hint = ghost_key +
                             " never lapses, as no running tool's or mount's does: `redisfs-snap fsck --repair " +
                             prefix + "` removes it";
    auto hinted = [&](const Error& e) {
      CAPTURE(e.message);
      CHECK(e.code == EBUSY);
      CHECK((e.message.find(hint) != std::string::npos) == !live);
    };
    auto deleted = delete_prefix(pool, prefix, false, true);
    REQUIRE_FALSE(deleted.ok());
    hinted(deleted.error());
    const std::string source = extra_prefix();
    _ok(_ok(Store::open(pool, source, {}))->end_session());
    auto copied = copy_filesystem(pool, source, prefix, CopyOptions{true, false, true});  // --force
    REQUIRE_FALSE(copied.ok());
    hinted(copied.error());
    std::ostringstream dumped;
    _ok(dump_filesystem(pool, source, dumped, DumpOptions{true}));
    std::istringstream in(dumped.str());
    RestoreOptions ro;
    ro.prefix = prefix;
    ro.force = true;
    ro.quiet = true;
    auto restored = restore_filesystem(&pool, in, ro);
    REQUIRE_FALSE(restored.ok());
    hinted(restored.error());
    const std::string snap = extra_prefix();
    _ok(copy_filesystem(pool, prefix, snap, CopyOptions{false, false, true}));
    RollbackOptions rb;
    rb.discard = true;
    rb.quiet = true;
    auto rolled = rollback_filesystem(pool, prefix, snap, rb);
    REQUIRE_FALSE(rolled.ok());
    hinted(rolled.error());
    StoreOptions wb;
    wb.writeback = true;
    auto mounted = Store::open(pool, prefix, wb);
    REQUIRE_FALSE(mounted.ok());
    hinted(mounted.error());
    CHECK(_ok(conn().command({"EXISTS", keys.sb()})).view().integer() == 1);  // nothing went
  }
  SUBCASE("a live mount's session key (its TTL) and its opens: no problem") {
    cmd({"SET", keys.mount("other-live"), "v1 host 1 /mnt", "PX", "30000"});
    cmd({"HSET", keys.open(t.f), "other-live", "1"});
    CHECK(check().problems.empty());
  }
  SUBCASE("an undecodable inode is reported, never changed") {
    cmd({"HSET", keys.inode(t.fifo), "rdev", "8:1"});
    auto r = check(true);
    CHECK(_kinds(r) == _sorted({fsck_kind::k_bad_inode}));
    CHECK_FALSE(r.problems[0].repairable);
  }
  SUBCASE("mounts are counted") {
    CHECK(_ok(count_live_mounts(pool, prefix)) == 1);  // the open Store
    _ok(t.store->end_session());
    CHECK(_ok(count_live_mounts(pool, prefix)) == 0);
    _ok(t.store->heartbeat());
    CHECK(_ok(count_live_mounts(pool, prefix)) == 1);
    CHECK(check().problems.empty());
    // a registered mount whose session key never lapses is no running one
    cmd({"HSET", keys.mounts(), "ghost", "v2 host:1 /mnt"});
    cmd({"SET", keys.mount("ghost"), "v2 host:1 /mnt"});
    CHECK(_ok(count_live_mounts(pool, prefix)) == 1);
    cmd({"PEXPIRE", keys.mount("ghost"), "30000"});
    CHECK(_ok(count_live_mounts(pool, prefix)) == 2);
  }
}

TEST_CASE_FIXTURE(FsckFixture, "report lines and JSON stay one line and valid with odd names") {
  auto t = build();
  std::string name = "a\nb\xff\\c";
  cmd({"HSET", keys.dir(k_root_ino), name, "999"});
  auto r = check();
  REQUIRE(r.problems.size() == 1);
  std::string line = fsck_problem_line(r.problems[0]);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find("a\\x0ab\\xff\\\\c") != std::string::npos);
  CHECK(line.rfind("dangling entry: " + keys.dir(k_root_ino) + ": ", 0) == 0);
  auto j = nlohmann::json::parse(fsck_as_json(prefix, false, r));
  CHECK(j["clean"] == false);
  CHECK(j["problems"].size() == 1);
  CHECK(j["problems"][0]["kind"] == "dangling entry");
  CHECK(j["remaining"] == 1);
  CHECK(j["inodes"] == 15);
}

TEST_CASE_FIXTURE(FsckFixture, "large directories span pages and batches") {
  StoreOptions o;
  o.mkfs_block_size = k_bs;
  auto s = _ok(Store::open(pool, prefix, o));
  Ino big = _ok(s->mkdir(k_root_ino, "big", 0755, k_user)).ino;
  Ino shared = 0;
  for (int i = 0; i < 2500; ++i) {
    Ino n = _ok(s->mknod(big, "f" + std::to_string(i), S_IFREG | 0644, 0, k_user)).ino;
    if (i % 100 == 0) {
      _ok(s->write(n, 0, "data", false));
    }
    if (i == 0) {
      shared = n;
    } else if (i % 500 == 0) {
      _ok(s->link(shared, big, "link" + std::to_string(i)));
    }
  }
  auto r = check();
  INFO(_dump(r));
  CHECK(r.problems.empty());
  CHECK(r.inodes == 2502);
  CHECK(r.blocks == 25);
  cmd({"HINCRBY", keys.inode(shared), "nlink", "-1"});
  expect_repaired({fsck_kind::k_wrong_nlink});
  CHECK(_ok(s->getattr(shared)).nlink == 5);
}

TEST_SUITE_END();

// ---------------------------------------------------------------- issue 8

namespace {

std::size_t _count(const FsckReport& r, std::string_view kind) {
  return static_cast<std::size_t>(
      std::count_if(r.problems.begin(), r.problems.end(), [&](const FsckProblem& p) { return p.kind == kind; }));
}

}  // namespace

TEST_SUITE_BEGIN("core::fsck hostile state");

TEST_CASE_FIXTURE(FsckFixture, "a size that cannot be parsed never costs the file its blocks: they set it") {
  auto t = build();
  Ino big = _ok(t.store->mknod(k_root_ino, "big", S_IFREG | 0644, 0, k_user)).ino;
  std::string data(200000, 'b');
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>('a' + i % 23);
  }
  _ok(t.store->write(big, 0, data, false));
  auto block_keys = [&] {
    auto all = keys_under(prefix);
    std::erase_if(all, [](const std::string& k) { return k.find(":BLK:") == std::string::npos; });
    return all;
  };
  const auto blocks = block_keys();
  SUBCASE("2^64-1") { cmd({"HSET", keys.inode(big), "size", "18446744073709551615"}); }
  SUBCASE("2^63") { cmd({"HSET", keys.inode(big), "size", "9223372036854775808"}); }
  SUBCASE("above the largest file") { cmd({"HSET", keys.inode(big), "size", "1125899906842625"}); }
  SUBCASE("garbage") { cmd({"HSET", keys.inode(big), "size", "lots"}); }
  SUBCASE("negative") { cmd({"HSET", keys.inode(big), "size", "-1"}); }
  SUBCASE("missing") { cmd({"HDEL", keys.inode(big), "size"}); }
  SUBCASE("the inode key is not a hash") {
    cmd({"DEL", keys.inode(big)});
    cmd({"SET", keys.inode(big), "garbage"});
  }
  auto r = check(true);
  INFO(_dump(r));
  CHECK(_count(r, fsck_kind::k_block_past_eof) == 0);
  CHECK(_count(r, fsck_kind::k_bad_inode) + _count(r, fsck_kind::k_wrong_type) == 1);
  const bool hash = _count(r, fsck_kind::k_bad_inode) == 1;
  for (const auto& p : r.problems) {
    CHECK(p.repaired == hash);  // (an inode that is no hash is fixed by hand)
    CHECK(p.deletes.empty());
  }
  // every block is still there, with its bytes
  CHECK(block_keys() == blocks);
  std::uint64_t stored = 0;
  for (std::uint64_t i = 0; i * k_bs < data.size(); ++i) {
    stored += static_cast<std::uint64_t>(_ok(conn().command({"STRLEN", keys.block(big, i)})).view().integer());
  }
  CHECK(stored == data.size());
  if (hash) {  // and they set the size: the file reads back whole
    CHECK(check().problems.empty());
    std::string back;
    _ok(t.store->read(big, 0, 1 << 20, back));
    CHECK(back == data);
  }
}

TEST_CASE_FIXTURE(FsckFixture, "repairs that delete data say so, before and after") {
  auto t = build();
  cmd({"SET", keys.block(t.f, 100), "zzz"});
  cmd({"APPEND", keys.block(t.f, 2), "garbage"});
  cmd({"HSET", keys.inode(t.f), "bytes", "1"});
  auto r = check();
  INFO(_dump(r));
  REQUIRE(r.problems.size() == 3);
  for (const auto& p : r.problems) {
    std::string line = fsck_problem_line(p);
    std::string dry = fsck_dry_run_line(p);
    if (p.kind == fsck_kind::k_block_past_eof) {
      CHECK(p.deletes == "a block of 3 bytes");
      CHECK(line.ends_with(" (--repair deletes a block of 3 bytes)"));
      CHECK(dry.starts_with("repair, DELETES DATA (a block of 3 bytes): block past end of file: "));
    } else if (p.kind == fsck_kind::k_bytes_past_eof) {
      CHECK(p.deletes == "the last 7 bytes of the block");
      CHECK(dry.starts_with("repair, DELETES DATA ("));
    } else {
      CHECK(p.kind == fsck_kind::k_wrong_bytes);
      CHECK(p.deletes.empty());
      CHECK(dry.starts_with("repair: wrong byte count: "));
      CHECK(line.find("deletes") == std::string::npos);
    }
  }
  auto j = nlohmann::json::parse(fsck_as_json(prefix, false, r));
  CHECK(j["problems"][0].contains("deletes"));
  auto fixed = check(true);
  for (const auto& p : fixed.problems) {
    std::string line = fsck_problem_line(p);
    if (p.deletes.empty()) {
      CHECK(line.ends_with(" (repaired)"));
    } else {
      CHECK(line.ends_with(" (repaired: deleted " + p.deletes + ")"));
    }
  }
  CHECK(check().problems.empty());
  // what cannot be repaired says so in a dry run
  cmd({"HSET", keys.inode(t.fifo), "rdev", "8:1"});
  auto bad = check();
  REQUIRE(bad.problems.size() == 1);
  CHECK(fsck_dry_run_line(bad.problems[0]).starts_with("no repair: bad inode: "));
}

TEST_CASE_FIXTURE(FsckFixture, "every key kind of the wrong type is reported, never a server error") {
  auto t = build();
  auto other = [&](std::string_view key, std::string_view type) {
    cmd({"DEL", key});
    if (type == "string") {
      cmd({"SET", key, "x"});
    } else if (type == "list") {
      cmd({"RPUSH", key, "x"});
    } else {
      cmd({"HSET", key, "x", "y"});
    }
  };
  std::string key;
  bool repairable = true;
  SUBCASE("OPEN, a string") {
    key = keys.open(t.f);
    other(key, "string");
  }
  SUBCASE("OPEN, a list") {
    key = keys.open(t.f);
    other(key, "list");
  }
  SUBCASE("SB") {
    key = keys.sb();
    other(key, "string");
    repairable = false;
  }
  SUBCASE("INODE") {
    key = keys.inode(t.fifo);
    other(key, "list");
    repairable = false;
  }
  SUBCASE("DIR") {
    key = keys.dir(t.sub);
    other(key, "string");
  }
  SUBCASE("XATTR") {
    key = keys.xattr(t.f);
    other(key, "list");
  }
  SUBCASE("BLK") {
    key = keys.block(t.f, 1);
    other(key, "hash");
  }
  SUBCASE("ORPHANS") {
    key = keys.orphans();
    other(key, "string");
  }
  SUBCASE("MOUNTS, a string: no mount comes up until the repair") {
    key = keys.mounts();
    other(key, "string");
  }
  SUBCASE("WRITEBACK, a hash") {
    key = keys.writeback();
    other(key, "hash");
  }
  auto r = fsck(pool, prefix, false, nullptr);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  INFO(_dump(*r));
  bool found = false;
  for (const auto& p : r->problems) {
    if (p.kind == fsck_kind::k_wrong_type && p.key == key) {
      found = true;
      CHECK(p.repairable == (repairable && key != keys.sb()));
    }
  }
  CHECK(found);
  if (key == keys.mounts() || key == keys.writeback()) {
    // the mount is refused, naming the key, and nothing is written
    auto refused = Store::open(pool, prefix, {});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find(key + " is a ") != std::string::npos);
    CHECK(refused.error().message.find("fsck") != std::string::npos);
    CHECK(_ok(conn().command({"TYPE", key})).view().str() == (key == keys.mounts() ? "string" : "hash"));
  }
  auto fixed = fsck(pool, prefix, true, nullptr);
  REQUIRE_MESSAGE(fixed.ok(), fixed.error().message);
  if (key == keys.mounts() || key == keys.writeback()) {
    auto s = Store::open(pool, prefix, {});
    REQUIRE_MESSAGE(s.ok(), s.error().message);  // mounts again once repaired
  }
}

TEST_CASE_FIXTURE(FsckFixture, "keys of the running system of odd types and values") {
  auto t = build();
  cmd({"HSET", prefix + ":MOUNT:odd", "a", "b"});
  cmd({"RPUSH", prefix + ":TMP:odd:1", "x"});
  cmd({"HSET", keys.freeze(), "a", "b"});
  cmd({"HSET", keys.open(t.f), "crashed", "many"});
  auto r = fsck(pool, prefix, false, nullptr);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  INFO(_dump(*r));
  // (a session key of another type has no time to live either: no live
  // mount's)
  CHECK(_kinds(*r) == _sorted({fsck_kind::k_freeze_endless, fsck_kind::k_stale_open, fsck_kind::k_mount_endless}));
}

// fsck sizes its node table from the superblock's inode count before it
// reads anything else: a damaged count is a problem to report, never a
// failure or a refusal of the whole check.
TEST_CASE_FIXTURE(FsckFixture, "an absurd inode count sizes nothing") {
  auto t = build();
  std::string value;
  SUBCASE("2^63-1") { value = "9223372036854775807"; }
  SUBCASE("2^40") { value = "1099511627776"; }
  SUBCASE("negative") { value = "-5"; }
  SUBCASE("garbage") { value = "many"; }
  cmd({"HSET", keys.sb(), "inodes", value});
  auto r = check();
  INFO(_dump(r));
  REQUIRE(_kinds(r) == _sorted({fsck_kind::k_wrong_counter}));
  CHECK(r.problems[0].detail.find("inodes") != std::string::npos);
  expect_repaired({fsck_kind::k_wrong_counter});
  CHECK(_ok(t.store->statfs()).inodes == 15);
}

TEST_CASE_FIXTURE(FsckFixture, "next_inode") {
  auto t = build();
  std::string value;
  SUBCASE("2^64-1") { value = "18446744073709551615"; }
  SUBCASE("2^53") { value = "9007199254740992"; }
  SUBCASE("2^53-1: no room to create") { value = "9007199254740991"; }
  SUBCASE("below an existing inode") { value = _str(t.open); }
  SUBCASE("zero") { value = "0"; }
  SUBCASE("garbage") { value = "soon"; }
  cmd({"HSET", keys.sb(), "next_inode", value});
  auto r = check();
  INFO(_dump(r));
  REQUIRE(_kinds(r) == _sorted({fsck_kind::k_wrong_counter}));
  CHECK(r.problems[0].detail.find("next_inode") != std::string::npos);
  expect_repaired({fsck_kind::k_wrong_counter});
  auto reopened = _ok(Store::open(pool, prefix, {}));
  CHECK(_ok(reopened->mknod(k_root_ino, "new", S_IFREG | 0644, 0, k_user)).ino > t.open);
}

TEST_CASE_FIXTURE(FsckFixture, "a mount never hands out an inode number of 2^53 or more") {
  auto t = build();
  cmd({"HSET", keys.sb(), "next_inode", "9007199254740900"});
  auto s = _ok(Store::open(pool, prefix, {}));
  CHECK(s->mknod(k_root_ino, "new", S_IFREG | 0644, 0, k_user).code() == ENOSPC);
  CHECK(_ok(conn().command({"HGET", keys.sb(), "next_inode"})).view().str() == "9007199254740900");
}

TEST_CASE_FIXTURE(FsckFixture, "inodes the daemon could not serve are bad inodes") {
  auto t = build();
  SUBCASE("a symlink target longer than the kernel accepts") {
    cmd({"HSET", keys.inode(t.ln), "target", std::string(4096, 'a')});
  }
  SUBCASE("an empty symlink target") { cmd({"HSET", keys.inode(t.ln), "target", ""}); }
  SUBCASE("a symlink without a target") { cmd({"HDEL", keys.inode(t.ln), "target"}); }
  SUBCASE("a device's rdev that cannot be parsed") { cmd({"HSET", keys.inode(t.fifo), "rdev", "x"}); }
  SUBCASE("an inode number of 2^53") {
    cmd({"RENAME", keys.inode(t.fifo), keys.inode(1ull << 53)});
    cmd({"HSET", keys.dir(k_root_ino), "fifo", _str(1ull << 53)});
  }
  auto r = check(true);
  INFO(_dump(r));
  CHECK(_kinds(r) == _sorted({fsck_kind::k_bad_inode}));
  CHECK_FALSE(r.problems[0].repaired);
}

// A time that cannot be parsed, or is missing, is set to the latest of the
// inode's other times (0 when none parses), the rdev of what is no device
// to 0, and a link count is counted again: they say nothing of the data or
// of who may reach it. An owner or a mode is not guessed (next test), nor
// a device's rdev (above).
TEST_CASE_FIXTURE(FsckFixture, "fields that say nothing of the data or its access: set when they cannot be parsed") {
  auto t = build();
  auto fields = [&](Ino ino, std::initializer_list<const char*> names) {
    std::string out;
    for (const char* f : names) {
      out += (out.empty() ? "" : " ") + std::string(_ok(conn().command({"HGET", keys.inode(ino), f})).view().str());
    }
    return out;
  };
  cmd({"HSET", keys.inode(t.f), "atime", "100", "mtime", "300", "ctime", "200"});
  std::string says = "(the repair sets the latest of its other times, 300)";
  std::string after = "300 300 200 0 2";  // atime mtime ctime rdev nlink (two names)
  SUBCASE("a time malformed") { cmd({"HSET", keys.inode(t.f), "atime", "yesterday"}); }
  SUBCASE("a time missing") { cmd({"HDEL", keys.inode(t.f), "atime"}); }
  SUBCASE("a time out of range") { cmd({"HSET", keys.inode(t.f), "atime", "99999999999999999999"}); }
  SUBCASE("two times, the latest left being the lower") {
    cmd({"HSET", keys.inode(t.f), "atime", "", "mtime", "1.5"});
    says = "(the repair sets the latest of its other times, 200)";
    after = "200 200 200 0 2";
  }
  SUBCASE("all three times: the epoch") {
    cmd({"HSET", keys.inode(t.f), "atime", "x", "mtime", "y"});
    cmd({"HDEL", keys.inode(t.f), "ctime"});
    says = "(the repair sets the latest of its other times, 0)";
    after = "0 0 0 0 2";
  }
  SUBCASE("the rdev of a file, and a time") {
    cmd({"HSET", keys.inode(t.f), "rdev", "-", "ctime", "z"});
    says = "";
    after = "100 300 300 0 2";
  }
  SUBCASE("a link count") {
    cmd({"HSET", keys.inode(t.f), "nlink", "two"});
    says = "nlink is not a number, but 2 entries name it";
    after = "100 300 200 0 2";
  }
  // (the least int64s: once the marks of a count that cannot be read, so
  // the repair's second look read them otherwise and never converged)
  SUBCASE("a link count of -2^63") {
    cmd({"HSET", keys.inode(t.f), "nlink", "-9223372036854775808"});
    says = "nlink is -9223372036854775808, but 2 entries name it";
    after = "100 300 200 0 2";
  }
  SUBCASE("a byte count of -2^63 and of -2^63+1") {
    cmd({"HSET", keys.inode(t.f), "bytes", "-9223372036854775808"});
    cmd({"HSET", keys.inode(t.sub), "bytes", "-9223372036854775807"});
    says = "bytes is -922337203685477580";
    after = "100 300 200 0 2";
  }
  auto r = check();
  INFO(_dump(r));
  REQUIRE_FALSE(r.problems.empty());
  for (const auto& p : r.problems) {
    CHECK(p.repairable);
    CHECK(p.deletes.empty());
    CHECK_MESSAGE(p.detail.find(says) != std::string::npos, p.detail);
  }
  auto fixed = check(true);
  for (const auto& p : fixed.problems) {
    CHECK(p.repaired);
  }
  CHECK(check().problems.empty());
  CHECK(fields(t.f, {"atime", "mtime", "ctime", "rdev", "nlink"}) == after);
  CHECK(_ok(t.store->getattr(t.f)).ino == t.f);  // the daemon serves it again
}

// An owner or a mode that cannot be parsed, or is missing, is not
// guessed: the repair sets it so that only root may reach the inode (an
// owner 0, the mode 0000; also a mode that parses when an owner is set, so
// that no setuid file becomes root's), and the inode is served again.
TEST_CASE_FIXTURE(FsckFixture, "an owner or a mode that cannot be parsed: set so that only root may reach the inode") {
  auto t = build();
  auto field = [&](Ino ino, const char* f) {
    auto r = _ok(conn().command({"HGET", keys.inode(ino), f}));
    return r.view().is_nil() ? std::string("(none)") : std::string(r.view().str());
  };
  Ino ino = t.f;
  std::string uid = field(t.f, "uid"), gid = field(t.f, "gid");
  std::vector<std::string> says;
  SUBCASE("uid") {
    cmd({"HSET", keys.inode(t.f), "uid", "root"});
    uid = "0";
    says = {"malformed field 'uid' (the repair sets 0, root, and the mode 0000",
            "mode 0644 (its owner cannot be read: the repair sets the mode 0000 with it"};
  }
  SUBCASE("an owner the kernel cannot represent, of a setuid file") {
    cmd({"HSET", keys.inode(t.f), "uid", "4294967295", "mode", "4755"});
    uid = "0";
    says = {"uid 4294967295 is not an owner (the repair sets 0", "mode 4755 (its owner cannot be read"};
  }
  SUBCASE("gid missing, beside a time") {
    cmd({"HDEL", keys.inode(t.f), "gid"});
    cmd({"HSET", keys.inode(t.f), "mtime", "x"});
    gid = "0";
    says = {"no 'gid' field (the repair sets 0, root", "mode 0644 (its owner", "malformed field 'mtime'"};
  }
  SUBCASE("both owners, the mode already 0000") {
    cmd({"HSET", keys.inode(t.f), "uid", "-1", "gid", "x", "mode", "0000"});
    uid = gid = "0";
    says = {"malformed field 'uid'", "malformed field 'gid'"};
  }
  SUBCASE("mode") {
    cmd({"HSET", keys.inode(t.f), "mode", "0x1ed"});
    says = {"malformed field 'mode' (the repair sets 0000: only root may reach it until chmod sets a mode)"};
  }
  SUBCASE("a fifo's missing mode") {
    ino = t.fifo;
    uid = field(t.fifo, "uid");
    gid = field(t.fifo, "gid");
    cmd({"HDEL", keys.inode(t.fifo), "mode"});
    says = {"no 'mode' field (the repair sets 0000"};
  }
  auto r = check();
  INFO(_dump(r));
  REQUIRE(r.problems.size() == says.size());
  for (const auto& p : r.problems) {
    CHECK(p.kind == fsck_kind::k_bad_inode);
    CHECK(p.repairable);
    CHECK(p.deletes.empty());
    const bool said =
        std::any_of(says.begin(), says.end(), [&](const auto& w) { return p.detail.find(w) != std::string::npos; });
    CHECK_MESSAGE(said, p.detail);
  }
  auto fixed = check(true);
  for (const auto& p : fixed.problems) {
    CHECK(p.repaired);
  }
  CHECK(check().problems.empty());
  CHECK(field(ino, "mode") == "0000");
  CHECK(field(ino, "uid") == uid);
  CHECK(field(ino, "gid") == gid);
  Attr a = _ok(t.store->getattr(ino));  // the daemon serves it again
  CHECK((a.mode & 07777) == 0);
  CHECK(std::to_string(a.uid) == uid);
}

// A size or a parent that cannot be read is set from what the other keys
// tell: a file's size to where the data of its blocks ends (every byte
// kept; a hole at its end is not), another's as create sets it (a
// symlink's target's length, else 0); a directory's parent from the entry
// naming it (or /lost+found), another inode's removed (only a directory
// has one).
TEST_CASE_FIXTURE(FsckFixture, "a size or a parent that cannot be read: set from what the other keys tell") {
  auto t = build();
  auto field = [&](Ino ino, const char* f) {
    auto r = _ok(conn().command({"HGET", keys.inode(ino), f}));
    return r.view().is_nil() ? std::string("(none)") : std::string(r.view().str());
  };
  auto read = [&](Ino ino) {
    std::string data;
    _ok(t.store->read(ino, 0, 1 << 20, data));
    return data;
  };
  const std::uint64_t past = (1ull << 50) / k_bs;  // the first block past the largest file size
  Ino ino = t.f;
  std::string size = "10000";  // what the repair leaves
  std::vector<std::string_view> kinds{fsck_kind::k_bad_inode};
  std::string says = "malformed field 'size' (the repair sets 10000, where the data of its blocks ends";
  std::vector<std::tuple<Ino, const char*, std::string>> also;  // other fields as the repair leaves them
  SUBCASE("a file's size") { cmd({"HSET", keys.inode(t.f), "size", "lots"}); }
  SUBCASE("a file's size above the largest file size") {
    cmd({"HSET", keys.inode(t.f), "size", "1125899906842625"});
    says = "size 1125899906842625 is above the largest file size (2^50) (the repair sets 10000";
  }
  SUBCASE("a file's size missing, and a block longer than the block size: its bytes past the block go") {
    cmd({"HDEL", keys.inode(t.f), "size"});
    cmd({"APPEND", keys.block(t.f, 0), "more"});
    kinds.push_back(fsck_kind::k_oversized_block);
    says = "no 'size' field (the repair sets 10000";
  }
  SUBCASE("bytes past the old end are kept; a block past the largest file size goes, an empty one past the end too") {
    cmd({"HSET", keys.inode(t.f), "size", "x"});
    cmd({"APPEND", keys.block(t.f, 2), "yz"});
    cmd({"SET", keys.block(t.f, past + 3), "far"});
    cmd({"SET", keys.block(t.f, 7), ""});
    size = "10002";
    kinds.push_back(fsck_kind::k_block_past_eof);
    kinds.push_back(fsck_kind::k_block_past_eof);
    kinds.push_back(fsck_kind::k_wrong_bytes);  // (the two bytes it holds now)
    kinds.push_back(fsck_kind::k_wrong_counter);
    says = "(the repair sets 10002, where";
  }
  SUBCASE("a sparse file: its data at the end, nothing lost; an empty block within it is kept") {
    ino = t.sparse;
    cmd({"HSET", keys.inode(t.sparse), "size", "-3"});
    cmd({"SET", keys.block(t.sparse, 2), ""});
    size = _str(5 * k_bs + 3);
    says = "(the repair sets " + size + ", where";
  }
  SUBCASE("an empty file, and an empty block") {
    ino = t.empty;
    cmd({"HDEL", keys.inode(t.empty), "size"});
    cmd({"SET", keys.block(t.empty, 0), ""});
    size = "0";
    kinds.push_back(fsck_kind::k_block_past_eof);
    says = "no 'size' field (the repair sets 0: its blocks hold no data)";
  }
  SUBCASE("a symlink's size: its target's length") {
    ino = t.ln;
    cmd({"HSET", keys.inode(t.ln), "size", ""});
    size = "3";
    says = "malformed field 'size' (the repair sets 3, its target's length)";
  }
  SUBCASE("a directory's size of 2^64-1") {
    ino = t.sub;
    cmd({"HSET", keys.inode(t.sub), "size", "18446744073709551615"});
    size = "0";
    says = "(the repair sets 0, as for every directory)";
  }
  SUBCASE("a fifo's size missing") {
    ino = t.fifo;
    cmd({"HDEL", keys.inode(t.fifo), "size"});
    size = "0";
    says = "no 'size' field (the repair sets 0, as for every special file)";
  }
  SUBCASE("a directory's change count past what Lua counts, and a file's that is no number: 0") {
    cmd({"HSET", keys.inode(t.sub), "gen", "18446744073709551615"});
    cmd({"HSET", keys.inode(t.f), "gen", "x"});
    kinds.push_back(fsck_kind::k_bad_inode);
    size = "10000";
    says = "gen 18446744073709551615 is not below 2^53 (the repair sets 0, a change count starting again)";
    also = {{t.sub, "gen", "0"}, {t.f, "gen", "0"}};
  }
  SUBCASE("a file's parent: removed") {
    cmd({"HSET", keys.inode(t.f), "parent", "d"});
    says = "malformed field 'parent' (the repair removes it: only a directory has one)";
  }
  SUBCASE("a directory's parent: from the entry naming it") {
    ino = t.sub;
    size = "0";
    cmd({"HSET", keys.inode(t.sub), "parent", "up"});
    kinds = {fsck_kind::k_wrong_parent};
    says = "parent cannot be read, but the directory is named by 'sub' in directory 1";
  }
  SUBCASE("the root's parent") {
    ino = k_root_ino;
    size = "0";
    cmd({"HSET", keys.inode(k_root_ino), "parent", "18446744073709551616"});
    kinds = {fsck_kind::k_wrong_parent};
    says = "the root's parent cannot be read, not itself";
  }
  SUBCASE("a directory's parent of -1 (a number, but no inode's): from the entry naming it") {
    ino = t.sub;
    size = "0";
    cmd({"HSET", keys.inode(t.sub), "parent", "-1"});
    kinds = {fsck_kind::k_wrong_parent};
    says = "parent cannot be read, but the directory is named by 'sub' in directory 1";
  }
  SUBCASE("the root's parent of -2^63") {
    ino = k_root_ino;
    size = "0";
    cmd({"HSET", keys.inode(k_root_ino), "parent", "-9223372036854775808"});
    kinds = {fsck_kind::k_wrong_parent};
    says = "the root's parent cannot be read, not itself";
  }
  SUBCASE("a directory's parent of -1, and no entry names it: reattached") {
    ino = t.sub;
    size = "0";
    cmd({"HDEL", keys.dir(k_root_ino), "sub"});
    cmd({"HSET", keys.inode(t.sub), "parent", "-1"});
    kinds = {fsck_kind::k_lost_inode, fsck_kind::k_wrong_nlink};
    says = "";
  }
  SUBCASE("a directory's parent, and no entry names it: reattached") {
    ino = t.sub;
    size = "0";
    cmd({"HDEL", keys.dir(k_root_ino), "sub"});
    cmd({"HSET", keys.inode(t.sub), "parent", "?"});
    kinds = {fsck_kind::k_lost_inode, fsck_kind::k_wrong_nlink};  // (the root still counts it)
    says = "";
  }
  auto r = check();
  INFO(_dump(r));
  CHECK(_kinds(r) == _sorted(kinds));
  for (const auto& p : r.problems) {
    CHECK_MESSAGE(p.repairable, fsck_problem_line(p));
  }
  CHECK_MESSAGE(std::any_of(r.problems.begin(), r.problems.end(),
                            [&](const auto& p) { return p.detail.find(says) != std::string::npos; }),
                says);
  auto fixed = check(true);
  INFO(_dump(fixed));
  CHECK(fixed.remaining() == 0);
  auto after = check();
  INFO(_dump(after));
  CHECK(after.problems.empty());
  CHECK(field(ino, "size") == size);
  for (const auto& [i, f, v] : also) {
    CHECK(field(i, f) == v);
    CHECK(_ok(t.store->getattr(i)).ino == i);
  }
  Attr a = _ok(t.store->getattr(ino));  // the daemon serves it again
  CHECK(a.size == std::stoull(size));
  if (ino == t.f) {
    CHECK(field(t.f, "parent") == "(none)");
    std::string data = read(t.f);
    CHECK(data.substr(0, 10000) == std::string(10000, 'x'));
    CHECK(data.size() == a.size);
  } else if (ino == t.sparse) {
    CHECK(read(t.sparse) == std::string(5 * k_bs, '\0') + "end");
    CHECK(_ok(conn().command({"EXISTS", keys.block(t.sparse, 2)})).view().integer() == 1);
  } else if (ino == t.sub && kinds.size() == 2) {
    CHECK(a.parent == lookup(k_root_ino, "lost+found"));
  } else if (a.is_dir()) {
    CHECK(a.parent == k_root_ino);
  }
}

TEST_CASE_FIXTURE(FsckFixture, "a type that cannot be read: set when the other keys tell it, and checked again") {
  auto t = build();
  auto type = [&](Ino ino) {
    auto r = _ok(conn().command({"HGET", keys.inode(ino), "type"}));
    return r.view().is_nil() ? std::string("(none)") : std::string(r.view().str());
  };
  Ino ino = t.f;
  std::string set = "file";  // "" when the repair leaves it by hand
  std::string says =
      "no 'type' field (the repair sets type file, which a size and data blocks tell, and the inode is "
      "then checked again)";
  std::vector<std::string_view> later;  // kinds only the second check can see
  SUBCASE("a file with data, whose link count is wrong too") {
    cmd({"HDEL", keys.inode(t.f), "type"});
    cmd({"HSET", keys.inode(t.f), "nlink", "5"});
    later = {fsck_kind::k_wrong_nlink};
  }
  SUBCASE("a sparse file, its type garbage") {
    ino = t.sparse;
    cmd({"HSET", keys.inode(t.sparse), "type", "flie"});
    says = "unknown type 'flie' (the repair sets type file";
  }
  SUBCASE("a directory, whose time is missing too") {
    ino = t.sub;
    cmd({"HSET", keys.inode(t.sub), "type", "folder"});
    cmd({"HDEL", keys.inode(t.sub), "mtime"});
    set = "dir";
    says = "unknown type 'folder' (the repair sets type dir, which a parent field and directory entries tell";
    later = {fsck_kind::k_bad_inode};
  }
  SUBCASE("the root") {
    ino = k_root_ino;
    cmd({"HDEL", keys.inode(k_root_ino), "type"});
    set = "dir";
    says = "(the repair sets type dir, which a parent field, being the root and directory entries tell";
  }
  SUBCASE("a symlink") {
    ino = t.ln;
    cmd({"HDEL", keys.inode(t.ln), "type"});
    set = "symlink";
    says = "(the repair sets type symlink, which a target field tells,";
  }
  SUBCASE("an empty file: nothing tells it from a fifo") {
    ino = t.empty;
    cmd({"HDEL", keys.inode(t.empty), "type"});
    set = "";
    says = "no 'type' field (not repaired: none of its keys tells a file without data from a fifo or a socket";
  }
  SUBCASE("a fifo") {
    ino = t.fifo;
    cmd({"HSET", keys.inode(t.fifo), "type", ""});
    set = "";
    says = "unknown type '' (not repaired: none of its keys tells";
  }
  SUBCASE("a device: character or block, the keys do not tell") {
    ino = _ok(t.store->mknod(k_root_ino, "tty", S_IFCHR | 0600, 0x0501, k_user)).ino;
    cmd({"HDEL", keys.inode(ino), "type"});
    set = "";
    says = "(not repaired: a device number tells a device, but not a character from a block one";
  }
  SUBCASE("keys that disagree: nothing is deleted on the strength of a guess") {
    cmd({"HDEL", keys.inode(t.f), "type"});
    cmd({"HSET", keys.inode(t.f), "target", "d/f"});
    set = "";
    says =
        "(not repaired: its keys disagree: a target field (a symlink's) and data blocks (a regular file's): fix it "
        "by hand)";
  }
  SUBCASE("a directory with a block") {
    ino = t.sub;
    cmd({"HDEL", keys.inode(t.sub), "type"});
    cmd({"SET", keys.block(t.sub, 0), "data"});
    cmd({"HINCRBY", keys.sb(), "bytes", "4"});  // (counted, as a bad inode's blocks are)
    set = "";
    says =
        "its keys disagree: a parent field (a directory's), directory entries (a directory's) and data blocks (a "
        "regular file's)";
  }
  const std::string was = type(ino);
  auto nlink = [&](Ino i) { return std::string(_ok(conn().command({"HGET", keys.inode(i), "nlink"})).view().str()); };
  const std::string root_nlink = nlink(k_root_ino);
  auto r = check();
  INFO(_dump(r));
  CHECK(_kinds(r) == _sorted({fsck_kind::k_bad_inode}));
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].key == keys.inode(ino));
  CHECK_MESSAGE(r.problems[0].detail.find(says) != std::string::npos, says);
  CHECK(r.problems[0].repairable == !set.empty());
  auto fixed = check(true);
  INFO(_dump(fixed));
  if (set.empty()) {
    CHECK(fixed.remaining() == 1);
    CHECK(type(ino) == was);
    // (a directory naming it: its subdirectories are not known, nor is its link count)
    CHECK(nlink(k_root_ino) == root_nlink);
    CHECK(t.store->getattr(ino).code() == EIO);
    // its keys are all there
    for (Ino i : {t.f, t.sub}) {
      CHECK(_ok(conn().command({"EXISTS", keys.inode(i)})).view().integer() == 1);
    }
    CHECK(_ok(conn().command({"EXISTS", keys.block(t.f, 0)})).view().integer() == 1);
    CHECK(_ok(conn().command({"EXISTS", keys.dir(t.sub)})).view().integer() == 1);
    return;
  }
  // what the first check could not judge, the second one repaired
  std::vector<std::string_view> kinds{fsck_kind::k_bad_inode};
  kinds.insert(kinds.end(), later.begin(), later.end());
  CHECK(_kinds(fixed) == _sorted(kinds));
  CHECK(fixed.remaining() == 0);
  CHECK(fixed.problems[0].detail.find(says) != std::string::npos);
  auto after = check();
  INFO(_dump(after));
  CHECK(after.problems.empty());
  CHECK(type(ino) == set);
  Attr a = _ok(t.store->getattr(ino));
  CHECK(type_name(a.mode) == set);
  if (ino == t.f) {
    CHECK(a.nlink == 2);
    std::string data;
    _ok(t.store->read(t.f, 0, 20000, data));
    CHECK(data == std::string(10000, 'x'));
  }
}

TEST_CASE_FIXTURE(FsckFixture, "a type set by the repair is set only if the check's reading of it still holds") {
  auto t = build();
  cmd({"HSET", keys.inode(t.f), "type", "x"});
  auto r = check();
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].repairable);
  // a mount's fix (or another damage) since the check: kept
  auto a = _ok(conn().eval(lua::fsck_field, {keys.inode(t.f), keys.changed()},
                           {"untracked", "HSET", "type", "absent", "", "file"}));
  CHECK(a.view().integer() == 0);
  auto v = _ok(conn().eval(lua::fsck_field, {keys.inode(t.f), keys.changed()},
                           {"untracked", "HSET", "type", "value", "y", "file"}));
  CHECK(v.view().integer() == 0);
  CHECK(_ok(conn().command({"HGET", keys.inode(t.f), "type"})).view().str() == "x");
  // an inode removed since the check is not made again of one field
  cmd({"DEL", keys.inode(t.f)});
  auto gone = _ok(conn().eval(lua::fsck_field, {keys.inode(t.f), keys.changed()},
                              {"untracked", "HSET", "type", "value", "x", "file"}));
  CHECK(gone.view().integer() == 0);
  CHECK(_ok(conn().command({"EXISTS", keys.inode(t.f)})).view().integer() == 0);
}

TEST_CASE_FIXTURE(FsckFixture, "the root") {
  auto t = build();
  SUBCASE("missing") {
    cmd({"DEL", keys.inode(k_root_ino)});
    auto r = check();
    CHECK(_count(r, fsck_kind::k_missing_root) == 1);
  }
  SUBCASE("a file") {
    cmd({"HSET", keys.inode(k_root_ino), "type", "file"});
    auto r = check();
    CHECK(_count(r, fsck_kind::k_missing_root) == 1);
  }
}

TEST_CASE_FIXTURE(FsckFixture, "entry names the kernel cannot use") {
  auto t = build();
  std::string name;
  SUBCASE("empty") { name = ""; }
  SUBCASE("a slash") { name = "a/b"; }
  SUBCASE("a NUL") { name = std::string("a\0b", 3); }
  SUBCASE("256 bytes") { name = std::string(256, 'n'); }
  SUBCASE("dot") { name = "."; }
  SUBCASE("dot dot") { name = ".."; }
  // the fifo's only name becomes unusable: the entry goes, the fifo is kept
  cmd({"HDEL", keys.dir(k_root_ino), "fifo"});
  cmd({"HSET", keys.dir(k_root_ino), name, _str(t.fifo)});
  expect_repaired({fsck_kind::k_bad_entry, fsck_kind::k_lost_inode});
  Ino lf = lookup(k_root_ino, "lost+found");
  CHECK(lookup(lf, "#" + _str(t.fifo)) == t.fifo);
}

TEST_CASE_FIXTURE(FsckFixture, "a directory named by an unusable name is reattached") {
  auto t = build();
  cmd({"HDEL", keys.dir(k_root_ino), "sub"});
  cmd({"HSET", keys.dir(k_root_ino), "..", _str(t.sub)});
  // the root still counts it as a subdirectory
  expect_repaired({fsck_kind::k_bad_entry, fsck_kind::k_lost_inode, fsck_kind::k_wrong_nlink});
  Ino lf = lookup(k_root_ino, "lost+found");
  CHECK(lookup(lf, "#" + _str(t.sub)) == t.sub);
  CHECK(_ok(t.store->getattr(t.sub)).parent == lf);
}

TEST_CASE_FIXTURE(FsckFixture, "extended attributes the kernel cannot list or read") {
  auto t = build();
  std::string name = "user.ok";
  std::string value = "v";
  SUBCASE("an empty name") { name = ""; }
  SUBCASE("no namespace") { name = "plain"; }
  SUBCASE("nothing after the dot") { name = "user."; }
  SUBCASE("a NUL in the name") { name = std::string("user.a\0b", 8); }
  SUBCASE("a name of 256 bytes") { name = "user." + std::string(251, 'a'); }
  SUBCASE("a value above 64 KiB") { value = std::string(64 * 1024 + 1, 'v'); }
  SUBCASE("a POSIX ACL, never stored") { name = "system.posix_acl_access"; }
  cmd({"HSET", keys.xattr(t.f), name, value});
  // Until the repair a mount lists the others, leaving out a name the
  // kernel would refuse (the whole list would fail with EIO).
  LeftOut left_out;
  auto listed = _ok(t.store->listxattr(t.f, left_out));
  const bool name_bad = value == "v";
  std::sort(listed.begin(), listed.end());
  CHECK(listed == (name_bad ? std::vector<std::string>{"user.b"} : std::vector<std::string>{"user.b", name}));
  CHECK(left_out.count == (name_bad ? 1U : 0U));
  CHECK(left_out.name == (name_bad ? name : ""));
  auto r = check();
  INFO(_dump(r));
  REQUIRE(_kinds(r) == _sorted({fsck_kind::k_bad_xattr}));
  CHECK(r.problems[0].deletes.find("-byte value") != std::string::npos);
  expect_repaired({fsck_kind::k_bad_xattr});
  left_out = {};
  CHECK(_ok(t.store->listxattr(t.f, left_out)) == std::vector<std::string>{"user.b"});
  CHECK(left_out.count == 0);
}

TEST_CASE_FIXTURE(FsckFixture, "user attributes of a symlink or a fifo cannot be read") {
  auto t = build();
  cmd({"HSET", keys.xattr(t.ln), "user.a", "v"});
  cmd({"HSET", keys.xattr(t.fifo), "user.b", "v", "trusted.c", "kept"});
  expect_repaired({fsck_kind::k_bad_xattr, fsck_kind::k_bad_xattr});
  CHECK(_ok(conn().command({"EXISTS", keys.xattr(t.ln)})).view().integer() == 0);
  CHECK(_ok(conn().command({"HGET", keys.xattr(t.fifo), "trusted.c"})).view().str() == "kept");
}

TEST_CASE_FIXTURE(FsckFixture, "a security attribute needs the superblock's flag") {
  auto t = build();
  cmd({"HSET", keys.xattr(t.f), "security.selinux", "label"});
  expect_repaired({fsck_kind::k_wrong_counter});
  auto reopened = _ok(Store::open(pool, prefix, {}));
  CHECK(_ok(reopened->getxattr(t.f, "security.selinux")) == "label");
}

TEST_CASE_FIXTURE(FsckFixture, "lines and errors stay bounded with a 1 MB key or name") {
  auto t = build();
  std::string huge(1 << 20, 'k');
  cmd({"SET", prefix + ":" + huge, "1"});
  cmd({"HSET", keys.dir(t.d), huge + "\n", "999999"});
  cmd({"HSET", keys.xattr(t.f), huge, "v"});
  auto r = check();
  INFO(r.problems.size());
  REQUIRE(r.problems.size() == 3);
  for (const auto& p : r.problems) {
    for (const std::string& line : {fsck_problem_line(p), fsck_dry_run_line(p)}) {
      CHECK(line.size() < 2048);
      CHECK(line.find('\n') == std::string::npos);
      CHECK(line.find("...") != std::string::npos);
    }
  }
  std::string one = fsck_summary_line(r);
  CHECK(one.size() < 2048);
  CHECK(one.ends_with("(and 2 more problems)"));
  CHECK(one.find(": " + prefix + ":") != std::string::npos);
  std::string relative = fsck_summary_line(r, prefix);
  CHECK(relative.find(prefix) == std::string::npos);
  CHECK(relative.ends_with("(and 2 more problems)"));
}

TEST_CASE_FIXTURE(FsckFixture, "a server error names the key being read") {
  auto t = build();
  // a user the server refuses HSCAN: fsck reads every directory with it
  const std::string user = "fsck-" + prefix;
  _ok(conn().command({"ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-hscan"}));
  RedisUrl url = redisfs::test::test_url();
  url.user = user;
  url.password = "pw";
  Pool limited(url, "redisfs:test-fsck");
  auto r = fsck(limited, prefix, false, nullptr);
  (void)conn().command({"ACL", "DELUSER", user});
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message);
  // a DIR or an XATTR key, whichever SCAN returned first
  CHECK((r.error().message.starts_with(prefix + ":DIR:") || r.error().message.starts_with(prefix + ":XATTR:")));
  CHECK(r.error().message.find("NOPERM") != std::string::npos);
  CHECK(r.error().message.find('\n') == std::string::npos);
}

TEST_CASE_FIXTURE(FsckFixture, "keys that expire (a staged restore) check clean") {
  auto t = build();
  for (const auto& k : keys_under(prefix)) {
    if (k.find(":MOUNT:") == std::string::npos) {
      cmd({"PEXPIRE", k, "600000"});
    }
  }
  auto r = check();
  INFO(_dump(r));
  CHECK(r.problems.empty());
  CHECK(fsck_summary_line(r).empty());
}

TEST_SUITE_END();

TEST_CASE_FIXTURE(FsckFixture, "a live mount goes on refreshing its session while MOUNTS or WRITEBACK is damaged") {
  auto s = Store::open(pool, prefix, {});
  REQUIRE_MESSAGE(s.ok(), s.error().message);
  const std::string mine = keys.mount((*s)->session());
  for (const std::string& damaged : {keys.mounts(), keys.writeback()}) {
    CAPTURE(damaged);
    cmd({"DEL", damaged});
    cmd({"RPUSH", damaged, "x"});
    cmd({"PEXPIRE", mine, "2000"});
    REQUIRE(_ok(conn().command({"PTTL", mine})).view().integer() <= 2000);
    (void)(*s)->heartbeat();  // (may report the damage; the session key must be refreshed all the same)
    CHECK(_ok(conn().command({"PTTL", mine})).view().integer() > 2000);
    CHECK(_ok(conn().command({"TYPE", damaged})).view().str() == "list");  // left for fsck
    auto refused = Store::open(pool, prefix, {});                          // a new mount is refused, naming the key
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find(damaged + " is a list") != std::string::npos);
    cmd({"DEL", damaged});
  }
}
