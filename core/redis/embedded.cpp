// Starting, attaching to and stopping the embedded redis-server.
//
// THE LOCK. Every decision about the server (is one answering? start one?
// is anybody else still using it?) is taken while holding an exclusive flock
// on <data_dir>/lock, so two mounts starting at once, or a mount starting
// while the last tool leaves, see one consistent answer: the second waits
// for the first and then attaches to the server it started.
//
// A socket file with no server behind it (the host crashed, or the server
// was killed) is removed before starting. A redis-server whose pid file
// names a live process but that does not answer is waited for, never
// replaced: two servers appending to one AOF would corrupt it.
//
// The server daemonizes itself (`--daemonize yes`): it must outlive a mount
// that crashes, so the next user finds the data where it was. Its stdout and
// stderr go to the log file too, so a configuration error printed before
// the log is opened still ends up where our error message points.
#include "redis/embedded.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "util/text.hpp"

extern char** environ;

namespace redisfs {

namespace {

constexpr auto k_start_timeout = std::chrono::seconds(10);
constexpr auto k_loading_timeout = std::chrono::minutes(10);
constexpr auto k_stop_timeout = std::chrono::seconds(10);
constexpr auto k_poll_interval = std::chrono::milliseconds(50);

struct Paths {
  std::string dir;
  std::string socket;
  std::string pidfile;
  std::string logfile;
  std::string lockfile;
};

// An exclusive flock on <data_dir>/lock, released when it goes out of scope.
class DirLock {
 public:
  DirLock() = default;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() {
    if (m_fd >= 0) {
      ::close(m_fd);  // releases the flock
    }
  }

  Status acquire(const std::string& path) {
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m_fd < 0) {
      int e = errno;
      return make_error(e, "cannot open lock file " + path + ": " + errno_text(e));
    }
    while (::flock(m_fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int e = errno;
        return make_error(e, "cannot lock " + path + ": " + errno_text(e));
      }
    }
    return {};
  }

 private:
  int m_fd = -1;
};

enum class Probe { Answers, Loading, Nothing };

}  // namespace

static Paths _paths(const std::string& dir) {
  return Paths{dir, dir + "/redis.sock", dir + "/redis.pid", dir + "/redis.log", dir + "/lock"};
}

static RedisUrl _socket_url(const std::string& socket) {
  RedisUrl u;
  u.is_unix = true;
  u.path = socket;
  return u;
}

// mkdir -p, every directory it creates with mode 0700.
static Status _make_dirs(const std::string& path) {
  std::string partial;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string::npos) {
      next = path.size();
    }
    partial = path.substr(0, next);
    pos = next + 1;
    if (partial.empty()) {
      continue;
    }
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      int e = errno;
      return make_error(e, "cannot create directory " + partial + ": " + errno_text(e));
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    return make_error(e, "cannot use data directory " + path + ": " + errno_text(e));
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(ENOTDIR, "data directory " + path + " is not a directory");
  }
  return {};
}

static Result<std::string> _absolute_dir(const std::string& data_dir) {
  if (data_dir.empty()) {
    return make_error(EINVAL, "the data directory must not be empty");
  }
  std::string dir = data_dir;
  if (dir[0] != '/') {
    char buf[4096];
    if (::getcwd(buf, sizeof buf) == nullptr) {
      int e = errno;
      return make_error(e, std::string("cannot resolve the data directory: ") + errno_text(e));
    }
    dir = std::string(buf) + '/' + dir;
  }
  TRY(_make_dirs(dir));
  char* real = ::realpath(dir.c_str(), nullptr);
  if (real == nullptr) {
    int e = errno;
    return make_error(e, "cannot resolve data directory " + dir + ": " + errno_text(e));
  }
  std::string out(real);
  std::free(real);
  return out;
}

// The last non-empty line of the log, for error messages.
static std::string _last_log_line(const std::string& logfile) {
  std::ifstream in(logfile);
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
      line.pop_back();
    }
    if (!line.empty()) {
      last = line;
    }
  }
  if (last.empty()) {
    return "(the log " + logfile + " is empty)";
  }
  return last + " (see " + logfile + ")";
}

static pid_t _read_pidfile(const std::string& pidfile) {
  std::ifstream in(pidfile);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) {
    return 0;
  }
  return static_cast<pid_t>(pid);
}

// Alive and not a zombie waiting to be reaped.
static bool _process_alive(pid_t pid) {
  if (pid <= 0) {
    return false;
  }
  if (::kill(pid, 0) != 0 && errno != EPERM) {
    return false;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) {
    return true;  // no /proc: trust kill()
  }
  auto close = content.rfind(')');
  return close == std::string::npos || close + 2 >= content.size() || content[close + 2] != 'Z';
}

