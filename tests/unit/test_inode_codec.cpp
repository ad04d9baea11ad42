// The inode codec: decode_attr from HGETALL field lists (good, partial,
// malformed), the type and mode formatting, and Attr::to_stat.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "store/inode.hpp"

using namespace redisfs;

static FieldList _file_fields() {
  return {{"type", "file"}, {"mode", "0644"},  {"uid", "1000"},  {"gid", "100"},
          {"size", "5000"}, {"nlink", "1"},    {"rdev", "0"},    {"bytes", "4096"},
          {"atime", "1700000000123456789"}, {"mtime", "1700000001000000000"}, {"ctime", "1700000002999999999"}};
}

// `f` with the fields decode_attr never reads as 0 (an owner, a size).
static FieldList _whole(FieldList f) {
  f.insert(f.begin(), {{"uid", "0"}, {"gid", "0"}, {"size", "0"}});
  return f;
}

TEST_SUITE_BEGIN("inode_codec");

TEST_CASE("decode_attr: a regular file") {
  auto r = decode_attr(5, _file_fields());
  REQUIRE(r.ok());
  const Attr& a = r.value();
  CHECK(a.ino == 5);
  CHECK(a.is_reg());
  CHECK_FALSE(a.is_dir());
  CHECK(a.mode == (S_IFREG | 0644));
  CHECK(a.uid == 1000);
  CHECK(a.gid == 100);
  CHECK(a.size == 5000);
  CHECK(a.nlink == 1);
  CHECK(a.rdev == 0);
  CHECK(a.bytes == 4096);
  CHECK(a.atime_ns == 1700000000123456789);
  CHECK(a.mtime_ns == 1700000001000000000);
  CHECK(a.ctime_ns == 1700000002999999999);
  CHECK(a.parent == 0);
  CHECK(a.target.empty());
}

TEST_CASE("decode_attr: directory, symlink, device, special bits") {
  auto d = decode_attr(1, _whole({{"type", "dir"}, {"mode", "2755"}, {"nlink", "3"}, {"parent", "1"}}));
  REQUIRE(d.ok());
  CHECK(d->is_dir());
  CHECK(d->mode == (S_IFDIR | 02755));
  CHECK(d->nlink == 3);
  CHECK(d->parent == 1);

  auto l = decode_attr(7, _whole({{"type", "symlink"}, {"mode", "0777"}, {"target", "../some where/\xff"}}));
  REQUIRE(l.ok());
  CHECK(l->is_symlink());
  CHECK(l->target == "../some where/\xff");

  auto c = decode_attr(8, _whole({{"type", "chr"}, {"mode", "0600"}, {"rdev", "259"}}));
  REQUIRE(c.ok());
  CHECK(S_ISCHR(c->mode));
  CHECK(c->rdev == 259);

  for (auto [name, bits] : {std::pair{"fifo", S_IFIFO}, {"blk", S_IFBLK}, {"sock", S_IFSOCK}}) {
    auto x = decode_attr(9, _whole({{"mode", "7777"}, {"type", name}}));
    REQUIRE(x.ok());
    CHECK((x->mode & S_IFMT) == bits);
    CHECK((x->mode & 07777) == 07777);
  }
}

TEST_CASE("decode_attr: unknown fields are ignored, negative counters read as zero") {
  FieldList f = _file_fields();
  f.emplace_back("future_field", "whatever");
  f.emplace_back("nlink", "-1");
  f.emplace_back("bytes", "-4096");
  auto r = decode_attr(5, f);
  REQUIRE(r.ok());
  CHECK(r->nlink == 0);
  CHECK(r->bytes == 0);
}

