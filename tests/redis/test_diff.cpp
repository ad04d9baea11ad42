// diff (core/snap/diff.hpp) against a real redis-server: every change to a
// file's data sets its mtime and ctime (write.lua, truncate.lua,
// extend.lua, punch.lua and copy_range.lua through Store), which is what lets diff find data changes
// without reading a block; and the zfs-style and JSON forms of a change.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "snap/diff.hpp"
#include "fixture.hpp"
#include "snap/snapshot.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

template <class T>
T _ok(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return std::move(r).value();
}

std::vector<std::string> _diff(Pool& pool, const std::string& a, const std::string& b) {
  std::vector<std::string> out;
  auto stats = diff_filesystems(pool, a, b, DiffOptions{false, true}, [&](const DiffChange& c) -> Status {
    out.push_back(diff_line(c));
    return {};
  });
  REQUIRE_MESSAGE(stats.ok(), stats.error().message);
  return out;
}

}  // namespace

TEST_SUITE_BEGIN("core::diff");

TEST_CASE_FIXTURE(RedisFixture, "every data change sets mtime and ctime, and diff lists it as M") {
  auto store = _ok(Store::open(pool, prefix, {}));
  Attr f = _ok(store->mknod(k_root_ino, "f", S_IFREG | 0644, 0, k_user));
  _ok(store->write(f.ino, 0, "aaaa", false));
  std::string before = extra_prefix();
  REQUIRE(copy_filesystem(pool, prefix, before, CopyOptions{false, false, true}).ok());

  auto setattr_size = [&](std::uint64_t size) {
    SetAttrRequest req;
    req.size = size;
    return _ok(store->setattr(f.ino, req));
  };
  const std::vector<std::pair<std::string, std::function<void()>>> changes = {
      {"write.lua: the same size, other bytes", [&] { _ok(store->write(f.ino, 0, "bbbb", false)); }},
      {"write.lua: an append", [&] { _ok(store->write(f.ino, 0, "cc", true)); }},
      {"truncate.lua: shorter", [&] { setattr_size(3); }},
      {"extend.lua: longer (a hole)", [&] { setattr_size(300000); }},
      {"write.lua: into the hole", [&] { _ok(store->write(f.ino, 200000, "x", false)); }},
      {"punch.lua: a hole punched in it", [&] { REQUIRE(store->punch_hole(f.ino, 199999, 2, nullptr).ok()); }},
      {"copy_range.lua: bytes copied within it",
       [&] { REQUIRE(store->copy_range(f.ino, 0, f.ino, 250000, 5, nullptr).ok()); }},
      {"truncate.lua: to zero", [&] { setattr_size(0); }},
  };
  for (const auto& [what, change] : changes) {
    CAPTURE(what);
    Attr old = _ok(store->getattr(f.ino));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the server's clock moves on
    change();
    Attr now = _ok(store->getattr(f.ino));
    CHECK(now.mtime_ns > old.mtime_ns);
    CHECK(now.ctime_ns > old.ctime_ns);
    std::string after = extra_prefix();
    REQUIRE(copy_filesystem(pool, prefix, after, CopyOptions{false, false, true}).ok());
    CHECK(_diff(pool, before, after) == std::vector<std::string>{"M\tf"});
    before = after;
  }

  // Contents changed and the modification time put back (rsync -t, cp -p):
  // the change time still moved, so it is still M.
  Attr old = _ok(store->getattr(f.ino));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  _ok(store->write(f.ino, 0, "zz", false));
  SetAttrRequest back;
  back.mtime = SetAttrRequest::Time::Set;
  back.mtime_ns = old.mtime_ns;
  _ok(store->setattr(f.ino, back));
  CHECK(_ok(store->getattr(f.ino)).mtime_ns == old.mtime_ns);
  std::string after = extra_prefix();
  REQUIRE(copy_filesystem(pool, prefix, after, CopyOptions{false, false, true}).ok());
  CHECK(_diff(pool, before, after) == std::vector<std::string>{"M\tf"});
  // ...and against the live filesystem, read at one instant: the same.
  CHECK(_diff(pool, before, prefix) == std::vector<std::string>{"M\tf"});
  CHECK(_diff(pool, after, prefix).empty());
}

TEST_CASE("diff_line escapes as zfs diff does, and diff_json keeps the bytes") {
  DiffChange c{'R', "new name", "a\\b\n\xc3\xa9", 'f'};
  CHECK(diff_line(c) == "R\ta\\0134b\\0012\\0303\\0251 -> new\\0040name");
  CHECK(diff_json(c) == "{\"change\":\"R\",\"type\":\"f\",\"path\":\"new name\",\"from\":\"a\\\\b\\n\xc3\xa9\"}");
  DiffChange odd{'+', "\xff\xfe", "", 'd'};
  CHECK(diff_line(odd) == "+\t\\0377\\0376");
  CHECK(diff_json(odd) == "{\"change\":\"+\",\"type\":\"d\",\"path\":{\"base64\":\"//4=\"}}");
}

TEST_SUITE_END();
