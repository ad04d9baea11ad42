// The Redis client layer: one connection (our transport, hiredis's RESP
// reader and formatter), a pool of them, replies that free themselves, and
// the one runner of the embedded Lua scripts. This header, redis.cpp and
// reply_arena.cpp (the replies' memory) are the only code that knows about
// hiredis; everything above sees Reply /
// ReplyView and Result, and an Error's Fault, never the server's words.
//
// Where the server is: a standalone server (TCP, TLS or unix socket), the
// master named by Sentinel (found through the sentinels at every connect,
// checked with ROLE, found again after a failover), or a Redis Cluster
// (detected at connect; each command goes to the master of its first key's
// slot, MOVED and ASK are followed, SELECT is never sent).
//
// The retry policy, the same for every caller (outages cost latency, not
// errors): until the URL's timeout has passed since a command was first
// sent, a command the server refused without running it (LOADING, BUSY,
// MASTERDOWN, READONLY after a failover, TRYAGAIN, CLUSTERDOWN, MOVED, ASK,
// no connection) is sent again after a back-off; a command whose reply was
// lost is sent again only when that is harmless (reads, and writes that set
// a value), and a script that writes has its outcome made checkable: it
// records its reply under an operation id (set_op_log), and after a lost
// reply the client reads that record instead of running it twice. NOSCRIPT
// reloads the script; FROZEN (the filesystem is frozen) is waited out for
// up to 120 s, then EBUSY; COW <staging> (a snapshot is being taken
// copy-on-write, snapshot.hpp) sends the script again at once naming the
// snapshot's keys (the copy-on-write trailer, cow_trailer); whatever it
// waits for, a mount's script refuses with ESTALE once its filesystem was
// replaced (the identity trailer, set_identity). The parts of a MULTI/EXEC are never sent again
// on their own: a transaction is sent again whole (a refusal; a lost reply
// when each of its commands is of a kind sent again alone) or fails whole,
// and its caller decides. Errors that remain are returned with their Fault.
//
// Errors: a server error reply becomes an Error with the errno it stands for
// (a script's "ENOENT ..." -> ENOENT, "OOM ..." -> ENOSPC, "READONLY" ->
// EROFS, NOPERM -> EACCES, anything else EIO); a connection that cannot be
// (re)made in time is EIO.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "redis/lua_scripts.hpp"
#include "redis/outage.hpp"
#include "redis/redis_url.hpp"
#include "redis/transport.hpp"
#include "util/result.hpp"

struct redisReply;

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

// The [field, value] pairs of a flat reply (HGETALL, an HSCAN page): views
// into the reply, or copies with reply_pairs<std::string>.
template <class S = std::string_view>
std::vector<std::pair<S, S>> reply_pairs(ReplyView flat) {
  std::vector<std::pair<S, S>> out;
  out.reserve(flat.size() / 2);
  for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
    out.emplace_back(flat[i].str(), flat[i + 1].str());
  }
  return out;
}

using Args = std::vector<std::string>;

// Maps a server error string to an errno.
int errno_for_redis_error(std::string_view error);
// Maps a server error string to what the client does about it.
Fault fault_for_redis_error(std::string_view error);
// The Error a server error string stands for: its errno, its fault and
// its words, bounded (a script error may quote its arguments).
Error error_from_redis(std::string_view error);
// The server refused a command for a key of the wrong type (WRONGTYPE, in
// a script's error too): a damaged key, not an outage. Its message names
// no key: the caller says which.
bool is_wrong_type(const Error& e);
// The value of `name` in an INFO reply ("name:value" lines), or nullopt.
std::optional<std::string_view> info_field(std::string_view info, std::string_view name);
// ...as a number: 0 when absent or not one.
std::uint64_t info_u64(std::string_view info, std::string_view name);
// How long a mount's outcome records live without a change or a heartbeat:
// 10 minutes, or twice the timeout if that is longer.
std::chrono::milliseconds op_log_ttl(const RedisUrl& url);
// The Redis Cluster hash slot of a key (its {hash tag} if it has one).
int key_slot(std::string_view key);

