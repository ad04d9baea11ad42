// redisfs-snap fsck PREFIX [--repair [--force]] [--json]: check a
// filesystem's keys against the invariants the scripts keep, and repair what
// can be repaired (core/fsck.hpp). One line per problem on stdout (or one
// JSON document), a summary on stderr; exit 0 when nothing is left wrong,
// 1 when problems remain, 2 for a bad command line.
#include <cstdio>
#include <iostream>
#include <memory>

#include "context.hpp"
#include "fsck.hpp"
#include "keys.hpp"
#include "progress.hpp"

namespace redisfs::snap {

namespace {
struct FsckArgs {
  std::string prefix;
  bool repair = false;
  bool force = false;
  bool json = false;
};

std::string _plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

void _run(ToolContext& ctx, const FsckArgs& args) {
  if (auto valid = validate_prefix(args.prefix); !valid.ok()) {
    throw CommandFailed{valid.error().message, 2};
  }
  Pool& pool = ctx.need_pool();
  if (args.repair && !args.force) {
    auto mounts = count_live_mounts(pool, args.prefix);
    if (!mounts.ok()) {
      throw_failure(mounts.error());
    }
    if (*mounts > 0) {
      throw CommandFailed{"'" + args.prefix + "' is mounted (" + _plural(*mounts, "live mount", "live mounts") +
                              "): unmount it before --repair, or add --force to repair it anyway",
                          1};
    }
  }
  Progress progress("fsck " + args.prefix, 0, "keys", ctx.opts.quiet);
  auto report = fsck(pool, args.prefix, args.repair, &progress);
  progress.finish();
  if (!report.ok()) {
    throw_failure(report.error());
  }
  if (args.json) {
    std::cout << fsck_as_json(args.prefix, args.repair, *report);
  } else {
    for (const auto& p : report->problems) {
      std::cout << fsck_problem_line(p) << '\n';
    }
  }
  std::cout.flush();

  std::size_t total = report->problems.size();
  std::size_t left = report->remaining();
  std::size_t repairable = 0;
  for (const auto& p : report->problems) {
    repairable += p.repairable && !p.repaired ? 1 : 0;
  }
  std::string line = "fsck " + args.prefix + ": " + _plural(report->inodes, "inode", "inodes") + " (" +
                     _plural(report->dirs, "directory", "directories") + ", " +
                     _plural(report->files, "file", "files") + "), " + _plural(report->blocks, "block", "blocks") +
                     ", " + _plural(report->bytes, "byte", "bytes") + ": ";
  if (total == 0) {
    line += "clean";
  } else if (left == 0) {
    line += _plural(total, "problem", "problems") + ", all repaired";
  } else {
    line += _plural(total, "problem", "problems");
    if (args.repair) {
      line += ", " + std::to_string(total - left) + " repaired, " + std::to_string(left) + " left";
    } else if (repairable > 0) {
      line += ", " + std::to_string(repairable) + " repairable with --repair";
    }
  }
  summary(ctx, line);
  if (left > 0) {
    std::string hint = !args.repair && repairable > 0 ? " (run fsck --repair)"
                       : left == 1                      ? " (repair it by hand)"
                                                        : " (repair them by hand)";
    throw CommandFailed{"'" + args.prefix + "' has " + _plural(left, "problem", "problems") +
                            (args.repair ? " left" : "") + hint,
                        1};
  }
}
}  // namespace

void add_fsck_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<FsckArgs>();
  CLI::App* sub = app.add_subcommand("fsck", "Check a filesystem's consistency, and repair it with --repair");
  sub->add_option("PREFIX", args->prefix, "prefix of the filesystem")->required();
  CLI::Option* repair =
      sub->add_flag("--repair", args->repair, "fix what can be fixed (refused while the filesystem is mounted)");
  sub->add_flag("--force", args->force, "repair even while mounted (mounts may see it change under them)")
      ->needs(repair);
  sub->add_flag("--json", args->json, "print the report as one JSON document");
  sub->footer(
      "Checks: the superblock (format, version, block size, counters inodes/bytes/next_inode); the root\n"
      "directory; every inode hash decodes; every directory entry names an existing inode; link counts\n"
      "(a file's nlink = entries naming it, a directory's = 2 + subdirectories, orphans 0); each\n"
      "directory is named by one entry in the directory its 'parent' field names, and reaches the root;\n"
      "no inode is lost (unnamed and not in ORPHANS); ORPHANS records; DIR/XATTR/BLK keys of missing\n"
      "inodes, entries hashes of non-directories, blocks of non-files; blocks past the end of a file or\n"
      "longer than the block size; each inode's 'bytes'; key types; unknown keys; a FREEZE without TTL.\n"
      "\n"
      "--repair fixes the counters, removes dangling and extra entries, stray keys, keys of the wrong\n"
      "type and blocks past the end (trims a block holding bytes past it), fixes parent fields, drops\n"
      "stale ORPHANS records, and reattaches lost inodes as /lost+found/#<ino>. It never deletes\n"
      "reachable file data, never touches unknown keys or undecodable inodes, and repairs nothing\n"
      "without a valid superblock. It refuses a mounted filesystem (live <prefix>:MOUNT:* keys) unless\n"
      "--force, and waits for no snapshot: it fails while one is being taken.\n"
      "\n"
      "Output: one line per problem on stdout, '<kind>: <key>: <detail>[ (repaired)]' (bytes that are\n"
      "not printable UTF-8 as \\xNN), and a summary on stderr. A busy mounted filesystem can show\n"
      "passing problems: check it unmounted, or run fsck twice. Exit status: 0 nothing wrong (or all\n"
      "repaired), 1 problems remain or the check failed, 2 bad command line.");
  sub->callback([args, &ctx] { _run(ctx, *args); });
}

}  // namespace redisfs::snap
