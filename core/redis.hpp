// The Redis client layer: URL parsing, one connection (hiredis, synchronous),
// a pool of them, replies that free themselves, and EVALSHA of the embedded
// Lua scripts. This header and redis.cpp are the only code that knows about
// hiredis; everything above sees Reply/ReplyView and Result.
//
// Errors: a server error reply becomes an Error with the errno it stands for
// (a script's "ENOENT ..." -> ENOENT, "OOM ..." -> ENOSPC, "READONLY" ->
// EROFS, anything else EIO). A lost connection is EIO; the context is thrown
// away (hiredis: it cannot be reused after a NULL reply) and the next command
// connects again, so one in-flight operation fails and later ones work.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "redis_url.hpp"
#include "result.hpp"

struct redisReply;
struct redisContext;

namespace redisfs {

// A non-owning view of one reply node.
class ReplyView {
 public:
  enum class Type { String, Array, Integer, Nil, Simple, Error, Other };
  explicit ReplyView(const redisReply* r) : m_r(r) {}

  Type type() const;
  bool is_nil() const { return type() == Type::Nil; }
  bool is_array() const { return type() == Type::Array; }
  bool is_string() const { return type() == Type::String; }
  long long integer() const;
  std::string_view str() const;  // String, Simple (status) or Error
  std::size_t size() const;      // array length
  ReplyView operator[](std::size_t i) const;
  // Integer replies, or strings holding a decimal integer.
  std::optional<long long> as_int() const;

 private:
  const redisReply* m_r;
};

class Reply {
 public:
  Reply() = default;
  explicit Reply(redisReply* r);
  ReplyView view() const { return ReplyView(m_r.get()); }
  ReplyView operator*() const { return view(); }
  bool empty() const { return !m_r; }

 private:
  struct Free {
    void operator()(redisReply* r) const;
  };
  std::unique_ptr<redisReply, Free> m_r;
};

using Args = std::vector<std::string>;

// Maps a server error string to an errno.
int errno_for_redis_error(std::string_view error);

// Counts over every connection of this process: round trips (a command, or
// a pipeline up to its first reply) and replies read.
struct RedisCounters {
  std::uint64_t round_trips = 0;
  std::uint64_t replies = 0;
};
RedisCounters redis_counters();

class Connection {
 public:
  // Connects now (and again after any lost connection): AUTH, SELECT,
  // CLIENT SETNAME.
  static Result<std::unique_ptr<Connection>> open(const RedisUrl& url, std::string client_name);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One command; an error reply is returned as an Error.
  Result<Reply> command(std::span<const std::string_view> argv);
  Result<Reply> command(std::initializer_list<std::string_view> argv);
  Result<Reply> command(const Args& argv);

  // Pipelining: queue commands, then read one reply per queued command, in
  // order. An error reply is returned as an Error for that entry only; a
  // lost connection fails every remaining entry.
  void append(std::span<const std::string_view> argv);
  void append(std::initializer_list<std::string_view> argv);
  void append(const Args& argv);
  Result<Reply> read_reply();
  std::size_t pending() const { return m_pending; }
  // Reads every pending reply; the first error (if any) is returned.
  Result<std::vector<Reply>> read_all();

  // EVALSHA of the embedded script `name` (core/lua/<name>.lua), loading it
  // on first use and again on NOSCRIPT (a restarted server).
  Result<Reply> eval(std::string_view name, std::span<const std::string> keys,
                     std::span<const std::string> args);
  Result<Reply> eval(std::string_view name, std::initializer_list<std::string> keys,
                     std::initializer_list<std::string> args);

  // Pipelined EVALSHA: load_script() first (it may itself talk to the
  // server), then queue commands, append_eval(), and read the replies. A
  // reply whose error message starts with NOSCRIPT (the server restarted in
  // between) means the script did not run: load again and resend.
  Status load_script(std::string_view name, bool reload = false);
  void append_eval(std::string_view name, std::span<const std::string_view> keys,
                   std::span<const std::string_view> args);

  const RedisUrl& url() const { return m_url; }
  // The connection was lost and not made again yet.
  bool broken() const { return m_ctx == nullptr; }

 private:
  Connection(RedisUrl url, std::string client_name);
  Status ensure_connected();
  Status connect_now();
  void drop(std::string_view why);
  Result<Reply> check(redisReply* r);
  Result<std::string> script_sha(std::string_view name, bool reload);

  RedisUrl m_url;
  std::string m_client_name;
  redisContext* m_ctx = nullptr;
  std::size_t m_pending = 0;
  bool m_unsent = false;  // commands appended since the last read_reply()
  std::string m_last_error;
  std::unordered_map<std::string_view, std::string> m_shas;
};

// A pool of connections, one per concurrent user (FUSE worker thread). A
// lease returns its connection to the pool when it goes out of scope.
class Pool {
 public:
  Pool(RedisUrl url, std::string client_name);
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> c) : m_pool(pool), m_conn(std::move(c)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease();
    Connection& operator*() { return *m_conn; }
    Connection* operator->() { return m_conn.get(); }

   private:
    Pool* m_pool;
    std::unique_ptr<Connection> m_conn;
  };

  Result<Lease> acquire();

  const RedisUrl& url() const { return m_url; }

 private:
  void give_back(std::unique_ptr<Connection> c);

  RedisUrl m_url;
  std::string m_client_name;
  std::mutex m_mutex;
  std::vector<std::unique_ptr<Connection>> m_idle;
};

}  // namespace redisfs