TEST_CASE("decode_attr: missing or malformed fields are EIO naming the inode") {
  auto missing_type = decode_attr(12, {{"mode", "0644"}});
  REQUIRE_FALSE(missing_type.ok());
  CHECK(missing_type.error().code == EIO);
  CHECK(missing_type.error().message.find("12") != std::string::npos);

  CHECK_FALSE(decode_attr(12, {{"type", "file"}}).ok());
  CHECK_FALSE(decode_attr(12, {}).ok());
  // a type, a mode, an owner or a size is never read as 0 or a default
  // (a setuid file would be root's, a file empty); each is named
  for (const char* field : {"type", "mode", "uid", "gid", "size"}) {
    FieldList f = _file_fields();
    std::erase_if(f, [&](const auto& kv) { return kv.first == field; });
    auto r = decode_attr(12, f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EIO);
    CHECK(r.error().message == "inode 12: no '" + std::string(field) + "' field");
  }

  const std::pair<const char*, const char*> bad[] = {
      {"type", "weird"}, {"type", ""},      {"mode", "0999"}, {"mode", "17777"},     {"mode", ""},
      {"mode", "-644"},  {"uid", "-1"},     {"uid", "x"},     {"uid", "4294967296"}, {"gid", "1.5"},
      {"size", "-1"},    {"size", "12abc"}, {"nlink", ""},    {"rdev", "0x10"},      {"atime", "now"},
      {"mtime", ""},     {"ctime", "1e9"},  {"parent", "-3"},
  };
  for (auto [field, value] : bad) {
    FieldList f = _file_fields();
    f.emplace_back(field, value);
    auto r = decode_attr(77, f);
    CHECK_MESSAGE(!r.ok(), field << "=" << value);
    if (!r.ok()) {
      CHECK(r.error().code == EIO);
      CHECK(r.error().message.find("77") != std::string::npos);
      CHECK(r.error().message.find(field) != std::string::npos);
    }
  }
}

TEST_CASE("decode_attr: a malformed bytes (accounting alone) reads as the size") {
  for (const char* value : {"lots", "", "-", "1e9"}) {
    FieldList f = _file_fields();
    std::erase_if(f, [](const auto& kv) { return kv.first == "bytes"; });
    f.emplace_back("bytes", value);
    auto r = decode_attr(77, f);
    REQUIRE_MESSAGE(r.ok(), value);
    CHECK(r->bytes == r->size);
    CHECK(r->to_stat(4096).st_blocks == static_cast<blkcnt_t>((r->size + 511) / 512));
  }
}

TEST_CASE("decode_attr: values the daemon could not serve are EIO naming the field") {
  // issue 8: a size of 2^63 or more made lstat fail; anything above the
  // largest file size the scripts handle is refused.
  for (const char* size : {"18446744073709551615", "9223372036854775808", "1125899906842625"}) {
    FieldList f = _file_fields();
    f.emplace_back("size", size);
    auto r = decode_attr(3, f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EIO);
    CHECK(r.error().message.find("size") != std::string::npos);
  }
  for (const char* gen : {"18446744073709551615", "9223372036854775808", "9007199254740992"}) {
    auto r = decode_attr(4, _whole({{"type", "dir"}, {"mode", "0755"}, {"gen", gen}}));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("gen") != std::string::npos);
  }
  CHECK(decode_attr(4, _whole({{"type", "dir"}, {"mode", "0755"}, {"gen", "9007199254740991"}})).ok());
  for (const char* field : {"uid", "gid"}) {
    FieldList f = _file_fields();
    f.emplace_back(field, "4294967295");
    auto r = decode_attr(6, f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find(field) != std::string::npos);
  }
  FieldList largest = _file_fields();
  largest.emplace_back("size", "1125899906842624");  // 2^50
  CHECK(decode_attr(3, largest).ok());

  // symlink targets readlink could not return
  auto link = [](std::optional<std::string> target) {
    FieldList f = _whole({{"type", "symlink"}, {"mode", "0777"}});
    static std::string keep;
    if (target) {
      keep = *target;
      f.emplace_back("target", keep);
    }
    return decode_attr(9, f);
  };
  CHECK(link(std::string(4095, 'a')).ok());
  for (auto target : {std::optional<std::string>{}, std::optional<std::string>{""},
                      std::optional<std::string>{std::string(4096, 'a')},
                      std::optional<std::string>{std::string("a\0b", 3)}}) {
    auto r = link(target);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EIO);
    CHECK(r.error().message.find("target") != std::string::npos);
    CHECK(r.error().message.find("inode 9") != std::string::npos);
  }
  // a target field on anything but a symlink is not judged
  FieldList f = _file_fields();
  f.emplace_back("target", "");
  CHECK(decode_attr(3, f).ok());
}

