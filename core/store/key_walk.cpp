// The structure walk (key_walk.hpp).
#include "store/key_walk.hpp"

#include <algorithm>
#include <charconv>
#include <span>

#include "redis/scan.hpp"
#include "util/text.hpp"

namespace redisfs {

namespace {

constexpr std::size_t k_inode_batch = 512;
constexpr std::string_view k_hscan_count = "1000";
constexpr std::string_view k_scan_count = "1000";
// Below this many possible blocks a file's blocks are always named.
constexpr std::uint64_t k_min_nameable = 1024;

std::string _num(std::uint64_t n) { return std::to_string(n); }

// An inode's bytes as the daemon and fsck read it: a signed count, so "-0"
// is 0 (a negative one is damage fsck reports).
bool _bytes_field(std::string_view s, std::uint64_t& out) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0) {
    return false;
  }
  out = static_cast<std::uint64_t>(v);
  return true;
}

}  // namespace

std::optional<std::uint64_t> nameable_blocks(std::uint64_t size, std::uint64_t bytes, std::uint32_t block_size,
                                             std::uint64_t server_keys) {
  if (bytes == 0 || size == 0 || block_size == 0) {
    return std::uint64_t{0};
  }
  std::uint64_t n = size / block_size + (size % block_size != 0 ? 1 : 0);
  if (n > std::max(server_keys, k_min_nameable)) {
    return std::nullopt;
  }
  return n;
}

KeyWalk::KeyWalk(Connection& c, const Keys& keys, KeyWalkOptions opts) : m_c(c), m_keys(keys), m_opts(opts) {
  m_opts.batch = std::max<std::size_t>(m_opts.batch, 1);
}

void KeyWalk::note(std::string why) {
  if (m_result.disagreement.empty()) {
    m_result.disagreement = std::move(why);
  }
}

Status KeyWalk::begin() {
  m_c.append({"HMGET", m_keys.sb(), "block_size", "inodes", "bytes", "root"});
  m_c.append({"DBSIZE"});
  m_c.append({"EXISTS", m_keys.sb()});
  std::vector<Result<Reply>> replies;
  for (int i = 0; i < 3; ++i) {
    replies.push_back(m_c.read_reply());
    if (!replies.back().ok() && m_c.broken()) {
      m_c.drain();
      return std::move(replies.back()).error();
    }
  }
  if (!replies[0].ok()) {
    note("the superblock is not a hash");
    return {};
  }
  if (!replies[2].ok() || replies[2]->view().integer() != 1) {
    return make_error(ENOENT, "no filesystem at prefix '" + m_keys.prefix() + "'");
  }
  ReplyView sb = replies[0]->view();
  if (sb.size() != 4 || sb[0].is_nil() || sb[1].is_nil() || sb[2].is_nil()) {
    note("the superblock lacks block_size, inodes or bytes");
    return {};
  }
  // The root is inode 1 in every filesystem (superblock.hpp): the field is
  // a record, which no reader (the daemon, fsck, restore) requires.
  std::uint64_t bs = 0;
  if (!parse_u64(sb[0].str(), bs) || bs == 0 || bs > (1u << 30) || !parse_u64(sb[1].str(), m_sb_inodes) ||
      !parse_u64(sb[2].str(), m_sb_bytes) || (!sb[3].is_nil() && sb[3].str() != "1")) {
    note("the superblock's block_size, inodes or bytes is not a number, or its root is not 1");
    return {};
  }
  m_block_size = static_cast<std::uint32_t>(bs);
  if (replies[1].ok()) {
    m_dbsize = static_cast<std::uint64_t>(std::max(0LL, replies[1]->view().integer()));
  }
  return {};
}

// A key is read before it is visited (the visitor may remove it: delete),
// or, copy-on-write, visited (copied) right before it is read.
Status KeyWalk::read_orphans() {
  if (m_opts.source != nullptr) {
    TRY(flush());
    m_pending.push_back("ORPHANS");
    m_pending_block.push_back(0);
    TRY(flush());
  }
  auto r = m_c.command({"HGETALL", m_keys.orphans()});
  if (m_opts.source == nullptr) {
    TRY(add("ORPHANS", false));
  }
  if (!r.ok()) {
    if (m_c.broken()) {
      return std::move(r).error();
    }
    note("ORPHANS is not a hash");
    return {};
  }
  ReplyView orphans = r->view();
  for (std::size_t i = 0; i + 1 < orphans.size(); i += 2) {
    std::uint64_t ino = 0;
    if (!parse_u64(orphans[i].str(), ino) || ino == 0) {
      note("ORPHANS names something that is not an inode number");
      return {};
    }
    m_orphans.push_back(ino);
  }
  return {};
}

