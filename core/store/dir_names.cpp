// DirNames: see dir_names.hpp for what a list promises and when it goes.
#include "store/dir_names.hpp"

#include <algorithm>

#include "util/older_half.hpp"

namespace redisfs {

DirNames::DirNames(double ttl_seconds, std::size_t max_names)
    : m_ttl(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(ttl_seconds, 0.0)))),
      m_max(std::max<std::size_t>(max_names, 1)) {}

void DirNames::start(Ino dir, std::uint64_t gen, Clock::time_point sent) { known(dir, gen, sent, {}); }

void DirNames::known(Ino dir, std::uint64_t gen, Clock::time_point sent, const std::vector<Entry>& names) {
  if (!enabled()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it != m_lists.end()) {
    m_total -= it->second.names.size();
    m_lists.erase(it);
  }
  if (!has_room(sent) || m_lists.size() + m_total + names.size() >= m_max) {
    return;
  }
  List& list = m_lists[dir];
  list.gen = gen;
  list.as_of = sent;
  for (const Entry& e : names) {
    m_total += list.names.insert_or_assign(e.name, e.ino).second ? 1 : 0;
  }
}

void DirNames::added(Ino dir, std::uint64_t gen, Clock::time_point sent, std::string_view name, Ino ino) {
  changed(dir, gen, sent, name, ino);
}

void DirNames::removed(Ino dir, std::uint64_t gen, Clock::time_point sent, std::string_view name) {
  changed(dir, gen, sent, name, 0);
}

void DirNames::changed(Ino dir, std::uint64_t gen, Clock::time_point sent, std::string_view name, Ino ino) {
  const bool added = ino != 0;
  if (!enabled()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it == m_lists.end()) {
    return;
  }
  if (gen != it->second.gen + 1 || (added && !has_room(sent))) {
    forget_locked(dir);
    return;
  }
  it = m_lists.find(dir);  // (has_room may have dropped it to make room)
  if (it == m_lists.end()) {
    return;
  }
  List& list = it->second;
  if (added) {
    auto [at, inserted] = list.names.try_emplace(std::string(name), ino);
    at->second = ino;
    m_total += inserted ? 1 : 0;
  } else {
    m_total -= list.names.erase(std::string(name));
  }
  // The script ran after both `sent` and the previous change.
  list.gen = gen;
  list.as_of = std::max(list.as_of, sent);
}

void DirNames::adding(Ino dir, std::string_view name, Ino ino) {
  std::lock_guard lock(m_mutex);
  auto it = m_lists.find(dir);
  if (it == m_lists.end()) {
    return;
  }
  if (!has_room(Clock::now())) {
    forget_locked(dir);
    return;
  }
  it = m_lists.find(dir);  // (has_room may have dropped it to make room)
  if (it != m_lists.end()) {
    auto [at, inserted] = it->second.names.try_emplace(std::string(name), ino);
    at->second = ino;
    m_total += inserted ? 1 : 0;
  }
}

// Room for one more name or list, once the lists too old to answer for
// anything (no change of their own for a ttl) are gone, and then, if that
// is not enough, the older half of the others (by their last change: a
// writeback mount's hour-long ttl would otherwise keep an old tree's lists
// and start none for the one it works on now). Called locked.
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
  if (m_lists.size() + m_total >= m_max) {
    drop_older_half(
        m_lists, [](const List& l) { return l.as_of; }, [](const List&) { return true; },
        [&](const List& l) { m_total -= l.names.size(); });
  }
  return m_lists.size() + m_total < m_max;
}

void DirNames::forget(Ino dir) {
  std::lock_guard lock(m_mutex);
  forget_locked(dir);
}

void DirNames::forget_locked(Ino dir) {
  auto it = m_lists.find(dir);
  if (it != m_lists.end()) {
    m_total -= it->second.names.size();
    m_lists.erase(it);
  }
}

const DirNames::List* DirNames::fresh(Ino dir, Clock::time_point now) const {
  auto it = m_lists.find(dir);
  if (it == m_lists.end()) {
    return nullptr;
  }
  const Clock::duration age = now - it->second.as_of;
  return age >= m_ttl || age < Clock::duration::zero() ? nullptr : &it->second;
}

std::optional<double> DirNames::absent(Ino dir, std::string_view name, Clock::time_point now) {
  if (!enabled()) {
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  const List* list = fresh(dir, now);
  if (list == nullptr || list->names.contains(std::string(name))) {
    return std::nullopt;
  }
  return std::chrono::duration<double>(now - list->as_of).count();
}

std::optional<std::vector<DirNames::Entry>> DirNames::entries(Ino dir, std::size_t below, Clock::time_point now) {
  if (!enabled()) {
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  const List* list = fresh(dir, now);
  if (list == nullptr || list->names.size() >= below) {
    return std::nullopt;
  }
  std::vector<Entry> out;
  out.reserve(list->names.size());
  for (const auto& [name, ino] : list->names) {
    out.push_back({name, ino});
  }
  return out;
}

std::size_t DirNames::size() {
  std::lock_guard lock(m_mutex);
  return m_total;
}

}  // namespace redisfs
