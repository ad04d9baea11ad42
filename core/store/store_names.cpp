// Store, its names: lookups and the name cache, directory listings, and
// every change of a directory's entries (create, mknod, mkdir, symlink,
// link, unlink, rmdir, rename).
#include <algorithm>
#include <charconv>
#include <memory>

#include "store/store.hpp"
#include "store/store_internal.hpp"

namespace redisfs {

using namespace store_internal;

std::vector<std::pair<Ino, std::string>> Store::known_names() {
  std::vector<std::pair<Ino, std::string>> out;
  std::lock_guard lock(m_names_mutex);
  out.reserve(m_names.size());
  for (const auto& [key, ino] : m_names) {
    auto slash = key.find('/');
    std::uint64_t parent = 0;
    if (slash != std::string::npos && parse_u64(std::string_view(key).substr(0, slash), parent)) {
      out.emplace_back(parent, key.substr(slash + 1));
    }
  }
  return out;
}

void Store::remember(Ino parent, std::string_view name, Ino ino, bool one_link,
                     std::optional<std::chrono::steady_clock::time_point> asked) {
  if (asked && m_names_changed.since(parent, *asked)) {
    return;
  }
  m_removed.forget(parent, name);  // it is there (again)
  std::string key = std::to_string(parent) + '/' + std::string(name);
  std::lock_guard lock(m_names_mutex);
  if (m_names.size() >= k_name_cache_max) {
    m_names.clear();
  }
  m_names[std::move(key)] = ino;
  if (one_link) {
    if (m_one_link.size() >= k_name_cache_max) {
      m_one_link.clear();
    }
    m_one_link.insert(ino);
  }
}

void Store::forget_name(Ino parent, std::string_view name) {
  std::string key = std::to_string(parent) + '/' + std::string(name);
  std::lock_guard lock(m_names_mutex);
  m_names.erase(key);
}

Result<Ino> Store::entry_ino(Connection& c, Ino parent, std::string_view name, bool use_cache) {
  if (use_cache) {
    std::string key = std::to_string(parent) + '/' + std::string(name);
    std::lock_guard lock(m_names_mutex);
    auto it = m_names.find(key);
    if (it != m_names.end()) {
      return it->second;
    }
  }
  TRY_ASSIGN(Reply r, c.command({"HGET", m_keys.dir(parent), name}));
  std::uint64_t ino = 0;
  if (r.view().is_nil()) {
    return make_error(ENOENT, "no such entry");
  }
  if (!parse_u64(r.view().str(), ino) || ino == 0) {
    return make_error(EIO, "directory " + std::to_string(parent) + ": malformed entry");
  }
  return ino;
}

Result<std::vector<Ino>> Store::ancestors(Connection& c, Ino dir) {
  std::vector<Ino> chain{dir};
  Ino cur = dir;
  while (cur != k_root_ino) {
    if (chain.size() > 8192) {
      // A cycle of 'parent' fields (a hand-edited or damaged filesystem):
      // EIO, which the daemon logs, not a routine ELOOP.
      return make_error(EIO, "directory " + std::to_string(dir) + ": its chain of 'parent' fields does not reach the root");
    }
    TRY_ASSIGN(Reply r, c.command({"HMGET", m_keys.inode(cur), "type", "parent"}));
    ReplyView v = r.view();
    std::uint64_t p = 0;
    if (!v.is_array() || v.size() != 2 || v[0].is_nil()) {
      return make_error(ENOENT, "directory " + std::to_string(cur) + " was removed");
    }
    if (v[0].str() != "dir") {
      // A damaged or hand-edited filesystem: EIO, which the daemon logs.
      return make_error(EIO, "directory " + std::to_string(dir) + ": inode " + std::to_string(cur) + " in its chain of parents is a " +
                                 _bounded(v[0].str()) + ", not a directory");
    }
    if (!parse_u64(v[1].str(), p) || p == 0) {
      return make_error(EIO, "directory " + std::to_string(cur) + ": bad 'parent' field '" + _bounded(v[1].str()) + "'");
    }
    cur = p;
    chain.push_back(cur);
  }
  return chain;
}

Result<Attr> Store::lookup(Ino parent, std::string_view name, double* age) {
  Result<Attr> attr = lookup_server(parent, name, age);
  if (attr.ok()) {
    links_seen(*attr);
    overlay_gathered(*attr);
  }
  return attr;
}

void Store::links_seen(const Attr& a) {
  if (a.nlink == 1 || a.is_dir()) {
    return;
  }
  {
    std::lock_guard lock(m_names_mutex);
    m_one_link.erase(a.ino);
  }
  if (std::optional<Attr> cached = m_attrs.basis(a.ino); cached && cached->nlink == 1) {
    m_attrs.forget(a.ino);  // (older than this read: defer_unlink would take it for one link)
  }
}

Result<Attr> Store::lookup_server(Ino parent, std::string_view name, double* age) {
  if (name.size() > k_name_max) {
    return make_error(ENAMETOOLONG, "file name longer than 255 bytes");
  }
  if (name == ".") {
    return getattr(parent);
  }
  if (age != nullptr) {
    *age = 0;
    if (name != "..") {
      if (auto known = m_dir_names.absent(parent, name)) {
        *age = *known;
        return make_error(ENOENT, "no such entry");
      }
      if (auto known = m_removed.absent(parent, name)) {
        *age = *known;
        return make_error(ENOENT, "no such entry");
      }
    }
  }
  TRY_ASSIGN(auto c, acquire());
  if (name == "..") {
    TRY_ASSIGN(Reply r, c->command({"HGET", m_keys.inode(parent), "parent"}));
    std::uint64_t p = 0;
    if (r.view().is_nil() || !parse_u64(r.view().str(), p)) {
      return make_error(ENOENT, "no parent");
    }
    return attr_from_read(m_keys, p, c->command({"HGETALL", m_keys.inode(p)}));
  }
  // With a remembered guess, the entry and the guessed inode come back in
  // one round trip; the guess is only used if the entry still names it.
  Ino guess = 0;
  {
    std::string key = std::to_string(parent) + '/' + std::string(name);
    std::lock_guard lock(m_names_mutex);
    auto it = m_names.find(key);
    if (it != m_names.end()) {
      guess = it->second;
    }
  }
  const auto asked = std::chrono::steady_clock::now();
  c->append({"HGET", m_keys.dir(parent), name});
  if (guess != 0) {
    c->append({"HGETALL", m_keys.inode(guess)});
  }
  auto entry = c->read_reply();
  Result<Reply> guessed = guess != 0 ? c->read_reply() : Result<Reply>(Reply());
  TRY(entry);
  if (entry->view().is_nil()) {
    forget_name(parent, name);
    return make_error(ENOENT, "no such entry");
  }
  std::uint64_t ino = 0;
  if (!parse_u64(entry->view().str(), ino) || ino == 0) {
    return make_error(EIO, "directory " + std::to_string(parent) + ": malformed entry");
  }
  if (ino == guess && guessed.ok()) {
    return attr_from_reply(ino, guessed->view());
  }
  auto attr = read_inode(*c, ino);
  if (attr.ok()) {
    remember(parent, name, ino, false, asked);
  }
  return attr;
}

// The parent of directory `dir` from HMGET type parent nlink: ENOENT when
// the inode is gone, or removed (nlink 0: an orphan that a mount which
// removed it has not purged yet, as Linux fails a listing of a removed
// directory), its own number for the root (no parent).
static Result<Ino> _dir_parent(Ino dir, ReplyView v) {
  if (!v.is_array() || v.size() != 3 || v[0].is_nil()) {
    return make_error(ENOENT, "directory " + std::to_string(dir) + " is gone");
  }
  if (v[0].str() != "dir") {
    return make_error(ENOTDIR, "inode " + std::to_string(dir) + " is no directory");
  }
  if (!v[2].is_nil() && v[2].str() == "0") {
    return make_error(ENOENT, "directory " + std::to_string(dir) + " was removed");
  }
  Ino parent = 0;
  return v[1].is_nil() || !parse_u64(v[1].str(), parent) || parent == 0 ? dir : parent;
}

// A page from HSCAN's reply.
static Result<DirPage> _scanned_page(Ino dir, ReplyView v) {
  DirPage page;
  if (!v.is_array() || v.size() != 2 || !parse_u64(v[0].str(), page.next_cursor)) {
    return make_error(EIO, "directory " + std::to_string(dir) + ": bad HSCAN reply");
  }
  ReplyView items = v[1];
  page.entries.reserve(items.size() / 2);
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    DirEntry e;
    e.name = std::string(items[i].str());
    if (!parse_u64(items[i + 1].str(), e.ino) || e.ino == 0) {
      continue;  // fsck reports it; a listing should not fail for it
    }
    page.entries.push_back(std::move(e));
  }
  return page;
}

