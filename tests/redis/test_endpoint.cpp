// Choosing the server: --redis / --sentinel / REDISFS_URL / the embedded
// default, the password precedence (URL < REDISFS_PASSWORD <
// --password-file), the TLS settings and their variables, the timeout; the
// embedded server (start, attach, stop when unused, data kept across a
// restart, stale sockets, two starters at once, a missing or failing
// redis-server); and the server guards (eviction policy, persistence).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "redis/embedded.hpp"
#include "redis/endpoint.hpp"
#include "fixture.hpp"
#include "redis/server_check.hpp"

using namespace redisfs;
using redisfs::test::RedisFixture;
using redisfs::test::TempDir;

namespace {

// Sets or unsets environment variables for one case, then restores them.
class EnvGuard {
 public:
  EnvGuard() = default;
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  ~EnvGuard() {
    for (auto it = m_saved.rbegin(); it != m_saved.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }
  void set(const std::string& name, const std::string& value) {
    save(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name) {
    save(name);
    ::unsetenv(name.c_str());
  }

 private:
  void save(const std::string& name) {
    const char* v = std::getenv(name.c_str());
    m_saved.emplace_back(name, v != nullptr ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> m_saved;
};

bool _alive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) {
    return false;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(stat, s);
  auto close = s.rfind(')');
  return close == std::string::npos || close + 2 >= s.size() || s[close + 2] != 'Z';
}

pid_t _pid_in(const std::string& dir) {
  std::ifstream in(dir + "/redis.pid");
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// Kills a server a failed case left running in `dir` (declare after the
// TempDir, so it runs before the directory is removed).
class ServerReaper {
 public:
  explicit ServerReaper(std::string dir) : m_dir(std::move(dir)) {}
  ~ServerReaper() {
    pid_t pid = _pid_in(m_dir);
    if (!_alive(pid)) {
      return;
    }
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 200 && _alive(pid); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (_alive(pid)) {
      ::kill(pid, SIGKILL);
    }
  }

 private:
  std::string m_dir;
};

void _write_file(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ::chmod(path.c_str(), mode);
}

std::unique_ptr<EmbeddedServer> _start(const std::string& dir) {
  auto s = EmbeddedServer::start_or_attach(dir);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s).value();
}

std::unique_ptr<Connection> _open(const RedisUrl& url) {
  auto c = Connection::open(url, "redisfs:test-client");
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  return std::move(c).value();
}

bool _pings(const RedisUrl& url) {
  auto c = Connection::open(url, "");
  return c.ok() && (*c)->command({"PING"}).ok();
}

// Unsets every variable resolve_endpoint reads but REDISFS_URL and
// REDISFS_PASSWORD, so the caller's environment cannot change a case.
void _clear_server_env(EnvGuard& env) {
  for (const char* var : {"REDISFS_TIMEOUT", "REDISFS_SENTINEL_USER", "REDISFS_SENTINEL_PASSWORD",
                          "REDISFS_TLS_CA_CERT", "REDISFS_TLS_CA_CERT_DIR", "REDISFS_TLS_CERT", "REDISFS_TLS_KEY",
                          "REDISFS_TLS_SERVER_NAME"}) {
    env.unset(var);
  }
}

// resolve_endpoint's error message, which must exist.
std::string _error_of(const EndpointOptions& opts) {
  auto ep = resolve_endpoint(opts);
  REQUIRE_FALSE(ep.ok());
  CHECK(ep.error().code != 0);
  return ep.error().message;
}

std::string _real(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  REQUIRE(r != nullptr);
  std::string s(r);
  std::free(r);
  return s;
}

}  // namespace

TEST_SUITE_BEGIN("endpoint");

TEST_CASE("default_data_dir follows XDG_DATA_HOME, then HOME") {
  EnvGuard env;
  env.set("XDG_DATA_HOME", "/xdg/data");
  env.set("HOME", "/home/someone");
  CHECK(default_data_dir() == "/xdg/data/redisfs");
  env.set("XDG_DATA_HOME", "relative/not/allowed");
  CHECK(default_data_dir() == "/home/someone/.local/share/redisfs");
  env.unset("XDG_DATA_HOME");
  CHECK(default_data_dir() == "/home/someone/.local/share/redisfs");
  env.set("XDG_DATA_HOME", "");
  CHECK(default_data_dir() == "/home/someone/.local/share/redisfs");
}

TEST_CASE("resolve_endpoint: --redis beats REDISFS_URL") {
  EnvGuard env;
  env.unset("REDISFS_PASSWORD");
  env.set("REDISFS_URL", "redis://from-env:7000/2");
  EndpointOptions opts;
  auto ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK_FALSE(ep->embedded);
  CHECK(ep->url.host == "from-env");
  CHECK(ep->url.port == 7000);
  CHECK(ep->url.db == 2);

  opts.url = "unix:///run/other.sock?db=5";
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK_FALSE(ep->embedded);
  CHECK(ep->url.is_unix);
  CHECK(ep->url.path == "/run/other.sock");
  CHECK(ep->url.db == 5);

  env.set("REDISFS_URL", "bogus://x");
  auto bad = resolve_endpoint(EndpointOptions{});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == EINVAL);
  CHECK(bad.error().message.find("REDISFS_URL") != std::string::npos);
}

TEST_CASE("resolve_endpoint: password precedence URL < REDISFS_PASSWORD < --password-file") {
  TempDir tmp;
  EnvGuard env;
  env.unset("REDISFS_URL");
  env.unset("REDISFS_PASSWORD");
  EndpointOptions opts;
  opts.url = "redis://alice:url-pw@h:6390";

  auto ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.user == "alice");
  CHECK(ep->url.password == "url-pw");

