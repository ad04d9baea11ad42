// opendir, readdir, readdirplus, releasedir, fsyncdir; the same handles
// list a snapshot's view (snapdir.cpp: open_dir_handle, with its Store and
// inode numbers), and a listing of the root under -o snapdir=visible ends
// with .snapshots.
//
// A directory handle (fi->fh) is a DirReader (core/store/dir_reader.hpp): one
// page of entries and the Store's cursor, never more, whatever the size of
// the directory. The kernel asks for "everything after offset `off`": 0 is
// the start, 1 follows ".", 2 follows "..", and an entry's offset names its
// page's HSCAN cursor and its name's hash, so a reply can resume anywhere
// (telldir/seekdir) and a straight read costs one HSCAN per page. An
// opendir of a directory the kernel knows as one asks the server nothing:
// the parent, for "..", comes in the first page's round trip, or in the
// round trip of the getattr the kernel sends between the opendir and the
// first readdir, with the first page (store/first_pages.hpp).
//
// readdirplus hands the kernel one lookup per entry that fits in its buffer
// (never for "." and "..", which carry no inode number in the entry): those
// are counted once the reply is complete. Not from a page read before this
// mount changed the directory's names (a rename or removal between two
// getdents(2) calls, after a getattr read the first page): such a page's
// names go without their inodes (DirReader::page_stale), or the kernel
// would link a name to the inode it no longer has. The attributes of a page served
// again for a later request carry timeouts shortened by the page's age, and
// those a page took from the AttrCache (Store::readdir) by theirs. A
// reply never ends between two entries of one page with the same name hash
// (DirReader::must_follow), so that resuming after it loses neither.
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/dir_reader.hpp"
#include "log.hpp"
#include "ops.hpp"
#include "reply.hpp"
#include "session.hpp"
#include "snapdir.hpp"

