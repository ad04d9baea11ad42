#include "redis/redis.hpp"

// (sds.h, which hiredis.h includes, declares its C functions without C
// linkage: included first, inside extern "C".)
extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstring>
#include <optional>
#include <thread>

#include "redis/lua_scripts.hpp"
#include "redis/outcome.hpp"
#include "redis/reply_arena.hpp"
#include "redis/trip_count.hpp"
#include "store/keys.hpp"
#include "util/fault.hpp"
#include "util/text.hpp"

namespace redisfs {

// Process-wide counts for redis_counters() (op statistics of the daemon).
static std::atomic<std::uint64_t> g_round_trips{0};
static std::atomic<std::uint64_t> g_replies{0};
// ...and this thread's round trips (what one FUSE request cost).
static thread_local std::uint64_t t_round_trips = 0;

static void _count_round_trip() {
  g_round_trips.fetch_add(1, std::memory_order_relaxed);
  ++t_round_trips;
}

RedisCounters redis_counters() {
  return {g_round_trips.load(std::memory_order_relaxed), g_replies.load(std::memory_order_relaxed)};
}

std::uint64_t redis_thread_round_trips() { return t_round_trips; }

// ---------------------------------------------------------------- replies

void Reply::Free::operator()(redisReply* r) const { free_arena_reply(r); }  // (reply_arena.hpp)
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

// `e` without the " script: <sha1>, on @user_script:<line>." that Redis 7
// appends to an error raised in a script: the script's name goes in front
// (Connection::eval), and a user reading the message has no use for it.
static std::string_view _without_script_trailer(std::string_view e) {
  constexpr std::string_view k_head = " script: ";
  constexpr std::string_view k_on = ", on @user_script:";
  const auto at = e.rfind(k_head);
  if (at == std::string_view::npos) {
    return e;
  }
  std::string_view rest = e.substr(at + k_head.size());
  const auto sha_len = rest.find_first_not_of("0123456789abcdef");
  if (sha_len != 40 || !rest.substr(sha_len).starts_with(k_on)) {
    return e;
  }
  std::string_view line = rest.substr(sha_len + k_on.size());
  if (line.ends_with('.')) {
    line.remove_suffix(1);
  }
  if (line.empty() || line.find_first_not_of("0123456789") != std::string_view::npos) {
    return e;
  }
  return e.substr(0, at);
}

bool is_wrong_type(const Error& e) { return e.message.find("WRONGTYPE") != std::string::npos; }

Error error_from_redis(std::string_view e) {
  return Error{errno_for_redis_error(e), "redis: " + shown(_without_script_trailer(e), 300, 0),
               fault_for_redis_error(e)};
}

Fault fault_for_redis_error(std::string_view e) {
  struct Word {
    std::string_view word;
    Fault fault;
  };
  static constexpr Word k_words[] = {
      {"LOADING", Fault::Loading},     {"BUSY", Fault::Busy},         {"MASTERDOWN", Fault::MasterDown},
      {"READONLY", Fault::ReadOnly},   {"TRYAGAIN", Fault::TryAgain}, {"CLUSTERDOWN", Fault::ClusterDown},
      {"MOVED", Fault::Moved},         {"ASK", Fault::Ask},           {"NOSCRIPT", Fault::NoScript},
      {"FROZEN", Fault::Frozen},       {"COW", Fault::Cow},
  };
  std::string_view word = e.substr(0, e.find(' '));
  for (const auto& w : k_words) {
    if (word == w.word) {
      return w.fault;
    }
  }
  return Fault::None;
}

// ---------------------------------------------------------------- cluster slots

// CRC16-CCITT (XMODEM), the hash of Redis Cluster's key slots.
static std::uint16_t _crc16(std::string_view s) {
  std::uint16_t crc = 0;
  for (unsigned char c : s) {
    crc ^= static_cast<std::uint16_t>(c << 8);
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021) : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

int key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return _crc16(key) & 16383;
}

// ---------------------------------------------------------------- commands

namespace {

std::string _upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return u;
}

// Where a command's first key is (0: it has none).
std::size_t _key_index(std::span<const std::string_view> argv) {
  if (argv.size() < 2) {
    return 0;
  }
  std::string cmd = _upper(argv[0]);
  if (cmd == "EVALSHA" || cmd == "EVAL" || cmd == "EVALSHA_RO" || cmd == "EVAL_RO") {
    return argv.size() > 3 && argv[2] != "0" ? 3 : 0;
  }
  static constexpr std::string_view k_keyless[] = {
      "PING",  "INFO",   "CONFIG",    "SCRIPT", "CLIENT", "AUTH",  "SELECT", "ROLE",    "WAIT",  "SCAN",
      "CLUSTER", "ASKING", "READONLY", "DBSIZE", "TIME",   "FLUSHALL", "FLUSHDB", "SENTINEL", "ACL", "COMMAND",
      "HELLO", "ECHO",   "MULTI",     "EXEC",   "SAVE",   "BGSAVE", "LASTSAVE", "SHUTDOWN", "SWAPDB", "KEYS",
      "RANDOMKEY", "FUNCTION", "LATENCY", "SLOWLOG", "MONITOR", "QUIT", "RESET", "REPLICAOF", "SLAVEOF",
  };
  for (std::string_view k : k_keyless) {
    if (cmd == k) {
      return 0;
    }
  }
  if (cmd == "DEBUG" || cmd == "MEMORY" || cmd == "OBJECT") {
    return argv.size() > 2 ? 2 : 0;
  }
  return 1;
}

// Sending this command twice leaves the server as sending it once would.
bool _idempotent(std::span<const std::string_view> argv) {
  if (argv.empty()) {
    return false;
  }
  std::string cmd = _upper(argv[0]);
  static constexpr std::string_view k_safe[] = {
      "GET",     "MGET",     "EXISTS",   "TYPE",       "TTL",       "PTTL",     "STRLEN", "GETRANGE", "HGET",
      "HGETALL", "HMGET",    "HLEN",     "LPOS",       "HEXISTS",   "HKEYS",    "HVALS",  "HSCAN",    "SCAN",
      "SSCAN",   "ZSCAN",    "SMEMBERS", "SCARD",      "SISMEMBER", "LRANGE",   "LLEN",   "LINDEX",   "ZRANGE",
      "ZCARD",   "ZSCORE",   "INFO",     "PING",       "ROLE",      "DBSIZE",   "TIME",   "DUMP",     "DEBUG",
      "MEMORY",  "OBJECT",   "SCRIPT",   "CLIENT",     "CLUSTER",   "ECHO",     "WAIT",   "SETEX",    "PSETEX",
      "DEL",     "UNLINK",   "PEXPIRE",  "EXPIRE",     "PERSIST",   "HSET",     "HDEL",   "SELECT",   "AUTH",
      "ASKING",  "READONLY", "COMMAND",  "EVALSHA_RO", "EVAL_RO",   "SENTINEL", "ACL",
  };
  for (std::string_view k : k_safe) {
    if (cmd == k) {
      return true;
    }
  }
  if (cmd == "CONFIG") {
    return argv.size() > 1 && _upper(argv[1]) == "GET";
  }
  if (cmd == "SET") {  // plain SET, not NX / XX / GET
    for (std::size_t i = 3; i < argv.size(); ++i) {
      std::string o = _upper(argv[i]);
      if (o == "NX" || o == "XX" || o == "GET") {
        return false;
      }
    }
    return true;
  }
  if (cmd == "RESTORE") {
    for (std::size_t i = 4; i < argv.size(); ++i) {
      if (_upper(argv[i]) == "REPLACE") {
        return true;
      }
    }
  }
  return false;
}

// Whether every command of a transaction is _idempotent.
bool _all_idempotent(std::span<const Args> commands) {
  for (const Args& cmd : commands) {
    std::vector<std::string_view> argv(cmd.begin(), cmd.end());
    if (!_idempotent(argv)) {
      return false;
    }
  }
  return true;
}

// A command in RESP, as redisFormatCommandArgv writes it, in one allocation
// and without its sprintf per argument (every request formats one). With
// `tail`, argument `borrowed`'s bytes are left out: `out` ends before them
// and `tail` gets what follows them.
std::string _format(std::span<const std::string_view> argv, std::size_t borrowed = SIZE_MAX,
                    std::string* tail = nullptr) {
  std::size_t size = 16;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    size += (i == borrowed ? 0 : argv[i].size()) + 24;
  }
  std::string out;
  out.reserve(size);
  std::string* to = &out;
  char digits[24];
  auto put = [&](char lead, std::size_t n) {
    *to += lead;
    to->append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
    *to += "\r\n";
  };
  put('*', argv.size());
  for (std::size_t i = 0; i < argv.size(); ++i) {
    put('$', argv[i].size());
    if (i == borrowed && tail != nullptr) {
      to = tail;
    } else {
      *to += argv[i];
    }
    *to += "\r\n";
  }
  return out;
}

// The SHA1 Redis names a script by (EVALSHA), computed here so a script
// is loaded only when a server says NOSCRIPT.
std::string _sha1_hex(std::string_view text) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d);
  return lower_hex(d);
}

// (embed_lua.cmake decides both when it builds the text: looking for them
// in the text cost a 12 KB search a script sent.)
bool _script_writes(const lua::ScriptSource& src) { return src.writes; }

// Wrapped in outcome.inc (embed_lua.cmake): it takes the record's key and id.
bool _script_records(const lua::ScriptSource& src) { return src.records; }

// "MOVED 3999 127.0.0.1:6381" (after our "redis: " prefix): the address.
std::string _redirect_address(std::string_view message) {
  auto p = message.find("MOVED ");
  if (p == std::string_view::npos) {
    p = message.find("ASK ");
  }
  if (p == std::string_view::npos) {
    return {};
  }
  std::string_view rest = message.substr(p);
  auto sp1 = rest.find(' ');
  auto sp2 = rest.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return {};
  }
  std::string_view addr = rest.substr(sp2 + 1);
  return std::string(addr.substr(0, addr.find(' ')));
}

bool _split_address(const std::string& address, std::string& host, int& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string_view p = std::string_view(address).substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  return ec == std::errc() && end == p.data() + p.size() && port > 0 && port < 65536;
}

bool _refused_not_run(Fault f) {
  switch (f) {
    case Fault::Unreachable:
    case Fault::Loading:
    case Fault::Busy:
    case Fault::MasterDown:
    case Fault::TryAgain:
    case Fault::ClusterDown:
      return true;
    default:
      return false;
  }
}