class Connection;
// A PEXPIRE pipelined behind the command that makes its key ran before it
// when that command was refused and sent again (Connection::append): it
// answered 0, and the key has no TTL. This sends it again, now that the
// key exists; EIO if the key is gone.
Status expire_made_key(Connection& c, const Reply& expire_reply, std::string_view key, std::string_view ttl_ms);

// Counts over every connection of this process: round trips (a command, or
// a pipeline up to its first reply) and replies read.
struct RedisCounters {
  std::uint64_t round_trips = 0;
  std::uint64_t replies = 0;
};
RedisCounters redis_counters();

class Transport;
struct Node;

// A server process as a connection last reached it: its run_id changes
// with a restart; a replica promoted by a failover keeps its old master's
// replication id as replid2 (INFO replication).
struct ServerId {
  std::string address;
  std::string run_id;
  std::string replid;
  std::string replid2;
  bool cluster = false;
};

// `now` replaced `was` in a way that may lose what `was` acknowledged: a
// restart, or a failover (any new server but in a cluster, where a slot
// that moved by migration lost nothing: there only a restart at the same
// address or a replica of `was` promoted counts).
bool server_replaced(const ServerId& was, const ServerId& now);

class Connection {
 public:
  // Connects now (and again after any lost connection): AUTH, SELECT,
  // CLIENT SETNAME; finds the master through Sentinel; learns whether the
  // server is a cluster node.
  static Result<std::unique_ptr<Connection>> open(const RedisUrl& url, std::string client_name);
  // Not connected yet: the first command connects, under the retry policy
  // (a pool's connections made during an outage).
  static std::unique_ptr<Connection> unconnected(const RedisUrl& url, std::string client_name);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One command, with the retry policy; an error reply is an Error.
  Result<Reply> command(std::span<const std::string_view> argv);
  Result<Reply> command(std::initializer_list<std::string_view> argv);
  Result<Reply> command(const Args& argv);

  // Pipelining: queue commands, then read one reply per queued command, in
  // order. Each entry gets the retry policy of command(); an entry that has
  // to be sent again runs after the entries queued behind it (so pipeline
  // only commands that do not depend on each other's order, or check
  // sent_again() and send them again in order). An error reply is an Error
  // for that entry only.
  void append(std::span<const std::string_view> argv);
  void append(std::initializer_list<std::string_view> argv);
  void append(const Args& argv);
  // The same, but the bytes of argv[borrowed] are not copied: they are sent
  // from where they are, so they must stay valid until this command's
  // reply is read (a write's block, from the kernel's request).
  void append_borrowing(std::initializer_list<std::string_view> argv, std::size_t borrowed);
  Result<Reply> read_reply();
  // Whether the reply read last came after its command was sent again (a
  // refusal: NOSCRIPT, a freeze, a redirection...; or a connection lost
  // before it ran): a command queued behind it that was not sent again
  // ran before it. A caller whose commands depend on their order sends them
  // again, in order, then (store_gather.cpp).
  bool sent_again() const { return m_sent_again; }
  // The run_id of the server process the reply read last came from (empty:
  // not known, e.g. an ACL user without +info). A walk with a cursor
  // (SCAN, HSCAN) across two of them may miss keys (scan.hpp).
  const std::string& answered_by() const { return m_answered_by; }
  // Reads the next `n` replies, all of them, each its own Result (one that
  // fails does not stop the rest, so the connection is clean whatever
  // happened); the caller judges each one.
  std::vector<Result<Reply>> read_replies(std::size_t n);
  std::size_t pending() const;
  // Reads every pending reply; the first error (if any) is returned.
  Result<std::vector<Reply>> read_all();
  // MULTI, `commands`, EXEC, on a connection with nothing pending: the
  // EXEC's reply (an array, a reply per command). A command the server
  // refused (BUSY, LOADING...: MULTI and EXEC themselves never are) makes
  // the EXEC abort with nothing run, and the transaction is sent again,
  // whole, under the retry policy; so is one whose reply was lost when
  // every command in it may be sent twice (HSET, HDEL, DEL, plain SET...:
  // the whole twice ends as the whole once; its replies are the second
  // run's, an HDEL's count 0). Any other failure is returned; a lost one
  // says it may have run.
  Result<Reply> transaction(std::span<const Args> commands);
  // Reads and drops every pending reply (after a failure: the connection
  // is left ready for the next command). An entry whose connection was
  // lost is sent again as read_reply would (an idempotent one).
  void drain();
  // Drops every pending command without sending any, again or at all: the
  // connections that carry some are closed (the server drops what it has
  // not run of them), so the server ran a prefix of what was sent on each.
  // For a pipeline of writes that must stop where a lost reply left it
  // (staging_writes.hpp). Inside a transaction, drain() instead.
  void abandon();

