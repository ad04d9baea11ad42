// fuse_floor: the fastest a FUSE filesystem can be on this machine.
//
// A filesystem that keeps its names in a hash map and answers every request
// at once, mounted the way redisfs mounts (libfuse low level, the same
// multi-threaded loop, default_permissions, 1 s entry and attribute
// timeouts, no flush handler). What a workload costs on it is what the
// kernel, the /dev/fuse round trips and the context switches cost, with no
// storage behind them: the floor under any FUSE filesystem, redisfs
// included. bench/run shows it as the "fuse floor" column of the metadata
// workloads, so a reader can tell how much of a gap to tmpfs is FUSE's.
//
// With --redis SOCKET it is the floor of a filesystem kept on a Redis
// server with close-to-open semantics (workload 8's "floor+rt" columns):
// each change bound.py counts as forced (a create, mkdir, mknod, symlink,
// link, rename, unlink or rmdir; the close or fsync of a file written to or
// given attributes since it was opened or last synced) first waits for one
// round trip to the server at SOCKET, an EVALSHA of `return 1` (the cheapest
// a change can cost), on a connection of the request's thread, and it has a
// flush handler to make the close's. Nothing is stored there. --xattrs
// answers getxattr (no attribute: ENODATA) as a filesystem with extended
// attributes must, so the kernel keeps asking for security.capability as it
// asks redisfs; without it the floor has no getxattr and the kernel stops
// asking after the first. --no-default-permissions mounts without
// default_permissions, as passthrough_ll does: the kernel then checks no
// permission itself, and sends no GETATTR of a directory it changed.
// --data (with --redis) stores each write's bytes on the server before it
// answers the write: one SET of a key of their own, on the request
// thread's connection, as redisfs's default mode sends a write of a file
// past its gathering bound before write(2) returns (workload 8's dd on
// the floor). It deletes those keys when it is unmounted.
// --store (with --redis) makes each of those round trips do the writes a
// filesystem kept on Redis needs at the least, in one atomic step,
// instead of `return 1`: one hash an inode, one a directory's entries, one
// string a 64 KiB block of a file, under fuse_floor:<pid>:. A create is a
// script that adds the entry (HSETNX), writes the new inode's fields and
// stamps the parent; an unlink or rmdir removes the entry and the inode
// with its blocks (or lowers its nlink) and stamps the parent; a rename
// and a link likewise; the forced close or fsync sends the blocks written
// since the last and the attributes in one MULTI (SETs, HSET). No check,
// counter, recovery record or lease: what a workload costs on it is the
// floor of any filesystem that keeps its metadata in Redis hashes and
// changes it atomically (workload 8's and bench/floors.sh's floor+store).
// A listing's start also reads the directory's names (one HSCAN: a
// listing on a mount of many hosts cannot come from memory).
// It keeps a file's bytes in memory too while the file is open (see load)
// and answers reads from there. It deletes its keys when it is unmounted.
// --writeback mounts as a writeback redisfs mount does (-o writeback): the
// kernel's writeback cache, file pages kept across opens, an hour of
// attribute and name caching. Alone, what a workload costs on it ("floor
// wb") is what any filesystem answering every request from memory costs
// there. With --redis SOCKET --store ("floor wb+store") it makes the
// writes --store makes where a writeback redisfs mount must wait for the
// server and no more: a new file's create is answered at once and reaches
// the server with its first close or fsync, with its bytes and
// attributes, in one MULTI (one round trip: what close(2) returned for is
// on the server, the promise a syncfs(2) leans on, which the kernel does
// not pass to a FUSE daemon); a mkdir, mknod, symlink, link or rename
// waits for its script; an unlink or rmdir is answered at once and sent
// behind by a thread of its own, in batches, and whatever the mount sends
// next waits until those landed. The bound of a writeback mount that
// keeps its data on a Redis server.
//
// Enough for the workloads that run on it: lookup, getattr, setattr, create,
// mknod, mkdir, symlink, readlink, link, rename, unlink, rmdir, open, flush,
// fsync, release, opendir/readdir(plus), statfs. File contents are not kept
// but with --store (reads return nothing; a write only moves the size, and
// with --data leaves its bytes on the server).
//
//   fuse_floor [--redis SOCKET [--data | --store]] [--xattrs] [--no-default-permissions] MOUNTPOINT
//   fuse_floor --writeback [--redis SOCKET --store] [--xattrs] MOUNTPOINT
//                                (stays in the foreground until unmounted)
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <hiredis/hiredis.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Node {
  struct stat st {};
  std::map<std::string, fuse_ino_t> entries;  // directories only
  std::string target;                         // symlinks only
  unsigned opens = 0;                         // files: open handles
  bool dirty = false;                         // files: changed since opened or synced
  std::string data;                           // files, with --store: their bytes
  std::set<size_t> dirty_blocks;              // files, with --store: blocks to send at the sync
  bool dropped = false;                       // files, with --store: bytes only on the server
};

std::mutex g_mutex;
std::unordered_map<fuse_ino_t, Node> g_nodes;
fuse_ino_t g_next = 2;
// (an hour with --writeback, as a writeback redisfs mount caches)
double g_timeout = 1.0;
bool g_writeback = false;