  env.set("REDISFS_PASSWORD", "env-pw");
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.user == "alice");
  CHECK(ep->url.password == "env-pw");

  std::string file = tmp.path() + "/pw";
  _write_file(file, "file-pw\nsecond line\n");
  opts.password_file = file;
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.password == "file-pw");

  _write_file(file, "no-newline");
  CHECK(resolve_endpoint(opts)->url.password == "no-newline");
  _write_file(file, "crlf-pw\r\n");
  CHECK(resolve_endpoint(opts)->url.password == "crlf-pw");
  _write_file(file, " spaces kept \n");
  CHECK(resolve_endpoint(opts)->url.password == " spaces kept ");

  env.unset("REDISFS_PASSWORD");
  opts.url = "redis://h";
  _write_file(file, "only-file\n");
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.user.empty());
  CHECK(ep->url.password == "only-file");
  CHECK(ep->url.display().find("only-file") == std::string::npos);
}

TEST_CASE("resolve_endpoint: bad password files and bad URLs never show a password") {
  TempDir tmp;
  EnvGuard env;
  env.unset("REDISFS_URL");
  env.set("REDISFS_PASSWORD", "hunter2");
  EndpointOptions opts;
  opts.url = "redis://u:hunter2@h";

  opts.password_file = tmp.path() + "/missing";
  auto missing = resolve_endpoint(opts);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ENOENT);
  CHECK(missing.error().message.find(*opts.password_file) != std::string::npos);
  CHECK(missing.error().message.find("hunter2") == std::string::npos);

  std::string empty = tmp.path() + "/empty";
  _write_file(empty, "\nhunter2\n");
  opts.password_file = empty;
  auto blank = resolve_endpoint(opts);
  REQUIRE_FALSE(blank.ok());
  CHECK(blank.error().code == ENODATA);  // (a file that cannot be used, not the command line: exit 1)
  CHECK(blank.error().message.find("hunter2") == std::string::npos);

  opts.password_file = tmp.path();  // a directory
  CHECK_FALSE(resolve_endpoint(opts).ok());

  opts.password_file.reset();
  opts.url = "redis://u:hunter2@h:99999";
  auto bad = resolve_endpoint(opts);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("hunter2") == std::string::npos);
  CHECK(bad.error().message.find("--redis") != std::string::npos);

  // The embedded server has no password: a password file without a URL is
  // a mistake, not something to ignore.
  opts.url.reset();
  opts.password_file = empty;
  opts.data_dir = tmp.path() + "/never-created";
  auto no_url = resolve_endpoint(opts);
  REQUIRE_FALSE(no_url.ok());
  CHECK(no_url.error().code == EINVAL);
  struct stat st {};
  CHECK(::stat(opts.data_dir.c_str(), &st) != 0);
}

