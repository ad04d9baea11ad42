// The mount's life (see daemon.hpp).
//
// ORDER. Everything that can fail for a reason the user must read happens
// before fuse_daemonize(): connecting, the server guards, opening the Store,
// mounting. Until then messages go to stderr and the exit status says what
// happened; the mount exists before the parent process exits, so a script
// can use it as soon as `redisfs` returns, which it does after one line on
// where the log goes. After daemonizing, the log is the --log-file or
// syslog (log.hpp).
//
// EXIT. The FUSE loop ends on unmount (fusermount3 -u, umount) or on
// SIGTERM/SIGINT/SIGHUP (libfuse's handlers). Then: unmount if still
// mounted, purge this mount's orphans (the kernel does not FORGET every
// inode at unmount), stop the heartbeat, end the Redis session, and last,
// once no connection of ours is left, stop the embedded server if nobody
// else uses it.
#include "daemon.hpp"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "killpriv.hpp"
#include "log.hpp"
#include "op_stats.hpp"
#include "ops.hpp"
#include "redis/endpoint.hpp"
#include "redis/outage.hpp"
#include "redis/server_check.hpp"
#include "sd_notify.hpp"
#include "session.hpp"
#include "snapdir.hpp"
#include "store/store.hpp"
#include "util/text.hpp"

