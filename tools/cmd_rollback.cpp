// redisfs-snap rollback FS SNAP [--force] [--discard] [--keep-as NAME]: the
// live filesystem FS becomes the state of its snapshot SNAP again
// (core/snap/rollback.hpp: rollback_filesystem).
#include <cstdio>

#include "context.hpp"
#include "snap/rollback.hpp"
#include "snap/snapshot.hpp"
#include "util/text.hpp"

namespace redisfs::snap {

namespace {
struct RollbackArgs {
  std::string fs;
  std::string snap;
  bool force = false;
  bool discard = false;
  std::optional<std::string> keep_as;
};
}  // namespace

void add_rollback_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<RollbackArgs>();
  CLI::App* sub = app.add_subcommand(
      "rollback", "Make filesystem FS the state of its snapshot SNAP again; the replaced state is kept as a "
                  "read-only snapshot (FS-before-rollback-<UTC time>) unless --discard");
  add_prefix_option(sub, "FS", args->fs, "prefix of the filesystem to roll back")->required();
  add_prefix_option(sub, "SNAP", args->snap, "prefix of a snapshot of FS")->required();
  sub->add_flag("--force", args->force, "even while FS is mounted (its mounts then fail with ESTALE)");
  auto* discard = sub->add_flag("--discard", args->discard, "do not keep the replaced state");
  add_prefix_option(sub, "--keep-as", args->keep_as, "keep the replaced state under this prefix",
                    "the name the replaced state is kept as")
      ->excludes(discard);
  sub->callback([args, &ctx] {
    Pool& pool = ctx.need_pool_for({args->fs, args->snap}, "rollback");
    RollbackOptions opts{args->force, args->discard, args->keep_as.value_or(""), ctx.opts.quiet};
    auto stats = rollback_filesystem(pool, args->fs, args->snap, opts);
    if (!stats.ok()) {
      throw_failure(stats.error());
    }
    if (!stats->warning.empty()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats->warning.c_str());
    }
    if (!stats->kept.empty()) {
      // What the user needs to find the old state again: on stdout, even with --quiet.
      std::printf("%s\n", stats->kept.c_str());
      std::fflush(stdout);
    }
    char line[768];
    std::snprintf(line, sizeof line, "rolled %s back to %s (%s)%s%s: %llu keys in %.1f s", args->fs.c_str(),
                  args->snap.c_str(), iso_time_ns(stats->snapshot_ns).c_str(),
                  stats->kept.empty() ? "; the replaced state was discarded" : "; the replaced state is kept as ",
                  stats->kept.c_str(), static_cast<unsigned long long>(stats->keys), stats->seconds);
    summary(ctx, line);
    if (stats->mounts > 0) {
      summary(ctx, "its " + counted(stats->mounts, "mount now fails", "mounts now fail") + " with ESTALE: unmount " +
                       (stats->mounts == 1 ? "it" : "them"));
    }
  });
}

}  // namespace redisfs::snap
