// redisfs-snap copy SRC DST [--force] [--writable]: a point-in-time copy made
// on the server (core/snap/snapshot.hpp: copy_filesystem).
#include <cstdio>

#include "context.hpp"
#include "snap/snapshot.hpp"

namespace redisfs::snap {

namespace {
struct CopyArgs {
  std::string src;
  std::string dst;
  bool force = false;
  bool writable = false;
};
}  // namespace

void add_copy_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<CopyArgs>();
  CLI::App* sub = app.add_subcommand(
      "copy", "Copy filesystem SRC to the new prefix DST on the server: a read-only snapshot of one instant");
  add_prefix_option(sub, "SRC", args->src, "prefix of the filesystem to copy")->required();
  add_prefix_option(sub, "DST", args->dst, "prefix of the copy (must hold no key)", "the destination of a copy")
      ->required();
  sub->add_flag("--force", args->force, "replace an existing DST (never a mounted one)");
  sub->add_flag("--writable", args->writable, "make a writable clone instead of a read-only snapshot");
  sub->callback([args, &ctx] {
    Pool& pool = ctx.need_pool_for({args->src, args->dst}, "copy");
    auto stats = copy_filesystem(pool, args->src, args->dst,
                                 CopyOptions{args->force, args->writable, ctx.opts.quiet});
    if (!stats.ok()) {
      throw_failure(stats.error());
    }
    if (!stats->warning.empty()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats->warning.c_str());
    }
    char line[512];
    std::snprintf(line, sizeof line, "copied %s -> %s (%s%s): %llu keys, %s in %.1f s", args->src.c_str(),
                  args->dst.c_str(), args->writable ? "writable clone" : "read-only snapshot",
                  stats->replaced ? ", replacing the old one" : "",
                  static_cast<unsigned long long>(stats->keys), human_bytes(stats->bytes).c_str(), stats->seconds);
    summary(ctx, line);
  });
}

}  // namespace redisfs::snap