Status KeyWalk::add(std::string rel, bool block) {
  m_pending_dirs += rel.starts_with("DIR:") ? 1 : 0;
  m_pending.push_back(std::move(rel));
  m_pending_block.push_back(block ? 1 : 0);
  if (m_pending.size() >= m_opts.batch || (m_opts.dir_pages > 0 && m_pending_dirs >= m_opts.dir_pages)) {
    return flush();
  }
  return {};
}

Status KeyWalk::flush() {
  if (m_pending.empty()) {
    return {};
  }
  m_found.assign(m_pending.size(), -1);
  TRY((*m_visit)(m_pending, m_found));
  for (std::size_t i = 0; i < m_pending.size(); ++i) {
    long long f = m_found[i];
    if (f == -2) {
      note(m_pending[i] + " is not a string");
    }
    if (f < 0) {
      continue;
    }
    ++m_result.keys;
    if (m_pending_block[i] != 0) {
      m_block_bytes += static_cast<std::uint64_t>(f);
    }
  }
  m_pending.clear();
  m_pending_block.clear();
  m_pending_dirs = 0;
  return {};
}

void KeyWalk::enqueue(std::string_view entry, std::uint64_t dir) {
  std::uint64_t ino = 0;
  if (!parse_u64(entry, ino) || ino == 0) {
    note("directory " + _num(dir) + " has an entry that names no inode number");
    return;
  }
  if (m_seen.insert(ino)) {
    m_queue.push_back(ino);
  }
}

// Copy-on-write (KeyWalkOptions::source): the keys about to be read are
// visited first, in batches of their own.
Status KeyWalk::visit_now(std::string_view kind, const std::vector<std::uint64_t>& inos) {
  if (m_opts.source == nullptr) {
    return {};
  }
  TRY(flush());
  for (std::uint64_t ino : inos) {
    m_pending.push_back(std::string(kind) + _num(ino));
    m_pending_block.push_back(0);
  }
  return flush();
}

Status KeyWalk::read_dirs(const std::vector<std::uint64_t>& dirs) {
  TRY(visit_now("DIR:", dirs));
  for (std::size_t at = 0; at < dirs.size(); at += k_hscans_at_once) {
    TRY(read_dir_pages(std::span(dirs).subspan(at, std::min(k_hscans_at_once, dirs.size() - at))));
  }
  if (m_opts.source == nullptr) {
    for (std::uint64_t d : dirs) {
      TRY(add("DIR:" + _num(d), false));
    }
  }
  return {};
}

Status KeyWalk::read_dir_pages(std::span<const std::uint64_t> dirs) {
  const std::string before = m_c.answered_by();
  for (std::uint64_t d : dirs) {
    m_c.append({"HSCAN", m_keys.dir(d), "0", "COUNT", k_hscan_count});
  }
  std::vector<Result<Reply>> pages = m_c.read_replies(dirs.size());
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    if (!pages[i].ok()) {
      if (m_c.broken()) {
        return std::move(pages[i]).error();
      }
      note("DIR:" + _num(dirs[i]) + " is not a hash");
      continue;
    }
    // (A walk that starts over after a server restart queues nothing
    // twice: enqueue drops an inode seen.)
    ScanWalk walk(m_c, {"HSCAN", m_keys.dir(dirs[i])}, {"COUNT", std::string(k_hscan_count)});
    walk.adopt_first(std::move(pages[i]).value(), before);
    for (;;) {
      TRY_ASSIGN(auto page, walk.next());
      if (!page) {
        break;
      }
      for (std::size_t j = 0; j + 1 < page->size(); j += 2) {
        enqueue((*page)[j + 1].str(), dirs[i]);
      }
    }
  }
  return {};
}

