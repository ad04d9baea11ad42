// redisfs-snap delete PREFIX [--force]: remove every key of a prefix
// (core/snap/snapshot.hpp: delete_prefix).
#include <cstdio>

#include "context.hpp"
#include "snap/snapshot.hpp"

namespace redisfs::snap {

namespace {
struct DeleteArgs {
  std::string prefix;
  bool force = false;
};
}  // namespace

void add_delete_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<DeleteArgs>();
  CLI::App* sub = app.add_subcommand("delete", "Delete every key of a filesystem (or of a leftover temporary prefix)");
  add_prefix_option(sub, "PREFIX", args->prefix, "prefix to delete")->required();
  sub->add_flag("--force", args->force, "delete even while mounted (the mounts then fail with ESTALE)");
  sub->callback([args, &ctx] {
    Pool& pool = ctx.need_pool_for({args->prefix});
    auto stats = delete_prefix(pool, args->prefix, args->force, ctx.opts.quiet);
    if (!stats.ok()) {
      throw_failure(stats.error());
    }
    if (!stats->warning.empty()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats->warning.c_str());
    }
    char line[512];
    std::snprintf(line, sizeof line, "deleted %s: %llu keys in %.1f s", args->prefix.c_str(),
                  static_cast<unsigned long long>(stats->keys), stats->seconds);
    summary(ctx, line);
  });
}

}  // namespace redisfs::snap