namespace redisfs {

static constexpr auto k_heartbeat_interval = std::chrono::seconds(10);
static constexpr auto k_first_delay = std::chrono::milliseconds(200);
// How often the watcher checks that the filesystem is still there.
static constexpr auto k_watch_interval = std::chrono::seconds(2);
// SCAN pages (of 1000 keys) the sweep of dead mounts' open counts reads
// per heartbeat.
static constexpr std::size_t k_sweep_scan_calls = 16;
static constexpr double k_default_timeout = 1.0;
// Exit status for a command line that cannot be used (redisfs(1)).
static constexpr int k_usage_error = 2;
static constexpr double k_snapshot_timeout = 3600.0;
// A writeback mount is the only one: nothing changes the tree under it.
static constexpr double k_writeback_timeout = 3600.0;

// The longest attr_timeout/entry_timeout accepted: a year, far past any use.
static constexpr double k_max_cache_timeout = 365.0 * 24 * 3600;

static Result<double> _parse_timeout(std::string_view name, std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // NaN and infinity parse too: refused (the kernel gets whole seconds and
  // nanoseconds), as is anything past k_max_cache_timeout.
  if (ec != std::errc() || end != text.data() + text.size() || !(value >= 0 && value <= k_max_cache_timeout)) {
    return make_error(EINVAL, "-o " + std::string(name) + ": not a number of seconds: '" + std::string(text) + "'");
  }
  return value;
}

static Result<int> _parse_replicas(std::string_view text) {
  std::uint64_t value = 0;
  if (!parse_u64(text, value) || value > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
    return make_error(EINVAL, "-o sync_replicas: not a number of replicas (0 or more): '" + std::string(text) + "'");
  }
  return static_cast<int>(value);
}

static Result<unsigned> _parse_idle_threads(std::string_view text) {
  std::uint64_t value = 0;
  if (!parse_u64(text, value) || value < 1 || value > 1000) {
    return make_error(EINVAL, "-o max_idle_threads: not a number of threads from 1 to 1000: '" + std::string(text) + "'");
  }
  return static_cast<unsigned>(value);
}

// The -o spelling of a TLS file or name option (tls_cert=...): its field.
static std::optional<std::string> EndpointOptions::*_tls_mount_option(std::string_view key) {
  if (key == "tls_ca_cert") {
    return &EndpointOptions::tls_ca_cert;
  }
  if (key == "tls_ca_cert_dir") {
    return &EndpointOptions::tls_ca_cert_dir;
  }
  if (key == "tls_cert") {
    return &EndpointOptions::tls_cert;
  }
  if (key == "tls_key") {
    return &EndpointOptions::tls_key;
  }
  if (key == "tls_server_name") {
    return &EndpointOptions::tls_server_name;
  }
  return nullptr;
}

// The -o spelling of --redis and --password-file (what an fstab line
// needs to name the server).
static std::optional<std::string> EndpointOptions::*_endpoint_mount_option(std::string_view key) {
  if (key == "redis") {
    return &EndpointOptions::url;
  }
  if (key == "password_file") {
    return &EndpointOptions::password_file;
  }
  return nullptr;
}

static Status _set_once(std::optional<std::string>& field, std::string_view key, std::string_view value) {
  if (field && *field != value) {
    return make_error(EINVAL, "-o " + std::string(key) + "= and its command-line option name different values");
  }
  field = std::string(value);
  return {};
}

// Options that mount(8), /etc/fstab and systemd read and the filesystem
// does not (mount.fuse3 drops some of them, not all: x-* and defaults
// reach us from `mount -a`).
static bool _is_mount_table_option(std::string_view opt) {
  for (std::string_view name : {"defaults", "auto", "noauto", "nofail", "_netdev", "user", "users", "nouser",
                                "owner", "group"}) {
    if (opt == name) {
      return true;
    }
  }
  return opt.starts_with("x-") || opt.starts_with("comment=");
}

Status set_prefix(DaemonConfig& cfg, std::string_view prefix, std::string_view from) {
  if (!cfg.prefix_from.empty() && cfg.prefix != prefix) {
    return make_error(EINVAL, std::string(from) + " names prefix '" + std::string(prefix) + "' but " +
                                  cfg.prefix_from + " named '" + cfg.prefix + "'");
  }
  cfg.prefix = std::string(prefix);
  cfg.prefix_from = std::string(from);
  return {};
}

Status apply_mount_options(const std::vector<std::string>& options, DaemonConfig& cfg) {
  std::optional<bool> ro;  // the last of -o ro and -o rw, as mount(8) reads them
  for (const std::string& list : options) {
    std::string_view rest = list;
    while (!rest.empty()) {
      std::size_t comma = rest.find(',');
      std::string_view opt = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (opt.empty()) {
        continue;
      }
      std::size_t eq = opt.find('=');
      std::string_view key = opt.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? std::string_view() : opt.substr(eq + 1);
      if (key == "attr_timeout") {
        TRY_ASSIGN(cfg.attr_timeout, _parse_timeout(key, value));
      } else if (key == "entry_timeout") {
        TRY_ASSIGN(cfg.entry_timeout, _parse_timeout(key, value));
      } else if (key == "timeout" && eq != std::string_view::npos) {
        TRY_ASSIGN(cfg.endpoint.timeout_s, _parse_timeout(key, value));  // its range: resolve_endpoint
      } else if (key == "sync_replicas" && eq != std::string_view::npos) {
        TRY_ASSIGN(cfg.sync_replicas, _parse_replicas(value));
      } else if (key == "max_idle_threads" && eq != std::string_view::npos) {
        TRY_ASSIGN(cfg.max_idle_threads, _parse_idle_threads(value));
      } else if (opt == "tls") {
        cfg.endpoint.tls = true;
      } else if (auto field = _tls_mount_option(key); field && eq != std::string_view::npos) {
        cfg.endpoint.*field = std::string(value);
      } else if (opt == "noatime") {
        cfg.noatime = true;
      } else if (opt == "write_through") {
        cfg.write_through = true;
      } else if (opt == "writeback") {
        cfg.writeback = true;
      } else if (opt == "ro" || opt == "rw") {
        ro = opt == "ro";
      } else if (opt == "default_permissions") {
        cfg.default_permissions = true;
      } else if (key == "fsname" && eq != std::string_view::npos) {
        cfg.fsname = std::string(value);
      } else if (key == "subtype" && eq != std::string_view::npos) {
        cfg.subtype = std::string(value);
      } else if (key == "prefix" && eq != std::string_view::npos) {
        TRY(set_prefix(cfg, value, "-o prefix"));
      } else if (auto server = _endpoint_mount_option(key); server && eq != std::string_view::npos) {
        TRY(_set_once(cfg.endpoint.*server, key, value));
      } else if (key == "data_dir" && eq != std::string_view::npos) {
        cfg.endpoint.data_dir = std::string(value);
      } else if (key == "log_file" && eq != std::string_view::npos) {
        cfg.log_file = std::string(value);
      } else if (key == "log_level" && eq != std::string_view::npos) {
        TRY_ASSIGN(cfg.log_level, parse_log_level(value));
      } else if (opt == "nonempty") {
        cfg.nonempty = true;
      } else if (opt == "allow_evicting_server") {
        cfg.allow_evicting_server = true;
      } else if (opt == "writable_snapshot") {
        cfg.writable_snapshot = true;
      } else if (key == "snapdir" && eq != std::string_view::npos) {
        if (value != "hidden" && value != "visible") {
          return make_error(EINVAL, "-o snapdir: 'hidden' or 'visible', not '" + std::string(value) + "'");
        }
        cfg.snapdir_visible = value == "visible";
      } else if (_is_mount_table_option(opt)) {
        continue;  // for mount(8), fstab or systemd, not for the filesystem
      } else {
        cfg.fuse_options.emplace_back(opt);
      }
    }
  }
  if (ro && !*ro && cfg.read_only) {
    return make_error(EINVAL, "--read-only asks for a read-only mount, -o rw for a read-write one: give one of them");
  }
  cfg.read_only = cfg.read_only || ro.value_or(false);
  return {};
}

Result<std::uint32_t> parse_block_size(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::uint64_t scale = 0;
  if (unit.empty()) {
    scale = 1;
  } else if (unit == "K" || unit == "k" || unit == "KiB") {
    scale = 1024;
  } else if (unit == "M" || unit == "m" || unit == "MiB") {
    scale = 1024 * 1024;
  }
  std::string bad = "--block-size: '" + std::string(text) + "' is not a power of two from 4K to 4M";
  if (ec != std::errc() || scale == 0 || value == 0 || value > k_max_block_size) {
    return make_error(EINVAL, bad);
  }
  value *= scale;
  if (!check_block_size(value).ok()) {
    return make_error(EINVAL, bad);
  }
  return static_cast<std::uint32_t>(value);
}

static std::string _hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof name - 1) != 0) {
    return "unknown";
  }
  return name;
}

