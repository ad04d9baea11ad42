// DumpCheck (dump_verify.hpp): the one-pass check dump makes of the records
// it writes says what verify says of the same records read back from a
// file: sound, the same fsck problems, the same refusal; and a record out
// of the order it takes, an orphan before ORPHANS, or more inodes than its
// cap, leaves the dump unchecked rather than judged wrong.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "snap/dump_format.hpp"
#include "snap/dump_verify.hpp"

using namespace redisfs;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Rec {
  std::string key;
  bool hash = true;
  Pairs pairs;
  std::string value;
};

Rec _hash(std::string key, Pairs pairs) { return Rec{std::move(key), true, std::move(pairs), {}}; }
Rec _string(std::string key, std::string value) { return Rec{std::move(key), false, {}, std::move(value)}; }

Pairs _inode(const char* type, const char* size, const char* nlink, const char* bytes) {
  Pairs p{{"type", type}, {"mode", "0644"}, {"uid", "0"},   {"gid", "0"},   {"size", size}, {"nlink", nlink},
          {"rdev", "0"},  {"bytes", bytes}, {"atime", "1"}, {"mtime", "1"}, {"ctime", "1"}};
  if (std::string(type) == "dir") {
    p.emplace_back("parent", "1");
  }
  return p;
}

// A sound filesystem of a root, a file of 13 bytes and a directory, in the
// order dump writes them.
std::vector<Rec> _sound() {
  return {
      _hash("SB", {{"format", "redisfs"},
                   {"version", "1"},
                   {"block_size", "4096"},
                   {"root", "1"},
                   {"next_inode", "100"},
                   {"inodes", "3"},
                   {"bytes", "13"},
                   {"created", "1"}}),
      _hash("INODE:1", _inode("dir", "0", "3", "0")),
      _hash("INODE:2", _inode("file", "13", "1", "13")),
      _hash("INODE:4", _inode("dir", "0", "2", "0")),
      _hash("DIR:1", {{"hello.txt", "2"}, {"sub", "4"}}),
      _string("BLK:2:0", "hello, world\n"),
  };
}

dump::Header _header(std::size_t records) {
  dump::Header h;
  h.prefix = "SKX";
  h.created = "2026-12-06T00:00:00Z";
  h.tool = "test";
  h.record_count = records;
  return h;
}

DumpCheck& _feed(DumpCheck& check, const std::vector<Rec>& recs) {
  check.header(_header(recs.size()));
  for (const Rec& r : recs) {
    if (r.hash) {
      check.hash_begin(r.key);
      check.hash_fields(r.key, r.pairs);
      check.hash_end(r.key);
    } else {
      check.string_record(r.key, r.value);
    }
  }
  return check;
}

// What verify says of the same records written to a file.
VerifyReport _verified(const std::vector<Rec>& recs) {
  char path[] = "/tmp/redisfs-dump-check-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream out(path, std::ios::binary);
    dump::Writer w(out, _header(recs.size()));
    REQUIRE(w.begin().ok());
    for (const Rec& r : recs) {
      if (r.hash) {
        REQUIRE(w.begin_hash(r.key).ok());
        REQUIRE(w.hash_fields(r.pairs).ok());
        REQUIRE(w.end_hash().ok());
      } else {
        REQUIRE(w.write_string(r.key, r.value).ok());
      }
    }
    REQUIRE(w.finish().ok());
  }
  auto report = verify_dump(path);
  unlink(path);
  REQUIRE_MESSAGE(report.ok(), report.error().message);
  return std::move(report).value();
}

std::vector<std::string> _lines(const VerifyReport& r) {
  std::vector<std::string> out;
  for (const FsckProblem& p : r.problems) {
    out.push_back(fsck_problem_line(p));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The check's report of `recs`, which must be verify's.
VerifyReport _same_as_verify(const std::vector<Rec>& recs) {
  DumpCheck check;
  VerifyReport mine = _feed(check, recs).finish();
  CHECK(check.not_checked().empty());
  VerifyReport theirs = _verified(recs);
  CHECK(mine.refusal == theirs.refusal);
  CHECK(_lines(mine) == _lines(theirs));
  return mine;
}

}  // namespace

TEST_SUITE_BEGIN("snap::dump_check");

TEST_CASE("the check of a dump as it is written is verify's") {
  std::vector<Rec> recs = _sound();
  std::size_t problems = 0;
  bool refused = false;
  SUBCASE("sound") {}
  SUBCASE("a wrong link count and a dangling entry") {
    recs[2] = _hash("INODE:2", _inode("file", "13", "5", "13"));
    recs[4].pairs.emplace_back("ghost", "77");
    problems = 2;
  }
  SUBCASE("an inode whose type is gone") {
    recs[2].pairs.erase(recs[2].pairs.begin());
    problems = 1;
  }
  SUBCASE("a block longer than the block size: restore's rules refuse it") {
    recs[5].value = std::string(5000, 'b');
    refused = true;
  }
  SUBCASE("an orphan restore drops (ORPHANS first), and one it keeps, still named: stale") {
    recs.insert(recs.begin() + 1, _hash("ORPHANS", {{"9", "gone-mount"}, {"2", "gone-mount"}}));
    recs.insert(recs.begin() + 5, _hash("INODE:9", _inode("file", "5", "0", "5")));
    recs.push_back(_string("BLK:9:0", "gone!"));
    recs[0].pairs[5].second = "4";
    recs[0].pairs[6].second = "18";
    problems = 1;
  }
  VerifyReport r = _same_as_verify(recs);
  CHECK(r.problems.size() == problems);
  CHECK(r.refusal.empty() == !refused);
}

TEST_CASE("more inodes than the cap: the check gives up, and says why") {
  DumpCheck check(2);                                // (dump's cap is DumpCheck::k_check_inodes_max)
  VerifyReport r = _feed(check, _sound()).finish();  // 3 inodes
  CHECK(check.not_checked().find("more than 2 inodes") != std::string::npos);
  CHECK(r.refusal.empty());
  CHECK(r.problems.empty());
  DumpCheck enough(3);
  CHECK(_feed(enough, _sound()).finish().sound());
  CHECK(enough.not_checked().empty());
}

TEST_CASE("records out of the order the check takes leave the dump unchecked") {
  std::vector<Rec> recs = _sound();
  SUBCASE("an inode after the directories") { std::swap(recs[3], recs[4]); }
  SUBCASE("ORPHANS after the blocks") { recs.push_back(_hash("ORPHANS", {{"2", "gone-mount"}})); }
  SUBCASE("an orphan restore drops before ORPHANS") {
    recs.insert(recs.begin() + 1, _hash("INODE:9", _inode("file", "0", "0", "0")));
    recs.insert(recs.begin() + 2, _hash("ORPHANS", {{"9", "gone-mount"}}));
  }
  DumpCheck check;
  VerifyReport r = _feed(check, recs).finish();
  CHECK_FALSE(check.not_checked().empty());
  CHECK(r.refusal.empty());
  CHECK(r.problems.empty());
}
