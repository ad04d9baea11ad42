// raw_redis: the "raw Redis" baseline of bench/run. It does the same bytes
// and operations as a workload, straight to the server from one client with
// no filesystem in between, and prints one JSON line:
//   {"ops":N,"bytes":B,"seconds":S}
//
//   raw_redis SOCK set      PREFIX COUNT SIZE [BATCH]
//                                                 SET PREFIX:i (i < COUNT), SIZE-byte values, unpipelined
//                                                 (with BATCH, sent BATCH at a time, each batch's replies
//                                                 read before the next is sent: one round trip a batch)
//   raw_redis SOCK get      PREFIX COUNT [BATCH]  GET the same keys
//   raw_redis SOCK evalsha  COUNT                 EVALSHA of a script that does nothing (`return 1`),
//                                                 COUNT times, one at a time: the price of the cheapest
//                                                 round trip a change can take (bench 8's bound)
//   raw_redis SOCK setrange PREFIX BLOCKS BLOCK_SIZE OPS IO_SIZE
//                                                 SETRANGE of IO_SIZE bytes at a random aligned offset
//                                                 of a random block key (keys PREFIX:i, i < BLOCKS)
//   raw_redis SOCK getrange PREFIX BLOCKS BLOCK_SIZE OPS IO_SIZE
//   raw_redis SOCK copy     SRC DST BATCH         SCAN SRC:* and COPY every key to DST:* with a
//                                                 server-side Lua loop, BATCH keys per EVAL
//   raw_redis SOCK delete   PREFIX                SCAN PREFIX:* and DEL, 1000 keys a command (freed
//                                                 before it returns: DEL, not UNLINK)
//   raw_redis SOCK count    PREFIX                SCAN PREFIX:* and count
//
// Built by bench/run with g++ directly (not part of the CMake build).
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void _die(const std::string& message) {
  std::fprintf(stderr, "raw_redis: %s\n", message.c_str());
  std::exit(1);
}

class Client {
 public:
  explicit Client(const char* sock) {
    m_c = redisConnectUnix(sock);
    if (m_c == nullptr || m_c->err != 0) {
      _die(std::string("cannot connect to ") + sock + ": " + (m_c ? m_c->errstr : "out of memory"));
    }
  }
  ~Client() { redisFree(m_c); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one command and returns its reply; any error ends the program.
  redisReply* command(const std::vector<std::string>& args) {
    append(args);
    return read();
  }
  void append(const std::vector<std::string>& args) {
    m_argv.clear();
    m_lens.clear();
    for (const auto& a : args) {
      m_argv.push_back(a.data());
      m_lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(m_c, static_cast<int>(args.size()), m_argv.data(), m_lens.data()) != REDIS_OK) {
      _die(std::string("append failed: ") + m_c->errstr);
    }
  }
  redisReply* read() {
    void* reply = nullptr;
    if (redisGetReply(m_c, &reply) != REDIS_OK || reply == nullptr) {
      _die(std::string("connection lost: ") + m_c->errstr);
    }
    auto* r = static_cast<redisReply*>(reply);
    if (r->type == REDIS_REPLY_ERROR) {
      _die(std::string("server error: ") + std::string(r->str, r->len));
    }
    return r;
  }
  void command_free(const std::vector<std::string>& args) { freeReplyObject(command(args)); }

  // Every key matching PREFIX:* (SCAN, COUNT 1000).
  std::vector<std::string> scan(const std::string& prefix) {
    std::vector<std::string> keys;
    std::string cursor = "0";
    do {
      redisReply* r = command({"SCAN", cursor, "MATCH", prefix + ":*", "COUNT", "1000"});
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
        keys.emplace_back(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
      }
      freeReplyObject(r);
    } while (cursor != "0");
    return keys;
  }

 private:
  redisContext* m_c = nullptr;
  std::vector<const char*> m_argv;
  std::vector<std::size_t> m_lens;
};

std::uint64_t _num(const char* text) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0') {
    _die(std::string("not a number: ") + text);
  }
  return v;
}

// Sends the commands make(i) for i < count in batches of `batch` (1: each
// waits for its reply), each batch's replies read before the next is sent;
// returns the bytes of the bulk replies.
template <typename Make>
std::uint64_t _batched(Client& c, std::uint64_t count, std::uint64_t batch, Make make) {
  std::uint64_t bytes = 0;
  for (std::uint64_t first = 0; first < count; first += batch) {
    std::uint64_t end = std::min(count, first + batch);
    for (std::uint64_t i = first; i < end; ++i) {
      c.append(make(i));
    }
    for (std::uint64_t i = first; i < end; ++i) {
      redisReply* r = c.read();
      bytes += r->type == REDIS_REPLY_STRING ? r->len : 0;
      freeReplyObject(r);
    }
  }
  return bytes;
}