// Builds libfuse's argv: program name, -d, and one -o list.
static std::vector<std::string> _fuse_argv(const DaemonConfig& cfg) {
  std::vector<std::string> argv{"redisfs"};
  if (cfg.debug) {
    argv.emplace_back("-d");
  }
  std::string opts = "fsname=" + cfg.fsname.value_or("redisfs:" + cfg.prefix);
  opts += ",subtype=" + cfg.subtype.value_or("redisfs");
  if (cfg.default_permissions) {
    opts += ",default_permissions";
  }
  opts += cfg.read_only ? ",ro" : ",rw";
  if (cfg.noatime) {
    opts += ",noatime";
  }
  for (const std::string& o : cfg.fuse_options) {
    opts += "," + o;
  }
  argv.emplace_back("-o");
  argv.push_back(opts);
  return argv;
}

// syncfs(2) of the filesystem mounted at `root`.
static Status _syncfs(const std::string& root) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno, "cannot open the mount point " + root + ": " + std::strerror(errno));
  }
  const int rc = ::syncfs(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0) {
    return make_error(e, "syncfs of " + root + ": " + std::strerror(e));
  }
  return {};
}

// The mount's watcher thread: every 2 s it checks that the filesystem
// under the mount is still the one mounted (Session::check_gone), and that
// the snapshots browsed under .snapshots still are (SnapDir::watch), and
// answers a change of server (watch_server); every 10 s it refreshes the
// session key and clears a piece of what dead mounts left
// (Store::sweep_dead_mounts). Once the filesystem is gone (found here or by
// an op, which wakes the thread) it has the kernel drop its caches of the
// mount, ends the session, and then only waits to be stopped.
class Heartbeat {
 public:
  // `first` runs once, a moment after the loop started (after INIT).
  // `writeback_root`: a writeback mount's mount point (answer_sync), else "".
  Heartbeat(Store& store, Session& session, fuse_session* se, std::function<void()> first, std::string writeback_root)
      : m_store(store),
        m_session(session),
        m_se(se),
        m_first(std::move(first)),
        m_writeback_root(std::move(writeback_root)),
        m_thread([this] { run(); }) {
    m_session.on_gone([this] {
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_wake = true;
      }
      m_cv.notify_all();
    });
  }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;
  ~Heartbeat() { stop(); }

  void stop() {
    m_session.on_gone({});
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_stop = true;
    }
    m_cv.notify_all();
    if (m_thread.joinable()) {
      m_thread.join();
    }
    if (m_syncer.joinable()) {
      m_syncer.join();
    }
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(m_mutex);
    if (!m_cv.wait_for(lock, k_first_delay, [this] { return m_stop; })) {
      lock.unlock();
      if (m_first) {
        m_first();
      }
      if (!m_session.check_gone(true)) {
        sweep();
      }
      lock.lock();
    }
    auto next_beat = std::chrono::steady_clock::now() + k_heartbeat_interval;
    bool invalidated = false;
    while (!m_stop) {
      m_cv.wait_for(lock, k_watch_interval, [this] { return m_stop || m_wake; });
      m_wake = false;
      if (m_stop) {
        break;
      }
      lock.unlock();
      if (!m_session.gone()) {
        m_session.check_gone(true);
      }
      if (!m_session.gone()) {
        watch_server();
      }
      if (!m_session.gone() && !m_writeback_root.empty()) {
        answer_sync();
        send_dir_changes();
      }
      if (!m_session.gone() && m_session.snapdir() != nullptr) {
        m_session.snapdir()->watch(m_se);  // the snapshots' views: gone ones, idle ones
      }
      if (m_session.gone()) {
        if (!invalidated) {
          invalidated = true;
          m_session.invalidate_kernel(m_se);
          (void)m_store.end_session();  // its key would be debris under the prefix
        }
      } else if (std::chrono::steady_clock::now() >= next_beat) {
        next_beat = std::chrono::steady_clock::now() + k_heartbeat_interval;
        beat();
      }
      lock.lock();
    }
  }

  // Logs the first failure of a run of them, and the recovery.
  void beat() {
    Status st = m_store.heartbeat();
    if (!st && m_store.session_taken()) {
      // (two mounts that exclude each other must not both serve: this one
      // lost the race to register again, so it stops)
      m_session.mark_gone("heartbeat: " + st.error().message);
      m_failing = true;
      return;
    }
    if (!st && !m_failing) {
      log_warning("heartbeat: cannot refresh the mount session: " + st.error().message);
    } else if (st && m_failing) {
      log_info("heartbeat: the mount session is refreshed again");
    }
    m_failing = !st;
    if (st) {
      sweep();
    }
  }

  // A change of server (a failover, a restart from an older AOF) may have
  // lost what the old one acknowledged: the session key is refreshed at
  // once, and the opens this mount holds are counted again; tried again at
  // the next check until both are done.
  void watch_server() {
    const std::uint64_t changes = m_store.server_changes();
    if (changes == m_server_changes) {
      return;
    }
    beat();
    if (!m_failing && m_session.hold_opens_again()) {
      m_server_changes = changes;
    }
  }

  // A writeback mount's answer to a snapshot's request (Store::sync_asked,
  // made by copy, dump and diff): the kernel writes back the mount's dirty
  // pages (syncfs of the mount point, served by the FUSE threads, and the
  // open files' pages, waited for: Session::write_back_open_files), what
  // this mount gathers is sent, and then it says so; the snapshot's instant
  // comes after. On a thread of its own: writing back gigabytes takes
  // seconds, and the heartbeat must go on meanwhile (the session, and the
  // writeback hold with it, lapse 30 s after its last refresh). A failure
  // is logged and the request is tried again at the next check, until the
  // snapshot stops waiting.
  void answer_sync() {
    if (m_syncing.load()) {
      return;
    }
    auto asked = m_store.sync_asked();
    if (!asked || *asked == 0) {
      return;
    }
    if (m_syncer.joinable()) {
      m_syncer.join();  // the last one, done
    }
    m_syncing = true;
    m_syncer = std::thread([this, t = *asked] {
      send_for_sync(t);
      m_syncing = false;
    });
  }

  void send_for_sync(std::int64_t asked) {
    Status st = _syncfs(m_writeback_root);
    if (st) {
      m_session.write_back_open_files(m_se);  // (syncfs does not wait for them)
    }
    if (m_session.gone()) {
      return;  // (it stopped while the pages went: what waits must not reach the filesystem another mount holds)
    }
    if (st) {
      st = m_store.send_all_gathered();
    }
    if (st) {
      st = m_store.sync_answered(asked);
    }
    if (!st) {
      log_warning("cannot send what this writeback mount holds, which a snapshot asked for: " + st.error().message);
      return;
    }
    log_info("sent what this writeback mount held, which a snapshot asked for");
  }

  // A writeback mount's directory attribute changes wait at most until
  // this watch (Store::send_dir_changes). A refusal is logged once (the
  // setattr that made the change has returned), and kept for fsyncdir.
  void send_dir_changes() {
    if (Status st = m_store.send_dir_changes(Store::DirRefusal::once); !st) {
      log_error("writeback: " + st.error().message);
    }
  }

  // What crashed mounts left behind (their open counts, their orphans):
  // every live mount clears it, a bounded piece with each heartbeat (the
  // open counts' SCAN only after a crash was seen: Store::sweep_dead_mounts).
  void sweep() {
    auto done = m_store.sweep_dead_mounts(k_sweep_scan_calls);
    if (!done) {
      if (!m_sweep_failing) {
        log_warning("cannot clear what dead mounts left: " + done.error().message);
      }
      m_sweep_failing = true;
      return;
    }
    m_sweep_failing = false;
    if (done->orphans > 0 || done->opens > 0 || done->registrations > 0) {
      log_info("cleared what dead mounts left: " + done->said());
    }
  }

  Store& m_store;
  Session& m_session;
  fuse_session* m_se;
  std::function<void()> m_first;
  std::string m_writeback_root;
  std::thread m_syncer;  // answer_sync's
  std::atomic<bool> m_syncing{false};
  bool m_failing = false;
  bool m_sweep_failing = false;
  std::uint64_t m_server_changes = m_store.server_changes();  // those watch_server has answered
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stop = false;
  bool m_wake = false;
  std::thread m_thread;
};