TEST_CASE("resolve_endpoint: --sentinel names the master, and REDISFS_SENTINEL_* authenticate to the sentinels") {
  EnvGuard env;
  _clear_server_env(env);
  env.unset("REDISFS_PASSWORD");
  env.set("REDISFS_URL", "redis://from-env:7000");
  EndpointOptions opts;
  opts.sentinel = "s1:26379,[::1]:26380,s3/mymaster";
  auto ep = resolve_endpoint(opts);  // --sentinel beats REDISFS_URL
  REQUIRE_MESSAGE(ep.ok(), (ep.ok() ? "" : ep.error().message));
  REQUIRE(ep->url.is_sentinel());
  REQUIRE(ep->url.sentinels.size() == 3);
  CHECK(ep->url.sentinels[0].display() == "s1:26379");
  CHECK(ep->url.sentinels[1].display() == "[::1]:26380");
  CHECK(ep->url.sentinels[2].port == 26379);
  CHECK(ep->url.master_name == "mymaster");
  CHECK_FALSE(ep->url.tls.enabled);
  CHECK(ep->url.sentinel_user.empty());
  CHECK(ep->url.sentinel_password.empty());

  env.set("REDISFS_PASSWORD", "data-pw");
  env.set("REDISFS_SENTINEL_USER", "watcher");
  env.set("REDISFS_SENTINEL_PASSWORD", "sentinel-pw");
  opts.tls = true;
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.password == "data-pw");
  CHECK(ep->url.sentinel_user == "watcher");
  CHECK(ep->url.sentinel_password == "sentinel-pw");
  CHECK(ep->url.tls.enabled);
  CHECK(ep->url.display().find("pw") == std::string::npos);

  // The sentinel variables are for sentinels only.
  opts = EndpointOptions{};
  opts.url = "redis://h";
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.sentinel_password.empty());

  opts.sentinel = "s1:26379/m";
  CHECK(_error_of(opts).find("--sentinel and --redis") != std::string::npos);
  opts.url.reset();
  opts.sentinel = "redis-sentinel://s1:26379/m";
  CHECK(_error_of(opts).find("HOST:PORT") != std::string::npos);
  opts.sentinel = "s1:26379";
  CHECK(_error_of(opts).find("--sentinel") == 0);
  opts.sentinel = "u:hunter2@s1:99999/m";
  CHECK(_error_of(opts).find("hunter2") == std::string::npos);
}