std::atomic<std::uint64_t> g_lanes{0};

}  // namespace

// ---------------------------------------------------------------- connection

std::chrono::milliseconds op_log_ttl(const RedisUrl& url) {
  return std::max<std::chrono::milliseconds>(std::chrono::minutes(10), 2 * url.timeout);
}

struct Node {
  std::string address;  // host:port, or the socket path
  std::unique_ptr<Transport> t;
  redisReader* reader = nullptr;
  std::size_t reply_read = 0;  // bytes of the reply in progress hiredis consumed (read_raw)
  std::string out;             // formatted commands not sent yet
  // ...and, among them, the big ones (k_big_command and up) and borrowed
  // bytes (append_borrowing): sent from where they are, each before
  // out[at] (a MiB of a write is not copied into `out`). Both are
  // emptied together.
  std::vector<std::pair<std::size_t, std::string_view>> out_big;
  std::uint64_t gen = 0;  // +1 at every drop: entries sent before are lost
  long long client_id = 0;  // CLIENT ID of the current connection (0: unknown)
  std::string run_id;       // the server process's run_id (INFO server)
  std::string replid;       // its replication ids (INFO replication)
  std::string replid2;
  std::vector<char> buf;

  ~Node() {
    if (reader != nullptr) {
      redisReaderFree(reader);
    }
  }
  bool up() const { return t != nullptr; }
};

struct Connection::Entry {
  std::string cmd;  // RESP, as sent
  // ...or, for a command that borrows an argument's bytes (append_borrowing),
  // cmd up to them, the bytes, and what follows them
  std::string_view borrowed;
  std::string tail;
  int slot = -1;    // cluster slot of the first key; -1: none
  bool idempotent = false;
  std::uint64_t op = 0;     // a writing script's operation id (0: not recorded)
  std::string op_key;       // where its outcome is recorded
  std::string op_field;     // ... in this field (Connection::record_field)
  const lua::ScriptSource* script = nullptr;  // the script it runs (NOSCRIPT: load it and send again)
  Node* node = nullptr;     // where it went (nullptr: it could not be sent)
  std::uint64_t gen = 0;
  long long client_id = 0;  // the server's id of the connection it went on
  std::string run_id;       // ... and that server's run_id
  bool sent = false;
  bool in_tx = false;                  // MULTI ... EXEC: never sent again alone
  bool sent_again = false;             // by send_one (settle, recover): see Connection::sent_again
  std::chrono::milliseconds waits{0};  // the server itself waits this long (WAIT)
  bool answered = false;               // its (first) reply has been read
  std::optional<Result<Reply>> early;  // read ahead, to send another command on its node
  std::uint64_t early_epoch = 0;       // m_resend_ok when it was read ahead
  Error unsent;                        // why it could not be sent
  Deadline start;

  // `lost` (Fault::Lost) of this command, which is not sent again: it says
  // which command it was.
  Error not_resent(Error lost) const {
    lost.message += " (during " + name() + ", which may have run: not sent again)";
    return lost;
  }
  // What it runs, for a message: its script's name, or its command's.
  std::string name() const {
    if (script != nullptr) {
      return std::string(script->name);
    }
    // RESP: *<n>\r\n$<len>\r\n<name>\r\n...
    std::size_t at = cmd.find("\r\n$");
    at = at == std::string::npos ? at : cmd.find("\r\n", at + 3);
    std::size_t end = at == std::string::npos ? at : cmd.find("\r\n", at + 2);
    return end == std::string::npos ? std::string("a command") : cmd.substr(at + 2, end - at - 2);
  }
  // The command's first argument (its key, for the commands that name one
  // first), from the RESP sent: "" when it has none or runs a script.
  std::string_view first_argument() const {
    const std::string command = name();
    if (script != nullptr || command.starts_with("EVAL") || command.starts_with("FCALL")) {
      return {};
    }
    std::string_view rest = cmd;
    for (int arg = 0; arg < 2; ++arg) {
      std::size_t at = rest.find("\r\n$");
      std::size_t len_end = at == std::string_view::npos ? at : rest.find("\r\n", at + 3);
      if (len_end == std::string_view::npos) {
        return {};
      }
      std::size_t len = 0;
      auto [p, ec] = std::from_chars(rest.data() + at + 3, rest.data() + len_end, len);
      if (ec != std::errc() || p != rest.data() + len_end || rest.size() - len_end - 2 < len) {
        return {};
      }
      if (arg == 1) {
        return rest.substr(len_end + 2, len);
      }
      rest.remove_prefix(len_end + 2 + len);
    }
    return {};
  }
  // Its error `r`, final: a lost reply says which command it was
  // (not_resent); a WRONGTYPE, which names neither the command nor the key,
  // gets both, for the tool's line and the daemon's log.
  Error failed(Error r) const {
    if (r.fault == Fault::Lost) {
      return not_resent(std::move(r));
    }
    std::string_view key = first_argument();
    if (is_wrong_type(r) && !key.empty()) {
      r.message += " (" + name() + " of " + quoted(key, 200) + ")";
    }
    return r;
  }
};

Connection::Connection(RedisUrl url, std::string client_name)
    : m_url(std::move(url)), m_client_name(std::move(client_name)), m_lane(g_lanes.fetch_add(1) + 1) {}

Connection::~Connection() = default;

static std::chrono::milliseconds _reply_timeout(const RedisUrl& u) {
  return u.reply_timeout.count() > 0 ? u.reply_timeout : u.timeout;
}

Result<std::unique_ptr<Connection>> Connection::open(const RedisUrl& url, std::string client_name) {
  std::unique_ptr<Connection> c(new Connection(url, std::move(client_name)));
  // A server that cannot be reached at all fails now (a typo should not
  // cost the whole timeout); one that is loading its data, or a master the
  // sentinels are still electing, is waited for (and said, as an outage).
  auto began = Clock::now();
  Deadline deadline = began + url.timeout;
  for (auto pause = std::chrono::milliseconds(20);; pause = std::min(pause * 2, std::chrono::milliseconds(500))) {
    Status st = c->connect_main(std::min(deadline, Clock::now() + std::chrono::seconds(10)));
    if (st.ok()) {
      outage_over(OutageNote::Kind::Server);
      return c;
    }
    Fault f = st.error().fault;
    bool wait = f == Fault::Loading || f == Fault::Busy || f == Fault::MasterDown ||
                (url.is_sentinel() && f == Fault::Unreachable);
    if (!wait || Clock::now() + pause >= deadline) {
      return std::move(st).error();
    }
    outage_waiting(OutageNote::Kind::Server, began, st.error());
    std::this_thread::sleep_for(pause);
  }
}

std::unique_ptr<Connection> Connection::unconnected(const RedisUrl& url, std::string client_name) {
  return std::unique_ptr<Connection>(new Connection(url, std::move(client_name)));
}

const Node* Connection::server_node() const {
  // A cluster: the master of the keyless commands' slot (the filesystem's,
  // Pool::route_keyless): its failover is the one that loses the
  // filesystem's changes. Not known until this connection used the slot.
  const std::string* at = &m_main;
  if (m_cluster) {
    at = m_keyless_node.empty() ? slot_address(m_keyless_slot) : &m_keyless_node;
  }
  for (const auto& n : m_nodes) {
    if (at != nullptr && n->address == *at) {
      return n.get();
    }
  }
  return nullptr;
}

ServerId Connection::server() const {
  const Node* n = server_node();
  return n == nullptr ? ServerId{{}, {}, {}, {}, m_cluster}
                      : ServerId{n->address, n->run_id, n->replid, n->replid2, m_cluster};
}

std::string_view Connection::server_run_id() const {
  const Node* n = server_node();
  return n == nullptr ? std::string_view() : std::string_view(n->run_id);
}

bool server_replaced(const ServerId& was, const ServerId& now) {
  if (was.run_id.empty() || now.run_id.empty() || was.run_id == now.run_id) {
    return false;  // not known, or the same process
  }
  if (!now.cluster) {
    return true;
  }
  return now.address == was.address || (!was.replid.empty() && now.replid2 == was.replid);
}

bool Connection::broken() const {
  for (const auto& n : m_nodes) {
    if (n->address == m_main) {
      return !n->up();
    }
  }
  return true;
}

bool Connection::closed_while_idle() const {
  for (const auto& n : m_nodes) {
    if (n->up() && n->t->peer_gone()) {
      return true;
    }
  }
  return false;
}

std::size_t Connection::pending() const { return m_queue.size() - m_head; }

void Connection::drain() {
  while (pending() > 0) {
    (void)read_reply();
  }
}

void Connection::abandon() {
  if (m_tx) {
    drain();
    return;
  }
  for (std::size_t i = m_head; i < m_queue.size(); ++i) {
    Node* n = m_queue[i]->node;
    if (n != nullptr && n->up()) {
      n->t->abort_on_close();
      drop(*n, Error{EIO, "abandoned", Fault::None});
    }
  }
  m_queue.clear();
  m_head = 0;
}

void Connection::drop(Node& n, const Error& why) {
  (void)why;
  n.t.reset();
  if (n.reader != nullptr) {
    redisReaderFree(n.reader);
    n.reader = nullptr;
  }
  n.reply_read = 0;
  n.out.clear();
  n.out_big.clear();
  ++n.gen;
}

void Connection::set_op_log(std::string key) { m_op_log = std::move(key); }

void Connection::set_identity(std::string prefix, std::string identity) {
  m_id_prefix = std::move(prefix);
  m_identity = std::move(identity);
}

void Connection::set_lane(Lane lane) {
  m_lane = lane.id;
  m_op_seq = lane.last_op;
}

void Connection::route_keyless(std::string_view key) {
  m_keyless_slot = key_slot(key);
  m_keyless_node.clear();
}

void Connection::route_keyless_to_node(std::string_view address) {
  m_keyless_node = std::string(address);
  m_keyless_slot = -1;
}

Result<Reply> Connection::keyless_at(std::string_view key, std::initializer_list<std::string_view> argv) {
  if (key.empty() || !m_cluster) {
    return command(argv);
  }
  const std::string node = m_keyless_node;
  const int slot = m_keyless_slot;
  route_keyless(key);
  auto r = command(argv);
  m_keyless_node = node;
  m_keyless_slot = slot;
  return r;
}