// Mount points in /proc/self/mountinfo, as (mount point, device, fs type)
// rows: the mount point is unescaped (mountinfo writes space, tab, newline
// and backslash as \\ooo).
struct MountRow {
  std::string point;
  std::string device;
  std::string fstype;
  std::string source;
};

static std::vector<MountRow> _mount_rows() {
  std::vector<MountRow> rows;
  std::ifstream info("/proc/self/mountinfo");
  std::string line;
  while (std::getline(info, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, word;
    if (!(fields >> id >> parent >> dev >> root >> point)) {
      continue;
    }
    MountRow row;
    for (std::size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        int v = 0;
        std::from_chars(point.data() + i + 1, point.data() + i + 4, v, 8);
        row.point.push_back(static_cast<char>(v));
        i += 3;
      } else {
        row.point.push_back(point[i]);
      }
    }
    row.device = dev;
    while (fields >> word && word != "-") {
    }
    fields >> row.fstype >> row.source;
    rows.push_back(std::move(row));
  }
  return rows;
}

// The kernel offers FUSE mounts 128 KiB of readahead, a filesystem can
// only lower it at INIT, and the INIT reply sets it; sequential reads run about a third faster
// with 1 MiB (one request per 1 MiB, our largest). The knob is the mount's
// backing device in sysfs, found through /proc/self/mountinfo (a stat of
// the mount point would wait for the loop that is not running yet; so is
// its canonical path, taken before mounting). Best effort: only root may
// write it.
static void _raise_readahead(const std::string& mountpoint, const std::string& target) {
  std::string device;
  for (const MountRow& row : _mount_rows()) {
    if (row.point == target) {
      device = row.device;  // the last match is the newest mount
    }
  }
  if (device.empty()) {
    log_debug("readahead: " + mountpoint + " not found in /proc/self/mountinfo");
    return;
  }
  std::ofstream knob("/sys/class/bdi/" + device + "/read_ahead_kb");
  knob << 1024 << std::endl;
  if (!knob) {
    log_debug("readahead: cannot raise it for " + device + " (not root?); the kernel's 128 KiB stays");
  }
}