TEST_CASE("file names and attribute names the kernel accepts") {
  CHECK(check_file_name("a").ok());
  CHECK(check_file_name(std::string(255, 'n')).ok());
  CHECK(check_file_name("...").ok());
  CHECK(check_file_name("\xff\x01").ok());
  for (std::string bad : {std::string(), std::string("."), std::string(".."), std::string("a/b"),
                          std::string("a\0b", 3)}) {
    CHECK_MESSAGE(check_file_name(bad).code() == EINVAL, bad);
  }
  CHECK(check_file_name(std::string(256, 'n')).code() == ENAMETOOLONG);

  CHECK(check_xattr_name("user.a").ok());
  CHECK(check_xattr_name("trusted.x").ok());
  CHECK(check_xattr_name("security.selinux").ok());
  CHECK(check_xattr_name("system.posix_acl_access").code() == EOPNOTSUPP);
  CHECK(check_xattr_name("system.posix_acl_default").code() == EOPNOTSUPP);
  CHECK(check_xattr_name("system.other").ok());
  CHECK(check_xattr_name("user." + std::string(250, 'a')).ok());  // 255 bytes
  CHECK(check_xattr_name("").code() == EINVAL);
  CHECK(check_xattr_name(std::string("user.a\0b", 8)).code() == EINVAL);
  CHECK(check_xattr_name("user.").code() == EOPNOTSUPP);
  CHECK(check_xattr_name("other.a").code() == EOPNOTSUPP);
  CHECK(check_xattr_name("user").code() == EOPNOTSUPP);
  CHECK(check_xattr_name("user." + std::string(251, 'a')).code() == ERANGE);
}

TEST_CASE("type names and mode formatting") {
  for (const char* name : {"file", "dir", "symlink", "fifo", "chr", "blk", "sock"}) {
    auto bits = type_bits(name);
    REQUIRE(bits);
    CHECK(type_name(*bits | 0644) == name);
  }
  CHECK_FALSE(type_bits("FILE"));
  CHECK_FALSE(type_bits("regular"));
  CHECK(format_mode(0644) == "0644");
  CHECK(format_mode(S_IFREG | 0644) == "0644");
  CHECK(format_mode(S_IFDIR | 02755) == "2755");
  CHECK(format_mode(0) == "0000");
  CHECK(format_mode(07777) == "7777");
  CHECK(format_mode(01777) == "1777");
  CHECK(format_mode(04711) == "4711");
  CHECK(format_time_ns(1700000000123456789) == "1700000000123456789");
  CHECK(now_ns() > 1600000000000000000);
}

TEST_CASE("to_stat: blocks, times and the rest") {
  Attr a = decode_attr(5, _file_fields()).value();
  struct stat st = a.to_stat(65536);
  CHECK(st.st_ino == 5);
  CHECK(st.st_mode == (S_IFREG | 0644));
  CHECK(st.st_nlink == 1);
  CHECK(st.st_uid == 1000);
  CHECK(st.st_gid == 100);
  CHECK(st.st_size == 5000);
  CHECK(st.st_blksize == 65536);
  CHECK(st.st_blocks == 8);
  CHECK(st.st_atim.tv_sec == 1700000000);
  CHECK(st.st_atim.tv_nsec == 123456789);
  CHECK(st.st_mtim.tv_sec == 1700000001);
  CHECK(st.st_mtim.tv_nsec == 0);
  CHECK(st.st_ctim.tv_sec == 1700000002);
  CHECK(st.st_ctim.tv_nsec == 999999999);

  // st_blocks counts 512-byte units of stored bytes, rounded up; a sparse
  // file stores less than its size.
  for (auto [bytes, blocks] : {std::pair{0ull, 0LL}, {1ull, 1LL}, {511ull, 1LL}, {512ull, 1LL}, {513ull, 2LL},
                               {65536ull, 128LL}, {1ull << 40, (1LL << 40) / 512}}) {
    a.bytes = bytes;
    CHECK(a.to_stat(4096).st_blocks == blocks);
  }

  // Times before the epoch keep tv_nsec in [0, 1e9).
  a.atime_ns = -1;
  a.mtime_ns = -1500000000;
  a.ctime_ns = 0;
  st = a.to_stat(4096);
  CHECK(st.st_atim.tv_sec == -1);
  CHECK(st.st_atim.tv_nsec == 999999999);
  CHECK(st.st_mtim.tv_sec == -2);
  CHECK(st.st_mtim.tv_nsec == 500000000);
  CHECK(st.st_ctim.tv_sec == 0);
  CHECK(st.st_ctim.tv_nsec == 0);

  a.rdev = 259;
  CHECK(a.to_stat(4096).st_rdev == 259);
}

TEST_SUITE_END();