std::optional<DirPage> Store::page_from_names(Ino dir, std::size_t max, bool plus, Ino* parent, bool& complete) {
  if (!m_opts.writeback || m_opts.read_only) {
    return std::nullopt;
  }
  {
    std::lock_guard lock(m_dirs_mutex);
    if (m_unlink_parents.contains(dir)) {
      return std::nullopt;  // (its list changes when they are answered: the server's, after them)
    }
  }
  Ino up = 0;
  if (parent != nullptr) {
    std::optional<AttrCache::Hit> self = m_attrs.get(dir, AttrCache::Clock::now(), true);
    if (!self || !self->attr.is_dir() || self->attr.nlink == 0) {
      return std::nullopt;
    }
    up = self->attr.parent == 0 ? dir : self->attr.parent;
  }
  std::optional<std::vector<DirNames::Entry>> names = m_dir_names.entries(dir, std::max<std::size_t>(max, 1));
  if (!names) {
    return std::nullopt;
  }
  if (parent != nullptr) {
    *parent = up;
  }
  DirPage page;
  page.asked = std::chrono::steady_clock::now();
  page.entries.reserve(names->size());
  complete = true;
  const auto now = AttrCache::Clock::now();
  for (DirNames::Entry& n : *names) {
    DirEntry e;
    e.name = std::move(n.name);
    e.ino = n.ino;
    if (complete) {
      std::optional<AttrCache::Hit> hit = m_attrs.get(e.ino, now, true);
      if (hit && gathered(e.ino) == nullptr) {
        e.type = hit->attr.mode & S_IFMT;
        e.age = hit->age;
        e.attr = std::move(hit->attr);
      } else {
        complete = false;
      }
    }
    page.entries.push_back(std::move(e));
  }
  if (!complete || !plus) {
    for (DirEntry& e : page.entries) {
      e.attr.reset();  // (readdir_attrs reads what is missing; no attributes without plus)
    }
  }
  if (complete && plus) {
    for (const DirEntry& e : page.entries) {
      remember(dir, e.name, e.ino);
    }
  }
  return page;
}

