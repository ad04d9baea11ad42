// The key schema: formatting, relative(), parse_relative_key() on good and
// hostile keys, and validate_prefix().
#include <doctest/doctest.h>

#include <string>

#include "store/keys.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("keys");

TEST_CASE("Keys formats every key under <prefix>:") {
  Keys k("SKX");
  CHECK(k.prefix() == "SKX");
  CHECK(k.sb() == "SKX:SB");
  CHECK(k.inode(1) == "SKX:INODE:1");
  CHECK(k.inode(18446744073709551615ull) == "SKX:INODE:18446744073709551615");
  CHECK(k.dir(5) == "SKX:DIR:5");
  CHECK(k.xattr(5) == "SKX:XATTR:5");
  CHECK(k.block(5, 0) == "SKX:BLK:5:0");
  CHECK(k.block(5, 1234) == "SKX:BLK:5:1234");
  CHECK(k.orphans() == "SKX:ORPHANS");
  CHECK(k.freeze() == "SKX:FREEZE");
  CHECK(k.mount("abc123") == "SKX:MOUNT:abc123");
  CHECK(k.match_all() == "SKX:*");
  CHECK(k.absolute("INODE:7") == "SKX:INODE:7");
}

TEST_CASE("a mount's registration: the format version, then what it says of itself") {
  CHECK(mount_registration(2, "host pid 7 /mnt") == "v2 host pid 7 /mnt");
  CHECK(mount_info("v2 host pid 7 /mnt") == "host pid 7 /mnt");
  CHECK(mount_info("v12 ro") == "ro");
  // A daemon older than format version 2 registered what it says as is.
  for (const char* old : {"host pid 7 /mnt", "v2", "v /mnt", "vx host", "", "v2host"}) {
    CAPTURE(old);
    CHECK(mount_info(old) == old);
  }
}

TEST_CASE("relative() strips exactly our prefix") {
  Keys k("SKX");
  REQUIRE(k.relative("SKX:INODE:5"));
  CHECK(*k.relative("SKX:INODE:5") == "INODE:5");
  CHECK(*k.relative("SKX:SB") == "SB");
  CHECK_FALSE(k.relative("SKX:"));
  CHECK_FALSE(k.relative("SKX"));
  CHECK_FALSE(k.relative("SKX2:SB"));
  CHECK_FALSE(k.relative("SK:X:SB"));
  CHECK_FALSE(k.relative("skx:SB"));
  CHECK_FALSE(k.relative(""));
  CHECK_FALSE(k.relative("OTHER:SKX:SB"));
  // Every key a Keys formats is recognised again.
  for (const std::string& key : {k.sb(), k.inode(3), k.dir(3), k.xattr(3), k.block(3, 9), k.orphans(), k.freeze(),
                                 k.mount("m")}) {
    auto rel = k.relative(key);
    REQUIRE(rel);
    CHECK(k.absolute(*rel) == key);
    CHECK(parse_relative_key(*rel).kind != KeyKind::Unknown);
  }
}

TEST_CASE("parse_relative_key on good keys") {
  ParsedKey p = parse_relative_key("SB");
  CHECK(p.kind == KeyKind::Superblock);
  CHECK(parse_relative_key("ORPHANS").kind == KeyKind::Orphans);
  CHECK(parse_relative_key("FREEZE").kind == KeyKind::Freeze);
  CHECK(parse_relative_key("MOUNT:abc").kind == KeyKind::Mount);
  CHECK(parse_relative_key("WRITEBACK").kind == KeyKind::Writeback);
  CHECK(parse_relative_key("SYNC").kind == KeyKind::Sync);

  p = parse_relative_key("INODE:1");
  CHECK(p.kind == KeyKind::Inode);
  CHECK(p.ino == 1);
  p = parse_relative_key("DIR:42");
  CHECK(p.kind == KeyKind::Dir);
  CHECK(p.ino == 42);
  p = parse_relative_key("XATTR:9");
  CHECK(p.kind == KeyKind::Xattr);
  CHECK(p.ino == 9);
  p = parse_relative_key("BLK:7:0");
  CHECK(p.kind == KeyKind::Block);
  CHECK(p.ino == 7);
  CHECK(p.index == 0);
  p = parse_relative_key("BLK:7:123456");
  CHECK(p.kind == KeyKind::Block);
  CHECK(p.index == 123456);
  p = parse_relative_key("INODE:9999999999999999999");
  CHECK(p.kind == KeyKind::Inode);
  CHECK(p.ino == 9999999999999999999ull);
}

