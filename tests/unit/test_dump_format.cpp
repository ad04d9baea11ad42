// The dump format: writer -> reader round trips (binary values, empty values,
// hashes in pieces, large values), the exact layout, and a hostile-input
// table: truncation at every offset, every bit flipped, wrong versions and
// types, bad numbers, trailing data, missing trailer, checksum mismatch,
// limits, and a Sink that gives up half way.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "snap/dump_format.hpp"
#include "snap/dump_rules.hpp"

namespace dump = redisfs::dump;
using redisfs::parse_dump_time_ns;
using redisfs::Status;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Rec {
  std::string key;
  bool hash = false;
  std::string value;
  Pairs pairs;
  bool operator==(const Rec&) const = default;
};

class RecordingSink : public dump::Sink {
 public:
  Status on_header(const dump::Header& h) override {
    header = h;
    return step("header");
  }
  Status on_string(std::string_view key, std::string&& value) override {
    recs.push_back(Rec{std::string(key), false, std::move(value), {}});
    return step("string");
  }
  Status on_hash_begin(std::string_view key) override {
    recs.push_back(Rec{std::string(key), true, {}, {}});
    open_hash = true;
    return step("hash_begin");
  }
  Status on_hash_fields(std::string_view key, Pairs&& pairs) override {
    CHECK(open_hash);
    CHECK(key == recs.back().key);
    CHECK(!pairs.empty());
    max_batch = std::max(max_batch, pairs.size());
    for (auto& p : pairs) {
      recs.back().pairs.push_back(std::move(p));
    }
    return step("hash_fields");
  }
  Status on_hash_end(std::string_view key) override {
    CHECK(open_hash);
    CHECK(key == recs.back().key);
    open_hash = false;
    return step("hash_end");
  }

  dump::Header header;
  std::vector<Rec> recs;
  size_t calls = 0;
  size_t fail_at = SIZE_MAX;  // fail the call with this index
  size_t max_batch = 0;
  bool open_hash = false;

 private:
  Status step(const char* what) {
    if (calls++ == fail_at) {
      return redisfs::make_error(EIO, std::string("sink gave up at ") + what);
    }
    return {};
  }
};

std::string all_bytes() {
  std::string s;
  for (int c = 0; c < 256; ++c) {
    s.push_back(static_cast<char>(c));
  }
  return s;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>(rng());
  }
  return s;
}

dump::Header test_header() {
  dump::Header h;
  h.prefix = "SKX";
  h.created = "2026-11-29T19:40:00.123Z";
  h.tool = "redisfs-snap 0.1.0";
  return h;
}

// Writes recs; hashes with more than one pair are written in `pieces` calls.
std::string write_dump(const std::vector<Rec>& recs, size_t pieces = 1, dump::Trailer* trailer_out = nullptr) {
  std::ostringstream out;
  dump::Writer w(out, test_header());
  REQUIRE(w.begin().ok());
  for (const auto& r : recs) {
    if (!r.hash) {
      REQUIRE(w.write_string(r.key, r.value).ok());
      continue;
    }
    REQUIRE(w.begin_hash(r.key).ok());
    const size_t n = r.pairs.size();
    size_t done = 0;
    for (size_t i = 0; i < pieces; ++i) {
      const size_t upto = i + 1 == pieces ? n : std::min(n, done + (n + pieces - 1) / pieces);
      REQUIRE(w.hash_fields(std::span(r.pairs).subspan(done, upto - done)).ok());
      done = upto;
    }
    REQUIRE(w.end_hash().ok());
  }
  auto t = w.finish();
  REQUIRE(t.ok());
  if (trailer_out != nullptr) {
    *trailer_out = *t;
  }
  return out.str();
}

redisfs::Result<dump::Trailer> read_dump(const std::string& text, RecordingSink& sink, dump::ReadLimits limits = {}) {
  std::istringstream in(text);
  return dump::read(in, sink, limits);
}

std::vector<Rec> small_records() {
  return {
      Rec{"SB", true, {}, {{"block_size", "65536"}, {"version", "1"}}},
      Rec{"DIR:1", true, {}, {{"a.txt", "2"}, {"\xff", "3"}}},
      Rec{"BLK:2:0", false, "hello", {}},
      Rec{"BLK:3:0", false, std::string("\0\1\2", 3), {}},
  };
}

void check_rejected(const std::string& text, const std::string& expect, dump::ReadLimits limits = {}) {
  RecordingSink sink;
  auto r = read_dump(text, sink, limits);
  INFO("input: " << text.substr(0, 400));
  REQUIRE_FALSE(r.ok());
  INFO("message: " << r.error().message);
  CHECK(r.code() == EINVAL);
  CHECK(r.error().message.rfind("dump: ", 0) == 0);
  CHECK(r.error().message.find('\n') == std::string::npos);
  CHECK(r.error().message.find(expect) != std::string::npos);
}