static bool _is_redis_server(pid_t pid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (!std::getline(comm, name)) {
    return _process_alive(pid);
  }
  return name.starts_with("redis-server") || name.starts_with("valkey-server");
}

static Result<Probe> _probe(const std::string& socket) {
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0) {
    return Probe::Nothing;
  }
  RedisUrl url = _socket_url(socket);
  url.timeout = std::chrono::milliseconds(200);  // a probe: the caller waits between probes
  auto c = Connection::open(url, "");
  if (!c.ok()) {
    // LOADING, or refused: a stale socket file.
    return c.error().fault == Fault::Loading ? Probe::Loading : Probe::Nothing;
  }
  auto r = (*c)->command({"PING"});
  if (r.ok()) {
    return Probe::Answers;
  }
  if (r.error().fault == Fault::Loading) {
    return Probe::Loading;
  }
  if (r.error().fault == Fault::Lost || r.error().fault == Fault::Unreachable) {
    return Probe::Nothing;
  }
  return make_error(r.error().code, "the server on " + socket + " does not answer PING: " + r.error().message);
}

static std::vector<std::string> _path_dirs() {
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::vector<std::string> dirs;
  std::stringstream ss(path);
  std::string d;
  while (std::getline(ss, d, ':')) {
    dirs.push_back(d.empty() ? "." : d);
  }
  return dirs;
}

static Result<std::string> _find_redis_server() {
  const char* env = std::getenv("REDISFS_REDIS_SERVER");
  std::string name = env != nullptr && *env != '\0' ? env : "redis-server";
  auto missing = [&] {
    std::string what = name == "redis-server" ? "redis-server not found" : "redis-server not found (REDISFS_REDIS_SERVER=" + name + ")";
    return make_error(ENOENT, what + ": install it (apt-get install redis-server) or pass --redis URL");
  };
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) {
      return name;
    }
    return missing();
  }
  for (const auto& d : _path_dirs()) {
    std::string candidate = d + '/' + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return missing();
}

// Runs redis-server, which daemonizes: the process we spawn exits as soon as
// the server has forked (or at once, on a configuration error).
static Status _spawn_server(const std::string& binary, const Paths& p) {
  std::vector<std::string> args = {
      binary,
      "--port", "0",
      "--unixsocket", p.socket,
      "--unixsocketperm", "700",
      "--dir", p.dir,
      "--appendonly", "yes",
      "--appendfsync", "everysec",
      "--save", "",
      "--maxmemory-policy", "noeviction",
      "--daemonize", "yes",
      "--pidfile", p.pidfile,
      "--logfile", p.logfile,
  };
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, p.logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // The server must not inherit our other descriptors: a pooled connection
  // or /dev/fuse kept open by a daemon that outlives us.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // Nor our blocked or ignored signals: SIGTERM must stop it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t child = 0;
  int rc = posix_spawn(&child, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return make_error(rc, "cannot run " + binary + ": " + errno_text(rc));
  }
  int status = 0;
  pid_t w = 0;
  do {
    w = ::waitpid(child, &status, 0);
  } while (w < 0 && errno == EINTR);
  if (w == child && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    return make_error(EIO, "redis-server failed to start: " + _last_log_line(p.logfile));
  }
  return {};  // w < 0 (SIGCHLD ignored: the child was reaped for us) is judged by PING
}

// Waits for the server to answer PING, up to 10 s (longer while it answers
// LOADING: it is reading a big AOF). Gives up early when the process named
// by the pid file has died.
static Status _wait_until_answering(const Paths& p, const std::string& what) {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + k_start_timeout;
  for (;;) {
    TRY_ASSIGN(Probe probe, _probe(p.socket));
    auto now = std::chrono::steady_clock::now();
    if (probe == Probe::Answers) {
      return {};
    }
    if (probe == Probe::Loading) {
      deadline = std::min(now + k_start_timeout, start + k_loading_timeout);  // loading a big AOF: progress
    } else {
      pid_t pid = _read_pidfile(p.pidfile);
      if (pid != 0 && !_process_alive(pid) && now - start > std::chrono::milliseconds(500)) {
        return make_error(EIO, what + ": redis-server exited: " + _last_log_line(p.logfile));
      }
    }
    if (now >= deadline) {
      return make_error(ETIMEDOUT, what + ": redis-server did not answer on " + p.socket +
                                       " within 10 s: " + _last_log_line(p.logfile));
    }
    std::this_thread::sleep_for(k_poll_interval);
  }
}

static Result<std::unique_ptr<Connection>> _presence(const Paths& p) {
  std::string name = "redisfs:embedded:" + std::to_string(::getpid());
  return Connection::open(_socket_url(p.socket), name);
}

EmbeddedServer::EmbeddedServer(std::string data_dir, bool started_here, std::unique_ptr<Connection> presence)
    : m_data_dir(std::move(data_dir)), m_started_here(started_here), m_presence(std::move(presence)) {}

