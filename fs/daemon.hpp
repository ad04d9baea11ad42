// The life of one mount, from parsed options to a clean exit: connect,
// check the server, open the Store, mount, daemonize, serve, unmount.
// main.cpp only turns the command line into a DaemonConfig.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/endpoint.hpp"
#include "log.hpp"
#include "util/result.hpp"

namespace redisfs {

struct DaemonConfig {
  std::string mountpoint;
  EndpointOptions endpoint;  // --redis, --sentinel, --password-file, TLS, --timeout, --data-dir
  std::string prefix = "SKX";
  // Where the prefix came from ("--prefix", "-o prefix", "SOURCE"), for
  // the error when two places name different ones; empty: the default.
  std::string prefix_from;
  bool read_only = false;
  bool writable_snapshot = false;
  bool allow_evicting_server = false;
  std::optional<std::uint32_t> block_size;
  bool foreground = false;
  bool debug = false;
  bool single_threaded = false;
  // -o max_idle_threads=N: FUSE threads kept waiting for requests (1 to
  // 1000); more start under load and leave again down to this many.
  unsigned max_idle_threads = 10;
  bool default_permissions = true;
  // Mount on a directory that is not empty (its entries stay hidden until
  // the unmount); without it such a mount point is refused.
  bool nonempty = false;
  // -o snapdir=visible: readdir of the root lists .snapshots (snapdir.hpp);
  // hidden by default (a lookup of it works either way).
  bool snapdir_visible = false;
  std::optional<std::string> log_file;  // --log-file, -o log_file=
  std::optional<LogLevel> log_level;    // --log-level, -o log_level=; default info (debug under -d)
  bool noatime = false;
  // Every write reaches Redis before write(2) returns: no gathering of a
  // new file's writes until close (StoreOptions::gather_file_max).
  bool write_through = false;
  // -o writeback: the one mount of the filesystem (the server refuses it
  // while another mount is live, and every other mount while it is): the
  // kernel's writeback cache, file data kept across opens, long attribute
  // and entry timeouts. What a crash loses: what was not yet sent (fsync'ed
  // data, and files closed before a syncfs, are sent), as on a local disk.
  bool writeback = false;
  // Unset: 1 s, or an hour on a read-only mount of a snapshot (which
  // cannot change under it).
  std::optional<double> attr_timeout;
  std::optional<double> entry_timeout;
  std::optional<std::string> fsname;
  std::optional<std::string> subtype;
  std::vector<std::string> fuse_options;  // -o options passed on to the mount
  // --sync-replicas N: fsync/fdatasync/syncfs wait for N replicas (WAIT).
  // Unset: the server's min-replicas-to-write, or 0.
  std::optional<int> sync_replicas;
};

// Takes the -o lists apart: attr_timeout=, entry_timeout=, noatime, ro,
// rw, default_permissions, fsname= and subtype= are ours (noatime and ro
// are passed on too), and so are max_idle_threads=, the server options timeout=,
// sync_replicas=, tls and tls_ca_cert=, tls_ca_cert_dir=, tls_cert=,
// tls_key=, tls_server_name=, redis=, password_file=, data_dir=, the
// prefix=, nonempty, write_through, writeback, allow_evicting_server,
// writable_snapshot, snapdir=, log_file= and log_level= (what --timeout, --redis,
// ... set: an fstab line or mount(8) can only give -o options). What only
// mount(8), fstab or systemd read (defaults, auto, noauto, nofail,
// _netdev, user, users, nouser, owner, group, comment=, x-*) is dropped;
// every other option goes to FUSE as is.
Status apply_mount_options(const std::vector<std::string>& options, DaemonConfig& cfg);

// Sets the prefix, named by `from` ("--prefix", "-o prefix", "SOURCE");
// a second place naming another prefix is an error.
Status set_prefix(DaemonConfig& cfg, std::string_view prefix, std::string_view from);

// "65536", "64K", "64KiB", "1M": a power of two from 4 KiB to 4 MiB.
Result<std::uint32_t> parse_block_size(std::string_view text);

// EINVAL naming what libfuse refuses in the FUSE options `cfg` makes
// (an unknown -o option, a malformed value): checked before the daemon
// connects to anything, so that it is a command line error.
Status check_fuse_options(const DaemonConfig& cfg);

// Runs the mount; returns the exit status (0 after a clean unmount).
int run_daemon(DaemonConfig cfg);

}  // namespace redisfs
