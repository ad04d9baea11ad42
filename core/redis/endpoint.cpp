// Resolving --redis / REDISFS_URL / the embedded default into one RedisUrl
// (see endpoint.hpp for the precedence rules).
#include "redis/endpoint.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "util/text.hpp"

namespace redisfs {

static constexpr double k_default_timeout_s = 30;
static constexpr double k_max_timeout_s = 86400;

static std::optional<std::string> _env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    return std::nullopt;
  }
  return std::string(v);
}

static const EndpointTextOption k_text_options[] = {
    {"--redis", "URL",
     "Server URL: redis://[user[:password]@]host[:port][/db], rediss://... (TLS), unix://[user@]/path.sock[?db=N] "
     "or redis-sentinel://host:port[,host:port...]/MASTER (default: $REDISFS_URL, else the embedded server)",
     &EndpointOptions::url},
    {"--password-file", "FILE", "Read the server password from the first line of FILE (else $REDISFS_PASSWORD)",
     &EndpointOptions::password_file},
    {"--sentinel", "HOST:PORT[,...]/MASTER", "Find the master MASTER through these Redis Sentinels (not with --redis)",
     &EndpointOptions::sentinel},
    {"--tls-ca-cert", "FILE", "CA certificates (PEM) to verify the server with (default: $REDISFS_TLS_CA_CERT, "
                              "else the system's)",
     &EndpointOptions::tls_ca_cert},
    {"--tls-ca-cert-dir", "DIR", "Directory of CA certificates (default: $REDISFS_TLS_CA_CERT_DIR)",
     &EndpointOptions::tls_ca_cert_dir},
    {"--tls-cert", "FILE", "Client certificate (PEM) for servers that ask for one (default: $REDISFS_TLS_CERT)",
     &EndpointOptions::tls_cert},
    {"--tls-key", "FILE", "Private key of --tls-cert (default: $REDISFS_TLS_KEY)", &EndpointOptions::tls_key},
    {"--tls-server-name", "NAME", "Name to send (SNI) and verify in the server's certificate "
                                  "(default: $REDISFS_TLS_SERVER_NAME, else the host connected to)",
     &EndpointOptions::tls_server_name},
};

std::span<const EndpointTextOption> endpoint_text_options() { return k_text_options; }

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
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return make_error(EISDIR, "cannot read password file " + path + ": " + errno_text(EISDIR));
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno != 0 ? errno : EIO;
    return make_error(e, "cannot read password file " + path + ": " + errno_text(e));
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
    const bool more = in.peek() != std::char_traits<char>::eof();
    return make_error(ENODATA, "password file " + path +
                                   (more ? " begins with an empty line (the password is its first line)"
                                         : " is empty (the password is its first line)"));
  }
  return line;
}

