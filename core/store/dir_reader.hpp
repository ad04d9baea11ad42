// DirReader: a directory listing that holds one page, whatever the size of
// the directory, and resumes from any offset it handed out.
//
// A directory is a Redis hash, read page by page with HSCAN (Store::readdir).
// The offset after an entry (what the kernel passes back as d_off, and what
// telldir returns) names a place in the scan, not a count of entries:
//
//   offset = (epoch << 30 | (cursor + 1)) << 32 | hash32(name)
//
// where `cursor` is the HSCAN cursor the entry's page was read from, the
// entries of a page are listed in the order of hash32 (FNV-1a, folded),
// and `epoch` (one bit) changes when the listing begins again on another
// server (see below).
// Resuming after an offset reads that page again (or uses the page held,
// when it is the same one) and lists its entries whose hash is greater,
// then the pages that follow. Offsets 0, 1 and 2 are the start, after "."
// and after "..": the reader lists no "." or "..", its caller does.
//
// What a listing guarantees (see tests/mount/readdir_cursor.sh):
// - read straight through (the kernel resumes at the last offset it got,
//   which is in the page held): every name present for the whole listing
//   comes back, once; names added or removed meanwhile may or may not.
//   The one exception is HSCAN's: when the hash table shrinks during the
//   listing (Redis shrinks a hash when deletions leave it under a tenth
//   full), a name may come back twice; never fewer than once.
// - seek to any offset the handle gave (seekdir to a telldir value): the
//   listing resumes right after that entry. The page is read again; when
//   the directory did not change since, that is the same page, and the
//   result is exact. When it changed, the re-read page may end elsewhere
//   than the first read did, and names of the new extent whose hash is at
//   most the offset's are skipped: POSIX leaves entries of a changed
//   directory after seekdir unspecified, and so do we.
// - two names of one page with the same hash32 are never split across two
//   calls of the caller (must_follow says so), so resuming never loses one.
// - across a server restart or failover (a page answered by another server
//   process than the listing's first page: DirPage::server), a cursor
//   means nothing: the new server hashes with another seed, and going on
//   would miss names. The listing begins again from the first page, in a
//   new epoch: a straight read then lists again the names it listed
//   before, and misses none present throughout. An offset handed out
//   before (of the other epoch) resumes at the start of the new listing.
//   A server whose run_id is not known (an ACL user without +info) is
//   not watched.
//
// Memory: one page per open directory (about `page_entries`, with
// attributes for readdirplus; a hash small enough to be a listpack, up to
// hash-max-listpack-entries, 512 by default, comes whole in one HSCAN
// reply), nothing that grows with the directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/store.hpp"
#include "util/result.hpp"

namespace redisfs {

class DirReader {
 public:
  using Clock = std::chrono::steady_clock;

  // Offsets below this are the start (0), "." (1) and ".." (2).
  static constexpr std::uint64_t k_first_entry_offset = std::uint64_t{1} << 32;

  static std::uint32_t name_hash(std::string_view name);

  // Opening a reader tells the Store that a listing waits for its first
  // page (Store::listing_waits: a getattr meanwhile may read it).
  DirReader(Store& store, Ino dir, std::size_t page_entries = 256);
  ~DirReader();
  DirReader(const DirReader&) = delete;
  DirReader& operator=(const DirReader&) = delete;

  // Positions the reader right after `offset` (0, 1, 2: before the first
  // entry). `plus` asks for attributes: a page held without them is read
  // again, and so is the first page for offset 0 (a rewinddir sees the
  // directory as it is now). Otherwise the page held serves every offset
  // in it: its attributes are page_time() old (the caller shortens their
  // timeouts by that), never read again while the listing goes on.
  Status seek(std::uint64_t offset, bool plus);

  // The entry at the position, or nullptr at the end of the directory
  // (reading the next page when the one held is done).
  Result<const DirEntry*> current();
  // The offset after the current entry.
  std::uint64_t current_offset() const;
  // Whether the current entry has the same hash as the one before it on
  // the page: the caller must not stop between them.
  bool must_follow() const;
  // When the page held was read (attributes are that old).
  Clock::time_point page_time() const { return m_time; }
  // Whether this mount changed the directory's names since the page held
  // was asked for: its entries' inodes must not be handed to the kernel
  // (Store::names_changed_since; the names may be listed).
  bool page_stale() const { return m_store.names_changed_since(m_dir, m_asked); }
  void advance() { ++m_index; }
  // Asks for the directory's parent with the next page read, in its round
  // trip (Store::readdir's `parent`: a gone directory fails the read with
  // ENOENT); parent() has it once a page was read after the ask.
  void want_parent() { m_want_parent = true; }
  // Entries whose names the kernel cannot take (empty, "." or "..", a '/'
  // or NUL byte, over 255 bytes: check_file_name) are left out of the
  // listing (LeftOut): what was left out since the last call, for the
  // caller to log.
  LeftOut take_left_out() { return std::exchange(m_left_out, {}); }
  std::optional<Ino> parent() const { return m_parent; }
  // How many times the listing began again on another server.
  unsigned restarts() const { return m_restarts; }

 private:
  Result<DirPage> fetch(std::uint64_t cursor);
  // Reads the page at `cursor` and holds it; true when it began the
  // listing again instead (the server changed).
  Result<bool> read_page(std::uint64_t cursor);

  Store& m_store;
  Ino m_dir;
  std::size_t m_page_entries;
  bool m_plus = false;
  bool m_want_parent = false;
  std::optional<Ino> m_parent;
  bool m_have_page = false;
  bool m_waiting = true;  // no page read yet (Store::listing_waits)
  Clock::time_point m_opened;
  std::uint64_t m_cursor = 0;       // the page held was read from this cursor
  std::uint64_t m_next_cursor = 0;  // ...and the next one starts here (0: none)
  std::string m_server;             // the run_id of the server of the listing's first page
  unsigned m_epoch = 0;             // 0 or 1: flips when the listing begins again
  unsigned m_restarts = 0;
  LeftOut m_left_out;
  // The page before it, when the reader went on from it to the page held:
  // an offset past its last entry (where a reply that filled up at the end
  // of that page stopped) is the start of the page held.
  bool m_have_prev = false;
  std::uint64_t m_prev_cursor = 0;
  std::uint32_t m_prev_last_hash = 0;
  Clock::time_point m_time{};
  Clock::time_point m_asked{};       // when the page held was asked for
  std::vector<DirEntry> m_entries;   // sorted by (hash, name)
  std::vector<std::uint32_t> m_hashes;
  std::size_t m_index = 0;
};

}  // namespace redisfs
