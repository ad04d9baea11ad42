// Snapshots against a real redis-server: copy, dump, restore, list, delete
// and the freeze, including copies and dumps taken while a writer renames
// and appends (they must show one instant), and hostile dumps (each refused,
// leaving the target and the whole server as they were).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "fixture.hpp"
#include "redis/outage.hpp"
#include "snap/dump_format.hpp"
#include "snap/dump_io.hpp"
#include "snap/fs_report.hpp"
#include "snap/fsck.hpp"
#include "snap/install.hpp"
#include "snap/snapshot.hpp"
#include "store/store.hpp"
#include "util/text.hpp"

using namespace redisfs;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

using redisfs::test::ok;

std::unique_ptr<Store> _open(Pool& pool, const std::string& prefix, StoreOptions opts = {}) {
  return ok(Store::open(pool, prefix, std::move(opts)));
}

using Content = test::Content;
Content _content(Connection& c, const std::string& prefix) { return test::content(c, prefix); }

std::map<std::string, std::string> _hash(Connection& c, const std::string& key) {
  auto v = ok(c.command({"HGETALL", key}));
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i + 1 < v.view().size(); i += 2) {
    out[std::string(v.view()[i].str())] = std::string(v.view()[i + 1].str());
  }
  return out;
}

long long _dbsize(Connection& c) { return ok(c.command({"DBSIZE"})).view().integer(); }

std::size_t _keys_matching(Connection& c, const std::string& match) {
  std::size_t n = 0;
  std::string cursor = "0";
  do {
    auto r = ok(c.command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"}));
    cursor = std::string(r.view()[0].str());
    n += r.view()[1].size();
  } while (cursor != "0");
  return n;
}

// A small filesystem with every kind of node: nested dirs, a multi-block
// binary file with a hole, text, a symlink, a fifo, xattrs.
void _populate(Store& s) {
  Ino d = ok(s.mkdir(k_root_ino, "dir", 0755, k_user)).ino;
  Ino sub = ok(s.mkdir(d, "sub dir é", 0700, k_user)).ino;
  Ino f = ok(s.mknod(d, "binary", S_IFREG | 0644, 0, k_user)).ino;
  std::string bin;
  for (int i = 0; i < 200000; ++i) {
    bin.push_back(static_cast<char>((i * 7919) & 0xff));
  }
  ok(s.write(f, 0, bin, false));
  ok(s.write(f, 600000, "tail after a hole", false));
  Ino t = ok(s.mknod(sub, "hello.txt", S_IFREG | 0600, 0, k_user)).ino;
  ok(s.write(t, 0, "hello, world\n", false));
  ok(s.symlink(k_root_ino, "link", "dir/binary", k_user));
  ok(s.mknod(k_root_ino, "fifo", S_IFIFO | 0644, 0, k_user));
  ok(s.setxattr(t, "user.note", std::string("\x00\xff binary", 9), 0));
  ok(s.setxattr(d, "user.text", "plain", 0));
}

std::string _dump(Pool& pool, const std::string& prefix) {
  std::ostringstream out;
  ok(dump_filesystem(pool, prefix, out, DumpOptions{true}));
  return out.str();
}

Result<RestoreStats> _restore(Pool& pool, const std::string& text, const std::string& prefix, bool force = false,
                              bool dry_run = false) {
  std::istringstream in(text);
  RestoreOptions opts;
  opts.prefix = prefix;
  opts.force = force;
  opts.dry_run = dry_run;
  opts.quiet = true;
  return restore_filesystem(&pool, in, opts);
}

// Deletes extra prefixes when the case ends.
struct Cleanup {
  Connection& c;
  std::vector<std::string> prefixes;
  ~Cleanup() {
    for (const auto& p : prefixes) {
      test::delete_prefix(c, p);
    }
  }
};

}  // namespace

TEST_SUITE_BEGIN("core::snapshot");

TEST_CASE("temporary prefixes and helpers") {
  std::string t = make_temp_prefix("SKX", TempKind::Dump);
  CHECK(t.starts_with("SKX~dump~"));
  CHECK(temp_kind(t) == TempKind::Dump);
  CHECK(validate_prefix(t).ok());
  CHECK(temp_kind(make_temp_prefix("SKX", TempKind::Restore)) == TempKind::Restore);
  CHECK(temp_kind("SKX") == TempKind::None);
  CHECK(temp_kind("~dump~abc") == TempKind::None);
  CHECK(temp_kind("SKX~dump~xyz") == TempKind::None);
  std::string long_base(200, 'a');
  CHECK(validate_prefix(make_temp_prefix(long_base, TempKind::Restore)).ok());
  // a long prefix keeps its hash tag (its cluster slot) in its temporary prefixes
  for (std::size_t at : {0, 150, 180, 190}) {
    std::string tagged = std::string(at, 'b') + "{t1}" + std::string(196 - at, 'c');
    REQUIRE(validate_prefix(tagged).ok());
    for (TempKind kind : {TempKind::Dump, TempKind::Restore, TempKind::Copy, TempKind::Replaced}) {
      std::string tp = make_temp_prefix(tagged, kind);
      CHECK(validate_prefix(tp).ok());
      CHECK(temp_kind(tp) == kind);
      CHECK(hash_tag(tp) == std::optional<std::string_view>("t1"));
      CHECK(key_slot(tp + ":SB") == key_slot(tagged + ":SB"));
    }
  }
  // the longest tag validate_prefix allows, anywhere in a 200-byte prefix
  std::string max_tag = "{" + std::string(k_max_hash_tag, 't') + "}";
  for (std::size_t at : {std::size_t{0}, 200 - max_tag.size()}) {
    std::string tagged = std::string(at, 'b') + max_tag + std::string(200 - max_tag.size() - at, 'c');
    REQUIRE(validate_prefix(tagged).ok());
    for (TempKind kind : {TempKind::Dump, TempKind::Restore, TempKind::Copy, TempKind::Replaced}) {
      std::string tp = make_temp_prefix(tagged, kind);
      CHECK(validate_prefix(tp).ok());
      CHECK(temp_kind(tp) == kind);
      CHECK(key_slot(tp + ":SB") == key_slot(tagged + ":SB"));
    }
  }
  CHECK(iso_time_ns(0) == "1970-01-01T00:00:00.000Z");
  CHECK(iso_time_ns(1700000000123456789LL) == "2023-11-14T22:13:20.123Z");
  CHECK(human_bytes(512) == "512 B");
  CHECK(human_bytes(1536) == "1.5 KiB");
  CHECK(human_bytes(1ull << 30) == "1.0 GiB");
}