// Sends `argv` on `n` now and reads its reply: only while nothing else is
// in flight on it (connect-time setup).
static Result<Reply> _direct(Transport& t, redisReader* reader, std::vector<char>& buf,
                             std::initializer_list<std::string_view> argv, Deadline deadline) {
  std::string cmd = _format(std::span<const std::string_view>(argv.begin(), argv.size()));
  TRY(t.write_all(cmd.data(), cmd.size(), deadline));
  for (;;) {
    void* r = nullptr;
    if (redisReaderGetReply(reader, &r) != REDIS_OK) {
      return make_error(EPROTO, "protocol error from " + t.peer());
    }
    if (r != nullptr) {
      return Reply(static_cast<redisReply*>(r));
    }
    TRY_ASSIGN(std::size_t got, t.read_some(buf.data(), buf.size(), deadline));
    redisReaderFeed(reader, buf.data(), got);
  }
}

// What to do about a refused login, for the one line that reports it.
static std::string _auth_hint(std::string_view message) {
  if (message.find("NOAUTH") != std::string_view::npos) {
    return " (the server wants a password: give it with --password-file FILE or REDISFS_PASSWORD)";
  }
  if (message.find("WRONGPASS") != std::string_view::npos) {
    return " (check the user and the password of --redis, --password-file or REDISFS_PASSWORD)";
  }
  return "";
}

namespace {

// One command of a connection's setup, and the name its errors give it.
struct SetupStep {
  std::vector<std::string_view> argv;
  const char* what;
};

}  // namespace

// The setup commands of a connection to one node (`main`: the address it
// was asked for); `db` is the database number as text. The steps hold
// views of `url`, `client_name` and `db`.
static std::vector<SetupStep> _setup_steps(const RedisUrl& url, bool main, const std::string& client_name,
                                           const std::string& db) {
  std::vector<SetupStep> steps;
  if (!url.password.empty()) {
    steps.push_back(url.user.empty() ? SetupStep{{"AUTH", url.password}, "AUTH"}
                                     : SetupStep{{"AUTH", url.user, url.password}, "AUTH"});
  }
  if (main) {
    steps.push_back({{"INFO", "cluster"}, "INFO"});
  }
  if (url.db != 0) {
    steps.push_back({{"SELECT", db}, "SELECT"});
  }
  if (!client_name.empty()) {
    steps.push_back({{"CLIENT", "SETNAME", client_name}, "CLIENT SETNAME"});
  }
  steps.push_back({{"CLIENT", "ID"}, "CLIENT ID"});
  steps.push_back({{"INFO", "server"}, "INFO server"});
  steps.push_back({{"INFO", "replication"}, "INFO replication"});
  if (main && url.is_sentinel()) {
    steps.push_back({{"ROLE"}, "ROLE"});
  }
  return steps;
}

// The one line for a setup whose connection was lost at step `what`.
static Error _setup_lost(const RedisUrl& url, const std::string& address, const Error& e, const char* what) {
  std::string hint;
  if (url.tls.enabled && url.tls.cert.empty()) {
    // TLS 1.3: a server that wants a client certificate says so only
    // after the handshake, often by just closing the connection.
    hint = " (TLS: if the server requires a client certificate, give --tls-cert and --tls-key)";
  } else if (url.tls.enabled) {
    // Likewise for one it does not trust: its alert, or just a reset
    // when our first write crosses it.
    hint = " (TLS: the server may have refused our client certificate: is it signed by a CA the server trusts?)";
  }
  // e says "redis: connection to ... lost": one "redis: " is enough.
  std::string_view why = e.message;
  if (why.starts_with("redis: ")) {
    why.remove_prefix(7);
  }
  return Error{e.code, std::string("redis: ") + what + " on " + address + " failed: " + std::string(why) + hint,
               Fault::Unreachable};
}

std::optional<std::string_view> info_field(std::string_view info, std::string_view name) {
  for (std::size_t at = 0; at < info.size();) {
    std::size_t end = info.find('\n', at);
    std::string_view line = info.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ':') {
      line.remove_prefix(name.size() + 1);
      if (line.ends_with('\r')) {
        line.remove_suffix(1);
      }
      return line;
    }
    if (end == std::string_view::npos) {
      break;
    }
    at = end + 1;
  }
  return std::nullopt;
}

std::uint64_t info_u64(std::string_view info, std::string_view name) {
  std::string_view v = info_field(info, name).value_or("");
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && p == v.data() + v.size() ? n : 0;
}

// An INFO field of a node's, for its record: at most 64 bytes.
static std::string _info_field(std::string_view info, std::string_view name) {
  return std::string(info_field(info, name).value_or("").substr(0, 64));
}

Status Connection::setup(Node& n, Deadline deadline) {
  if (m_url.password.empty() && !m_url.user.empty()) {
    return make_error(EINVAL, "redis: user " + m_url.user + " needs a password (REDISFS_PASSWORD or --password-file)");
  }
  // One round trip: every setup command is sent at once, the replies are
  // read in order.
  const bool main = n.address == m_main;
  std::string db = std::to_string(m_url.db);
  std::vector<SetupStep> steps = _setup_steps(m_url, main, m_client_name, db);
  std::string out;
  for (const SetupStep& st : steps) {
    out += _format(st.argv);
  }
  Deadline reply_deadline = std::min(deadline, Clock::now() + _reply_timeout(m_url));
  // A server that turns the connection away (at maxclients: "ERR max
  // number of clients reached") writes its error as the first reply and
  // closes: the writes then fail (EPIPE) or a later reply is lost, and that
  // error says why. (Only the first: a later step's refusal, such as an ACL
  // user's INFO, says nothing of a loss after it.)
  std::optional<Error> said;
  if (Status w = n.t->write_all(out.data(), out.size(), reply_deadline); !w.ok()) {
    auto parting = read_raw(n, std::min(reply_deadline, Clock::now() + std::chrono::milliseconds(100)));
    const bool refused = !parting.ok() && parting.error().fault != Fault::Lost;
    return _setup_lost(m_url, n.address, refused ? parting.error() : w.error(), steps.front().what);
  }
  std::optional<Error> first;
  for (const SetupStep& st : steps) {
    auto raw = read_raw(n, reply_deadline);
    if (!raw.ok() && raw.error().fault == Fault::Lost) {
      return said ? _setup_lost(m_url, n.address, *said, steps.front().what)
                  : _setup_lost(m_url, n.address, raw.error(), st.what);
    }
    std::string_view what = st.what;
    if (!raw.ok()) {
      if (&st == &steps.front()) {
        said = raw.error();
      }
      Error e = std::move(raw).error();
      if (what == "INFO" || what == "CLIENT ID" || what == "INFO server" || what == "INFO replication") {
        continue;  // an ACL user without +info / +client|id: a standalone server, no id
      }
      if (what == "SELECT" && m_cluster) {
        e = make_error(EINVAL, "redis: " + n.address + " is a cluster node: a cluster has only database 0");
      } else {
        e.message = "redis: " + std::string(what) + " on " + n.address + " failed: " + e.message.substr(7) +
                    _auth_hint(e.message);
      }
      if (!first) {
        first = std::move(e);
      }
      continue;
    }
    ReplyView v = raw->view();
    if (what == "INFO") {
      m_cluster = v.str().find("cluster_enabled:1") != std::string_view::npos;
    } else if (what == "CLIENT ID") {
      n.client_id = v.integer();
    } else if (what == "INFO server") {
      n.run_id = _info_field(v.str(), "run_id");
    } else if (what == "INFO replication") {
      n.replid = _info_field(v.str(), "master_replid");
      n.replid2 = _info_field(v.str(), "master_replid2");
    } else if (what == "ROLE" && !first && (v.size() == 0 || v[0].str() != "master")) {
      // A paused old master still answers as a master for a while after
      // the failover; the sentinels are asked first, the server second.
      first = Error{EAGAIN, "redis: " + n.address + ", named master by the sentinels, answers as " +
                                std::string(v.size() > 0 ? v[0].str() : "?"),
                    Fault::Unreachable};
    }
  }
  if (first) {
    return std::move(*first);
  }
  return {};
}

Result<Node*> Connection::node_at(const std::string& address, Deadline deadline) {
  Node* n = nullptr;
  for (auto& p : m_nodes) {
    if (p->address == address) {
      n = p.get();
    }
  }
  if (n != nullptr && n->up()) {
    return n;
  }
  if (n == nullptr) {
    m_nodes.push_back(std::make_unique<Node>());
    n = m_nodes.back().get();
    n->address = address;
    n->buf.resize(64 * 1024);
  }
  Deadline connect_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(5));
  Result<std::unique_ptr<Transport>> t = make_error(EINVAL, "no address");
  if (m_url.is_unix && address == m_url.path) {
    t = Transport::connect_unix(address, connect_deadline);
  } else {
    std::string host;
    int port = 0;
    if (!_split_address(address, host, port)) {
      return make_error(EPROTO, "redis: bad server address " + shown(address, 80, 0));
    }
    t = Transport::connect_tcp(host, port, m_url.tls, connect_deadline);
  }
  if (!t.ok()) {
    Error e = std::move(t).error();
    if (e.code != EACCES && e.code != EINVAL) {  // a TLS trust problem does not go away by waiting
      e.fault = Fault::Unreachable;
    }
    e.message = "redis: " + e.message;
    return e;
  }
  n->t = std::move(t).value();
  n->reader = new_arena_reader();
  n->out.clear();
  n->out_big.clear();
  if (Status st = setup(*n, deadline); !st.ok()) {
    drop(*n, st.error());
    return std::move(st).error();
  }
  return n;
}

