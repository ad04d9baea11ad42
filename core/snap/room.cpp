// The server's room for what a tool stages (room.hpp).
#include "snap/room.hpp"

#include <algorithm>

#include "snap/snapshot.hpp"

namespace redisfs {

static constexpr std::uint64_t k_margin_max = std::uint64_t{256} << 20;
static constexpr std::uint64_t k_look_min = std::uint64_t{64} << 10;
static constexpr std::uint64_t k_look_max = std::uint64_t{16} << 20;

ServerMemory ServerMemory::from_info(std::string_view info) {
  ServerMemory m;
  m.used = info_u64(info, "used_memory");
  m.maxmemory = info_u64(info, "maxmemory");
  m.total_system = info_u64(info, "total_system_memory");
  m.evicting = info_field(info, "maxmemory_policy").value_or("noeviction") != "noeviction";
  return m;
}

std::uint64_t ServerMemory::margin() const { return std::min(limit() / 20, k_margin_max); }

std::string ServerMemory::said() const {
  return "used " + human_bytes(used) + " of " +
         (maxmemory != 0 ? "maxmemory " + human_bytes(maxmemory) : "the machine's " + human_bytes(total_system));
}

Result<ServerMemory> server_memory(Connection& c, std::string_view at) {
  auto r = c.keyless_at(at, {"INFO", "memory"});
  if (!r.ok() && r.error().code == EACCES) {
    return ServerMemory{};  // an ACL without INFO: nothing known, no guard
  }
  TRY(r);
  return ServerMemory::from_info(r->view().str());
}

// What to do about it.
static std::string _remedy(const ServerMemory& m) {
  return m.maxmemory != 0 ? "free memory in the server, or raise its maxmemory (CONFIG SET maxmemory)"
                          : "free memory in the server, or set its maxmemory";
}

Status RoomGuard::check(Connection& c) {
  TRY_ASSIGN(ServerMemory m, server_memory(c, m_at));
  m_since = 0;
  if (m.limit() == 0 || m.free() >= m.margin()) {
    const std::uint64_t room = m.limit() == 0 ? k_look_max : (m.free() - m.margin()) / 4;
    m_next = std::clamp(room, k_look_min, k_look_max);
    return {};
  }
  return make_error(ENOSPC, m_what + " stopped: the server is nearly out of memory (" + m.said() + "; the last " +
                                human_bytes(m.margin()) + " are kept for the mounts' writes): " + _remedy(m) +
                                ", then run it again");
}

Status RoomGuard::fits(Connection& c, std::string_view at, std::uint64_t bytes, std::string_view what) {
  TRY_ASSIGN(ServerMemory m, server_memory(c, at));
  if (m.limit() == 0 || m.free() >= m.margin() + bytes) {
    return {};
  }
  return make_error(EAGAIN, "the server has no room for " + std::string(what) + " above the " +
                                human_bytes(m.margin()) + " kept for the mounts' writes (" + m.said() + ")");
}

}  // namespace redisfs