// What the mount's caches hold against their bounds: the memory a
// long-lived mount keeps (the statistics' last line).
static std::string _caches_line(Store& store) {
  const Store::CacheSizes c = store.cache_sizes();
  auto of = [](std::size_t n, std::size_t max) { return std::to_string(n) + " of " + std::to_string(max); };
  return "stats: caches: attributes of " + of(c.attrs, c.attrs_max) + " inodes, names of listed directories " +
         of(c.names, c.names_max) + ", names removed " + of(c.removed, c.removed_max);
}

// Logs the request statistics (op_stats.hpp) on each SIGUSR1, from a
// thread of its own: SIGUSR1 is blocked in every thread (the mask is set
// before any thread starts) and taken here with sigtimedwait.
class StatsOnSignal {
 public:
  StatsOnSignal(std::chrono::steady_clock::time_point since, Store& store)
      : m_since(since), m_store(store), m_thread([this] { run(); }) {}
  StatsOnSignal(const StatsOnSignal&) = delete;
  StatsOnSignal& operator=(const StatsOnSignal&) = delete;
  ~StatsOnSignal() {
    m_stop = true;
    pthread_kill(m_thread.native_handle(), SIGUSR1);  // wakes sigtimedwait
    m_thread.join();
  }

  // Blocks SIGUSR1 in the calling thread and in every thread it starts
  // later. Call before the first thread exists.
  static void block() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

 private:
  void run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    const timespec tick{1, 0};
    while (!m_stop) {
      if (sigtimedwait(&set, nullptr, &tick) == SIGUSR1 && !m_stop) {
        for (const std::string& line : op_stats().report(m_since)) {
          log_info(line);
        }
        log_info(_caches_line(m_store));
      }
    }
  }

  std::chrono::steady_clock::time_point m_since;
  Store& m_store;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

// What the kernel is told to cache, and for how long: a read-only mount of
// a snapshot (which no mount changes while it lives: Store::frozen) and a
// writeback mount (the only one) keep attributes and entries longer.
static MountOptions _mount_options(const DaemonConfig& cfg, const Store& store) {
  MountOptions mount_opts;
  bool frozen = store.frozen();
  double default_timeout = frozen ? k_snapshot_timeout : cfg.writeback ? k_writeback_timeout : k_default_timeout;
  mount_opts.attr_timeout = cfg.attr_timeout.value_or(default_timeout);
  mount_opts.entry_timeout = cfg.entry_timeout.value_or(default_timeout);
  mount_opts.read_only = cfg.read_only;
  mount_opts.frozen = frozen;
  mount_opts.writeback = cfg.writeback;
  char line[128];
  std::snprintf(line, sizeof line, "the kernel caches attributes for %g s and names for %g s", mount_opts.attr_timeout,
                mount_opts.entry_timeout);
  log_debug(line);
  return mount_opts;
}

namespace {
std::string g_fuse_refusal;  // (check_fuse_options' capture: one thread, before any other)
void _capture_fuse_log(fuse_log_level level, const char* fmt, va_list ap) {
  if (level > FUSE_LOG_ERR) {
    return;
  }
  char line[512];
  std::vsnprintf(line, sizeof line, fmt, ap);
  g_fuse_refusal += line;
}
}  // namespace

// A FUSE session over the options `cfg` makes (_fuse_argv), serving `ops`
// for `userdata`; nullptr if libfuse refuses them (and says why in its log).
static fuse_session* _fuse_session_of(const DaemonConfig& cfg, const fuse_lowlevel_ops& ops, void* userdata) {
  std::vector<std::string> argv_text = _fuse_argv(cfg);
  std::vector<char*> argv;
  for (std::string& a : argv_text) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv_text.size()), argv.data());
  log_debug("fuse options: " + argv_text.back());
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, userdata);  // (it copies ops)
  fuse_opt_free_args(&args);
  return se;
}

Status check_fuse_options(const DaemonConfig& cfg) {
  g_fuse_refusal.clear();
  fuse_set_log_func(_capture_fuse_log);
  fuse_session* se = _fuse_session_of(cfg, fuse_lowlevel_ops{}, nullptr);
  fuse_set_log_func(nullptr);  // (libfuse's own, until log_init)
  if (se != nullptr) {
    fuse_session_destroy(se);
    return {};
  }
  std::string why = g_fuse_refusal;
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
    why.pop_back();
  }
  if (why.starts_with("fuse: ")) {
    why.erase(0, 6);
  }
  std::replace(why.begin(), why.end(), '\n', ' ');
  return make_error(EINVAL, "-o: " + (why.empty() ? std::string("libfuse refuses the options") : why));
}

