// DirNames: see dir_names.hpp for what a list promises and when it goes.
#include "store/dir_names.hpp"

#include <algorithm>

namespace redisfs {

DirNames::DirNames(double ttl_seconds, std::size_t max_names)
    : m_ttl(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(ttl_seconds, 0.0)))),
      m_max(std::max<std::size_t>(max_names, 1)) {}

void DirNames::start(Ino dir, std::uint64_t gen, Clock::time_point sent) {
  if (!enabled()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it != m_lists.end()) {
    m_total -= it->second.names.size();
    m_lists.erase(it);
  }
  if (!has_room(sent)) {
    return;  // full of lists still in use: those go on
  }
  m_lists[dir] = List{{}, gen, sent};
}

void DirNames::changed(Ino dir, std::uint64_t gen, Clock::time_point sent, std::string_view name, bool added) {
  if (!enabled()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it == m_lists.end()) {
    return;
  }
  List& list = it->second;
  if (gen != list.gen + 1 || (added && !has_room(sent))) {
    m_total -= list.names.size();
    m_lists.erase(it);
    return;
  }
  if (added) {
    m_total += list.names.emplace(name).second ? 1 : 0;
  } else {
    m_total -= list.names.erase(std::string(name));
  }
  // The script ran after both `sent` and the previous change.
  list.gen = gen;
  list.as_of = std::max(list.as_of, sent);
}

void DirNames::adding(Ino dir, std::string_view name) {
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it == m_lists.end()) {
    return;
  }
  if (!has_room(Clock::now())) {
    it = m_lists.find(dir);  // (has_room may have dropped it)
    if (it != m_lists.end()) {
      m_total -= it->second.names.size();
      m_lists.erase(it);
    }
    return;
  }
  it = m_lists.find(dir);
  if (it != m_lists.end()) {
    m_total += it->second.names.emplace(name).second ? 1 : 0;
  }
}

// Room for one more name or list, once the lists too old to answer for
// anything (no change of their own for a ttl) are gone. Called locked.
bool DirNames::has_room(Clock::time_point now) {
  if (m_lists.size() + m_total < m_max) {
    return true;
  }
  std::erase_if(m_lists, [&](const auto& kv) {
    if (now - kv.second.as_of < m_ttl) {
      return false;
    }
    m_total -= kv.second.names.size();
    return true;
  });
  return m_lists.size() + m_total < m_max;
}

void DirNames::forget(Ino dir) {
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it != m_lists.end()) {
    m_total -= it->second.names.size();
    m_lists.erase(it);
  }
}

std::optional<double> DirNames::absent(Ino dir, std::string_view name, Clock::time_point now) {
  if (!enabled()) {
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it == m_lists.end()) {
    return std::nullopt;
  }
  const List& list = it->second;
  const Clock::duration age = now - list.as_of;
  if (age >= m_ttl || age < Clock::duration::zero() || list.names.contains(std::string(name))) {
    return std::nullopt;
  }
  return std::chrono::duration<double>(age).count();
}

}  // namespace redisfs