const std::string k_head =
    R"({"format":"redisfs-dump","version":1,"prefix":"SKX","created":"2026-11-29T19:40:00.123Z","tool":"t",)";
const std::string k_empty_trailer =
    R"("trailer":{"records":0,"bytes":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}})";

std::string doc_with_records(const std::string& records) {
  return k_head + R"("records":[)" + records + "]," + k_empty_trailer;
}

}  // namespace

TEST_CASE("dump: the example document, byte for byte") {
  dump::Trailer trailer;
  const std::string text = write_dump(small_records(), 1, &trailer);
  const std::string expected =
      "{\"format\":\"redisfs-dump\",\"version\":1,\"prefix\":\"SKX\",\"created\":\"2026-11-29T19:40:00.123Z\","
      "\"tool\":\"redisfs-snap 0.1.0\",\n"
      " \"records\":[\n"
      "  {\"key\":\"SB\",\"hash\":[[\"block_size\",\"65536\"],[\"version\",\"1\"]]},\n"
      "  {\"key\":\"DIR:1\",\"hash\":[[\"a.txt\",\"2\"],[{\"base64\":\"/w==\"},\"3\"]]},\n"
      "  {\"key\":\"BLK:2:0\",\"string\":\"hello\"},\n"
      "  {\"key\":\"BLK:3:0\",\"string\":{\"base64\":\"AAEC\"}}\n"
      " ],\n"
      " \"trailer\":{\"records\":4,\"bytes\":39,\"sha256\":\"" +
      trailer.sha256 + "\"}}\n";
  CHECK(text == expected);
  CHECK(trailer.records == 4);
  CHECK(trailer.bytes == 10 + 5 + 7 + 1 + 5 + 1 + 1 + 1 + 5 + 3);

  dump::ContentDigest d;
  d.hash_begin("SB");
  d.hash_pair("block_size", "65536");
  d.hash_pair("version", "1");
  d.hash_end();
  d.hash_begin("DIR:1");
  d.hash_pair("a.txt", "2");
  d.hash_pair("\xff", "3");
  d.hash_end();
  d.string_record("BLK:2:0", "hello");
  d.string_record("BLK:3:0", std::string("\0\1\2", 3));
  CHECK(d.hex_digest() == trailer.sha256);
}

TEST_CASE("dump: content digest follows the documented framing") {
  // "K\0s" + u64le(2) + "v" "v" ; "H\0h" 'p' u64le(1) "f" u64le(0) 'e' u64le(1)
  std::string framed;
  framed += std::string("K\0s", 3) + std::string("\2\0\0\0\0\0\0\0", 8) + "vv";
  framed += std::string("H\0h", 3) + "p" + std::string("\1\0\0\0\0\0\0\0", 8) + "f" +
            std::string("\0\0\0\0\0\0\0\0", 8) + "e" + std::string("\1\0\0\0\0\0\0\0", 8);
  dump::ContentDigest d;
  d.string_record("K", "vv");
  d.hash_begin("H");
  d.hash_pair("f", "");
  d.hash_end();
  CHECK(d.hex_digest() == redisfs::sha256_hex(framed));
}