// --redis: the server's socket and the SHA of `return 1` on it
const char* g_socket = nullptr;
std::string g_sha;
// --data: the keys the writes stored (under g_mutex), deleted at unmount
bool g_data = false;
// --store: each change's writes on the server (see the top)
bool g_store = false;
std::set<std::string> g_data_keys;

// The calling thread's own connection to the server, made at its first
// use, closed when the thread ends (FUSE's workers end with the loop).
// Exits on a failure: the measurement would be wrong, not slow.
redisContext* connection() {
  thread_local std::unique_ptr<redisContext, void (*)(redisContext*)> c(nullptr, redisFree);
  if (c == nullptr) {
    c.reset(redisConnectUnix(g_socket));
    if (c == nullptr || c->err != 0) {
      std::fprintf(stderr, "fuse_floor: cannot connect to %s\n", g_socket);
      std::exit(1);
    }
  }
  return c.get();
}

// A command's reply, which must be of type `want` (exits otherwise).
void expect_reply(void* reply, int want, const char* what) {
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr || r->type != want) {
    std::fprintf(stderr, "fuse_floor: %s failed on %s\n", what, g_socket);
    std::exit(1);
  }
  freeReplyObject(r);
}

// The next reply on connection `c`, which must be of type `want`.
void expect_next(redisContext* c, int want, const char* what) {
  void* reply = nullptr;
  if (redisGetReply(c, &reply) != REDIS_OK) {
    reply = nullptr;
  }
  expect_reply(reply, want, what);
}

// One round trip to the server, on the calling thread's connection.
// With --store each change makes its own (store).
void round_trip() {
  if (g_socket == nullptr || g_store) {
    return;
  }
  expect_reply(redisCommand(connection(), "EVALSHA %s 0", g_sha.c_str()), REDIS_REPLY_INTEGER, "EVALSHA");
}

// --data: the bytes of a write of `ino` at `off` stored on the server, in
// one round trip. The command goes out in one writev from the request's
// own buffer, not through hiredis's output buffer (which copies the
// bytes, then moves what is left after each partial write): the floor
// must cost no more than any implementation would.
void store_data(fuse_ino_t ino, off_t off, const char* buf, size_t size) {
  std::string key = "fuse_floor:" + std::to_string(getpid()) + ":" + std::to_string(ino) + ":" + std::to_string(off);
  std::string head =
      "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" + std::to_string(size) + "\r\n";
  char tail[] = "\r\n";
  iovec iov[] = {{head.data(), head.size()}, {const_cast<char*>(buf), size}, {tail, 2}};
  redisContext* c = connection();
  iovec* at = iov;
  int left = 3;
  while (left > 0) {
    ssize_t n = writev(c->fd, at, left);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      std::fprintf(stderr, "fuse_floor: cannot send to %s: %s\n", g_socket, std::strerror(errno));
      std::exit(1);
    }
    auto done = static_cast<size_t>(n);
    while (left > 0 && done >= at->iov_len) {
      done -= at->iov_len;
      ++at;
      --left;
    }
    if (left > 0) {
      at->iov_base = static_cast<char*>(at->iov_base) + done;
      at->iov_len -= done;
    }
  }
  expect_next(c, REDIS_REPLY_STATUS, "SET");
  std::lock_guard lock(g_mutex);
  g_data_keys.insert(std::move(key));
}

// Deletes what the writes stored; false if the server cannot be reached.
bool drop_data() {
  redisContext* c = redisConnectUnix(g_socket);
  bool ok = c != nullptr && c->err == 0;
  std::vector<const char*> argv{"DEL"};
  for (auto it = g_data_keys.begin(); ok && it != g_data_keys.end();) {
    argv.resize(1);
    for (; it != g_data_keys.end() && argv.size() <= 1000; ++it) {
      argv.push_back(it->c_str());
    }
    auto* reply = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), nullptr));
    ok = reply != nullptr && reply->type == REDIS_REPLY_INTEGER;
    if (reply != nullptr) {
      freeReplyObject(reply);
    }
  }
  redisFree(c);
  return ok;
}

// Loads `return 1` into the server; false if it cannot be reached.
bool load_script() {
  redisContext* c = redisConnectUnix(g_socket);
  if (c == nullptr || c->err != 0) {
    redisFree(c);  // (null: nothing)
    return false;
  }
  auto* reply = static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %s", "return 1"));
  bool ok = reply != nullptr && reply->type == REDIS_REPLY_STRING;
  if (ok) {
    g_sha.assign(reply->str, reply->len);
  }
  if (reply != nullptr) {
    freeReplyObject(reply);
  }
  redisFree(c);
  return ok;
}