EmbeddedServer::~EmbeddedServer() = default;

RedisUrl EmbeddedServer::url() const { return _socket_url(_paths(m_data_dir).socket); }

Result<std::unique_ptr<EmbeddedServer>> EmbeddedServer::start_or_attach(const std::string& data_dir) {
  TRY_ASSIGN(std::string dir, _absolute_dir(data_dir));
  Paths p = _paths(dir);
  if (p.socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return make_error(ENAMETOOLONG, "data directory " + dir + " is too long for a unix socket path (" +
                                        std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes at most)");
  }
  DirLock lock;
  TRY(lock.acquire(p.lockfile));

  bool started = false;
  TRY_ASSIGN(Probe probe, _probe(p.socket));
  if (probe == Probe::Loading) {
    TRY(_wait_until_answering(p, "waiting for the embedded server to load its data"));
  } else if (probe == Probe::Nothing) {
    pid_t pid = _read_pidfile(p.pidfile);
    if (pid != 0 && _process_alive(pid) && _is_redis_server(pid)) {
      // Running but silent (still starting, or hung): never start a second
      // server on the same files.
      auto waited = _wait_until_answering(p, "the embedded server");
      if (!waited.ok()) {
        return make_error(waited.code(), "a redis-server (pid " + std::to_string(pid) + ") is running in " + dir +
                                             " but does not answer on " + p.socket + "; stop it or remove it");
      }
    } else {
      TRY_ASSIGN(std::string binary, _find_redis_server());
      for (const std::string& stale : {p.socket, p.pidfile}) {
        if (::unlink(stale.c_str()) != 0 && errno != ENOENT) {
          int e = errno;
          return make_error(e, "cannot remove stale " + stale + ": " + errno_text(e));
        }
      }
      TRY(_spawn_server(binary, p));
      TRY(_wait_until_answering(p, "starting the embedded server in " + dir));
      started = true;
    }
  }
  TRY_ASSIGN(auto presence, _presence(p));
  return std::unique_ptr<EmbeddedServer>(new EmbeddedServer(dir, started, std::move(presence)));
}

static std::size_t _count_clients(std::string_view list) {
  std::size_t n = 0;
  std::size_t pos = 0;
  while (pos < list.size()) {
    std::size_t end = list.find('\n', pos);
    if (end == std::string_view::npos) {
      end = list.size();
    }
    std::string_view line = list.substr(pos, end - pos);
    if (!line.empty() && line != "\r") {
      ++n;
    }
    pos = end + 1;
  }
  return n;
}

static pid_t _server_pid(Connection& c) {
  auto r = c.command({"INFO", "server"});
  if (!r.ok()) {
    return 0;
  }
  std::string_view info = r->view().str();
  auto at = info.find("process_id:");
  if (at == std::string_view::npos) {
    return 0;
  }
  std::string_view rest = info.substr(at + 11);
  long pid = 0;
  std::from_chars(rest.data(), rest.data() + rest.size(), pid);
  return static_cast<pid_t>(pid);
}

Status EmbeddedServer::stop_if_unused() {
  if (!m_presence) {
    return {};
  }
  Paths p = _paths(m_data_dir);
  DirLock lock;
  TRY(lock.acquire(p.lockfile));

  auto list = m_presence->command({"CLIENT", "LIST"});
  if (!list.ok() && list.error().code == EIO) {
    list = m_presence->command({"CLIENT", "LIST"});  // reconnects once if the server restarted
    if (!list.ok() && list.error().code == EIO) {
      m_presence.reset();  // nothing answers: nothing to stop
      return {};
    }
  }
  if (!list.ok()) {
    Error e = std::move(list).error();
    m_presence.reset();
    return make_error(e.code, "cannot check who uses the embedded server: " + e.message);
  }
  if (_count_clients(list->view().str()) > 1) {
    m_presence.reset();  // another mount or tool still uses it
    return {};
  }
  pid_t pid = _server_pid(*m_presence);
  if (pid == 0) {
    pid = _read_pidfile(p.pidfile);
  }
  auto shut = m_presence->command({"SHUTDOWN"});
  m_presence.reset();
  auto deadline = std::chrono::steady_clock::now() + k_stop_timeout;
  while (_process_alive(pid) && _is_redis_server(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string why = shut.ok() ? "" : " (" + shut.error().message + ")";
      return make_error(ETIMEDOUT, "the embedded redis-server (pid " + std::to_string(pid) +
                                       ") did not exit within 10 s of SHUTDOWN" + why + ": " +
                                       _last_log_line(p.logfile));
    }
    std::this_thread::sleep_for(k_poll_interval);
  }
  return {};
}

}  // namespace redisfs