// A FUSE session serving `session`, its signal handlers installed; nullptr
// (logged, nothing left behind) if either fails.
static fuse_session* _new_fuse_session(const DaemonConfig& cfg, Session& session) {
  fuse_session* se = _fuse_session_of(cfg, make_ops(), &session);
  if (se == nullptr) {
    log_error("cannot start the FUSE session (see the message above)");
    return nullptr;
  }
  session.set_fuse(se);
  if (fuse_set_signal_handlers(se) != 0) {
    log_error("cannot install signal handlers");
    fuse_session_destroy(se);
    return nullptr;
  }
  return se;
}

// Mounts on the mount point and, without -f, leaves the terminal (after a
// last line on it saying where the log goes). False (logged) if either
// fails, with nothing left mounted.
static bool _mount_and_detach(const DaemonConfig& cfg, fuse_session* se, const Store& store) {
  if (fuse_session_mount(se, cfg.mountpoint.c_str()) != 0) {
    log_error("cannot mount on " + cfg.mountpoint);
    return false;
  }
  (void)killpriv::install(se);  // before the INIT request is read; without it, as before
  StatsOnSignal::block();  // no thread yet: every thread started from here on inherits it
  if (!cfg.foreground) {
    std::fprintf(stderr, "redisfs: mounted %s on %s; log: %s\n", store.keys().prefix().c_str(),
                 cfg.mountpoint.c_str(), log_destination().c_str());
    if (fuse_daemonize(0) != 0) {
      log_error("cannot daemonize");
      fuse_session_unmount(se);
      return false;
    }
    log_detached();
  }
  return true;
}

// Once mounted (and forked): the mount session names this process, the
// log and the service manager hear that the mount is up.
static void _announce_mounted(const DaemonConfig& cfg, Store& store) {
  store.set_session_info(_hostname() + " pid " + std::to_string(getpid()) + " " + cfg.mountpoint);
  if (Status st = store.heartbeat(); !st) {
    log_debug("cannot refresh the mount session: " + st.error().message);
  }
  log_info("mounted " + store.keys().prefix() + " on " + cfg.mountpoint +
           (cfg.read_only   ? " (read-only)"
            : cfg.writeback ? " (writeback: the only mount)"
                            : ""));
  notify_ready();
}

// Runs the FUSE loop until the filesystem is unmounted: one thread, or a
// pool keeping at most -o max_idle_threads idle. Returns the loop's
// status (a negative errno if it failed).
static int _run_fuse_loop(const DaemonConfig& cfg, fuse_session* se) {
  if (cfg.single_threaded) {
    return fuse_session_loop(se);
  }
  fuse_loop_config* loop = fuse_loop_cfg_create();
  if (loop == nullptr) {
    return -ENOMEM;
  }
  fuse_loop_cfg_set_clone_fd(loop, 0);
  fuse_loop_cfg_set_idle_threads(loop, cfg.max_idle_threads);
  log_debug("serving with at most " + std::to_string(cfg.max_idle_threads) + " idle FUSE threads");
  int rc = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);
  return rc;
}

// Serves (with the heartbeat and the SIGUSR1 statistics beside the loop)
// until unmounted, then unmounts and settles what the mount still held:
// pending releases, opens it is unsure of, its orphans. Returns the loop's
// status.
static int _serve_until_unmounted(const DaemonConfig& cfg, Store& store, Session& session, fuse_session* se,
                                  const std::string& canonical) {
  const auto mounted_at = std::chrono::steady_clock::now();
  // The INIT reply sets the readahead, so raise it after INIT.
  Heartbeat heartbeat(
      store, session, se, [&cfg, &canonical] { _raise_readahead(cfg.mountpoint, canonical); },
      cfg.writeback ? (canonical.empty() ? cfg.mountpoint : canonical) : std::string());
  StatsOnSignal stats(mounted_at, store);
  int rc = _run_fuse_loop(cfg, se);
  notify_stopping();
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  log_debug("the kernel still held lookups of " + counted(session.known_inodes(), "inode", "inodes"));
  session.finish_releases();
  session.drop_unsure_opens();  // first: an orphan's last open may be one it drops
  session.purge_orphans();
  heartbeat.stop();
  for (const std::string& line : op_stats().report(mounted_at)) {
    log_debug(line);
  }
  log_debug(_caches_line(store));
  return rc;
}

// Mounts and serves until unmounted. Returns the exit status.
static int _mount_and_serve(const DaemonConfig& cfg, Pool& pool, Store& store) {
  Session session(store, _mount_options(cfg, store));
  SnapDir snapdir(pool, session, store.keys().prefix(),
                  cfg.snapdir_visible ? SnapdirMode::Visible : SnapdirMode::Hidden);
  session.set_snapdir(&snapdir);

  fuse_session* se = _new_fuse_session(cfg, session);
  if (se == nullptr) {
    return 1;
  }
  std::error_code ec;
  std::string canonical = std::filesystem::canonical(cfg.mountpoint, ec).string();  // before: no FUSE call
  if (!_mount_and_detach(cfg, se, store)) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return 1;
  }
  _announce_mounted(cfg, store);
  int rc = _serve_until_unmounted(cfg, store, session, se, canonical);
  if (Status st = store.end_session(); !st) {
    LogLevel level = cfg.read_only ? LogLevel::Debug : LogLevel::Warning;
    log_line(level, "cannot end the mount session: " + st.error().message);
  }
  fuse_session_destroy(se);
  if (rc < 0) {
    log_error("the FUSE loop failed: " + errno_text(-rc));
    return 1;
  }
  log_info("unmounted " + cfg.mountpoint);
  return 0;
}

