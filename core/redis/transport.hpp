// The byte stream to one Redis server: a TCP or unix socket, optionally
// wrapped in TLS (OpenSSL). Every connect, read and write has a deadline:
// a hung or stopped server costs at most that long, never forever.
//
// This and transport.cpp are the only code that knows about sockets and
// OpenSSL; redis.cpp speaks RESP over a Transport.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "redis/redis_url.hpp"
#include "util/result.hpp"

namespace redisfs {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

class Transport {
 public:
  // TCP to host:port (a name is resolved; every address is tried), TLS on
  // top when tls.enabled (the certificate is verified against the CA and
  // the name: tls.server_name, else host).
  static Result<std::unique_ptr<Transport>> connect_tcp(const std::string& host, int port, const TlsConfig& tls,
                                                        Deadline deadline);
  static Result<std::unique_ptr<Transport>> connect_unix(const std::string& path, Deadline deadline);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // All of it, or an error (ETIMEDOUT at the deadline, EPIPE/ECONNRESET...).
  Status write_all(const char* data, std::size_t n, Deadline deadline);
  // The same of several pieces, in order: one sendmsg takes them all from
  // where they are (a big command is not copied into one buffer first).
  Status write_all(std::span<const std::string_view> pieces, Deadline deadline);
  // At least one byte; 0 bytes read is an error (the server closed).
  Result<std::size_t> read_some(char* buf, std::size_t n, Deadline deadline);

  // Whether the server closed this connection (or it broke) while it was
  // idle: nothing sent on it now would reach the server. Does not block.
  bool peer_gone() const;

  // The close that ends this transport is an abort (TCP: a reset, SO_LINGER
  // 0): bytes not sent yet are dropped, not sent after it (a partition that
  // heals must not run commands abandoned: Connection::abandon).
  void abort_on_close();

  // host:port or the socket path, for messages.
  const std::string& peer() const { return m_peer; }

 private:
  struct Tls;
  Transport(int fd, std::string peer);
  Status start_tls(const TlsConfig& tls, const std::string& host, Deadline deadline);
  Status tls_write_all(std::string_view data, Deadline deadline);
  Status wait(bool for_write, Deadline deadline, const char* what);

  int m_fd = -1;
  // Bytes were sent and nothing read since: the reply cannot be there yet,
  // so read_some waits before its recv (a recv first would fail with
  // EAGAIN: one syscall a round trip for nothing).
  bool m_awaiting = false;
  std::string m_peer;
  std::unique_ptr<Tls> m_tls;
};

}  // namespace redisfs