// --store: the changes' scripts (SHAs in g_store_sha) and the keys' prefix
std::string g_store_prefix;
enum Change { k_make, k_remove, k_rename, k_link, k_changes };
// (`now`: the server's time in nanoseconds, as redisfs writes times)
#define FLOOR_NOW "local t = redis.call('TIME')\nlocal now = t[1] .. string.format('%06d', t[2]) .. '000'\n"
const char* const k_change_script[k_changes] = {
    // make: KEYS D:parent, I:new, I:parent; ARGV name, ino, type, mode,
    // uid, gid, nlink, size, parent ino, the parent's nlink, target or ''
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end\n" FLOOR_NOW
    "local f = {'type', ARGV[3], 'mode', ARGV[4], 'uid', ARGV[5], 'gid', ARGV[6], 'size', ARGV[8],\n"
    "  'nlink', ARGV[7], 'rdev', '0', 'bytes', '0', 'atime', now, 'mtime', now, 'ctime', now, 'parent', ARGV[9]}\n"
    "if ARGV[11] ~= '' then f[#f + 1] = 'target'; f[#f + 1] = ARGV[11] end\n"
    "redis.call('HSET', KEYS[2], unpack(f))\n"
    "redis.call('HSET', KEYS[3], 'mtime', now, 'ctime', now, 'nlink', ARGV[10])\n"
    "return 1",
    // remove: KEYS D:parent, I:node, I:parent, then its blocks (B:) or
    // entries (D:); ARGV name, the node's nlink left, the parent's nlink
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "if ARGV[2] == '0' then redis.call('DEL', KEYS[2], unpack(KEYS, 4, #KEYS))\n"
    "else redis.call('HSET', KEYS[2], 'nlink', ARGV[2]) end\n" FLOOR_NOW
    "redis.call('HSET', KEYS[3], 'mtime', now, 'ctime', now, 'nlink', ARGV[3])\n"
    "return 1",
    // rename: KEYS D:from, D:to, I:from, I:to; ARGV name, new name, ino
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])\n" FLOOR_NOW
    "redis.call('HSET', KEYS[3], 'mtime', now, 'ctime', now)\n"
    "if KEYS[4] ~= KEYS[3] then redis.call('HSET', KEYS[4], 'mtime', now, 'ctime', now) end\n"
    "return 1",
    // link: KEYS D:parent, I:node, I:parent; ARGV name, ino, its nlink
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end\n" FLOOR_NOW
    "redis.call('HSET', KEYS[2], 'nlink', ARGV[3], 'ctime', now)\n"
    "redis.call('HSET', KEYS[3], 'mtime', now, 'ctime', now)\n"
    "return 1",
};
#undef FLOOR_NOW
std::string g_store_sha[k_changes];