namespace {

// A setting given by an option, else by its environment variable.
struct Given {
  std::string value;   // empty: given by neither
  std::string source;  // "--tls-cert" or "REDISFS_TLS_CERT": which one gave it
  explicit operator bool() const { return !value.empty(); }
};

Given _option_or_env(const std::optional<std::string>& option, const char* name, const char* var) {
  if (option && !option->empty()) {
    return {*option, name};
  }
  if (auto v = _env(var)) {
    return {*v, var};
  }
  return {};
}

// The absolute path of a file (or directory) we can open for reading: a
// daemon changes to "/" and may load certificates again on reconnecting.
Result<std::string> _readable(const Given& given, bool directory) {
  const char* what = directory ? "directory" : "file";
  int fd = ::open(given.value.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) {
    int e = errno;
    return make_error(e, given.source + ": cannot read " + what + " " + given.value + ": " + errno_text(e));
  }
  struct stat st {};
  bool regular = ::fstat(fd, &st) == 0 && (directory || S_ISREG(st.st_mode));
  ::close(fd);
  if (!regular) {
    return make_error(EINVAL, given.source + ": " + given.value + " is not a regular file");
  }
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(given.value, ec);
  return ec ? given.value : abs.lexically_normal().string();
}

const char* _first_tls_option(const EndpointOptions& opts) {
  if (opts.tls) {
    return "--tls";
  }
  const std::pair<const std::optional<std::string>*, const char*> named[] = {
      {&opts.tls_ca_cert, "--tls-ca-cert"}, {&opts.tls_ca_cert_dir, "--tls-ca-cert-dir"},
      {&opts.tls_cert, "--tls-cert"},       {&opts.tls_key, "--tls-key"},
      {&opts.tls_server_name, "--tls-server-name"}};
  for (const auto& [value, name] : named) {
    if (*value) {
      return name;
    }
  }
  return nullptr;
}

// --tls and the certificate settings, onto a parsed URL.
Status _apply_tls(const EndpointOptions& opts, RedisUrl& url) {
  if (opts.tls) {
    if (url.is_unix) {
      return make_error(EINVAL, "--tls needs a TCP server (redis:// or --sentinel): a unix socket has no TLS");
    }
    url.tls.enabled = true;
  }
  Given ca = _option_or_env(opts.tls_ca_cert, "--tls-ca-cert", "REDISFS_TLS_CA_CERT");
  Given ca_dir = _option_or_env(opts.tls_ca_cert_dir, "--tls-ca-cert-dir", "REDISFS_TLS_CA_CERT_DIR");
  Given cert = _option_or_env(opts.tls_cert, "--tls-cert", "REDISFS_TLS_CERT");
  Given key = _option_or_env(opts.tls_key, "--tls-key", "REDISFS_TLS_KEY");
  Given name = _option_or_env(opts.tls_server_name, "--tls-server-name", "REDISFS_TLS_SERVER_NAME");
  for (const Given* g : {&ca, &ca_dir, &cert, &key, &name}) {
    if (*g && !url.tls.enabled) {
      return make_error(EINVAL, g->source + (url.is_unix ? " needs TLS, which a unix socket does not have"
                                                         : " needs TLS: use rediss:// or --tls"));
    }
  }
  if (cert && !key) {
    return make_error(EINVAL, cert.source + " needs the certificate's private key too (--tls-key or REDISFS_TLS_KEY)");
  }
  if (key && !cert) {
    return make_error(EINVAL, key.source + " needs the client certificate too (--tls-cert or REDISFS_TLS_CERT)");
  }
  if (ca) {
    TRY_ASSIGN(url.tls.ca_cert, _readable(ca, false));
  }
  if (ca_dir) {
    TRY_ASSIGN(url.tls.ca_cert_dir, _readable(ca_dir, true));
  }
  if (cert) {
    TRY_ASSIGN(url.tls.cert, _readable(cert, false));
    TRY_ASSIGN(url.tls.key, _readable(key, false));
  }
  url.tls.server_name = name.value;
  return {};
}

// --timeout, else REDISFS_TIMEOUT, else 30 s.
Result<std::chrono::milliseconds> _timeout(const std::optional<double>& option) {
  double seconds = k_default_timeout_s;
  std::string source = "--timeout";
  if (option) {
    seconds = *option;
  } else if (auto text = _env("REDISFS_TIMEOUT")) {
    source = "REDISFS_TIMEOUT";
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), seconds);
    if (ec != std::errc() || end != text->data() + text->size()) {
      return make_error(EINVAL, source + ": not a number of seconds: '" + *text + "'");
    }
  }
  if (!(seconds > 0 && seconds <= k_max_timeout_s)) {  // NaN fails too
    return make_error(EINVAL, source + ": the timeout must be more than 0 and at most 86400 seconds");
  }
  return std::chrono::milliseconds(std::max(1LL, std::llround(seconds * 1000)));
}

// The server's URL and what named it: --sentinel, --redis, REDISFS_URL, or
// nothing (the embedded default).
Result<std::pair<std::optional<std::string>, const char*>> _server_url(const EndpointOptions& opts) {
  bool has_url = opts.url && !opts.url->empty();
  if (opts.sentinel) {
    if (has_url) {
      return make_error(EINVAL, "--sentinel and --redis both name the server: give one of them");
    }
    if (opts.sentinel->find("://") != std::string::npos) {
      return make_error(EINVAL, "--sentinel takes HOST:PORT[,HOST:PORT...]/MASTER (a URL goes to --redis)");
    }
    return std::pair{std::optional<std::string>("redis-sentinel://" + *opts.sentinel), "--sentinel"};
  }
  if (has_url) {
    return std::pair{opts.url, "--redis"};
  }
  return std::pair{_env("REDISFS_URL"), "REDISFS_URL"};
}

}  // namespace