TEST_CASE("resolve_endpoint: TLS options, their variables, and what they need") {
  TempDir tmp;
  EnvGuard env;
  _clear_server_env(env);
  env.unset("REDISFS_URL");
  std::string ca = tmp.path() + "/ca.pem";
  std::string cert = tmp.path() + "/client.pem";
  std::string key = tmp.path() + "/client.key";
  for (const std::string& f : {ca, cert, key}) {
    _write_file(f, "-----BEGIN NOTHING-----\n");
  }
  EndpointOptions opts;

  opts.url = "redis://h:6380";
  auto ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK_FALSE(ep->url.tls.enabled);
  opts.tls = true;
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.tls.enabled);
  CHECK(ep->url.tls.ca_cert.empty());
  CHECK(ep->url.tls.server_name.empty());

  opts.tls = false;
  opts.url = "rediss://h:6380";
  opts.tls_ca_cert = ca;
  opts.tls_ca_cert_dir = tmp.path();
  opts.tls_cert = cert;
  opts.tls_key = key;
  opts.tls_server_name = "redis.internal";
  ep = resolve_endpoint(opts);
  REQUIRE_MESSAGE(ep.ok(), (ep.ok() ? "" : ep.error().message));
  CHECK(ep->url.tls.enabled);
  CHECK(ep->url.tls.ca_cert == ca);
  CHECK(ep->url.tls.ca_cert_dir == tmp.path());
  CHECK(ep->url.tls.cert == cert);
  CHECK(ep->url.tls.key == key);
  CHECK(ep->url.tls.server_name == "redis.internal");

  // Each unset option falls back to its variable; an option beats it.
  opts = EndpointOptions{};
  opts.url = "rediss://h";
  env.set("REDISFS_TLS_CA_CERT", ca);
  env.set("REDISFS_TLS_CA_CERT_DIR", tmp.path());
  env.set("REDISFS_TLS_CERT", cert);
  env.set("REDISFS_TLS_KEY", key);
  env.set("REDISFS_TLS_SERVER_NAME", "from-env");
  ep = resolve_endpoint(opts);
  REQUIRE(ep.ok());
  CHECK(ep->url.tls.ca_cert == ca);
  CHECK(ep->url.tls.ca_cert_dir == tmp.path());
  CHECK(ep->url.tls.cert == cert);
  CHECK(ep->url.tls.key == key);
  CHECK(ep->url.tls.server_name == "from-env");
  opts.tls_server_name = "from-option";
  CHECK(resolve_endpoint(opts)->url.tls.server_name == "from-option");

  // A relative path becomes absolute: the daemon changes to "/".
  {
    char* cwd = ::getcwd(nullptr, 0);
    REQUIRE(cwd != nullptr);
    REQUIRE(::chdir(tmp.path().c_str()) == 0);
    opts.tls_ca_cert = "ca.pem";
    auto rel = resolve_endpoint(opts);
    REQUIRE(::chdir(cwd) == 0);
    std::free(cwd);
    REQUIRE(rel.ok());
    CHECK(rel->url.tls.ca_cert == _real(tmp.path()) + "/ca.pem");
    opts.tls_ca_cert.reset();
  }

  // A variable with TLS off is an error, named, as the option would be.
  opts.url = "redis://h";
  CHECK(_error_of(opts) == "REDISFS_TLS_CA_CERT needs TLS: use rediss:// or --tls");
  _clear_server_env(env);
  CHECK(_error_of(opts) == "--tls-server-name needs TLS: use rediss:// or --tls");
  opts.tls_server_name.reset();
  opts.tls_cert = cert;
  CHECK(_error_of(opts) == "--tls-cert needs TLS: use rediss:// or --tls");
  opts.url = "unix:///run/r.sock";
  CHECK(_error_of(opts).find("unix socket") != std::string::npos);
  opts.tls_cert.reset();
  opts.tls = true;
  CHECK(_error_of(opts).find("--tls needs a TCP server") == 0);

  // A certificate and its key go together.
  opts = EndpointOptions{};
  opts.url = "rediss://h";
  opts.tls_cert = cert;
  CHECK(_error_of(opts).find("--tls-cert needs the certificate's private key") == 0);
  opts.tls_cert.reset();
  opts.tls_key = key;
  CHECK(_error_of(opts).find("--tls-key needs the client certificate") == 0);
  opts.tls_key.reset();
  env.set("REDISFS_TLS_KEY", key);
  CHECK(_error_of(opts).find("REDISFS_TLS_KEY needs the client certificate") == 0);
  env.unset("REDISFS_TLS_KEY");

  // An unreadable file is named.
  std::string missing = tmp.path() + "/missing.pem";
  opts.tls_ca_cert = missing;
  auto bad = resolve_endpoint(opts);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ENOENT);
  CHECK(bad.error().message == "--tls-ca-cert: cannot read file " + missing + ": " + std::strerror(ENOENT));
  opts.tls_ca_cert = tmp.path();
  CHECK(_error_of(opts).find("is not a regular file") != std::string::npos);
  opts.tls_ca_cert.reset();
  opts.tls_ca_cert_dir = ca;
  CHECK(_error_of(opts).find("--tls-ca-cert-dir: cannot read directory " + ca) == 0);
  opts.tls_ca_cert_dir.reset();
  opts.tls_cert = cert;
  opts.tls_key = missing;
  CHECK(_error_of(opts).find("--tls-key: cannot read file " + missing) == 0);
  if (::geteuid() != 0) {
    ::chmod(key.c_str(), 0);
    opts.tls_key = key;
    CHECK(_error_of(opts).find("--tls-key: cannot read file " + key + ": ") == 0);
  }
}

