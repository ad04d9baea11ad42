#include "redis/outcome.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace redisfs {

namespace {

constexpr int k_max_depth = 64;

struct Value {
  enum class Kind { Nil, Bool, Int, Double, Str, Array, Map };
  Kind kind = Kind::Nil;
  bool b = false;
  long long i = 0;
  double d = 0;
  std::string s;
  std::vector<Value> items;  // an array's elements; a map's keys and values, alternating
};

class Parser {
 public:
  explicit Parser(std::string_view in) : m_in(in) {}
  bool done() const { return m_pos == m_in.size(); }

  bool value(Value& v, int depth) {
    if (depth > k_max_depth || m_pos >= m_in.size()) {
      return false;
    }
    auto t = static_cast<unsigned char>(m_in[m_pos++]);
    std::uint64_t n = 0;
    if (t <= 0x7f) {
      return integer(v, t);
    }
    if (t >= 0xe0) {
      return integer(v, static_cast<long long>(static_cast<signed char>(t)));
    }
    if ((t & 0xf0) == 0x80) {
      return container(v, Value::Kind::Map, t & 0x0f, depth);
    }
    if ((t & 0xf0) == 0x90) {
      return container(v, Value::Kind::Array, t & 0x0f, depth);
    }
    if ((t & 0xe0) == 0xa0) {
      return string(v, t & 0x1f);
    }
    switch (t) {
      case 0xc0:
        v.kind = Value::Kind::Nil;
        return true;
      case 0xc2:
      case 0xc3:
        v.kind = Value::Kind::Bool;
        v.b = t == 0xc3;
        return true;
      case 0xc4:  // bin 8, 16, 32
      case 0xd9:  // str 8, 16, 32
        return be(1, n) && string(v, n);
      case 0xc5:
      case 0xda:
        return be(2, n) && string(v, n);
      case 0xc6:
      case 0xdb:
        return be(4, n) && string(v, n);
      case 0xca:  // float 32, 64
        if (!be(4, n)) {
          return false;
        }
        v.kind = Value::Kind::Double;
        v.d = std::bit_cast<float>(static_cast<std::uint32_t>(n));
        return true;
      case 0xcb:
        if (!be(8, n)) {
          return false;
        }
        v.kind = Value::Kind::Double;
        v.d = std::bit_cast<double>(n);
        return true;
      case 0xcc:
        return be(1, n) && integer(v, static_cast<long long>(n));
      case 0xcd:
        return be(2, n) && integer(v, static_cast<long long>(n));
      case 0xce:
        return be(4, n) && integer(v, static_cast<long long>(n));
      case 0xcf:
        return be(8, n) && integer(v, static_cast<long long>(n));
      case 0xd0:
        return be(1, n) && integer(v, static_cast<std::int8_t>(n));
      case 0xd1:
        return be(2, n) && integer(v, static_cast<std::int16_t>(n));
      case 0xd2:
        return be(4, n) && integer(v, static_cast<std::int32_t>(n));
      case 0xd3:
        return be(8, n) && integer(v, static_cast<std::int64_t>(n));
      case 0xdc:
        return be(2, n) && container(v, Value::Kind::Array, n, depth);
      case 0xdd:
        return be(4, n) && container(v, Value::Kind::Array, n, depth);
      case 0xde:
        return be(2, n) && container(v, Value::Kind::Map, n, depth);
      case 0xdf:
        return be(4, n) && container(v, Value::Kind::Map, n, depth);
      default:
        return false;  // ext types and the unused 0xc1: never written by cmsgpack
    }
  }

 private:
  bool be(std::size_t bytes, std::uint64_t& out) {
    if (m_in.size() - m_pos < bytes) {
      return false;
    }
    out = 0;
    for (std::size_t k = 0; k < bytes; ++k) {
      out = out << 8 | static_cast<unsigned char>(m_in[m_pos++]);
    }
    return true;
  }

