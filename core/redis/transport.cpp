// Sockets with deadlines, and TLS through OpenSSL (transport.hpp).
#include "redis/transport.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>

#include "util/text.hpp"

namespace redisfs {

namespace {

int _ms_left(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) {
    return 0;
  }
  return left > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left);
}

std::string _openssl_error() {
  unsigned long e = ERR_get_error();
  std::string out;
  while (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    // Keep the reason only: "error:0A000086:SSL routines::certificate verify failed"
    std::string_view s(buf);
    auto colon = s.rfind(':');
    if (!out.empty()) {
      out += "; ";
    }
    out += std::string(colon == std::string_view::npos ? s : s.substr(colon + 1));
    e = ERR_get_error();
  }
  return out.empty() ? "unknown TLS error" : out;
}

// One SSL_CTX per distinct set of certificate files, made once per process
// and kept for its life: the map is never destroyed, so that no connection
// a thread still holds at exit outlives its context (and LeakSanitizer sees
// the contexts held, not lost, once static destructors have run).
Result<SSL_CTX*> _tls_context(const TlsConfig& tls) {
  static std::mutex mutex;
  static auto& contexts = *new std::map<std::string, SSL_CTX*>;
  std::string id = tls.ca_cert + '\n' + tls.ca_cert_dir + '\n' + tls.cert + '\n' + tls.key;
  std::lock_guard lock(mutex);
  if (auto it = contexts.find(id); it != contexts.end()) {
    return it->second;
  }
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    return make_error(ENOMEM, "TLS: cannot make a context: " + _openssl_error());
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  auto fail = [&](const std::string& what) {
    std::string msg = "TLS: " + what + ": " + _openssl_error();
    SSL_CTX_free(ctx);
    return make_error(EINVAL, msg);
  };
  if (!tls.ca_cert.empty() || !tls.ca_cert_dir.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, tls.ca_cert.empty() ? nullptr : tls.ca_cert.c_str(),
                                      tls.ca_cert_dir.empty() ? nullptr : tls.ca_cert_dir.c_str()) != 1) {
      return fail("cannot load the CA certificates (" + (tls.ca_cert.empty() ? tls.ca_cert_dir : tls.ca_cert) + ")");
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return fail("cannot load the system's CA certificates");
  }
  if (!tls.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert.c_str()) != 1) {
      return fail("cannot load the client certificate " + tls.cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("cannot load the client key " + tls.key);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return fail("the client key " + tls.key + " does not match " + tls.cert);
    }
  }
  contexts.emplace(id, ctx);
  return ctx;
}

bool _is_ip_address(const std::string& s) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

Result<int> _connect_fd(const sockaddr* addr, socklen_t len, Deadline deadline, const std::string& peer) {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    return make_error(e, "cannot make a socket for " + peer + ": " + errno_text(e));
  }
  if (::connect(fd, addr, len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      int e = errno;
      ::close(fd);
      return make_error(e, "cannot connect to " + peer + ": " + errno_text(e));
    }
    pollfd p{fd, POLLOUT, 0};
    int n = 0;
    do {
      n = ::poll(&p, 1, _ms_left(deadline));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      ::close(fd);
      return make_error(ETIMEDOUT, "cannot connect to " + peer + ": timed out");
    }
    int err = 0;
    socklen_t elen = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) {
      ::close(fd);
      return make_error(err, "cannot connect to " + peer + ": " + errno_text(err));
    }
  }
  return fd;
}

}  // namespace

struct Transport::Tls {
  SSL* ssl = nullptr;
  ~Tls() {
    if (ssl != nullptr) {
      SSL_free(ssl);
    }
  }
};

Transport::Transport(int fd, std::string peer) : m_fd(fd), m_peer(std::move(peer)) {}

void Transport::abort_on_close() {
  if (m_fd >= 0) {
    linger now{1, 0};
    (void)::setsockopt(m_fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);  // (a unix socket: nothing waits anyway)
  }
}

