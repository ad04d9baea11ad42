// DirReader: see dir_reader.hpp for what an offset names and what a
// listing guarantees.
#include "store/dir_reader.hpp"

#include <algorithm>
#include <numeric>

namespace redisfs {

// A cursor is kept in the 30 bits above the hash, below the epoch's bit,
// so that every offset is positive (the kernel and lseek refuse negative
// ones) and below INT64_MAX (the .snapshots entry's, op_readdir.cpp): 2^30
// buckets, some billion names, is as large as a listed directory gets.
static constexpr std::uint64_t k_max_cursor = (std::uint64_t{1} << 30) - 3;
static constexpr std::uint64_t k_epoch_bit = std::uint64_t{1} << 30;  // of the field above the hash

std::uint32_t DirReader::name_hash(std::string_view name) {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a 64
  for (unsigned char ch : name) {
    h = (h ^ ch) * 1099511628211ULL;
  }
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

DirReader::DirReader(Store& store, Ino dir, std::size_t page_entries)
    : m_store(store), m_dir(dir), m_page_entries(std::max<std::size_t>(page_entries, 1)), m_opened(Clock::now()) {
  m_store.listing_waits(m_dir, m_page_entries);
}

DirReader::~DirReader() {
  if (m_waiting) {
    m_store.listing_done(m_dir);
  }
}

Result<DirPage> DirReader::fetch(std::uint64_t cursor) {
  Ino parent = 0;
  const bool ask = m_want_parent && !m_parent;
  // The first page read may be one a getattr read since the opening.
  std::optional<Clock::time_point> opened;
  if (m_waiting) {
    opened = m_opened;
  }
  Result<DirPage> read = m_store.readdir(m_dir, cursor, m_page_entries, m_plus, ask ? &parent : nullptr, opened);
  if (m_waiting) {
    m_waiting = false;
    m_store.listing_done(m_dir);
  }
  TRY(read);
  if (ask) {
    m_parent = parent;
  }
  return read;
}

Result<bool> DirReader::read_page(std::uint64_t cursor) {
  m_have_page = false;
  m_entries.clear();
  m_hashes.clear();
  m_index = 0;
  const Clock::time_point asked = Clock::now();
  TRY_ASSIGN(DirPage page, fetch(cursor));
  bool started_over = false;
  if (cursor != 0 && !m_server.empty() && !page.server.empty() && page.server != m_server) {
    // Its cursor came from another server process: begin again. (The
    // page before, of the old epoch, leads nowhere now: its offsets lead
    // to the start, seek. Kept, it could take a new first page's offset
    // for its own, cursor 0 both, and serve that page again and again.)
    TRY_ASSIGN(page, fetch(0));
    cursor = 0;
    started_over = true;
    m_epoch ^= 1;
    ++m_restarts;
    m_have_prev = false;
  }
  if (cursor == 0) {
    m_server = page.server;
  }
  if (page.next_cursor > k_max_cursor) {
    return make_error(EOVERFLOW, "directory " + std::to_string(m_dir) + ": HSCAN cursor " +
                                     std::to_string(page.next_cursor) + " does not fit a directory offset");
  }
  std::erase_if(page.entries, [this](const DirEntry& e) {
    Status usable = check_file_name(e.name);
    if (!usable.ok()) {
      m_left_out.add(e.name, usable.error());
    }
    return !usable.ok();
  });
  std::vector<std::uint32_t> hashes;
  hashes.reserve(page.entries.size());
  for (const DirEntry& e : page.entries) {
    hashes.push_back(name_hash(e.name));
  }
  std::vector<std::size_t> order(page.entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return hashes[a] != hashes[b] ? hashes[a] < hashes[b] : page.entries[a].name < page.entries[b].name;
  });
  m_entries.reserve(order.size());
  m_hashes.reserve(order.size());
  for (std::size_t i : order) {
    // HSCAN may return a name twice within one reply (while rehashing)
    if (!m_entries.empty() && m_entries.back().name == page.entries[i].name) {
      continue;
    }
    m_entries.push_back(std::move(page.entries[i]));
    m_hashes.push_back(hashes[i]);
  }
  m_cursor = cursor;
  m_next_cursor = page.next_cursor;
  m_time = Clock::now();
  m_asked = asked;
  m_have_page = true;
  return started_over;
}

Status DirReader::seek(std::uint64_t offset, bool plus) {
  std::uint64_t cursor = 0;
  bool after_hash = false;
  std::uint32_t hash = 0;
  if (offset >= k_first_entry_offset) {
    std::uint64_t field = offset >> 32;
    cursor = (field & ~k_epoch_bit) - 1;
    hash = static_cast<std::uint32_t>(offset);
    after_hash = true;
    if (cursor > k_max_cursor) {
      return make_error(EINVAL, "directory offset " + std::to_string(offset) + " was never handed out");
    }
    if (((field & k_epoch_bit) != 0) != (m_epoch != 0)) {
      // Handed out before the listing began again: from its start.
      cursor = 0;
      after_hash = false;
    }
  }
  bool usable = m_have_page && (m_plus || !plus) && offset != 0;
  if (usable && after_hash && m_have_prev && cursor == m_prev_cursor && hash >= m_prev_last_hash) {
    m_index = 0;  // past the page before: the start of the one held
    return {};
  }
  if (!usable || m_cursor != cursor) {
    m_plus = plus;
    m_have_prev = false;
    TRY_ASSIGN(bool started_over, read_page(cursor));
    after_hash = after_hash && !started_over;
  }
  m_index = 0;
  if (after_hash) {
    m_index = static_cast<std::size_t>(std::upper_bound(m_hashes.begin(), m_hashes.end(), hash) - m_hashes.begin());
  }
  return {};
}

Result<const DirEntry*> DirReader::current() {
  while (m_have_page && m_index >= m_entries.size()) {
    if (m_next_cursor == 0) {
      return static_cast<const DirEntry*>(nullptr);
    }
    if (!m_hashes.empty()) {  // (past an empty page, the one before it still leads here)
      m_have_prev = true;
      m_prev_cursor = m_cursor;
      m_prev_last_hash = m_hashes.back();
    }
    TRY(read_page(m_next_cursor));
  }
  if (!m_have_page) {
    return make_error(EIO, "directory " + std::to_string(m_dir) + ": listing read before seek");
  }
  return &m_entries[m_index];
}

std::uint64_t DirReader::current_offset() const {
  return ((m_cursor + 1) | (m_epoch != 0 ? k_epoch_bit : 0)) << 32 | m_hashes[m_index];
}

bool DirReader::must_follow() const { return m_index > 0 && m_hashes[m_index] == m_hashes[m_index - 1]; }

}  // namespace redisfs
