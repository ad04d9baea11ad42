// Per-mount state: lookup counts and orphans (see session.hpp).
#include "session.hpp"

#include <string>
#include <vector>

#include "log.hpp"

namespace redisfs {

void Session::add_lookup(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  ++m_lookups[ino];
}

bool Session::forget(Ino ino, std::uint64_t n) {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_lookups.find(ino);
  if (it != m_lookups.end()) {
    if (it->second > n) {
      it->second -= n;
      return false;
    }
    m_lookups.erase(it);
  }
  return m_orphans.erase(ino) > 0;
}

bool Session::orphaned(Ino ino) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_lookups.contains(ino)) {
    m_orphans.insert(ino);
    return false;
  }
  return true;
}

void Session::purge(Ino ino) {
  Status st = m_store.purge(ino);
  if (!st) {
    log_op_error("purge", ino, {}, st.error());
  } else {
    log_debug("purged orphan inode " + std::to_string(ino));
  }
}

void Session::purge_orphans() {
  std::vector<Ino> left;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    left.assign(m_orphans.begin(), m_orphans.end());
    m_orphans.clear();
  }
  for (Ino ino : left) {
    purge(ino);
  }
}

std::size_t Session::known_inodes() {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_lookups.size();
}

Session& session_of(fuse_req_t req) { return *static_cast<Session*>(fuse_req_userdata(req)); }

Caller caller_of(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{static_cast<std::uint32_t>(ctx->uid), static_cast<std::uint32_t>(ctx->gid)};
}

Status check_name(std::string_view name) {
  if (name.size() > k_name_max) {
    return make_error(ENAMETOOLONG, "name longer than " + std::to_string(k_name_max) + " bytes");
  }
  return {};
}

}  // namespace redisfs
