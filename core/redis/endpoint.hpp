// Which Redis a mount or a tool talks to, decided the same way by both mains.
//
// The URL comes from --redis or --sentinel (not both), else the environment
// (REDISFS_URL), else the embedded default store (embedded.hpp) in the data
// directory. The outage budget (RedisUrl::timeout) is --timeout, else
// REDISFS_TIMEOUT, else 30 s, for every server. A password
// never has to be on the command line: for a --redis / REDISFS_URL server,
// the one in the URL is overridden by REDISFS_PASSWORD, which is overridden
// by --password-file (its first line). The embedded server has no password.
// No error message ever contains a password; one given in argv anyway is
// scrubbed from it at start (scrub_password_in_argv).
//
// The server's environment (REDISFS_PASSWORD, REDISFS_SENTINEL_*,
// REDISFS_TLS_*) applies to a server named by a URL or --sentinel, never
// to the embedded default; a TLS variable with TLS off is an error there,
// as the option would be, so nobody talks plain text believing otherwise.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "redis/embedded.hpp"
#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

struct EndpointOptions {
  std::optional<std::string> url;            // --redis; else env REDISFS_URL; else the embedded default
  std::optional<std::string> password_file;  // --password-file FILE
  std::string data_dir;                      // embedded default data dir; empty = default_data_dir()
  // --sentinel HOST:PORT[,HOST:PORT...]/MASTER: shorthand for a
  // redis-sentinel:// URL (the user/password still come from the URL
  // options above); an error together with --redis.
  std::optional<std::string> sentinel;
  // TLS (redis_url.hpp): each unset option falls back to its REDISFS_TLS_*
  // variable. --tls turns TLS on for a redis:// or sentinel URL; any
  // certificate option without TLS on is an error, not ignored.
  bool tls = false;
  std::optional<std::string> tls_ca_cert;
  std::optional<std::string> tls_ca_cert_dir;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_server_name;
  // --timeout SECONDS (else REDISFS_TIMEOUT; default 30).
  std::optional<double> timeout_s;
};

// The command-line options both mains offer for EndpointOptions' string
// fields, so the two spell and explain them alike (the core knows nothing
// of the parser: a main adds each one to its own).
struct EndpointTextOption {
  const char* name;       // "--tls-cert"
  const char* type_name;  // "FILE"
  const char* help;
  std::optional<std::string> EndpointOptions::*field;
};
std::span<const EndpointTextOption> endpoint_text_options();
// The help of --tls and --timeout SECONDS (EndpointOptions::tls, timeout_s).
inline constexpr const char* k_tls_option_help =
    "Use TLS with a redis:// or --sentinel server (rediss:// always does)";
inline constexpr const char* k_timeout_option_help =
    "How long a call waits through a server outage (restart, failover) before it fails "
    "(default: $REDISFS_TIMEOUT, else 30)";

// $XDG_DATA_HOME/redisfs, else $HOME/.local/share/redisfs.
std::string default_data_dir();

struct Endpoint {
  RedisUrl url;
  std::unique_ptr<EmbeddedServer> embedded;  // set when we use the embedded default
};

// EINVAL means options that do not fit (a timeout out of range, a TLS
// option without TLS, --sentinel with --redis, a malformed URL): both mains
// exit 2 for it, as for any bad command line. A file an option names that
// cannot be read or used, or an embedded server that does not start, is
// another errno (exit 1).
Result<Endpoint> resolve_endpoint(const EndpointOptions& opts);

// Overwrites with '*' the password of every --redis URL and --sentinel
// spec in argv (as "--redis VALUE" or "--redis=VALUE"), and of every
// redis=URL in a -o list (redisfs's fstab spelling), in place, so
// /proc/PID/cmdline stops showing it. Call it first thing in main, after
// taking an ArgvCopy for the parser.
void scrub_password_in_argv(int argc, char** argv);

// A private copy of argv for the command-line parser: the original is
// about to be scrubbed.
class ArgvCopy {
 public:
  ArgvCopy(int argc, const char* const* argv);
  ArgvCopy(const ArgvCopy&) = delete;  // m_ptrs points into m_args
  ArgvCopy& operator=(const ArgvCopy&) = delete;
  int argc() const { return static_cast<int>(m_ptrs.size()); }
  const char* const* argv() const { return m_ptrs.data(); }
  // No option or operand of redisfs or redisfs-snap takes an empty value,
  // which the parser would take as one not given (an empty --redis as the
  // embedded store, an empty mount source as the default prefix): a
  // message naming the first one ("option '--redis' has an empty value",
  // "argument 3 is empty"), or "" when there is none.
  std::string empty_argument() const;

 private:
  std::vector<std::string> m_args;
  std::vector<const char*> m_ptrs;
};

}  // namespace redisfs
