// Resolving --redis / REDISFS_URL / the embedded default into one RedisUrl
// (see endpoint.hpp for the precedence rules).
#include "endpoint.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace redisfs {

static std::optional<std::string> _env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    return std::nullopt;
  }
  return std::string(v);
}

std::string default_data_dir() {
  if (auto xdg = _env("XDG_DATA_HOME"); xdg && (*xdg)[0] == '/') {
    return *xdg + "/redisfs";
  }
  std::optional<std::string> home = _env("HOME");
  if (!home) {
    if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
      home = std::string(pw->pw_dir);
    }
  }
  return home.value_or("/tmp") + "/.local/share/redisfs";
}

static Result<std::string> _read_password_file(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno != 0 ? errno : EIO;
    return make_error(e, "cannot read password file " + path + ": " + std::strerror(e));
  }
  std::string line;
  std::getline(in, line);
  if (in.bad()) {
    return make_error(EIO, "cannot read password file " + path);
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  if (line.empty()) {
    return make_error(EINVAL, "password file " + path + " is empty (the password is its first line)");
  }
  return line;
}

Result<Endpoint> resolve_endpoint(const EndpointOptions& opts) {
  std::optional<std::string> url = opts.url;
  const char* source = "--redis";
  if (!url || url->empty()) {
    url = _env("REDISFS_URL");
    source = "REDISFS_URL";
  }
  Endpoint ep;
  if (!url) {
    if (opts.password_file) {
      return make_error(EINVAL, "--password-file needs a server given by --redis or REDISFS_URL "
                                "(the embedded default server has no password)");
    }
    std::string dir = opts.data_dir.empty() ? default_data_dir() : opts.data_dir;
    TRY_ASSIGN(ep.embedded, EmbeddedServer::start_or_attach(dir));
    ep.url = ep.embedded->url();
    return ep;
  }
  auto parsed = parse_redis_url(*url);
  if (!parsed.ok()) {
    return make_error(parsed.code(), std::string(source) + ": " + parsed.error().message);
  }
  ep.url = std::move(parsed).value();
  if (auto pw = _env("REDISFS_PASSWORD")) {
    ep.url.password = *pw;
  }
  if (opts.password_file) {
    TRY_ASSIGN(ep.url.password, _read_password_file(*opts.password_file));
  }
  return ep;
}

}  // namespace redisfs