  // The script runner: EVALSHA of the embedded script `script`
  // (lua::<name> for core/lua/<name>.lua, lua_scripts.hpp), loading it on
  // first use and again on NOSCRIPT.
  Result<Reply> eval(lua::ScriptId script, std::span<const std::string> keys,
                     std::span<const std::string> args);
  Result<Reply> eval(lua::ScriptId script, std::initializer_list<std::string> keys,
                     std::initializer_list<std::string> args);
  // A script with prerequisites: the commands and scripts queued in front
  // of it (append, append_eval) travel in its round trip, and their
  // replies are read first, all of them, into `before` (each its own
  // Result under its own retry policy, whatever the script's outcome: the
  // caller judges each). A prerequisite sent again (a lost reply, a
  // freeze, NOSCRIPT) may then run after the script. eval() refuses a
  // script with replies pending.
  Result<Reply> eval_after(std::vector<Result<Reply>>& before, lua::ScriptId script, std::span<const std::string> keys,
                           std::span<const std::string> args);
  // Loads every embedded script the server does not hold yet (SCRIPT
  // EXISTS, then SCRIPT LOAD of the missing ones in one pipeline; in a
  // cluster, on the node of the keyless commands' slot), so that no change
  // pays a NOSCRIPT round trip and a load at its first use. One that is
  // not loaded (a server that refuses it, or loses it later: a restart, a
  // failover, SCRIPT FLUSH) is still loaded on NOSCRIPT. The first error.
  Status preload_scripts();
  // Pipelined eval (read its reply with read_reply()).
  void append_eval(lua::ScriptId script, std::span<const std::string_view> keys,
                   std::span<const std::string_view> args);

  // Where the outcome of this connection's writing scripts is recorded: a
  // hash in the filesystem's slot (Keys::op_log), one per mount, with a
  // field per connection holding its latest change's id and reply, and one
  // more for each further change of a pipeline ("<connection>.<place>"),
  // so that each change of a pipeline whose replies were all lost is known
  // to have run or not, with its reply. Unset: a writing script whose reply
  // is lost fails with EIO (Fault::Lost) instead of being checked.
  void set_op_log(std::string key);
  // The filesystem a mount opened (filesystem_identity of its superblock,
  // superblock.hpp): every writing script of this connection whose first
  // key is under `prefix` is sent with the identity and the superblock's
  // key (the identity trailer, outcome.inc), and refuses with ESTALE, in
  // its own atomic step, once that superblock is gone or holds another
  // identity (a rollback, a restore or a delete replaced the filesystem).
  // So no change of a mount, retried or new, lands in the filesystem that
  // replaced its own. Empty: not checked.
  void set_identity(std::string prefix, std::string identity);
  // This connection's number among a mount's, and its last operation id
  // (the pool hands a closed connection's to the next one it makes).
  struct Lane {
    std::uint64_t id = 0;
    std::uint64_t last_op = 0;
  };
  Lane lane() const { return {m_lane, m_op_seq}; }
  void set_lane(Lane lane);