  static bool integer(Value& v, long long i) {
    v.kind = Value::Kind::Int;
    v.i = i;
    return true;
  }

  bool string(Value& v, std::uint64_t len) {
    if (m_in.size() - m_pos < len) {
      return false;
    }
    v.kind = Value::Kind::Str;
    v.s.assign(m_in.substr(m_pos, static_cast<std::size_t>(len)));
    m_pos += static_cast<std::size_t>(len);
    return true;
  }

  bool container(Value& v, Value::Kind kind, std::uint64_t count, int depth) {
    std::uint64_t items = kind == Value::Kind::Map ? 2 * count : count;
    if (items > m_in.size() - m_pos) {
      return false;  // every item takes a byte at least: a count no input can hold
    }
    v.kind = kind;
    v.items.resize(static_cast<std::size_t>(items));
    for (Value& item : v.items) {
      if (!value(item, depth + 1)) {
        return false;
      }
    }
    return true;
  }

  std::string_view m_in;
  std::size_t m_pos = 0;
};

const Value* _field(const Value& map, std::string_view name) {
  for (std::size_t k = 0; k + 1 < map.items.size(); k += 2) {
    if (map.items[k].kind == Value::Kind::Str && map.items[k].s == name) {
      return &map.items[k + 1];
    }
  }
  return nullptr;
}

const Value* _element(const Value& map, long long index) {
  for (std::size_t k = 0; k + 1 < map.items.size(); k += 2) {
    const Value& key = map.items[k];
    if ((key.kind == Value::Kind::Int && key.i == index) ||
        (key.kind == Value::Kind::Double && key.d == static_cast<double>(index))) {
      return &map.items[k + 1];
    }
  }
  return nullptr;
}

void _resp(const Value& v, std::string& out);

void _array(const std::vector<const Value*>& elements, std::string& out) {
  std::size_t n = 0;
  while (n < elements.size() && elements[n]->kind != Value::Kind::Nil) {
    ++n;  // a Lua sequence ends at its first nil
  }
  out += '*' + std::to_string(n) + "\r\n";
  for (std::size_t k = 0; k < n; ++k) {
    _resp(*elements[k], out);
  }
}

void _resp(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::Nil:
      out += "$-1\r\n";
      return;
    case Value::Kind::Bool:
      out += v.b ? ":1\r\n" : "$-1\r\n";
      return;
    case Value::Kind::Int:
      out += ':' + std::to_string(v.i) + "\r\n";
      return;
    case Value::Kind::Double:
      out += ':' + std::to_string(std::isfinite(v.d) ? static_cast<long long>(v.d) : 0) + "\r\n";
      return;
    case Value::Kind::Str:
      out += '$' + std::to_string(v.s.size()) + "\r\n" + v.s + "\r\n";
      return;
    case Value::Kind::Array: {
      std::vector<const Value*> elements;
      elements.reserve(v.items.size());
      for (const Value& item : v.items) {
        elements.push_back(&item);
      }
      _array(elements, out);
      return;
    }
    case Value::Kind::Map: {
      if (const Value* err = _field(v, "err"); err != nullptr && err->kind == Value::Kind::Str) {
        out += '-' + err->s + "\r\n";
        return;
      }
      if (const Value* ok = _field(v, "ok"); ok != nullptr && ok->kind == Value::Kind::Str) {
        out += '+' + ok->s + "\r\n";
        return;
      }
      std::vector<const Value*> elements;
      for (long long index = 1; const Value* e = _element(v, index); ++index) {
        elements.push_back(e);
      }
      _array(elements, out);
      return;
    }
  }
}

}  // namespace

Result<std::string> outcome_to_resp(std::string_view msgpack) {
  Parser parser(msgpack);
  Value v;
  if (!parser.value(v, 0) || !parser.done()) {
    return make_error(EIO, "outcome record: not one MessagePack value");
  }
  std::string out;
  _resp(v, out);
  return out;
}

}  // namespace redisfs