// The master the sentinels name (the first sentinel that answers).
Result<std::string> Connection::ask_sentinels(Deadline deadline) {
  Error last = make_error(EIO, "no sentinel answered");
  bool any = false;  // a sentinel answered: its master may be electing
  for (const HostPort& s : m_url.sentinels) {
    Deadline d = std::min(deadline, Clock::now() + std::chrono::seconds(2));
    auto t = Transport::connect_tcp(s.host, s.port, m_url.tls, d);
    if (!t.ok()) {
      last = std::move(t).error();
      continue;
    }
    any = true;
    redisReader* reader = new_arena_reader();
    std::vector<char> buf(16 * 1024);
    std::unique_ptr<redisReader, void (*)(redisReader*)> guard(reader, redisReaderFree);
    if (!m_url.sentinel_password.empty()) {
      auto a = m_url.sentinel_user.empty()
                   ? _direct(**t, reader, buf, {"AUTH", m_url.sentinel_password}, d)
                   : _direct(**t, reader, buf, {"AUTH", m_url.sentinel_user, m_url.sentinel_password}, d);
      if (!a.ok()) {
        last = make_error(EIO, "sentinel " + s.display() + ": AUTH failed: " + a.error().message);
        continue;
      }
      if (a->view().type() == ReplyView::Type::Error) {  // (its words: a wrong password, or its limit of clients)
        last = make_error(EACCES, "sentinel " + s.display() + " refused AUTH: " + shown(a->view().str(), 200, 0));
        continue;
      }
    }
    auto r = _direct(**t, reader, buf, {"SENTINEL", "get-master-addr-by-name", m_url.master_name}, d);
    if (!r.ok()) {
      last = std::move(r).error();
      continue;
    }
    ReplyView v = r->view();
    if (v.type() == ReplyView::Type::Error) {
      last = make_error(EIO, "sentinel " + s.display() + ": " + shown(v.str(), 200, 0));
      continue;
    }
    if (!v.is_array() || v.size() != 2) {
      last = make_error(ENOENT,
                        "sentinel " + s.display() + " knows no master named " + shown(m_url.master_name, 80, 0));
      continue;
    }
    int port = 0;
    std::string_view p = v[1].str();
    std::from_chars(p.data(), p.data() + p.size(), port);
    return HostPort{std::string(v[0].str()), port}.display();
  }
  return Error{last.code,
               "redis: cannot find master " + shown(m_url.master_name, 80, 0) + " through " + m_url.display() + ": " +
                   last.message,
               // (no sentinel reachable at all: a plain error at start; an
               // outage later, the retry policy makes of it)
               !any || last.code == ENOENT || last.code == EACCES ? Fault::None : Fault::Unreachable};
}

// The master: the server of the URL, or the one the sentinels name.
Status Connection::connect_main(Deadline deadline) {
  if (m_url.is_unix) {
    m_main = m_url.path;
  } else if (!m_url.is_sentinel()) {
    m_main = HostPort{m_url.host, m_url.port}.display();
  } else {
    TRY_ASSIGN(m_main, ask_sentinels(deadline));
  }
  auto reached = node_at(m_main, deadline);
  if (!reached.ok() && m_cluster && reached.error().fault == Fault::Unreachable) {
    // The node we knew is down: any other node of the cluster will do,
    // and MOVED replies lead to the masters from there.
    for (const std::string& other : m_cluster_nodes) {
      if (other != m_main && node_at(other, deadline).ok()) {
        m_main = other;
        reached = node_at(m_main, deadline);
        break;
      }
    }
  }
  TRY_ASSIGN(Node * n, std::move(reached));
  if (m_cluster && m_cluster_nodes.empty()) {
    // Learn every node (masters and replicas) while this one is free.
    auto slots = _direct(*n->t, n->reader, n->buf, {"CLUSTER", "SLOTS"},
                         std::min(deadline, Clock::now() + _reply_timeout(m_url)));
    if (slots.ok() && slots->view().is_array()) {
      ReplyView v = slots->view();
      for (std::size_t i = 0; i < v.size(); ++i) {
        for (std::size_t j = 2; j < v[i].size(); ++j) {
          ReplyView node = v[i][j];
          auto port = node.size() >= 2 ? node[1].as_int() : std::nullopt;
          if (port && !node[0].str().empty()) {
            std::string a = HostPort{std::string(node[0].str()), static_cast<int>(*port)}.display();
            if (std::find(m_cluster_nodes.begin(), m_cluster_nodes.end(), a) == m_cluster_nodes.end()) {
              m_cluster_nodes.push_back(a);
            }
          }
        }
      }
    } else if (!slots.ok()) {
      drop(*n, slots.error());
    }
  }
  return {};
}

const std::string* Connection::slot_address(int slot) const {
  if (slot < 0 || static_cast<std::size_t>(slot) >= m_slot_node.size() || m_slot_node[slot] < 0) {
    return nullptr;
  }
  return &m_slot_addresses[static_cast<std::size_t>(m_slot_node[slot])];
}

std::string Connection::address_of(std::string_view key) const {
  const std::string* at = m_cluster ? slot_address(key_slot(key)) : nullptr;
  return at == nullptr ? std::string() : *at;
}

void Connection::set_slot(int slot, const std::string& address) {
  if (slot < 0 || slot > 16383) {
    return;
  }
  if (m_slot_node.empty()) {
    m_slot_node.assign(16384, -1);
  }
  auto it = std::find(m_slot_addresses.begin(), m_slot_addresses.end(), address);
  if (it == m_slot_addresses.end()) {
    if (m_slot_addresses.size() >= 30000) {  // a server that names ever new nodes
      m_slot_addresses.clear();
      m_slot_node.assign(16384, -1);
    }
    m_slot_addresses.push_back(address);
    it = m_slot_addresses.end() - 1;
  }
  m_slot_node[static_cast<std::size_t>(slot)] = static_cast<std::int16_t>(it - m_slot_addresses.begin());
}

Result<Node*> Connection::node_for(int slot, Deadline deadline) {
  std::string address;
  if (m_cluster) {
    if (slot < 0 && !m_keyless_node.empty()) {
      address = m_keyless_node;
    } else {
      int s = slot >= 0 ? slot : m_keyless_slot;
      if (s >= 0 && slot_address(s) == nullptr && !m_main.empty() &&
          Clock::now() - m_slots_asked > std::chrono::milliseconds(200)) {
        m_slots_asked = Clock::now();
        // Not learned from a MOVED yet. A SCAN MATCH "{tag}..." or a
        // keyless command routed to a slot gets no MOVED (to the server it
        // has no key): sent to the wrong master it would just find nothing.
        // Ask the node first reached where every slot is (best effort).
        std::string keyless = m_keyless_node;
        m_keyless_node = m_main;  // CLUSTER SLOTS goes there, without coming back here
        Entry q;
        q.cmd = _format(std::initializer_list<std::string_view>{"CLUSTER", "SLOTS"});
        q.idempotent = true;
        q.start = Clock::now();
        auto r = send_one(q, deadline, false);  // once: the caller's command has the retry policy
        m_keyless_node = keyless;
        std::string main_host;
        int main_port = 0;
        (void)_split_address(m_main, main_host, main_port);
        for (std::size_t i = 0; r.ok() && i < r->view().size(); ++i) {
          ReplyView range = r->view()[i];
          if (range.size() < 3 || range[2].size() < 2) {
            continue;
          }
          auto from = range[0].as_int();
          auto to = range[1].as_int();
          auto port = range[2][1].as_int();
          std::string host(range[2][0].str());
          if (host.empty() || host == "?") {
            host = main_host;
          }
          if (!from || !to || !port || *from < 0 || *to > 16383) {
            continue;
          }
          std::string a = HostPort{host, static_cast<int>(*port)}.display();
          for (long long k = *from; k <= *to; ++k) {
            set_slot(static_cast<int>(k), a);
          }
        }
      }
      if (const std::string* known = s >= 0 ? slot_address(s) : nullptr) {
        address = *known;
      }
    }
  }
  if (address.empty()) {
    // The master: connected (again, through the sentinels) when needed.
    Node* main = nullptr;
    for (auto& p : m_nodes) {
      if (p->address == m_main) {
        main = p.get();
      }
    }
    if (main == nullptr || !main->up()) {
      TRY(connect_main(deadline));
    }
    address = m_main;
  }
  return node_at(address, deadline);
}

// SCAN ... MATCH "{tag}...": the tag's slot (a filesystem's keys are all in
// it, so that is the node to scan in a cluster).
static int _scan_slot(std::span<const std::string_view> argv) {
  for (std::size_t i = 2; i + 1 < argv.size(); ++i) {
    if (_upper(argv[i]) == "MATCH") {
      std::string_view pattern = argv[i + 1];
      auto open = pattern.find('{');
      auto close = pattern.find('}', open == std::string_view::npos ? 0 : open + 1);
      if (open != std::string_view::npos && close != std::string_view::npos && close > open + 1 &&
          pattern.substr(open, close - open).find_first_of("*?[\\") == std::string_view::npos) {
        return key_slot(pattern);
      }
    }
  }
  return -1;
}

// A command this big (a block of a write) is sent from its entry, not
// copied into the node's buffer first (Node::out_big).
static constexpr std::size_t k_big_command = 32 * 1024;

void Connection::place(Entry& e, Node& n) {
  e.node = &n;
  e.gen = n.gen;
  // (the entry, and what it borrows, live until its reply is read: after the flush)
  if (!e.borrowed.empty()) {
    n.out += e.cmd;
    n.out_big.emplace_back(n.out.size(), e.borrowed);
    n.out += e.tail;
  } else if (e.cmd.size() >= k_big_command) {
    n.out_big.emplace_back(n.out.size(), e.cmd);
  } else {
    n.out += e.cmd;
  }
}

void Connection::queue(std::span<const std::string_view> argv, const lua::ScriptSource* script, std::uint64_t op,
                       std::size_t borrowed) {
  auto e = std::make_unique<Entry>();
  if (borrowed < argv.size() && !argv[borrowed].empty() && script == nullptr) {  // (place tells by the view)
    e->cmd = _format(argv, borrowed, &e->tail);
    e->borrowed = argv[borrowed];
  } else {
    e->cmd = _format(argv);
  }
  std::size_t k = _key_index(argv);
  e->slot = k != 0 ? key_slot(argv[k]) : -1;
  std::string name = argv.empty() ? std::string() : _upper(argv[0]);
  if (name == "SCAN") {
    e->slot = _scan_slot(argv);
  }
  e->idempotent = script == nullptr ? _idempotent(argv) : false;
  e->script = script;
  e->op = op;
  if (op != 0) {
    e->op_key = m_op_log;
  }
  e->start = Clock::now();
  // A transaction is never retried piecemeal, and goes to one node: in a
  // cluster, MULTI waits for the first command with a key to know which.
  const bool begins = name == "MULTI";
  const bool ends = name == "EXEC" || name == "DISCARD";
  e->in_tx = m_tx || begins;
  if (begins) {
    m_tx = true;
    m_tx_node = nullptr;
    m_tx_gen = 0;
    m_tx_unsent = false;
    if (m_cluster) {
      m_tx_multi = e.get();
      m_queue.push_back(std::move(e));
      return;
    }
  }
  Result<Node*> n = make_error(EIO, "");
  if (m_tx && m_tx_unsent) {
    // Its MULTI could not be sent: neither may the rest (they would run
    // outside a transaction).
    n = Error{EIO, "redis: the transaction's MULTI could not be sent", Fault::Unreachable};
  } else if (m_tx && m_tx_node != nullptr) {
    n = m_tx_node->gen == m_tx_gen && m_tx_node->up()
            ? Result<Node*>(m_tx_node)
            : Result<Node*>(Error{EIO, "redis: connection to " + m_tx_node->address + " lost in a transaction",
                                  Fault::Lost});
  } else {
    n = node_for(m_tx_multi != nullptr && e->slot < 0 && !ends ? -1 : e->slot, e->start + m_url.timeout);
  }
  if (n.ok()) {
    if (m_tx_multi != nullptr) {
      place(*m_tx_multi, **n);
      m_tx_multi = nullptr;
    }
    if (m_tx && m_tx_node == nullptr) {
      m_tx_node = *n;
      m_tx_gen = (*n)->gen;
    }
    place(*e, **n);
  } else {
    e->unsent = std::move(n).error();
    if (e->unsent.fault == Fault::None && e->unsent.code != EACCES && e->unsent.code != EINVAL) {
      e->unsent.fault = Fault::Unreachable;
    }
    m_tx_unsent = m_tx_unsent || m_tx;
    if (m_tx_multi != nullptr) {
      m_tx_multi->unsent = e->unsent;
      m_tx_multi = nullptr;
    }
  }
  if (ends) {
    m_tx = false;
    m_tx_node = nullptr;
  }
  m_queue.push_back(std::move(e));
}