namespace redisfs::op {

static constexpr std::size_t k_page_entries = 256;
// A handle that listed this many entries trims the heap when it closes:
// its pages (and the replies they came in) were freed in the arenas of
// whichever threads served it.
static constexpr std::uint64_t k_trim_after_entries = 16384;

// The offset after the .snapshots entry that ends a listing of the root
// under -o snapdir=visible: past every DirReader offset.
static constexpr std::uint64_t k_after_snapdir = INT64_MAX;

namespace {
struct DirHandle {
  DirHandle(Store& store, const ReplyTree& tree_, Ino dir, Ino self_, Ino parent_, Ino base_)
      : ino(dir), self(self_), parent(parent_), base(base_), tree(tree_), reader(store, dir, k_page_entries) {}
  std::mutex mutex;
  Ino ino;     // the directory, as its Store numbers it
  Ino self;    // "." and "..", as the kernel numbers them
  Ino parent;
  Ino base;    // the kernel's number of an entry: base | its Store number (view_ino.hpp)
  ReplyTree tree;
  bool snapdir = false;          // the live root under -o snapdir=visible: .snapshots ends it
  std::shared_ptr<void> keep;    // what must outlive the handle (a view's Store)
  std::uint64_t listed = 0;      // entries handed out through it
  unsigned restarts_logged = 0;  // of reader.restarts()
  // Last, so destroyed first: its destructor tells its Store the listing
  // ended (Store::listing_done), while `keep` still holds a view's Store.
  DirReader reader;
};

// An entry placed in the reply buffer, until the reply is sent.
struct Placed {
  std::size_t start = 0;  // where it begins in the buffer
  Ino counted = 0;        // the lookup it hands the kernel (0: none)
  std::uint32_t type = 0;
  std::uint64_t size = 0;  // the size it hands the kernel, with `counted`
  bool follows = false;   // same name hash as the entry before it
  // What is wrong with the entry, logged once the reply holds it (an entry
  // that did not fit, or was taken back, comes again in the next reply):
  // its name and why.
  std::string damaged_name;
  std::string damage;
};
}  // namespace

static DirHandle* _handle(const fuse_file_info* fi) { return reinterpret_cast<DirHandle*>(fi->fh); }

static void _dot_stat(struct stat& st, Ino ino) {
  st = {};
  st.st_ino = ino;
  st.st_mode = S_IFDIR;
}

// Adds "." (k = 0) or ".." (k = 1) at `dst`; the size it needs.
static std::size_t _add_dot(fuse_req_t req, const DirHandle& h, char* dst, std::size_t room, unsigned k, bool plus) {
  const char* name = k == 0 ? "." : "..";
  auto next = static_cast<off_t>(k + 1);
  if (plus) {
    fuse_entry_param e{};
    _dot_stat(e.attr, k == 0 ? h.self : h.parent);
    return fuse_add_direntry_plus(req, dst, room, name, &e, next);
  }
  struct stat st {};
  _dot_stat(st, k == 0 ? h.self : h.parent);
  return fuse_add_direntry(req, dst, room, name, &st, next);
}

// Adds the .snapshots entry that ends a listing of the root under -o
// snapdir=visible, after every real one (none of its name: a real
// .snapshots wins). No attributes: its lookup brings them. The size used.
static std::size_t _add_snapdir(fuse_req_t req, Session& session, char* dst, std::size_t room, bool plus) {
  if (!session.store().lookup(k_root_ino, k_snapdir_name).ok()) {
    struct stat st {};
    st.st_ino = k_snapdir_ino;
    st.st_mode = S_IFDIR;
    fuse_entry_param e{};
    e.attr = st;
    std::size_t need =
        plus ? fuse_add_direntry_plus(req, dst, room, k_snapdir_name.data(), &e, static_cast<off_t>(k_after_snapdir))
             : fuse_add_direntry(req, dst, room, k_snapdir_name.data(), &st, static_cast<off_t>(k_after_snapdir));
    return need > room ? 0 : need;
  }
  return 0;
}

// Adds the reader's current entry at `dst`; the size it needs (more than
// `room`: it did not fit). `p` gets the lookup it hands the kernel, and
// the damage to log.
static std::size_t _add_entry(fuse_req_t req, DirHandle& h, const DirEntry& entry, char* dst, std::size_t room,
                              bool plus, Placed& p) {
  auto next = static_cast<off_t>(h.reader.current_offset());
  if (!entry.damage.empty()) {
    p.damaged_name = entry.name;
    p.damage = entry.damage;
  }
  if (!plus) {
    struct stat st {};
    st.st_ino = h.base | entry.ino;
    st.st_mode = entry.type;
    return fuse_add_direntry(req, dst, room, entry.name.c_str(), &st, next);
  }
  fuse_entry_param e{};
  // Attributes the kernel would refuse (it would drop the entry
  // silently), or none (a damaged inode): list the name without them; its
  // lookup then fails with EIO and a log line.
  std::string why = entry.attr ? kernel_refuses(*entry.attr) : std::string();
  if (why.empty() && entry.ino == k_root_ino) {
    why = "an entry names the root directory (inode 1)";
  }
  // A page read before this mount changed the directory's names may name
  // an inode the name no longer has: the name alone (its lookup asks).
  if (entry.attr && why.empty() && !h.reader.page_stale()) {
    // (entry.age: attributes the page took from the AttrCache were that old)
    double age = std::chrono::duration<double>(DirReader::Clock::now() - h.reader.page_time()).count() + entry.age;
    Attr seen = *entry.attr;
    seen.ino |= h.base;
    e = make_entry(h.tree, seen, age);
    p.counted = seen.ino;
    p.size = seen.size;
  } else {
    if (!why.empty()) {
      p.damaged_name = entry.name;
      p.damage = why;
    }
    e.attr.st_ino = h.base | entry.ino;
    e.attr.st_mode = entry.type;
  }
  return fuse_add_direntry_plus(req, dst, room, entry.name.c_str(), &e, next);
}

// An entry did not fit: take back the run of equal hashes it belongs to,
// unless it began the reply (it cannot be split less, then). The size
// used after.
static std::size_t _take_back_run(std::vector<Placed>& placed, std::size_t used) {
  std::size_t head = placed.size();
  while (head > 0 && placed[head - 1].follows) {
    --head;
  }
  if (head > 0 && placed[head - 1].start > 0) {
    used = placed[head - 1].start;
    placed.resize(head - 1);
  }
  return used;
}

// Positions the reader after `offset`. A handle opened without its
// parent (opendir) learns it with the first page read, in its round trip,
// or, if no page was read, from the directory's attributes.
static Status _seek(Session& session, DirHandle& h, std::uint64_t offset, bool plus) {
  if (h.parent == 0) {
    h.reader.want_parent();
  }
  TRY(h.reader.seek(offset, plus));
  if (h.parent == 0 && h.reader.parent()) {
    h.parent = *h.reader.parent();
  }
  if (h.parent == 0) {
    TRY_ASSIGN(Attr attr, session.store().getattr(h.ino));
    h.parent = attr.parent == 0 ? h.ino : attr.parent;
  }
  return {};
}

// Fills `buf` with what follows `off`, under the handle's lock: the size
// used, the entries placed, or the error to answer.
static Result<std::size_t> _fill(fuse_req_t req, Session& session, DirHandle& h, std::string& buf, off_t off, bool plus,
                                 std::vector<Placed>& placed) {
  const std::size_t size = buf.size();
  std::size_t used = 0;
  const auto offset = static_cast<std::uint64_t>(off < 0 ? 0 : off);
  if (offset < k_after_snapdir) {
    TRY(_seek(session, h, offset, plus));  // before "..", which may need the parent it reads
  }
  bool full = false;
  for (unsigned k = static_cast<unsigned>(std::min<std::uint64_t>(offset, 2)); k < 2 && !full; ++k) {
    std::size_t need = _add_dot(req, h, buf.data() + used, size - used, k, plus);
    full = need > size - used;
    used += full ? 0 : need;
  }
  if (offset >= k_after_snapdir) {
    full = true;  // past the last entry
  }
  while (!full) {
    Result<const DirEntry*> cur = h.reader.current();
    if (!cur) {
      if (used == 0) {
        return cur.error();
      }
      break;
    }
    if (*cur == nullptr) {
      if (h.snapdir) {
        used += _add_snapdir(req, session, buf.data() + used, size - used, plus);
      }
      break;
    }
    Placed p{used, 0, (*cur)->type, 0, h.reader.must_follow(), {}, {}};
    std::size_t need = _add_entry(req, h, **cur, buf.data() + used, size - used, plus, p);
    if (need > size - used) {
      if (p.follows) {
        used = _take_back_run(placed, used);
      }
      break;
    }
    used += need;
    placed.push_back(p);
    h.reader.advance();
    ++h.listed;
  }
  return used;
}

static void _readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Session& session = session_of(req);
  DirHandle& h = *_handle(fi);
  std::string buf(size, '\0');
  std::vector<Placed> placed;
  Result<std::size_t> used = std::size_t{0};
  LeftOut left_out;
  {
    std::lock_guard<std::mutex> lock(h.mutex);
    used = _fill(req, session, h, buf, off, plus, placed);
    left_out = h.reader.take_left_out();
    if (h.reader.restarts() != h.restarts_logged) {
      h.restarts_logged = h.reader.restarts();
      log_warning("readdir of directory " + std::to_string(h.ino) +
                  ": the server changed (a restart or a failover) during the listing; it begins again, so names "
                  "listed already come a second time");
    }
  }
  log_left_out(plus ? "readdirplus" : "readdir", h.ino, left_out, "file name",
               "removes such entries and keeps what they name");
  if (!used) {
    reply_fail(req, plus ? "readdirplus" : "readdir", ino, {}, used.error());
    return;
  }
  std::vector<Ino> counted;
  for (const Placed& p : placed) {
    if (p.counted != 0) {
      session.add_lookup(p.counted, p.type);
      counted.push_back(p.counted);
      if (is_live_ino(p.counted)) {
        session.kernel_sizes().told(p.counted, p.type, p.size);
      }
    }
    if (!p.damage.empty()) {
      log_op_error(plus ? "readdirplus" : "readdir", h.ino, p.damaged_name, make_error(EIO, p.damage));
    }
  }
  reply_dir(req, session, std::string_view(buf.data(), *used), counted);
}

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session& session = session_of(req);
  if (ino == k_root_ino || session.known_type(ino) == S_IFDIR) {
    // The type is settled (an inode keeps its type and number for good);
    // the parent, for "..", comes with the first page (_seek). A directory
    // removed meanwhile fails that read with ENOENT, as Linux fails a
    // listing of a removed directory. rm -rf opens every directory twice.
    open_dir_handle(req, fi, session.store(), live_tree(session), ino, ino, ino == k_root_ino ? ino : 0, 0, nullptr);
    return;
  }
  double age = 0;
  Result<Attr> attr = session.store().getattr(ino, &age);
  if (!attr) {
    reply_fail(req, "opendir", ino, {}, attr.error());
    return;
  }
  if (!attr->is_dir()) {
    reply_err(req, ENOTDIR);
    return;
  }
  Ino parent = ino == k_root_ino || attr->parent == 0 ? ino : attr->parent;
  open_dir_handle(req, fi, session.store(), live_tree(session), ino, ino, parent, 0, nullptr);
}