TEST_CASE("dump: round trip of binary, empty, pieced and large records") {
  Pairs big_hash;
  for (int i = 0; i < 3000; ++i) {
    big_hash.emplace_back("entry-" + std::to_string(i), std::to_string(i * 7));
  }
  big_hash.emplace_back(all_bytes(), std::string("\0", 1));
  big_hash.emplace_back("", "");
  std::vector<Rec> recs = {
      Rec{"SB", true, {}, {{"block_size", "65536"}, {"root", "1"}}},
      Rec{"ALL", false, all_bytes(), {}},
      Rec{"BAD-UTF8", false, "ok\xc0\x80\xed\xa0\x80\xff", {}},
      Rec{"NULS", false, std::string(100, '\0'), {}},
      Rec{"MIXED-NUL", false, std::string("a\0b", 3), {}},
      Rec{"TEXT", false, "quote \" backslash \\ newline \n tab \t del \x7f caf\xc3\xa9 \xf0\x9f\x98\x80 /", {}},
      Rec{"EMPTY", false, "", {}},
      Rec{"EMPTY-HASH", true, {}, {}},
      Rec{"DIR:1", true, {}, big_hash},
      Rec{"BLK:9:0", false, random_bytes(1 << 20, 1), {}},
      Rec{"BLK:9:1", false, std::string(1 << 20, 'x'), {}},
      Rec{"K\xc3\xa9y", false, "unicode key", {}},
  };
  for (size_t pieces : {1, 3}) {
    CAPTURE(pieces);
    dump::Trailer written;
    const std::string text = write_dump(recs, pieces, &written);

    RecordingSink sink;
    auto r = read_dump(text, sink);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(sink.recs == recs);
    CHECK(sink.header.prefix == "SKX");
    CHECK(sink.header.created == "2026-11-29T19:40:00.123Z");
    CHECK(sink.header.tool == "redisfs-snap 0.1.0");
    CHECK(r->records == recs.size());
    CHECK(r->records == written.records);
    CHECK(r->bytes == written.bytes);
    CHECK(r->sha256 == written.sha256);
    CHECK(sink.max_batch <= dump::k_hash_batch_pairs);
    CHECK(sink.max_batch > 0);

    auto j = nlohmann::json::parse(text);
    CHECK(j["format"] == "redisfs-dump");
    CHECK(j["version"] == 1);
    CHECK(j["records"].size() == recs.size());
    CHECK(j["records"][1]["string"].is_object());
    CHECK(j["records"][5]["string"] == recs[5].value);
    CHECK(j["records"][7]["hash"].empty());
    CHECK(j["trailer"]["records"] == recs.size());

    size_t lines = 0;
    for (char c : text) {
      lines += c == '\n';
    }
    CHECK(lines == recs.size() + 4);
  }
}

TEST_CASE("dump: pieces of a hash give the same document as one call") {
  std::vector<Rec> recs = {Rec{"H", true, {}, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}}};
  CHECK(write_dump(recs, 1) == write_dump(recs, 3));
  CHECK(write_dump(recs, 1) == write_dump(recs, 4));
}

TEST_CASE("dump: a dump with no records") {
  const std::string text = write_dump({});
  RecordingSink sink;
  auto r = read_dump(text, sink);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->records == 0);
  CHECK(r->sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(nlohmann::json::parse(text)["records"].empty());
}

TEST_CASE("dump: record_count, the header's announced count, is read when given and optional") {
  std::ostringstream out;
  dump::Header counted = test_header();
  counted.tool = "t";
  counted.record_count = 2;
  dump::Writer w(out, counted);
  REQUIRE(w.begin().ok());
  REQUIRE(w.write_string("BLK:2:0", "a").ok());
  REQUIRE(w.write_string("BLK:2:1", "b").ok());
  REQUIRE(w.finish().ok());
  const std::string text = out.str();
  CHECK(text.find(R"("tool":"t","record_count":2,)") != std::string::npos);
  CHECK(nlohmann::json::parse(text)["record_count"] == 2);
  RecordingSink sink;
  auto r = read_dump(text, sink);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(sink.header.record_count == 2);

  RecordingSink old;  // a dump written before record_count
  REQUIRE(read_dump(doc_with_records(""), old).ok());
  CHECK(old.header.record_count == 0);
  check_rejected(k_head + R"("record_count":"2","records":[],)" + k_empty_trailer, "a string");
  check_rejected(k_head + R"("record_count":-1,"records":[],)" + k_empty_trailer, "record_count");
  check_rejected(k_head + R"("record_count":1,"record_count":1,"records":[],)" + k_empty_trailer,
                 "duplicate header member \"record_count\"");
}

TEST_CASE("dump: the reader accepts other encodings of the same content") {
  // base64 for text, escapes for plain characters, whitespace, reordered
  // header members after format, unknown header and trailer scalars.
  dump::Trailer t;
  write_dump({Rec{"A", false, "hi", {}}, Rec{"H", true, {}, {{"f", "v"}}}}, 1, &t);
  const std::string text = "\n\t {\"format\" : \"redisfs-dump\", \"tool\":\"x\", \"extra\": 3.5, \"note\":\"n\",\n"
                           "\"created\":\"c\",\"version\":1,\"prefix\":\"P\",\r\n \"records\" : [ {\"key\":\"\\u0041\","
                           "\"string\":{\"base64\":\"aGk=\"}} , {\"key\":\"H\",\"hash\":[[\"\\u0066\",{\"base64\":\"dg==\"}]]}"
                           " ] , \"trailer\" : {\"sha256\":\"" +
                           t.sha256 + "\",\"future\":\"x\",\"bytes\":" + std::to_string(t.bytes) +
                           ",\"records\":2} } \n\n";
  RecordingSink sink;
  auto r = read_dump(text, sink);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(sink.recs == std::vector<Rec>{Rec{"A", false, "hi", {}}, Rec{"H", true, {}, {{"f", "v"}}}});
  CHECK(sink.header.prefix == "P");
}

