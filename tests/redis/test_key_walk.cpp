// The structure walk (key_walk.hpp) against SCAN, the reference: the same
// keys in every state the scripts make; a damaged filesystem detected, and
// copy, dump and delete falling back to SCAN; on a crowded server, copy,
// dump, delete and list never SCAN (list reads the register of
// filesystems); mounts counted in their register.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "fixture.hpp"
#include "snap/dump_io.hpp"
#include "snap/fs_report.hpp"
#include "snap/fsck.hpp"
#include "snap/snapshot.hpp"
#include "store/key_walk.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

using redisfs::test::ok;

// The filesystem keys SCAN finds under a prefix (relative), but SB.
std::set<std::string> _scanned(Connection& c, const std::string& prefix) {
  Keys keys(prefix);
  std::set<std::string> out;
  for (const auto& key : test::keys_under(c, prefix)) {
    std::string rel(*keys.relative(key));
    KeyKind kind = parse_relative_key(rel).kind;
    if (is_filesystem_key(kind) && kind != KeyKind::Superblock) {
      out.insert(rel);
    }
  }
  return out;
}

// The keys the walk finds, with a visitor that only looks (EXISTS, STRLEN).
std::set<std::string> _walked(Connection& c, const std::string& prefix, KeyWalkResult& result) {
  Keys keys(prefix);
  std::set<std::string> out;
  KeyWalk walk(c, keys);
  ok(walk.begin());
  result = ok(walk.run([&](std::span<const std::string> rels, std::vector<long long>& found) -> Status {
    for (const auto& rel : rels) {
      bool block = parse_relative_key(rel).kind == KeyKind::Block;
      c.append({block ? "STRLEN" : "EXISTS", keys.absolute(rel)});
    }
    TRY_ASSIGN(std::vector<Reply> r, c.read_all());
    for (std::size_t i = 0; i < rels.size(); ++i) {
      long long v = r[i].view().integer();
      found[i] = v > 0 ? (parse_relative_key(rels[i]).kind == KeyKind::Block ? v : 0) : -1;
      if (found[i] >= 0) {
        out.insert(rels[i]);
      }
    }
    return {};
  }));
  return out;
}