TEST_CASE("resolve_endpoint: --timeout, else REDISFS_TIMEOUT, else 30 s") {
  TempDir tmp;
  EnvGuard env;
  _clear_server_env(env);
  env.unset("REDISFS_URL");
  EndpointOptions opts;
  opts.url = "redis://h";
  CHECK(resolve_endpoint(opts)->url.timeout == std::chrono::seconds(30));
  env.set("REDISFS_TIMEOUT", "7");
  CHECK(resolve_endpoint(opts)->url.timeout == std::chrono::seconds(7));
  opts.timeout_s = 2.5;
  CHECK(resolve_endpoint(opts)->url.timeout == std::chrono::milliseconds(2500));
  opts.timeout_s = 86400;
  CHECK(resolve_endpoint(opts)->url.timeout == std::chrono::hours(24));
  opts.timeout_s = 0.0001;
  CHECK(resolve_endpoint(opts)->url.timeout == std::chrono::milliseconds(1));
  opts.sentinel = "s:26379/m";
  opts.url.reset();
  CHECK(resolve_endpoint(opts)->url.timeout == std::chrono::milliseconds(1));
  opts.sentinel.reset();
  opts.url = "redis://h";

  for (double bad : {0.0, -1.0, 86400.5, std::nan("")}) {
    opts.timeout_s = bad;
    CHECK(_error_of(opts) == "--timeout: the timeout must be more than 0 and at most 86400 seconds");
  }
  opts.timeout_s.reset();
  env.set("REDISFS_TIMEOUT", "0");
  CHECK(_error_of(opts).find("REDISFS_TIMEOUT: the timeout must be") == 0);
  env.set("REDISFS_TIMEOUT", "30s");
  CHECK(_error_of(opts) == "REDISFS_TIMEOUT: not a number of seconds: '30s'");

  // Checked before an embedded server would start.
  opts.url.reset();
  opts.data_dir = tmp.path() + "/never-created";
  CHECK(_error_of(opts).find("REDISFS_TIMEOUT") == 0);
  struct stat st {};
  CHECK(::stat(opts.data_dir.c_str(), &st) != 0);
}

TEST_CASE("resolve_endpoint: the embedded default refuses TLS options") {
  TempDir tmp;
  EnvGuard env;
  _clear_server_env(env);
  env.unset("REDISFS_URL");
  EndpointOptions opts;
  opts.data_dir = tmp.path() + "/never-created";
  opts.tls = true;
  CHECK(_error_of(opts).find("--tls needs a server given by --redis, --sentinel or REDISFS_URL") == 0);
  opts.tls = false;
  opts.tls_ca_cert = "/etc/ssl/ca.pem";
  CHECK(_error_of(opts).find("--tls-ca-cert needs a server") == 0);
  opts.tls_ca_cert.reset();
  opts.tls_server_name = "x";
  CHECK(_error_of(opts).find("--tls-server-name needs a server") == 0);
  struct stat st {};
  CHECK(::stat(opts.data_dir.c_str(), &st) != 0);
}

