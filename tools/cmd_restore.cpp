// redisfs-snap restore [FILE|-] [--prefix NAME] [--force] [--dry-run] [--snapshot]: load a
// dump, all or nothing (core/dump_io.hpp: restore_from_path).
#include <cstdio>

#include "context.hpp"
#include "dump_io.hpp"
#include "snapshot.hpp"

namespace redisfs::snap {

namespace {
struct RestoreArgs {
  std::string input = "-";
  std::optional<std::string> prefix;
  bool force = false;
  bool dry_run = false;
  bool snapshot = false;
};
}  // namespace

void add_restore_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<RestoreArgs>();
  CLI::App* sub = app.add_subcommand("restore", "Load a dump into the server, all or nothing");
  sub->add_option("FILE", args->input,
                  "dump to read ('-': stdin, the default); zstd or gzip compressed is told by its first bytes")
      ->type_name("FILE");
  add_prefix_option(sub, "--prefix", args->prefix, "restore under this prefix (default: the one in the dump)");
  sub->add_flag("--force", args->force, "replace an existing filesystem (never a mounted one)");
  sub->add_flag("--dry-run", args->dry_run, "verify the dump and the target, write nothing");
  sub->add_flag("--snapshot", args->snapshot,
                "keep it a read-only snapshot (default: a writable filesystem that remembers its dump)");
  sub->callback([args, &ctx] {
    const char* writing = args->dry_run ? nullptr : "restore";
    Pool& pool = args->prefix ? ctx.need_pool_for({*args->prefix}, writing) : ctx.need_pool(writing);
    RestoreOptions opts;
    opts.prefix = args->prefix;
    opts.force = args->force;
    opts.dry_run = args->dry_run;
    opts.snapshot = args->snapshot;
    opts.quiet = ctx.opts.quiet;
    auto stats = restore_from_path(&pool, args->input, opts);
    std::string from = args->input == "-" ? std::string("stdin") : args->input;
    if (!stats.ok()) {
      // A refusal of the target says all; a failure says which input.
      bool refused = stats.error().message.starts_with("refusing");
      throw_failure(refused ? stats.error() : make_error(stats.error().code, from + ": " + stats.error().message));
    }
    if (!stats->warning.empty()) {
      std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats->warning.c_str());
    }
    // "a zstd dump of SKX", "a dump of SKX"
    std::string dump_of = stats->compression == Compression::None
                              ? std::string("dump of ")
                              : std::string(compression_name(stats->compression)) + " dump of ";
    dump_of += stats->source_prefix;
    if (!stats->base_snapshot_id.empty()) {
      dump_of = "incremental " + dump_of + " (base snapshot " + stats->base_snapshot_id + ")";
    }
    char line[1024];
    if (args->dry_run) {
      std::snprintf(line, sizeof line, "dry run: %s is a valid %s (%llu records, %s); it can be restored as %s",
                    from.c_str(), dump_of.c_str(),
                    static_cast<unsigned long long>(stats->trailer.records), human_bytes(stats->trailer.bytes).c_str(),
                    stats->prefix.c_str());
    } else {
      std::snprintf(line, sizeof line, "restored %s (%s) as %s%s: %llu records, %s in %.1f s", from.c_str(),
                    dump_of.c_str(), stats->prefix.c_str(), stats->replaced ? ", replacing it" : "",
                    static_cast<unsigned long long>(stats->trailer.records), human_bytes(stats->trailer.bytes).c_str(),
                    stats->seconds);
    }
    summary(ctx, line);
  });
}

}  // namespace redisfs::snap