// What the open of the filesystem found worth saying.
static void _log_opened(const DaemonConfig& cfg, Store& store) {
  if (!store.finished_install().empty()) {
    log_warning(store.finished_install());
  }
  if (const Status& st = store.scripts_preloaded(); !st) {
    log_info("scripts not loaded ahead (each is loaded at its first use): " + st.error().message);
  }
  if (store.sync_replicas() > 0 && !cfg.read_only) {
    log_info("fsync waits until " + counted(store.sync_replicas(), "replica has", "replicas have") + " every change");
    if (auto n = store.replicas_at_open(); n && *n < store.sync_replicas()) {
      log_warning("the server has " + counted(*n, "connected replica", "connected replicas") + ", fewer than the " +
                  std::to_string(store.sync_replicas()) +
                  " fsync waits for: every fsync fails (EIO) after the timeout until more connect");
    }
  }
  if (cfg.block_size && *cfg.block_size != store.block_size()) {
    log_warning("--block-size ignored: " + cfg.prefix + " exists with block size " +
                std::to_string(store.block_size()));
  }
  if (store.superblock().read_only && cfg.read_only && !store.frozen()) {
    log_info(cfg.prefix + " is " + describe_snapshot(cfg.prefix, store.superblock()) +
             " but was mounted writable (or this mount is not registered): it is read as a live filesystem is, "
             "nothing kept for long");
  }
  if (store.superblock().read_only && !cfg.read_only) {
    log_warning(cfg.prefix + " is " + describe_snapshot(cfg.prefix, store.superblock()) +
                "; mounting it read-write (--writable-snapshot)");
  }
}

// Everything that holds a connection: ends before the embedded server is
// asked to stop.
static int _run_with_server(const DaemonConfig& cfg, const RedisUrl& url) {
  // One reply may take a third of the outage budget (1 to 10 s): a stopped
  // master costs that long before the client looks for the new one, and
  // the rest of --timeout is left to find it.
  RedisUrl mount_url = url;
  mount_url.reply_timeout = std::clamp(url.timeout / 3, std::chrono::milliseconds(1000), std::chrono::milliseconds(10000));
  Pool pool(mount_url, "redisfs:" + std::to_string(getpid()));
  set_outage_reporter([timeout = url.timeout](const OutageNote& note) {
    note.over ? log_info(outage_text(note, timeout)) : log_warning(outage_text(note, timeout));
  });
  {
    Result<Pool::Lease> lease = pool.acquire();
    if (!lease) {
      log_error(lease.error().message);
      return 1;
    }
    // (on a cluster, the filesystem's master: it holds every key of it)
    Result<std::vector<std::string>> warnings =
        check_server(**lease, !cfg.read_only, cfg.allow_evicting_server, Keys(cfg.prefix).sb());
    if (!warnings) {
      log_error(warnings.error().message);
      return 1;
    }
    for (const std::string& w : *warnings) {
      log_warning(w);
    }
  }

  StoreOptions so;
  so.read_only = cfg.read_only;
  so.allow_snapshot_rw = cfg.writable_snapshot;
  so.create = !cfg.read_only;
  so.noatime = cfg.noatime;
  so.writeback = cfg.writeback;
  if (cfg.write_through) {
    so.gather_file_max = 0;
  }
  so.sync_replicas = cfg.sync_replicas.value_or(-1);
  so.mkfs_block_size = cfg.block_size.value_or(k_default_block_size);
  so.mkfs_owner = Caller{static_cast<std::uint32_t>(getuid()), static_cast<std::uint32_t>(getgid())};
  // The kernel forgets a directory's attributes after each change in it;
  // what our change read of them may answer for as long as it would have
  // kept them (a read-only mount changes nothing, so this is moot there):
  // a writeback mount's kernel, the only mount's, keeps them an hour
  // (_mount_options).
  const double timeout = cfg.writeback ? k_writeback_timeout : k_default_timeout;
  so.attr_cache_seconds = cfg.attr_timeout.value_or(timeout);
  // Likewise a name absent from a directory this mount is filling may be
  // answered for as long as the kernel would keep a negative entry.
  so.names_cache_seconds = cfg.entry_timeout.value_or(timeout);
  // Store::open registers the session (its key must exist before this
  // mount can own an orphan); the pid is added once fuse_daemonize() has
  // forked.
  so.session_info = _hostname() + " " + cfg.mountpoint;
  Result<std::unique_ptr<Store>> opened = Store::open(pool, cfg.prefix, so);
  if (!opened) {
    log_error(opened.error().message);
    return 1;
  }
  Store& store = **opened;
  _log_opened(cfg, store);
  if (!cfg.read_only) {
    Result<std::size_t> purged = store.purge_dead_orphans();
    if (!purged) {
      log_warning("cannot purge the orphans of dead mounts: " + purged.error().message);
    } else if (*purged > 0) {
      log_info("purged " + counted(*purged, "orphan inode", "orphan inodes") + " left by dead mounts");
    }
  }
  return _mount_and_serve(cfg, pool, store);
}