std::optional<DirPage> Store::first_page_known(Connection& c, Ino dir, std::size_t max, Ino* parent) {
  std::vector<Args> tx{{"HSCAN", m_keys.dir(dir), "0", "COUNT", std::to_string(std::max<std::size_t>(max, 1))},
                       {"HGET", m_keys.inode(dir), "gen"}};
  if (parent != nullptr) {
    tx.push_back({"HMGET", m_keys.inode(dir), "type", "parent", "nlink"});
  }
  const auto sent = DirNames::Clock::now();
  Result<Reply> r = c.transaction(tx);
  if (!r.ok() || !r->view().is_array() || r->view().size() != tx.size()) {
    return std::nullopt;
  }
  ReplyView v = r->view();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].type() == ReplyView::Type::Error) {
      return std::nullopt;  // (damage: the plain read says what)
    }
  }
  Result<Ino> up = parent != nullptr ? _dir_parent(dir, v[2]) : Result<Ino>(Ino{0});
  Result<DirPage> page = _scanned_page(dir, v[0]);
  std::uint64_t gen = 0;
  if (!up.ok() || !page.ok() || (!v[1].is_nil() && !parse_u64(v[1].str(), gen))) {
    return std::nullopt;
  }
  page->server = c.answered_by();
  page->asked = sent;
  // Whole (one page, no entry left out as malformed): every name, as of
  // that count.
  if (page->next_cursor == 0 && v[0].size() == 2 && page->entries.size() * 2 == v[0][1].size()) {
    std::vector<DirNames::Entry> names;
    names.reserve(page->entries.size());
    for (const DirEntry& e : page->entries) {
      names.push_back({e.name, e.ino});
    }
    m_dir_names.known(dir, gen, sent, names);
  }
  if (parent != nullptr) {
    *parent = *up;
  }
  return std::move(page).value();
}