TEST_CASE("parse_relative_key on hostile keys") {
  const char* hostile[] = {
      "",          "sb",          "SB ",         "SBX",          "ORPHANS:1",    "FREEZE:x",    "MOUNT:",
      "MOUNT",     "INODE:",      "INODE:0",     "INODE:01",     "INODE:-1",     "INODE:+1",    "INODE: 1",
      "INODE:1 ",  "INODE:1x",    "INODE:0x10",  "INODE:1.5",    "INODE:18446744073709551616",
      "INODE:99999999999999999999", "INODE",      "DIR:",        "DIR:0",        "DIR:-5",      "XATTR:",
      "XATTR:00",  "BLK:",        "BLK:1",       "BLK:1:",       "BLK::1",       "BLK:0:1",     "BLK:1:01",
      "BLK:1:-1",  "BLK:1:2:3",   "BLK:-1:0",    "BLK:1:0 ",     "../x",         "INODE:../1",  "inode:1",
      "BLK:1:\n",  "DIR:1\n",
  };
  for (const char* key : hostile) {
    ParsedKey p = parse_relative_key(key);
    CHECK_MESSAGE(p.kind == KeyKind::Unknown, "key '" << key << "'");
    CHECK(p.ino == 0);
    CHECK(p.index == 0);
  }
  // An embedded NUL is not a number either.
  CHECK(parse_relative_key(std::string_view("INODE:1\0", 8)).kind == KeyKind::Unknown);
}

TEST_CASE("which keys are the filesystem, and their types") {
  CHECK(is_filesystem_key(KeyKind::Superblock));
  CHECK(is_filesystem_key(KeyKind::Inode));
  CHECK(is_filesystem_key(KeyKind::Dir));
  CHECK(is_filesystem_key(KeyKind::Xattr));
  CHECK(is_filesystem_key(KeyKind::Block));
  CHECK(is_filesystem_key(KeyKind::Orphans));
  CHECK_FALSE(is_filesystem_key(KeyKind::Freeze));
  CHECK_FALSE(is_filesystem_key(KeyKind::Mount));
  CHECK_FALSE(is_filesystem_key(KeyKind::Writeback));
  CHECK(is_running_system_key(KeyKind::Writeback));
  CHECK_FALSE(is_filesystem_key(KeyKind::Sync));
  CHECK(is_running_system_key(KeyKind::Sync));
  CHECK_FALSE(is_filesystem_key(KeyKind::Unknown));
  CHECK(expected_type(KeyKind::Block) == "string");
  CHECK(expected_type(KeyKind::Inode) == "hash");
  CHECK(expected_type(KeyKind::Superblock) == "hash");
  CHECK(expected_type(KeyKind::Dir) == "hash");
}

TEST_CASE("validate_prefix") {
  CHECK(validate_prefix("SKX").ok());
  CHECK(validate_prefix("SKX2").ok());
  CHECK(validate_prefix("my-fs_1.snap").ok());
  CHECK(validate_prefix(std::string(200, 'a')).ok());

  const std::string bad[] = {"",    "a:b", "a*",  "a b",    "a?",   "a[b]",        "a\\b",
                             "a\tb", "a\nb", ":",  "SKX:", std::string("a\0b", 3), "a\x7f", std::string(201, 'a')};
  for (const auto& prefix : bad) {
    auto s = validate_prefix(prefix);
    CHECK_MESSAGE(!s.ok(), "prefix '" << prefix << "'");
    if (!s.ok()) {
      CHECK(s.error().code == EINVAL);
      CHECK_FALSE(s.error().message.empty());
    }
  }
}

TEST_CASE("normalize_prefix: 'SKX:' as the keys spell it is the prefix SKX") {
  std::string p = "SKX:";
  CHECK(normalize_prefix(p).ok());
  CHECK(p == "SKX");
  p = "{fs1}-monday:";
  CHECK(normalize_prefix(p).ok());
  CHECK(p == "{fs1}-monday");
  p = "SKX";
  CHECK(normalize_prefix(p).ok());
  CHECK(p == "SKX");
  for (std::string bad : {":", "SKX::", "a:b:", "", "a b:"}) {
    std::string q = bad;
    CHECK_MESSAGE(!normalize_prefix(q).ok(), "prefix '" << bad << "'");
  }
}

TEST_SUITE_END();

TEST_CASE("a bad prefix is named on one line, control bytes escaped") {
  auto s = redisfs::validate_prefix("a\nb");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find('\n') == std::string::npos);
  CHECK(s.error().message.find("a\\x0ab") != std::string::npos);
}

TEST_CASE("TMP keys are recognised and are not the filesystem") {
  redisfs::Keys k("SKX");
  CHECK(k.temp("abc", 7) == "SKX:TMP:abc:7");
  auto pk = redisfs::parse_relative_key("TMP:abc:7");
  CHECK(pk.kind == redisfs::KeyKind::Temp);
  CHECK_FALSE(redisfs::is_filesystem_key(pk.kind));
}
