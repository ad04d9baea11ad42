// redisfs: mount a filesystem stored in Redis. This file only reads the
// command line; daemon.cpp does the rest.
#include <fuse_lowlevel.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// g++ 12 sees a "potential null pointer dereference" inside CLI11's inlined
// string code (a false positive in a system header).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include "daemon.hpp"
#include "redis/endpoint.hpp"
#include "snap/snapshot.hpp"
#include "store/keys.hpp"
#include "util/heap.hpp"
#include "version.hpp"

// Exit status for a command line we cannot use (see EXIT STATUS in redisfs(1)).
static constexpr int k_usage_error = 2;

// What the command line gives, before it is checked and folded into the
// DaemonConfig. The options are bound to its fields: it stays where it is
// while the parser lives.
struct CommandLine {
  redisfs::DaemonConfig cfg;
  std::string source;  // SOURCE: the prefix, as mount(8) and fstab give it
  std::string prefix;  // --prefix
  CLI::Option* prefix_option = nullptr;
  std::string block_size;
  std::string log_level;
  std::vector<std::string> mount_options;
  bool no_default_permissions = false;
};

// Declares the options of redisfs(1), each bound to its place in `cl`.
static void _declare_options(CLI::App& app, CommandLine& cl) {
  redisfs::DaemonConfig& cfg = cl.cfg;
  app.set_version_flag("--version", std::string("redisfs ") + REDISFS_VERSION + " (libfuse " + fuse_pkgversion() + ")");
  // `redisfs SKX /mnt/fs -o ...` is how mount.fuse3 (mount -t fuse.redisfs,
  // /etc/fstab) runs us: the "device" is the prefix.
  app.add_option("SOURCE", cl.source, "Prefix of the filesystem, as mount(8) and fstab give it (as --prefix)")
      ->type_name("PREFIX");
  // Not required() for CLI11, which fills positionals in order: one word
  // alone is the mount point (see _finish_config).
  app.add_option("MOUNTPOINT", cfg.mountpoint, "Directory to mount on (required)")->type_name("DIR");
  for (const redisfs::EndpointTextOption& o : redisfs::endpoint_text_options()) {
    app.add_option(o.name, cfg.endpoint.*o.field, o.help)->type_name(o.type_name);
  }
  app.add_flag("--tls", cfg.endpoint.tls, redisfs::k_tls_option_help);
  app.add_option("--timeout", cfg.endpoint.timeout_s, redisfs::k_timeout_option_help)->type_name("SECONDS");
  app.add_option("--sync-replicas", cfg.sync_replicas,
                 "fsync waits until N replicas have the change (default: the server's min-replicas-to-write)")
      ->check(CLI::Range(0, 100000).description(""))
      ->type_name("N");
  // REDISFS_PREFIX is read in _finish_config: a prefix on the command line
  // (--prefix, SOURCE or -o prefix=) wins over it.
  cl.prefix_option =
      app.add_option("--prefix", cl.prefix, "Key prefix of the filesystem (default SKX; env: REDISFS_PREFIX)")
          ->type_name("NAME");
  app.add_flag("--read-only", cfg.read_only, "Mount read-only: every change fails with EROFS");
  app.add_flag("--writable-snapshot", cfg.writable_snapshot, "Mount a read-only snapshot read-write anyway");
  app.add_flag("--write-through", cfg.write_through,
               "Send every write to Redis before write(2) returns (default: a new file's first writes and "
               "attribute changes go together at close)");
  app.add_flag("--writeback", cfg.writeback,
               "Be the only mount of the filesystem (refused while another is live, and refuses others): the "
               "kernel's writeback cache, long caching; unsynced writes are lost in a crash, as on a local disk");
  app.add_flag("--allow-evicting-server", cfg.allow_evicting_server,
               "Mount read-write although the server may evict keys (it can lose file data)");
  app.add_option("--block-size", cl.block_size,
                 "Block size of a new filesystem: 4K to 4M, a power of two (default 64K)")
      ->type_name("N");
  app.add_option("--data-dir", cfg.endpoint.data_dir, "Data directory of the embedded server")->type_name("DIR");
  app.add_flag("-f,--foreground", cfg.foreground, "Stay in the foreground");
  app.add_flag("-d,--debug", cfg.debug, "Debug output (FUSE requests and redisfs); implies -f");
  app.add_flag("-s,--single-threaded", cfg.single_threaded, "Serve requests from one thread");
  app.add_flag("--no-default-permissions", cl.no_default_permissions,
               "Do not let the kernel check permissions (default_permissions is on by default)");
  app.add_option("--log-file", cfg.log_file, "Append the log to FILE (default: stderr, then syslog once detached)")
      ->type_name("FILE");
  app.add_option("--log-level", cl.log_level, "Log lines from LEVEL up: error, warning, info (default), debug")
      ->type_name("LEVEL");
  app.add_option("-o", cl.mount_options, "Mount options, comma-separated (repeatable)")
      ->allow_extra_args(false)
      ->type_name("OPT[,OPT...]");
}

