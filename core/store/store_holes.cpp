// Store, a file's holes: lseek(2)'s SEEK_DATA and SEEK_HOLE, fallocate(2)'s
// FALLOC_FL_PUNCH_HOLE, and the search for a file's blocks both lean on
// (probes of EXISTS, or a SCAN past more holes than the server has keys).
#include <algorithm>
#include <limits>
#include <optional>

#include "redis/scan.hpp"
#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

namespace store_internal {

Result<std::vector<std::uint64_t>> _existing_blocks(Connection& c, const Keys& keys, Ino ino, std::uint64_t from,
                                                    std::uint64_t to) {
  std::vector<std::uint64_t> found;
  std::string pattern = keys.block(ino, 0);
  pattern.replace(pattern.size() - 1, 1, "*");
  ScanWalk walk(c, {"SCAN"}, {"MATCH", pattern, "COUNT", "10000"});
  for (;;) {
    TRY_ASSIGN(auto list, walk.next());
    if (!list) {
      break;
    }
    if (walk.started_over()) {
      found.clear();
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      auto rel = keys.relative((*list)[i].str());
      ParsedKey k = rel ? parse_relative_key(*rel) : ParsedKey{};
      if (k.kind == KeyKind::Block && k.ino == ino && k.index >= from && k.index < to) {
        found.push_back(k.index);
      }
    }
  }
  std::sort(found.rbegin(), found.rend());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

}  // namespace store_internal

// SEEK_DATA and SEEK_HOLE: the first block of [first, last] present on
// the server (`data`) or missing, or none. A round trip sends EXISTS of
// k_seek_span blocks at a time, 4 of them at first, twice as many each
// round up to 256; the first span holding what is sought is then probed
// block by block. (A block that another mount wrote or removed between
// the two makes the search go on past that span.)
static Result<std::optional<std::uint64_t>> _first_block(Connection& c, const Keys& keys, Ino ino, std::uint64_t first,
                                                         std::uint64_t last, bool data) {
  constexpr std::uint64_t k_seek_span = 256;
  std::uint64_t spans = 4;
  for (std::uint64_t at = first; at <= last; spans = std::min<std::uint64_t>(spans * 2, 256)) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> sent;  // each span's first and last block
    for (; sent.size() < spans && at <= last; at = sent.back().second + 1) {
      sent.emplace_back(at, std::min(last, at + k_seek_span - 1));
      Args argv{"EXISTS"};
      for (std::uint64_t b = sent.back().first; b <= sent.back().second; ++b) {
        argv.push_back(keys.block(ino, b));
      }
      c.append(argv);
    }
    std::optional<std::pair<std::uint64_t, std::uint64_t>> found;
    std::vector<Result<Reply>> counts = c.read_replies(sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      TRY_ASSIGN(Reply n, std::move(counts[i]));
      const auto len = static_cast<long long>(sent[i].second - sent[i].first + 1);
      if (!found && (data ? n.view().integer() > 0 : n.view().integer() < len)) {
        found = sent[i];
      }
    }
    if (!found) {
      continue;
    }
    for (std::uint64_t b = found->first; b <= found->second; ++b) {
      c.append({"EXISTS", keys.block(ino, b)});
    }
    std::vector<Result<Reply>> each = c.read_replies(found->second - found->first + 1);
    for (std::uint64_t b = found->first; b <= found->second; ++b) {
      TRY_ASSIGN(Reply n, std::move(each[b - found->first]));
      if ((n.view().integer() != 0) == data) {
        return std::optional<std::uint64_t>(b);
      }
    }
    at = found->second + 1;
  }
  return std::optional<std::uint64_t>();
}

// Blocks a search for data probes at least before it may SCAN instead
// (64 GiB of 64 KiB blocks).
static constexpr std::uint64_t k_seek_scan_min = 1 << 20;

// The first block of [first, last] present on the server, or none. A hole
// ends at a block that exists, but data may lie past a hole of any
// length: past as many blocks as the server has keys (and
// k_seek_scan_min), the rest of the range is found with a SCAN of the
// file's blocks (a 1 PiB file of one block: one walk of the keyspace, not
// 16 Gi probes). `scanned` keeps what a SCAN found, ascending, and answers
// the caller's later calls for blocks further on without another.
static Result<std::optional<std::uint64_t>> _next_data(Connection& c, const Keys& keys, Ino ino, std::uint64_t first,
                                                       std::uint64_t last,
                                                       std::optional<std::vector<std::uint64_t>>& scanned) {
  if (!scanned) {
    std::uint64_t probed = last;
    if (last - first >= k_seek_scan_min) {
      TRY_ASSIGN(Reply n, c.command({"DBSIZE"}));
      const auto count = static_cast<std::uint64_t>(std::max<long long>(n.view().integer(), 0));
      probed = std::min(last, first + std::max(count, k_seek_scan_min));
    }
    TRY_ASSIGN(std::optional<std::uint64_t> at, _first_block(c, keys, ino, first, probed, true));
    if (at || probed >= last) {
      return at;
    }
    TRY_ASSIGN(std::vector<std::uint64_t> found, _existing_blocks(c, keys, ino, probed + 1, last + 1));
    std::reverse(found.begin(), found.end());  // (largest first)
    scanned = std::move(found);
  }
  auto at = std::lower_bound(scanned->begin(), scanned->end(), first);
  if (at == scanned->end() || *at > last) {
    return std::optional<std::uint64_t>();
  }
  return std::optional<std::uint64_t>(*at);
}

