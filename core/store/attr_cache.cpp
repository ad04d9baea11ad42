// AttrCache: see attr_cache.hpp for the rules. Entries live while a change
// of their inode is in flight or while they hold attributes or a read's
// hint; when the map is full, entries that are neither in flight nor fresh
// go first, then the older half of the idle ones (the cache only saves
// round trips; halving keeps the cost of making room constant an entry,
// and an hour-long ttl's newest entries, a writeback mount's, stay).
#include "store/attr_cache.hpp"

#include <algorithm>

#include "util/older_half.hpp"

namespace redisfs {

AttrCache::AttrCache(double ttl_seconds, std::size_t max_entries)
    : m_ttl(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(ttl_seconds, 0.0)))),
      m_max(std::max<std::size_t>(max_entries, 1)) {}

AttrCache::Change AttrCache::begin(const std::vector<Ino>& inos) {
  Change change;
  if (!enabled()) {
    return change;
  }
  std::lock_guard lock(m_mutex);
  make_room(inos.size());
  for (Ino ino : inos) {
    if (std::any_of(change.m_marks.begin(), change.m_marks.end(), [ino](const auto& m) { return m.ino == ino; })) {
      continue;  // named twice (rename within one directory)
    }
    Entry& e = m_entries[ino];
    e.attr.reset();
    e.accessed.reset();
    e.gen = ++m_gen;
    change.m_marks.push_back({ino, e.gen, e.in_flight == 0});
    ++e.in_flight;
  }
  return change;
}

void AttrCache::make_room(std::size_t more) {
  if (m_entries.size() + more > m_max) {
    Clock::time_point now = Clock::now();
    std::erase_if(m_entries, [&](const auto& kv) { return kv.second.in_flight == 0 && !fresh(kv.second, now); });
    if (m_entries.size() + more > m_max) {
      drop_older_half(
          m_entries, [](const Entry& e) { return std::max(e.read_at, e.accessed_at); },
          [](const Entry& e) { return e.in_flight == 0; }, [](const Entry&) {});
    }
  }
}

AttrCache::Change AttrCache::begin_read(const std::vector<Ino>& inos, Clock::time_point now) {
  Change read;
  if (!enabled() || inos.empty()) {
    return read;
  }
  read.m_sent = now;
  std::lock_guard lock(m_mutex);
  make_room(inos.size());
  for (Ino ino : inos) {
    if (m_entries.size() >= m_max && m_entries.find(ino) == m_entries.end()) {
      break;  // every entry is in flight: nothing more is kept
    }
    Entry& e = m_entries[ino];
    if (e.gen == 0) {
      e.gen = ++m_gen;  // a new entry: a later forget() or begin() changes it
    }
    read.m_marks.push_back({ino, e.gen, e.in_flight == 0});
  }
  return read;
}

