// FirstPages: see first_pages.hpp.
#include "store/first_pages.hpp"

namespace redisfs {

FirstPages::FirstPages(double ttl_seconds)
    : m_ttl(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ttl_seconds))) {}

void FirstPages::waits(Ino dir, std::size_t max) {
  if (m_ttl.count() <= 0) {
    return;
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  Entry& e = m_dirs[dir];
  ++e.waiting;
  e.max = max;
}

void FirstPages::done(Ino dir) {
  if (m_ttl.count() <= 0) {
    return;
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_dirs.find(dir);
  if (it != m_dirs.end() && --it->second.waiting <= 0) {
    m_dirs.erase(it);  // and the page no listing took
  }
}

std::size_t FirstPages::wanted(Ino dir) {
  if (m_ttl.count() <= 0) {
    return 0;
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_dirs.find(dir);
  return it == m_dirs.end() ? 0 : it->second.max;
}

void FirstPages::changed(Ino dir, Clock::time_point now) {
  if (m_ttl.count() <= 0) {
    return;
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_dirs.find(dir);
  if (it != m_dirs.end()) {
    it->second.page.reset();
    it->second.changed = now;
  }
}

void FirstPages::keep(Ino dir, Clock::time_point sent, DirPage page, Ino parent) {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_dirs.find(dir);
  if (it == m_dirs.end()) {
    return;  // the listing read or closed meanwhile
  }
  if (sent <= it->second.changed) {
    return;  // read before this mount's change landed: stale
  }
  if (it->second.page && it->second.sent > sent) {
    return;  // a newer one is kept
  }
  it->second.page = Taken{std::move(page), parent};
  it->second.sent = sent;
}

std::optional<FirstPages::Taken> FirstPages::take(Ino dir, Clock::time_point opened, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = m_dirs.find(dir);
  if (it == m_dirs.end() || !it->second.page) {
    return std::nullopt;
  }
  const bool old = now - it->second.sent > m_ttl;
  if (old) {
    it->second.page.reset();  // too old for any listing
  }
  if (old || it->second.sent < opened) {
    return std::nullopt;  // (or read before this listing was opened)
  }
  std::optional<Taken> out = std::move(it->second.page);
  it->second.page.reset();
  return out;
}

}  // namespace redisfs
