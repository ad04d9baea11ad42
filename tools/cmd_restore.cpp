// redisfs-snap restore [FILE|-] [--prefix NAME] [--force] [--dry-run] [--snapshot] [--resume] [--damaged]:
// load a dump, all or nothing (core/snap/dump_io.hpp: restore_from_path);
// --resume continues an interrupted one (core/snap/restore_resume.hpp).
#include <cstdio>

#include "context.hpp"
#include "snap/dump_io.hpp"
#include "snap/snapshot.hpp"
#include "util/text.hpp"

namespace redisfs::snap {

namespace {
struct RestoreArgs {
  std::string input = "-";
  std::optional<std::string> prefix;
  bool force = false;
  bool dry_run = false;
  bool snapshot = false;
  bool resume = false;
  bool damaged = false;
};

// The summary of a restore that succeeded (its warning first).
void _summarise(ToolContext& ctx, const RestoreArgs& args, const RestoreStats& stats, const std::string& from) {
  if (!stats.warning.empty()) {
    std::fprintf(stderr, "redisfs-snap: warning: %s\n", stats.warning.c_str());
  }
  // "a zstd dump of SKX", "a dump of SKX"
  std::string dump_of = stats.compression == Compression::None
                            ? std::string("dump of ")
                            : std::string(compression_name(stats.compression)) + " dump of ";
  dump_of += stats.source_prefix;
  if (!stats.base_snapshot_id.empty()) {
    dump_of = "incremental " + dump_of + " (base snapshot " + stats.base_snapshot_id + ")";
  }
  char line[1024];
  if (args.dry_run) {
    std::snprintf(line, sizeof line, "dry run: %s is a valid %s (%llu records, %s); it can be restored as %s",
                  from.c_str(), dump_of.c_str(), static_cast<unsigned long long>(stats.trailer.records),
                  human_bytes(stats.trailer.bytes).c_str(), stats.prefix.c_str());
  } else {
    std::snprintf(line, sizeof line, "restored %s (%s) as %s%s: %llu records, %s in %.1f s", from.c_str(),
                  dump_of.c_str(), stats.prefix.c_str(), stats.replaced ? ", replacing it" : "",
                  static_cast<unsigned long long>(stats.trailer.records), human_bytes(stats.trailer.bytes).c_str(),
                  stats.seconds);
  }
  summary(ctx, line);
  if (stats.lost_replies > 0) {
    summary(ctx, "a reply of its writes was lost " +
                     counted(static_cast<std::uint64_t>(stats.lost_replies), "time", "times") +
                     " (a server restart or failover?): it resumed from its last checkpoint");
  }
  if (args.resume) {
    std::uint64_t total = stats.trailer.records;
    std::snprintf(line, sizeof line,
                  "resumed: %llu of %llu records (%.0f%%) were staged before the interruption and not written again",
                  static_cast<unsigned long long>(stats.resumed_records), static_cast<unsigned long long>(total),
                  total > 0 ? 100.0 * static_cast<double>(stats.resumed_records) / static_cast<double>(total) : 0.0);
    summary(ctx, line);
  }
}

}  // namespace

void add_restore_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<RestoreArgs>();
  CLI::App* sub = app.add_subcommand("restore", "Load a dump into the server, all or nothing");
  sub->add_option("FILE", args->input,
                  "dump to read ('-': stdin, the default); zstd or gzip compressed is told by its first bytes")
      ->type_name("FILE");
  add_prefix_option(sub, "--prefix", args->prefix, "restore under this prefix (default: the one in the dump)",
                    "the target of a restore");
  sub->add_flag("--force", args->force, "replace an existing filesystem (never a mounted one)");
  CLI::Option* dry_run = sub->add_flag(
      "--dry-run", args->dry_run,
      "verify the dump, the filesystem in it (from a file: as verify does) and the target; write nothing");
  sub->add_flag("--snapshot", args->snapshot,
                "keep it a read-only snapshot (default: a writable filesystem that remembers its dump)");
  sub->add_flag("--resume", args->resume,
                "continue the restore into the target that a crash or a broken pipe interrupted: the same dump is "
                "read again, its records staged already are checked (SHA-256), not written")
      ->excludes(dry_run);
  sub->add_flag("--damaged", args->damaged,
                "restore a full dump whose filesystem fsck finds damaged as it is (the damage too), with a "
                "warning, rather than refuse it: for fsck --repair, or to read what can be read");
  sub->footer(
      "A restore whose input ends early (a broken pipe; not a regular file) keeps what it staged, and a\n"
      "killed one leaves it, for 12 h: 'restore --resume' with the same dump (and the same --prefix)\n"
      "continues from its last checkpoint (every 512 records or 16 MiB). The records before it must give\n"
      "the digest recorded there, or the resume is refused ('the dump differs from the interrupted one');\n"
      "the trailer still verifies the whole dump. Without --resume a restore starts again from zero;\n"
      "but one from a file whose writes lose a reply (a server restart) resumes by itself, up to 3 times.");
  sub->callback([args, &ctx] {
    const char* writing = args->dry_run ? nullptr : "restore";
    // (the target's checks, --prefix or the dump's, are restore's own: at
    // the dump's header)
    Pool& pool = ctx.need_pool(writing);
    RestoreOptions opts;
    opts.allow_evicting_server = ctx.opts.allow_evicting_server;
    opts.prefix = args->prefix;
    opts.force = args->force;
    opts.dry_run = args->dry_run;
    opts.snapshot = args->snapshot;
    opts.resume = args->resume;
    opts.damaged = args->damaged;
    opts.quiet = ctx.opts.quiet;
    auto stats = restore_from_path(&pool, args->input, opts);
    std::string from = args->input == "-" ? std::string("stdin") : args->input;
    if (!stats.ok()) {
      // A refusal of the target, or an input that cannot be opened (named
      // there), says all; any other failure says which input.
      const std::string& m = stats.error().message;
      bool says_all = m.starts_with("refusing") || m.starts_with("nothing to resume") ||
                      m.starts_with("cannot resume the restore into") || m.starts_with("cannot open ");
      throw_failure(says_all ? stats.error() : make_error(stats.error().code, from + ": " + stats.error().message));
    }
    _summarise(ctx, *args, *stats, from);
  });
}

}  // namespace redisfs::snap