Status Connection::flush(Node& n, Deadline deadline) {
  if ((n.out.empty() && n.out_big.empty()) || !n.up()) {
    return {};
  }
  _count_round_trip();
  Status st;
  if (n.out_big.empty()) {
    st = n.t->write_all(n.out.data(), n.out.size(), deadline);
  } else {
    std::vector<std::string_view> pieces;
    pieces.reserve(2 * n.out_big.size() + 1);
    std::size_t at = 0;
    for (const auto& [before, bytes] : n.out_big) {
      pieces.emplace_back(n.out.data() + at, before - at);
      pieces.emplace_back(bytes);
      at = before;
    }
    pieces.emplace_back(n.out.data() + at, n.out.size() - at);
    st = n.t->write_all(pieces, deadline);
  }
  n.out.clear();
  n.out_big.clear();
  for (std::size_t i = m_head; i < m_queue.size(); ++i) {
    Entry& e = *m_queue[i];
    if (e.node == &n && e.gen == n.gen && !e.sent) {
      e.sent = true;  // or partly: after a failed write, its fate is unknown
      e.client_id = n.client_id;
      e.run_id = n.run_id;
    }
  }
  if (!st.ok()) {
    drop(n, st.error());
  }
  return st;
}

Result<Reply> Connection::check(Reply reply) {
  g_replies.fetch_add(1, std::memory_order_relaxed);
  if (reply.view().type() == ReplyView::Type::Error) {
    return error_from_redis(reply.view().str());
  }
  outage_over(OutageNote::Kind::Server);  // (the server answers)
  return reply;
}

// Replies are read straight into the hiredis reader's own buffer (its
// public fields, with hiredis's sds calls), not into ours and then copied
// there by redisReaderFeed: a READ's 1 MiB reply went through one more
// copy for nothing. Room for k_read_chunk bytes a read; the buffer is kept
// between replies unless more than k_reader_keep of it is free (hiredis
// drops one with more than 16 KiB free once it is empty, so each 1 MiB
// reply grew it again from nothing, page faults included). A connection
// that read a big reply keeps up to about 400 KiB.
//
// A read is smaller, k_read_small, unless the reply it continues is
// already that big (a READ's EXEC, a big string): hiredis moves what is
// left of its buffer to the front each time a reply ends 1 KiB or more
// into it, so a read holding many small replies (a listing's HGETALLs, a
// tool's pipeline) was moved again about once per KiB of them, a cost
// quadratic in the read's size (11% of the daemon's instructions in an
// rm -rf of a 1,000-file directory).
static constexpr std::size_t k_read_chunk = 128 * 1024;
static constexpr std::size_t k_read_small = 16 * 1024;
static constexpr std::size_t k_reader_keep = 512 * 1024;

static char* _reader_room(redisReader* r) {
  if (r->len == 0 && sdsavail(r->buf) > k_reader_keep) {
    sdsfree(r->buf);
    r->buf = sdsempty();
    r->pos = 0;
  }
  sds grown = r->buf != nullptr ? sdsMakeRoomFor(r->buf, k_read_chunk) : nullptr;
  if (grown == nullptr) {
    return nullptr;
  }
  r->buf = grown;
  return r->buf + r->len;
}

static void _reader_fed(redisReader* r, std::size_t got) {
  sdsIncrLen(r->buf, static_cast<int>(got));
  r->len = sdslen(r->buf);
}

Result<Reply> Connection::read_raw(Node& n, Deadline deadline) {
  for (;;) {
    void* r = nullptr;
    const std::size_t unread = n.reader->len - n.reader->pos;
    if (redisReaderGetReply(n.reader, &r) != REDIS_OK) {
      Error e{EIO, "redis: protocol error from " + n.address, Fault::Lost};
      drop(n, e);
      return e;
    }
    // (what hiredis keeps of its buffer is unread: it only moves it)
    const std::size_t partial = n.reader->len - n.reader->pos;
    if (r != nullptr) {
      n.reply_read = 0;
      return check(Reply(static_cast<redisReply*>(r)));
    }
    n.reply_read += unread - partial;  // an array's elements parsed so far
    // Waiting on the master of a sentinel set: every second, ask the
    // sentinels whether it still is (a stopped master answers nothing, and
    // a failover makes that final: no need to wait out the reply timeout).
    bool watch = m_url.is_sentinel() && n.address == m_main;
    Deadline slice = watch ? std::min(deadline, Clock::now() + std::chrono::seconds(1)) : deadline;
    char* room = _reader_room(n.reader);
    if (room == nullptr) {
      Error e{ENOMEM, "redis: no memory for a reply from " + n.address, Fault::Lost};
      drop(n, e);
      return e;
    }
    const bool big = n.reply_read + partial >= k_read_small;
    auto got = n.t->read_some(room, big ? k_read_chunk : k_read_small, slice);
    if (!got.ok() && got.error().code == ETIMEDOUT && watch && Clock::now() < deadline) {
      auto master = ask_sentinels(std::min(deadline, Clock::now() + std::chrono::seconds(1)));
      if (!master.ok() || *master == n.address) {
        continue;
      }
      got = make_error(EIO, "the sentinels have named " + *master + " master instead");
    }
    if (!got.ok()) {
      Error e{EIO, "redis: connection to " + n.address + " lost: " + got.error().message, Fault::Lost};
      drop(n, e);
      return e;
    }
    _reader_fed(n.reader, *got);
  }
}

// Sends `e` again on its node (or a redirection's), alone: replies of
// entries still in flight there are read ahead first.
Result<Reply> Connection::send_one(Entry& e, Deadline deadline, bool asking) {
  e.sent_again = true;
  Result<Node*> target = make_error(EIO, "");
  std::string ask_to;
  if (asking) {
    ask_to = _redirect_address(e.unsent.message);
    target = node_at(ask_to, deadline);
  } else {
    target = node_for(e.slot, deadline);
  }
  if (!target.ok()) {
    Error err = std::move(target).error();
    if (err.fault == Fault::None && err.code != EACCES && err.code != EINVAL) {
      err.fault = Fault::Unreachable;
    }
    return err;
  }
  Node& n = **target;
  Deadline reply_deadline = std::min(deadline + e.waits, Clock::now() + _reply_timeout(m_url) + e.waits);
  TRY(flush(n, reply_deadline));
  for (std::size_t i = m_head; i < m_queue.size(); ++i) {
    Entry& other = *m_queue[i];
    if (&other != &e && other.node == &n && other.gen == n.gen && other.sent && !other.answered && !other.early) {
      other.early = read_raw(n, reply_deadline);
      other.early_epoch = m_resend_ok;
    }
  }
  if (!n.up()) {
    return Error{EIO, "redis: connection to " + n.address + " lost", Fault::Unreachable};
  }
  if (asking) {
    n.out += _format(std::initializer_list<std::string_view>{"ASKING"});
  }
  n.out += e.cmd;
  n.out += e.borrowed;
  n.out += e.tail;
  e.node = &n;
  e.gen = n.gen;
  e.client_id = n.client_id;
  e.run_id = n.run_id;
  _count_round_trip();
  Status st = n.t->write_all(n.out.data(), n.out.size(), reply_deadline);
  n.out.clear();
  if (!st.ok()) {
    drop(n, st.error());
    return Error{EIO, "redis: connection to " + n.address + " lost: " + st.error().message, Fault::Lost};
  }
  if (asking) {
    (void)read_raw(n, reply_deadline);
  }
  return read_raw(n, reply_deadline);
}

// After a lost reply of a writing script: did it run? Its record says.
Result<Reply> Connection::recover(Entry& e, Deadline deadline) {
  std::string op = std::to_string(e.op);
  Result<Node*> same = node_for(key_slot(e.op_key), deadline);
  if (e.client_id != 0 && !e.run_id.empty() && same.ok() && (*same)->run_id == e.run_id) {
    // If the server still holds the old connection (a reply timed out),
    // its command may be waiting to run: end that connection first, so the
    // command has either run or never will (a user without +client|kill
    // skips this; the old command then has had the reply timeout to run).
    // Only on the very server process it went to: ids are per process.
    Entry kill;
    std::string id = std::to_string(e.client_id);
    kill.cmd = _format(std::initializer_list<std::string_view>{"CLIENT", "KILL", "ID", id});
    kill.slot = key_slot(e.op_key);
    kill.idempotent = true;
    kill.start = e.start;
    (void)settle(kill, send_one(kill, deadline, false));
  }
  Entry probe;
  probe.cmd = _format(std::initializer_list<std::string_view>{"HGET", e.op_key, e.op_field});
  probe.slot = key_slot(e.op_key);
  probe.idempotent = true;
  probe.start = e.start;
  auto r = settle(probe, send_one(probe, deadline, false));
  if (!r.ok()) {
    return r;
  }
  // "<id>:<reply>" of the latest change that wrote this entry's field.
  // Changes run in the order they were sent, and no change sent after this
  // one has its field (record_field) unless a pipeline that never drains
  // wrapped: a later id means this one ran, but its reply is gone.
  std::string_view rec = r->view().is_nil() ? std::string_view() : r->view().str();
  std::uint64_t last = 0;
  auto colon = rec.find(':');
  if (!rec.empty()) {
    auto [end, ec] = std::from_chars(rec.data(), rec.data() + std::min(colon, rec.size()), last);
    if (ec != std::errc() || colon == std::string_view::npos) {
      return make_error(EIO, "redis: unreadable outcome record of " + std::string(e.script->name) + " #" + op);
    }
  }
  if (rec.empty() || last < e.op) {
    return send_one(e, deadline, false);  // it did not run: now it may
  }
  if (last > e.op) {
    return make_error(EIO, "redis: " + std::string(e.script->name) + " #" + op +
                               " ran, but its reply was lost with the connection");
  }
  rec.remove_prefix(colon + 1);
  auto resp = outcome_to_resp(rec);  // recorded as MessagePack (outcome.hpp)
  if (!resp) {
    return make_error(EIO, "redis: unreadable outcome record of " + std::string(e.script->name) + " #" + op);
  }
  redisReader* reader = new_arena_reader();
  std::unique_ptr<redisReader, void (*)(redisReader*)> guard(reader, redisReaderFree);
  redisReaderFeed(reader, resp->data(), resp->size());
  void* out = nullptr;
  if (redisReaderGetReply(reader, &out) != REDIS_OK || out == nullptr) {
    return make_error(EIO, "redis: unreadable outcome record of " + std::string(e.script->name) + " #" + op);
  }
  return check(Reply(static_cast<redisReply*>(out)));
}