void _report(std::uint64_t ops, std::uint64_t bytes, Clock::time_point start) {
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("{\"ops\":%llu,\"bytes\":%llu,\"seconds\":%.6f}\n", static_cast<unsigned long long>(ops),
              static_cast<unsigned long long>(bytes), s);
}

std::string _payload(std::size_t size) {
  std::string s(size, '\0');
  std::mt19937_64 rng(42);
  for (auto& ch : s) {
    ch = static_cast<char>(rng());
  }
  return s;
}

const char* k_copy_script =
    "local n = #ARGV[1] "
    "for _, k in ipairs(KEYS) do redis.call('COPY', k, ARGV[2] .. string.sub(k, n + 1)) end "
    "return #KEYS";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    _die("usage: raw_redis SOCK set|get|evalsha|setrange|getrange|copy|delete|count ARGS... (see the source)");
  }
  Client c(argv[1]);
  const std::string mode = argv[2];
  const std::string prefix = argv[3];
  auto need = [&](int n) {
    if (argc != n) {
      _die("wrong number of arguments for " + mode);
    }
  };

  if (mode == "set" || mode == "get") {
    const bool set = mode == "set";
    if (argc != (set ? 6 : 5) && argc != (set ? 7 : 6)) {
      _die("wrong number of arguments for " + mode);
    }
    std::uint64_t count = _num(argv[4]);
    std::string value = set ? _payload(_num(argv[5])) : std::string();
    int batch_arg = set ? 6 : 5;
    std::uint64_t batch = argc > batch_arg ? std::max<std::uint64_t>(1, _num(argv[batch_arg])) : 1;
    auto start = Clock::now();
    std::uint64_t bytes = _batched(c, count, batch, [&](std::uint64_t i) {
      std::string key = prefix + ":" + std::to_string(i);
      return set ? std::vector<std::string>{"SET", key, value} : std::vector<std::string>{"GET", key};
    });
    _report(count, set ? count * value.size() : bytes, start);
  } else if (mode == "evalsha") {
    need(4);
    std::uint64_t count = _num(argv[3]);
    redisReply* r = c.command({"SCRIPT", "LOAD", "return 1"});
    std::string sha(r->str, r->len);
    freeReplyObject(r);
    auto start = Clock::now();
    for (std::uint64_t i = 0; i < count; ++i) {
      c.command_free({"EVALSHA", sha, "0"});
    }
    _report(count, 0, start);
  } else if (mode == "setrange" || mode == "getrange") {
    need(8);
    std::uint64_t blocks = _num(argv[4]);
    std::uint64_t block_size = _num(argv[5]);
    std::uint64_t ops = _num(argv[6]);
    std::uint64_t io = _num(argv[7]);
    if (blocks == 0 || io == 0 || io > block_size) {
      _die("bad sizes");
    }
    std::string value = _payload(io);
    std::mt19937_64 rng(7);
    std::uint64_t slots = block_size / io;
    std::uint64_t bytes = 0;
    auto start = Clock::now();
    for (std::uint64_t i = 0; i < ops; ++i) {
      std::string key = prefix + ":" + std::to_string(rng() % blocks);
      std::string off = std::to_string((rng() % slots) * io);
      if (mode == "setrange") {
        c.command_free({"SETRANGE", key, off, value});
        bytes += io;
      } else {
        redisReply* r = c.command({"GETRANGE", key, off, std::to_string(std::stoull(off) + io - 1)});
        bytes += r->len;
        freeReplyObject(r);
      }
    }
    _report(ops, bytes, start);
  } else if (mode == "copy") {
    need(6);
    const std::string dst = argv[4];
    std::uint64_t batch = _num(argv[5]);
    auto start = Clock::now();
    std::vector<std::string> keys = c.scan(prefix);
    for (std::size_t i = 0; i < keys.size(); i += batch) {
      std::size_t n = std::min<std::size_t>(batch, keys.size() - i);
      std::vector<std::string> args = {"EVAL", k_copy_script, std::to_string(n)};
      args.insert(args.end(), keys.begin() + static_cast<long>(i), keys.begin() + static_cast<long>(i + n));
      args.push_back(prefix + ":");
      args.push_back(dst + ":");
      c.command_free(args);
    }
    _report(keys.size(), 0, start);
  } else if (mode == "delete" || mode == "count") {
    need(4);
    auto start = Clock::now();
    std::vector<std::string> keys = c.scan(prefix);
    if (mode == "delete") {
      for (std::size_t i = 0; i < keys.size(); i += 1000) {
        std::vector<std::string> args = {"DEL"};
        for (std::size_t j = i; j < keys.size() && j < i + 1000; ++j) {
          args.push_back(keys[j]);
        }
        c.command_free(args);
      }
    }
    _report(keys.size(), 0, start);
  } else {
    _die("unknown mode " + mode);
  }
  return 0;
}
