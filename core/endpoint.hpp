// Which Redis a mount or a tool talks to, decided the same way by both mains.
//
// The URL comes from --redis, else the environment (REDISFS_URL), else the
// embedded default store (embedded.hpp) in the data directory. A password
// never has to be on the command line: for a --redis / REDISFS_URL server,
// the one in the URL is overridden by REDISFS_PASSWORD, which is overridden
// by --password-file (its first line). The embedded server has no password.
// No error message ever contains a password.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "embedded.hpp"
#include "redis.hpp"
#include "result.hpp"

namespace redisfs {

struct EndpointOptions {
  std::optional<std::string> url;            // --redis; else env REDISFS_URL; else the embedded default
  std::optional<std::string> password_file;  // --password-file FILE
  std::string data_dir;                      // embedded default data dir; empty = default_data_dir()
};

// $XDG_DATA_HOME/redisfs, else $HOME/.local/share/redisfs.
std::string default_data_dir();

struct Endpoint {
  RedisUrl url;
  std::unique_ptr<EmbeddedServer> embedded;  // set when we use the embedded default
};

Result<Endpoint> resolve_endpoint(const EndpointOptions& opts);

}  // namespace redisfs