// Checks what was parsed and folds it into cl.cfg: the mount point (one
// word alone is it), the log level, the prefix from wherever it was given
// (the environment last), the block size and the -o lists.
static redisfs::Status _finish_config(CommandLine& cl) {
  redisfs::DaemonConfig& cfg = cl.cfg;
  if (cfg.mountpoint.empty()) {
    if (cl.source.empty()) {
      return redisfs::make_error(EINVAL, "MOUNTPOINT is required (redisfs --help lists the options)");
    }
    cfg.mountpoint = std::move(cl.source);
    cl.source.clear();
  }
  if (!cl.log_level.empty()) {
    TRY_ASSIGN(cfg.log_level, redisfs::parse_log_level(cl.log_level));
  }
  if (cl.prefix_option->count() > 0) {  // an empty one too: validate_prefix says why it cannot be
    (void)redisfs::set_prefix(cfg, cl.prefix, "--prefix");
  }
  if (!cl.source.empty()) {
    TRY(redisfs::set_prefix(cfg, cl.source, "SOURCE"));
  }
  if (!cl.block_size.empty()) {
    TRY_ASSIGN(cfg.block_size, redisfs::parse_block_size(cl.block_size));
  }
  TRY(redisfs::apply_mount_options(cl.mount_options, cfg));
  if (const char* env = std::getenv("REDISFS_PREFIX"); cfg.prefix_from.empty() && env != nullptr && *env != '\0') {
    cfg.prefix = env;
  }
  TRY(redisfs::normalize_prefix(cfg.prefix));
  if (cfg.read_only && cfg.writable_snapshot) {
    return redisfs::make_error(EINVAL,
                               "--writable-snapshot asks for a read-write mount, --read-only (or -o ro) "
                               "for a read-only one: give one of them");
  }
  if (!cfg.read_only) {
    // (a tool's staging or a replaced filesystem: a read-only mount may
    // look at one, none may write there or make a filesystem under it)
    TRY(redisfs::refuse_temp_name(cfg.prefix, "mounted read-write (mount it --read-only to look at it)"));
  }
  if (cl.no_default_permissions) {
    cfg.default_permissions = false;
  }
  return {};
}

int main(int argc, char** argv) {
  // hiredis writes with write(2): a server closing the socket must be an
  // error on that connection, not the death of the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  // Freed memory stays for the next reply (util/heap.hpp): a read's blocks
  // are not faulted in anew, page by page.
  redisfs::keep_freed_memory(redisfs::k_daemon_heap_keep);
  // The parser reads a copy: the password of a --redis URL leaves argv
  // (and /proc/PID/cmdline) before anything slow happens.
  const redisfs::ArgvCopy args(argc, argv);
  redisfs::scrub_password_in_argv(argc, argv);

  CLI::App app{"redisfs: mount a POSIX filesystem stored in Redis (FUSE)", "redisfs"};
  CommandLine cl;
  _declare_options(app, cl);
  if (std::string empty = args.empty_argument(); !empty.empty()) {
    std::fprintf(stderr, "redisfs: %s (redisfs --help lists the options)\n", empty.c_str());
    return k_usage_error;
  }
  try {
    app.parse(args.argc(), args.argv());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      return app.exit(e);  // --help, --version
    }
    std::fprintf(stderr, "redisfs: %s (redisfs --help lists the options)\n", e.what());
    return k_usage_error;
  }
  if (auto st = _finish_config(cl); !st) {
    std::fprintf(stderr, "redisfs: %s\n", st.error().message.c_str());
    return k_usage_error;
  }
  if (auto st = redisfs::check_fuse_options(cl.cfg); !st) {
    std::fprintf(stderr, "redisfs: %s\n", st.error().message.c_str());
    return k_usage_error;
  }
  return redisfs::run_daemon(std::move(cl.cfg));
}
