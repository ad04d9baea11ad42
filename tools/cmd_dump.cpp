// redisfs-snap dump PREFIX [-o FILE] [--compress zstd|gzip|none]
// [--compress-level N] [--since BASE]: a point-in-time dump, streamed to a
// file or stdout (core/snap/dump_io.hpp: dump_to_path), compressed as --compress
// says or else as the file's name does (.zst, .gz; stdout: none); with
// --since, only what changed since the snapshot BASE
// (core/snap/dump_incremental.hpp).
#include <cstdio>
#include <optional>
#include <string>

#include "context.hpp"
#include "snap/dump_io.hpp"
#include "snap/snapshot.hpp"

namespace redisfs::snap {

namespace {
struct DumpArgs {
  std::string prefix;
  std::optional<std::string> since;
  std::string output = "-";
  std::optional<std::string> compress;
  std::optional<int> level;
};
}  // namespace

void add_dump_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<DumpArgs>();
  CLI::App* sub = app.add_subcommand("dump", "Write a point-in-time JSON dump of a filesystem (see redisfs-dump(5))");
  add_prefix_option(sub, "PREFIX", args->prefix, "prefix of the filesystem")->required();
  sub->add_option("-o,--output", args->output, "output file ('-': stdout, the default); written whole or not at all")
      ->type_name("FILE");
  sub->add_option("--compress", args->compress,
                  "compress with zstd or gzip, or not (none); default: by FILE's name (.zst, .gz), else none")
      ->type_name("zstd|gzip|none")
      ->check(CLI::IsMember({"zstd", "gzip", "none"}).description(""));
  sub->add_option("--since", args->since,
                  "write only what changed since this snapshot (PREFIX must descend from it): an incremental dump")
      ->type_name("BASE");
  sub->add_option("--compress-level", args->level, "compression level (zstd 1-22, default 3; gzip 1-9, default 6)")
      ->type_name("N");
  sub->callback([args, &ctx] {
    DumpOptions opts{ctx.opts.quiet};
    opts.compression = args->compress ? parse_compression(*args->compress).value_or(Compression::None)
                                      : compression_for_path(args->output == "-" ? "" : args->output);
    if (args->level) {
      if (Status st = check_compression_level(opts.compression, *args->level); !st.ok()) {
        throw CommandFailed{st.error().message, 2};
      }
      opts.compression_level = *args->level;
    }
    opts.since = args->since;
    Pool& pool = args->since ? ctx.need_pool_for({args->prefix, *args->since}) : ctx.need_pool_for({args->prefix});
    auto stats = dump_to_path(pool, args->prefix, args->output, opts);
    if (!stats.ok()) {
      throw_failure(stats.error());
    }
    if (!stats->warning.empty()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats->warning.c_str());
    }
    std::string where = args->output == "-" ? std::string("stdout") : args->output;
    if (stats->compression != Compression::None) {
      where += " (" + std::string(compression_name(stats->compression)) + ", " + human_bytes(stats->written_bytes) +
               " for " + human_bytes(stats->json_bytes) + " of JSON)";
    }
    char line[1024];
    std::string what = args->prefix + (args->since ? " (since " + *args->since + ")" : std::string());
    std::snprintf(line, sizeof line, "dumped %s to %s: %llu records, %s in %.1f s, sha256 %s", what.c_str(),
                  where.c_str(), static_cast<unsigned long long>(stats->trailer.records),
                  human_bytes(stats->trailer.bytes).c_str(), stats->seconds, stats->trailer.sha256.c_str());
    summary(ctx, line);
  });
}

}  // namespace redisfs::snap