TEST_CASE_FIXTURE(RedisFixture, "copy: identical keys, marked as a read-only snapshot, siblings untouched") {
  std::string p2 = prefix + "2";
  std::string pa = prefix + "A";
  std::string dst = extra_prefix();
  Cleanup guard{conn(), {p2, pa}};
  {
    auto s = _open(pool, prefix);
    _populate(*s);
    auto s2 = _open(pool, p2);
    ok(s2->mkdir(k_root_ino, "other", 0755, k_user));
  }
  ok(conn().command({"SET", pa + ":BLK:1:0", "not ours"}));
  ok(conn().command({"SET", prefix + ":MOUNT:abc", "alive", "PX", "60000"}));
  Content before2 = _content(conn(), p2);
  Content src = _content(conn(), prefix);

  CopyStats stats = ok(copy_filesystem(pool, prefix, dst, CopyOptions{false, false, true}));
  CHECK(stats.keys == src.size());
  CHECK(stats.bytes > 0);

  Content copy = _content(conn(), dst);
  REQUIRE(copy.size() == src.size());
  for (const auto& [k, v] : src) {
    if (k != "SB") {
      CHECK_MESSAGE(copy[k] == v, k);
    }
  }
  auto sb_src = _hash(conn(), keys.sb());
  auto sb_dst = _hash(conn(), Keys(dst).sb());
  CHECK(sb_dst["origin"] == prefix);
  CHECK(sb_dst["read_only"] == "1");
  CHECK(std::stoll(sb_dst["snapshot_created"]) >= std::stoll(sb_src["created"]));
  for (const auto& [f, v] : sb_src) {
    CHECK_MESSAGE(sb_dst[f] == v, f);
  }
  // Neither MOUNT nor FREEZE keys travel; siblings are untouched.
  CHECK(_keys_matching(conn(), dst + ":MOUNT:*") == 0);
  CHECK(_keys_matching(conn(), dst + ":FREEZE") == 0);
  CHECK(_keys_matching(conn(), prefix + ":FREEZE") == 0);
  CHECK(_content(conn(), p2) == before2);
  CHECK(_keys_matching(conn(), pa + ":*") == 1);
  CHECK(_keys_matching(conn(), p2 + "~*") == 0);

  // Read-only is enforced on open; the data reads back the same.
  auto rw = Store::open(pool, dst, {});
  CHECK(rw.code() == EROFS);
  StoreOptions ro;
  ro.read_only = true;
  auto snap = _open(pool, dst, ro);
  CHECK(snap->superblock().read_only);
  CHECK(snap->superblock().origin == prefix);
  Attr bin = ok(snap->lookup(ok(snap->lookup(k_root_ino, "dir")).ino, "binary"));
  CHECK(bin.size == 600000 + 17);
}

// A read-only mount of a snapshot keeps what it reads for an hour; no
// writable mount may change the snapshot under it (session.lua).
TEST_CASE_FIXTURE(RedisFixture, "a snapshot mounted writable: refused while a read-only mount keeps what it read") {
  std::string snap = extra_prefix();
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  ok(copy_filesystem(pool, prefix, snap, {}));
  const Keys sk(snap);
  auto changed = [&] {
    std::string type(ok(conn().command({"TYPE", sk.changed()})).view().str());
    return type == "string" ? std::string(ok(conn().command({"GET", sk.changed()})).view().str()) : type;
  };
  const std::string before = changed();
  REQUIRE(before != "written");
  StoreOptions ro;
  ro.read_only = true;
  ro.session_info = "reader-host 42 /mnt/snap";
  auto reader = _open(pool, snap, ro);
  CHECK(reader->frozen());

  StoreOptions rw;
  rw.allow_snapshot_rw = true;
  auto refused = Store::open(pool, snap, rw);
  REQUIRE(refused.code() == EBUSY);
  CHECK_MESSAGE(refused.error().message.find("reader-host 42 /mnt/snap") != std::string::npos, refused.error().message);
  CHECK(Store::open(pool, snap, {}).code() == EROFS);  // without --writable-snapshot: as before
  CHECK(changed() == before);                          // neither refusal touched the record
  CHECK(_keys_matching(conn(), snap + ":MOUNT:*") == 1);

  // A reader that stopped without unmounting (killed: nothing refreshes its
  // session, which lapses within 30 s) refuses the writable mount until its
  // session lapses, and the refusal says when: also the toolkit's.
  const std::string lapses = "counts until its session lapses, within ";
  const bool says_30 = refused.error().message.find(lapses + "30 s") != std::string::npos ||
                       refused.error().message.find(lapses + "29 s") != std::string::npos;
  CHECK_MESSAGE(says_30, refused.error().message);
  const std::string session_key(ok(conn().command({"KEYS", snap + ":MOUNT:*"})).view()[0].str());
  ok(conn().command({"PEXPIRE", session_key, "1500"}));
  CHECK(ok(probe_prefix(conn(), sk)).mounts_hint.find(lapses + "2 s") != std::string::npos);
  refused = Store::open(pool, snap, rw);
  CHECK_MESSAGE(refused.error().message.find(lapses + "2 s") != std::string::npos, refused.error().message);
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  CHECK(_open(pool, snap, rw) != nullptr);
  // (as it was, for what follows)
  ok(conn().command(before == "none" ? std::vector<std::string>{"DEL", sk.changed()}
                                     : std::vector<std::string>{"SET", sk.changed(), before}));

  // Once the reader is gone, the writable mount comes, and says so for good.
  reader.reset();
  {
    auto writer = _open(pool, snap, rw);
    CHECK(changed() == "written");
    auto later = _open(pool, snap, ro);  // a reader beside it reads as a live mount does
    CHECK_FALSE(later->frozen());
    ok(writer->mkdir(k_root_ino, "changed", 0755, k_user));
  }
  // A second writable mount beside a reader that does not keep what it
  // reads: nothing to refuse.
  auto live_reader = _open(pool, snap, ro);
  CHECK_FALSE(live_reader->frozen());
  CHECK(_open(pool, snap, rw) != nullptr);
}

// A change record of another type or value (damage, or written by another
// tool) is no "written": readers keep what they read, and the first
// writable mount is refused beside one, then replaces it.
TEST_CASE_FIXTURE(RedisFixture, "a snapshot's hostile change record: admission as for an unchanged snapshot") {
  std::string snap = extra_prefix();
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  ok(copy_filesystem(pool, prefix, snap, {}));
  const Keys sk(snap);
  StoreOptions ro;
  ro.read_only = true;
  StoreOptions rw;
  rw.allow_snapshot_rw = true;
  for (const std::vector<std::string>& damage : {std::vector<std::string>{"HSET", sk.changed(), "written", "1"},
                                                 {"RPUSH", sk.changed(), "written"},
                                                 {"SET", sk.changed(), "WRITTEN"},
                                                 {"SET", sk.changed(), ""}}) {
    CAPTURE(damage[0] + " " + damage.back());
    ok(conn().command({"DEL", sk.changed()}));
    ok(conn().command(damage));
    {
      auto reader = _open(pool, snap, ro);
      CHECK(reader->frozen());
      CHECK(Store::open(pool, snap, rw).code() == EBUSY);
    }
    { auto writer = _open(pool, snap, rw); }
    CHECK(ok(conn().command({"GET", sk.changed()})).view().str() == "written");
    CHECK_FALSE(_open(pool, snap, ro)->frozen());
  }
}

// A reader that keeps what it reads stops when the snapshot changed under
// it: its session lapsed and a writable mount came meanwhile (it could not
// have been refused), or its live session sees the snapshot "written"
// (fsck --repair --force marks a snapshot it repairs so, fsck_repair.cpp,
// as does a writable mount by a daemon older than the admission).
TEST_CASE_FIXTURE(RedisFixture, "a snapshot's frozen reader stops once the snapshot is changed") {
  std::string snap = extra_prefix();
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  ok(copy_filesystem(pool, prefix, snap, {}));
  StoreOptions ro;
  ro.read_only = true;
  auto reader = _open(pool, snap, ro);
  REQUIRE(reader->frozen());
  ok(reader->heartbeat());  // (refreshed while nothing changed)
  SUBCASE("its session lapsed while the snapshot was mounted writable") {
    ok(conn().command({"DEL", Keys(snap).mount(reader->session())}));  // lapsed
    StoreOptions rw;
    rw.allow_snapshot_rw = true;
    { auto writer = _open(pool, snap, rw); }
    Status st = reader->heartbeat();
    CHECK(st.code() == EBUSY);
    CHECK(reader->session_taken());
    CHECK_MESSAGE(st.error().message.find("mount it again") != std::string::npos, st.error().message);
  }
  SUBCASE("changed under its live session") {
    auto live_reader = _open(pool, prefix, ro);  // (a live filesystem's: not concerned)
    ok(conn().command({"SET", Keys(snap).changed(), "written"}));
    ok(conn().command({"SET", Keys(prefix).changed(), "written"}));
    Status st = reader->heartbeat();
    CHECK(st.code() == EBUSY);
    CHECK(reader->session_taken());
    CHECK_MESSAGE(st.error().message.find("was changed under it") != std::string::npos, st.error().message);
    ok(live_reader->heartbeat());
    CHECK_FALSE(live_reader->session_taken());
  }
}

