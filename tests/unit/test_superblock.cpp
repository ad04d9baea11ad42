#include <doctest/doctest.h>

#include <cstdio>

#include "store/superblock.hpp"

using namespace redisfs;

namespace {

SbFields _good() {
  return {{"format", "redisfs"}, {"version", "1"},  {"block_size", "65536"}, {"root", "1"},
          {"next_inode", "7"},   {"inodes", "3"},   {"bytes", "10"},        {"created", "1700000000000000000"}};
}

SbFields _with(std::string field, std::string value) {
  SbFields f = _good();
  for (auto& [k, v] : f) {
    if (k == field) {
      v = value;
      return f;
    }
  }
  f.emplace_back(std::move(field), std::move(value));
  return f;
}

SbFields _without(const std::string& field) {
  SbFields f = _good();
  std::erase_if(f, [&](const auto& p) { return p.first == field; });
  return f;
}

}  // namespace

TEST_SUITE_BEGIN("core::superblock");

TEST_CASE("a sound superblock decodes") {
  auto sb = decode_superblock("SKX", _good());
  REQUIRE(sb.ok());
  CHECK(sb->version == 1);
  CHECK(sb->block_size == 65536);
  CHECK(sb->next_inode == 7);
  CHECK(sb->inodes == 3);
  CHECK_FALSE(sb->read_only);
  CHECK(superblock_issues(_good()).empty());
}

TEST_CASE("no superblock is ENOENT") {
  auto sb = decode_superblock("SKX", {});
  REQUIRE_FALSE(sb.ok());
  CHECK(sb.error().code == ENOENT);
}

TEST_CASE("one rule for the block size, everywhere") {
  CHECK(check_block_size(4096).ok());
  CHECK(check_block_size(4u << 20).ok());
  CHECK_FALSE(check_block_size(2048).ok());
  CHECK_FALSE(check_block_size(8u << 20).ok());
  CHECK_FALSE(check_block_size(64u << 20).ok());
  CHECK_FALSE(check_block_size(12288).ok());
  CHECK_FALSE(decode_superblock("SKX", _with("block_size", "8388608")).ok());
  CHECK_FALSE(decode_superblock("SKX", _with("block_size", "065536")).ok());
}

TEST_CASE("every malformed field is an issue, never a default") {
  for (auto [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"format", "zfs"},
           {"version", "3"},
           {"version", "0"},
           {"version", "01"},
           {"block_size", "x"},
           {"root", "2"},
           {"next_inode", "1"},
           {"next_inode", "18446744073709551615"},
           {"next_inode", "9007199254740992"},
           {"inodes", "-1"},
           {"bytes", "18446744073709551615"},
           {"created", "1e9"},
           {"read_only", "yes"},
           {"origin", "a b"},
           {"restored_from", "x:y"},
       }) {
    CAPTURE(field);
    CAPTURE(value);
    auto issues = superblock_issues(_with(field, value));
    REQUIRE(issues.size() == 1);
    CHECK(issues[0].field == field);
    auto sb = decode_superblock("SKX", _with(field, value));
    REQUIRE_FALSE(sb.ok());
    CHECK(sb.error().code == EINVAL);
    CHECK(sb.error().message.find("prefix 'SKX'") != std::string::npos);
  }
  for (const char* field : {"format", "version", "block_size", "next_inode", "created"}) {
    CAPTURE(field);
    CHECK_FALSE(decode_superblock("SKX", _without(field)).ok());
  }
}

TEST_CASE("format versions: 1 (before change tracking) and 2 decode, a later one is refused in one line") {
  for (const char* v : {"1", "2"}) {
    CAPTURE(v);
    auto sb = decode_superblock("SKX", _with("version", v));
    REQUIRE(sb.ok());
    CHECK(sb->version == std::stoi(v));
  }
  CHECK(k_format_version == 2);
  CHECK(k_tracking_version == 2);
  // What a build that knows only version 1 said of a version-2 filesystem,
  // this one says of version 3.
  auto later = decode_superblock("SKX", _with("version", "3"));
  REQUIRE_FALSE(later.ok());
  CHECK(later.error().message.find("unsupported filesystem version '3' (this build knows versions 1 to 2)") !=
        std::string::npos);
  CHECK(later.error().message.find('\n') == std::string::npos);
}

TEST_CASE("a message shows a bounded, printable value") {
  auto sb = decode_superblock("SKX", _with("format", std::string(100000, 'x') + "\n"));
  REQUIRE_FALSE(sb.ok());
  CHECK(sb.error().message.size() < 300);
  CHECK(sb.error().message.find('\n') == std::string::npos);
}

TEST_CASE("a snapshot is never called a snapshot of itself") {
  Superblock sb;
  sb.read_only = true;
  sb.origin = "SKX";
  CHECK(describe_snapshot("SKX-mon", sb) == "a read-only snapshot of 'SKX'");
  CHECK(describe_snapshot("SKX", sb) == "a read-only snapshot");
  sb.restored_from = "SKX-mon";
  CHECK(describe_snapshot("SKX", sb) == "a read-only snapshot restored from a dump of 'SKX-mon'");
}

TEST_SUITE_END();

TEST_CASE("lineage: snapshot ids and their order") {
  const std::string a(32, 'a');
  const std::string b(32, 'b');
  auto sb = decode_superblock("SKX", _with("lineage", a + " " + b));
  REQUIRE(sb.ok());
  CHECK(sb->lineage == std::vector<std::string>{a, b});
  CHECK(sb->snapshot_id.empty());

  SbFields snap = _with("lineage", a + " " + b);
  snap.emplace_back("snapshot_id", b);
  auto s = decode_superblock("SKX-tue", snap);
  REQUIRE(s.ok());
  CHECK(s->snapshot_id == b);

  Superblock mon;
  mon.snapshot_id = a;
  mon.lineage = {a};
  CHECK(descends_from(*s, mon));
  CHECK_FALSE(descends_from(mon, *s));
  CHECK_FALSE(descends_from(*s, *s));
  Superblock old;  // before lineage: no id, so nothing descends from it
  CHECK_FALSE(descends_from(*s, old));
}

TEST_CASE("lineage: malformed fields are superblock issues") {
  const std::string a(32, 'a');
  CHECK_FALSE(superblock_issues(_with("lineage", "nope")).empty());
  CHECK_FALSE(superblock_issues(_with("lineage", a + "  " + a)).empty());
  CHECK_FALSE(superblock_issues(_with("lineage", std::string(32, 'A'))).empty());
  CHECK_FALSE(superblock_issues(_with("snapshot_id", "123")).empty());
  SbFields wrong_end = _with("lineage", a);
  wrong_end.emplace_back("snapshot_id", std::string(32, 'b'));
  auto issues = superblock_issues(wrong_end);
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].field == "lineage");
  std::string many;
  for (int i = 0; i < 65; ++i) {
    many += (i ? " " : "") + a;
  }
  CHECK_FALSE(superblock_issues(_with("lineage", many)).empty());
}

TEST_CASE("lineage: extending keeps the newest 64") {
  std::vector<std::string> ids;
  for (int i = 0; i < 64; ++i) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%032x", i);
    ids.emplace_back(buf);
  }
  std::string next(32, 'f');
  auto text = extend_lineage(ids, next);
  auto parsed = parse_lineage(text);
  REQUIRE(parsed);
  CHECK(parsed->size() == 64);
  CHECK(parsed->front() == ids[1]);
  CHECK(parsed->back() == next);
  CHECK(extend_lineage({}, next) == next);
}