// The snapshot's staging prefix that a COW refusal names ("... COW <staging> ...").
static std::string_view _cow_staging(std::string_view message) {
  auto at = message.find("COW ");
  std::string_view staging = at == std::string_view::npos ? std::string_view() : message.substr(at + 4);
  return staging.substr(0, staging.find(' '));
}

namespace {

// The pause before a command is sent again: 5 ms, doubling up to 500 ms.
struct BackOff {
  std::chrono::milliseconds pause{5};
  bool skip = false;  // the first pause (a stale refusal)
  void operator()() {
    if (skip) {
      skip = false;
      return;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
};

}  // namespace

// A change that began at `start` met a freeze (FROZEN): it sleeps and is
// sent again, or, frozen out past freeze_limit(), fails with EBUSY.
static std::optional<Error> _frozen_wait(Clock::time_point start, const Error& why, BackOff& back_off) {
  const std::chrono::seconds limit = freeze_limit();
  if (Clock::now() - start > limit) {
    outage_given_up(OutageNote::Kind::Freeze);
    return make_error(EBUSY, "the filesystem has been frozen (a delete, an install or a snapshot) for over " +
                                 std::to_string(limit.count()) + " s");
  }
  outage_waiting(OutageNote::Kind::Freeze, start, why);
  std::this_thread::sleep_for(std::min(back_off.pause, std::chrono::milliseconds(50)));
  back_off.pause = std::min(back_off.pause * 2, std::chrono::milliseconds(50));
  return std::nullopt;
}

// A call waited out an outage for longer than --timeout: EIO, whatever the
// socket said.
static Error _gave_up(Error err, std::chrono::milliseconds timeout, int attempt) {
  err.message += " (gave up after " + timeout_text(timeout) + ", " + std::to_string(attempt) + " tries)";
  err.code = EIO;
  return err;
}

Result<Reply> Connection::settle(Entry& e, Result<Reply> r) {
  using namespace std::chrono;
  if (e.in_tx) {
    return r;  // a transaction's parts: the caller sees the failure whole
  }
  Deadline deadline = e.start + m_url.timeout + e.waits;
  // A refusal read ahead before a command sent again later ran is stale:
  // the server was refusing no more then (a pipeline refused by BUSY or
  // LOADING is sent again at the pace of round trips, not of back-offs).
  BackOff back_off{milliseconds(5), e.early.has_value() && e.early_epoch < m_resend_ok};
  bool moved_once = false;
  bool frozen_out = false;
  for (int attempt = 1;; ++attempt) {
    if (r.ok()) {
      m_resend_ok += attempt > 1 ? 1 : 0;
      frozen_out ? outage_over(OutageNote::Kind::Freeze) : void();
      return r;
    }
    Fault f = r.error().fault;
    bool asking = false;
    if (f == Fault::NoScript && e.script != nullptr) {
      std::size_t at = e.cmd.find("EVALSHA\r\n$40\r\n");
      auto n = node_for(e.slot, deadline);
      auto sha = n.ok() ? reload_script(*e.script, **n, deadline) : Result<std::string>(n.error());
      if (sha.ok() && at != std::string::npos && sha->size() == 40) {
        e.cmd.replace(at + 14, 40, *sha);
      } else if (!sha.ok() && sha.error().fault == Fault::None) {
        return std::move(sha).error();  // (an outage meanwhile: waited out below)
      } else if (!sha.ok()) {
        outage_waiting(OutageNote::Kind::Server, e.start, sha.error());
        back_off();
      }
    } else if (f == Fault::Frozen && e.script != nullptr) {
      // A delete, an install or a copy across slots: it lasts as long as they do.
      if (auto given_up = _frozen_wait(e.start, r.error(), back_off)) {
        return std::move(*given_up);
      }
      frozen_out = true;
    } else if (f == Fault::Cow && e.script != nullptr) {
      // A snapshot is being taken copy-on-write: send it again naming the
      // snapshot's keys (prelude.lua).
      if (!reformat_cow(e, _cow_staging(r.error().message))) {
        return r;
      }
    } else if (f == Fault::Moved) {
      std::string to = _redirect_address(r.error().message);
      if (to.empty() || e.slot < 0) {
        return r;
      }
      set_slot(e.slot, to);
      if (moved_once) {
        back_off();
      }
      moved_once = true;
    } else if (f == Fault::Ask) {
      e.unsent = r.error();
      asking = true;
    } else if (f == Fault::ReadOnly && (m_url.is_sentinel() || m_cluster)) {
      // A failover made our server a replica: find the master again.
      for (auto& n : m_nodes) {
        drop(*n, r.error());
      }
      m_slot_node.clear();
      outage_waiting(OutageNote::Kind::Server, e.start, r.error());
      back_off();
    } else if (_refused_not_run(f) || (f == Fault::Lost && (e.idempotent || e.op != 0))) {
      if ((f == Fault::Lost || f == Fault::Unreachable) && m_cluster) {
        m_slot_node.clear();  // a dead master: its replica may have the slot now
      }
      outage_waiting(OutageNote::Kind::Server, e.start, r.error());
      back_off();
    } else {
      return e.failed(std::move(r).error());
    }
    if (Clock::now() >= deadline && !(f == Fault::Frozen && e.script != nullptr)) {
      return _gave_up(std::move(r).error(), m_url.timeout, attempt);
    }
    r = f == Fault::Lost && e.op != 0 ? recover(e, deadline) : send_one(e, deadline, asking);
  }
}

Result<Reply> Connection::read_reply() {
  if (m_head >= m_queue.size()) {
    return make_error(EIO, "redis: no pipelined reply pending");
  }
  Entry& e = *m_queue[m_head];
  Deadline reply_deadline = Clock::now() + _reply_timeout(m_url) + e.waits;
  // Send what is queued, on every node, before waiting for anything.
  for (auto& n : m_nodes) {
    (void)flush(*n, reply_deadline);
  }
  Result<Reply> first = make_error(EIO, "");
  if (e.early) {
    first = std::move(*e.early);
  } else if (e.node == nullptr) {
    first = e.unsent;
  } else if (e.node->gen != e.gen || !e.node->up()) {
    first = e.sent ? Error{EIO, "redis: connection to " + e.node->address + " lost", Fault::Lost}
                   : Error{EIO, "redis: connection to " + e.node->address + " lost", Fault::Unreachable};
  } else {
    first = read_raw(*e.node, reply_deadline);
  }
  e.answered = true;
  auto r = settle(e, std::move(first));
  m_sent_again = e.sent_again;
  m_answered_by.assign(e.run_id);  // (no allocation once it has held one)
  ++m_head;
  if (m_head == m_queue.size()) {
    m_queue.clear();
    m_head = 0;
  } else if (m_head >= 256 && 2 * m_head >= m_queue.size() && m_tx_multi == nullptr) {
    // A caller that keeps a rolling pipeline (restore, dump) never drains
    // it: the entries read, and the commands they hold, go now, not at the
    // end (a restore held its whole dump here).
    m_queue.erase(m_queue.begin(), m_queue.begin() + static_cast<std::ptrdiff_t>(m_head));
    m_head = 0;
  }
  return r;
}

std::vector<Result<Reply>> Connection::read_replies(std::size_t n) {
  std::vector<Result<Reply>> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(read_reply());
  }
  return out;
}

Result<Reply> Connection::transaction(std::span<const Args> commands) {
  const Clock::time_point began = Clock::now();
  const Deadline deadline = began + m_url.timeout;
  BackOff back_off;
  for (int attempt = 1;; ++attempt) {
    append({"MULTI"});
    for (const Args& cmd : commands) {
      append(cmd);
    }
    append({"EXEC"});
    std::vector<Result<Reply>> replies = read_replies(commands.size() + 2);
    if (replies.back().ok()) {
      return std::move(replies.back());
    }
    Error first = replies.back().error();
    for (auto& r : replies) {
      if (!r.ok()) {
        first = std::move(r).error();
        break;
      }
    }
    // (Unreachable: the MULTI was not sent, and so nothing after it.)
    const bool aborted = replies.back().error().message.find("EXECABORT") != std::string::npos;
    const bool refused = (aborted || first.fault == Fault::Unreachable) && _refused_not_run(first.fault);
    // A lost reply: the transaction ran once or not at all. Of commands
    // each of which leaves the server as it found it when sent twice
    // (SET, HSET, HDEL, DEL...: writes of given values, none read), the
    // whole sent again ends as the whole sent once, whether or not the
    // first one ran: sent again, as a lone command of that kind is.
    const bool resendable = first.fault == Fault::Lost && _all_idempotent(commands);
    if (!refused && !resendable) {
      if (first.fault == Fault::Lost) {
        first.message += " (during a transaction, which may have run: not sent again)";
      }
      return first;
    }
    if (first.fault == Fault::Lost && m_cluster) {
      m_slot_node.clear();  // a dead master: its replica may have the slot now
    }
    if (Clock::now() >= deadline) {
      return _gave_up(std::move(first), m_url.timeout, attempt);
    }
    outage_waiting(OutageNote::Kind::Server, began, first);
    back_off();
  }
}

Result<std::vector<Reply>> Connection::read_all() {
  std::vector<Reply> out;
  out.reserve(pending());
  std::optional<Error> first;
  while (pending() > 0) {
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

void Connection::append(std::span<const std::string_view> argv) { queue(argv, nullptr, 0); }

void Connection::append_borrowing(std::initializer_list<std::string_view> argv, std::size_t borrowed) {
  queue(std::span<const std::string_view>(argv.begin(), argv.size()), nullptr, 0, borrowed);
}

void Connection::append(std::initializer_list<std::string_view> argv) {
  append(std::span<const std::string_view>(argv.begin(), argv.size()));
}

void Connection::append(const Args& argv) {
  std::vector<std::string_view> v(argv.begin(), argv.end());
  append(std::span<const std::string_view>(v));
}

Result<Reply> Connection::command(std::span<const std::string_view> argv) {
  if (pending() != 0) {
    return make_error(EIO, "redis: command issued with pipelined replies pending");
  }
  append(argv);
  return read_reply();
}

Result<Reply> Connection::command(std::initializer_list<std::string_view> argv) {
  return command(std::span<const std::string_view>(argv.begin(), argv.size()));
}

Result<Reply> Connection::command(const Args& argv) {
  std::vector<std::string_view> v(argv.begin(), argv.end());
  return command(std::span<const std::string_view>(v));
}

// The SHA1 EVALSHA names a script by: computed here, until a server that
// loaded another text (reload_script) says otherwise.
const std::string& Connection::script_sha(const lua::ScriptSource& src) {
  auto it = m_shas.find(src.name);
  if (it == m_shas.end()) {
    it = m_shas.emplace(src.name, _sha1_hex(src.text)).first;
  }
  return it->second;
}

// SCRIPT LOAD on `n`, which said NOSCRIPT; the SHA1 it answers.
Result<std::string> Connection::reload_script(const lua::ScriptSource& src, Node& n, Deadline deadline) {
  std::string_view text = src.text;
  Entry load;
  load.cmd = _format(std::initializer_list<std::string_view>{"SCRIPT", "LOAD", text});
  load.idempotent = true;
  load.start = Clock::now();
  load.slot = -1;
  // SCRIPT LOAD goes to the node that said NOSCRIPT.
  std::string keyless = m_keyless_node;
  m_keyless_node = n.address;
  auto loaded = settle(load, send_one(load, deadline, false));
  if (!loaded.ok() && loaded.error().fault == Fault::None && text.starts_with("#!")) {
    // A server older than Redis 7 knows no shebang (script flags): load
    // the script without it (it then runs as before: refused by a full
    // server at its first write).
    text.remove_prefix(std::min(text.size(), text.find('\n') + 1));
    load.cmd = _format(std::initializer_list<std::string_view>{"SCRIPT", "LOAD", text});
    loaded = settle(load, send_one(load, deadline, false));
  }
  m_keyless_node = keyless;
  TRY_ASSIGN(Reply r, std::move(loaded));
  std::string sha(r.view().str());
  m_shas[src.name] = sha;
  return sha;
}

// How long a client goes on naming a snapshot's staging keys after a script
// told it of the snapshot: then it stops, and the next script tells it again
// if the snapshot is still being taken (COW <staging>).
static constexpr std::chrono::milliseconds k_cow_belief{2000};

std::string_view Connection::cow_trailer(std::span<const std::string_view> keys, std::vector<std::string>& out) {
  std::string_view first = keys.empty() ? std::string_view() : keys[0];
  std::string_view prefix = first.substr(0, first.find(':'));
  out.push_back(std::string(prefix) + ":COW");
  if (m_cow_staging.empty() || m_cow_prefix != prefix || Clock::now() - m_cow_learned > k_cow_belief) {
    return {};
  }
  Keys staging(m_cow_staging);
  out.push_back(staging.touched());
  for (std::string_view k : keys) {
    bool mine = k.size() > prefix.size() && k.starts_with(prefix) && k[prefix.size()] == ':';
    std::string_view rel = mine ? k.substr(prefix.size() + 1) : std::string_view();
    if (mine && is_filesystem_key(parse_relative_key(rel).kind)) {
      out.push_back(staging.absolute(rel));
    } else {
      out.push_back(out[1]);  // not a filesystem key: TOUCHED stands for "none"
    }
  }
  return m_cow_staging;
}

void Connection::eval_argv(std::string_view sha, std::span<const std::string_view> keys,
                           std::span<const std::string_view> args, std::string_view op_key, std::string_view op_arg,
                           std::vector<std::string>& own, std::vector<std::string_view>& argv) {
  // The outcome record's key and argument come last, the identity
  // trailer's (the superblock and the identity expected, set_identity)
  // before them, the copy-on-write trailer's before those (outcome.inc).
  own.clear();
  own.reserve(keys.size() + 4);  // the trailers' keys (views into `own` must stay valid)
  std::string_view cow_arg = cow_trailer(keys, own);
  const std::size_t trailer = own.size();
  std::string_view prefix = std::string_view(own[0]).substr(0, own[0].size() - 4);  // "<prefix>:COW"
  std::string_view id_arg = !m_identity.empty() && prefix == m_id_prefix ? std::string_view(m_identity) : "";
  own.push_back(std::string(prefix) + ":SB");
  own.push_back(std::to_string(keys.size() + trailer + 2));
  argv.clear();
  argv.reserve(8 + keys.size() + trailer + args.size());
  argv.emplace_back("EVALSHA");
  argv.emplace_back(sha);
  argv.emplace_back(own.back());
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), own.begin(), own.begin() + static_cast<std::ptrdiff_t>(trailer + 1));
  argv.emplace_back(op_key);
  argv.insert(argv.end(), args.begin(), args.end());
  argv.emplace_back(cow_arg);
  argv.emplace_back(id_arg);
  argv.emplace_back(op_arg);
}

// The argv of a formatted command (as _format wrote it).
static bool _parse_argv(std::string_view cmd, std::vector<std::string_view>& out) {
  out.clear();
  auto number = [&](char lead, std::size_t& n) {
    if (cmd.empty() || cmd[0] != lead) {
      return false;
    }
    auto end = cmd.find("\r\n");
    auto [p, ec] = std::from_chars(cmd.data() + 1, cmd.data() + (end == std::string_view::npos ? 0 : end), n);
    if (end == std::string_view::npos || ec != std::errc() || p != cmd.data() + end) {
      return false;
    }
    cmd.remove_prefix(end + 2);
    return true;
  };
  std::size_t count = 0;
  if (!number('*', count)) {
    return false;
  }
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t len = 0;
    if (!number('$', len) || cmd.size() < len + 2) {
      return false;
    }
    out.push_back(cmd.substr(0, len));
    cmd.remove_prefix(len + 2);
  }
  return cmd.empty();
}