  // Cluster: commands without a key (SCAN, INFO, CONFIG, WAIT...) go to the
  // master of this key's slot (unset: the node we first reached).
  void route_keyless(std::string_view key);
  // Cluster: send commands without a key to this master (host:port from
  // masters()) instead.
  void route_keyless_to_node(std::string_view address);
  // Cluster: one command without a key sent to the master of this key's
  // slot, whatever the route above (INFO of the node a tool fills); with
  // no key, or not on a cluster, command(argv).
  Result<Reply> keyless_at(std::string_view key, std::initializer_list<std::string_view> argv);
  bool cluster() const { return m_cluster; }
  // Cluster: the master this key's slot was last seen on (host:port); ""
  // when not learned yet, or not on a cluster.
  std::string address_of(std::string_view key) const;
  // The masters of the cluster (host:port), or just the server we talk to.
  Result<std::vector<std::string>> masters();
  // WAIT until `replicas` replicas have all writes this server has seen so
  // far (not only this connection's); the number that confirmed within
  // `timeout`. Needs set_op_log (its one write goes there).
  Result<long long> wait_replicas(int replicas, std::chrono::milliseconds timeout);

  const RedisUrl& url() const { return m_url; }
  // The master this connection last reached (in a cluster, the one of the
  // keyless commands' slot; an empty run_id: not known).
  ServerId server() const;
  // Its run_id alone (empty: not known).
  std::string_view server_run_id() const;
  // The connection was lost and not made again yet.
  bool broken() const;
  // Whether the server closed it (a restart, a failover, a timeout) while
  // it lay idle: a command sent on it would be lost before reaching the
  // server, and a change not sent again for that (Pool::acquire drops it
  // instead). Does not block.
  bool closed_while_idle() const;
  // When it was given back to its pool last.
  std::chrono::steady_clock::time_point idle_since() const { return m_idle_since; }
  void set_idle_since(std::chrono::steady_clock::time_point t) { m_idle_since = t; }

 private:
  struct Entry;
  Connection(RedisUrl url, std::string client_name);
  Status connect_main(Deadline deadline);
  Result<std::string> ask_sentinels(Deadline deadline);
  Result<Node*> node_for(int slot, Deadline deadline);
  Result<Node*> node_at(const std::string& address, Deadline deadline);
  const Node* server_node() const;
  Status setup(Node& n, Deadline deadline);
  void drop(Node& n, const Error& why);
  Status flush(Node& n, Deadline deadline);
  Result<Reply> read_raw(Node& n, Deadline deadline);
  Result<Reply> send_one(Entry& e, Deadline deadline, bool asking);
  Result<Reply> settle(Entry& e, Result<Reply> first);
  Result<Reply> recover(Entry& e, Deadline deadline);
  std::string record_field();
  const std::string& script_sha(const lua::ScriptSource& src);
  Result<std::string> reload_script(const lua::ScriptSource& src, Node& n, Deadline deadline);
  void queue(std::span<const std::string_view> argv, const lua::ScriptSource* script, std::uint64_t op,
             std::size_t borrowed = SIZE_MAX);
  // A recording script's EVALSHA (outcome.inc: its trailers), and the
  // copy-on-write trailer in it: the keys of the snapshot this connection
  // believes is being taken (m_cow_*), or only the COW key.
  void eval_argv(std::string_view sha, std::span<const std::string_view> keys, std::span<const std::string_view> args,
                 std::string_view op_key, std::string_view op_arg, std::vector<std::string>& own,
                 std::vector<std::string_view>& argv);
  std::string_view cow_trailer(std::span<const std::string_view> keys, std::vector<std::string>& out);
  // After COW <staging>: believe it, and name its keys in `e` (false when
  // e's command cannot be read back).
  bool reformat_cow(Entry& e, std::string_view staging);
  void place(Entry& e, Node& n);
  Result<Reply> check(Reply r);