static std::string _dead_mount_message(const std::string& mountpoint) {
  return mountpoint + " is a dead mount (its daemon is gone: " + errno_text(ENOTCONN) +
         "); unmount it first with `fusermount3 -u " + mountpoint + "`";
}

// The mount point must be a directory that nothing is mounted on: a second
// mount on top of a live one would hide it (one unmount then leaves the
// other daemon running), and a dead FUSE mount (its daemon killed) answers
// every access with ENOTCONN. A directory with entries is refused too
// (ENOTEMPTY: mounting would hide them) unless `nonempty`. Makes
// `mountpoint` absolute: fuse_daemonize() changes to "/", and unmounting
// by a non-root user goes through fusermount3 with this path.
static Status _check_mountpoint(std::string& mountpoint, bool nonempty) {
  char resolved[PATH_MAX];
  if (realpath(mountpoint.c_str(), resolved) == nullptr) {
    int err = errno;
    std::error_code ec;
    std::string abs = std::filesystem::absolute(mountpoint, ec).lexically_normal().string();
    if (err == ENOTCONN) {
      return make_error(ENOTCONN, _dead_mount_message(ec ? mountpoint : abs));
    }
    return make_error(err, "mountpoint " + mountpoint + ": " + errno_text(err));
  }
  mountpoint = resolved;
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOTCONN) {
      return make_error(ENOTCONN, _dead_mount_message(mountpoint));
    }
    return make_error(err, "mountpoint " + mountpoint + ": " + errno_text(err));
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(ENOTDIR, "mountpoint " + mountpoint + ": " + errno_text(ENOTDIR));
  }
  for (const MountRow& row : _mount_rows()) {
    if (row.point == mountpoint) {
      return make_error(EBUSY, mountpoint + " is already mounted (" + row.fstype + " " + row.source +
                                   "); unmount it first with `fusermount3 -u " + mountpoint +
                                   "` (or umount), or choose another directory");
    }
  }
  if (!nonempty) {
    std::error_code ec;
    std::filesystem::directory_iterator it(mountpoint, ec);
    if (!ec && it != std::filesystem::directory_iterator()) {
      return make_error(ENOTEMPTY, "mountpoint " + mountpoint + " is not empty (" + it->path().filename().string() +
                                       ", ...): the mount would hide what is there; use an empty directory, "
                                       "or -o nonempty to mount over it anyway");
    }
  }
  return {};
}

int run_daemon(DaemonConfig cfg) {
  if (cfg.debug) {
    cfg.foreground = true;
  }
  log_init(cfg.log_level.value_or(cfg.debug ? LogLevel::Debug : LogLevel::Info));
  if (cfg.log_file) {
    if (Status st = log_open_file(*cfg.log_file); !st) {
      log_error(st.error().message);
      return 1;
    }
  }
  if (cfg.writeback && (cfg.read_only || cfg.write_through)) {
    log_error(std::string("-o writeback cannot go with ") + (cfg.read_only ? "-o ro" : "-o write_through") +
              ": a writeback mount writes, and writes behind");
    return k_usage_error;
  }
  // Absolute paths: fuse_daemonize() changes to "/", and unmounting by a
  // non-root user goes through fusermount3 with this path.
  if (Status st = _check_mountpoint(cfg.mountpoint, cfg.nonempty); !st) {
    log_error(st.error().message);
    return st.error().code == ENOTEMPTY ? k_usage_error : 1;
  }
  if (!cfg.endpoint.data_dir.empty()) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(cfg.endpoint.data_dir, ec);
    if (!ec) {
      cfg.endpoint.data_dir = abs.lexically_normal().string();
    }
  }
  if (cfg.endpoint.password_file) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(*cfg.endpoint.password_file, ec);
    if (!ec) {
      cfg.endpoint.password_file = abs.string();
    }
  }

  Result<Endpoint> endpoint = resolve_endpoint(cfg.endpoint);
  if (!endpoint) {
    log_error(endpoint.error().message);
    // EINVAL: server options that do not fit (a timeout out of range, a
    // TLS option without TLS, a bad URL): the command line, exit 2.
    return endpoint.error().code == EINVAL ? 2 : 1;
  }
  int rc = _run_with_server(cfg, endpoint->url);
  if (endpoint->embedded) {
    if (Status stopped = endpoint->embedded->stop_if_unused(); !stopped) {
      log_warning("embedded server: " + stopped.error().message);
    }
  }
  return rc;
}

}  // namespace redisfs