// One change with --store: a script, its keys and arguments.
struct Stored {
  Change change = k_make;
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

// --writeback with --store: the creates of files not yet on the server,
// sent with their first close or fsync (under g_mutex)
std::unordered_map<fuse_ino_t, Stored> g_unsent;

// The create of `ino` if it is not on the server yet, no longer kept
// (under g_mutex).
std::optional<Stored> take_unsent(fuse_ino_t ino) {
  auto it = g_unsent.find(ino);
  if (it == g_unsent.end()) {
    return std::nullopt;
  }
  Stored s = std::move(it->second);
  g_unsent.erase(it);
  return s;
}

// The key of `kind` (I: inode, D: entries) of inode `ino`.
std::string store_key(char kind, fuse_ino_t ino) { return g_store_prefix + kind + ':' + std::to_string(ino); }

// --store: a file's blocks, as redisfs's (superblock.hpp)
constexpr size_t k_store_block = 64 * 1024;

// The key of block `i` of file `ino`.
std::string block_key(fuse_ino_t ino, size_t i) { return store_key('B', ino) + ':' + std::to_string(i); }

// Appends `s` to the output of connection `c` (sent with its reply's read).
void append(redisContext* c, const Stored& s) {
  std::vector<const char*> argv{"EVALSHA", g_store_sha[s.change].c_str()};
  std::string nkeys = std::to_string(s.keys.size());
  argv.push_back(nkeys.c_str());
  for (const auto& k : s.keys) {
    argv.push_back(k.c_str());
  }
  std::vector<size_t> lens(argv.size());
  for (size_t i = 0; i < argv.size(); ++i) {
    lens[i] = std::strlen(argv[i]);
  }
  for (const auto& a : s.args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
}

// --writeback with --store: the removals answered at once, sent behind by
// a thread of their own (send_behind), each batch in one pipeline; what
// the mount sends next waits until they landed (wait_behind).
std::mutex g_behind_mutex;
std::condition_variable g_behind_cv;
std::vector<Stored> g_behind;  // queued, not yet on their way
bool g_behind_busy = false;    // a batch on its way
bool g_behind_stop = false;    // the mount is gone: send what is left, end

void send_behind() {
  std::unique_lock lock(g_behind_mutex);
  for (;;) {
    g_behind_cv.wait(lock, [] { return !g_behind.empty() || g_behind_stop; });
    if (g_behind.empty()) {
      return;
    }
    std::vector<Stored> batch;
    batch.swap(g_behind);
    g_behind_busy = true;
    lock.unlock();
    redisContext* c = connection();
    for (const auto& s : batch) {
      append(c, s);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      expect_next(c, REDIS_REPLY_INTEGER, "a removal's EVALSHA");
    }
    lock.lock();
    g_behind_busy = false;
    g_behind_cv.notify_all();
  }
}

// Queues removal `s` for send_behind.
void queue_behind(Stored s) {
  std::lock_guard lock(g_behind_mutex);
  g_behind.push_back(std::move(s));
  g_behind_cv.notify_all();
}

// Returns once no removal is queued or on its way (at once but on a
// writeback mount with --store).
void wait_behind() {
  if (!g_writeback) {
    return;
  }
  std::unique_lock lock(g_behind_mutex);
  g_behind_cv.wait(lock, [] { return g_behind.empty() && !g_behind_busy; });
}

// Runs `s` on the server, on the calling thread's connection (the round
// trip of its change).
void store(const Stored& s) {
  wait_behind();
  append(connection(), s);
  expect_next(connection(), REDIS_REPLY_INTEGER, "a change's EVALSHA");
}

// The forced close or fsync with --store: the blocks written since the
// last (`blocks`: index and bytes; a block past the end goes) and the
// attributes, in one MULTI (one round trip); with the file's create first
// when it is not on the server yet (`create`, a writeback mount's).
void store_file(fuse_ino_t ino, const std::vector<std::pair<size_t, std::string>>& blocks, const struct stat& st,
                const Stored* create) {
  auto ns = [](const timespec& t) {
    return std::to_string(t.tv_sec) + std::to_string(1000000000 + t.tv_nsec).substr(1);
  };
  std::string ikey = store_key('I', ino);
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  std::string size = std::to_string(st.st_size), uid = std::to_string(st.st_uid), gid = std::to_string(st.st_gid);
  std::string atime = ns(st.st_atim), mtime = ns(st.st_mtim), ctime = ns(st.st_ctim);
  const char* hset[] = {"HSET", ikey.c_str(), "size",  size.c_str(),  "mode",  mode,          "uid",   uid.c_str(),
                        "gid",  gid.c_str(),  "atime", atime.c_str(), "mtime", mtime.c_str(), "ctime", ctime.c_str()};
  wait_behind();
  redisContext* c = connection();
  redisAppendCommand(c, "MULTI");
  if (create != nullptr) {
    append(c, *create);
  }
  for (const auto& [i, bytes] : blocks) {
    std::string key = block_key(ino, i);
    if (i * k_store_block < static_cast<size_t>(st.st_size)) {
      const char* set[] = {"SET", key.c_str(), bytes.data()};
      size_t set_lens[] = {3, key.size(), bytes.size()};
      redisAppendCommandArgv(c, 3, set, set_lens);
    } else {
      redisAppendCommand(c, "DEL %s", key.c_str());
    }
  }
  redisAppendCommandArgv(c, static_cast<int>(std::size(hset)), hset, nullptr);
  redisAppendCommand(c, "EXEC");
  size_t queued = blocks.size() + (create != nullptr ? 1 : 0) + 2;  // MULTI's OK, then QUEUED each
  for (size_t i = 0; i < queued; ++i) {
    expect_next(c, REDIS_REPLY_STATUS, "a close's MULTI");
  }
  expect_next(c, REDIS_REPLY_ARRAY, "a close's EXEC");
}

// Loads the changes' scripts; false if the server cannot be reached.
bool load_store_scripts() {
  redisContext* c = redisConnectUnix(g_socket);
  bool ok = c != nullptr && c->err == 0;
  for (int i = 0; ok && i < k_changes; ++i) {
    auto* reply = static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %s", k_change_script[i]));
    ok = reply != nullptr && reply->type == REDIS_REPLY_STRING;
    if (ok) {
      g_store_sha[i].assign(reply->str, reply->len);
    }
    if (reply != nullptr) {
      freeReplyObject(reply);
    }
  }
  redisFree(c);  // (null: nothing)
  return ok;
}

// Deletes every key --store wrote; false if the server cannot be reached.
bool drop_stored() {
  redisContext* c = redisConnectUnix(g_socket);
  bool ok = c != nullptr && c->err == 0;
  std::string cursor = "0";
  std::string match = g_store_prefix + "*";
  do {
    auto* reply =
        ok ? static_cast<redisReply*>(redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor.c_str(), match.c_str()))
           : nullptr;
    ok = reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2;
    if (ok) {
      cursor.assign(reply->element[0]->str, reply->element[0]->len);
      const redisReply* keys = reply->element[1];
      for (size_t i = 0; i < keys->elements; ++i) {
        freeReplyObject(redisCommand(c, "UNLINK %b", keys->element[i]->str, keys->element[i]->len));
      }
    }
    if (reply != nullptr) {
      freeReplyObject(reply);
    }
  } while (ok && cursor != "0");
  redisFree(c);
  return ok;
}

// --store: a file's bytes are kept from its create to its last release
// only (as redisfs gathers a file's writes until its close), so that the
// memory is used again by the next file: a floor keeping every byte ever
// written would fault in fresh pages all the way (125 MB of tar x: 30,000
// faults, 0.3 s on a machine where a fault costs 10 us), which no
// filesystem that stores its data on the server has to. A file used again
// after that (none of the workloads does) has its bytes fetched back
// first, in one pipeline (under g_mutex).
void load(Node& n) {
  if (!n.dropped) {
    return;
  }
  n.dropped = false;
  size_t size = static_cast<size_t>(n.st.st_size);
  size_t count = (size + k_store_block - 1) / k_store_block;
  redisContext* c = connection();
  for (size_t i = 0; i < count; ++i) {
    redisAppendCommand(c, "GET %s", block_key(n.st.st_ino, i).c_str());
  }
  n.data.assign(size, '\0');
  for (size_t i = 0; i < count; ++i) {
    void* reply = nullptr;
    if (redisGetReply(c, &reply) != REDIS_OK || reply == nullptr) {
      std::fprintf(stderr, "fuse_floor: GET failed on %s\n", g_socket);
      std::exit(1);
    }
    auto* r = static_cast<redisReply*>(reply);
    if (r->type == REDIS_REPLY_STRING) {  // (none: a hole)
      std::memcpy(n.data.data() + i * k_store_block, r->str,
                  std::min(r->len, size - std::min(size, i * k_store_block)));
    }
    freeReplyObject(r);
  }
}

void fill_entry(fuse_entry_param& e, const Node& n) {
  std::memset(&e, 0, sizeof e);
  e.ino = n.st.st_ino;
  e.attr = n.st;
  e.attr_timeout = g_timeout;
  e.entry_timeout = g_timeout;
}

void touch_dir(Node& dir) {
  timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  dir.st.st_mtim = now;
  dir.st.st_ctim = now;
}

Node& new_node(const fuse_ctx* ctx, mode_t mode) {
  fuse_ino_t ino = g_next++;
  Node& n = g_nodes[ino];
  n.st.st_ino = ino;
  n.st.st_mode = mode;
  n.st.st_nlink = S_ISDIR(mode) ? 2 : 1;
  n.st.st_uid = ctx->uid;
  n.st.st_gid = ctx->gid;
  n.st.st_blksize = 4096;
  touch_dir(n);
  n.st.st_atim = n.st.st_mtim;
  return n;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  std::lock_guard lock(g_mutex);
  auto& dir = g_nodes[parent];
  fuse_entry_param e {};
  auto it = dir.entries.find(name);
  if (it == dir.entries.end()) {
    e.entry_timeout = g_timeout;  // negative entry, as redisfs answers
    fuse_reply_entry(req, &e);
    return;
  }
  fill_entry(e, g_nodes[it->second]);
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  std::lock_guard lock(g_mutex);
  auto it = g_nodes.find(ino);
  if (it == g_nodes.end()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_reply_attr(req, &it->second.st, g_timeout);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  std::lock_guard lock(g_mutex);
  auto it = g_nodes.find(ino);
  if (it == g_nodes.end()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  Node& n = it->second;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  if ((to_set & FUSE_SET_ATTR_MODE) != 0) {
    n.st.st_mode = (n.st.st_mode & S_IFMT) | (attr->st_mode & 07777);
  }
  if ((to_set & FUSE_SET_ATTR_UID) != 0) {
    n.st.st_uid = attr->st_uid;
  }
  if ((to_set & FUSE_SET_ATTR_GID) != 0) {
    n.st.st_gid = attr->st_gid;
  }
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
    if (g_store) {
      load(n);
    }
    n.st.st_size = attr->st_size;
    n.st.st_mtim = now;
    if (g_store) {
      // the blocks from the new end to the old: rewritten or gone at the sync
      size_t from = static_cast<size_t>(attr->st_size) / k_store_block;
      size_t to = (n.data.size() + k_store_block - 1) / k_store_block;
      for (size_t i = from; i < std::max(to, from + 1); ++i) {
        n.dirty_blocks.insert(i);
      }
      n.data.resize(static_cast<size_t>(attr->st_size));
    }
  }
  if ((to_set & FUSE_SET_ATTR_ATIME) != 0) {
    n.st.st_atim = (to_set & FUSE_SET_ATTR_ATIME_NOW) != 0 ? now : attr->st_atim;
  }
  if ((to_set & FUSE_SET_ATTR_MTIME) != 0) {
    n.st.st_mtim = (to_set & FUSE_SET_ATTR_MTIME_NOW) != 0 ? now : attr->st_mtim;
  }
  n.st.st_ctim = now;
  // given attributes while open: its close is forced to wait (bound.py)
  n.dirty = n.dirty || n.opens > 0;
  fuse_reply_attr(req, &n.st, g_timeout);
}

// Whether `dir` has an entry `name`: then EEXIST is answered (under
// g_mutex).
bool taken(fuse_req_t req, const Node& dir, const char* name) {
  if (dir.entries.count(name) == 0) {
    return false;
  }
  fuse_reply_err(req, EEXIST);
  return true;
}

// The type redisfs writes for `mode`.
const char* type_name(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "dir";
  }
  if (S_ISLNK(mode)) {
    return "symlink";
  }
  return S_ISREG(mode) ? "file" : "special";
}

// Links a new node under parent/name (EEXIST if taken): a change, so one
// round trip first (with --store, its writes before the answer).
void make(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi,
          const char* target = nullptr) {
  round_trip();
  Stored s;
  bool deferred = false;
  fuse_entry_param e{};
  {
    std::lock_guard lock(g_mutex);
    if (taken(req, g_nodes[parent], name)) {
      return;
    }
    Node& n = new_node(fuse_req_ctx(req), mode);
    if (target != nullptr) {
      n.target = target;
      n.st.st_size = static_cast<off_t>(n.target.size());
    }
    if (fi != nullptr) {
      n.opens = 1;
    }
    Node& p = g_nodes[parent];
    p.entries[name] = n.st.st_ino;
    if (S_ISDIR(mode)) {
      p.st.st_nlink++;
    }
    touch_dir(p);
    fill_entry(e, n);
    if (g_store) {
      char octal[16];
      std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode & 07777));
      s.keys = {store_key('D', parent), store_key('I', n.st.st_ino), store_key('I', parent)};
      s.args = {name,
                std::to_string(n.st.st_ino),
                type_name(mode),
                octal,
                std::to_string(n.st.st_uid),
                std::to_string(n.st.st_gid),
                std::to_string(n.st.st_nlink),
                std::to_string(n.st.st_size),
                std::to_string(parent),
                std::to_string(p.st.st_nlink),
                n.target};
      if (g_writeback && fi != nullptr) {  // sent with its first close or fsync
        g_unsent[n.st.st_ino] = std::move(s);
        deferred = true;
      }
    }
  }
  if (g_store && !deferred) {
    store(s);
  }
  if (fi != nullptr) {
    fi->keep_cache = g_writeback ? 1 : 0;
    fuse_reply_create(req, &e, fi);
  } else {
    fuse_reply_entry(req, &e);
  }
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  make(req, parent, name, S_IFREG | (mode & 07777), fi);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  make(req, parent, name, mode, nullptr);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  make(req, parent, name, S_IFDIR | (mode & 07777), nullptr);
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  make(req, parent, name, S_IFLNK | 0777, nullptr, target);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  std::lock_guard lock(g_mutex);
  auto it = g_nodes.find(ino);
  if (it == g_nodes.end() || !S_ISLNK(it->second.st.st_mode)) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  fuse_reply_readlink(req, it->second.target.c_str());
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  round_trip();
  Stored s{k_link, {}, {}};
  std::optional<Stored> unsent;
  fuse_entry_param e{};
  {
    std::lock_guard lock(g_mutex);
    auto& dir = g_nodes[parent];
    if (taken(req, dir, name)) {
      return;
    }
    Node& n = g_nodes[ino];
    n.st.st_nlink++;
    dir.entries[name] = ino;
    touch_dir(dir);
    fill_entry(e, n);
    if (g_store) {
      s.keys = {store_key('D', parent), store_key('I', ino), store_key('I', parent)};
      s.args = {name, std::to_string(ino), std::to_string(n.st.st_nlink)};
      unsent = take_unsent(ino);
    }
  }
  if (unsent) {  // its create first
    store(*unsent);
  }
  if (g_store) {
    store(s);
  }
  fuse_reply_entry(req, &e);
}