Result<Endpoint> resolve_endpoint(const EndpointOptions& opts) {
  TRY_ASSIGN(std::chrono::milliseconds timeout, _timeout(opts.timeout_s));
  TRY_ASSIGN(auto named, _server_url(opts));
  auto [url, source] = std::move(named);
  Endpoint ep;
  if (!url) {
    if (opts.password_file) {
      return make_error(EINVAL, "--password-file needs a server given by --redis or REDISFS_URL "
                                "(the embedded default server has no password)");
    }
    if (const char* tls = _first_tls_option(opts)) {
      return make_error(EINVAL, std::string(tls) + " needs a server given by --redis, --sentinel or REDISFS_URL "
                                                   "(the embedded default server is a local socket without TLS)");
    }
    std::string dir = opts.data_dir.empty() ? default_data_dir() : opts.data_dir;
    TRY_ASSIGN(ep.embedded, EmbeddedServer::start_or_attach(dir));
    ep.url = ep.embedded->url();
    ep.url.timeout = timeout;
    return ep;
  }
  auto parsed = parse_redis_url(*url);
  if (!parsed.ok()) {
    return make_error(parsed.code(), std::string(source) + ": " + parsed.error().message);
  }
  if (!opts.data_dir.empty()) {
    return make_error(EINVAL, "--data-dir names the embedded server's directory, but " + std::string(source) +
                                  " names a server: give one of them");
  }
  ep.url = std::move(parsed).value();
  ep.url.timeout = timeout;
  if (auto pw = _env("REDISFS_PASSWORD")) {
    ep.url.password = *pw;
  }
  if (opts.password_file) {
    TRY_ASSIGN(ep.url.password, _read_password_file(*opts.password_file));
  }
  if (ep.url.is_sentinel()) {
    ep.url.sentinel_user = _env("REDISFS_SENTINEL_USER").value_or("");
    ep.url.sentinel_password = _env("REDISFS_SENTINEL_PASSWORD").value_or("");
  }
  TRY(_apply_tls(opts, ep.url));
  return ep;
}

// Where the password of a URL or a --sentinel spec is: [first, last), or
// an empty range. The credentials end at the last '@' before the path or
// query, as parse_redis_url reads them.
static std::pair<std::size_t, std::size_t> _password_span(std::string_view value) {
  std::size_t start = value.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  std::string_view rest = value.substr(start);
  std::string_view head = rest.substr(0, rest.find_first_of("/?"));
  std::size_t at = head.rfind('@');
  std::size_t colon = head.find(':');
  if (at == std::string_view::npos || colon == std::string_view::npos || colon > at) {
    return {0, 0};
  }
  return {start + colon + 1, start + at};
}

static void _scrub(char* value) {
  auto [first, last] = _password_span(value);
  std::memset(value + first, '*', last - first);
}

// The redis=URL options of a -o list (what an fstab line gives redisfs).
static void _scrub_mount_options(char* list) {
  const std::string_view all = list;
  std::size_t begin = 0;
  for (;;) {
    std::size_t comma = all.find(',', begin);
    std::string_view opt = all.substr(begin, comma == std::string_view::npos ? comma : comma - begin);
    if (opt.starts_with("redis=")) {
      auto [first, last] = _password_span(opt.substr(6));
      std::memset(list + begin + 6 + first, '*', last - first);
    }
    if (comma == std::string_view::npos) {
      return;
    }
    begin = comma + 1;
  }
}

void scrub_password_in_argv(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      return;
    }
    if (arg == "-o" && i + 1 < argc) {
      _scrub_mount_options(argv[++i]);
      continue;
    }
    if (arg.starts_with("-o") && !arg.starts_with("--")) {
      _scrub_mount_options(argv[i] + 2);
      continue;
    }
    for (std::string_view option : {"--redis", "--sentinel"}) {
      if (arg == option && i + 1 < argc) {
        _scrub(argv[++i]);
      } else if (arg.starts_with(option) && arg.size() > option.size() && arg[option.size()] == '=') {
        _scrub(argv[i] + option.size() + 1);
      }
    }
  }
}

ArgvCopy::ArgvCopy(int argc, const char* const* argv) : m_args(argv, argv + argc) {
  for (const std::string& a : m_args) {
    m_ptrs.push_back(a.c_str());
  }
}

std::string ArgvCopy::empty_argument() const {
  for (std::size_t i = 1; i < m_args.size(); ++i) {
    const std::string& a = m_args[i];
    if (a.size() > 2 && a.starts_with("--") && a.back() == '=') {
      return "option '" + a.substr(0, a.size() - 1) + "' has an empty value";
    }
    if (!a.empty()) {
      continue;
    }
    const std::string& before = m_args[i - 1];
    if (before.size() > 1 && before[0] == '-' && before.find('=') == std::string::npos) {
      return "option '" + before + "' has an empty value";
    }
    return "argument " + std::to_string(i) + " is empty";
  }
  return {};
}

}  // namespace redisfs
