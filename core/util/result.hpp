// Result<T>: a value, or an Error carrying a positive errno and a message.
//
// Every fallible function in core/ returns one of these; nothing below the
// mains throws. The errno is what a FUSE reply sends, the message is what a
// log line or a CLI error says. TRY / TRY_ASSIGN pass an error up unchanged.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace redisfs {

// What a Redis server (or the way to it) answered, when that decides what
// the client does next; set once, by the client layer (redis.cpp), so no
// caller searches messages for words.
enum class Fault : unsigned char {
  None,
  Unreachable,  // could not connect: nothing was sent
  Lost,         // the connection broke or no reply came in time: it may have run
  Loading,      // LOADING: the server is reading its data set
  Busy,         // BUSY: another script runs too long
  MasterDown,   // MASTERDOWN: a replica lost its master
  ReadOnly,     // READONLY: we are talking to a replica
  TryAgain,     // TRYAGAIN: keys of a script are being migrated between shards
  ClusterDown,  // CLUSTERDOWN
  Moved,        // MOVED slot host:port
  Ask,          // ASK slot host:port
  NoScript,     // NOSCRIPT: the server lost our scripts
  Frozen,       // FROZEN: the filesystem is frozen (our scripts)
  Cow,          // COW <staging>: name a copy-on-write snapshot's keys (our scripts)
};

struct Error {
  int code = EIO;       // positive errno
  std::string message;  // one line, no trailing newline
  Fault fault = Fault::None;
};

inline Error make_error(int code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : m_v(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return m_v.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(m_v); }
  const T& value() const& { return std::get<0>(m_v); }
  T&& value() && { return std::get<0>(std::move(m_v)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { return std::get<1>(m_v); }
  Error&& error() && { return std::get<1>(std::move(m_v)); }
  int code() const { return ok() ? 0 : error().code; }

 private:
  std::variant<T, Error> m_v;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : m_error(std::move(error)), m_ok(false) {}  // NOLINT

  bool ok() const { return m_ok; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return m_error; }
  Error&& error() && { return std::move(m_error); }
  int code() const { return m_ok ? 0 : m_error.code; }

 private:
  Error m_error;
  bool m_ok = true;
};

using Status = Result<void>;

}  // namespace redisfs

#define REDISFS_CONCAT_(a, b) a##b
#define REDISFS_CONCAT(a, b) REDISFS_CONCAT_(a, b)

// TRY(expr): return the error of a Result expression, discard its value.
// (The variable is named after the line, so a TRY nested in a lambda
// inside another TRY's expression does not shadow it.)
#define TRY(expr) TRY_IMPL_(REDISFS_CONCAT(redisfs_try_, __LINE__), expr)
#define TRY_IMPL_(tmp, expr)               \
  do {                                     \
    auto&& tmp = (expr);                   \
    if (!tmp.ok()) {                       \
      return std::move(tmp).error();       \
    }                                      \
  } while (false)

// TRY_ASSIGN(lhs, expr): lhs = value of expr, or return its error.
#define TRY_ASSIGN(lhs, expr) TRY_ASSIGN_IMPL_(REDISFS_CONCAT(redisfs_tmp_, __LINE__), lhs, expr)
#define TRY_ASSIGN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                       \
  if (!tmp.ok()) {                         \
    return std::move(tmp).error();         \
  }                                        \
  lhs = std::move(tmp).value()
