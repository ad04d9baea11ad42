// JsonReader: the grammar, the positions, the token limit, and a
// differential test against nlohmann::json (the parser it replaced in the
// dump reader): on thousands of mutated documents both must accept the same
// texts, and the events must rebuild the same value.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <vector>

#include "util/json_reader.hpp"

using namespace redisfs;
using Json = nlohmann::json;

namespace {

// Rebuilds the document from the events (strings kept as bytes).
class Builder final : public JsonHandler {
 public:
  Json root;
  std::uint64_t error_at = 0;
  std::string reason;
  bool failed = false;

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  bool number_integer(std::int64_t v) override { return put(v); }
  bool number_unsigned(std::uint64_t v) override { return put(v); }
  bool number_float(double v, const std::string&) override { return put(v); }
  bool string(std::string& s) override { return put(s); }
  bool key(std::string& k) override {
    m_key = k;
    return true;
  }
  bool start_object() override { return open(Json::object()); }
  bool start_array() override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::uint64_t position, const std::string& why) override {
    failed = true;
    error_at = position;
    reason = why;
    return false;
  }

 private:
  bool put(Json v) {
    if (m_stack.empty()) {
      root = std::move(v);
    } else if (m_stack.back()->is_array()) {
      m_stack.back()->push_back(std::move(v));
    } else {
      (*m_stack.back())[m_key] = std::move(v);
    }
    return true;
  }
  bool open(Json v) {
    put(std::move(v));
    Json* at = m_stack.empty() ? &root : m_stack.back()->is_array() ? &m_stack.back()->back() : &(*m_stack.back())[m_key];
    m_stack.push_back(at);
    return true;
  }
  bool close() {
    m_stack.pop_back();
    return true;
  }
  std::vector<Json*> m_stack;
  std::string m_key;
};

struct Outcome {
  bool ok = false;
  Json value;
  std::uint64_t error_at = 0;
  std::string reason;
};

Outcome _parse(const std::string& text, std::uint64_t limit = 1 << 30) {
  std::stringbuf sb(text);
  JsonReader reader(&sb, limit);
  Builder b;
  Outcome o;
  o.ok = reader.parse(b);
  CHECK(o.ok != b.failed);
  o.value = b.root;
  o.error_at = b.error_at;
  o.reason = b.reason;
  return o;
}

}  // namespace