// The entry `name` of `dir`, or its end() once ENOENT is answered (under
// g_mutex).
std::map<std::string, fuse_ino_t>::iterator find_entry(fuse_req_t req, Node& dir, const char* name) {
  auto it = dir.entries.find(name);
  if (it == dir.entries.end()) {
    fuse_reply_err(req, ENOENT);
  }
  return it;
}

void remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
  round_trip();  // (none on a writeback mount: it has --store, or no server)
  Stored s{k_remove, {}, {}};
  bool on_server = true;
  {
    std::lock_guard lock(g_mutex);
    auto& p = g_nodes[parent];
    auto it = find_entry(req, p, name);
    if (it == p.entries.end()) {
      return;
    }
    fuse_ino_t ino = it->second;
    Node& n = g_nodes[ino];
    if (dir && !n.entries.empty()) {
      fuse_reply_err(req, ENOTEMPTY);
      return;
    }
    n.st.st_nlink = dir || n.st.st_nlink == 0 ? 0 : n.st.st_nlink - 1;
    if (dir) {
      p.st.st_nlink--;
    }
    p.entries.erase(it);
    touch_dir(p);
    if (g_store) {
      s.keys = {store_key('D', parent), store_key('I', ino), store_key('I', parent)};
      if (dir) {
        s.keys.push_back(store_key('D', ino));
      }
      for (size_t i = 0; !dir && n.st.st_nlink == 0 && i * k_store_block < static_cast<size_t>(n.st.st_size); ++i) {
        s.keys.push_back(block_key(ino, i));
      }
      s.args = {name, std::to_string(n.st.st_nlink), std::to_string(p.st.st_nlink)};
      on_server = !take_unsent(ino);  // never sent: nothing to remove
    }
  }
  if (g_store && g_writeback && on_server) {
    queue_behind(std::move(s));
  } else if (g_store && on_server) {
    store(s);
  }
  fuse_reply_err(req, 0);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) { remove(req, parent, name, false); }
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { remove(req, parent, name, true); }