TEST_CASE("dump: truncation at every byte offset is rejected") {
  const std::string text = write_dump(small_records());
  const size_t closing = text.rfind('}');
  for (size_t n = 0; n < text.size(); ++n) {
    CAPTURE(n);
    RecordingSink sink;
    auto r = read_dump(text.substr(0, n), sink);
    if (n > closing) {
      CHECK(r.ok());
      continue;
    }
    REQUIRE_FALSE(r.ok());
    const std::string& m = r.error().message;
    INFO(m);
    CHECK(r.code() == EINVAL);
    CHECK((m.find("dump: truncated at byte " + std::to_string(n) + " (") == 0 || m == "dump: empty input (no JSON document)"));
  }
  check_rejected(text.substr(0, text.find("\"trailer\"")), "(document ends before the trailer)");
  check_rejected(text.substr(0, closing), "(document ends after the trailer, before its closing brace)");
}

TEST_CASE("dump: every single-bit flip is rejected or reads the same records") {
  const std::vector<Rec> recs = small_records();
  const std::string text = write_dump(recs);
  size_t accepted = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = text;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      RecordingSink sink;
      auto r = read_dump(flipped, sink);
      if (r.ok()) {
        ++accepted;
        CAPTURE(i);
        CAPTURE(bit);
        CHECK(sink.recs == recs);
      } else {
        CHECK(r.code() == EINVAL);
        CHECK(r.error().message.rfind("dump: ", 0) == 0);
      }
    }
  }
  MESSAGE(accepted << " of " << text.size() * 8 << " flips still read the same records");
}

