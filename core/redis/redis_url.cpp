// Parsing of the Redis URL forms listed in redis_url.hpp.
#include "redis/redis_url.hpp"

#include <cctype>
#include <charconv>

#include "util/text.hpp"

namespace redisfs {

// A port or a database: parse_u64's whole decimal number (no sign, no
// space), from `lo` to `hi`.
static bool _parse_int(std::string_view s, int& out, int lo, int hi) {
  std::uint64_t v = 0;
  if (!parse_u64(s, v) || v < static_cast<std::uint64_t>(lo) || v > static_cast<std::uint64_t>(hi)) {
    return false;
  }
  out = static_cast<int>(v);
  return true;
}

static Result<std::string> _percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      int v = 0;
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return make_error(EINVAL, "bad percent-encoding in Redis URL");
      }
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec != std::errc() || p != s.data() + i + 3) {
        return make_error(EINVAL, "bad percent-encoding in Redis URL");
      }
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

static std::string _bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::string HostPort::display() const { return _bracketed(host) + ':' + std::to_string(port); }

std::string RedisUrl::display() const {
  std::string cred;
  if (!user.empty() || !password.empty()) {
    cred = user;
    if (!password.empty()) {
      cred += ":***";
    }
    cred += '@';
  }
  if (is_unix) {
    std::string s = "unix://" + cred + path;
    if (db != 0) {
      s += "?db=" + std::to_string(db);
    }
    return s;
  }
  if (is_sentinel()) {
    std::string s = tls.enabled ? "rediss-sentinel://" : "redis-sentinel://";
    s += cred;
    for (std::size_t i = 0; i < sentinels.size(); ++i) {
      s += (i > 0 ? "," : "") + sentinels[i].display();
    }
    s += '/' + master_name;
    if (db != 0) {
      s += "?db=" + std::to_string(db);
    }
    return s;
  }
  std::string s = tls.enabled ? "rediss://" : "redis://";
  s += cred + _bracketed(host) + ':' + std::to_string(port);
  if (db != 0) {
    s += '/' + std::to_string(db);
  }
  return s;
}

namespace {

constexpr std::string_view k_forms =
    "redis://[user[:password]@]host[:port][/db], rediss://..., unix://[user@]/path.sock[?db=N] or "
    "redis-sentinel://[user@]host:port[,host:port...]/MASTER[?db=N]";

Error _bad(const std::string& why) {
  // Never echo the URL itself: it may carry a password.
  return make_error(EINVAL, "invalid Redis URL: " + why + " (expected " + std::string(k_forms) + ")");
}

// An '@' where no host, port, database or master name has one: what
// follows a '/' or '?' in a password that is not percent-encoded.
Error _misplaced_at() {
  return _bad(
      "an '@' after the host; a user name or password holding '/', '?', '@' or '%' must be "
      "percent-encoded (%2F, %3F, %40, %25)");
}

// "user[:password]@" at the front of `rest`, if any; `rest` keeps what
// follows. `tcp`: no host, port, database or master name has an '@' (a
// unix socket's path may).
Status _take_credentials(std::string_view& rest, std::string_view stop_chars, RedisUrl& u, bool tcp) {
  // The credentials end at the last '@' before the path/query starts
  // (a password may contain '@' only percent-encoded, but be lenient).
  std::string_view head = rest.substr(0, rest.find_first_of(stop_chars));
  auto at = head.rfind('@');
  if (at == std::string_view::npos) {
    if (tcp && rest.find('@') != std::string_view::npos) {
      return _misplaced_at();
    }
    return {};
  }
  std::string_view cred = head.substr(0, at);
  rest.remove_prefix(at + 1);
  if (tcp && rest.find('@') != std::string_view::npos) {
    return _misplaced_at();
  }
  auto colon = cred.find(':');
  TRY_ASSIGN(u.user, _percent_decode(cred.substr(0, colon)));
  if (colon != std::string_view::npos) {
    TRY_ASSIGN(u.password, _percent_decode(cred.substr(colon + 1)));
  }
  return {};
}

Result<HostPort> _host_port(std::string_view authority, int default_port) {
  HostPort hp;
  hp.port = default_port;
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return _bad("unterminated IPv6 address");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return _bad("junk after IPv6 address");
      }
      port = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) {
        return _bad("empty port");
      }
    }
  }
  if (host.empty()) {
    return _bad("missing host");
  }
  hp.host = std::string(host);
  if (!port.empty() && !_parse_int(port, hp.port, 1, 65535)) {
    return _bad("the port must be a number from 1 to 65535");
  }
  return hp;
}