Result<DirPage> Store::readdir(Ino dir, std::uint64_t cursor, std::size_t max, bool plus, Ino* parent,
                               std::optional<std::chrono::steady_clock::time_point> opened) {
  if (cursor == 0) {
    bool complete = false;
    if (std::optional<DirPage> known = page_from_names(dir, max, plus, parent, complete)) {
      if (!complete) {
        TRY_ASSIGN(auto c, acquire());
        TRY(readdir_attrs(*c, dir, *known, plus));
      }
      return std::move(known).value();
    }
  }
  TRY_ASSIGN(auto c, acquire());
  if (cursor == 0 && opened) {
    if (auto first = m_first_pages.take(dir, *opened)) {
      if (parent != nullptr) {
        *parent = first->parent;
      }
      TRY(readdir_attrs(*c, dir, first->page, plus));
      return std::move(first->page);
    }
  }
  if (cursor == 0 && m_opts.writeback && !m_opts.read_only && m_dir_names.enabled()) {
    if (std::optional<DirPage> page = first_page_known(*c, dir, max, parent)) {
      TRY(readdir_attrs(*c, dir, *page, plus));
      return std::move(page).value();
    }
  }
  std::string cur = std::to_string(cursor);
  std::string count = std::to_string(std::max<std::size_t>(max, 1));
  const auto asked = std::chrono::steady_clock::now();
  c->append({"HSCAN", m_keys.dir(dir), cur, "COUNT", count});
  if (parent != nullptr) {  // in the same round trip
    c->append({"HMGET", m_keys.inode(dir), "type", "parent", "nlink"});
  }
  Result<Reply> scanned = c->read_reply();
  std::string server = c->answered_by();
  if (parent != nullptr) {
    Result<Reply> p = c->read_reply();
    TRY(p);
    TRY_ASSIGN(*parent, _dir_parent(dir, p->view()));
  }
  TRY_ASSIGN(Reply r, std::move(scanned));
  TRY_ASSIGN(DirPage page, _scanned_page(dir, r.view()));
  page.server = std::move(server);
  page.asked = asked;
  TRY(readdir_attrs(*c, dir, page, plus));
  return page;
}

// The HSCAN of the first page rides with the HGETALL (not atomically: the
// page is as of a moment after the listing was opened, which is all a
// listing promises). A directory gone or removed keeps no page: its
// listing reads again, and fails there as ever.
Result<Attr> Store::getattr_with_first_page(Connection& c, Ino dir) {
  const std::size_t max = m_first_pages.wanted(dir);
  const auto sent = FirstPages::Clock::now();
  c.append({"HGETALL", m_keys.inode(dir)});
  c.append({"HSCAN", m_keys.dir(dir), "0", "COUNT", std::to_string(std::max<std::size_t>(max, 1))});
  Result<Reply> a = c.read_reply();
  Result<Reply> scanned = c.read_reply();
  Result<Attr> attr = attr_from_read(m_keys, dir, a);
  if (attr && attr->is_dir() && attr->nlink != 0 && scanned) {
    if (auto page = _scanned_page(dir, scanned->view())) {
      page->server = c.answered_by();
      page->asked = sent;
      m_first_pages.keep(dir, sent, std::move(page).value(), attr->parent == 0 ? dir : attr->parent);
    }
  }
  return attr;
}

