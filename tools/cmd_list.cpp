// redisfs-snap list [--json] [--all]: every filesystem on the server
// (core/snap/snapshot.hpp: list_filesystems), as a table for a person
// (core/snap/fs_report.hpp) or JSON with raw numbers.
#include <iostream>

#include "context.hpp"
#include "snap/fs_report.hpp"
#include "snap/snapshot.hpp"

namespace redisfs::snap {

namespace {
struct ListArgs {
  bool json = false;
  bool all = false;
};
}  // namespace

void add_list_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<ListArgs>();
  CLI::App* sub = app.add_subcommand("list", "List the filesystems, snapshots and clones on the server");
  sub->add_flag("--json", args->json, "print a JSON array (raw numbers: bytes, RFC 3339 times) instead of a table");
  sub->add_flag("--all", args->all, "also show the temporary prefixes of running (or crashed) dumps and restores");
  sub->callback([args, &ctx] {
    Pool& pool = ctx.need_pool();
    auto list = list_filesystems(pool, args->all);
    if (!list.ok()) {
      throw_failure(list.error());
    }
    std::cout << (args->json ? list_as_json(*list) : list_as_table(*list));
    std::cout.flush();
    if (!std::cout) {
      throw CommandFailed{"writing to stdout failed"};
    }
  });
}

}  // namespace redisfs::snap