// A file's size as the server holds it: ESTALE when the inode is gone.
static Result<std::uint64_t> _file_size(Connection& c, const Keys& keys, Ino ino) {
  TRY_ASSIGN(Reply sized, c.command({"HGET", keys.inode(ino), "size"}));
  if (sized.view().is_nil()) {
    return make_error(ESTALE, "inode " + std::to_string(ino) + " was removed");
  }
  std::uint64_t size = 0;
  if (!sized.view().is_string() || !parse_u64(sized.view().str(), size) || size > k_max_file_size) {
    return make_error(
        EIO, "inode " + std::to_string(ino) + ": bad size '" +
                 (sized.view().is_string() ? _bounded(sized.view().str()) : std::string("(not a string)")) + "'");
  }
  return size;
}

Result<std::uint64_t> Store::seek_data(Ino ino, std::uint64_t offset, bool data) {
  if (m_gathered_count.load() != 0) {
    TRY(settle(ino, true));  // what this mount wrote to it is on the server
  }
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(std::uint64_t size, _file_size(*c, m_keys, ino));
  if (offset >= size) {
    return make_error(ENXIO, "at or past the end of the file");
  }
  const std::uint64_t bs = m_sb.block_size;
  const std::uint64_t first = offset / bs;
  const std::uint64_t last = (size - 1) / bs;
  std::optional<std::uint64_t> at;
  if (data) {
    std::optional<std::vector<std::uint64_t>> scanned;
    TRY_ASSIGN(at, _next_data(*c, m_keys, ino, first, last, scanned));
  } else {
    // (a hole ends at a block that exists: the probes cost at most what
    // the server holds)
    TRY_ASSIGN(at, _first_block(*c, m_keys, ino, first, last, false));
  }
  if (!at) {
    return data ? make_error(ENXIO, "no data past the offset") : Result<std::uint64_t>(size);
  }
  return std::max(*at * bs, offset);
}

// A step of a punch names at most k_truncate_step_blocks blocks of
// [from, last], `from` holding data: the ones that follow it, or, after a
// SCAN, the ones the SCAN found (a sparse range costs its data, not its
// length).
static std::vector<std::uint64_t> _step_blocks(std::uint64_t from, std::uint64_t last,
                                               const std::optional<std::vector<std::uint64_t>>& scanned) {
  std::vector<std::uint64_t> blocks;
  if (scanned) {
    for (auto it = std::lower_bound(scanned->begin(), scanned->end(), from);
         it != scanned->end() && *it <= last && blocks.size() < k_truncate_step_blocks; ++it) {
      blocks.push_back(*it);
    }
  } else {
    for (std::uint64_t b = from; b <= last && blocks.size() < k_truncate_step_blocks; ++b) {
      blocks.push_back(b);
    }
  }
  return blocks;
}

Status Store::punch_hole(Ino ino, std::uint64_t offset, std::uint64_t length, WriteKill* kill) {
  TRY(writable());
  if (length == 0) {
    return make_error(EINVAL, "punch_hole: length 0");
  }
  if (m_gathered_count.load() != 0) {
    TRY(settle(ino));  // what this mount wrote before lands first, and the times are the server's again
  }
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(std::uint64_t size, _file_size(*c, m_keys, ino));
  if (offset >= size) {
    return {};  // nothing of the file in the range (as ext4: no time changes either)
  }
  const std::uint64_t bs = m_sb.block_size;
  const std::uint64_t
      end =  // past the range's last byte (unclipped: a block the file grows into meanwhile is cut right)
      length > std::numeric_limits<std::uint64_t>::max() - offset ? std::numeric_limits<std::uint64_t>::max()
                                                                  : offset + length;
  const std::uint64_t first = offset / bs;
  const std::uint64_t last = (std::min(end, size) - 1) / bs;
  std::vector<std::string> args{"0", "", kill != nullptr && kill->suidgid ? "kill" : "", m_opts.writeback ? "k" : ""};
  std::optional<std::vector<std::uint64_t>> scanned;
  bool stepped = false;
  for (std::uint64_t at = first; at <= last;) {
    TRY_ASSIGN(std::optional<std::uint64_t> next, _next_data(*c, m_keys, ino, at, last, scanned));
    if (!next) {
      break;
    }
    std::vector<std::uint64_t> blocks = _step_blocks(*next, last, scanned);
    std::vector<std::string> keys{m_keys.sb(), m_keys.freeze(), m_keys.inode(ino), m_keys.changed()};
    for (std::uint64_t b : blocks) {
      keys.push_back(m_keys.block(ino, b));
    }
    // (the range's first and last blocks may be cut short: the others
    // go whole)
    args[0] = blocks.front() == first ? std::to_string(offset % bs) : "0";
    args[1] = blocks.back() == (end - 1) / bs && end % bs != 0 ? std::to_string(end % bs) : "";
    at = blocks.back() + 1;
    TRY_ASSIGN(Reply r, eval_change(*c, lua::punch, keys, args));
    _note_killed(r.view(), 1, kill);
    stepped = true;
  }
  if (!stepped) {  // only holes in the range: the times change all the same
    TRY_ASSIGN(Reply r,
               eval_change(*c, lua::punch, {m_keys.sb(), m_keys.freeze(), m_keys.inode(ino), m_keys.changed()}, args));
    _note_killed(r.view(), 1, kill);
  }
  return {};
}

}  // namespace redisfs