TEST_CASE_FIXTURE(RedisFixture, "copy: refusals, --force, --writable") {
  std::string dst = extra_prefix();
  std::string missing = extra_prefix();
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  CHECK(copy_filesystem(pool, missing, dst, {}).code() == ENOENT);
  CHECK(copy_filesystem(pool, prefix, prefix, {}).code() == EINVAL);
  CHECK(copy_filesystem(pool, prefix, "bad:name", {}).code() == EINVAL);
  CHECK(copy_filesystem(pool, prefix, "glob*", {}).code() == EINVAL);
  CHECK(test::keys_under(conn(), dst).empty());

  // A key under DST that the copy would take or name makes it "existing",
  // even without a superblock: here a block in a hole of "binary" (inode
  // 4), found without a SCAN (find_collision).
  ok(conn().command({"SET", dst + ":BLK:4:5", "stray"}));
  auto refused = copy_filesystem(pool, prefix, dst, CopyOptions{false, false, true});
  CHECK(refused.code() == EEXIST);
  CHECK(refused.error().message.find("--force") != std::string::npos);
  CHECK(refused.error().message.find("BLK:4:5") != std::string::npos);
  CHECK(test::keys_under(conn(), dst).size() == 1);

  ok(copy_filesystem(pool, prefix, dst, CopyOptions{true, true, true}));
  CHECK(_keys_matching(conn(), dst + ":BLK:4:5") == 0);
  auto sb = _hash(conn(), Keys(dst).sb());
  CHECK(sb["read_only"] == "0");
  CHECK(sb["origin"] == prefix);
  {
    auto clone = _open(pool, dst);  // a writable clone opens read-write
    ok(clone->mkdir(k_root_ino, "only in the clone", 0755, k_user));
  }
  auto src_store = _open(pool, prefix);
  CHECK(src_store->lookup(k_root_ino, "only in the clone").code() == ENOENT);

  // A mounted destination is never replaced.
  ok(conn().command({"SET", dst + ":MOUNT:m1", "alive", "PX", "60000"}));
  ok(conn().command({"HSET", dst + ":MOUNTS", "m1", "alive"}));
  Content before = _content(conn(), dst);
  CHECK(copy_filesystem(pool, prefix, dst, CopyOptions{true, false, true}).code() == EBUSY);
  CHECK(_content(conn(), dst) == before);
}