TEST_CASE("json reader: values, escapes and numbers") {
  auto o = _parse(R"( {"a":[1,-2,3.5,1e2,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{},"c":[]} )");
  REQUIRE(o.ok);
  CHECK(o.value["a"][0] == 1);
  CHECK(o.value["a"][1] == -2);
  CHECK(o.value["a"][2] == 3.5);
  CHECK(o.value["a"][3] == 100.0);
  CHECK(o.value["a"][7] == "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(o.value["b"].is_object());
  CHECK(o.value["c"].is_array());
  CHECK(_parse("18446744073709551615").value.is_number_unsigned());
  CHECK(_parse("18446744073709551616").value.is_number_float());
  CHECK(_parse("-9223372036854775808").value.is_number_integer());
  CHECK(_parse("-9223372036854775809").value.is_number_float());
  CHECK(_parse("1e-400").ok);
  CHECK(_parse("\"\\u0000\"").value.get<std::string>() == std::string(1, '\0'));
}

TEST_CASE("json reader: errors and their positions") {
  struct Case {
    std::string text;
    std::uint64_t at;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"", 0, "unexpected end of input"},
      {"hello", 1, "expected a value, found 'h'"},
      {"tru", 3, "unexpected end of input"},
      {"trUe", 3, "invalid literal"},
      {"[1,]", 4, "expected a value, found ']'"},
      {"{\"a\" 1}", 6, "expected ':'"},
      {"{\"a\":1,}", 8, "expected a member name"},
      {"[1 2]", 4, "expected ',' or ']'"},
      {"01", 2, "after the document"},
      {"-", 1, "unexpected end of input"},
      {"-a", 2, "a digit after '-'"},
      {"1.", 2, "unexpected end of input"},
      {"1.e5", 3, "a digit after '.'"},
      {"1e", 2, "unexpected end of input"},
      {"1e400", 5, "number overflow parsing '1e400'"},
      {"\"a\nb\"", 3, "control character"},
      {"\"\\x\"", 3, "invalid escape"},
      {"\"\\u12g4\"", 6, "4 hex digits"},
      {"\"\\udc00\"", 7, "lone low surrogate"},
      {"\"\\ud800\"", 8, "without its low surrogate"},
      {"\"\\ud800\\u0041\"", 13, "without its low surrogate"},
      {"\"\xc0\x80\"", 2, "invalid UTF-8: byte 0xc0 in a string"},
      {"\"\xe0\x80\x80\"", 3, "invalid UTF-8 sequence"},      // overlong
      {"\"\xed\xa0\x80\"", 3, "invalid UTF-8 sequence"},      // surrogate
      {"\"\xf4\x90\x80\x80\"", 3, "invalid UTF-8 sequence"},  // above U+10FFFF
      {"\"\xe2\x82", 3, "unexpected end of input"},
      {"\"abc", 4, "unexpected end of input"},
      {"{} x", 4, "after the document"},
      {"[[[", 3, "unexpected end of input"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto o = _parse(c.text);
    CHECK_FALSE(o.ok);
    CHECK(o.error_at == c.at);
    CHECK_MESSAGE(o.reason.find(c.reason) != std::string::npos, o.reason);
  }
}

TEST_CASE("json reader: a token longer than the limit stops the reader") {
  const std::string big = "[\"" + std::string(5u << 20, 'a') + "\"]";
  CHECK(_parse(big).ok);
  auto o = _parse(big, 2u << 20);
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "token too long");
  CHECK(o.error_at <= (4u << 20));
}

TEST_CASE("json reader: accepts exactly what nlohmann::json accepts, with the same value") {
  const std::vector<std::string> seeds = {
      R"({"format":"redisfs-dump","version":1,"records":[{"key":"A","string":"x"},{"key":"H","hash":[["f","v"],[{"base64":"AA=="},"2"]]}],"trailer":{"records":2,"bytes":4,"sha256":"ab"}})",
      R"([1,-0,0.5,-1.25e-3,1E+2,true,false,null,"\u00e9\ud83d\ude00\n",{"":[]},[[{}]]])",
      "{\"caf\xc3\xa9\":\"\xe2\x82\xac\xf0\x9f\x98\x80\",\"n\":18446744073709551615,\"m\":-9223372036854775808}",
      " \t\r\n[ 1 , { \"a\" : \"b\" } ] \n",
  };
  const std::string alphabet = "{}[]\",:\\/-+.eE0123456789abfnrtuxlsTFN \t\n\x01\x7f\xc3\xa9\xed\xf0\x80\xbf";
  std::mt19937 rng(20261129);
  int accepted = 0;
  int total = 0;
  for (const auto& seed : seeds) {
    for (int i = 0; i < 2500; ++i) {
      std::string text = seed;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !text.empty(); ++e) {
        const std::size_t at = rng() % text.size();
        const char c = alphabet[rng() % alphabet.size()];
        switch (rng() % 3) {
          case 0:
            text[at] = c;
            break;
          case 1:
            text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
            break;
          default:
            text.erase(at, 1);
        }
      }
      CAPTURE(text);
      const bool theirs = Json::accept(text);
      auto ours = _parse(text);
      REQUIRE(ours.ok == theirs);
      if (theirs) {
        CHECK(ours.value == Json::parse(text));
        ++accepted;
      }
      ++total;
    }
  }
  MESSAGE(accepted << " of " << total << " mutated documents accepted by both");
  CHECK(accepted > 100);
}
