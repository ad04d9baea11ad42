// redisfs-snap dump PREFIX [-o FILE]: a point-in-time dump, streamed to a
// file or stdout (core/dump_io.hpp: dump_to_path).
#include <cstdio>

#include "context.hpp"
#include "dump_io.hpp"
#include "snapshot.hpp"

namespace redisfs::snap {

namespace {
struct DumpArgs {
  std::string prefix;
  std::string output = "-";
};
}  // namespace

void add_dump_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<DumpArgs>();
  CLI::App* sub = app.add_subcommand("dump", "Write a point-in-time JSON dump of a filesystem (see redisfs-dump(5))");
  add_prefix_option(sub, "PREFIX", args->prefix, "prefix of the filesystem")->required();
  sub->add_option("-o,--output", args->output, "output file ('-': stdout, the default); written whole or not at all")
      ->type_name("FILE");
  sub->callback([args, &ctx] {
    Pool& pool = ctx.need_pool_for({args->prefix});
    auto stats = dump_to_path(pool, args->prefix, args->output, DumpOptions{ctx.opts.quiet});
    if (!stats.ok()) {
      throw_failure(stats.error());
    }
    if (!stats->warning.empty()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats->warning.c_str());
    }
    std::string where = args->output == "-" ? std::string("stdout") : args->output;
    char line[1024];
    std::snprintf(line, sizeof line, "dumped %s to %s: %llu records, %s in %.1f s, sha256 %s", args->prefix.c_str(),
                  where.c_str(), static_cast<unsigned long long>(stats->trailer.records),
                  human_bytes(stats->trailer.bytes).c_str(), stats->seconds, stats->trailer.sha256.c_str());
    summary(ctx, line);
  });
}

}  // namespace redisfs::snap