// The attributes of a page's entries (with `plus`), or their types: those
// the AttrCache holds (never a gathered file's: they are the server's),
// then the others in one more round trip, kept there. An entry gone
// meanwhile leaves the page.
Status Store::readdir_attrs(Connection& c, Ino dir, DirPage& page, bool plus) {
  std::vector<Ino> asked;
  for (auto& e : page.entries) {
    if (!plus) {
      c.append({"HGET", m_keys.inode(e.ino), "type"});
      continue;
    }
    if (auto hit = m_attrs.get(e.ino, AttrCache::Clock::now(), true); hit && gathered(e.ino) == nullptr) {
      e.attr = std::move(hit->attr);
      e.age = hit->age;
      continue;
    }
    c.append({"HGETALL", m_keys.inode(e.ino)});
    asked.push_back(e.ino);
  }
  AttrCache::Change read = m_attrs.begin_read(asked);
  std::vector<Attr> keep;
  std::vector<DirEntry> kept;
  kept.reserve(page.entries.size());
  std::optional<Error> failure;
  for (auto& e : page.entries) {
    if (plus && e.attr) {
      e.type = e.attr->mode & S_IFMT;
      links_seen(*e.attr);
      remember(dir, e.name, e.ino, false, page.asked);
      kept.push_back(std::move(e));
      continue;
    }
    auto a = c.read_reply();
    if (!a.ok()) {
      if (a.error().fault == Fault::None) {
        // The server's answer for this inode alone (WRONGTYPE: damaged).
        e.damage = key_refused("inode " + std::to_string(e.ino), m_keys.inode(e.ino), a.error()).message;
        kept.push_back(std::move(e));
      } else if (!failure) {
        failure = std::move(a).error();
      }
      continue;
    }
    if (plus) {
      auto attr = attr_from_reply(e.ino, a->view());
      if (!attr.ok()) {
        if (attr.error().code != ENOENT) {
          e.damage = attr.error().message;
          kept.push_back(std::move(e));
        }
        continue;  // (ENOENT: removed between the two round trips)
      }
      e.type = attr->mode & S_IFMT;
      e.attr = std::move(attr).value();
      links_seen(*e.attr);
      if (gathered(e.ino) == nullptr) {
        keep.push_back(*e.attr);
      }
      overlay_gathered(*e.attr);
      remember(dir, e.name, e.ino, false, page.asked);
    } else {
      if (a->view().is_nil()) {
        continue;
      }
      auto t = type_bits(a->view().str());
      e.type = t ? *t : 0;
    }
    kept.push_back(std::move(e));
  }
  m_attrs.end_read(read, failure ? std::vector<Attr>{} : keep);
  if (failure) {
    return std::move(*failure);
  }
  page.entries = std::move(kept);
  return {};
}

Store::CreateCall Store::create_call(Ino parent, std::string_view name, std::string_view type, std::uint32_t mode,
                                     std::uint64_t rdev, std::string_view target, const Caller& who, Ino ino,
                                     bool open) const {
  CreateCall call;
  call.keys = {m_keys.sb(), m_keys.freeze(), m_keys.dir(parent), m_keys.inode(parent), m_keys.inode(ino)};
  call.args = {std::string(name),       std::string(type),       format_mode(mode),
               std::to_string(who.uid), std::to_string(who.gid), std::to_string(rdev),
               std::string(target),     std::to_string(ino),     std::to_string(parent)};
  if (open) {
    call.keys.push_back(m_keys.open(ino));
    call.args.push_back(m_opts.session);
  }
  return call;
}

Result<Attr> Store::created_attr(Ino ino, ReplyView v, const CreateCall& call) {
  std::vector<std::string_view> head = _short_fields(v);  // now, gid, mode, then the parent's change
  if (head.empty() && v.is_array() && v.size() == 4) {
    head = {v[0].str(), v[1].str(), v[2].str()};
  } else if (head.size() != 6) {
    return make_error(EIO, "bad create reply");
  }
  const std::vector<std::string>& a = call.args;
  return _new_node_attr(ino, a[1], head[2], a[3], head[1], a[5], head[0], a[8], a[6]);
}

Result<Attr> Store::create_node(Ino parent, std::string_view name, std::string_view type, std::uint32_t mode,
                                std::uint64_t rdev, std::string_view target, const Caller& who, bool open,
                                bool gather) {
  TRY(writable());
  TRY(_check_name(name));
  if (name == "." || name == "..") {
    return make_error(EEXIST, "file exists");
  }
  // Made again here, or found there (EEXIST): either way, not known absent.
  m_removed.forget(parent, name);
  TRY_ASSIGN(auto c, acquire());
  Ino ino = 0;
  CreateCall call;
  std::optional<Attr> basis;
  auto sent = DirNames::Clock::now();
  std::vector<Attr> fresh;
  Result<Reply> r = make_error(EIO, "no create sent");
  // A number some key holds already (damage written after allocate_ino
  // checked its batch: the script refuses it, changing nothing) costs a
  // retry with the next one, not the create.
  for (int attempt = 0; attempt < 8; ++attempt) {
    TRY_ASSIGN(ino, allocate_ino(*c));
    call = create_call(parent, name, type, mode, rdev, target, who, ino, open);
    basis = m_attrs.basis(parent);
    call.args.push_back(_basis_arg(basis));
    sent = DirNames::Clock::now();
    r = eval_change(
        *c, lua::create, call.keys, call.args,
        [&](ReplyView v) {
          fresh = _fresh_parent(parent, v, 3, basis);
          if (type == "dir" && !fresh.empty()) {
            // The new directory's too: the next create in
            // it needs its mode and group (defer_create).
            if (Result<Attr> made = created_attr(ino, v, call)) {
              fresh.push_back(*made);
            }
          }
          return fresh;
        },
        parent);
    if (r.ok() || r.error().code != EIO || r.error().message.find(k_ino_in_use) == std::string::npos) {
      break;
    }
  }
  if (!r.ok()) {
    return std::move(r).error();
  }
  Result<Attr> attr = created_attr(ino, r->view(), call);
  if (attr) {
    note_server_clock(attr->ctime_ns);
  }
  if (!attr || fresh.empty()) {
    m_dir_names.forget(parent);
    return attr;
  }
  m_dir_names.added(parent, fresh[0].gen, sent, name, ino);
  if (attr->is_dir()) {
    m_dir_names.start(ino, attr->gen, sent);
  }
  remember(parent, name, ino, !attr->is_dir());
  if (gather) {
    start_gathering(*attr);
  }
  return attr;
}