void AttrCache::end_read(const Change& read, const std::vector<Attr>& read_attrs) {
  if (read.m_marks.empty()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  auto next = read_attrs.begin();  // they come in the marks' order: one pass
  for (const auto& mark : read.m_marks) {
    auto attr = read_attrs.end();
    if (next != read_attrs.end() && next->ino == mark.ino) {
      attr = next++;
    }
    auto it = m_entries.find(mark.ino);
    if (it == m_entries.end()) {
      continue;  // dropped meanwhile (forget, or room made): its read is not kept
    }
    Entry& e = it->second;
    if (attr != read_attrs.end() && mark.alone && e.in_flight == 0 && e.gen == mark.gen &&
        (!e.attr || e.read_at <= read.m_sent)) {
      e.attr = *attr;
      e.by_read = true;
      e.read_at = read.m_sent;
    } else if (e.in_flight == 0 && !e.attr && !e.accessed) {
      m_entries.erase(it);
    }
  }
}

void AttrCache::end(const Change& change, const std::vector<Attr>& fresh) {
  if (change.m_marks.empty()) {
    return;
  }
  Clock::time_point now = Clock::now();
  std::lock_guard lock(m_mutex);
  for (const auto& mark : change.m_marks) {
    auto it = m_entries.find(mark.ino);
    if (it == m_entries.end()) {
      continue;  // cannot happen: in-flight entries are never dropped
    }
    Entry& e = it->second;
    --e.in_flight;
    auto attr = std::find_if(fresh.begin(), fresh.end(), [&](const Attr& a) { return a.ino == mark.ino; });
    if (attr != fresh.end() && mark.alone && e.gen == mark.gen) {
      e.attr = *attr;
      e.by_read = false;
      e.read_at = now;
    } else if (e.in_flight == 0 && !e.attr && !e.accessed) {
      m_entries.erase(it);
    }
  }
}

std::optional<AttrCache::Hit> AttrCache::get(Ino ino, Clock::time_point now, bool reads_too) {
  if (!enabled()) {
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(ino);
  if (it == m_entries.end() || !it->second.attr || it->second.in_flight != 0 || (it->second.by_read && !reads_too)) {
    return std::nullopt;
  }
  Clock::duration age = now - it->second.read_at;
  if (age >= m_ttl || age < Clock::duration::zero()) {
    return std::nullopt;
  }
  return Hit{*it->second.attr, std::chrono::duration<double>(age).count()};
}

AttrCache::Change AttrCache::watch(Ino ino, unsigned own) {
  Change w;
  if (!enabled()) {
    return w;
  }
  std::lock_guard lock(m_mutex);
  make_room(1);
  if (m_entries.size() >= m_max && m_entries.find(ino) == m_entries.end()) {
    return w;  // every entry is in flight
  }
  Entry& e = m_entries[ino];
  if (e.gen == 0) {
    e.gen = ++m_gen;  // a new entry: a later forget() or begin() changes it
  }
  w.m_marks.push_back({ino, e.gen, e.in_flight == own});
  return w;
}

bool AttrCache::unchanged(const Change& watch) {
  if (watch.m_marks.size() != 1 || !watch.m_marks[0].alone) {
    return false;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(watch.m_marks[0].ino);
  // (An entry dropped to make room is taken as changed.)
  return it != m_entries.end() && it->second.gen == watch.m_marks[0].gen && it->second.in_flight == 0;
}

std::optional<Attr> AttrCache::basis(Ino ino) {
  if (!enabled()) {
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(ino);
  if (it == m_entries.end() || it->second.in_flight != 0) {
    return std::nullopt;
  }
  return it->second.attr;
}

void AttrCache::forget(Ino ino) {
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(ino);
  if (it == m_entries.end()) {
    return;
  }
  it->second.attr.reset();
  it->second.accessed.reset();
  it->second.gen = ++m_gen;  // a change or read in flight must not store what it read before this
  if (it->second.in_flight == 0) {
    m_entries.erase(it);
  }
}

bool AttrCache::fresh(const Entry& e, Clock::time_point now) const {
  return (e.attr && now - e.read_at < m_ttl) || (e.accessed && now - e.accessed_at < m_ttl);
}

void AttrCache::note_accessed(Ino ino, std::int64_t atime_ns, Clock::time_point now) {
  if (!enabled()) {
    return;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(ino);
  if (it == m_entries.end()) {
    if (m_entries.size() >= m_max) {
      return;  // (a hint: begin() makes room, not this)
    }
    it = m_entries.emplace(ino, Entry{}).first;
  }
  it->second.accessed = atime_ns;
  it->second.accessed_at = now;
}

std::optional<std::int64_t> AttrCache::accessed(Ino ino, Clock::time_point now) {
  if (!enabled()) {
    return std::nullopt;
  }
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(ino);
  if (it == m_entries.end() || !it->second.accessed) {
    return std::nullopt;
  }
  Clock::duration age = now - it->second.accessed_at;
  if (age >= m_ttl || age < Clock::duration::zero()) {
    return std::nullopt;
  }
  return it->second.accessed;
}

std::size_t AttrCache::size() {
  std::lock_guard lock(m_mutex);
  return m_entries.size();
}

}  // namespace redisfs