// rename without flags, replacing a file or an empty directory
void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned int flags) {
  if (flags != 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  round_trip();
  Stored s{k_rename, {}, {}};
  std::optional<Stored> unsent;
  {
    std::lock_guard lock(g_mutex);
    auto& from = g_nodes[parent];
    auto it = find_entry(req, from, name);
    if (it == from.entries.end()) {
      return;
    }
    fuse_ino_t moved = it->second;
    auto& to = g_nodes[newparent];
    auto old = to.entries.find(newname);
    if (old != to.entries.end() && !g_nodes[old->second].entries.empty()) {
      fuse_reply_err(req, ENOTEMPTY);
      return;
    }
    from.entries.erase(it);
    to.entries[newname] = moved;
    touch_dir(from);
    touch_dir(to);
    if (g_store) {
      s.keys = {store_key('D', parent), store_key('D', newparent), store_key('I', parent), store_key('I', newparent)};
      s.args = {name, newname, std::to_string(moved)};
      unsent = take_unsent(moved);
    }
  }
  if (unsent) {  // its create first
    store(*unsent);
  }
  if (g_store) {
    store(s);
  }
  fuse_reply_err(req, 0);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  std::lock_guard lock(g_mutex);
  Node& n = g_nodes[ino];
  n.opens++;
  if (g_store) {
    load(n);
  }
  fi->keep_cache = g_writeback ? 1 : 0;
  fuse_reply_open(req, fi);
}

// The close (flush) or fsync of a file changed since it was opened or last
// synced, or not yet on the server, waits for one round trip (bound.py:
// its data and attributes on the server before close returns).
void sync_if_dirty(fuse_req_t req, fuse_ino_t ino) {
  bool dirty = false;
  std::vector<std::pair<size_t, std::string>> blocks;
  struct stat st {};
  std::optional<Stored> unsent;
  {
    std::lock_guard lock(g_mutex);
    Node& n = g_nodes[ino];
    unsent = take_unsent(ino);
    // (on a writeback mount a removed file's bytes have nowhere to go)
    dirty = (n.dirty || unsent) && !(g_writeback && S_ISREG(n.st.st_mode) && n.st.st_nlink == 0);
    n.dirty = false;
    if (dirty && g_store) {
      for (size_t i : n.dirty_blocks) {
        size_t at = std::min(i * k_store_block, n.data.size());
        blocks.emplace_back(i, n.data.substr(at, k_store_block));
      }
      n.dirty_blocks.clear();
      st = n.st;
    }
  }
  if (dirty && g_store) {
    store_file(ino, blocks, st, unsent ? &*unsent : nullptr);
  } else if (dirty) {
    round_trip();
  }
  fuse_reply_err(req, 0);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { sync_if_dirty(req, ino); }
void op_fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) { sync_if_dirty(req, ino); }

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  std::lock_guard lock(g_mutex);
  Node& n = g_nodes[ino];
  n.opens = n.opens > 0 ? n.opens - 1 : 0;
  bool synced = !n.dirty && n.dirty_blocks.empty();
  if (g_store && S_ISREG(n.st.st_mode) && n.opens == 0 && (synced || n.st.st_nlink == 0)) {
    std::string().swap(n.data);  // (see load)
    n.dirty_blocks.clear();
    n.dropped = n.st.st_nlink > 0;
  }
  fuse_reply_err(req, 0);
}

