// Guards for the data: what the Redis server must be before we trust it
// with a filesystem.
//
//   * version 6.2 or newer (COPY, and scripts replicated by their effects);
//   * for a read-write use, maxmemory-policy noeviction: any other policy
//     lets Redis delete keys (file blocks, inodes) when memory runs short,
//     unless the user accepts that (--allow-evicting-server);
//   * persistence (AOF or RDB snapshots), or a warning: a restart of a
//     server without it loses every filesystem on it.
//
// Managed servers often disable CONFIG: then the RDB part of the
// persistence check is skipped (INFO alone cannot tell).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

struct ServerInfo {
  std::string version;            // redis_version, e.g. "7.0.15"
  int major = 0;
  int minor = 0;
  std::string maxmemory_policy;   // e.g. "noeviction"
  bool aof_enabled = false;
  std::optional<std::string> save;  // CONFIG GET save; nullopt when CONFIG is unavailable
};

// INFO server, memory, persistence and CONFIG GET save; on a Redis
// Cluster, of the master of `at`'s slot when given (a key), else of the
// node the connection sends keyless commands to.
Result<ServerInfo> server_info(Connection& c, std::string_view at = {});

// ENOTSUP for a server older than 6.2 (or one whose version INFO does not
// say): redisfs needs COPY and scripts replicated by their effects.
Status check_version(const ServerInfo& info);

// The eviction guard alone (redisfs-snap's): with a maxmemory-policy that
// can evict keys, EINVAL "<refusing>: the server's maxmemory-policy is ..."
// when `writes` and not `allow_eviction`, else the warning to show; "" on a
// noeviction server.
Result<std::string> check_eviction(const ServerInfo& info, bool writes, bool allow_eviction,
                                   std::string_view refusing);

// Refuses a server we must not use (EINVAL for an evicting server in
// read-write use, ENOTSUP for a too old one); returns the warnings to show.
// On a cluster, the master of `at`'s slot (a key of the filesystem).
Result<std::vector<std::string>> check_server(Connection& c, bool read_write, bool allow_eviction,
                                              std::string_view at = {});

}  // namespace redisfs
