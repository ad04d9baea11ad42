// redisfs-snap du PREFIX [--top N] [--depth N] [--json]: where a
// filesystem's bytes are, the directories holding the most first
// (core/snap/fs_report.hpp: disk_usage, one walk of the tree).
#include <iostream>

#include "context.hpp"
#include "snap/fs_report.hpp"
#include "util/progress.hpp"
#include "util/text.hpp"

namespace redisfs::snap {

namespace {
struct DuArgs {
  std::string prefix;
  std::size_t top = 20;
  unsigned depth = 0;
  bool json = false;
};
}  // namespace

void add_du_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<DuArgs>();
  CLI::App* sub = app.add_subcommand("du", "Show where a filesystem's bytes are: the directories holding the most");
  add_prefix_option(sub, "PREFIX", args->prefix, "prefix of the filesystem")->required();
  sub->add_option("--top", args->top, "how many directories to show (default 20)")
      ->type_name("N")
      ->check(CLI::Range(1, 1000000).description(""));
  sub->add_option("--depth", args->depth, "only directories at most N levels below the root (default: any)")
      ->type_name("N");
  sub->add_flag("--json", args->json, "print one JSON document (raw numbers) instead of a table");
  sub->callback([args, &ctx] {
    Pool& pool = ctx.need_pool_for({args->prefix});
    Progress progress("du " + args->prefix, 0, "inodes", ctx.opts.quiet);
    auto report = disk_usage(pool, args->prefix, args->top, args->depth, &progress);
    progress.finish();
    if (!report.ok()) {
      throw_failure(report.error());
    }
    std::cout << (args->json ? du_as_json(args->prefix, *report) : du_as_table(*report));
    std::cout.flush();
    if (!std::cout) {
      throw CommandFailed{"writing to stdout failed"};
    }
    summary(ctx, "du " + args->prefix + ": " + counted(report->inodes, "inode", "inodes") + ", " +
                     human_bytes(report->bytes) + " in files");
  });
}

}  // namespace redisfs::snap