// (with --store from the bytes kept in memory, else nothing)
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  std::lock_guard lock(g_mutex);
  Node& n = g_nodes[ino];
  if (g_store) {
    load(n);
  }
  const std::string& data = n.data;
  auto at = std::min(static_cast<size_t>(off), data.size());
  fuse_reply_buf(req, data.data() + at, std::min(size, data.size() - at));
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info*) {
  if (g_data) {
    store_data(ino, off, buf, size);
  }
  std::lock_guard lock(g_mutex);
  Node& n = g_nodes[ino];
  if (g_store) {
    load(n);
  }
  n.st.st_size = std::max<off_t>(n.st.st_size, off + static_cast<off_t>(size));
  n.dirty = true;
  if (g_store) {
    n.data.resize(static_cast<size_t>(n.st.st_size));
    std::memcpy(n.data.data() + off, buf, size);
    for (size_t i = static_cast<size_t>(off) / k_store_block; size != 0 && i <= (off + size - 1) / k_store_block; ++i) {
      n.dirty_blocks.insert(i);
    }
  }
  fuse_reply_write(req, size);
}

void op_getxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) { fuse_reply_err(req, ENODATA); }

void op_listxattr(fuse_req_t req, fuse_ino_t, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, 0);
  } else {
    fuse_reply_buf(req, nullptr, 0);
  }
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs sv {};
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = sv.f_bfree = sv.f_bavail = 1 << 30;
  sv.f_files = sv.f_ffree = sv.f_favail = 1 << 30;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
}

// --store (but for --writeback): a listing's start reads the directory's
// names on the server, one HSCAN a page of 1,000 (one for any directory of
// workload 8), as redisfs promises on a default mount (README: a listing
// reads the names every time; a mount of many hosts cannot list from
// memory). The floor, the only writer, lists the names it holds: what
// the server sent is the same.
void read_names(fuse_ino_t ino) {
  std::string key = store_key('D', ino);
  std::string cursor = "0";
  do {
    auto* r =
        static_cast<redisReply*>(redisCommand(connection(), "HSCAN %s %s COUNT 1000", key.c_str(), cursor.c_str()));
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      std::fprintf(stderr, "fuse_floor: HSCAN failed on %s\n", g_socket);
      std::exit(1);
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    freeReplyObject(r);
  } while (cursor != "0");
}

