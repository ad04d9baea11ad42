#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>

#include "snap/fsck_analysis.hpp"
#include "util/text.hpp"

using namespace redisfs;

TEST_SUITE_BEGIN("core::text");

TEST_CASE("shown text is bounded and one line") {
  std::string huge(1 << 20, 'k');
  std::string s = quoted(huge);
  CHECK(s.size() == k_shown_max + 5);  // quotes and "..."
  CHECK(s.ends_with("...'"));
  CHECK(quoted("a\nb\x01\xff") == "'a\\x0ab\\x01\\xff'");
  CHECK(quoted("it's") == "'it\\'s'");
  CHECK(shown("back\\slash", 100, 0) == "back\\\\slash");
  CHECK(shown("abcdef", 3, 0) == "abc...");
}

TEST_CASE("parse_u64 takes a whole decimal number") {
  std::uint64_t n = 0;
  CHECK((parse_u64("0", n) && n == 0));
  CHECK((parse_u64("007", n) && n == 7));
  CHECK((parse_u64("18446744073709551615", n) && n == UINT64_MAX));
  CHECK_FALSE(parse_u64("18446744073709551616", n));
  CHECK_FALSE(parse_u64("", n));
  CHECK_FALSE(parse_u64("-1", n));
  CHECK_FALSE(parse_u64("+1", n));
  CHECK_FALSE(parse_u64(" 1", n));
  CHECK_FALSE(parse_u64("1 ", n));
  CHECK_FALSE(parse_u64("12x", n));
}

TEST_CASE("random_hex is lowercase hex of the bytes asked for") {
  std::string a = random_hex(16);
  CHECK(a.size() == 32);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(random_hex(16) != a);
  CHECK(random_hex(0).empty());
}

TEST_CASE("lower_hex is two lowercase digits a byte, high nibble first") {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff, 0x10};
  CHECK(lower_hex(bytes) == "000fa5ff10");
  CHECK(lower_hex({}).empty());
}

TEST_CASE("errno_text names the error, or its number") {
  CHECK(errno_text(ENOENT) == "No such file or directory");
  CHECK(errno_text(EIO) == "Input/output error");
  CHECK(errno_text(123456) == "errno 123456");
}

TEST_SUITE_END();

TEST_CASE("fsck's printable keeps printable UTF-8 and shows every other byte as \\xNN") {
  using redisfs::fsck_detail::printable;
  CHECK(printable("plain name") == "plain name");
  CHECK(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(printable("a\\b") == "a\\\\b");
  CHECK(printable("tab\there") == "tab\\x09here");
  CHECK(printable("\xc2\x85") == "\\xc2\\x85");          // U+0085, a C1 control
  CHECK(printable("\xc2\xa0") == "\xc2\xa0");            // U+00A0, the first printable after them
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");          // overlong
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
  CHECK(printable("\xe2\x82") == "\\xe2\\x82");          // cut short
  CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
}

TEST_CASE("counted says one thing in the singular, any other count in the plural") {
  CHECK(redisfs::counted(1, "inode", "inodes") == "1 inode");
  CHECK(redisfs::counted(0, "inode", "inodes") == "0 inodes");
  CHECK(redisfs::counted(2, "changed directory", "changed directories") == "2 changed directories");
}