// Every odd state the scripts make: a sparse file with missing blocks, a
// short last block, a file grown past its data, a huge sparse file storing
// nothing, hard links, an unlinked-but-open orphan, xattrs, an empty
// directory, a symlink, a fifo, a device, a socket, and a directory longer
// than one HSCAN page.
void _populate_odd(Pool& pool, const std::string& prefix) {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Ino d = ok(s->mkdir(k_root_ino, "dir", 0755, k_user)).ino;
  Ino sparse = ok(s->mknod(d, "sparse", S_IFREG | 0644, 0, k_user)).ino;
  ok(s->write(sparse, 0, std::string(100, 'a'), false));
  ok(s->write(sparse, 9 * 4096 + 17, "after the hole", false));
  Ino shortf = ok(s->mknod(d, "short", S_IFREG | 0644, 0, k_user)).ino;
  ok(s->write(shortf, 0, std::string(5000, 's'), false));
  SetAttrRequest grow;
  grow.size = 3 * 4096 + 5;
  ok(s->setattr(shortf, grow));
  Ino huge = ok(s->mknod(d, "huge", S_IFREG | 0644, 0, k_user)).ino;
  SetAttrRequest big;
  big.size = 1ull << 40;
  ok(s->setattr(huge, big));
  ok(s->link(shortf, k_root_ino, "hard link"));
  ok(s->link(shortf, d, "another"));
  ok(s->mkdir(k_root_ino, "empty", 0700, k_user));
  ok(s->symlink(d, "link", "../dir/sparse", k_user));
  ok(s->mknod(k_root_ino, "fifo", S_IFIFO | 0644, 0, k_user));
  ok(s->mknod(k_root_ino, "tty", S_IFCHR | 0600, makedev(4, 1), k_user));
  ok(s->mknod(k_root_ino, "sock", S_IFSOCK | 0600, 0, k_user));
  ok(s->setxattr(shortf, "user.note", std::string("\x00\xff", 2), 0));
  ok(s->setxattr(d, "user.dir", "x", 0));
  Ino wide = ok(s->mkdir(k_root_ino, "wide", 0755, k_user)).ino;
  for (int i = 0; i < 2500; ++i) {
    ok(s->mknod(wide, "f" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  Ino inwide = ok(s->lookup(wide, "f1234")).ino;
  ok(s->write(inwide, 0, "in a wide directory", false));
  Ino held = ok(s->create(k_root_ino, "held", 0644, k_user)).ino;
  ok(s->write(held, 0, std::string(9000, 'h'), false));
  ok(s->setxattr(held, "user.x", "y", 0));
  REQUIRE(ok(s->unlink(k_root_ino, "held")) == held);
}

std::string _dump(Pool& pool, const std::string& prefix, std::string* warning = nullptr) {
  std::ostringstream out;
  DumpStats st = ok(dump_filesystem(pool, prefix, out, DumpOptions{true}));
  if (warning != nullptr) {
    *warning = st.warning;
  }
  return out.str();
}

// A copy of `prefix` to `dst` and a dump of it, each without a warning
// (the structure walk agreed with the superblock); the copy's stats.
CopyStats _copied_and_dumped_quietly(Pool& pool, const std::string& prefix, const std::string& dst) {
  CopyStats copied = ok(copy_filesystem(pool, prefix, dst, CopyOptions{false, false, true}));
  CHECK_MESSAGE(copied.warning.empty(), copied.warning);
  std::string warning;
  _dump(pool, prefix, &warning);
  CHECK_MESSAGE(warning.empty(), warning);
  return copied;
}

}  // namespace

TEST_SUITE_BEGIN("core::key_walk");

TEST_CASE_FIXTURE(RedisFixture, "key walk: the same keys as SCAN, odd states included") {
  _populate_odd(pool, prefix);
  REQUIRE(ok(conn().command({"HLEN", keys.orphans()})).view().integer() == 1);
  std::set<std::string> scanned = _scanned(conn(), prefix);
  KeyWalkResult result;
  std::set<std::string> walked = _walked(conn(), prefix, result);
  CHECK_MESSAGE(result.disagreement.empty(), result.disagreement);
  CHECK_FALSE(result.sparse_scan);
  CHECK(walked == scanned);
  CHECK(result.keys == scanned.size());
  CHECK(scanned.count("ORPHANS") == 1);
  CHECK(scanned.size() > 2500);

  // copy and dump of it say nothing is wrong.
  CopyStats copied = _copied_and_dumped_quietly(pool, prefix, extra_prefix());

  // The change record (keys.hpp, CHANGED) the snapshot started is no key
  // the walk names; a copy carries it (counted), delete removes it.
  REQUIRE(ok(conn().command({"TYPE", keys.changed()})).view().str() == "set");
  CHECK(_walked(conn(), prefix, result) == scanned);
  std::string again = extra_prefix();
  CopyStats second = ok(copy_filesystem(pool, prefix, again, CopyOptions{false, false, true}));
  CHECK(ok(conn().command({"TYPE", Keys(again).changed()})).view().str() == "set");
  CHECK(second.keys == copied.keys + 1);
  DeleteStats deleted = ok(delete_prefix(pool, again, false, true));
  CHECK(deleted.keys == second.keys);
  CHECK(test::keys_under(conn(), again).empty());
}

TEST_CASE_FIXTURE(RedisFixture, "key walk: delete reads each directory before it removes it") {
  // 700 directories side by side, a file in each: the walk's batches of
  // candidates fill up while it still has directories to read.
  {
    auto s = ok(Store::open(pool, prefix, {}));
    for (int i = 0; i < 700; ++i) {
      Ino d = ok(s->mkdir(k_root_ino, "d" + std::to_string(i), 0755, k_user)).ino;
      Ino f = ok(s->mknod(d, "f", S_IFREG | 0644, 0, k_user)).ino;
      ok(s->write(f, 0, "x", false));
    }
  }
  const std::size_t keys_before = test::keys_under(conn(), prefix).size();
  DeleteStats deleted = ok(delete_prefix(pool, prefix, false, true));
  CHECK_MESSAGE(deleted.warning.empty(), deleted.warning);
  CHECK(deleted.keys == keys_before);
  CHECK(test::keys_under(conn(), prefix).empty());
}

TEST_CASE_FIXTURE(RedisFixture, "key walk: a huge sparse file's blocks are found by SCAN") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  {
    auto s = ok(Store::open(pool, prefix, opts));
    Ino f = ok(s->mknod(k_root_ino, "far", S_IFREG | 0644, 0, k_user)).ino;
    ok(s->write(f, 0, "start", false));
    ok(s->write(f, (1ull << 40), "a terabyte on", false));
  }
  KeyWalkResult result;
  std::set<std::string> walked = _walked(conn(), prefix, result);
  CHECK_MESSAGE(result.disagreement.empty(), result.disagreement);
  CHECK(result.sparse_scan);
  CHECK(walked == _scanned(conn(), prefix));
}

TEST_CASE_FIXTURE(RedisFixture, "key walk: a damaged filesystem disagrees, and copy, dump and delete fall back to SCAN") {
  _populate_odd(pool, prefix);
  auto s = ok(Store::open(pool, prefix, {}));
  Ino d = ok(s->lookup(k_root_ino, "dir")).ino;
  Ino sparse = ok(s->lookup(d, "sparse")).ino;
  s.reset();
  KeyWalkResult result;

  SUBCASE("an inode no entry names") {
    ok(conn().command({"HDEL", keys.dir(d), "sparse"}));
    _walked(conn(), prefix, result);
    CHECK(result.disagreement.find("inodes found") != std::string::npos);
  }
  SUBCASE("a block past the end, counted") {
    ok(conn().command({"SET", keys.block(sparse, 400), "xyz"}));
    ok(conn().command({"HINCRBY", keys.inode(sparse), "bytes", "3"}));
    ok(conn().command({"HINCRBY", keys.sb(), "bytes", "3"}));
    _walked(conn(), prefix, result);
    CHECK(result.disagreement.find("blocks found hold") != std::string::npos);
  }
  SUBCASE("an entry naming nothing") {
    ok(conn().command({"HSET", keys.dir(d), "ghost", "999999"}));
    _walked(conn(), prefix, result);
    CHECK(result.disagreement.find("999999") != std::string::npos);
  }
  REQUIRE_FALSE(result.disagreement.empty());
  std::set<std::string> scanned = _scanned(conn(), prefix);

  std::string dst = extra_prefix();
  CopyStats copied = ok(copy_filesystem(pool, prefix, dst, CopyOptions{false, false, true}));
  CHECK(copied.warning.find("SCAN") != std::string::npos);
  CHECK(copied.warning.find("redisfs-snap fsck " + prefix) != std::string::npos);
  // Everything SCAN finds was copied (the orphan is dropped from a copy).
  std::set<std::string> in_copy = _scanned(conn(), dst);
  for (const auto& rel : scanned) {
    ParsedKey pk = parse_relative_key(rel);
    auto orphan = ok(conn().command({"HEXISTS", keys.orphans(), std::to_string(pk.ino)}));
    if (rel != "ORPHANS" && orphan.view().integer() == 0) {
      CHECK_MESSAGE(in_copy.count(rel) == 1, rel);
    }
  }
  std::string warning;
  std::string text = _dump(pool, prefix, &warning);
  CHECK(warning.find("fsck") != std::string::npos);
  for (const auto& rel : scanned) {
    CHECK_MESSAGE(text.find("\"" + rel + "\"") != std::string::npos, rel);
  }
  DeleteStats deleted = ok(delete_prefix(pool, prefix, false, true));
  CHECK(deleted.warning.find("SCAN") != std::string::npos);
  CHECK(test::keys_under(conn(), prefix).empty());
}

TEST_CASE_FIXTURE(RedisFixture, "key walk: an inode's bytes read as fsck reads them") {
  // "-0" is 0 to the daemon and to fsck (clean): the walk agrees, and a
  // dump warns of nothing; "-5" is damage fsck reports, and the walk
  // falls back to SCAN.
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Ino f = ok(s->mknod(k_root_ino, "empty", S_IFREG | 0644, 0, k_user)).ino;
  s.reset();
  std::string bytes = "-0";
  bool clean = true;
  SUBCASE("-0") {}
  SUBCASE("-5") {
    bytes = "-5";
    clean = false;
  }
  for (Ino ino : {k_root_ino, f}) {
    ok(conn().command({"HSET", keys.inode(ino), "bytes", bytes}));
  }
  FsckReport report = ok(fsck(pool, prefix, false, nullptr));
  CHECK(report.problems.empty() == clean);
  KeyWalkResult result;
  CHECK(_walked(conn(), prefix, result) == _scanned(conn(), prefix));
  CHECK_MESSAGE(result.disagreement.empty() == clean, result.disagreement);
  std::string warning;
  _dump(pool, prefix, &warning);
  CHECK_MESSAGE(warning.empty() == clean, warning);
}

TEST_CASE_FIXTURE(RedisFixture, "key walk: the root is inode 1, named or not") {
  // Every reader takes inode 1 for the root: a superblock without the
  // field is whole (fsck finds nothing, the walk agrees, du walks it); one
  // naming another root is damage fsck reports, and the walk and du stop.
  auto s = ok(Store::open(pool, prefix, {}));
  Ino d = ok(s->mkdir(k_root_ino, "d", 0755, k_user)).ino;
  Ino f = ok(s->mknod(d, "f", S_IFREG | 0644, 0, k_user)).ino;
  ok(s->write(f, 0, "data", false));
  s.reset();
  bool clean = true;
  SUBCASE("no root field") { ok(conn().command({"HDEL", keys.sb(), "root"})); }
  SUBCASE("root 2") {
    ok(conn().command({"HSET", keys.sb(), "root", std::to_string(d)}));
    clean = false;
  }
  FsckReport report = ok(fsck(pool, prefix, false, nullptr));
  CHECK(report.problems.empty() == clean);
  KeyWalkResult result;
  std::set<std::string> walked = _walked(conn(), prefix, result);
  CHECK_MESSAGE(result.disagreement.empty() == clean, result.disagreement);
  if (clean) {
    CHECK(walked == _scanned(conn(), prefix));
    CHECK(result.keys == 6);  // the two directories' INODE and DIR, INODE:f, its block
  }
  auto du = disk_usage(pool, prefix, 10, 0, nullptr);
  CHECK(du.ok() == clean);
  if (du.ok()) {
    CHECK(du->inodes == 3);
    CHECK(du->bytes == 4);
  } else {
    CHECK(du.error().message.find("names root '2', not 1: run redisfs-snap fsck") != std::string::npos);
  }
  if (clean) {
    _copied_and_dumped_quietly(pool, prefix, extra_prefix());
  }
}

TEST_CASE_FIXTURE(RedisFixture, "crowded server: copy, dump, delete and list never SCAN") {
  // 200,000 keys of another tenant.
  const int k_crowd = 200000;
  const std::string crowd = test::random_prefix() + "crowd:";
  for (int at = 0; at < k_crowd; at += 1000) {
    std::vector<std::string> argv{"MSET"};
    for (int i = at; i < at + 1000; ++i) {
      argv.push_back(crowd + std::to_string(i));
      argv.push_back("v");
    }
    conn().append(argv);
  }
  ok(conn().read_all());
  struct Uncrowd {
    Connection& c;
    std::string crowd;
    ~Uncrowd() {
      for (int at = 0; at < 200000; at += 1000) {
        std::vector<std::string> argv{"UNLINK"};
        for (int i = at; i < at + 1000; ++i) {
          argv.push_back(crowd + std::to_string(i));
        }
        c.append(argv);
      }
      (void)c.read_all();
    }
  } uncrowd{conn(), crowd};

  _populate_odd(pool, prefix);
  std::set<std::string> src = _scanned(conn(), prefix);
  std::string dst = extra_prefix();

  long long before = test::command_calls(conn(), "scan");
  CopyStats copied = ok(copy_filesystem(pool, prefix, dst, CopyOptions{false, false, true}));
  std::string text = _dump(pool, prefix);
  DeleteStats deleted = ok(delete_prefix(pool, dst, false, true));
  long long after = test::command_calls(conn(), "scan");
  CHECK(after == before);
  CHECK(copied.warning.empty());
  // All but the orphan's five keys and ORPHANS, and the superblock.
  CHECK(copied.keys == src.size() - 6 + 1);
  CHECK(deleted.keys == copied.keys);
  CHECK(text.find("\"ORPHANS\"") != std::string::npos);

  // list reads the register of filesystems, not the keyspace.
  long long list_before = test::command_calls(conn(), "scan");
  auto list = ok(list_filesystems(pool, false));
  CHECK(test::command_calls(conn(), "scan") == list_before);
  auto listed = [](const std::vector<FsInfo>& all, const std::string& p) {
    return std::any_of(all.begin(), all.end(), [&](const FsInfo& fs) { return fs.prefix == p; });
  };
  CHECK(listed(list, prefix));
  CHECK_FALSE(listed(list, dst));  // deleted, and out of the register

  // A filesystem made behind the tools' back (an older redisfs) is listed
  // once `list --all` (a SCAN) has registered it.
  std::string hand = extra_prefix();
  ok(conn().command({"COPY", keys.sb(), Keys(hand).sb()}));
  CHECK_FALSE(listed(ok(list_filesystems(pool, false)), hand));
  CHECK(listed(ok(list_filesystems(pool, true)), hand));
  CHECK(listed(ok(list_filesystems(pool, false)), hand));
  ok(delete_prefix(pool, hand, false, true));
  CHECK_FALSE(listed(ok(list_filesystems(pool, false)), hand));
}

TEST_CASE_FIXTURE(RedisFixture, "mounts: registered with their session key, counted without SCAN") {
  auto s = ok(Store::open(pool, prefix, {}));
  auto live = ok(live_mounts(conn(), keys));
  REQUIRE(live.size() == 1);
  CHECK(live[0] == s->session());
  auto probed = ok(probe_prefix(conn(), keys));
  CHECK(probed.mounts == 1);
  CHECK(probed.has_sb);
  // A crashed mount: its field stays, its session key expires; not counted.
  ok(conn().command({"HSET", keys.mounts(), "crashed", "host 1 /mnt"}));
  CHECK(ok(live_mounts(conn(), keys)).size() == 1);
  // ... until a live mount's sweep drops it (and only it)
  CHECK(ok(s->sweep_dead_mounts(10)).registrations == 1);
  CHECK(ok(conn().command({"HEXISTS", keys.mounts(), "crashed"})).view().integer() == 0);
  CHECK(ok(conn().command({"HEXISTS", keys.mounts(), s->session()})).view().integer() == 1);
  CHECK(ok(s->sweep_dead_mounts(10)).registrations == 0);
  ok(s->end_session());
  CHECK(ok(live_mounts(conn(), keys)).empty());
  CHECK(ok(conn().command({"HEXISTS", keys.mounts(), s->session()})).view().integer() == 0);
}

TEST_SUITE_END();
