// redisfs-snap fsck PREFIX [--repair [--force | --dry-run]] [--json]: check
// a filesystem's keys against the invariants the scripts keep, and repair
// what can be repaired (core/snap/fsck.hpp). One line per problem on stdout (or
// one JSON document), a summary on stderr; exit 0 when nothing is left
// wrong, 1 when problems remain, 2 for a bad command line. --dry-run checks
// only, and lists what --repair would do, data-deleting repairs marked.
#include <cstdio>
#include <iostream>
#include <memory>

#include "context.hpp"
#include "snap/fsck.hpp"
#include "snap/install.hpp"
#include "snap/snapshot.hpp"
#include "store/keys.hpp"
#include "util/progress.hpp"
#include "util/text.hpp"

namespace redisfs::snap {

namespace {
struct FsckArgs {
  std::string prefix;
  bool repair = false;
  bool dry_run = false;  // with repair: list the repairs, change nothing
  bool force = false;
  bool json = false;
};

// The superblock first: without one there is no filesystem to check, and
// saying so at once beats a list of problems that all follow from it.
// Returns the running mounts of `prefix` (count_live_mounts: not one whose
// session key never lapses, which the repair removes).
std::uint64_t _mounts_of_filesystem(Pool& pool, const std::string& prefix) {
  auto lease = pool.acquire();
  if (!lease.ok()) {
    throw_failure(lease.error());
  }
  auto state = probe_prefix(**lease, Keys(prefix), true);  // fsck scans anyway
  if (!state.ok()) {
    throw_failure(state.error());
  }
  // (A prefix a restore or copy is filling has none yet: the check says
  // it is reserved.)
  auto holder = reservation_holder(**lease, Keys(prefix));
  if (!holder.ok()) {
    throw_failure(holder.error());
  }
  if (!state->has_sb && !*holder) {
    if (Status unfinished = refuse_unfinished_install(**lease, Keys(prefix)); !unfinished.ok()) {
      throw CommandFailed{unfinished.error().message + "; nothing checked", 1};
    }
    throw CommandFailed{"no filesystem at prefix '" + prefix + "' (no superblock " + prefix + ":SB" +
                            (state->any_key ? ", although keys remain under it" : "") +
                            "): nothing checked; 'redisfs-snap list --all' shows what the server holds",
                        1};
  }
  auto mounts = count_live_mounts(pool, prefix);
  if (!mounts.ok()) {
    throw_failure(mounts.error());
  }
  return *mounts;
}

// What fsck found, counted for its summary.
struct Tally {
  std::size_t total = 0;
  std::size_t left = 0;
  std::size_t repairable = 0;
  std::size_t deleting = 0;   // of the repairable ones: repairs that delete data
  std::size_t deleted = 0;    // repairs done that deleted data
  std::size_t transient = 0;  // findings that may be a change seen half done (a mounted filesystem)
  std::size_t again = 0;      // left for the next check: a mount may be changing them (FsckProblem::again)
  std::size_t mount_frees = 0;  // left for the next read-write mount (FsckProblem::mount_frees)
};

Tally _tally(const FsckReport& report) {
  Tally t;
  t.total = report.problems.size();
  t.left = report.remaining();
  for (const auto& p : report.problems) {
    t.repairable += p.repairable && !p.repaired ? 1 : 0;
    t.deleting += p.repairable && !p.repaired && !p.deletes.empty() ? 1 : 0;
    t.deleted += p.repaired && !p.deletes.empty() ? 1 : 0;
    t.again += !p.repaired && p.again ? 1 : 0;
    t.mount_frees += !p.repaired && p.mount_frees ? 1 : 0;
  }
  for (const auto& p : report.problems) {
    t.transient += !p.repaired && fsck_kind_may_be_transient(p.kind) ? 1 : 0;
  }
  return t;
}

// The summary line on stderr.
std::string _summary_line(const FsckArgs& args, bool repair, const FsckReport& report, const Tally& t) {
  std::string line = "fsck " + args.prefix + ": " + counted(report.inodes, "inode", "inodes") + " (" +
                     counted(report.dirs, "directory", "directories") + ", " + counted(report.files, "file", "files") +
                     "), " + counted(report.blocks, "block", "blocks") + ", " + counted(report.bytes, "byte", "bytes") +
                     ": ";
  if (t.total == 0) {
    line += "clean";
  } else if (t.left == 0) {
    line += counted(t.total, "problem", "problems") + ", all repaired";
  } else {
    line += counted(t.total, "problem", "problems");
    if (args.dry_run) {
      line += ": --repair would repair " + std::to_string(t.repairable) + " (" + std::to_string(t.deleting) +
              " deleting data) and leave " + std::to_string(t.left - t.repairable);
    } else if (repair) {
      line += ", " + std::to_string(t.total - t.left) + " repaired, " + std::to_string(t.left) + " left";
    } else if (t.repairable > 0) {
      line += ", " + std::to_string(t.repairable) + " repairable with --repair";
      if (t.deleting > 0) {
        line += " (" + std::to_string(t.deleting) + " by deleting data: see --repair --dry-run)";
      }
    }
  }
  if (repair && t.deleted > 0) {
    line += "; " + counted(t.deleted, "repair", "repairs") + " deleted data";
  }
  return line;
}

void _run(ToolContext& ctx, const FsckArgs& args) {
  Pool& pool = ctx.need_pool_for({args.prefix});
  const bool repair = args.repair && !args.dry_run;
  const std::uint64_t mounts = _mounts_of_filesystem(pool, args.prefix);
  Progress progress("fsck " + args.prefix, 0, "keys", ctx.opts.quiet);
  // (a repair refuses a mounted filesystem itself, counting the mounts
  // once it has reserved the prefix: fsck.hpp)
  auto report = fsck(pool, args.prefix, repair, &progress, args.force ? FsckMounted::Confirm : FsckMounted::Refuse);
  progress.finish();
  if (!report.ok()) {
    throw_failure(report.error());
  }
  if (args.json) {
    std::cout << fsck_as_json(args.prefix, repair, *report);
  } else {
    for (const auto& p : report->problems) {
      std::cout << (args.dry_run ? fsck_dry_run_line(p) : fsck_problem_line(p)) << '\n';
    }
  }
  std::cout.flush();
  if (!std::cout) {
    // (the report is lost: not a success, whatever it said; a repair made
    // is made, and the next check says what is left)
    throw CommandFailed{"writing to stdout failed"};
  }

  const Tally tally = _tally(*report);
  const std::size_t left = tally.left;
  const std::size_t transient = tally.transient;
  // A mounted filesystem moves under the check: say which findings may be
  // a change seen half done.
  const bool moving = mounts > 0 && !repair && transient > 0;
  summary(ctx, _summary_line(args, repair, *report, tally));
  if (moving) {
    summary(ctx, "fsck " + args.prefix + ": it " + mounted_count(mounts) + " and was checked while it may change: " +
                     std::to_string(transient) + " of the " + counted(left, "problem", "problems") +
                     " (counters, link counts, byte counts, entries, orphans, opens) may be a change seen half "
                     "done; for a consistent check, fsck a snapshot: redisfs-snap copy " +
                     args.prefix + " " + args.prefix + "-check && redisfs-snap fsck " + args.prefix + "-check");
  }
  if (left > 0) {
    std::string hint =
        moving         ? (transient == left ? " (all may be passing: see above)" : " (some may be passing: see above)")
        : args.dry_run ? " (nothing changed: dry run)"
        : !repair && tally.repairable > 0 ? " (run fsck --repair)"
        : tally.again == left             ? " (changed while checked: run fsck again)"
        : tally.again > 0
            ? " (" + std::to_string(tally.again) + " changed while checked: run fsck again; repair the rest by hand)"
        : tally.mount_frees == left
            ? (left == 1 ? " (the next read-write mount frees it)" : " (the next read-write mount frees them)")
        : tally.mount_frees > 0
            ? " (" + std::to_string(tally.mount_frees) + " freed by the next read-write mount; repair the rest by hand)"
        : left == 1 ? " (repair it by hand)"
                    : " (repair them by hand)";
    throw CommandFailed{
        "'" + args.prefix + "' has " + counted(left, "problem", "problems") + (repair ? " left" : "") + hint, 1};
  }
}
}  // namespace

void add_fsck_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<FsckArgs>();
  CLI::App* sub = app.add_subcommand("fsck", "Check a filesystem's consistency, and repair it with --repair");
  add_prefix_option(sub, "PREFIX", args->prefix, "prefix of the filesystem")->required();
  CLI::Option* repair =
      sub->add_flag("--repair", args->repair, "fix what can be fixed (refused while the filesystem is mounted)");
  CLI::Option* force =
      sub->add_flag("--force", args->force, "repair even while mounted (mounts may see it change under them)")
          ->needs(repair);
  sub->add_flag("--dry-run", args->dry_run,
                "change nothing: list every repair --repair would do, marking those that delete data")
      ->needs(repair)
      ->excludes(force);
  sub->add_flag("--json", args->json, "print the report as one JSON document");
  sub->footer(
      "Checks: the superblock (format, version, block size, counters inodes/bytes/next_inode/\n"
      "security_xattrs); the root directory; every inode hash decodes as the daemon decodes it (and has\n"
      "every field the scripts write; sizes up to 2^50, symlink targets of 1 to 4095 bytes, inode numbers\n"
      "below 2^53); entry names the kernel accepts, naming existing inodes; link counts; each directory\n"
      "is named once, in the directory its 'parent' names, and reaches the root; no inode is lost;\n"
      "ORPHANS and OPEN records; attribute names and values; DIR/XATTR/BLK keys of missing inodes or of\n"
      "the wrong kind of inode; blocks past the end of a file or longer than the block size; each\n"
      "inode's 'bytes'; the type of every key; unknown keys; a FREEZE without TTL.\n"
      "\n"
      "--repair fixes the counters, removes dangling, extra and unusable entries (what they named goes\n"
      "to /lost+found), stray keys, keys of the wrong type, unusable attributes and blocks past the end\n"
      "(trims a block holding bytes past it), fixes parent fields, drops stale ORPHANS and OPEN records,\n"
      "and reattaches lost inodes as /lost+found/#<ino>. A field it cannot parse is never repaired: the\n"
      "inode is reported as bad and keeps every block, entry and attribute. It never touches unknown\n"
      "keys, and repairs nothing without a valid superblock. Repairs that delete data (a block, bytes,\n"
      "an attribute, a key holding data) say so on their line; --repair --dry-run changes nothing and\n"
      "lists every repair, those deleting data as 'repair, DELETES DATA (...)'. --repair refuses a\n"
      "mounted filesystem (live <prefix>:MOUNT:* keys that lapse) unless --force, and fails while a\n"
      "snapshot is being taken.\n"
      "\n"
      "Output: one line per problem on stdout, '<kind>: <key>: <detail>[ (repaired)]' (bytes that are\n"
      "not printable UTF-8 as \\xNN, long keys and names cut with ...), and a summary on stderr. A prefix\n"
      "without a superblock is refused at once. A busy mounted filesystem can show passing problems: the\n"
      "summary then says how many are of kinds a change in flight shows; fsck a snapshot of it (copy)\n"
      "for a consistent check. Exit\n"
      "status: 0 nothing wrong (or all repaired), 1 problems remain or the check failed, 2 bad command\n"
      "line.");
  sub->callback([args, &ctx] { _run(ctx, *args); });
}

}  // namespace redisfs::snap