TEST_CASE("dump: hostile documents are rejected with a precise message") {
  const std::string one = R"({"key":"A","string":"x"})";
  struct Case {
    std::string name;
    std::string text;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"empty", "", "dump: empty input"},
      {"whitespace only", "  \n ", "dump: truncated at byte 4"},
      {"not json", "hello", "dump: not JSON at byte 1: "},
      {"not json later", k_head + R"("records":[{"key":"A",,]})", "dump: not JSON at byte "},
      {"array document", "[1,2]", "at byte 1: expected a JSON object (the dump document), found an array"},
      {"format not first", R"({"version":1,"format":"redisfs-dump"})", "not a redisfs dump: the first member is \"version\""},
      {"wrong format", R"({"format":"tarball","version":1})", "not a redisfs dump: \"format\" is \"tarball\""},
      {"wrong version", R"({"format":"redisfs-dump","version":3,"prefix":"SKX"})",
       "dump: unsupported dump version 3 (this redisfs-snap reads versions 1 and 2)"},
      {"version 0", R"({"format":"redisfs-dump","version":0})", "unsupported dump version 0"},
      {"version string", R"({"format":"redisfs-dump","version":"1"})", "expected an integer for \"version\", found a string"},
      {"version float", R"({"format":"redisfs-dump","version":1.0})", "\"version\" must be an integer from 0 to 2^53, found 1.0"},
      {"version negative", R"({"format":"redisfs-dump","version":-1})", "must be an integer from 0 to 2^53, found -1"},
      {"version huge", R"({"format":"redisfs-dump","version":18446744073709551616})", "must be an integer from 0 to 2^53"},
      {"duplicate header", R"({"format":"redisfs-dump","version":1,"version":1})", "duplicate header member \"version\""},
      {"prefix number", R"({"format":"redisfs-dump","version":1,"prefix":7})", "expected a string for \"prefix\", found a number"},
      {"unknown header object", R"({"format":"redisfs-dump","version":1,"x":{}})",
       "expected a string or a number for header member \"x\", found an object"},
      {"unknown header bool", R"({"format":"redisfs-dump","version":1,"x":true})", "found a boolean"},
      {"no created", R"({"format":"redisfs-dump","version":1,"prefix":"P","records":[]})",
       "the header has no \"created\" before \"records\""},
      {"records not array", k_head + R"("records":{}})", "expected an array for \"records\", found an object"},
      {"record not object", k_head + R"("records":[[1]]})", "expected a record object or the end of \"records\", found an array"},
      {"string where hash expected", doc_with_records(R"({"key":"A","hash":"abc"})"),
       "record 1 (key \"A\"): expected an array of [field, value] pairs for \"hash\", found a string"},
      {"hash where string expected", doc_with_records(R"({"key":"A","string":[["a","b"]]})"),
       "record 1 (key \"A\"): expected a string or {\"base64\": \"...\"} for \"string\", found an array"},
      {"number as key", doc_with_records(one + R"(,{"key":5,"string":"x"})"),
       "record 2: expected a string for \"key\", found a number"},
      {"null as key", doc_with_records(R"({"key":null,"string":"x"})"), "expected a string for \"key\", found null"},
      {"empty key", doc_with_records(R"({"key":"","string":"x"})"), "record 1: empty key"},
      {"nul in key", doc_with_records(R"({"key":"a\u0000b","string":"x"})"), "contains a NUL byte"},
      {"key not first", doc_with_records(R"({"string":"x","key":"A"})"), "a record must start with \"key\", found member \"string\""},
      {"empty record", doc_with_records("{}"), "empty record"},
      {"neither", doc_with_records(R"({"key":"A"})"), "record 1 (key \"A\"): the record has neither \"string\" nor \"hash\""},
      {"both", doc_with_records(R"({"key":"A","string":"x","hash":[]})"), "exactly one of \"string\" or \"hash\", found a second \"hash\""},
      {"extra member", doc_with_records(R"({"key":"A","string":"x","ttl":5})"), "unexpected member \"ttl\""},
      {"duplicate key", doc_with_records(R"({"key":"A","key":"B"})"), "duplicate \"key\""},
      {"pair of 3", doc_with_records(R"({"key":"H","hash":[["a","b","c"]]})"),
       "record 1 (key \"H\"): hash pair must be [field, value]"},
      {"pair of 3 objects", doc_with_records(R"({"key":"H","hash":[["a","b",{"base64":""}]]})"), "hash pair must be [field, value]"},
      {"pair of 3 numbers", doc_with_records(R"({"key":"H","hash":[["a","b",1]]})"), "hash pair must be [field, value]"},
      {"pair of 1", doc_with_records(R"({"key":"H","hash":[["a"]]})"), "hash pair must be [field, value]"},
      {"pair of 0", doc_with_records(R"({"key":"H","hash":[[]]})"), "hash pair must be [field, value]"},
      {"pair not array", doc_with_records(R"({"key":"H","hash":["a"]})"),
       "expected a [field, value] pair or the end of \"hash\", found a string"},
      {"pair as object", doc_with_records(R"({"key":"H","hash":[{"a":"b"}]})"), "found an object"},
      {"number field", doc_with_records(R"({"key":"H","hash":[[1,"b"]]})"),
       "expected a string or {\"base64\": \"...\"} for a hash field, found a number"},
      {"base64 extra member", doc_with_records(R"({"key":"A","string":{"base64":"AAEC","x":1}})"),
       "a {\"base64\": \"...\"} object must have no other member, found \"x\""},
      {"base64 wrong name", doc_with_records(R"({"key":"A","string":{"hex":"00"}})"), "expected {\"base64\": \"...\"}, found member \"hex\""},
      {"base64 empty object", doc_with_records(R"({"key":"A","string":{}})"), "found an empty object"},
      {"base64 number", doc_with_records(R"({"key":"A","string":{"base64":5}})"), "expected a string for \"base64\", found a number"},
      {"invalid base64 length", doc_with_records(R"({"key":"A","string":{"base64":"AAE"}})"),
       "record 1 (key \"A\"): invalid base64: length 3 is not a multiple of 4"},
      {"invalid base64 char", doc_with_records(R"({"key":"A","hash":[["f",{"base64":"A*EC"}]]})"),
       "invalid base64: unexpected '*' at offset 1"},
      {"non-canonical base64", doc_with_records(R"({"key":"A","string":{"base64":"/x=="}})"), "not the canonical encoding"},
      {"invalid utf8 in json", doc_with_records("{\"key\":\"A\",\"string\":\"\xff\"}"), "dump: not JSON at byte "},
      {"lone surrogate escape", doc_with_records(R"({"key":"A","string":"\ud800"})"), "dump: not JSON at byte "},
      {"missing trailer", k_head + R"("records":[]})", "missing trailer"},
      {"member after records", k_head + R"("records":[],"extra":1})", "unexpected member \"extra\" after \"records\""},
      {"records after trailer", k_head + R"("records":[],)" + k_empty_trailer.substr(0, k_empty_trailer.size() - 1) +
                                    R"(,"records":[]})",
       "\"records\" after the trailer"},
      {"trailer before records", k_head + R"("trailer":{}})", "\"trailer\" before \"records\""},
      {"trailer not object", k_head + R"("records":[],"trailer":[]})", "expected an object for \"trailer\", found an array"},
      {"trailer lacks sha", k_head + R"("records":[],"trailer":{"records":0,"bytes":0}})", "the trailer has no \"sha256\""},
      {"trailer records string", k_head + R"("records":[],"trailer":{"records":"0"}})",
       "trailer: expected an integer for \"records\", found a string"},
      {"trailer huge records", k_head + R"("records":[],"trailer":{"records":9007199254740993}})",
       "trailer: \"records\" must be an integer from 0 to 2^53, found 9007199254740993"},
      {"trailer overflow records", k_head + R"("records":[],"trailer":{"records":99999999999999999999999}})",
       "\"records\" must be an integer from 0 to 2^53"},
      {"trailer 1e400", k_head + R"("records":[],"trailer":{"bytes":1e400}})", "dump: not JSON at byte 137: number overflow parsing '1e400'"},
      {"trailer 1e20", k_head + R"("records":[],"trailer":{"bytes":1e20}})", "\"bytes\" must be an integer from 0 to 2^53, found 1e20"},
      {"trailer fraction", k_head + R"("records":[],"trailer":{"bytes":0.5}})", "found 0.5"},
      {"trailer negative", k_head + R"("records":[],"trailer":{"bytes":-3}})", "found -3"},
      {"trailer bad sha", k_head + R"("records":[],"trailer":{"sha256":"abc"}})", "\"sha256\" must be 64 lowercase hex digits"},
      {"trailer duplicate", k_head + R"("records":[],"trailer":{"bytes":0,"bytes":0}})", "duplicate trailer member \"bytes\""},
      {"trailer unknown object", k_head + R"("records":[],"trailer":{"x":[]}})", "found an array"},
      {"record count mismatch", k_head + R"("records":[],"trailer":{"records":1,"bytes":0,"sha256":")" +
                                    std::string(64, '0') + "\"}}",
       "the trailer says 1 record, the document holds 0"},
      {"bytes mismatch", doc_with_records(one), "the trailer says 0 records, the document holds 1"},
      {"checksum mismatch", k_head + R"("records":[],"trailer":{"records":0,"bytes":0,"sha256":")" +
                                std::string(64, 'a') + "\"}}",
       "dump: checksum mismatch: trailer says " + std::string(64, 'a') +
           ", content hashes to e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"trailing garbage", doc_with_records("") + "x", "unexpected data after the end of the document"},
      {"second document", doc_with_records("") + "\n{}", "unexpected data after the end of the document"},
      {"trailing comma", doc_with_records("") + ",", "unexpected data after the end of the document"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    check_rejected(c.text, c.expect);
  }
}