TEST_CASE("embedded: start, attach, the last user out stops it") {
  TempDir tmp;
  std::string dir = tmp.path() + "/nested/data";
  ServerReaper reaper(dir);

  auto first = _start(dir);
  CHECK(first->started_here());
  std::string real = _real(dir);
  RedisUrl url = first->url();
  CHECK(url.is_unix);
  CHECK(url.path == real + "/redis.sock");
  CHECK(_pings(url));

  struct stat st {};
  REQUIRE(::stat(real.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat(url.path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0700);
  pid_t pid = _pid_in(real);
  CHECK(_alive(pid));

  auto c = _open(url);
  auto get = [&](const char* name) {
    auto r = c->command({"CONFIG", "GET", name});
    REQUIRE(r.ok());
    REQUIRE(r->view().size() == 2);
    return std::string(r->view()[1].str());
  };
  CHECK(get("appendonly") == "yes");
  CHECK(get("appendfsync") == "everysec");
  CHECK(get("maxmemory-policy") == "noeviction");
  CHECK(get("port") == "0");
  CHECK(get("dir") == real);
  auto warnings = check_server(*c, true, false);
  REQUIRE(warnings.ok());
  CHECK(warnings->empty());

  auto second = _start(dir);
  CHECK_FALSE(second->started_here());
  CHECK(second->url().path == url.path);

  // Another user (our client c, the second attachment) keeps it running.
  REQUIRE(first->stop_if_unused().ok());
  CHECK(_pings(url));
  c.reset();
  CHECK(_pings(url));
  REQUIRE(second->stop_if_unused().ok());
  CHECK_FALSE(_alive(pid));
  CHECK_FALSE(_pings(url));
  CHECK(::stat(url.path.c_str(), &st) != 0);
  // Stopping twice is harmless.
  CHECK(second->stop_if_unused().ok());
  CHECK(first->stop_if_unused().ok());
}

TEST_CASE("embedded: the data survives a stop and a start (AOF)") {
  TempDir tmp;
  std::string dir = tmp.path() + "/data";
  ServerReaper reaper(dir);
  {
    auto server = _start(dir);
    REQUIRE(server->started_here());
    auto c = _open(server->url());
    REQUIRE(c->command({"SET", "redisfs-test:kept", "across restarts"}).ok());
    REQUIRE(c->command({"HSET", "redisfs-test:hash", "f", std::string("bin\0ary", 7)}).ok());
    c.reset();
    pid_t pid = _pid_in(_real(dir));
    REQUIRE(server->stop_if_unused().ok());
    CHECK_FALSE(_alive(pid));
  }
  auto again = _start(dir);
  CHECK(again->started_here());
  auto c = _open(again->url());
  auto v = c->command({"GET", "redisfs-test:kept"});
  REQUIRE(v.ok());
  CHECK(v->view().str() == "across restarts");
  auto h = c->command({"HGET", "redisfs-test:hash", "f"});
  REQUIRE(h.ok());
  CHECK(h->view().str() == std::string("bin\0ary", 7));
  c.reset();
  REQUIRE(again->stop_if_unused().ok());
}

TEST_CASE("embedded: a stale socket file is replaced") {
  TempDir tmp;
  std::string dir = tmp.path();
  ServerReaper reaper(dir);
  std::string sock = dir + "/redis.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);  // the file stays, nobody listens
  _write_file(dir + "/redis.pid", "999999\n");  // a pid file naming no process

  auto server = _start(dir);
  CHECK(server->started_here());
  CHECK(_pings(server->url()));
  REQUIRE(server->stop_if_unused().ok());
}

TEST_CASE("embedded: two starters at once start one server") {
  TempDir tmp;
  std::string dir = tmp.path() + "/data";
  ServerReaper reaper(dir);
  Result<std::unique_ptr<EmbeddedServer>> a = make_error(EIO, "not run");
  Result<std::unique_ptr<EmbeddedServer>> b = make_error(EIO, "not run");
  std::thread ta([&] { a = EmbeddedServer::start_or_attach(dir); });
  std::thread tb([&] { b = EmbeddedServer::start_or_attach(dir); });
  ta.join();
  tb.join();
  REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().message));
  REQUIRE_MESSAGE(b.ok(), (b.ok() ? "" : b.error().message));
  CHECK((*a)->started_here() != (*b)->started_here());
  CHECK((*a)->url().path == (*b)->url().path);
  pid_t pid = _pid_in(_real(dir));
  REQUIRE((*a)->stop_if_unused().ok());
  CHECK(_alive(pid));
  REQUIRE((*b)->stop_if_unused().ok());
  CHECK_FALSE(_alive(pid));
}

TEST_CASE("embedded: resolve_endpoint without a URL uses the data directory") {
  TempDir tmp;
  std::string dir = tmp.path() + "/store";
  ServerReaper reaper(dir);
  EnvGuard env;
  env.unset("REDISFS_URL");
  _clear_server_env(env);
  env.set("REDISFS_PASSWORD", "ignored-for-embedded");
  env.set("REDISFS_TLS_CERT", "/ignored/for/embedded.pem");
  env.set("REDISFS_TIMEOUT", "12");
  EndpointOptions opts;
  opts.data_dir = dir;
  auto ep = resolve_endpoint(opts);
  REQUIRE_MESSAGE(ep.ok(), (ep.ok() ? "" : ep.error().message));
  REQUIRE(ep->embedded);
  CHECK(ep->embedded->started_here());
  CHECK(ep->url.is_unix);
  CHECK(ep->url.path == _real(dir) + "/redis.sock");
  CHECK(ep->url.password.empty());
  CHECK_FALSE(ep->url.tls.enabled);
  CHECK(ep->url.timeout == std::chrono::seconds(12));
  CHECK(_pings(ep->url));
  REQUIRE(ep->embedded->stop_if_unused().ok());
}

