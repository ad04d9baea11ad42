// The shared state of redisfs-snap's subcommands: the global options and the
// connection, made on first use so `--help` and usage errors never touch a
// server, and closed once at the end (stopping the embedded default store if
// this process was its last user).
#include "context.hpp"

#include <cerrno>
#include <cstdio>

#include "redis/outage.hpp"
#include "redis/server_check.hpp"
#include "snap/snapshot.hpp"
#include "util/progress.hpp"
#include "util/text.hpp"

namespace redisfs::snap {

Result<Pool*> ToolContext::pool() {
  if (m_pool) {
    return m_pool.get();
  }
  TRY_ASSIGN(Endpoint endpoint, resolve_endpoint(opts.endpoint));
  m_endpoint.emplace(std::move(endpoint));
  m_pool = std::make_unique<Pool>(m_endpoint->url, "redisfs-snap");
  // An outage waited out needs nothing of the user: said unless --quiet
  // (one that outlasts --timeout fails the command, whose error says so).
  if (!opts.quiet) {
    set_outage_reporter([timeout = m_endpoint->url.timeout](const OutageNote& note) {
      bool warn = !note.over && note.kind != OutageNote::Kind::Holder;  // (waiting for another tool: no fault)
      std::fprintf(stderr, "%sredisfs-snap: %s%s\n", summary_prefix(), warn ? "warning: " : "",
                   outage_text(note, timeout).c_str());
    });
  }
  return m_pool.get();
}

Pool& ToolContext::need_pool(const char* writing) {
  auto p = pool();
  if (!p.ok()) {
    if (p.error().code == EINVAL) {
      // Server options that do not fit (resolve_endpoint: a timeout out of
      // range, a TLS option without TLS, --sentinel with --redis, a bad
      // URL): the command line, as redisfs(1) says of its own.
      throw CommandFailed{p.error().message, 2};
    }
    throw_failure(p.error());
  }
  if (!m_server_checked) {
    m_server_checked = true;
    auto lease = (*p)->acquire();
    if (!lease.ok()) {
      throw_failure(lease.error());
    }
    // A user whose ACL denies INFO gets no check, as with the daemon's
    // CONFIG: the server is what it is.
    if (auto info = server_info(**lease); info.ok()) {
      if (Status version = check_version(*info); !version.ok()) {
        throw_failure(version.error());
      }
      std::string refusing = std::string("refusing to ") + (writing != nullptr ? writing : "write");
      auto evicting = check_eviction(*info, writing != nullptr, opts.allow_evicting_server, refusing);
      if (!evicting.ok()) {
        throw_failure(evicting.error());
      }
      if (!evicting->empty()) {
        std::fprintf(stderr, "redisfs-snap: warning: %s\n", evicting->c_str());
      }
    }
  }
  return **p;
}

Pool& ToolContext::need_pool_for(std::initializer_list<std::string_view> prefixes, const char* writing) {
  Pool& pool = need_pool(writing);
  auto lease = pool.acquire();
  if (!lease.ok()) {
    throw_failure(lease.error());
  }
  for (std::string_view prefix : prefixes) {
    if (Status st = check_toolkit_prefix(**lease, prefix); !st.ok()) {
      throw_failure(st.error());
    }
  }
  // On a cluster, a writing command's prefixes may live on other masters
  // than the node checked above: each is checked for eviction too.
  if (writing != nullptr && !opts.allow_evicting_server) {
    for (std::string_view prefix : prefixes) {
      if (Status st = refuse_evicting_master(**lease, prefix, writing); !st.ok()) {
        throw_failure(st.error());
      }
    }
  }
  return pool;
}

void ToolContext::close() {
  m_pool.reset();
  if (m_endpoint && m_endpoint->embedded) {
    Status st = m_endpoint->embedded->stop_if_unused();
    if (!st.ok()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", st.error().message.c_str());
    }
  }
  m_endpoint.reset();
}

ToolContext::~ToolContext() { close(); }

namespace {
CLI::Validator _prefix_validator(std::string made_as) {
  return CLI::Validator(
      [made_as = std::move(made_as)](std::string& prefix) {
        Status st = normalize_prefix(prefix);
        if (st.ok() && !made_as.empty()) {
          st = refuse_temp_name(prefix, made_as);
        }
        return st.ok() ? std::string() : st.error().message;
      },
      "", "PREFIX");
}
}  // namespace

CLI::Option* add_prefix_option(CLI::App* sub, const std::string& name, std::string& target, const std::string& help,
                               std::string made_as) {
  return sub->add_option(name, target, help)->type_name("PREFIX")->transform(_prefix_validator(std::move(made_as)));
}

CLI::Option* add_prefix_option(CLI::App* sub, const std::string& name, std::optional<std::string>& target,
                               const std::string& help, std::string made_as) {
  return sub->add_option(name, target, help)->type_name("PREFIX")->transform(_prefix_validator(std::move(made_as)));
}

void throw_failure(const Error& error) { throw CommandFailed{error.message, 1}; }

void summary(const ToolContext& ctx, const std::string& line) {
  if (!ctx.opts.quiet) {
    std::fprintf(stderr, "%s%s\n", summary_prefix(), line.c_str());
  }
}

}  // namespace redisfs::snap
