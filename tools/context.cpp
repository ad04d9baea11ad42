// The shared state of redisfs-snap's subcommands: the global options and the
// connection, made on first use so `--help` and usage errors never touch a
// server, and closed once at the end (stopping the embedded default store if
// this process was its last user).
#include "context.hpp"

#include <cstdio>

#include "snapshot.hpp"

namespace redisfs::snap {

Result<Pool*> ToolContext::pool() {
  if (m_pool) {
    return m_pool.get();
  }
  TRY_ASSIGN(Endpoint endpoint, resolve_endpoint(opts.endpoint));
  m_endpoint.emplace(std::move(endpoint));
  m_pool = std::make_unique<Pool>(m_endpoint->url, "redisfs-snap");
  return m_pool.get();
}

Pool& ToolContext::need_pool() {
  auto p = pool();
  if (!p.ok()) {
    throw_failure(p.error());
  }
  return **p;
}

Pool& ToolContext::need_pool_for(std::initializer_list<std::string_view> prefixes) {
  Pool& pool = need_pool();
  auto lease = pool.acquire();
  if (!lease.ok()) {
    throw_failure(lease.error());
  }
  for (std::string_view prefix : prefixes) {
    if (Status st = check_toolkit_prefix(**lease, prefix); !st.ok()) {
      throw_failure(st.error());
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

void throw_failure(const Error& error) { throw CommandFailed{error.message, 1}; }

void summary(const ToolContext& ctx, const std::string& line) {
  if (!ctx.opts.quiet) {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

}  // namespace redisfs::snap