void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  if (g_store && !g_writeback && off == 0) {
    read_names(ino);
  }
  std::lock_guard lock(g_mutex);
  const Node& dir = g_nodes[ino];
  std::vector<char> buf(size);
  size_t used = 0;
  off_t i = 0;
  for (const auto& [name, child] : dir.entries) {
    ++i;
    if (i <= off) {
      continue;
    }
    fuse_entry_param e {};
    fill_entry(e, g_nodes[child]);
    size_t len = plus ? fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), &e, i)
                      : fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &e.attr, i);
    if (len > size - used) {
      break;
    }
    used += len;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  readdir(req, ino, size, off, false);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  readdir(req, ino, size, off, true);
}

void op_init(void*, fuse_conn_info* conn) {
  conn->want |= conn->capable & (FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_PARALLEL_DIROPS);
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC);
  if (g_writeback) {
    conn->want |= conn->capable & FUSE_CAP_WRITEBACK_CACHE;
  }
  conn->max_write = 1024 * 1024;  // as redisfs asks (fs/op_init.cpp)
  conn->time_gran = 1;
}

int usage() {
  std::fprintf(stderr,
               "usage: fuse_floor [--redis SOCKET [--data | --store]] [--xattrs] [--no-default-permissions] "
               "MOUNTPOINT\n       fuse_floor --writeback [--redis SOCKET --store] [--xattrs] MOUNTPOINT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mountpoint = nullptr;
  bool xattrs = false;
  bool default_permissions = true;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--redis" && i + 1 < argc) {
      g_socket = argv[++i];
    } else if (arg == "--data") {
      g_data = true;
    } else if (arg == "--store") {
      g_store = true;
    } else if (arg == "--xattrs") {
      xattrs = true;
    } else if (arg == "--writeback") {
      g_writeback = true;
      g_timeout = 3600;
    } else if (arg == "--no-default-permissions") {
      default_permissions = false;
    } else if (mountpoint == nullptr && !arg.starts_with("-")) {
      mountpoint = argv[i];
    } else {
      return usage();
    }
  }
  if (mountpoint == nullptr || ((g_data || g_store) && g_socket == nullptr) || (g_data && g_store) ||
      (g_writeback && g_socket != nullptr && !g_store)) {
    return usage();
  }
  if (g_socket != nullptr && (!load_script() || (g_store && !load_store_scripts()))) {
    std::fprintf(stderr, "fuse_floor: cannot load a script into the server at %s\n", g_socket);
    return 1;
  }
  // Freed memory is kept for the next request, as redisfs keeps it
  // (core/util/heap.hpp): with glibc's defaults a buffer past 128 KiB (a
  // close's MULTI of several blocks) goes back to the kernel when freed and
  // is faulted in again page by page the next time, which on a virtual
  // machine costs more than the round trip (bench/RESULTS.md, session 39).
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
  g_store_prefix = "fuse_floor:" + std::to_string(getpid()) + ":";
  Node& root = g_nodes[FUSE_ROOT_ID];
  root.st.st_ino = FUSE_ROOT_ID;
  root.st.st_mode = S_IFDIR | 0755;
  root.st.st_nlink = 2;
  touch_dir(root);

  fuse_lowlevel_ops ops {};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.create = op_create;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.symlink = op_symlink;
  ops.readlink = op_readlink;
  ops.link = op_link;
  ops.rename = op_rename;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.open = op_open;
  ops.release = op_release;
  ops.read = op_read;
  ops.write = op_write;
  ops.statfs = op_statfs;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  if (g_socket != nullptr) {
    ops.flush = op_flush;
    ops.fsync = op_fsync;
  }
  if (xattrs) {
    ops.getxattr = op_getxattr;
    ops.listxattr = op_listxattr;
  }

  std::string options = "fsname=fuse_floor,subtype=fuse_floor";
  if (default_permissions) {
    options = "default_permissions," + options;
  }
  const char* fargv[] = {argv[0], "-o", options.c_str(), nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(fargv));
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  fuse_opt_free_args(&args);
  if (se == nullptr || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mountpoint) != 0) {
    std::fprintf(stderr, "fuse_floor: cannot mount on %s\n", mountpoint);
    return 1;
  }
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, 0);
  fuse_loop_cfg_set_idle_threads(loop, 10);
  std::thread behind;
  if (g_writeback && g_store) {
    behind = std::thread(send_behind);
  }
  int rc = fuse_session_loop_mt(se, loop);
  if (behind.joinable()) {  // what is queued lands before the keys go
    {
      std::lock_guard lock(g_behind_mutex);
      g_behind_stop = true;
      g_behind_cv.notify_all();
    }
    behind.join();
  }
  fuse_loop_cfg_destroy(loop);
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  if ((!g_data_keys.empty() && !drop_data()) || (g_store && !drop_stored())) {
    std::fprintf(stderr, "fuse_floor: cannot delete the data it stored on %s\n", g_socket);
    return 1;
  }
  return rc == 0 ? 0 : 1;
}