TEST_CASE("embedded: a missing or failing redis-server is a clear error") {
  TempDir tmp;
  EnvGuard env;
  env.set("REDISFS_REDIS_SERVER", tmp.path() + "/no/such/redis-server");
  auto missing = EmbeddedServer::start_or_attach(tmp.path() + "/a");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("redis-server not found") != std::string::npos);
  CHECK(missing.error().message.find("--redis") != std::string::npos);

  env.set("REDISFS_REDIS_SERVER", "no-such-redis-server-binary");
  CHECK_FALSE(EmbeddedServer::start_or_attach(tmp.path() + "/a").ok());

  std::string fake = tmp.path() + "/fake-redis-server";
  _write_file(fake, "#!/bin/sh\necho 'starting'\necho '*** FATAL CONFIG FILE ERROR: boom' >&2\nexit 1\n", 0700);
  env.set("REDISFS_REDIS_SERVER", fake);
  auto failing = EmbeddedServer::start_or_attach(tmp.path() + "/b");
  REQUIRE_FALSE(failing.ok());
  CHECK(failing.error().message.find("boom") != std::string::npos);

  std::string too_long = tmp.path() + "/" + std::string(120, 'x');
  auto long_path = EmbeddedServer::start_or_attach(too_long);
  REQUIRE_FALSE(long_path.ok());
  CHECK(long_path.error().code == ENAMETOOLONG);
}

TEST_CASE_FIXTURE(RedisFixture, "check_server: eviction policies refuse read-write use") {
  Connection& c = conn();
  auto info = server_info(c);
  REQUIRE(info.ok());
  CHECK(info->major >= 6);
  CHECK_FALSE(info->version.empty());
  CHECK(info->maxmemory_policy == "noeviction");

  struct Restore {
    ~Restore() {
      auto r = Connection::open(test::test_url(), "");
      if (r.ok()) {
        (void)(*r)->command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
      }
    }
  } restore;
  REQUIRE(c.command({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}).ok());

  auto refused = check_server(c, true, false);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == EINVAL);
  CHECK(refused.error().message.find("allkeys-lru") != std::string::npos);
  CHECK(refused.error().message.find("noeviction") != std::string::npos);
  CHECK(refused.error().message.find("--allow-evicting-server") != std::string::npos);

  auto allowed = check_server(c, true, true);
  REQUIRE(allowed.ok());
  bool warned = false;
  for (const auto& w : *allowed) {
    warned = warned || w.find("allkeys-lru") != std::string::npos;
  }
  CHECK(warned);

  CHECK(check_server(c, false, false).ok());

  REQUIRE(c.command({"CONFIG", "SET", "maxmemory-policy", "volatile-ttl"}).ok());
  CHECK_FALSE(check_server(c, true, false).ok());

  REQUIRE(c.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).ok());
  CHECK(check_server(c, true, false).ok());
}

TEST_CASE_FIXTURE(RedisFixture, "check_server: a server without persistence is a warning") {
  Connection& c = conn();
  // with_redis.sh runs the test server with --save '' --appendonly no.
  auto info = server_info(c);
  REQUIRE(info.ok());
  CHECK_FALSE(info->aof_enabled);
  REQUIRE(info->save);
  CHECK(info->save->empty());

  auto w = check_server(c, true, false);
  REQUIRE(w.ok());
  REQUIRE(w->size() == 1);
  CHECK(w->front().find("no persistence") != std::string::npos);
  CHECK(check_server(c, false, false)->size() == 1);

  struct Restore {
    ~Restore() {
      auto r = Connection::open(test::test_url(), "");
      if (r.ok()) {
        (void)(*r)->command({"CONFIG", "SET", "save", ""});
      }
    }
  } restore;
  REQUIRE(c.command({"CONFIG", "SET", "save", "3600 1"}).ok());
  w = check_server(c, true, false);
  REQUIRE(w.ok());
  CHECK(w->empty());
}

TEST_SUITE_END();