Result<Attr> Store::mknod(Ino parent, std::string_view name, std::uint32_t mode, std::uint64_t rdev,
                          const Caller& who) {
  TRY(writable());
  std::string_view type = type_name(mode);
  if (type == "dir" || type == "symlink" || (mode & S_IFMT) == 0) {
    if ((mode & S_IFMT) != 0) {
      return make_error(EINVAL, "mknod cannot make directories or symlinks");
    }
    type = "file";
  }
  bool device = type == "chr" || type == "blk";
  return create_node(parent, name, type, mode, device ? rdev : 0, {}, who);
}

Result<Attr> Store::create(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who, bool gather) {
  if (gather && m_opts.writeback) {
    if (std::optional<Attr> attr = defer_create(parent, name, mode, who)) {
      return *attr;
    }
  }
  return create_node(parent, name, "file", mode, 0, {}, who, true, gather);
}

Result<Attr> Store::mkdir(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who) {
  return create_node(parent, name, "dir", mode, 0, {}, who);
}

Result<Attr> Store::symlink(Ino parent, std::string_view name, std::string_view target, const Caller& who) {
  TRY(writable());
  if (target.empty()) {
    return make_error(ENOENT, "empty symlink target");
  }
  if (target.size() >= 4096) {
    return make_error(ENAMETOOLONG, "symlink target longer than 4095 bytes");
  }
  return create_node(parent, name, "symlink", 0777, 0, target, who);
}

Result<Attr> Store::link(Ino ino, Ino new_parent, std::string_view new_name) {
  TRY(writable());
  TRY(_check_name(new_name));
  if (m_gathered_count.load() != 0) {
    // The link's nlink and ctime land after what waits. A refusal (a full
    // server) is kept for the file's close; the link goes on its own merits.
    (void)settle(ino);
  }
  m_removed.forget(new_parent, new_name);
  {
    std::lock_guard lock(m_names_mutex);
    m_one_link.erase(ino);  // (before it goes: it may have two links from then on)
  }
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(Reply r, eval_change(*c, lua::link,
                                  {m_keys.sb(), m_keys.freeze(), m_keys.dir(new_parent), m_keys.inode(new_parent),
                                   m_keys.inode(ino)},
                                  {std::string(new_name), std::to_string(ino)}));
  auto attr = attr_from_reply(ino, r.view());
  if (attr.ok()) {
    remember(new_parent, new_name, ino);
  }
  return attr;
}

