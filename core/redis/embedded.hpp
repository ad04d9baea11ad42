// The embedded default store: a private redis-server that `redisfs` and
// `redisfs-snap` share when no --redis URL is given.
//
// It lives in a data directory (mode 0700, default ~/.local/share/redisfs)
// and listens only on <data_dir>/redis.sock (no TCP port), with AOF on, so
// a filesystem survives a restart of the server or of the host. The first
// user starts it (daemonized: it outlives a crashed mount), later users
// attach to the running one, and the last user out stops it with SHUTDOWN,
// which makes Redis flush the AOF.
//
// Two users starting at once must not start two servers on one directory:
// starting, attaching and stopping all happen under an flock on
// <data_dir>/lock. Every EmbeddedServer also keeps one connection of its own
// open (client name "redisfs:embedded:<pid>") until stop_if_unused(), so a
// user that has attached but not yet opened its pool still counts as a user
// and the server is not shut down under it.
#pragma once

#include <memory>
#include <string>

#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

class EmbeddedServer {
 public:
  // Attaches to the server answering on <data_dir>/redis.sock, or starts
  // one. The data directory is created if missing.
  static Result<std::unique_ptr<EmbeddedServer>> start_or_attach(const std::string& data_dir);

  // Does not stop the server: stopping is explicit (stop_if_unused).
  ~EmbeddedServer();
  EmbeddedServer(const EmbeddedServer&) = delete;
  EmbeddedServer& operator=(const EmbeddedServer&) = delete;

  RedisUrl url() const;
  bool started_here() const { return m_started_here; }
  const std::string& data_dir() const { return m_data_dir; }

  // Shuts the server down (and waits for its process to exit) when our own
  // connection is the only client left; otherwise leaves it running for the
  // other users. Close every pool on this server before calling it. After
  // it, this object holds no connection.
  Status stop_if_unused();

 private:
  EmbeddedServer(std::string data_dir, bool started_here, std::unique_ptr<Connection> presence);

  std::string m_data_dir;
  bool m_started_here = false;
  std::unique_ptr<Connection> m_presence;
};

}  // namespace redisfs