bool Connection::reformat_cow(Entry& e, std::string_view staging) {
  std::vector<std::string_view> argv;
  std::size_t nk = 0;
  if (staging.empty() || !_parse_argv(e.cmd, argv) || argv.size() < 8 ||
      std::from_chars(argv[2].data(), argv[2].data() + argv[2].size(), nk).ec != std::errc() || nk < 3 ||
      nk + 6 > argv.size()) {
    return false;
  }
  std::string_view prefix = argv[3].substr(0, argv[3].find(':'));
  if (!is_cow_staging(prefix, staging)) {
    return false;  // a damaged <prefix>:COW (fsck reports it): the change fails
  }
  m_cow_prefix = std::string(prefix);
  m_cow_staging = std::string(staging);
  m_cow_learned = Clock::now();
  // The script's n keys, then COW (and with the staging keys named: TOUCHED
  // and n of them), the superblock, the outcome record's key; the
  // arguments end with the staging prefix, the identity and the record's.
  const bool named = !argv[argv.size() - 3].empty();
  const std::size_t n = named ? (nk - 4) / 2 : nk - 3;
  if ((named ? 2 * n + 4 : n + 3) != nk) {
    return false;
  }
  auto keys = std::span<const std::string_view>(argv).subspan(3, n);
  auto args = std::span<const std::string_view>(argv).subspan(3 + nk, argv.size() - 3 - nk - 3);
  std::vector<std::string> own;
  std::vector<std::string_view> again;
  eval_argv(argv[1], keys, args, argv[3 + nk - 1], argv.back(), own, again);
  e.cmd = _format(again);
  return true;
}

void Connection::append_eval(lua::ScriptId script, std::span<const std::string_view> keys,
                             std::span<const std::string_view> args) {
  const lua::ScriptSource* src = &lua::script_source(script);
  const std::string sha = script_sha(*src);
  if (!_script_records(*src)) {
    std::string nkeys = std::to_string(keys.size());
    std::vector<std::string_view> argv;
    argv.reserve(3 + keys.size() + args.size());
    argv.emplace_back("EVALSHA");
    argv.emplace_back(sha);
    argv.emplace_back(nkeys);
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    queue(argv, src, 0);
    if (!_script_writes(*src) || src->resend) {
      m_queue.back()->idempotent = true;
    }
    return;
  }
  // "" as the record's id means "do not record" (outcome.inc).
  std::uint64_t op = !m_op_log.empty() ? ++m_op_seq : 0;
  auto ttl = op_log_ttl(m_url).count();
  std::string field = op != 0 ? record_field() : std::string();
  std::string op_arg = op != 0 ? field + ":" + std::to_string(op) + ":" + std::to_string(ttl) : std::string();
  std::string_view op_key = op != 0 ? std::string_view(m_op_log) : (keys.empty() ? std::string_view() : keys[0]);
  std::vector<std::string> own;
  std::vector<std::string_view> argv;
  eval_argv(sha, keys, args, op_key, op_arg, own, argv);
  queue(argv, src, op);
  m_queue.back()->op_field = std::move(field);
}

// The field of the outcome record a change writes: the connection's
// number for the first change sent when nothing is pending, and behind it
// the change's place among the changes sent since ("<lane>.<place>"), so
// that every change of a pipeline keeps its own record until the pipeline
// is read: after a lost connection each one is known to have run or not,
// with its reply (recover). The places start again once nothing is
// pending (a mount's callers read every reply before giving a connection
// back), so a mount holds as many fields a connection as its deepest
// pipeline; a pipeline that never drains wraps at k_record_places, where
// a change whose field a later one overwrote is one that ran but whose
// reply is not known (EIO), as before places.
std::string Connection::record_field() {
  if (pending() == 0) {
    m_record_place = 0;
  }
  std::string field = std::to_string(m_lane);
  if (m_record_place != 0) {
    field += '.';
    field += std::to_string(m_record_place);
  }
  m_record_place = (m_record_place + 1) % k_record_places;
  return field;
}

