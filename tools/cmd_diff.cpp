// redisfs-snap diff A B [--json] [--force]: what changed between two states
// of one filesystem (core/snap/diff.hpp: diff_filesystems).
#include <cstdio>

#include "context.hpp"
#include "snap/diff.hpp"
#include "snap/snapshot.hpp"
#include "util/text.hpp"

namespace redisfs::snap {

namespace {
struct DiffArgs {
  std::string a;
  std::string b;
  bool json = false;
  bool force = false;
};
}  // namespace

void add_diff_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* sub = app.add_subcommand(
      "diff", "Show what changed from state A to state B of one filesystem, like zfs diff: + - M R and the path "
              "(B may be the live filesystem: read at one instant)");
  add_prefix_option(sub, "A", args->a, "prefix of the earlier state (a snapshot)")->required();
  add_prefix_option(sub, "B", args->b, "prefix of the later state (a snapshot or the live filesystem)")->required();
  sub->add_flag("--json", args->json, "one JSON object per line instead of zfs-style lines");
  sub->add_flag("--force", args->force, "compare A and B even if their lineage says they are unrelated");
  sub->callback([args, &ctx] {
    Pool& pool = ctx.need_pool_for({args->a, args->b});
    auto stats = diff_filesystems(pool, args->a, args->b, DiffOptions{args->force, ctx.opts.quiet},
                                  [&](const DiffChange& change) -> Status {
                                    std::string line = args->json ? diff_json(change) : diff_line(change);
                                    line.push_back('\n');
                                    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
                                      return make_error(EIO, "writing to stdout failed");
                                    }
                                    return {};
                                  });
    if (!stats.ok()) {
      throw_failure(stats.error());
    }
    if (std::fflush(stdout) != 0) {
      throw_failure(make_error(EIO, "writing to stdout failed"));
    }
    if (!stats->warning.empty()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats->warning.c_str());
    }
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", stats->seconds);
    summary(ctx, "diff " + args->a + " " + args->b + ": " + counted(stats->changes, "change", "changes") + "; " +
                     std::to_string(stats->inodes_a) + " and " + std::to_string(stats->inodes_b) + " inodes, " +
                     counted(stats->dirs_compared, "changed directory", "changed directories") + " (" +
                     stats->relation + ") in " + took);
  });
}

}  // namespace redisfs::snap
