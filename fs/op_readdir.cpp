// opendir, readdir, readdirplus, releasedir, fsyncdir.
//
// A directory handle (fi->fh) holds the entries fetched so far and the
// Store's cursor. The kernel asks for "everything after offset `off`":
// offset 0 is the start, 1 follows ".", 2 follows "..", n + 2 follows the
// n-th entry; pages (Store::readdir, 256 entries) are fetched as the
// offsets reach past what the handle holds. A name the cursor returns twice
// (HSCAN may, while the hash is being resized) is listed once. Offset 0
// again (rewinddir) starts over with fresh pages.
//
// readdirplus hands the kernel one lookup per entry that fits in its buffer
// (never for "." and "..", which carry no inode number in the entry): those
// are counted before the reply.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "log.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"

namespace redisfs::op {

static constexpr std::size_t k_page_entries = 256;

namespace {
struct DirHandle {
  std::mutex mutex;
  Ino ino = 0;
  Ino parent = 0;
  std::vector<DirEntry> entries;
  std::unordered_set<std::string> seen;
  std::uint64_t cursor = 0;
  bool done = false;

  void restart() {
    entries.clear();
    seen.clear();
    cursor = 0;
    done = false;
  }
};
}  // namespace

static DirHandle* _handle(const fuse_file_info* fi) { return reinterpret_cast<DirHandle*>(fi->fh); }

static Status _fetch(Store& store, DirHandle& h, bool plus) {
  TRY_ASSIGN(DirPage page, store.readdir(h.ino, h.cursor, k_page_entries, plus));
  for (DirEntry& entry : page.entries) {
    if (entry.attr) {
      // Attributes the kernel would refuse (it would drop the entry
      // silently): list the name without them; its lookup then fails with
      // EIO and a log line.
      std::string why = kernel_refuses(*entry.attr);
      if (why.empty() && entry.ino == k_root_ino) {
        why = "an entry names the root directory (inode 1)";
      }
      if (!why.empty()) {
        log_op_error("readdirplus", h.ino, entry.name, make_error(EIO, why));
        entry.attr.reset();
      }
    }
    if (h.seen.insert(entry.name).second) {
      h.entries.push_back(std::move(entry));
    }
  }
  h.cursor = page.next_cursor;
  h.done = page.next_cursor == 0;
  return {};
}

static void _dot_stat(struct stat& st, Ino ino) {
  st = {};
  st.st_ino = ino;
  st.st_mode = S_IFDIR;
}

static void _readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Session& session = session_of(req);
  DirHandle& h = *_handle(fi);
  std::string buf(size, '\0');
  std::size_t used = 0;
  std::vector<Ino> counted;
  std::optional<Error> failure;
  {
    std::lock_guard<std::mutex> lock(h.mutex);
    if (off <= 0) {
      h.restart();
    }
    auto k = static_cast<std::size_t>(off < 0 ? 0 : off);
    while (true) {
      if (k >= h.entries.size() + 2) {
        if (h.done) {
          break;
        }
        Status st = _fetch(session.store(), h, plus);
        if (!st) {
          if (used == 0) {
            failure = st.error();
          }
          break;
        }
        continue;
      }
      const char* name = k == 0 ? "." : k == 1 ? ".." : h.entries[k - 2].name.c_str();
      char* dst = buf.data() + used;
      std::size_t room = size - used;
      auto next = static_cast<off_t>(k + 1);
      std::size_t need = 0;
      Ino counted_ino = 0;
      if (plus) {
        fuse_entry_param e{};
        if (k < 2) {
          _dot_stat(e.attr, k == 0 ? h.ino : h.parent);
        } else if (const DirEntry& entry = h.entries[k - 2]; entry.attr) {
          e = make_entry(session, *entry.attr);
          counted_ino = entry.ino;
        } else {
          e.attr.st_ino = entry.ino;
          e.attr.st_mode = entry.type;
        }
        need = fuse_add_direntry_plus(req, dst, room, name, &e, next);
      } else {
        struct stat st {};
        if (k < 2) {
          _dot_stat(st, k == 0 ? h.ino : h.parent);
        } else {
          st.st_ino = h.entries[k - 2].ino;
          st.st_mode = h.entries[k - 2].type;
        }
        need = fuse_add_direntry(req, dst, room, name, &st, next);
      }
      if (need > room) {
        break;
      }
      used += need;
      if (counted_ino != 0) {
        session.add_lookup(counted_ino, h.entries[k - 2].type);
        counted.push_back(counted_ino);
      }
      ++k;
    }
  }
  if (failure) {
    reply_fail(req, plus ? "readdirplus" : "readdir", ino, {}, *failure);
    return;
  }
  reply_dir(req, session, std::string_view(buf.data(), used), counted);
}

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session& session = session_of(req);
  Result<Attr> attr = session.store().getattr(ino);
  if (!attr) {
    reply_fail(req, "opendir", ino, {}, attr.error());
    return;
  }
  if (!attr->is_dir()) {
    reply_err(req, ENOTDIR);
    return;
  }
  auto h = std::make_unique<DirHandle>();
  h->ino = ino;
  h->parent = ino == k_root_ino || attr->parent == 0 ? ino : attr->parent;
  fi->fh = reinterpret_cast<std::uint64_t>(h.release());
  fi->keep_cache = 0;
  fi->cache_readdir = 0;
  reply_open(req, fi);
}

void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  _readdir(req, ino, size, off, fi, false);
}

void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  _readdir(req, ino, size, off, fi, true);
}

void releasedir(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  delete _handle(fi);
  fi->fh = 0;
  reply_ok(req);
}

void fsyncdir(fuse_req_t req, fuse_ino_t ino, int /*datasync*/, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  if (Status st = session.store().sync(); !st) {
    reply_fail(req, "fsyncdir", ino, {}, st.error());
    return;
  }
  reply_ok(req);
}

}  // namespace redisfs::op