// unlink and rmdir: the script removes `name` from `parent` if it still
// names the inode we guess (else RETRY with the one it names). The
// parent's change comes back at `parent_at` of the reply (dir_reply in
// prelude.lua: its fields, or what changed of the basis we sent). Returns
// the reply and the inode removed.
Result<std::pair<Reply, Ino>> Store::remove_entry(lua::ScriptId script, Ino parent, std::string_view name, bool dir,
                                                  std::size_t parent_at, Prerequisites* before) {
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(Ino guess, entry_ino(*c, parent, name, true));
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    std::vector<std::string> keys{m_keys.sb(), m_keys.freeze(), m_keys.dir(parent), m_keys.inode(parent),
                                  m_keys.inode(guess)};
    if (dir) {
      keys.push_back(m_keys.dir(guess));
    }
    keys.push_back(m_keys.orphans());
    std::vector<std::string> args{std::string(name), std::to_string(guess), m_opts.session};
    if (!dir) {
      keys.push_back(m_keys.xattr(guess));
      push_free_keys(guess, keys, args);
    }
    const std::optional<Attr> basis = m_attrs.basis(parent);
    args.push_back(_basis_arg(basis));  // the last
    const auto sent = DirNames::Clock::now();
    std::vector<Attr> fresh;
    TRY_ASSIGN(Reply r, eval_change(
                            *c, script, keys, args,
                            [&](ReplyView v) {
                              fresh = _fresh_parent(parent, v, parent_at, basis);
                              return fresh;
                            },
                            parent, before));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      if (!parse_u64(v[1].str(), guess)) {
        m_dir_names.forget(parent);
        return make_error(EIO, "bad " + std::string(lua::script_source(script).name) + " reply");
      }
      continue;  // the script changed nothing: the list still holds
    }
    if (fresh.empty()) {
      m_dir_names.forget(parent);
    } else {
      m_dir_names.removed(parent, fresh[0].gen, sent, name);
    }
    forget_name(parent, name);
    m_removed.removed(parent, name, sent);
    return std::pair<Reply, Ino>{std::move(r), guess};
  }
  return make_error(EAGAIN, std::string(lua::script_source(script).name) + ": the entry kept changing");
}

Result<Ino> Store::unlink(Ino parent, std::string_view name, Ino* freed) {
  return unlink_with(parent, name, freed, nullptr);
}

Store::Prerequisites Store::releases_before(std::span<const Release> releases,
                                            std::vector<Result<Released>>& released) {
  auto plan = std::make_shared<ReleasePlan>();
  return Prerequisites{[this, releases, plan](Connection& c) { *plan = queue_releases(c, releases); },
                       [&released, plan, releases](std::vector<Result<Reply>>& replies) {
                         released = release_outcomes(*plan, replies, releases);
                       }};
}

Result<Ino> Store::unlink(Ino parent, std::string_view name, Ino* freed, std::span<const Release> releases,
                          std::vector<Result<Released>>& released) {
  released.clear();
  if (releases.empty()) {
    return unlink_with(parent, name, freed, nullptr);
  }
  Prerequisites before = releases_before(releases, released);
  auto r = unlink_with(parent, name, freed, &before);
  if (!before.sent) {
    released = release_files(releases);  // the unlink failed before it went
  }
  return r;
}

Result<Ino> Store::unlink_with(Ino parent, std::string_view name, Ino* freed, Prerequisites* before) {
  if (freed != nullptr) {
    *freed = 0;
  }
  TRY(writable());
  TRY(_check_name(name));
  settle_all();  // the name may be a file being gathered: its nlink and ctime change
  TRY_ASSIGN(auto done, remove_entry(lua::unlink, parent, name, false, 2, before));
  settle_changed({done.second});  // its links and ctime changed
  const UnlinkOutcome out = _unlink_outcome(done.first.view());
  if (out.freed) {
    if (freed != nullptr) {
      *freed = done.second;
    }
    return Ino{0};  // nobody held it open: unlink.lua freed it
  }
  return out.left && *out.left <= 0 ? done.second : Ino{0};
}

Result<Ino> Store::rmdir(Ino parent, std::string_view name) {
  std::vector<Result<Released>> none;
  return rmdir(parent, name, {}, none);
}

Result<Ino> Store::rmdir(Ino parent, std::string_view name, std::span<const Release> releases,
                         std::vector<Result<Released>>& released) {
  released.clear();
  Prerequisites before = releases_before(releases, released);
  auto r = [&]() -> Result<Ino> {
    TRY(writable());
    TRY(_check_name(name));
    if (name == ".") {
      return make_error(EINVAL, "cannot remove '.'");
    }
    if (name == "..") {
      return make_error(ENOTEMPTY, "cannot remove '..'");
    }
    TRY_ASSIGN(auto done, remove_entry(lua::rmdir, parent, name, true, 1, releases.empty() ? nullptr : &before));
    return done.second;
  }();
  if (!releases.empty() && !before.sent) {
    released = release_files(releases);  // the rmdir failed before it went
  }
  return r;
}