TEST_CASE_FIXTURE(RedisFixture, "freeze: exclusive, blocks change scripts, detects a lost token") {
  auto s = _open(pool, prefix);
  auto lease = ok(pool.acquire());
  Freeze f = ok(Freeze::acquire(*lease, keys));
  CHECK(Freeze::acquire(*lease, keys, std::chrono::milliseconds(200)).code() == EBUSY);

  std::atomic<bool> done{false};
  std::thread writer([&] {
    auto r = s->mkdir(k_root_ino, "made while frozen", 0755, k_user);
    CHECK_MESSAGE(r.ok(), r.error().message);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(_keys_matching(conn(), prefix + ":DIR:*") == 0);  // the root has no entries yet
  CHECK(!done.load());
  ok(f.refresh(*lease));
  ok(f.release(*lease));
  writer.join();
  CHECK(done.load());
  CHECK(s->lookup(k_root_ino, "made while frozen").ok());

  Freeze g = ok(Freeze::acquire(*lease, keys));
  ok(conn().command({"DEL", keys.freeze()}));  // as if the TTL ran out
  CHECK(g.refresh(*lease).code() == EAGAIN);
  CHECK(g.release(*lease).code() == EAGAIN);

  Freeze h = ok(Freeze::acquire(*lease, keys));
  ok(conn().command({"SET", keys.freeze(), "someone else"}));
  CHECK(h.release(*lease).code() == EAGAIN);
  CHECK(ok(conn().command({"GET", keys.freeze()})).view().str() == "someone else");
  ok(conn().command({"DEL", keys.freeze()}));
}

TEST_CASE_FIXTURE(RedisFixture, "copies and restored dumps hold no orphans of the mounts they were taken from") {
  Ino held = 0;
  {
    auto s = _open(pool, prefix);
    _populate(*s);
    held = ok(s->create(k_root_ino, "held", 0644, k_user)).ino;
    ok(s->write(held, 0, std::string(200000, 'h'), false));
    ok(s->setxattr(held, "user.x", "y", 0));
    CHECK(ok(s->unlink(k_root_ino, "held")) == held);
  }
  REQUIRE(_hash(conn(), prefix + ":ORPHANS").size() == 1);
  auto sb = _hash(conn(), prefix + ":SB");
  auto orphan = _hash(conn(), prefix + ":INODE:" + std::to_string(held));
  long long inodes = std::stoll(sb["inodes"]) - 1;
  long long bytes = std::stoll(sb["bytes"]) - std::stoll(orphan["bytes"]);
  auto check_clean = [&](const std::string& p) {
    CAPTURE(p);
    CHECK(_keys_matching(conn(), p + ":ORPHANS") == 0);
    CHECK(_keys_matching(conn(), p + ":INODE:" + std::to_string(held)) == 0);
    CHECK(_keys_matching(conn(), p + ":XATTR:" + std::to_string(held)) == 0);
    CHECK(_keys_matching(conn(), p + ":BLK:" + std::to_string(held) + ":*") == 0);
    auto got = _hash(conn(), p + ":SB");
    CHECK(got["inodes"] == std::to_string(inodes));
    CHECK(got["bytes"] == std::to_string(bytes));
    auto report = ok(fsck(pool, p, false, nullptr));
    CHECK(report.remaining() == 0);
  };
  std::string copy = extra_prefix();
  ok(copy_filesystem(pool, prefix, copy, CopyOptions{false, false, true}));
  check_clean(copy);
  std::string restored = extra_prefix();
  ok(_restore(pool, _dump(pool, prefix), restored));
  check_clean(restored);
  CHECK(_hash(conn(), prefix + ":ORPHANS").size() == 1);  // the source keeps its own
}

TEST_CASE_FIXTURE(RedisFixture, "dump and restore: identical keys under another prefix") {
  std::string other = extra_prefix();
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  // A directory far bigger than one HSCAN page (restore accepts only what
  // fsck passes, so it is a real one).
  {
    auto s = _open(pool, prefix);
    Ino big = ok(s->mkdir(k_root_ino, "big", 0755, k_user)).ino;
    for (int i = 0; i < 5000; ++i) {
      ok(s->mknod(big, "entry-" + std::to_string(i), S_IFREG | 0644, 0, k_user));
    }
  }
  Content src = _content(conn(), prefix);
  long long keys_before = _dbsize(conn());

  std::string text = _dump(pool, prefix);
  CHECK(_dbsize(conn()) == keys_before);  // the temporary copy is gone
  CHECK(_keys_matching(conn(), prefix + "~*") == 0);
  CHECK(text.starts_with("{\"format\":\"redisfs-dump\""));
  auto doc = nlohmann::json::parse(text);
  CHECK(doc["prefix"] == prefix);
  CHECK(doc["records"].size() == src.size());
  CHECK(doc["records"][0]["key"] == "SB");
  CHECK(doc["trailer"]["records"] == src.size());

  RestoreStats rs = ok(_restore(pool, text, other));
  CHECK(rs.prefix == other);
  CHECK(rs.source_prefix == prefix);
  CHECK(rs.trailer.records == src.size());
  CHECK(_content(conn(), other) == src);
  CHECK(_dbsize(conn()) == keys_before + static_cast<long long>(src.size()));
  for (const auto& key : test::keys_under(conn(), other)) {
    CAPTURE(key);
    CHECK(ok(conn().command({"PTTL", key})).view().integer() == -1);  // no staging TTL survives the move
  }

  // Default target is the header's prefix: it exists, so it is refused.
  {
    std::istringstream in(text);
    RestoreOptions opts;
    opts.quiet = true;
    auto r = restore_filesystem(&pool, in, opts);
    CHECK(r.code() == EEXIST);
  }
  CHECK(_restore(pool, text, other).code() == EEXIST);
  CHECK(_dbsize(conn()) == keys_before + static_cast<long long>(src.size()));

  // --force replaces, but never a mounted filesystem.
  ok(conn().command({"HSET", Keys(other).dir(1), "stray", "99"}));
  ok(conn().command({"SET", Keys(other).mount("m"), "alive", "PX", "60000"}));
  ok(conn().command({"HSET", Keys(other).mounts(), "m", "alive"}));
  CHECK(_restore(pool, text, other, true).code() == EBUSY);
  ok(conn().command({"DEL", Keys(other).mount("m"), Keys(other).mounts()}));
  RestoreStats forced = ok(_restore(pool, text, other, true));
  CHECK(forced.replaced);
  CHECK(_content(conn(), other) == src);
  CHECK(_keys_matching(conn(), other + "~*") == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "dump to a file: renamed into place only when complete") {
  test::TempDir dir;
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  std::string path = dir.path() + "/fs.json";
  DumpStats stats = ok(dump_to_path(pool, prefix, path, DumpOptions{true}));
  CHECK(stats.trailer.records > 5);
  CHECK(std::filesystem::file_size(path) > 200000);

  std::string missing = dir.path() + "/missing.json";
  CHECK(dump_to_path(pool, extra_prefix(), missing, DumpOptions{true}).code() == ENOENT);
  CHECK(dump_to_path(pool, prefix, dir.path() + "/no/such/dir.json", DumpOptions{true}).code() == ENOENT);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);  // no half file, no leftover .tmp-XXXXXX

  std::string other = extra_prefix();
  RestoreOptions opts;
  opts.prefix = other;
  opts.quiet = true;
  ok(restore_from_path(&pool, path, opts));
  CHECK(_content(conn(), other) == _content(conn(), prefix));
  CHECK(restore_from_path(&pool, dir.path() + "/nope.json", opts).code() == ENOENT);
}

TEST_CASE_FIXTURE(RedisFixture, "restore --dry-run verifies and writes nothing") {
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  std::string text = _dump(pool, prefix);
  std::string other = extra_prefix();
  long long before = _dbsize(conn());
  RestoreStats rs = ok(_restore(pool, text, other, false, true));
  CHECK(rs.prefix == other);
  CHECK(_dbsize(conn()) == before);
  CHECK(_restore(pool, text, prefix, false, true).code() == EEXIST);
  CHECK(_restore(pool, text.substr(0, text.size() / 2), other, false, true).code() != 0);
  // Without a server, a dry run still checks the document.
  std::istringstream in(text);
  RestoreOptions opts;
  opts.dry_run = true;
  opts.quiet = true;
  ok(restore_filesystem(nullptr, in, opts));
  CHECK(_dbsize(conn()) == before);
}

namespace {

struct Rec {
  std::string key;
  std::optional<std::string> str;
  std::vector<std::pair<std::string, std::string>> pairs;
};

std::vector<Rec> _valid_records() {
  return {
      {"SB", {}, {{"format", "redisfs"}, {"version", std::to_string(k_format_version)}, {"block_size", "4096"},
                  {"root", "1"}, {"next_inode", "3"}, {"inodes", "2"}, {"bytes", "5"}, {"created", "1"}}},
      {"INODE:1", {}, {{"type", "dir"}, {"mode", "0755"}, {"uid", "0"}, {"gid", "0"}, {"size", "0"}, {"nlink", "2"},
                       {"rdev", "0"}, {"bytes", "0"}, {"parent", "1"}, {"atime", "1"}, {"mtime", "1"}, {"ctime", "1"}}},
      {"DIR:1", {}, {{"f", "2"}}},
      {"INODE:2", {}, {{"type", "file"}, {"mode", "0644"}, {"uid", "0"}, {"gid", "0"}, {"size", "5"}, {"nlink", "1"},
                       {"rdev", "0"}, {"bytes", "5"}, {"atime", "1"}, {"mtime", "1"}, {"ctime", "1"}}},
      {"BLK:2:0", std::string("hello"), {}},
  };
}

std::string _write(const std::vector<Rec>& recs, const std::string& header_prefix = "SRC") {
  std::ostringstream out;
  dump::Writer w(out, dump::Header{header_prefix, "2026-01-01T00:00:00.000Z", "test"});
  REQUIRE(w.begin().ok());
  for (const auto& r : recs) {
    if (r.str) {
      REQUIRE(w.write_string(r.key, *r.str).ok());
    } else {
      REQUIRE(w.begin_hash(r.key).ok());
      REQUIRE(w.hash_fields(r.pairs).ok());
      REQUIRE(w.end_hash().ok());
    }
  }
  REQUIRE(w.finish().ok());
  return out.str();
}

std::string _replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  REQUIRE_MESSAGE(pos != std::string::npos, from);
  return s.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE_FIXTURE(RedisFixture, "restore refuses hostile dumps and leaves everything as it was") {
  std::string existing = extra_prefix();
  std::string fresh = extra_prefix();
  {
    auto s = _open(pool, existing);
    _populate(*s);
  }
  Content existing_content = _content(conn(), existing);
  std::string good = _write(_valid_records());
  {
    // The baseline is accepted (then removed again).
    ok(_restore(pool, good, fresh));
    CHECK(_content(conn(), fresh).size() == 5);
    test::delete_prefix(conn(), fresh);
  }
  long long dbsize = _dbsize(conn());

  std::vector<std::pair<std::string, std::string>> cases;
  auto with = [&](const std::string& name, auto edit) {
    auto recs = _valid_records();
    edit(recs);
    cases.emplace_back(name, _write(recs));
  };
  with("wrong fs version", [](auto& r) { r[0].pairs[1].second = "3"; });
  with("huge fs version", [](auto& r) { r[0].pairs[1].second = "99999999999999999999999"; });
  with("wrong format", [](auto& r) { r[0].pairs[0].second = "ext4"; });
  with("huge block size", [](auto& r) { r[0].pairs[2].second = "99999999999999999999"; });
  with("odd block size", [](auto& r) { r[0].pairs[2].second = "5000"; });
  with("negative block size", [](auto& r) { r[0].pairs[2].second = "-4096"; });
  with("block longer than the block size", [](auto& r) { r[4].str = std::string(5000, 'x'); });
  with("no superblock", [](auto& r) { r.erase(r.begin()); });
  with("duplicate superblock", [](auto& r) { r.push_back(r[0]); });
  with("duplicate hash key", [](auto& r) { r.push_back(r[1]); });
  with("duplicate string key", [](auto& r) { r.push_back(r[4]); });
  with("string then hash with one key", [](auto& r) { r.push_back(Rec{"INODE:2", std::string("x"), {}}); });
  with("duplicate field", [](auto& r) { r[2].pairs.push_back({"f", "3"}); });
  with("duplicate field across batches", [](auto& r) {
    for (int i = 0; i < 3000; ++i) {
      r[2].pairs.push_back({"n" + std::to_string(i), "5"});
    }
    r[2].pairs.push_back({"n7", "6"});
  });
  with("empty hash", [](auto& r) { r[2].pairs.clear(); });
  with("inode as a string", [](auto& r) { r.push_back(Rec{"INODE:5", std::string("x"), {}}); });
  with("BLK holding a hash", [](auto& r) { r.push_back(Rec{"BLK:2:1", {}, {{"a", "b"}}}); });
  with("superblock as a string", [](auto& r) { r[0] = Rec{"SB", std::string("x"), {}}; });
  for (const char* key : {"INODE:../1", "../SB", "DIR:1/../2", "INODE:*", "DIR:[1]", "SB?", "BLK:2:0*", "OTHER:INODE:1",
                          "SRC:INODE:1", "FREEZE", "MOUNT:abc", "OPLOG:abc", "INODE:01", "INODE:0", "BLK:2:-1", "NOPE", " SB",
                          "INODE:18446744073709551616"}) {
    with(std::string("bad key ") + key, [&](auto& r) { r.push_back(Rec{key, std::string("x"), {}}); });
    with(std::string("bad hash key ") + key, [&](auto& r) { r.push_back(Rec{key, {}, {{"a", "b"}}}); });
  }
  cases.emplace_back("bad header prefix", _write(_valid_records(), "a:b"));
  cases.emplace_back("glob header prefix", _write(_valid_records(), "a*"));
  cases.emplace_back("empty header prefix", _write(_valid_records(), ""));
  cases.emplace_back("dump version 2", _replace(good, "\"version\":1,", "\"version\":2,"));
  cases.emplace_back("other format", _replace(good, "redisfs-dump", "redisfs-dumq"));
  cases.emplace_back("huge record count", _replace(good, "\"records\":5,", "\"records\":99999999999999999999999,"));
  cases.emplace_back("float record count", _replace(good, "\"records\":5,", "\"records\":5.0,"));
  cases.emplace_back("wrong checksum", _replace(good, "\"sha256\":\"", "\"sha256\":\"0"));
  cases.emplace_back("not JSON", "hello");
  cases.emplace_back("empty", "");
  cases.emplace_back("two documents", good + good);
  for (std::size_t cut : {1ul, 10ul, 50ul, 100ul}) {
    cases.emplace_back("truncated at " + std::to_string(cut), good.substr(0, cut));
  }
  for (std::size_t i = 1; i < 40; ++i) {
    std::size_t cut = good.size() * i / 40;
    cases.emplace_back("truncated at " + std::to_string(cut), good.substr(0, cut));
  }
  cases.emplace_back("truncated before the last byte", good.substr(0, good.rfind('}')));
  std::size_t records_at = good.find("\"records\"");
  for (std::size_t i = 0; i < 40; ++i) {
    std::size_t at = records_at + (good.size() - records_at - 2) * i / 40;
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
    cases.emplace_back("byte " + std::to_string(at) + " flipped", flipped);
  }

  for (const auto& [name, text] : cases) {
    CAPTURE(name);
    auto r = _restore(pool, text, fresh);
    REQUIRE_MESSAGE(!r.ok(), name);
    CHECK(r.error().message.find('\n') == std::string::npos);
    CHECK(_dbsize(conn()) == dbsize);
    CHECK(test::keys_under(conn(), fresh).empty());

    auto forced = _restore(pool, text, existing, true);
    CHECK(!forced.ok());
    CHECK(_dbsize(conn()) == dbsize);

    CHECK(!_restore(pool, text, fresh, false, true).ok());
  }
  CHECK(_content(conn(), existing) == existing_content);
  CHECK(_keys_matching(conn(), "*~restore~*") == 0);

  // The messages say what and where.
  auto dup = _restore(pool, _write([] {
                        auto r = _valid_records();
                        r.push_back(r[1]);
                        return r;
                      }()),
                      fresh);
  CHECK(dup.error().message.find("duplicate key 'INODE:1'") != std::string::npos);
  auto freeze = _restore(pool, _write([] {
                           auto r = _valid_records();
                           r.push_back(Rec{"FREEZE", std::string("x"), {}});
                           return r;
                         }()),
                         fresh);
  CHECK(freeze.error().message.find("'FREEZE'") != std::string::npos);
  auto truncated = _restore(pool, good.substr(0, 100), fresh);
  CHECK(truncated.error().message.find("byte") != std::string::npos);
}

TEST_CASE_FIXTURE(RedisFixture, "copy and dump are point-in-time while a writer renames and appends") {
  constexpr int k_files = 16;
  constexpr std::size_t k_record = 100;
  StoreOptions opts;
  opts.mkfs_block_size = 4096;  // records straddle blocks
  auto s = _open(pool, prefix, opts);
  Ino a = ok(s->mkdir(k_root_ino, "a", 0755, k_user)).ino;
  Ino b = ok(s->mkdir(k_root_ino, "b", 0755, k_user)).ino;
  Ino filler = ok(s->mkdir(k_root_ino, "filler", 0755, k_user)).ino;
  for (int i = 0; i < k_files; ++i) {
    ok(s->mknod(a, "f" + std::to_string(i), S_IFREG | 0644, 0, k_user));
  }
  // Enough keys that a copy takes many SCAN pages.
  for (int i = 0; i < 1500; ++i) {
    Ino f = ok(s->mknod(filler, "x" + std::to_string(i), S_IFREG | 0644, 0, k_user)).ino;
    ok(s->write(f, 0, "x", false));
  }
  Ino log = ok(s->mknod(k_root_ino, "log", S_IFREG | 0644, 0, k_user)).ino;

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> steps{0};
  std::thread writer([&] {
    std::vector<bool> in_a(k_files, true);
    std::uint64_t n = 0;
    while (!stop.load()) {
      int i = static_cast<int>(n % k_files);
      std::string name = "f" + std::to_string(i);
      auto moved = in_a[i] ? s->rename(a, name, b, name, 0) : s->rename(b, name, a, name, 0);
      if (!moved.ok()) {
        FAIL_CHECK(moved.error().message);
        return;
      }
      in_a[i] = !in_a[i];
      char rec[k_record + 1];
      std::snprintf(rec, sizeof rec, "record %08llu %-83s\n", static_cast<unsigned long long>(n), "payload");
      auto w = s->write(log, 0, std::string_view(rec, k_record), true);
      if (!w.ok()) {
        FAIL_CHECK(w.error().message);
        return;
      }
      steps = ++n;
    }
  });

  auto verify = [&](const std::string& p) {
    StoreOptions ro;
    ro.read_only = true;
    auto snap = _open(pool, p, ro);
    std::set<std::string> names;
    std::size_t entries = 0;
    for (Ino d : {a, b}) {
      std::uint64_t cursor = 0;
      do {
        auto page = ok(snap->readdir(d, cursor, 100, false));
        for (auto& e : page.entries) {
          names.insert(e.name);
          ++entries;
        }
        cursor = page.next_cursor;
      } while (cursor != 0);
    }
    CHECK(entries == k_files);
    CHECK(names.size() == k_files);
    Attr la = ok(snap->getattr(log));
    CHECK(la.size % k_record == 0);
    std::string data;
    ok(snap->read(log, 0, la.size, data));
    REQUIRE(data.size() == la.size);
    for (std::size_t i = 0; i < data.size() / k_record; ++i) {
      char expect[32];
      std::snprintf(expect, sizeof expect, "record %08zu ", i);
      if (data.compare(i * k_record, std::strlen(expect), expect) != 0 || data[(i + 1) * k_record - 1] != '\n') {
        FAIL_CHECK("record " << i << " is torn in " << p);
        break;
      }
    }
    // The a/b split and the log agree: file i moved once per k_files steps.
    std::uint64_t n = la.size / k_record;
    std::size_t expected_in_b = 0;
    for (int i = 0; i < k_files; ++i) {
      std::uint64_t moves = n / k_files + (static_cast<std::uint64_t>(i) < n % k_files ? 1 : 0);
      expected_in_b += moves % 2;
    }
    std::size_t in_b = 0;
    std::uint64_t cursor = 0;
    do {
      auto page = ok(snap->readdir(b, cursor, 100, false));
      in_b += page.entries.size();
      cursor = page.next_cursor;
    } while (cursor != 0);
    // The snapshot may fall between step n's rename and its append.
    std::uint64_t next_moves = n / k_files + 1;  // of file n % k_files
    std::size_t alt_in_b = next_moves % 2 == 1 ? expected_in_b + 1 : expected_in_b - 1;
    CHECK((in_b == expected_in_b || in_b == alt_in_b));
  };

  while (steps.load() < 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (int round = 0; round < 3; ++round) {
    std::string copy = extra_prefix();
    ok(copy_filesystem(pool, prefix, copy, CopyOptions{false, false, true}));
    std::string text = _dump(pool, prefix);
    std::string restored = extra_prefix();
    ok(_restore(pool, text, restored));
    verify(copy);
    verify(restored);
  }
  stop = true;
  writer.join();
  CHECK(steps.load() > 20);
  CHECK(_keys_matching(conn(), prefix + "~*") == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "delete: everything, superblock first, and refuses a mounted prefix") {
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  std::string sibling = prefix + "X";
  Cleanup guard{conn(), {sibling}};
  ok(conn().command({"SET", sibling + ":SB", "keep"}));
  ok(conn().command({"SET", keys.mount("m1"), "alive", "PX", "60000"}));
  ok(conn().command({"HSET", keys.mounts(), "m1", "alive", "gone", "a crashed mount"}));
  ok(conn().command({"SADD", keys.changed(), changed_since_member(std::string(32, 'c')), "5:0"}));  // no walk names it
  ok(conn().command({"SET", keys.sync(), "ask:1", "PX", "60000"}));  // nor a snapshot's request
  auto busy = delete_prefix(pool, prefix, false, true);
  CHECK(busy.code() == EBUSY);
  CHECK(busy.error().message.find("mounted") != std::string::npos);
  CHECK(_keys_matching(conn(), keys.sb()) == 1);

  std::size_t n = test::keys_under(conn(), prefix).size();
  DeleteStats st = ok(delete_prefix(pool, prefix, true, true));
  CHECK(st.keys == n);
  CHECK(test::keys_under(conn(), prefix).empty());
  CHECK(_keys_matching(conn(), sibling + ":*") == 1);
  CHECK(delete_prefix(pool, prefix, false, true).code() == ENOENT);
  CHECK(delete_prefix(pool, "a:b", false, true).code() == EINVAL);
}

// The request a snapshot makes of a writeback mount (keys.hpp, SYNC),
// both sides: the tool's wait (sync_writeback_mount) and the mount's
// answer (Store::sync_asked, sync_answered); a thread plays the mount.
TEST_CASE_FIXTURE(RedisFixture, "writeback sync: asked, answered, waited for, and what a silent mount costs") {
  auto s = _open(pool, prefix);
  std::string warning;
  const auto short_wait = std::chrono::milliseconds(300);

  // No writeback mount: nothing asked.
  ok(sync_writeback_mount(conn(), keys, short_wait, warning));
  CHECK(warning.empty());
  CHECK(ok(conn().command({"EXISTS", keys.sync()})).view().integer() == 0);
  CHECK(ok(s->sync_asked()) == 0);

  // A claim that names no live mount (no MOUNT:<id>), or is no string:
  // nothing to wait for, nothing asked, a warning naming the repair.
  ok(conn().command({"SET", keys.writeback(), "m1", "PX", "60000"}));
  ok(sync_writeback_mount(conn(), keys, short_wait, warning));
  CHECK(warning.find("names session 'm1', which no live mount has") != std::string::npos);
  CHECK(ok(conn().command({"EXISTS", keys.sync()})).view().integer() == 0);
  warning.clear();
  ok(conn().command({"DEL", keys.writeback()}));
  ok(conn().command({"SADD", keys.writeback(), "m1"}));
  ok(sync_writeback_mount(conn(), keys, short_wait, warning));
  CHECK(warning.find("is no string") != std::string::npos);
  CHECK(warning.find("fsck --repair") != std::string::npos);
  CHECK(ok(conn().command({"EXISTS", keys.sync()})).view().integer() == 0);
  warning.clear();
  ok(conn().command({"DEL", keys.writeback()}));

  // A mount that never answers: a warning, and the request lapses (TTL).
  ok(conn().command({"SET", keys.writeback(), "m1", "PX", "60000"}));
  ok(conn().command({"SET", keys.mount("m1"), "v1 test", "PX", "60000"}));
  ok(sync_writeback_mount(conn(), keys, short_wait, warning));
  CHECK(warning.find("did not send what it holds within") != std::string::npos);
  const std::int64_t asked = ok(s->sync_asked());
  CHECK(asked > 0);
  CHECK(ok(conn().command({"PTTL", keys.sync()})).view().integer() > 0);

  // A mount that answers: no warning, and no key left behind. (The mount
  // is `s`, on its own thread; the tool waits on the fixture's connection.)
  auto waited = [&](std::function<void()> mount) {
    std::thread t(std::move(mount));
    warning.clear();
    Status st = sync_writeback_mount(conn(), keys, std::chrono::seconds(20), warning);
    t.join();
    return st;
  };
  // The mount's side: waits for a request newer than `after`, answers it as
  // `answer_as(t)`; returns the time answered, 0 if none came.
  auto mount_answers = [&](std::int64_t after, std::function<std::int64_t(std::int64_t)> answer_as) {
    for (int i = 0; i < 2000; ++i) {
      auto t = s->sync_asked();
      if (t && *t > after) {
        return s->sync_answered(answer_as(*t)) ? *t : std::int64_t{0};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::int64_t{0};
  };
  std::int64_t answered = 0;
  ok(waited([&] { answered = mount_answers(asked, [](std::int64_t t) { return t; }); }));
  CHECK(answered > asked);
  CHECK(warning.empty());
  CHECK(ok(conn().command({"EXISTS", keys.sync()})).view().integer() == 0);

  // One that answers late (a mount looks every 2 s): the tool says what it
  // waits for (set_outage_reporter: redisfs-snap's stderr), and when it is
  // over.
  {
    std::vector<OutageNote> notes;
    set_outage_reporter([&](const OutageNote& n) { notes.push_back(n); });
    struct Reset {
      ~Reset() { set_outage_reporter(nullptr); }
    } reset;
    const std::int64_t before = answered;
    ok(waited([&] {
      std::this_thread::sleep_for(k_writeback_note_after + std::chrono::milliseconds(500));
      answered = mount_answers(before, [](std::int64_t t) { return t; });
    }));
    CHECK(answered > before);
    REQUIRE(notes.size() == 2);
    CHECK(notes[0].kind == OutageNote::Kind::Holder);
    CHECK(outage_text(notes[0], {}) == "waiting for the writeback mount of " + redisfs::quoted(prefix) +
                                           " to send what it holds (" + keys.sync() + ", session 'm1', up to 20 s)");
    CHECK(notes[1].over);
    CHECK(notes[1].waited >= k_writeback_note_after);
    CHECK(outage_text(notes[1], {})
              .starts_with("the wait for the writeback mount of " + redisfs::quoted(prefix) + " is over; waited "));
  }

  // An earlier request's answer written over ours: asked again. An answer
  // for a later request (made a second after ours) counts as ours.
  ok(waited([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)s->sync_answered(1);  // (XX: the request is there, so it lands)
    answered = mount_answers(1, [](std::int64_t t) { return t + 1000000; });
  }));
  CHECK(answered > 1);  // the request made again (else none after done:1, and a warning)
  CHECK(warning.empty());
  CHECK(ok(conn().command({"EXISTS", keys.sync()})).view().integer() == 0);

  // Two tools at once, the second asking while the mount sends what the
  // first asked for: its answer (done:<first>) lands over the second's
  // request, which asks again; each tool returns only with an answer to a
  // request made no earlier than its own (one tool's DEL of an answer may
  // remove the other's request, or its answer: asked again too).
  {
    std::atomic<int> tools_done{0};
    std::vector<std::int64_t> answers;
    std::thread mount([&] {
      while (tools_done.load() < 2) {  // (as the daemon does: every request it finds, answered)
        auto t = s->sync_asked();
        if (t && *t > 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(80));  // (sending what it holds)
          if (s->sync_answered(*t)) {
            answers.push_back(*t);
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    std::int64_t before[2] = {0, 0};
    std::string warnings[2];
    Status st[2];
    auto tool = [&](int i) {
      auto c = test::connect();
      before[i] = ok(server_time_ns(*c, keys.sync())) / 1000;
      st[i] = sync_writeback_mount(*c, keys, std::chrono::seconds(20), warnings[i]);
      tools_done.fetch_add(1);
    };
    std::thread first(tool, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::thread second(tool, 1);
    first.join();
    second.join();
    mount.join();
    for (int i = 0; i < 2; ++i) {
      CHECK(st[i].ok());
      CHECK_MESSAGE(warnings[i].empty(), warnings[i]);
    }
    REQUIRE(answers.size() >= 2);  // (the second's request answered apart from the first's)
    std::string shown;
    for (auto a : answers) {
      shown += " " + std::to_string(a);
    }
    CHECK_MESSAGE(*std::max_element(answers.begin(), answers.end()) >= before[1],
                  "answered" << shown << ", tools began at " << before[0] << " and " << before[1]);
    CHECK(ok(conn().command({"EXISTS", keys.sync()})).view().integer() == 0);
  }

  // The mount ends while the tool waits: nothing more to wait for.
  ok(waited([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)test::connect()->command({"DEL", keys.writeback()});
  }));
  CHECK(warning.empty());
  // It dies instead (its session key goes, the claim stays): the same.
  ok(conn().command({"SET", keys.writeback(), "m1", "PX", "60000"}));
  ok(waited([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)test::connect()->command({"DEL", keys.mount("m1")});
  }));
  CHECK(warning.empty());
  ok(conn().command({"DEL", keys.writeback()}));

  // An answer to a request that lapsed makes no key; a damaged one is no request.
  ok(conn().command({"DEL", keys.sync()}));
  ok(s->sync_answered(42));
  CHECK(ok(conn().command({"EXISTS", keys.sync()})).view().integer() == 0);
  ok(conn().command({"HSET", keys.sync(), "ask", "1"}));
  CHECK(ok(s->sync_asked()) == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "list: kinds, mounts, temporary prefixes, JSON") {
  std::string snap = extra_prefix();
  std::string clone = extra_prefix();
  {
    auto s = _open(pool, prefix);
    _populate(*s);
  }
  ok(copy_filesystem(pool, prefix, snap, CopyOptions{false, false, true}));
  ok(copy_filesystem(pool, prefix, clone, CopyOptions{false, true, true}));
  ok(conn().command({"SET", keys.mount("m1"), "alive", "PX", "60000"}));
  ok(conn().command({"SET", keys.mount("m2"), "alive", "PX", "60000"}));
  ok(conn().command({"HSET", keys.mounts(), "m1", "alive", "m2", "alive", "m3", "a crashed mount"}));
  std::string temp = make_temp_prefix(prefix, TempKind::Dump);
  Cleanup guard{conn(), {temp}};
  ok(conn().command({"HSET", temp + ":SB", "format", "redisfs"}));

  auto find = [](const std::vector<FsInfo>& list, const std::string& p) -> const FsInfo* {
    for (const auto& fs : list) {
      if (fs.prefix == p) {
        return &fs;
      }
    }
    return nullptr;
  };
  auto list = ok(list_filesystems(pool, false));
  const FsInfo* fs = find(list, prefix);
  REQUIRE(fs != nullptr);
  CHECK(fs->kind == "filesystem");
  CHECK(fs->mounts == 2);
  CHECK(fs->inodes >= 1);
  CHECK(fs->bytes > 0);
  const FsInfo* sn = find(list, snap);
  REQUIRE(sn != nullptr);
  CHECK(sn->kind == "snapshot");
  CHECK(sn->origin == prefix);
  CHECK(sn->read_only);
  CHECK(sn->mounts == 0);
  CHECK(sn->snapshot_created_ns >= fs->created_ns);
  REQUIRE(find(list, clone) != nullptr);
  CHECK(find(list, clone)->kind == "clone");
  CHECK(find(list, temp) == nullptr);
  auto all = ok(list_filesystems(pool, true));
  REQUIRE(find(all, temp) != nullptr);
  CHECK(find(all, temp)->kind == "dump-temp");

  auto json = nlohmann::json::parse(list_as_json(all));
  REQUIRE(json.is_array());
  bool seen = false;
  for (const auto& j : json) {
    if (j["prefix"] == snap) {
      seen = true;
      CHECK(j["kind"] == "snapshot");
      CHECK(j["origin"] == prefix);
      CHECK(j["created"].get<std::string>().ends_with("Z"));
    }
  }
  CHECK(seen);
  for (const FsInfo& listed : list) {
    CHECK(listed.listed_ns > 0);  // (each against its server's clock)
  }
  std::string table = list_as_table(list);
  CHECK(table.find("NAME") == 0);
  // The snapshot and the clone sit under their origin, with human ages.
  auto origin_at = table.find("\n" + prefix + " ");
  REQUIRE(origin_at != std::string::npos);
  for (const std::string& copy : {snap, clone}) {
    auto at = table.find("─ " + copy + " ");
    CHECK(at != std::string::npos);
    CHECK(at > origin_at);
  }
  CHECK(table.find("just now") != std::string::npos);

  // The other kinds redisfs-snap(1) names: a damaged superblock (with its
  // problem), a live read-only filesystem, a restore's staging, a replaced
  // filesystem set aside, a prefix only reserved, and keys without a
  // superblock
  const std::string damaged = extra_prefix();
  ok(conn().command({"HSET", damaged + ":SB", "format", "redisfs", "version", "not a number"}));
  ok(conn().command({"SADD", "redisfs~FILESYSTEMS", damaged}));
  const std::string read_only = extra_prefix();
  ok(copy_filesystem(pool, prefix, read_only, CopyOptions{false, false, true}));
  ok(conn().command({"HDEL", read_only + ":SB", "origin"}));
  const std::string staging = make_temp_prefix(prefix, TempKind::Restore);
  const std::string replaced = make_temp_prefix(prefix, TempKind::Replaced);
  const std::string reserved = extra_prefix();
  const std::string incomplete = extra_prefix();
  Cleanup more{conn(), {staging, replaced}};
  for (const std::string& p : {staging, replaced}) {
    // (no copy makes a filesystem under a temporary prefix's form: one is
    // made under another name, and its keys renamed, as a tool's are)
    const std::string made = extra_prefix();
    ok(copy_filesystem(pool, prefix, made, CopyOptions{false, true, true}));
    for (const std::string& key : test::keys_under(conn(), made)) {
      ok(conn().command({"RENAME", key, p + key.substr(made.size())}));
    }
  }
  ok(conn().command({"SET", reserved + ":RESERVED", "a test", "PX", "60000"}));
  ok(conn().command({"HSET", incomplete + ":INODE:1", "type", "dir"}));
  all = ok(list_filesystems(pool, true));
  const std::pair<std::string, std::string> kinds[] = {
      {damaged, "damaged"},           {read_only, "read-only"}, {staging, "restore-staging"},
      {replaced, "replaced"},         {reserved, "reserved"},   {incomplete, "incomplete"},
  };
  for (const auto& [p, kind] : kinds) {
    const FsInfo* info = find(all, p);
    REQUIRE_MESSAGE(info != nullptr, p);
    CHECK_MESSAGE(info->kind == kind, std::string(p + " is listed as " + info->kind + ", not " + kind));
  }
  const FsInfo* bad = find(all, damaged);
  REQUIRE(bad != nullptr);
  CHECK(bad->problem.find("version") != std::string::npos);
  const std::vector<FsInfo> registered = ok(list_filesystems(pool, false));
  CHECK(find(registered, damaged) != nullptr);  // (registered: listed without --all)
  for (const auto& j : nlohmann::json::parse(list_as_json(all))) {
    if (j["prefix"] == damaged) {
      CHECK(j["kind"] == "damaged");
      CHECK(j["problem"].get<std::string>().find("version") != std::string::npos);
    }
  }
}

TEST_CASE("human_age and the list table's tree") {
  const std::int64_t s = 1000000000;
  const std::int64_t now = 1800000000 * s;
  CHECK(human_age(0, now) == "-");
  CHECK(human_age(now - 3 * s, now) == "just now");
  CHECK(human_age(now - 42 * s, now) == "42 s ago");
  CHECK(human_age(now - 300 * s, now) == "5 min ago");
  CHECK(human_age(now - 3 * 3600 * s, now) == "3 h ago");
  CHECK(human_age(now - 12 * 86400 * s, now) == "12 d ago");
  CHECK(human_age(now - 400 * 86400 * s, now) == iso_time_ns(now - 400 * 86400 * s).substr(0, 10));

  std::vector<FsInfo> list(4);
  list[0].prefix = "A";
  list[0].kind = "filesystem";
  list[0].bytes = 3 * 1024 * 1024;
  list[0].created_ns = now - 3 * 3600 * s;
  list[0].mounts = 2;
  list[1].prefix = "A-mon";
  list[1].kind = "snapshot";
  list[1].origin = "A";
  list[1].snapshot_created_ns = now - 120 * s;
  list[2].prefix = "A-tue";
  list[2].kind = "snapshot";
  list[2].origin = "A-mon";  // a snapshot of a snapshot
  list[3].prefix = "B";
  list[3].kind = "snapshot";
  list[3].origin = "GONE";  // its origin is not listed
  for (FsInfo& fs : list) {
    fs.listed_ns = now;
  }
  std::string table = list_as_table(list);
  std::istringstream lines(table);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) {
    rows.push_back(line);
  }
  REQUIRE(rows.size() == 5);
  CHECK(rows[1].starts_with("A "));
  CHECK(rows[1].find("3.0 MiB") != std::string::npos);
  CHECK(rows[1].find("3 h ago") != std::string::npos);
  CHECK(rows[1].find("mounted (2)") != std::string::npos);
  CHECK(rows[2].starts_with("└─ A-mon "));
  CHECK(rows[2].find("2 min ago") != std::string::npos);
  CHECK(rows[3].starts_with("   └─ A-tue "));
  CHECK(rows[4].starts_with("B "));
  CHECK(rows[4].find("copy of GONE") != std::string::npos);
}

TEST_SUITE_END();

TEST_CASE_FIXTURE(RedisFixture, "snapshots_of: the read-only copies of one origin, from the register, and a view Store") {
  std::string snap = extra_prefix();
  std::string clone = extra_prefix();
  std::string other = extra_prefix();
  std::string other_snap = extra_prefix();
  {
    auto s = _open(pool, prefix);
    _populate(*s);
    auto o = _open(pool, other);
  }
  CHECK(ok(snapshots_of(conn(), prefix)).empty());
  ok(copy_filesystem(pool, prefix, snap, CopyOptions{false, false, true}));
  ok(copy_filesystem(pool, prefix, clone, CopyOptions{false, true, true}));  // writable: not a snapshot
  ok(copy_filesystem(pool, other, other_snap, CopyOptions{false, false, true}));
  std::string temp = make_temp_prefix(prefix, TempKind::Copy);
  Cleanup guard{conn(), {temp}};
  ok(conn().command({"HSET", temp + ":SB", "format", "redisfs", "origin", prefix, "read_only", "1", "created", "1"}));
  ok(conn().command({"SADD", std::string(k_registry_key), temp}));

  auto list = ok(snapshots_of(conn(), prefix));
  REQUIRE(list.size() == 1);
  CHECK(list[0].prefix == snap);
  CHECK(list[0].snapshot_created_ns > 0);
  auto sb = _hash(conn(), snap + ":SB");
  CHECK(list[0].identity ==
        filesystem_identity(sb["created"], sb["snapshot_created"], sb["dumped"], sb["rolled_back"]));
  auto others = ok(snapshots_of(conn(), other));
  REQUIRE(others.size() == 1);
  CHECK(others[0].prefix == other_snap);
  CHECK(ok(snapshots_of(conn(), snap)).empty());  // a snapshot of a snapshot: none

  // A view: read-only, no mount session (the snapshot is not "mounted"),
  // the same identity, and ENOENT without a SCAN once the snapshot is gone.
  StoreOptions vo;
  vo.view = true;
  auto view = _open(pool, snap, vo);
  CHECK(view->read_only());
  CHECK(view->identity() == list[0].identity);
  CHECK(ok(live_mounts(conn(), Keys(snap))).empty());
  CHECK(view->mkdir(k_root_ino, "x", 0755, k_user).code() == EROFS);
  Ino dir = ok(view->lookup(k_root_ino, "dir")).ino;
  CHECK(ok(view->lookup(dir, "binary")).size == 600000 + 17);
  ok(check_filesystem_identity(conn(), Keys(snap), view->identity()));
  ok(delete_prefix(pool, snap, false, true));
  CHECK(check_filesystem_identity(conn(), Keys(snap), view->identity()).code() == ESTALE);
  CHECK(Store::open(pool, snap, vo).code() == ENOENT);
  CHECK(ok(snapshots_of(conn(), prefix)).empty());
}

// finish_install (a mount, or the next tool, ends an interrupted restore,
// copy or rollback from its journal) moves what the journal names: only a
// staging prefix in, only the target's own aside prefix out. A journal
// naming anything else (damaged, or written by someone else) is refused
// before anything moves.
TEST_CASE_FIXTURE(RedisFixture, "an install journal naming another filesystem is refused, and nothing moves") {
  {
    auto s = ok(Store::open(pool, prefix, {}));
    ok(s->mkdir(k_root_ino, "d", 0755, k_user));
  }
  std::string victim = extra_prefix();
  {
    auto s = ok(Store::open(pool, victim, {}));
    ok(s->mkdir(k_root_ino, "theirs", 0755, k_user));
  }
  const auto victim_keys = keys_under(victim);
  const auto our_keys = keys_under(prefix);
  const std::string staging = make_temp_prefix(prefix, TempKind::Restore);
  const std::string aside = make_temp_prefix(prefix, TempKind::Replaced);
  const std::string others_aside = make_temp_prefix(victim, TempKind::Replaced);
  for (const std::string& journal :
       {"swap " + victim + " -", "aside " + victim + " " + aside, "swap " + staging + " " + victim,
        "aside " + staging + " " + others_aside, "delta " + make_temp_prefix(victim, TempKind::Dump) + " -"}) {
    INFO(journal);
    ok(conn().command({"SET", keys.installing(), journal}));
    auto r = finish_install(conn(), keys);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("not a journal this redisfs wrote") != std::string::npos);
    CHECK(keys_under(victim) == victim_keys);
  }
  ok(conn().command({"DEL", keys.installing()}));
  CHECK(keys_under(prefix) == our_keys);
}
