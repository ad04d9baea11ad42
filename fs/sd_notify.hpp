// systemd's readiness protocol (sd_notify(3)) without libsystemd: one
// datagram to $NOTIFY_SOCKET. Under a Type=notify unit (contrib/systemd)
// the service is "started" once the mount is ready, not when the process
// is; outside systemd (no NOTIFY_SOCKET) these do nothing.
#pragma once

namespace redisfs {

// "READY=1": the mount is up and served.
void notify_ready();
// "STOPPING=1": the mount is going away.
void notify_stopping();

}  // namespace redisfs
