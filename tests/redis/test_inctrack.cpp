// Per-block change tracking (keys.hpp, CHANGED) in incremental dumps
// (dump_incremental.hpp, tracked_blocks): `dump SNAP --since BASE` compares
// only the blocks the change records name, and its document is byte for
// byte the one the full comparison (REDISFS_FAULT=inc-compare-all) writes,
// along a chain of snapshots, after a rollback, and with every record that
// cannot be used (missing, overflowed, hostile, a snapshot mounted
// writable or repaired by fsck, "untracked" around a mount of a daemon that
// records nothing, begun at a snapshot of format version 1), which fall
// back to comparing every block.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <tuple>

#include "fixture.hpp"
#include "snap/dump_incremental.hpp"
#include "snap/fsck.hpp"
#include "snap/rollback.hpp"
#include "snap/snapshot.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::ok;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

struct Dumped {
  std::string doc;
  long long bitops = 0;  // blocks compared on the server
};

Dumped _dump(Pool& pool, Connection& c, const std::string& snap, const std::string& base, bool all) {
  if (all) {
    setenv("REDISFS_FAULT", "inc-compare-all", 1);
  }
  DumpOptions opts;
  opts.quiet = true;
  std::ostringstream out;
  long long before = test::command_calls(c, "bitop");
  auto r = dump_incremental(pool, snap, base, out, opts);
  unsetenv("REDISFS_FAULT");
  ok(std::move(r));
  return {out.str(), test::command_calls(c, "bitop") - before};
}

// Both ways give the same document; returns the blocks each compared.
std::pair<long long, long long> _same_both_ways(Pool& pool, Connection& c, const std::string& snap,
                                                const std::string& base) {
  Dumped tracked = _dump(pool, c, snap, base, false);
  Dumped all = _dump(pool, c, snap, base, true);
  CHECK(tracked.doc == all.doc);
  CHECK(tracked.doc.find("\"base_snapshot_id\"") != std::string::npos);
  return {tracked.bitops, all.bitops};
}

struct Files {
  Ino big = 0, cut = 0, grow = 0, gone = 0, sparse = 0;
};