Status _db_query(std::string_view query, RedisUrl& u) {
  if (!query.starts_with("db=") || !_parse_int(query.substr(3), u.db, 0, 1 << 20)) {
    return _bad("the only query parameter is db=N");
  }
  return {};
}

Result<RedisUrl> _parse_unix(std::string_view rest) {
  RedisUrl u;
  u.is_unix = true;
  TRY(_take_credentials(rest, "/?", u, false));
  auto q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  if (path.empty() || path[0] != '/') {
    return _bad("the socket path must be absolute");
  }
  u.path = std::string(path);
  if (q != std::string_view::npos) {
    TRY(_db_query(rest.substr(q + 1), u));
  }
  return u;
}

Result<RedisUrl> _parse_sentinel(std::string_view rest, bool tls) {
  RedisUrl u;
  u.tls.enabled = tls;
  TRY(_take_credentials(rest, "/?", u, true));
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return _bad("a sentinel URL names its master: .../MASTERNAME");
  }
  std::string_view hosts = rest.substr(0, slash);
  std::string_view tail = rest.substr(slash + 1);
  auto q = tail.find('?');
  std::string_view name = tail.substr(0, q);
  if (name.empty() || name.find('/') != std::string_view::npos) {
    return _bad("a sentinel URL names its master: .../MASTERNAME");
  }
  TRY_ASSIGN(u.master_name, _percent_decode(name));
  if (q != std::string_view::npos) {
    TRY(_db_query(tail.substr(q + 1), u));
  }
  for (;;) {
    auto comma = hosts.find(',');
    if (hosts.substr(0, comma).empty()) {
      return _bad("a sentinel URL lists sentinels as host:port[,host:port...]");
    }
    TRY_ASSIGN(HostPort hp, _host_port(hosts.substr(0, comma), 26379));
    u.sentinels.push_back(std::move(hp));
    if (comma == std::string_view::npos) {
      break;
    }
    hosts.remove_prefix(comma + 1);
  }
  return u;
}

Result<RedisUrl> _parse_tcp(std::string_view rest, bool tls) {
  RedisUrl u;
  u.tls.enabled = tls;
  TRY(_take_credentials(rest, "/?", u, true));
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !_parse_int(db, u.db, 0, 1 << 20)) {
      return _bad("the database must be a number");
    }
  }
  if (authority.find(',') != std::string_view::npos) {
    return _bad("several hosts are a sentinel URL (redis-sentinel://)");
  }
  TRY_ASSIGN(HostPort hp, _host_port(authority, 6379));
  u.host = std::move(hp.host);
  u.port = hp.port;
  return u;
}

}  // namespace

Result<RedisUrl> parse_redis_url(std::string_view url) {
  if (url.starts_with("unix://")) {
    return _parse_unix(url.substr(7));
  }
  if (url.starts_with("redis://")) {
    return _parse_tcp(url.substr(8), false);
  }
  if (url.starts_with("rediss://")) {
    return _parse_tcp(url.substr(9), true);
  }
  if (url.starts_with("redis-sentinel://")) {
    return _parse_sentinel(url.substr(17), false);
  }
  if (url.starts_with("rediss-sentinel://")) {
    return _parse_sentinel(url.substr(18), true);
  }
  return _bad("unknown scheme");
}

}  // namespace redisfs
