// Store, extended attributes: get, list, set and remove, and whether a
// security.* attribute can exist at all (the SELinux question every ls asks,
// and the file capabilities a write, truncate or chown removes).
#include "store/store.hpp"

#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

// The check is no operation on a file: a connection of the pool, not
// acquire()'s, which would send what waits first (deferred creates, a
// writeback mount's directory changes and unlinks).
Result<bool> Store::security_xattrs_possible() {
  std::int64_t now = now_ns();
  if (now < m_security_checked_until.load()) {
    return m_security_possible.load();
  }
  TRY_ASSIGN(auto c, m_pool.acquire());
  auto r = c->command({"HEXISTS", m_keys.sb(), "security_xattrs"});
  bool possible = !r.ok() || r->view().integer() != 0;
  m_security_possible = possible;
  m_security_checked_until = now + k_security_recheck_ns;
  return possible;
}

Result<std::string> Store::getxattr(Ino ino, std::string_view name) {
  TRY(_check_xattr_name(name));
  // The kernel asks for security.capability before every write, ls -l for
  // security.selinux of every entry: answer from the superblock's flag
  // (rechecked each second) while no file has ever had a security.* one.
  // Then a filesystem without security labels says so for the SELinux one,
  // as filesystems without label support do: ls, find and tar remember
  // EOPNOTSUPP for the whole device and stop asking for every file.
  if (name.starts_with("security.")) {
    TRY_ASSIGN(bool possible, security_xattrs_possible());
    if (!possible) {
      if (name == "security.selinux") {
        return make_error(EOPNOTSUPP, "no security labels on this filesystem");
      }
      return make_error(ENODATA, "no such attribute");
    }
  }
  TRY_ASSIGN(auto c, acquire());
  c->append({"EXISTS", m_keys.inode(ino)});
  c->append({"HGET", m_keys.xattr(ino), name});
  TRY_ASSIGN(auto replies, c->read_all());
  if (replies[0].view().integer() == 0) {
    return make_error(ENOENT, "no inode " + std::to_string(ino));
  }
  if (replies[1].view().is_nil()) {
    return make_error(ENODATA, "no such attribute");
  }
  if (std::string_view value = replies[1].view().str(); value.size() > k_xattr_value_max) {
    // (damage: no setxattr stores one; the kernel would answer E2BIG, and
    // the log would not say why)
    return make_error(EIO, "inode " + std::to_string(ino) + ": the attribute holds " + std::to_string(value.size()) +
                               " bytes, more than an attribute may (64 KiB); fsck --repair removes it");
  }
  return std::string(replies[1].view().str());
}

Result<std::vector<std::string>> Store::listxattr(Ino ino, LeftOut& left_out) {
  TRY_ASSIGN(auto c, acquire());
  c->append({"EXISTS", m_keys.inode(ino)});
  c->append({"HKEYS", m_keys.xattr(ino)});
  TRY_ASSIGN(auto replies, c->read_all());
  if (replies[0].view().integer() == 0) {
    return make_error(ENOENT, "no inode " + std::to_string(ino));
  }
  std::vector<std::string> names;
  ReplyView v = replies[1].view();
  names.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (Status usable = check_xattr_name(v[i].str()); !usable.ok()) {
      left_out.add(v[i].str(), usable.error());
      continue;
    }
    names.emplace_back(v[i].str());
  }
  return names;
}

Status Store::setxattr(Ino ino, std::string_view name, std::string_view value, int flags) {
  TRY(writable());
  TRY(_check_xattr_name(name));
  if (name.size() > k_xattr_name_max) {
    return make_error(ERANGE, "attribute name longer than 255 bytes");
  }
  if (value.size() > k_xattr_value_max) {
    return make_error(E2BIG, "attribute value larger than 64 KiB");
  }
  std::string f = (flags & k_xattr_create) ? "1" : (flags & k_xattr_replace) ? "2" : "0";
  if (m_gathered_count.load() != 0) {
    (void)settle(ino);  // its ctime lands after what waits (a refusal waits for the close)
  }
  TRY_ASSIGN(auto c, acquire());
  TRY(eval_change(*c, lua::xattr_set, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino), m_keys.xattr(ino)},
                  {std::string(name), std::string(value), f}));
  if (name.starts_with("security.")) {
    m_security_checked_until = 0;
  }
  return {};
}

Status Store::removexattr(Ino ino, std::string_view name) {
  TRY(writable());
  TRY(_check_xattr_name(name));
  if (m_gathered_count.load() != 0) {
    (void)settle(ino);  // a refusal waits for the close: removing works on a full server
  }
  TRY_ASSIGN(auto c, acquire());
  TRY(eval_change(*c, lua::xattr_remove, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino), m_keys.xattr(ino)},
                  {std::string(name)}));
  return {};
}

Status Store::drop_capability(Ino ino) {
  TRY_ASSIGN(bool possible, security_xattrs_possible());  // (the common case: no connection taken)
  if (!possible) {
    return {};
  }
  TRY_ASSIGN(auto c, acquire());
  // Not removexattr(): a file being gathered stays so (what waits lands
  // after the capability is gone, the safe order).
  auto r = eval_change(*c, lua::xattr_remove, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino), m_keys.xattr(ino)},
                       {std::string("security.capability")});
  if (!r && r.code() != ENODATA) {
    return r.error();
  }
  return {};
}

}  // namespace redisfs