Result<Reply> Connection::eval(lua::ScriptId script, std::span<const std::string> keys,
                               std::span<const std::string> args) {
  if (pending() != 0) {
    return make_error(EIO, "redis: script issued with pipelined replies pending");
  }
  std::vector<Result<Reply>> none;
  return eval_after(none, script, keys, args);
}

Result<Reply> Connection::eval_after(std::vector<Result<Reply>>& before, lua::ScriptId script,
                                     std::span<const std::string> keys, std::span<const std::string> args) {
  const std::size_t first = pending();
  std::vector<std::string_view> k(keys.begin(), keys.end());
  std::vector<std::string_view> a(args.begin(), args.end());
  append_eval(script, k, a);
  before = read_replies(first);  // the first read sends the script too: one round trip
  auto r = read_reply();
  if (!r.ok() && r.error().code == EIO && r.error().fault == Fault::None) {
    Error e = std::move(r).error();
    e.message = "script " + std::string(lua::script_source(script).name) + ": " + e.message;
    return e;
  }
  return r;
}

Result<Reply> Connection::eval(lua::ScriptId script, std::initializer_list<std::string> keys,
                               std::initializer_list<std::string> args) {
  return eval(script, std::span<const std::string>(keys.begin(), keys.size()),
              std::span<const std::string>(args.begin(), args.size()));
}

Status Connection::preload_scripts() {
  if (pending() != 0) {
    return make_error(EIO, "redis: scripts preloaded with pipelined replies pending");
  }
  std::vector<std::string_view> exists{"SCRIPT", "EXISTS"};
  for (std::size_t i = 0; i < lua::k_script_count; ++i) {
    exists.push_back(script_sha(lua::script_source(lua::ScriptId(i))));
  }
  TRY_ASSIGN(Reply held, command(exists));
  ReplyView v = held.view();
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < lua::k_script_count; ++i) {
    if (v.size() != lua::k_script_count || v[i].integer() != 1) {
      missing.push_back(i);
    }
  }
  for (std::size_t i : missing) {
    append({"SCRIPT", "LOAD", lua::script_source(lua::ScriptId(i)).text});
  }
  Status first;
  std::vector<Result<Reply>> loaded = read_replies(missing.size());
  for (std::size_t j = 0; j < loaded.size(); ++j) {
    if (!loaded[j].ok() && first.ok()) {
      Error e = std::move(loaded[j]).error();
      e.message = "script " + std::string(lua::script_source(lua::ScriptId(missing[j])).name) + ": " + e.message;
      first = std::move(e);
    }
  }
  return first;
}

Result<std::vector<std::string>> Connection::masters() {
  if (!m_cluster) {
    TRY(node_for(-1, Clock::now() + m_url.timeout));
    if (!m_cluster) {
      return std::vector<std::string>{m_main};
    }
  }
  TRY_ASSIGN(Reply r, command({"CLUSTER", "SLOTS"}));
  std::vector<std::string> out;
  ReplyView v = r.view();
  std::string default_host;
  {
    std::string host;
    int port = 0;
    if (_split_address(m_main, host, port)) {
      default_host = host;
    }
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    ReplyView range = v[i];
    if (range.size() < 3 || range[2].size() < 2) {
      continue;
    }
    std::string host(range[2][0].str());
    if (host.empty() || host == "?") {
      host = default_host;
    }
    auto port = range[2][1].as_int();
    if (!port) {
      continue;
    }
    std::string a = HostPort{host, static_cast<int>(*port)}.display();
    if (std::find(out.begin(), out.end(), a) == out.end()) {
      out.push_back(a);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<long long> Connection::wait_replicas(int replicas, std::chrono::milliseconds timeout) {
  if (m_op_log.empty()) {
    return make_error(EINVAL, "internal error: WAIT needs an outcome record key (set_op_log)");
  }
  // WAIT counts this connection's writes only: one more write here, after
  // every other connection's writes this server has applied, makes it
  // count theirs too (replication is in order). The write: a field of the
  // mount's outcome records, which expire.
  std::string ms = std::to_string(timeout.count());
  std::string n = std::to_string(replicas);
  std::string ttl = std::to_string(op_log_ttl(m_url).count());
  std::string keyless_node = m_keyless_node;
  int keyless_slot = m_keyless_slot;
  route_keyless(m_op_log);
  append({"HINCRBY", m_op_log, "sync", "1"});  // (not a connection's field: no digits)
  append({"PEXPIRE", m_op_log, ttl});
  append({"WAIT", n, ms});
  m_queue.back()->waits = timeout;
  auto set = read_reply();
  auto expired = read_reply();
  auto waited = read_reply();
  if (set.ok() && expired.ok()) {
    (void)expire_made_key(*this, *expired, m_op_log, ttl);  // (a record without a TTL at worst)
  }
  m_keyless_node = keyless_node;
  m_keyless_slot = keyless_slot;
  TRY(set);
  TRY_ASSIGN(Reply w, std::move(waited));
  return w.view().integer();
}

// ---------------------------------------------------------------- pool

Pool::Pool(RedisUrl url, std::string client_name) : m_url(std::move(url)), m_client_name(std::move(client_name)) {}
Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (m_pool != nullptr && m_conn) {
    m_pool->give_back(std::move(m_conn));
  }
}

void Pool::set_op_log(std::string base) {
  std::lock_guard lock(m_mutex);
  m_op_log = std::move(base);
  for (auto& c : m_idle) {
    c->set_op_log(m_op_log);
  }
}

void Pool::set_identity(std::string prefix, std::string identity) {
  std::lock_guard lock(m_mutex);
  m_id_prefix = std::move(prefix);
  m_identity = std::move(identity);
  for (auto& c : m_idle) {
    c->set_identity(m_id_prefix, m_identity);
  }
}

void Pool::route_keyless(std::string key) {
  std::lock_guard lock(m_mutex);
  m_route = std::move(key);
  for (auto& c : m_idle) {
    c->route_keyless(m_route);
  }
}

// A connection given back longer ago than this is looked at before it is
// leased again (Connection::closed_while_idle): one poll, off the busy path.
static constexpr std::chrono::milliseconds k_idle_check_after{100};

Result<Pool::Lease> Pool::acquire() {
  std::string op_log;
  std::string route;
  {
    std::lock_guard lock(m_mutex);
    while (!m_idle.empty()) {
      auto c = std::move(m_idle.back());
      m_idle.pop_back();
      // One idle a while may have been closed by the server (a restart):
      // a change sent on it would be lost, and not sent again. (Not looked
      // at when given back a moment ago: the busy path costs no poll.)
      if (Clock::now() - c->idle_since() > k_idle_check_after && c->closed_while_idle()) {
        m_free_lanes.push_back(c->lane());
        continue;
      }
      return Lease(this, std::move(c));
    }
    op_log = m_op_log;
    route = m_route;
  }
  auto opened = Connection::open(m_url, m_client_name);
  std::unique_ptr<Connection> c;
  if (opened.ok()) {
    c = std::move(opened).value();
    std::lock_guard lock(m_mutex);
    m_reached = true;
  } else {
    // The server was reached before: this is an outage, and the first
    // command waits it out. Never reached: a clear error now.
    bool outage = false;
    {
      std::lock_guard lock(m_mutex);
      outage = m_reached;
    }
    Fault f = opened.error().fault;
    if (!outage || (f != Fault::Unreachable && f != Fault::Loading && f != Fault::Busy && f != Fault::MasterDown)) {
      return std::move(opened).error();
    }
    c = Connection::unconnected(m_url, m_client_name);
  }
  {
    std::lock_guard lock(m_mutex);
    if (!m_free_lanes.empty()) {
      c->set_lane(m_free_lanes.back());
      m_free_lanes.pop_back();
    }
  }
  c->set_op_log(op_log);
  if (!route.empty()) {
    c->route_keyless(route);
  }
  {
    std::lock_guard lock(m_mutex);
    c->set_identity(m_id_prefix, m_identity);
  }
  return Lease(this, std::move(c));
}

std::uint64_t Pool::note_server(const ServerId& server) {
  std::lock_guard lock(m_mutex);
  note_server_locked(server);
  return m_server_changes.load();
}

void Pool::note_server_locked(const ServerId& server) {
  if (server.run_id.empty() || server.run_id == m_server.run_id) {
    return;  // not known (an ACL user without +info), or the same server
  }
  if (server_replaced(m_server, server)) {
    ++m_server_changes;
  }
  m_server = server;
}

void Pool::give_back(std::unique_ptr<Connection> c) {
  std::lock_guard lock(m_mutex);
  if (std::string_view id = c->server_run_id(); !id.empty() && id != m_server.run_id) {
    note_server_locked(c->server());  // (built only then: this runs after every command)
  }
  // A closed connection's number (and where its operation ids stopped)
  // goes to the next new one: a mount's outcome records then hold at most
  // as many connections' fields as it ever ran at once.
  auto retire = [this](Connection& gone) { m_free_lanes.push_back(gone.lane()); };
  if (c->pending() != 0) {
    retire(*c);
    return;  // half-read pipeline: not reusable, close it
  }
  if (c->broken()) {
    // The server went away (a restart?): the idle connections are most
    // likely dead too. Close them all rather than fail one operation per
    // connection; the next ones connect afresh.
    retire(*c);
    for (auto& idle : m_idle) {
      retire(*idle);
    }
    m_idle.clear();
    return;
  }
  if (m_idle.size() < 32) {
    c->set_identity(m_id_prefix, m_identity);  // (leased when it was set)
    c->set_idle_since(Clock::now());
    m_idle.push_back(std::move(c));
  } else {
    retire(*c);
  }
}

Status expire_made_key(Connection& c, const Reply& expire_reply, std::string_view key, std::string_view ttl_ms) {
  if (expire_reply.view().integer() != 0) {
    return {};
  }
  TRY_ASSIGN(Reply again, c.command({"PEXPIRE", key, ttl_ms}));
  if (again.view().integer() == 0) {
    return make_error(EIO,
                      "redis: " + std::string(key) + " is gone before its TTL was set (removed by another client?)");
  }
  return {};
}

}  // namespace redisfs