Files _populate(Store& s) {
  Files f;
  f.big = ok(s.mknod(k_root_ino, "big", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(f.big, 0, std::string(20 * 4096, 'b'), false));
  f.cut = ok(s.mknod(k_root_ino, "cut", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(f.cut, 0, std::string(8 * 4096, 'c'), false));
  f.grow = ok(s.mknod(k_root_ino, "grow", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(f.grow, 0, std::string(3 * 4096, 'g'), false));
  f.gone = ok(s.mknod(k_root_ino, "gone", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(f.gone, 0, std::string(2 * 4096, 'x'), false));
  f.sparse = ok(s.mknod(k_root_ino, "sparse", S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(f.sparse, 0, "start", false));
  ok(s.write(f.sparse, 9 * 4096, "end", false));
  return f;
}

// Writes, a truncation that cuts a block, one that drops whole blocks, an
// extension, a hole filled, a rename, an unlink, a new file.
void _change(Store& s, const Files& f, int round) {
  const std::string tag = std::to_string(round);
  ok(s.write(f.big, 4096 * (3 + round), "changed " + tag, false));
  ok(s.write(f.big, 4096 * 19 + 100, std::string(9000, 'e'), false));  // over the end
  SetAttrRequest cut;
  cut.size = 4096 * (6 - round) + 10;
  ok(s.setattr(f.cut, cut));
  SetAttrRequest grow;
  grow.size = 4096 * (10 + round);
  ok(s.setattr(f.grow, grow));
  ok(s.write(f.sparse, 4096 * (4 + round), "in the hole", false));
  ok(s.rename(k_root_ino, round == 1 ? "gone" : "renamed", k_root_ino, round == 1 ? "renamed" : "again", 0));
  Ino fresh = ok(s.mknod(k_root_ino, "fresh" + tag, S_IFREG | 0644, 0, k_user)).ino;
  ok(s.write(fresh, 0, std::string(5000, 'f'), false));
  if (round == 2) {
    ok(s.unlink(k_root_ino, "again"));
  }
}

}  // namespace

TEST_SUITE_BEGIN("core::inctrack");

TEST_CASE_FIXTURE(RedisFixture, "incremental dump: the change records along a chain, and every fallback, same bytes") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  auto s = ok(Store::open(pool, prefix, opts));
  Files f = _populate(*s);
  const std::string s0 = extra_prefix(), s1 = extra_prefix(), s2 = extra_prefix();
  CopyOptions copy;
  copy.quiet = true;
  ok(copy_filesystem(pool, prefix, s0, copy));
  _change(*s, f, 1);
  ok(copy_filesystem(pool, prefix, s1, copy));
  _change(*s, f, 2);
  ok(copy_filesystem(pool, prefix, s2, copy));
  Connection& c = conn();
  REQUIRE(ok(c.command({"TYPE", Keys(s0).changed()})).view().str() == "none");  // the first snapshot: nothing tracked
  REQUIRE(ok(c.command({"TYPE", Keys(s2).changed()})).view().str() == "set");

  SUBCASE("one link, two links, the later link") {
    for (auto [snap, base] : {std::pair{s1, s0}, std::pair{s2, s0}, std::pair{s2, s1}}) {
      auto [tracked, all] = _same_both_ways(pool, c, snap, base);
      CHECK(all > 0);
      CHECK(tracked < all);
    }
  }
  SUBCASE("a missing, overflowed or hostile record: the full comparison") {
    const std::vector<std::vector<std::string>> records = {
        {"DEL", Keys(s1).changed()},
        {"SET", Keys(s1).changed(), std::string(k_changed_overflow)},
        {"HSET", Keys(s1).changed(), "since", "x"},
        {"SADD", Keys(s1).changed(), "since:" + std::string(32, 'f')},  // counts from another snapshot
        {"SET", Keys(s0).changed(), std::string(k_changed_written)},      // the base was mounted writable
    };
    for (const auto& make : records) {
      ok(c.command({"DEL", make[1]}));
      ok(c.command(make));
      auto [tracked, all] = _same_both_ways(pool, c, s2, s0);
      CHECK(tracked == all);
    }
  }
  SUBCASE("members that name nothing, or are not block names, only cost their comparison") {
    ok(c.command({"SADD", Keys(s2).changed(), "not a block", "123456:7", "1:999999", ""}));
    auto [tracked, all] = _same_both_ways(pool, c, s2, s1);
    CHECK(tracked < all);
  }
  SUBCASE("an intermediate snapshot deleted: the full comparison") {
    ok(delete_prefix(pool, s1, false, true));
    auto [tracked, all] = _same_both_ways(pool, c, s2, s0);
    CHECK(tracked == all);
  }
}

TEST_CASE_FIXTURE(RedisFixture, "incremental dump: rollback, then snapshots, then incrementals") {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  Files f;
  {
    auto s = ok(Store::open(pool, prefix, opts));
    f = _populate(*s);
  }
  const std::string s0 = extra_prefix(), s1 = extra_prefix(), s2 = extra_prefix(), s3 = extra_prefix();
  CopyOptions copy;
  copy.quiet = true;
  ok(copy_filesystem(pool, prefix, s0, copy));
  {
    auto s = ok(Store::open(pool, prefix, opts));
    _change(*s, f, 1);
  }
  ok(copy_filesystem(pool, prefix, s1, copy));
  {
    auto s = ok(Store::open(pool, prefix, opts));
    _change(*s, f, 2);  // then thrown away
  }
  RollbackOptions rb;
  rb.discard = true;
  rb.quiet = true;
  ok(rollback_filesystem(pool, prefix, s0, rb));
  {
    auto s = ok(Store::open(pool, prefix, opts));
    Ino again = ok(s->mknod(k_root_ino, "after rollback", S_IFREG | 0644, 0, k_user)).ino;  // reuses a number
    ok(s->write(again, 0, std::string(3 * 4096, 'r'), false));
    ok(s->write(f.big, 0, "after the rollback", false));
  }
  ok(copy_filesystem(pool, prefix, s2, copy));
  {
    auto s = ok(Store::open(pool, prefix, opts));
    ok(s->write(f.big, 4096 * 7, "later", false));
    SetAttrRequest cut;
    cut.size = 4096 * 2 + 1;
    ok(s->setattr(f.cut, cut));
  }
  ok(copy_filesystem(pool, prefix, s3, copy));
  Connection& c = conn();
  _same_both_ways(pool, c, s2, s0);
  auto [tracked, all] = _same_both_ways(pool, c, s3, s2);
  CHECK(tracked < all);
  _same_both_ways(pool, c, s3, s0);
}

// ---------------------------------------------------------------- trust

namespace {

std::string _field(Connection& c, const std::string& prefix, const char* field) {
  Reply r = ok(c.command({"HGET", Keys(prefix).sb(), field}));
  return r.view().is_nil() ? std::string() : std::string(r.view().str());
}

std::string _record(Connection& c, const std::string& prefix) {
  const std::string key = Keys(prefix).changed();
  std::string type(ok(c.command({"TYPE", key})).view().str());
  if (type != "string") {
    return type;
  }
  return std::string(ok(c.command({"GET", key})).view().str());
}

// A filesystem of 4 KiB blocks holding _populate's files, mounted.
struct Populated {
  std::unique_ptr<Store> s;
  Files f;
};

Populated _populated(Pool& pool, const std::string& prefix) {
  StoreOptions opts;
  opts.mkfs_block_size = 4096;
  Populated p{ok(Store::open(pool, prefix, opts)), {}};
  p.f = _populate(*p.s);
  return p;
}

void _snapshot(Pool& pool, const std::string& prefix, const std::string& name) {
  CopyOptions copy;
  copy.quiet = true;
  ok(copy_filesystem(pool, prefix, name, copy));
}

// What a daemon that records nothing does (format version 1: write.lua
// before change tracking): a block written, a hole filled (the stored
// bytes counted), the inodes' times changed; nothing in CHANGED.
void _untracked_writes(Connection& c, const std::string& prefix, const Files& f, const std::string& tag) {
  Keys k(prefix);
  ok(c.command({"SETRANGE", k.block(f.big, 2), "0", "written by an old daemon " + tag}));
  const std::string hole = k.block(f.sparse, 2);
  const long long before = ok(c.command({"STRLEN", hole})).view().integer();
  const std::string filled = "a hole filled by an old daemon " + tag;
  ok(c.command({"SET", hole, filled}));
  const std::string grown = std::to_string(static_cast<long long>(filled.size()) - before);
  ok(c.command({"HINCRBY", k.inode(f.sparse), "bytes", grown}));
  ok(c.command({"HINCRBY", k.sb(), "bytes", grown}));
  for (Ino ino : {f.big, f.sparse}) {
    ok(c.command({"HSET", k.inode(ino), "mtime", "1" + tag, "ctime", "1" + tag}));
  }
}

}  // namespace

TEST_CASE_FIXTURE(RedisFixture,
                  "format version 2: a writable mount or a snapshot raises version 1, a read-only mount does not") {
  Connection& c = conn();
  {
    auto s = ok(Store::open(pool, prefix, {}));
    CHECK(s->superblock().version == k_format_version);
    // Its registration says it keeps version 2's rules (keys.hpp).
    Reply mine = ok(c.command({"HGET", Keys(prefix).mounts(), s->session()}));
    CHECK(std::string(mine.view().str()).starts_with("v2 "));
  }
  ok(c.command({"HSET", Keys(prefix).sb(), "version", "1"}));  // made before change tracking
  StoreOptions ro;
  ro.read_only = true;
  {
    auto s = ok(Store::open(pool, prefix, ro));
    CHECK(s->superblock().version == 1);
  }
  CHECK(_field(c, prefix, "version") == "1");
  {
    auto s = ok(Store::open(pool, prefix, {}));
    CHECK(s->superblock().version == 2);
  }
  CHECK(_field(c, prefix, "version") == "2");

  ok(c.command({"HSET", Keys(prefix).sb(), "version", "1"}));
  const std::string snap = extra_prefix(), again = extra_prefix();
  _snapshot(pool, prefix, snap);  // its instant raises the source, and it is born 2
  CHECK(_field(c, prefix, "version") == "2");
  CHECK(_field(c, snap, "version") == "2");
  // A snapshot's own superblock stays as it is (part of the base digest).
  ok(c.command({"HSET", Keys(snap).sb(), "version", "1"}));
  {
    auto s = ok(Store::open(pool, snap, ro));
    CHECK(s->superblock().version == 1);
  }
  _snapshot(pool, snap, again);  // a snapshot of a snapshot
  CHECK(_field(c, snap, "version") == "1");
  CHECK(_field(c, again, "version") == "2");
}

TEST_CASE_FIXTURE(
    RedisFixture,
    "a mount of a daemon that records nothing, live at an instant: the incremental dump still has its writes") {
  auto [s, f] = _populated(pool, prefix);
  const std::string s0 = extra_prefix(), s1 = extra_prefix(), s2 = extra_prefix(), s3 = extra_prefix(),
                    s4 = extra_prefix();
  _snapshot(pool, prefix, s0);
  Connection& c = conn();
  Keys k(prefix);
  // Registered as session.lua did before format version 2: no "v2 ".
  const std::string old = "0123456789abcdef", says = "oldhost pid 7 /mnt/old";
  ok(c.command({"SET", k.mount(old), says, "PX", "600000"}));
  ok(c.command({"HSET", k.mounts(), old, says}));
  _untracked_writes(c, prefix, f, "1");
  _change(*s, f, 1);
  _snapshot(pool, prefix, s1);
  CHECK(_record(c, s1) == k_changed_untracked);
  CHECK(_record(c, prefix) == k_changed_untracked);  // still there: the next one too
  auto [tracked, all] = _same_both_ways(pool, c, s1, s0);
  CHECK(tracked == all);

  _untracked_writes(c, prefix, f, "2");
  _snapshot(pool, prefix, s2);
  _same_both_ways(pool, c, s2, s1);
  _same_both_ways(pool, c, s2, s0);

  // It unmounts: the record that began while it was there is still not
  // trusted, the one after the next instant is.
  _untracked_writes(c, prefix, f, "3");
  ok(c.command({"DEL", k.mount(old)}));
  ok(c.command({"HDEL", k.mounts(), old}));
  _snapshot(pool, prefix, s3);
  CHECK(_record(c, s3) == k_changed_untracked);
  _same_both_ways(pool, c, s3, s2);
  _change(*s, f, 2);
  _snapshot(pool, prefix, s4);
  CHECK(_record(c, s4) == "set");
  auto [tracked4, all4] = _same_both_ways(pool, c, s4, s3);
  CHECK(tracked4 < all4);
}

TEST_CASE_FIXTURE(RedisFixture, "a change record that began at a snapshot of format version 1 is not trusted") {
  auto [s, f] = _populated(pool, prefix);
  const std::string s0 = extra_prefix(), s1 = extra_prefix(), s2 = extra_prefix();
  _snapshot(pool, prefix, s0);
  _change(*s, f, 1);
  _snapshot(pool, prefix, s1);
  Connection& c = conn();
  // As if s1 had been taken by a toolkit before format version 2: a daemon
  // of version 1 may have come and gone unseen while its record ran.
  ok(c.command({"HSET", Keys(s1).sb(), "version", "1"}));
  _untracked_writes(c, prefix, f, "1");
  _change(*s, f, 2);
  _snapshot(pool, prefix, s2);
  REQUIRE(_record(c, s2) == "set");
  auto [tracked, all] = _same_both_ways(pool, c, s2, s1);
  CHECK(tracked == all);
  std::tie(tracked, all) = _same_both_ways(pool, c, s2, s0);  // through it
  CHECK(tracked == all);
}

TEST_CASE_FIXTURE(RedisFixture, "fsck --repair of a snapshot marks its change record written") {
  auto [s, f] = _populated(pool, prefix);
  Connection& c = conn();
  // Bytes stored past the end of a file (and counted), before any
  // snapshot: the snapshots have them too, and repair cuts them off only
  // in the base.
  auto past_the_end = [&] {
    ok(c.command({"SETRANGE", Keys(prefix).block(f.sparse, 9), "3", "past the end"}));
    ok(c.command({"HINCRBY", Keys(prefix).inode(f.sparse), "bytes", "12"}));
    ok(c.command({"HINCRBY", Keys(prefix).sb(), "bytes", "12"}));
  };
  past_the_end();
  const std::string s0 = extra_prefix(), s1 = extra_prefix();
  _snapshot(pool, prefix, s0);
  _change(*s, f, 1);
  _snapshot(pool, prefix, s1);
  auto repaired = ok(fsck(pool, s0, true, nullptr));
  REQUIRE_FALSE(repaired.problems.empty());
  CHECK(repaired.problems[0].repaired);
  CHECK(_record(c, s0) == k_changed_written);
  CHECK(ok(fsck(pool, s0, false, nullptr)).problems.empty());
  auto [tracked, all] = _same_both_ways(pool, c, s1, s0);
  CHECK(tracked == all);

  // Of a live filesystem: its record is "untracked" until the next instant.
  past_the_end();
  ok(fsck(pool, prefix, true, nullptr));
  CHECK(_record(c, prefix) == k_changed_untracked);
}

TEST_CASE_FIXTURE(
    RedisFixture,
    "a snapshot of a filesystem whose structure disagrees with its counters takes its change record over") {
  auto [s, f] = _populated(pool, prefix);
  const std::string s0 = extra_prefix(), s1 = extra_prefix();
  _snapshot(pool, prefix, s0);
  _change(*s, f, 1);
  // A block no counter knows of: the copy finds the keys by SCAN, which
  // lists the staged record with them (counted once, not twice).
  Connection& c = conn();
  ok(c.command({"SET", Keys(prefix).block(f.sparse, 1), "not counted"}));
  CopyOptions copy;
  copy.quiet = true;
  auto copied = copy_filesystem(pool, prefix, s1, copy);
  REQUIRE(copied.ok());
  CHECK(_record(c, s1) == "set");
}