Status KeyWalk::visit_batch(const std::vector<std::uint64_t>& batch) {
  TRY(visit_now("INODE:", batch));
  for (std::uint64_t ino : batch) {
    m_c.append({"HMGET", m_keys.inode(ino), "type", "size", "bytes"});
  }
  std::vector<Result<Reply>> replies = m_c.read_replies(batch.size());
  std::vector<std::uint64_t> dirs;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::uint64_t ino = batch[i];
    if (!replies[i].ok()) {
      if (m_c.broken()) {
        return std::move(replies[i]).error();
      }
      note("INODE:" + _num(ino) + " is not a hash");
      continue;
    }
    ReplyView v = replies[i]->view();
    if (v.size() != 3 || v[0].is_nil()) {
      note("inode " + _num(ino) + " is named but does not exist");
      continue;
    }
    ++m_result.inodes;
    std::string_view type = v[0].str();
    std::uint64_t size = 0;
    std::uint64_t bytes = 0;
    if (!parse_u64(v[1].str(), size) || !_bytes_field(v[2].str(), bytes)) {
      note("inode " + _num(ino) + " has no readable size or bytes");
    }
    m_inode_bytes += bytes;
    if (m_opts.source == nullptr) {
      TRY(add("INODE:" + _num(ino), false));
    }
    TRY(add("XATTR:" + _num(ino), false));
    if (m_opts.opens) {
      TRY(add("OPEN:" + _num(ino), false));
    }
    if (type == "dir") {
      dirs.push_back(ino);  // DIR:<n> is a candidate once read (read_dirs)
    } else if (type == "file") {
      auto blocks = nameable_blocks(size, bytes, m_block_size, m_dbsize);
      if (!blocks) {
        m_sparse.push_back(ino);
        continue;
      }
      std::string head = "BLK:" + _num(ino) + ":";
      for (std::uint64_t b = 0; b < *blocks; ++b) {
        TRY(add(head + _num(b), true));
      }
    }
  }
  return read_dirs(dirs);
}

Status KeyWalk::sparse_blocks() {
  if (m_sparse.empty()) {
    return {};
  }
  m_result.sparse_scan = true;
  std::sort(m_sparse.begin(), m_sparse.end());
  // Copy-on-write: a block may be in the live filesystem only (not copied
  // yet) or in the staging prefix only (copied, then removed): both are
  // looked at, and a block found twice is named once.
  std::vector<const Keys*> where{&m_keys};
  if (m_opts.source != nullptr) {
    where.push_back(m_opts.source);
  }
  std::vector<std::string> found;
  for (const Keys* keys : where) {
    // (A walk that starts over after a server restart finds a block twice
    // at most: named once below.)
    ScanWalk walk(m_c, {"SCAN"}, {"MATCH", keys->prefix() + ":BLK:*", "COUNT", std::string(k_scan_count)});
    for (;;) {
      TRY_ASSIGN(auto page, walk.next());
      if (!page) {
        break;
      }
      for (std::size_t i = 0; i < page->size(); ++i) {
        auto rel = keys->relative((*page)[i].str());
        ParsedKey pk = rel ? parse_relative_key(*rel) : ParsedKey{};
        if (pk.kind == KeyKind::Block && std::binary_search(m_sparse.begin(), m_sparse.end(), pk.ino)) {
          found.emplace_back(*rel);
        }
      }
    }
  }
  // (SCAN may also return a key twice)
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  for (std::string& rel : found) {
    TRY(add(std::move(rel), true));
  }
  return {};
}

Result<KeyWalkResult> KeyWalk::run(const KeyVisitor& visit) {
  m_visit = &visit;
  if (!m_result.disagreement.empty()) {
    return m_result;
  }
  TRY(read_orphans());
  if (!m_result.disagreement.empty()) {
    return m_result;
  }
  if (m_seen.insert(k_root_ino)) {
    m_queue.push_back(k_root_ino);
  }
  for (std::uint64_t ino : m_orphans) {
    if (m_seen.insert(ino)) {
      m_queue.push_back(ino);
    }
  }
  std::vector<std::uint64_t> batch;
  while (!m_queue.empty()) {
    std::size_t n = std::min(k_inode_batch, m_queue.size());
    batch.assign(m_queue.end() - static_cast<std::ptrdiff_t>(n), m_queue.end());
    m_queue.resize(m_queue.size() - n);
    TRY(visit_batch(batch));
  }
  TRY(sparse_blocks());
  TRY(flush());
  if (m_result.inodes != m_sb_inodes) {
    note(_num(m_result.inodes) + " inodes found, the superblock counts " + _num(m_sb_inodes));
  }
  if (m_inode_bytes != m_sb_bytes) {
    note("the inodes store " + _num(m_inode_bytes) + " bytes, the superblock counts " + _num(m_sb_bytes));
  }
  if (m_block_bytes != m_inode_bytes) {
    note("the blocks found hold " + _num(m_block_bytes) + " bytes, the inodes say " + _num(m_inode_bytes));
  }
  return m_result;
}

}  // namespace redisfs