TEST_CASE("dump: semantic errors name the byte offset of the offending token") {
  const std::string text = doc_with_records(R"({"key":"A","string":"x"},{"key":"B","hash":"abc"})");
  const size_t end_of_token = text.find("\"abc\"") + 5;
  check_rejected(text, "dump: at byte " + std::to_string(end_of_token) + ": record 2 (key \"B\"): ");
}

TEST_CASE("dump: bytes mismatch and hash checksum mismatch after edits") {
  dump::Trailer t;
  std::string text = write_dump({Rec{"A", false, "hello", {}}}, 1, &t);
  std::string edited = text;
  edited.replace(edited.find("hello"), 5, "hellO");
  check_rejected(edited, "dump: checksum mismatch: trailer says " + t.sha256 + ", content hashes to ");
  edited = text;
  edited.replace(edited.find("hello"), 5, "hell");
  check_rejected(edited, "the trailer says 5 bytes, the records hold 4");
}

TEST_CASE("dump: value limits") {
  const std::string text = write_dump({Rec{"A", false, std::string(100, 'v'), {}},
                                       Rec{"B", false, std::string(100, '\xff'), {}},
                                       Rec{"H", true, {}, {{std::string(100, 'f'), "v"}}}});
  RecordingSink ok_sink;
  CHECK(read_dump(text, ok_sink, dump::ReadLimits{100}).ok());
  RecordingSink unlimited;
  CHECK(read_dump(text, unlimited, dump::ReadLimits{UINT64_MAX}).ok());
  CHECK(unlimited.recs.size() == 3);
  check_rejected(text, "record 1 (key \"A\"): string value of 100 bytes exceeds the limit of 99 bytes",
                 dump::ReadLimits{99});
  const std::string b64 = write_dump({Rec{"B", false, std::string(100, '\xff'), {}}});
  check_rejected(b64, "record 1 (key \"B\"): base64 data of ", dump::ReadLimits{50});
  const std::string field = write_dump({Rec{"H", true, {}, {{std::string(100, 'f'), "v"}}}});
  check_rejected(field, "hash field of 100 bytes exceeds the limit of 99 bytes", dump::ReadLimits{99});

  // A runaway token stops the parser long before it is held in memory whole.
  const std::string runaway = doc_with_records("{\"key\":\"A\",\"string\":\"" + std::string(3 << 20, 'z') + "\"}");
  check_rejected(runaway, "a JSON token is too long (the limit for one value is 10 bytes)", dump::ReadLimits{10});
}

