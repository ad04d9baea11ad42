// Where a Redis server is and how to reach it: the URL forms we accept
// (following redis-cli's conventions), TLS settings and the outage budget.
// Parsing only; nothing here talks to a server.
//
//   redis://[user[:password]@]host[:port][/db]
//   rediss://[user[:password]@]host[:port][/db]          TLS
//   unix://[user[:password]@]/path.sock[?db=N]
//   redis-sentinel://[user[:password]@]host:port[,host:port...]/MASTER[?db=N]
//   rediss-sentinel://...                                 TLS to sentinels and data nodes
//
// user/password name an ACL user of the data nodes (percent-encoded). A
// password in the URL is accepted but discouraged: REDISFS_PASSWORD or
// --password-file keep it out of argv (endpoint.hpp).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace redisfs {

struct TlsConfig {
  bool enabled = false;     // rediss://, rediss-sentinel:// or --tls
  std::string ca_cert;      // --tls-ca-cert / REDISFS_TLS_CA_CERT; empty: the system's CAs
  std::string ca_cert_dir;  // --tls-ca-cert-dir / REDISFS_TLS_CA_CERT_DIR
  std::string cert;         // --tls-cert / REDISFS_TLS_CERT (client certificate, PEM)
  std::string key;          // --tls-key / REDISFS_TLS_KEY (its private key, PEM)
  std::string server_name;  // --tls-server-name / REDISFS_TLS_SERVER_NAME: SNI and the
                            // name verified; empty: the host we connect to
};

struct HostPort {
  std::string host;
  int port = 0;
  std::string display() const;  // host:port, [v6]:port
};

struct RedisUrl {
  bool is_unix = false;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path;  // unix socket
  int db = 0;
  std::string user;
  std::string password;
  TlsConfig tls;

  // Sentinel: when non-empty, host/port above are ignored and the master
  // is found through these sentinels by name (and found again after a
  // failover).
  std::vector<HostPort> sentinels;
  std::string master_name;
  // Sentinels' own AUTH (REDISFS_SENTINEL_PASSWORD); empty: none.
  std::string sentinel_user;
  std::string sentinel_password;

  // How long a call waits through an outage (restart, failover, LOADING,
  // cluster reconfiguration) before it fails: --timeout, default 30 s.
  std::chrono::milliseconds timeout{30000};
  // How long one reply may take before the connection counts as lost (and
  // the call is retried or checked within `timeout`); 0: `timeout`. A mount
  // sets it shorter so a stopped master costs seconds, not the whole budget.
  std::chrono::milliseconds reply_timeout{0};

  bool is_sentinel() const { return !sentinels.empty(); }
  // For logs and messages: never shows a password.
  std::string display() const;
};

Result<RedisUrl> parse_redis_url(std::string_view url);

}  // namespace redisfs
