#include "redis.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstring>

#include "lua_scripts.hpp"
#include "text.hpp"

namespace redisfs {

// Process-wide counts for redis_counters() (op statistics of the daemon).
static std::atomic<std::uint64_t> g_round_trips{0};
static std::atomic<std::uint64_t> g_replies{0};

RedisCounters redis_counters() {
  return {g_round_trips.load(std::memory_order_relaxed), g_replies.load(std::memory_order_relaxed)};
}

// ---------------------------------------------------------------- replies

void Reply::Free::operator()(redisReply* r) const { freeReplyObject(r); }
Reply::Reply(redisReply* r) : m_r(r) {}

ReplyView::Type ReplyView::type() const {
  switch (m_r->type) {
    case REDIS_REPLY_STRING:
      return Type::String;
    case REDIS_REPLY_ARRAY:
      return Type::Array;
    case REDIS_REPLY_INTEGER:
      return Type::Integer;
    case REDIS_REPLY_NIL:
      return Type::Nil;
    case REDIS_REPLY_STATUS:
      return Type::Simple;
    case REDIS_REPLY_ERROR:
      return Type::Error;
    default:
      return Type::Other;
  }
}

long long ReplyView::integer() const { return m_r->type == REDIS_REPLY_INTEGER ? m_r->integer : 0; }

std::string_view ReplyView::str() const {
  if (m_r->type == REDIS_REPLY_STRING || m_r->type == REDIS_REPLY_STATUS || m_r->type == REDIS_REPLY_ERROR) {
    return {m_r->str, m_r->len};
  }
  return {};
}

std::size_t ReplyView::size() const { return m_r->type == REDIS_REPLY_ARRAY ? m_r->elements : 0; }

ReplyView ReplyView::operator[](std::size_t i) const { return ReplyView(m_r->element[i]); }

std::optional<long long> ReplyView::as_int() const {
  if (m_r->type == REDIS_REPLY_INTEGER) {
    return m_r->integer;
  }
  if (m_r->type == REDIS_REPLY_STRING || m_r->type == REDIS_REPLY_STATUS) {
    long long v = 0;
    auto [p, ec] = std::from_chars(m_r->str, m_r->str + m_r->len, v);
    if (ec == std::errc() && p == m_r->str + m_r->len && m_r->len > 0) {
      return v;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- errors

int errno_for_redis_error(std::string_view e) {
  struct Code {
    std::string_view name;
    int code;
  };
  static constexpr Code k_codes[] = {
      {"ENOENT", ENOENT},   {"EEXIST", EEXIST},     {"ENOTEMPTY", ENOTEMPTY}, {"ENOTDIR", ENOTDIR},
      {"EISDIR", EISDIR},   {"EINVAL", EINVAL},     {"EROFS", EROFS},         {"ENOSPC", ENOSPC},
      {"EPERM", EPERM},     {"EACCES", EACCES},     {"EMLINK", EMLINK},       {"ENODATA", ENODATA},
      {"ERANGE", ERANGE},   {"EFBIG", EFBIG},       {"ESTALE", ESTALE},       {"ENAMETOOLONG", ENAMETOOLONG},
      {"EAGAIN", EAGAIN},   {"EBUSY", EBUSY},       {"E2BIG", E2BIG},         {"EXDEV", EXDEV},
      {"ELOOP", ELOOP},     {"ENOTSUP", ENOTSUP},   {"EBADF", EBADF},
  };
  std::string_view word = e.substr(0, e.find(' '));
  for (const auto& c : k_codes) {
    if (word == c.name) {
      return c.code;
    }
  }
  if (word == "OOM") {
    return ENOSPC;
  }
  if (word == "READONLY") {
    return EROFS;
  }
  if (word == "NOPERM" || word == "NOAUTH" || word == "WRONGPASS") {
    return EACCES;
  }
  return EIO;
}

// ---------------------------------------------------------------- connection

Connection::Connection(RedisUrl url, std::string client_name)
    : m_url(std::move(url)), m_client_name(std::move(client_name)) {}

Connection::~Connection() {
  if (m_ctx != nullptr) {
    redisFree(m_ctx);
  }
}

Result<std::unique_ptr<Connection>> Connection::open(const RedisUrl& url, std::string client_name) {
  std::unique_ptr<Connection> c(new Connection(url, std::move(client_name)));
  TRY(c->connect_now());
  return c;
}

void Connection::drop(std::string_view why) {
  m_last_error = std::string(why);
  if (m_ctx != nullptr) {
    redisFree(m_ctx);
    m_ctx = nullptr;
  }
  m_pending = 0;
}

Status Connection::connect_now() {
  timeval timeout{5, 0};
  redisContext* ctx = m_url.is_unix ? redisConnectUnixWithTimeout(m_url.path.c_str(), timeout)
                                    : redisConnectWithTimeout(m_url.host.c_str(), m_url.port, timeout);
  if (ctx == nullptr) {
    return make_error(ENOMEM, "redis: cannot allocate a connection");
  }
  if (ctx->err != 0) {
    std::string msg = "redis: cannot connect to " + m_url.display() + ": " + ctx->errstr;
    redisFree(ctx);
    return make_error(EIO, msg);
  }
  // A hung server must not hang every filesystem call forever.
  timeval op_timeout{120, 0};
  redisSetTimeout(ctx, op_timeout);
  m_ctx = ctx;
  m_pending = 0;
  auto setup = [&](std::initializer_list<std::string_view> argv, const char* what) -> Status {
    auto r = command(argv);
    if (!r.ok()) {
      Error e = std::move(r).error();
      drop(e.message);
      return make_error(e.code, std::string("redis: ") + what + " on " + m_url.display() + " failed: " + e.message);
    }
    return {};
  };
  if (!m_url.password.empty()) {
    if (m_url.user.empty()) {
      TRY(setup({"AUTH", m_url.password}, "AUTH"));
    } else {
      TRY(setup({"AUTH", m_url.user, m_url.password}, "AUTH"));
    }
  }
  if (m_url.db != 0) {
    std::string db = std::to_string(m_url.db);
    TRY(setup({"SELECT", db}, "SELECT"));
  }
  if (!m_client_name.empty()) {
    TRY(setup({"CLIENT", "SETNAME", m_client_name}, "CLIENT SETNAME"));
  }
  return {};
}

Status Connection::ensure_connected() {
  if (m_ctx != nullptr) {
    return {};
  }
  return connect_now();
}

Result<Reply> Connection::check(redisReply* r) {
  if (r != nullptr) {
    g_replies.fetch_add(1, std::memory_order_relaxed);
  }
  if (r == nullptr) {
    std::string why = m_ctx != nullptr && m_ctx->err != 0 ? m_ctx->errstr : "no reply";
    drop(why);
    return make_error(EIO, "redis: connection to " + m_url.display() + " lost: " + why);
  }
  Reply reply(r);
  if (reply.view().type() == ReplyView::Type::Error) {
    std::string_view e = reply.view().str();
    // The server's words, bounded: a script error may quote its arguments.
    return make_error(errno_for_redis_error(e), "redis: " + shown(e, 300, 0));
  }
  return reply;
}

static void _to_argv(std::span<const std::string_view> argv, std::vector<const char*>& p, std::vector<size_t>& n) {
  p.resize(argv.size());
  n.resize(argv.size());
  for (std::size_t i = 0; i < argv.size(); ++i) {
    p[i] = argv[i].data();
    n[i] = argv[i].size();
  }
}

Result<Reply> Connection::command(std::span<const std::string_view> argv) {
  TRY(ensure_connected());
  if (m_pending != 0) {
    return make_error(EIO, "redis: command issued with pipelined replies pending");
  }
  std::vector<const char*> p;
  std::vector<size_t> n;
  _to_argv(argv, p, n);
  auto* r = static_cast<redisReply*>(redisCommandArgv(m_ctx, static_cast<int>(p.size()), p.data(), n.data()));
  g_round_trips.fetch_add(1, std::memory_order_relaxed);
  return check(r);
}

Result<Reply> Connection::command(std::initializer_list<std::string_view> argv) {
  return command(std::span<const std::string_view>(argv.begin(), argv.size()));
}

Result<Reply> Connection::command(const Args& argv) {
  std::vector<std::string_view> v(argv.begin(), argv.end());
  return command(std::span<const std::string_view>(v));
}

void Connection::append(std::span<const std::string_view> argv) {
  if (!ensure_connected().ok()) {
    ++m_pending;  // read_reply() reports the failure for this entry
    return;
  }
  std::vector<const char*> p;
  std::vector<size_t> n;
  _to_argv(argv, p, n);
  redisAppendCommandArgv(m_ctx, static_cast<int>(p.size()), p.data(), n.data());
  ++m_pending;
  m_unsent = true;
}

void Connection::append(std::initializer_list<std::string_view> argv) {
  append(std::span<const std::string_view>(argv.begin(), argv.size()));
}

void Connection::append(const Args& argv) {
  std::vector<std::string_view> v(argv.begin(), argv.end());
  append(std::span<const std::string_view>(v));
}

Result<Reply> Connection::read_reply() {
  if (m_pending == 0) {
    return make_error(EIO, "redis: no pipelined reply pending");
  }
  if (m_ctx == nullptr) {
    --m_pending;
    return make_error(EIO, "redis: connection to " + m_url.display() + " lost: " + m_last_error);
  }
  void* raw = nullptr;
  --m_pending;
  if (m_unsent) {  // the first reply of a pipeline: its one round trip
    g_round_trips.fetch_add(1, std::memory_order_relaxed);
    m_unsent = false;
  }
  std::size_t left = m_pending;
  if (redisGetReply(m_ctx, &raw) != REDIS_OK) {
    auto r = check(nullptr);
    m_pending = left;  // drop() reset it; each remaining entry reports the loss
    return r;
  }
  return check(static_cast<redisReply*>(raw));
}

Result<std::vector<Reply>> Connection::read_all() {
  std::vector<Reply> out;
  out.reserve(m_pending);
  std::optional<Error> first;
  while (m_pending > 0) {
    auto r = read_reply();
    if (!r.ok()) {
      if (!first) {
        first = std::move(r).error();
      }
      continue;
    }
    out.push_back(std::move(r).value());
  }
  if (first) {
    return std::move(*first);
  }
  return out;
}

template <class K, class A>
static std::vector<std::string_view> _evalsha_argv(std::string_view sha, std::string_view nkeys, std::span<K> keys,
                                                   std::span<A> args) {
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.emplace_back("EVALSHA");
  argv.emplace_back(sha);
  argv.emplace_back(nkeys);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<std::string> Connection::script_sha(std::string_view name, bool reload) {
  if (!reload) {
    auto it = m_shas.find(name);
    if (it != m_shas.end()) {
      return it->second;
    }
  }
  const lua::ScriptSource* src = lua::find_script(name);
  if (src == nullptr) {
    return make_error(EINVAL, "internal error: no Lua script named " + std::string(name));
  }
  std::string_view text = src->text;
  auto loaded = command({"SCRIPT", "LOAD", text});
  if (!loaded.ok() && loaded.error().code == EIO && text.starts_with("#!") &&
      loaded.error().message.find("lost") == std::string::npos) {
    // A server older than Redis 7 knows no shebang (script flags): load
    // the script without it (it then runs as before: refused by a full
    // server at its first write).
    text.remove_prefix(std::min(text.size(), text.find('\n') + 1));
    loaded = command({"SCRIPT", "LOAD", text});
  }
  TRY_ASSIGN(Reply r, std::move(loaded));
  std::string sha(r.view().str());
  m_shas[src->name] = sha;
  return sha;
}

Result<Reply> Connection::eval(std::string_view name, std::span<const std::string> keys,
                               std::span<const std::string> args) {
  TRY(ensure_connected());
  std::string nkeys = std::to_string(keys.size());
  for (int attempt = 0;; ++attempt) {
    TRY_ASSIGN(std::string sha, script_sha(name, attempt > 0));
    std::vector<std::string_view> argv = _evalsha_argv(sha, nkeys, keys, args);
    auto r = command(std::span<const std::string_view>(argv));
    if (!r.ok() && attempt == 0 && r.error().message.find("NOSCRIPT") != std::string::npos) {
      continue;  // the server restarted (or flushed its scripts): load again
    }
    if (!r.ok()) {
      Error e = std::move(r).error();
      if (e.code != EIO || e.message.find("lost") != std::string::npos) {
        return e;
      }
      return make_error(EIO, "script " + std::string(name) + ": " + e.message);
    }
    return r;
  }
}

Result<Reply> Connection::eval(std::string_view name, std::initializer_list<std::string> keys,
                               std::initializer_list<std::string> args) {
  return eval(name, std::span<const std::string>(keys.begin(), keys.size()),
              std::span<const std::string>(args.begin(), args.size()));
}

Status Connection::load_script(std::string_view name, bool reload) {
  TRY(ensure_connected());
  TRY(script_sha(name, reload));
  return {};
}

void Connection::append_eval(std::string_view name, std::span<const std::string_view> keys,
                             std::span<const std::string_view> args) {
  const lua::ScriptSource* src = lua::find_script(name);
  auto it = src != nullptr ? m_shas.find(src->name) : m_shas.end();
  std::string sha = it != m_shas.end() ? it->second : std::string(40, '0');  // NOSCRIPT if not loaded
  std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv = _evalsha_argv(sha, nkeys, keys, args);
  append(std::span<const std::string_view>(argv));
}

// ---------------------------------------------------------------- pool

Pool::Pool(RedisUrl url, std::string client_name) : m_url(std::move(url)), m_client_name(std::move(client_name)) {}
Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (m_pool != nullptr && m_conn) {
    m_pool->give_back(std::move(m_conn));
  }
}

Result<Pool::Lease> Pool::acquire() {
  {
    std::lock_guard lock(m_mutex);
    if (!m_idle.empty()) {
      auto c = std::move(m_idle.back());
      m_idle.pop_back();
      return Lease(this, std::move(c));
    }
  }
  TRY_ASSIGN(auto c, Connection::open(m_url, m_client_name));
  return Lease(this, std::move(c));
}

void Pool::give_back(std::unique_ptr<Connection> c) {
  if (c->pending() != 0) {
    return;  // half-read pipeline: not reusable, close it
  }
  std::lock_guard lock(m_mutex);
  if (c->broken()) {
    // The server went away (a restart?): the idle connections are most
    // likely dead too. Close them all rather than fail one operation per
    // connection; the next ones connect afresh.
    m_idle.clear();
    return;
  }
  if (m_idle.size() < 32) {
    m_idle.push_back(std::move(c));
  }
}

}  // namespace redisfs
