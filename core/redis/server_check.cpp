// The server guards (see server_check.hpp): INFO fields, read once.
#include "redis/server_check.hpp"

#include <charconv>

namespace redisfs {

static Result<std::string> _info(Connection& c, std::string_view section, std::string_view at) {
  auto r = c.keyless_at(at, {"INFO", section});
  if (!r.ok()) {
    return make_error(r.code(), "cannot check the Redis server (INFO " + std::string(section) +
                                    "): " + r.error().message);
  }
  return std::string(r->view().str());
}

static void _parse_version(ServerInfo& info) {
  std::string_view v = info.version;
  auto dot = v.find('.');
  std::string_view major = v.substr(0, dot);
  std::from_chars(major.data(), major.data() + major.size(), info.major);
  if (dot != std::string_view::npos) {
    std::string_view rest = v.substr(dot + 1);
    std::from_chars(rest.data(), rest.data() + rest.size(), info.minor);
  }
}

Result<ServerInfo> server_info(Connection& c, std::string_view at) {
  ServerInfo info;
  TRY_ASSIGN(std::string server, _info(c, "server", at));
  TRY_ASSIGN(std::string memory, _info(c, "memory", at));
  TRY_ASSIGN(std::string persistence, _info(c, "persistence", at));
  info.version = std::string(info_field(server, "redis_version").value_or(""));
  _parse_version(info);
  info.maxmemory_policy = std::string(info_field(memory, "maxmemory_policy").value_or("noeviction"));
  info.aof_enabled = info_field(persistence, "aof_enabled").value_or("0") == "1";
  auto r = c.keyless_at(at, {"CONFIG", "GET", "save"});
  if (r.ok() && r->view().is_array() && r->view().size() == 2) {
    info.save = std::string(r->view()[1].str());
  }
  return info;
}

Result<std::string> check_eviction(const ServerInfo& info, bool writes, bool allow_eviction,
                                   std::string_view refusing) {
  if (info.maxmemory_policy == "noeviction") {
    return std::string();
  }
  if (writes && !allow_eviction) {
    return make_error(EINVAL, std::string(refusing) + ": the server's maxmemory-policy is " + info.maxmemory_policy +
                                  ", which can evict file blocks; set it to noeviction "
                                  "(or pass --allow-evicting-server to accept data loss)");
  }
  return "the server's maxmemory-policy is " + info.maxmemory_policy +
         ": Redis may evict keys of this filesystem when memory runs short";
}

Status check_version(const ServerInfo& info) {
  if (info.major < 6 || (info.major == 6 && info.minor < 2)) {
    std::string v = info.version.empty() ? "unknown" : info.version;
    return make_error(ENOTSUP, "the Redis server is version " + v +
                                   "; redisfs needs 6.2 or newer (COPY, scripts replicated by effects)");
  }
  return {};
}

Result<std::vector<std::string>> check_server(Connection& c, bool read_write, bool allow_eviction,
                                              std::string_view at) {
  TRY_ASSIGN(ServerInfo info, server_info(c, at));
  std::vector<std::string> warnings;
  TRY(check_version(info));
  TRY_ASSIGN(std::string evicting, check_eviction(info, read_write, allow_eviction, "refusing a read-write mount"));
  if (!evicting.empty()) {
    warnings.push_back(std::move(evicting));
  }
  if (!info.aof_enabled && info.save && info.save->empty()) {
    warnings.push_back("the Redis server has no persistence (no AOF, no RDB snapshots): "
                       "a server restart loses the filesystem");
  }
  return warnings;
}

}  // namespace redisfs