Transport::~Transport() {
  m_tls.reset();
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Result<std::unique_ptr<Transport>> Transport::connect_unix(const std::string& path, Deadline deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return make_error(ENAMETOOLONG, "unix socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  TRY_ASSIGN(int fd, _connect_fd(reinterpret_cast<sockaddr*>(&addr), sizeof addr, deadline, path));
  return std::unique_ptr<Transport>(new Transport(fd, path));
}

Result<std::unique_ptr<Transport>> Transport::connect_tcp(const std::string& host, int port, const TlsConfig& tls,
                                                          Deadline deadline) {
  std::string peer = HostPort{host, port}.display();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    return make_error(EHOSTUNREACH, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  Error last = make_error(EHOSTUNREACH, "cannot connect to " + peer + ": no address");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    auto fd = _connect_fd(ai->ai_addr, ai->ai_addrlen, deadline, peer);
    if (!fd) {
      last = std::move(fd).error();
      continue;
    }
    int one = 1;
    ::setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(*fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    std::unique_ptr<Transport> t(new Transport(*fd, peer));
    if (tls.enabled) {
      TRY(t->start_tls(tls, host, deadline));
    }
    return t;
  }
  return last;
}

Status Transport::wait(bool for_write, Deadline deadline, const char* what) {
  pollfd p{m_fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  for (;;) {
    int n = ::poll(&p, 1, _ms_left(deadline));
    if (n > 0) {
      return {};
    }
    if (n == 0) {
      return make_error(ETIMEDOUT, std::string(what) + " " + m_peer + " timed out");
    }
    if (errno != EINTR) {
      int e = errno;
      return make_error(e, std::string(what) + " " + m_peer + ": " + errno_text(e));
    }
  }
}

Status Transport::start_tls(const TlsConfig& tls, const std::string& host, Deadline deadline) {
  TRY_ASSIGN(SSL_CTX * ctx, _tls_context(tls));
  ERR_clear_error();
  m_tls = std::make_unique<Tls>();
  m_tls->ssl = SSL_new(ctx);
  if (m_tls->ssl == nullptr || SSL_set_fd(m_tls->ssl, m_fd) != 1) {
    return make_error(ENOMEM, "TLS: " + _openssl_error());
  }
  const std::string& name = tls.server_name.empty() ? host : tls.server_name;
  if (_is_ip_address(name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(m_tls->ssl), name.c_str());
  } else {
    SSL_set_tlsext_host_name(m_tls->ssl, name.c_str());
    SSL_set1_host(m_tls->ssl, name.c_str());
  }
  for (;;) {
    ERR_clear_error();
    int rc = SSL_connect(m_tls->ssl);
    if (rc == 1) {
      return {};
    }
    int err = SSL_get_error(m_tls->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      TRY(wait(err == SSL_ERROR_WANT_WRITE, deadline, "TLS handshake with"));
      continue;
    }
    long verify = SSL_get_verify_result(m_tls->ssl);
    if (verify != X509_V_OK) {
      return make_error(EACCES, "TLS: the certificate of " + m_peer + " is not trusted for " + name + ": " +
                                    X509_verify_cert_error_string(verify));
    }
    std::string why = _openssl_error();
    if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
      why = "the server closed the connection during the handshake (is it a TLS port? does it want a client "
            "certificate?)";
    }
    return make_error(ECONNREFUSED, "TLS handshake with " + m_peer + " failed: " + why);
  }
}

Status Transport::write_all(const char* data, std::size_t n, Deadline deadline) {
  const std::string_view whole(data, n);
  return write_all(std::span<const std::string_view>(&whole, 1), deadline);
}

Status Transport::tls_write_all(std::string_view data, Deadline deadline) {
  std::size_t done = 0;
  while (done < data.size()) {
    ERR_clear_error();
    int len = static_cast<int>(std::min<std::size_t>(data.size() - done, 1 << 30));
    int rc = SSL_write(m_tls->ssl, data.data() + done, len);
    if (rc > 0) {
      done += static_cast<std::size_t>(rc);
      continue;
    }
    int err = SSL_get_error(m_tls->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      TRY(wait(err == SSL_ERROR_WANT_WRITE, deadline, "writing to"));
      continue;
    }
    return make_error(EPIPE, "writing to " + m_peer + ": " +
                                 (err == SSL_ERROR_SYSCALL ? errno_text(errno) : _openssl_error()));
  }
  return {};
}

Status Transport::write_all(std::span<const std::string_view> pieces, Deadline deadline) {
  if (m_tls) {
    for (std::string_view p : pieces) {  // (OpenSSL copies into its records anyway)
      TRY(tls_write_all(p, deadline));
    }
    return {};
  }
  // (no allocation: every round trip comes through here)
  std::size_t at = 0;    // the first piece not sent whole
  std::size_t skip = 0;  // ...and what of it was
  while (at < pieces.size()) {
    iovec iov[64];
    std::size_t k = 0;
    for (std::size_t i = at; i < pieces.size() && k < std::size(iov); ++i) {
      std::string_view p = i == at ? pieces[i].substr(skip) : pieces[i];
      if (!p.empty()) {
        iov[k++] = iovec{const_cast<char*>(p.data()), p.size()};
      }
    }
    if (k == 0) {
      break;  // only empty pieces were left
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = k;
    ssize_t rc = ::sendmsg(m_fd, &msg, MSG_NOSIGNAL);
    if (rc >= 0) {
      m_awaiting = true;
      auto sent = static_cast<std::size_t>(rc);
      while (at < pieces.size() && sent >= pieces[at].size() - skip) {
        sent -= pieces[at].size() - skip;
        skip = 0;
        ++at;
      }
      skip += sent;
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      TRY(wait(true, deadline, "writing to"));
      continue;
    }
    if (errno != EINTR) {
      int e = errno;
      return make_error(e, "writing to " + m_peer + ": " + errno_text(e));
    }
  }
  return {};
}

bool Transport::peer_gone() const {
  pollfd p{m_fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) {
    return false;  // nothing to read, no hang-up: alive as far as we can tell
  }
  // (POLLRDHUP: the server shut its side; Redis never half-closes a live
  // connection. Seen even behind a TLS close_notify not read yet.)
  if ((p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0) {
    return true;
  }
  // Readable: the end of the stream (0), a reset, or bytes (a TLS session
  // ticket, say, which the next read takes).
  char byte = 0;
  ssize_t got = ::recv(m_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

Result<std::size_t> Transport::read_some(char* buf, std::size_t n, Deadline deadline) {
  for (;;) {
    if (m_tls) {
      ERR_clear_error();
      int rc = SSL_read(m_tls->ssl, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
      if (rc > 0) {
        return static_cast<std::size_t>(rc);
      }
      int err = SSL_get_error(m_tls->ssl, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        TRY(wait(err == SSL_ERROR_WANT_WRITE, deadline, "waiting for a reply from"));
        continue;
      }
      if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && rc == 0)) {
        return make_error(ECONNRESET, m_peer + " closed the connection");
      }
      return make_error(ECONNRESET, "reading from " + m_peer + ": " +
                                        (err == SSL_ERROR_SYSCALL ? errno_text(errno) : _openssl_error()));
    }
    if (m_awaiting) {
      TRY(wait(false, deadline, "waiting for a reply from"));
      m_awaiting = false;
    }
    ssize_t rc = ::recv(m_fd, buf, n, 0);
    if (rc > 0) {
      return static_cast<std::size_t>(rc);
    }
    if (rc == 0) {
      return make_error(ECONNRESET, m_peer + " closed the connection");
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      TRY(wait(false, deadline, "waiting for a reply from"));
      continue;
    }
    if (errno != EINTR) {
      int e = errno;
      return make_error(e, "reading from " + m_peer + ": " + errno_text(e));
    }
  }
}

}  // namespace redisfs
