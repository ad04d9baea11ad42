// What every redisfs-snap subcommand shares: the global options, the
// connection (resolved like the daemon's: --redis, REDISFS_URL, or the
// embedded default store), and the registration functions of the
// subcommands, one cmd_<name>.cpp each.
#pragma once

#include <CLI/CLI.hpp>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "redis/endpoint.hpp"
#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs::snap {

struct GlobalOptions {
  EndpointOptions endpoint;  // --redis, --sentinel, --password-file, TLS, --timeout, --data-dir
  bool quiet = false;
  bool allow_evicting_server = false;  // --allow-evicting-server
};

class ToolContext {
 public:
  GlobalOptions opts;

  // Connects on first use; the pool lives as long as the context.
  Result<Pool*> pool();
  // pool(), or throws CommandFailed with the reason. The server's
  // maxmemory-policy is checked once (check_eviction): a policy that can
  // evict keys is a warning, and refused (unless --allow-evicting-server)
  // when `writing` names what would write a filesystem ("copy", "restore").
  Pool& need_pool(const char* writing = nullptr);
  // need_pool(), connected, with every prefix the subcommand was given
  // checked first (check_toolkit_prefix: valid, and with a hash tag on a
  // Redis Cluster); throws CommandFailed with the reason.
  Pool& need_pool_for(std::initializer_list<std::string_view> prefixes, const char* writing = nullptr);
  // Drops the pool and stops the embedded server if nothing else uses it.
  void close();
  ~ToolContext();

 private:
  std::optional<Endpoint> m_endpoint;
  std::unique_ptr<Pool> m_pool;
  bool m_server_checked = false;
};

// A subcommand's callback reports failure by throwing this; main() prints
// "redisfs-snap: error: <message>" and exits with `exit_code`.
struct CommandFailed {
  std::string message;
  int exit_code = 1;
};

// A PREFIX argument or option: shown as PREFIX in --help, and taken as
// normalize_prefix takes it ("SKX:" is SKX); an invalid one is a command
// line error (exit 2). `made_as`: the prefix names a filesystem the
// command makes (copy's DST, restore's --prefix, rollback's --keep-as),
// which no tool's temporary form may name (refuse_temp_name).
CLI::Option* add_prefix_option(CLI::App* sub, const std::string& name, std::string& target, const std::string& help,
                               std::string made_as = {});
CLI::Option* add_prefix_option(CLI::App* sub, const std::string& name, std::optional<std::string>& target,
                               const std::string& help, std::string made_as = {});

// Throws CommandFailed{error.message}: a subcommand's one-line failure.
[[noreturn]] void throw_failure(const Error& error);

// A one-line summary on stderr, unless --quiet.
void summary(const ToolContext& ctx, const std::string& line);

void add_copy_command(CLI::App& app, ToolContext& ctx);
void add_dump_command(CLI::App& app, ToolContext& ctx);
void add_restore_command(CLI::App& app, ToolContext& ctx);
void add_list_command(CLI::App& app, ToolContext& ctx);
void add_delete_command(CLI::App& app, ToolContext& ctx);
void add_fsck_command(CLI::App& app, ToolContext& ctx);
void add_du_command(CLI::App& app, ToolContext& ctx);
void add_diff_command(CLI::App& app, ToolContext& ctx);
void add_rollback_command(CLI::App& app, ToolContext& ctx);
void add_verify_command(CLI::App& app, ToolContext& ctx);

}  // namespace redisfs::snap