TEST_CASE("dump: a failing Sink stops the read at once") {
  const std::string text = write_dump(small_records());
  RecordingSink counting;
  REQUIRE(read_dump(text, counting).ok());
  REQUIRE(counting.calls == 9);
  for (size_t fail_at = 0; fail_at < counting.calls; ++fail_at) {
    CAPTURE(fail_at);
    RecordingSink sink;
    sink.fail_at = fail_at;
    auto r = read_dump(text, sink);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == EIO);
    CHECK(sink.calls == fail_at + 1);
    CHECK(r.error().message.find("dump: at byte ") == 0);
    CHECK(r.error().message.find("sink gave up at ") != std::string::npos);
  }
  RecordingSink sink;
  sink.fail_at = 7;  // on_string of BLK:2:0
  auto r = read_dump(text, sink);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("record 3 (key \"BLK:2:0\"): sink gave up at string") != std::string::npos);
}

TEST_CASE("dump: writer misuse and stream failures") {
  std::ostringstream out;
  dump::Writer w(out, test_header());
  CHECK(w.write_string("A", "x").code() == EINVAL);
  CHECK(w.finish().code() == EINVAL);
  REQUIRE(w.begin().ok());
  CHECK(w.begin().code() == EINVAL);
  CHECK(w.write_string("", "x").code() == EINVAL);
  CHECK(w.write_string(std::string("a\0b", 3), "x").code() == EINVAL);
  CHECK(w.write_string("\xff", "x").code() == EINVAL);
  CHECK(w.hash_fields({}).code() == EINVAL);
  CHECK(w.end_hash().code() == EINVAL);
  REQUIRE(w.begin_hash("H").ok());
  CHECK(w.write_string("A", "x").code() == EINVAL);
  CHECK(w.begin_hash("G").code() == EINVAL);
  CHECK(w.finish().code() == EINVAL);
  REQUIRE(w.end_hash().ok());
  auto t = w.finish();
  REQUIRE(t.ok());
  CHECK(t->records == 1);
  CHECK(w.write_string("A", "x").code() == EINVAL);
  RecordingSink sink;
  CHECK(read_dump(out.str(), sink).ok());

  std::ostringstream bad_header_out;
  dump::Header bad = test_header();
  bad.prefix = "\xff";
  bad.created = "";
  bad.tool = "";
  dump::Writer bad_header(bad_header_out, bad);
  CHECK(bad_header.begin().code() == EINVAL);

  std::ostream broken(nullptr);
  dump::Writer failing(broken, test_header());
  REQUIRE(failing.begin().ok());
  CHECK(failing.write_string("A", std::string(1 << 17, 'x')).code() == EIO);
  CHECK(failing.write_string("B", "x").code() == EIO);
  CHECK(failing.finish().code() == EIO);

  struct FullBuf : std::streambuf {
    int_type overflow(int_type) override { return traits_type::eof(); }
  } full;
  std::ostream throwing(&full);
  throwing.exceptions(std::ios::badbit | std::ios::failbit);
  dump::Writer w2(throwing, test_header());
  REQUIRE(w2.begin().ok());
  auto r = w2.finish();
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == EIO);
  CHECK(w2.write_string("A", "x").code() == EIO);
}

TEST_CASE("dump: text full of control bytes is written as base64, plain text as a string") {
  const std::string text = write_dump({Rec{"Z", false, std::string(64, '\0'), {}},
                                       Rec{"T", false, "line one\nline two\n", {}}});
  CHECK(text.find("{\"key\":\"Z\",\"string\":{\"base64\":\"") != std::string::npos);
  CHECK(text.find("{\"key\":\"T\",\"string\":\"line one\\nline two\\n\"}") != std::string::npos);
}

namespace {

// Deletion records, on top of what RecordingSink keeps.
class DeleteSink : public RecordingSink {
 public:
  Status on_delete(std::string_view key) override {
    deleted.emplace_back(key);
    return {};
  }
  std::vector<std::string> deleted;
};

const std::string k_base_id = "0123456789abcdef0123456789abcdef";
const std::string k_base_digest(64, 'a');

dump::Header incremental_header() {
  dump::Header h = test_header();
  h.base_snapshot_id = k_base_id;
  h.base_digest = k_base_digest;
  return h;
}

}  // namespace

