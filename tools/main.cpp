// redisfs-snap: snapshot, export and import redisfs filesystems.
//
// Thin by design: parse the command line (CLI11, one subcommand required),
// let the subcommand's callback call core/, and turn the outcome into an
// exit status: 0 done, 1 the operation failed (one line on stderr), 2 the
// command line was wrong (one line "redisfs-snap: error: ...", naming an
// unknown command as such, then a pointer to --help). SIGINT/SIGTERM only raise a flag the long loops
// check, so an interrupted copy, dump or restore removes what it had written
// before exiting; a second signal kills at once.
#include <signal.h>

// g++ 12 sees a "potential null pointer dereference" inside CLI11's inlined
// string handling (a false positive in a system header).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "context.hpp"
#include "snap/snapshot.hpp"
#include "util/heap.hpp"
#include "util/progress.hpp"
#include "version.hpp"

using namespace redisfs;
using namespace redisfs::snap;

// The first SIGINT or SIGTERM asks the command to stop cleanly; the second,
// whichever it is, ends the process at once (redisfs-snap(1), SIGNALS):
// both go back to their default here (SA_RESETHAND would reset only the
// one that came). signal(2) is async-signal-safe.
static void _on_signal(int) {
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  request_cancel();
}

static void _install_signals() {
  struct sigaction sa {};
  sa.sa_handler = _on_signal;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);  // (the handler is not entered twice)
  sigaddset(&sa.sa_mask, SIGTERM);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed pipe is a write error, and we clean up
}

int main(int argc, char** argv) {
  // The parser reads a copy (and runs the whole command): the password of
  // a --redis URL leaves argv, and /proc/PID/cmdline, first.
  const ArgvCopy args(argc, argv);
  scrub_password_in_argv(argc, argv);
  std::ios::sync_with_stdio(false);
  keep_freed_memory(k_tool_heap_keep);  // (util/heap.hpp: a restore's writes are not faulted in anew)
  _install_signals();

  CLI::App app{"redisfs-snap: snapshot, dump, restore, diff, roll back, list and delete redisfs filesystems", "redisfs-snap"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  app.set_version_flag("--version", "redisfs-snap " REDISFS_VERSION);
  ToolContext ctx;
  for (const EndpointTextOption& o : endpoint_text_options()) {
    app.add_option(o.name, ctx.opts.endpoint.*o.field, o.help)->type_name(o.type_name);
  }
  app.add_flag("--tls", ctx.opts.endpoint.tls, k_tls_option_help);
  app.add_option("--timeout", ctx.opts.endpoint.timeout_s, k_timeout_option_help)->type_name("SECONDS");
  app.add_option("--data-dir", ctx.opts.endpoint.data_dir, "data directory of the embedded store")->type_name("DIR");
  app.add_flag("-q,--quiet", ctx.opts.quiet, "no progress and no summary on stderr");
  app.add_flag("--allow-evicting-server", ctx.opts.allow_evicting_server,
               "copy or restore although the server's maxmemory-policy can evict keys (and lose file data)");
  // Every command line error is one line naming the program and where to
  // look (CLI11's own wording lacks the name).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("redisfs-snap: error: ") + e.what() + " (see redisfs-snap --help)\n";
  });

  add_copy_command(app, ctx);
  add_dump_command(app, ctx);
  add_restore_command(app, ctx);
  add_list_command(app, ctx);
  add_delete_command(app, ctx);
  add_fsck_command(app, ctx);
  add_du_command(app, ctx);
  add_diff_command(app, ctx);
  add_rollback_command(app, ctx);
  add_verify_command(app, ctx);

  if (std::string empty = args.empty_argument(); !empty.empty()) {
    std::fprintf(stderr, "redisfs-snap: error: %s (see redisfs-snap --help)\n", empty.c_str());
    return 2;
  }
  int status = 0;
  try {
    app.parse(args.argc(), args.argv());
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0.
    bool no_command = dynamic_cast<const CLI::RequiredError*>(&e) != nullptr ||
                      dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr;
    if (no_command && app.get_subcommands().empty()) {
      // No command given, or a word that is none: say which.
      std::vector<std::string> extra = app.remaining();
      std::string names;
      for (const CLI::App* sub : app.get_subcommands({})) {
        names += (names.empty() ? "" : ", ") + sub->get_name();
      }
      std::string what = extra.empty()                ? std::string("no command given")
                         : extra.front().starts_with("-") ? "unknown option '" + extra.front() + "'"
                                                          : "unknown command '" + extra.front() + "'";
      std::fprintf(stderr, "redisfs-snap: error: %s (commands: %s; see redisfs-snap --help)\n", what.c_str(),
                   names.c_str());
      return 2;
    }
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const CommandFailed& f) {
    std::cout.flush();
    std::fprintf(stderr, "%sredisfs-snap: error: %s\n", summary_prefix(), f.message.c_str());
    status = f.exit_code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "redisfs-snap: error: %s\n", e.what());
    status = 1;
  }
  ctx.close();
  return status;
}
