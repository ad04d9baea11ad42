// sd_notify's datagram (see sd_notify.hpp).
#include "sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "log.hpp"
#include "util/text.hpp"

namespace redisfs {

static void _notify(std::string_view message) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@')) {
    return;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) {
    log_warning("NOTIFY_SOCKET is too long; systemd is not told the mount is ready");
    return;
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') {
    addr.sun_path[0] = '\0';  // an abstract socket
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return;
  }
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), addr_len) < 0) {
    log_warning("cannot notify systemd on " + std::string(path) + ": " + errno_text(errno));
  }
  ::close(fd);
}

void notify_ready() { _notify("READY=1"); }
void notify_stopping() { _notify("STOPPING=1"); }

}  // namespace redisfs