TEST_CASE("dump: an incremental dump (version 2) carries its base and deletion records") {
  std::ostringstream out;
  dump::Writer w(out, incremental_header());
  REQUIRE(w.begin().ok());
  Pairs sb{{"block_size", "65536"}};
  REQUIRE(w.begin_hash("SB").ok());
  REQUIRE(w.hash_fields(sb).ok());
  REQUIRE(w.end_hash().ok());
  REQUIRE(w.write_string("BLK:2:0", "new").ok());
  REQUIRE(w.write_delete("BLK:2:1").ok());
  REQUIRE(w.write_delete("INODE:9").ok());
  auto t = w.finish();
  REQUIRE(t.ok());
  const std::string text = out.str();
  CHECK(text.find(R"("version":2)") != std::string::npos);
  CHECK(text.find(R"({"key":"BLK:2:1","delete":true})") != std::string::npos);
  CHECK(t->records == 4);

  // The digest frames a deletion as key, 0x00, 'd'.
  dump::ContentDigest d;
  d.hash_begin("SB");
  d.hash_pair("block_size", "65536");
  d.hash_end();
  d.string_record("BLK:2:0", "new");
  d.delete_record("BLK:2:1");
  d.delete_record("INODE:9");
  CHECK(d.hex_digest() == t->sha256);

  DeleteSink sink;
  std::istringstream in(text);
  auto r = dump::read(in, sink);
  REQUIRE(r.ok());
  CHECK(sink.header.version == 2);
  CHECK(sink.header.base_snapshot_id == k_base_id);
  CHECK(sink.header.base_digest == k_base_digest);
  CHECK(sink.deleted == std::vector<std::string>{"BLK:2:1", "INODE:9"});
  CHECK(sink.recs.size() == 2);

  // A reader of full dumps only (the default on_delete) refuses it.
  RecordingSink full;
  std::istringstream again(text);
  auto refused = dump::read(again, full);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("full dumps only") != std::string::npos);
}

TEST_CASE("dump: a full dump stays version 1 and refuses deletions and base members") {
  std::ostringstream out;
  dump::Writer w(out, test_header());
  REQUIRE(w.begin().ok());
  CHECK_FALSE(w.write_delete("BLK:1:0").ok());
  CHECK(write_dump(small_records()).find(R"("version":1,)") != std::string::npos);
  check_rejected(doc_with_records(R"({"key":"BLK:1:0","delete":true})"), "a deletion record in a full dump");
  check_rejected(k_head + R"("base_snapshot_id":")" + k_base_id + R"(","records":[],)" + k_empty_trailer,
                 "belong to an incremental dump");
}

TEST_CASE("dump: version 2 needs a well-formed base") {
  const std::string head2 =
      R"({"format":"redisfs-dump","version":2,"prefix":"SKX","created":"2026-11-29T19:40:00.123Z","tool":"t",)";
  check_rejected(head2 + R"("records":[],)" + k_empty_trailer, "needs \"base_snapshot_id\" and \"base_digest\"");
  check_rejected(head2 + R"("base_snapshot_id":"xyz","base_digest":")" + k_base_digest + R"(","records":[],)" +
                     k_empty_trailer,
                 "32 lowercase hex digits");
  check_rejected(head2 + R"("base_snapshot_id":")" + k_base_id + R"(","base_digest":"00","records":[],)" +
                     k_empty_trailer,
                 "64 lowercase hex digits");
  check_rejected(head2 + R"("base_snapshot_id":")" + k_base_id + R"(","base_digest":")" + k_base_digest +
                     R"(","records":[{"key":"BLK:1:0","delete":false}],)" + k_empty_trailer,
                 "\"delete\" must be true");
  check_rejected(R"({"format":"redisfs-dump","version":3,"prefix":"SKX","created":"x","records":[],)" +
                     k_empty_trailer,
                 "unsupported dump version 3");
}

TEST_CASE("a dump header's time: parsed, and a hostile one is no time at all (no overflow)") {
  CHECK(parse_dump_time_ns("2026-11-29T19:40:00.123Z") == 1795981200123000000LL);
  CHECK(parse_dump_time_ns("1970-01-01T00:00:00.000Z") == 0);
  CHECK(parse_dump_time_ns("2262-01-01T00:00:00.000Z") > 0);
  CHECK(parse_dump_time_ns("2263-01-01T00:00:00.000Z") == 0);  // past what ns since 1970 hold in 64 bits
  CHECK(parse_dump_time_ns("9999-12-31T23:59:59.999Z") == 0);
  CHECK(parse_dump_time_ns("1969-12-31T23:59:59.999Z") == 0);
  CHECK(parse_dump_time_ns("yesterday") == 0);
}