Result<Ino> Store::rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name, unsigned flags,
                          Ino* freed) {
  return rename_with(parent, name, new_parent, new_name, flags, freed, nullptr);
}

Result<Ino> Store::rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name, unsigned flags,
                          Ino* freed, std::span<const Release> releases, std::vector<Result<Released>>& released) {
  released.clear();
  if (releases.empty()) {
    return rename_with(parent, name, new_parent, new_name, flags, freed, nullptr);
  }
  Prerequisites before = releases_before(releases, released);
  auto r = rename_with(parent, name, new_parent, new_name, flags, freed, &before);
  if (!before.sent) {
    released = release_files(releases);  // the rename failed before it went
  }
  return r;
}

Result<Ino> Store::rename_with(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                               unsigned flags, Ino* freed, Prerequisites* before) {
  if (freed != nullptr) {
    *freed = 0;
  }
  TRY(writable());
  TRY(_check_name(name));
  TRY(_check_name(new_name));
  if (flags & ~(k_rename_noreplace | k_rename_exchange) ||
      (flags & k_rename_noreplace && flags & k_rename_exchange)) {
    return make_error(EINVAL, "bad rename flags");
  }
  settle_all();  // either name may be a file being gathered
  m_removed.forget(new_parent, new_name);
  TRY_ASSIGN(auto c, acquire());
  TRY_ASSIGN(Ino src, entry_ino(*c, parent, name, true));
  Ino dst = 0;
  {
    auto d = entry_ino(*c, new_parent, new_name, true);
    if (d.ok()) {
      dst = *d;
    } else if (d.code() != ENOENT) {
      return std::move(d).error();
    }
  }
  std::vector<Ino> chain_a;
  std::vector<Ino> chain_b;
  for (int attempt = 0; attempt < k_retry_max; ++attempt) {
    std::vector<std::string> keys{m_keys.sb(),           m_keys.freeze(),       m_keys.dir(parent),
                                  m_keys.inode(parent),  m_keys.dir(new_parent), m_keys.inode(new_parent),
                                  m_keys.inode(src),     m_keys.inode(dst),     m_keys.dir(dst),
                                  m_keys.xattr(dst),     m_keys.orphans()};
    std::vector<std::string> args{std::string(name),   std::string(new_name), std::to_string(flags),
                                  std::to_string(src),           std::to_string(dst),             m_opts.session,
                                  std::to_string(chain_a.size()), std::to_string(chain_b.size()),  std::to_string(parent),
                                  std::to_string(new_parent)};
    for (const auto* chain : {&chain_a, &chain_b}) {
      for (Ino i : *chain) {
        keys.push_back(m_keys.inode(i));
        args.push_back(std::to_string(i));
      }
    }
    push_free_keys(dst, keys, args);
    const auto sent = RemovedNames::Clock::now();
    TRY_ASSIGN(Reply r, eval_change(*c, lua::rename, keys, args, {}, 0, before));
    ReplyView v = r.view();
    if (_is_retry(v)) {
      if (v.size() < 3 || !parse_u64(v[1].str(), src) || !parse_u64(v[2].str(), dst)) {
        return make_error(EIO, "bad rename reply");
      }
      if (v.size() >= 4 && v[3].str() == "chain") {
        // Moving a directory to another parent: prove it does not land
        // inside itself, with the current chain of ancestors.
        TRY_ASSIGN(chain_a, ancestors(*c, new_parent));
        if (flags & k_rename_exchange) {
          TRY_ASSIGN(chain_b, ancestors(*c, parent));
        }
      }
      continue;
    }
    forget_name(parent, name);
    if (flags & k_rename_exchange) {
      remember(parent, name, dst);
    } else if (src != dst && (parent != new_parent || name != new_name)) {
      m_removed.removed(parent, name, sent);  // renamed away
    }
    remember(new_parent, new_name, src);
    settle_changed({src, dst});  // their ctime (and the replaced one's links) changed
    std::uint64_t orphan = 0;
    if (v.size() >= 2) {
      parse_u64(v[1].str(), orphan);
    }
    if (freed != nullptr && v.size() >= 3 && v[2].str() == "FREED") {
      *freed = dst;
    }
    return orphan;
  }
  return make_error(EAGAIN, "rename: the entries kept changing");
}

}  // namespace redisfs