void open_dir_handle(fuse_req_t req, fuse_file_info* fi, Store& store, const ReplyTree& tree, Ino dir, Ino self,
                     Ino parent, Ino base, std::shared_ptr<void> keep) {
  auto h = std::make_unique<DirHandle>(store, tree, dir, self, parent, base);
  h->keep = std::move(keep);
  if (self == k_root_ino) {
    const SnapDir* snapdir = session_of(req).snapdir();
    h->snapdir = snapdir != nullptr && snapdir->visible();
  }
  fi->fh = reinterpret_cast<std::uint64_t>(h.release());
  fi->keep_cache = 0;
  fi->cache_readdir = 0;
  if (!reply_open(req, fi)) {
    delete _handle(fi);  // no RELEASEDIR comes for an open the kernel did not take
  }
}

void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  _readdir(req, ino, size, off, fi, false);
}

void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  _readdir(req, ino, size, off, fi, true);
}

void releasedir(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  const bool large = _handle(fi)->listed >= k_trim_after_entries;
  delete _handle(fi);
  fi->fh = 0;
  reply_ok(req);
  if (large) {
    trim_heap("a large listing ended");
  }
}

void fsyncdir(fuse_req_t req, fuse_ino_t ino, int /*datasync*/, fuse_file_info* /*fi*/) {
  Session& session = session_of(req);
  // (a writeback mount's directory attribute changes wait: Store::send_dir_changes)
  if (Status st = session.store().send_dir_changes(); !st) {
    reply_fail(req, "fsyncdir", ino, {}, st.error());
    return;
  }
  if (Status st = session.store().sync(); !st) {
    reply_fail(req, "fsyncdir", ino, {}, st.error());
    return;
  }
  reply_ok(req);
}

}  // namespace redisfs::op