  RedisUrl m_url;
  std::string m_client_name;
  std::uint64_t m_lane;
  std::string m_op_log;  // empty: outcomes are not recorded
  std::uint64_t m_op_seq = 0;
  // The place of the next change among those sent since nothing was
  // pending (record_field); at most k_record_places fields a connection.
  static constexpr std::uint64_t k_record_places = 4096;
  std::uint64_t m_record_place = 0;
  std::string m_id_prefix;  // set_identity
  std::string m_identity;
  std::string m_cow_prefix;   // a snapshot of this prefix is being taken copy-on-write,
  std::string m_cow_staging;  // into this staging prefix: a script said so at
  std::chrono::steady_clock::time_point m_cow_learned{};  // this time
  bool m_cluster = false;
  std::string m_main;  // address of the node reached first (the master, in sentinel mode)
  std::string m_keyless_node;  // cluster: where keyless commands go
  int m_keyless_slot = -1;
  std::vector<std::unique_ptr<Node>> m_nodes;
  // Cluster: slot -> index in m_slot_addresses (-1: unknown), learned from
  // CLUSTER SLOTS and MOVED; empty until the first is learned.
  std::vector<std::int16_t> m_slot_node;
  std::vector<std::string> m_slot_addresses;
  Deadline m_slots_asked{};
  const std::string* slot_address(int slot) const;
  void set_slot(int slot, const std::string& address);
  std::vector<std::string> m_cluster_nodes;      // cluster: every node, to start from when ours is down
  std::vector<std::unique_ptr<Entry>> m_queue;   // sent or to send, replies not read yet
  bool m_tx = false;                             // between MULTI and EXEC
  Entry* m_tx_multi = nullptr;                   // cluster: MULTI waiting for its node
  Node* m_tx_node = nullptr;
  std::uint64_t m_tx_gen = 0;
  bool m_tx_unsent = false;  // the transaction's MULTI could not be sent
  std::size_t m_head = 0;
  bool m_sent_again = false;  // of the last reply read (sent_again)
  std::string m_answered_by;  // ... and its server's run_id (answered_by)
  std::uint64_t m_resend_ok = 0;  // commands sent again that then ran (settle)
  std::chrono::steady_clock::time_point m_idle_since{};
  std::unordered_map<std::string_view, std::string> m_shas;
};

// Watches the replies of one pipeline, read in order, for commands that ran
// out of their order: a command sent again (Connection::sent_again) ran
// after those queued behind it that were not. A caller whose commands
// depend on their order sends them again, in order, when reordered()
// (store_gather.cpp, Store::write).
class RunOrder {
 public:
  // After each read_reply() of the pipeline.
  void saw(const Connection& c) {
    m_reordered = m_reordered || (m_again && !c.sent_again());
    m_again = m_again || c.sent_again();
  }
  bool reordered() const { return m_reordered; }

 private:
  bool m_again = false;
  bool m_reordered = false;
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

  // Every connection made or handed out from now on records its writing
  // scripts' outcomes under this key (Connection::set_op_log), and sends
  // keyless commands to this key's slot.
  void set_op_log(std::string base);
  void route_keyless(std::string key);
  // Every connection of the pool checks its writing scripts against this
  // identity (Connection::set_identity) from now on.
  void set_identity(std::string prefix, std::string identity);

  const RedisUrl& url() const { return m_url; }

  // How often the server the pool's connections reach changed (a failover
  // or a restart: a new run_id) since the first one: changes the old
  // server acknowledged may be lost. Every connection given back reports
  // where it was; note_server reports one still leased and returns the
  // count.
  std::uint64_t note_server(const ServerId& server);
  std::uint64_t server_changes() const { return m_server_changes.load(); }

 private:
  void give_back(std::unique_ptr<Connection> c);
  void note_server_locked(const ServerId& server);

  RedisUrl m_url;
  std::string m_client_name;
  std::mutex m_mutex;
  std::string m_op_log;
  std::string m_route;
  std::string m_id_prefix;
  std::string m_identity;
  bool m_reached = false;  // a connection was made once: later failures are outages
  ServerId m_server;       // the server the last connection reported (note_server)
  std::atomic<std::uint64_t> m_server_changes{0};
  std::vector<Connection::Lane> m_free_lanes;
  std::vector<std::unique_ptr<Connection>> m_idle;
};

}  // namespace redisfs
