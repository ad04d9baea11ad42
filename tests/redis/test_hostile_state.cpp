// Hostile server states: a change that fails writes nothing.
//
// Every script checks what it counts on before its first write, because
// Redis does not undo the writes a script made before an error: a script
// that fails halfway leaves half a change (a name gone and its inode still
// linked, an orphan nobody will purge). This case damages a small
// filesystem one way at a time (a key of the wrong type or missing, a field
// missing, not a number or out of range, a stray key at the next inode
// number), runs one change of every kind on it, and requires of each change
// that failed that the server holds exactly what it held before (of a
// change made of several scripts, the heartbeat's sweeps: that a second
// run fails the same and changes nothing). Changes that succeed on a
// damaged state are fsck's business, not judged here.
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "redis/lua_scripts.hpp"
#include "snap/snapshot.hpp"
#include "store/store.hpp"

using namespace redisfs;
using namespace redisfs::test;

namespace {

const Caller k_owner{1000, 1000};

// The keys a change may write without it being part of the change: the
// mount's registration and outcome records, and the superblock's
// next_inode (a create takes its number in a script of its own first).
bool _bookkeeping(std::string_view rel) {
  return rel.starts_with("MOUNT") || rel.starts_with("OPLOG") || rel == "WRITEBACK";
}

std::string _rel(const std::string& prefix, const std::string& key) { return key.substr(prefix.size() + 1); }

// What the server holds under the prefix, key by key (bookkeeping left
// out). Pipelined: the types in one round trip, the values in another.
std::map<std::string, std::string> _state(Connection& c, const std::string& prefix) {
  std::vector<std::string> names;
  for (const std::string& key : keys_under(c, prefix)) {
    if (!_bookkeeping(_rel(prefix, key))) {
      names.push_back(key);
      c.append({"TYPE", key});
    }
  }
  const std::vector<Reply> types = ok(c.read_all());
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string_view type = types[i].view().str();
    c.append({type == "string" ? "GET" : type == "hash" ? "HGETALL" : "DUMP", names[i]});
  }
  const std::vector<Reply> values = ok(c.read_all());
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string rel = _rel(prefix, names[i]);
    std::string type(types[i].view().str());
    std::string v = type + ":";
    ReplyView r = values[i].view();
    if (type == "hash") {
      std::vector<std::pair<std::string, std::string>> fields;
      for (std::size_t j = 0; j + 1 < r.size(); j += 2) {
        if (rel == "SB" && r[j].str() == "next_inode") {
          continue;
        }
        fields.emplace_back(r[j].str(), r[j + 1].str());
      }
      std::sort(fields.begin(), fields.end());
      for (const auto& [f, x] : fields) {
        v += f + "=" + x + ";";
      }
    } else {
      v += r.str();
    }
    out[rel] = std::move(v);
  }
  return out;
}

// The keys that differ between two states, for the failure message.
std::string _differences(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) {
      out += " " + k + " (gone)";
    } else if (it->second != v) {
      out += " " + k + " (" + v.substr(0, 120) + " -> " + it->second.substr(0, 120) + ")";
    }
  }
  for (const auto& [k, v] : b) {
    if (a.count(k) == 0) {
      out += " " + k + " (new: " + v.substr(0, 120) + ")";
    }
  }
  return out;
}

struct Saved {
  std::string key;
  std::string payload;  // DUMP
  long long ttl_ms = 0;
};

std::vector<Saved> _save(Connection& c, const std::string& prefix) {
  std::vector<Saved> out;
  for (const std::string& key : keys_under(c, prefix)) {
    c.append({"DUMP", key});
    c.append({"PTTL", key});
    out.push_back({key, "", 0});
  }
  const std::vector<Reply> r = ok(c.read_all());
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].payload = std::string(r[2 * i].view().str());
    out[i].ttl_ms = std::max(0LL, static_cast<long long>(r[2 * i + 1].view().integer()));
  }
  return out;
}

// The prefix as _save found it; pipelined.
void _restore(Connection& c, const std::string& prefix, const std::vector<Saved>& saved) {
  delete_prefix(c, prefix);
  for (const Saved& s : saved) {
    c.append({"RESTORE", s.key, std::to_string(s.ttl_ms), s.payload});
  }
  ok(c.read_all());
}

struct Damage {
  std::string what;
  std::vector<std::vector<std::string>> commands;  // relative key names after the verb
  // Of the file a change's prepare step made ('@' in the key names: its
  // inode number), applied after that step; only for such changes.
  bool prepared = false;
  // The key it makes that no structure names (a stray key), if any.
  std::string unnamed = {};
};

// Copies the rest of the snapshot `cow` of `keys` into `staging`, ends it
// and requires the copy to be the `instant` of the `damage`d state; then
// removes the copy. A key no structure names (damage.unnamed) is not the
// filesystem's: the copier leaves it to fsck (core/store/key_walk.hpp),
// but a change that names it copies it first, as it was at the instant.
void _end_snapshot(Connection& c, const Keys& keys, const Keys& staging, CowSnapshot& cow, test::Content instant,
                   const Damage& damage, const std::string& change) {
  const std::string what = damage.what + " / " + change;
  std::string warning;
  auto copied = copy_keys_cow(c, keys, staging, cow, nullptr, &warning);
  CHECK_MESSAGE(copied.ok(), what << ": the copy failed: " << (copied ? "" : copied.error().message));
  CHECK_MESSAGE(cow.end(c).ok(), what << ": the snapshot did not end");
  if (copied) {
    test::Content staged = test::content(c, staging.prefix());
    if (auto it = staged.find(damage.unnamed); it != staged.end()) {
      CHECK_MESSAGE(it->second == instant[damage.unnamed], what << ": " << damage.unnamed << " is not the instant's");
      staged.erase(it);
    }
    instant.erase(damage.unnamed);
    CHECK_MESSAGE(staged == instant, what << ": the snapshot is not the instant:" << _differences(instant, staged));
  }
  CHECK(remove_staging(c, staging).ok());
}

// Runs every change on every damaged state. With `under_snapshot`, a
// copy-on-write snapshot is taken of the damaged state first (its instant)
// and finished after the change: whatever the change did, and whether it
// failed or not, the snapshot must hold the instant exactly.
class HostileStates : public RedisFixture {
 public:
  void run(bool under_snapshot);
};

}  // namespace

TEST_CASE_FIXTURE(HostileStates, "hostile states: a change that fails writes nothing") { run(false); }

TEST_CASE_FIXTURE(HostileStates, "hostile states: under a snapshot too, and the snapshot holds the instant") {
  run(true);
}

void HostileStates::run(bool under_snapshot) {
  // The filesystem: / holds d (holding f and e), g, the hard link h of f, a
  // symlink l, o (held open by the builder's mount) and the orphan p.
  StoreOptions small_blocks;
  small_blocks.mkfs_block_size = 4096;  // f spans three blocks
  auto builder = ok(Store::open(pool, prefix, small_blocks));
  const Ino d = ok(builder->mkdir(k_root_ino, "d", 0755, k_owner)).ino;
  const Ino e = ok(builder->mkdir(d, "e", 0755, k_owner)).ino;
  const Ino f = ok(builder->mknod(d, "f", S_IFREG | 0644, 0, k_owner)).ino;
  ok(builder->write(f, 0, std::string(10000, 'f'), false));
  ok(builder->setxattr(f, "user.k", "v", 0));
  ok(builder->link(f, k_root_ino, "h"));
  const Ino g = ok(builder->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_owner)).ino;
  ok(builder->write(g, 0, "gg", false));
  ok(builder->symlink(k_root_ino, "l", "d/f", k_owner));
  const Ino o = ok(builder->mknod(k_root_ino, "o", S_IFREG | 0644, 0, k_owner)).ino;
  ok(builder->open_file(o));
  const Ino p = ok(builder->mknod(k_root_ino, "p", S_IFREG | 0644, 0, k_owner)).ino;
  ok(builder->write(p, 0, "pp", false));
  ok(builder->open_file(p));
  REQUIRE(ok(builder->unlink(k_root_ino, "p")) == p);
  const std::string builder_session = builder->session();
  const std::vector<Saved> saved = _save(conn(), prefix);
  const std::string next = std::string(ok(conn().command({"HGET", keys.sb(), "next_inode"})).view().str());

  // One damage at a time.
  std::vector<Damage> damages;
  auto rel_of = [&](const std::string& key) { return _rel(prefix, key); };
  for (const Saved& s : saved) {
    const std::string rel = rel_of(s.key);
    if (_bookkeeping(rel)) {
      continue;
    }
    std::string type(ok(conn().command({"TYPE", s.key})).view().str());
    damages.push_back({rel + " missing", {{"DEL", rel}}});
    if (type == "hash") {
      damages.push_back({rel + " a string", {{"DEL", rel}, {"SET", rel, "stray"}}});
    } else {
      damages.push_back({rel + " a hash", {{"DEL", rel}, {"HSET", rel, "stray", "1"}}});
    }
  }
  const char* inode_fields[] = {"type",  "mode",  "uid",   "gid",   "size", "nlink",  "rdev",
                                "bytes", "atime", "mtime", "ctime", "gen",  "parent", "target"};
  for (Ino ino : {k_root_ino, d, e, f, g, o, p}) {
    const std::string rel = rel_of(keys.inode(ino));
    for (const char* field : inode_fields) {
      damages.push_back({rel + " without " + field, {{"HDEL", rel, field}}});
      damages.push_back({rel + " " + field + "=lots", {{"HSET", rel, field, "lots"}}});
      damages.push_back({rel + " " + field + "=-7", {{"HSET", rel, field, "-7"}}});
      damages.push_back({rel + " " + field + "=2^70", {{"HSET", rel, field, "1180591620717411303424"}}});
    }
  }
  for (const char* field : {"inodes", "bytes", "block_size", "next_inode", "version", "security_xattrs"}) {
    damages.push_back({std::string("SB ") + field + "=lots", {{"HSET", "SB", field, "lots"}}});
  }
  for (const std::string& rel :
       {"INODE:" + next, "OPEN:" + next, "DIR:" + next, "XATTR:" + next, "BLK:" + next + ":0"}) {
    damages.push_back({"a stray " + rel, {{"SET", rel, "stray"}}, false, rel});
  }
  for (const char* field : inode_fields) {
    damages.push_back({std::string("the new file without ") + field, {{"HDEL", "INODE:@", field}}, true});
    damages.push_back({std::string("the new file's ") + field + "=lots", {{"HSET", "INODE:@", field, "lots"}}, true});
    damages.push_back({std::string("the new file's ") + field + "=-7", {{"HSET", "INODE:@", field, "-7"}}, true});
  }
  damages.push_back({"the new file's INODE a string", {{"DEL", "INODE:@"}, {"SET", "INODE:@", "stray"}}, true});
  damages.push_back({"the new file's OPEN a string", {{"DEL", "OPEN:@"}, {"SET", "OPEN:@", "stray"}}, true});
  damages.push_back({"the new file's block 0 a hash", {{"HSET", "BLK:@:0", "stray", "1"}}, true});
  damages.push_back({"ORPHANS names a live file", {{"HSET", "ORPHANS", std::to_string(g), "someone"}}});
  damages.push_back({"OPEN:g count=lots", {{"HSET", "OPEN:" + std::to_string(g), "someone", "lots"}}});

  // Every kind of change, each on a fresh mount of the damaged state.
  using Change = std::function<Status(Store&)>;
  auto status = [](auto r) { return r.ok() ? Status{} : Status(r.error()); };
  // A gathered file (created before the state is read: its create is a
  // change of its own), written to and chmod'ed here, then flushed: the
  // flush is the change judged. 0 when its create was refused.
  Ino gathered = 0;
  auto gather = [&](Store& s) {
    auto a = s.create(d, "gf", S_IFREG | 0644, k_owner, true);
    gathered = a.ok() ? a->ino : 0;
    if (gathered != 0 && s.write(gathered, 0, std::string(3000, 'w'), false).ok()) {
      SetAttrRequest r;
      r.mode = 0600;
      r.mtime = SetAttrRequest::Time::Now;
      (void)s.setattr(gathered, r);
    }
  };
  // sweep_open.lua for one file, after the builder's mount died (its
  // session key is bookkeeping: not judged).
  auto sweep_open = [&](Ino ino) {
    ok(conn().command({"DEL", keys.mount(builder_session)}));
    return status(conn().eval(lua::sweep_open,
                              {keys.open(ino), keys.inode(ino), keys.orphans(), keys.mount(builder_session)},
                              {std::to_string(ino), builder_session}));
  };
  const std::map<std::string, std::function<void(Store&)>> prepare = {{"a gathered file's flush", gather}};
  const std::vector<std::pair<std::string, Change>> changes = {
      {"create", [&](Store& s) { return status(s.create(d, "new", S_IFREG | 0644, k_owner)); }},
      {"mkdir", [&](Store& s) { return status(s.mkdir(d, "nd", 0755, k_owner)); }},
      {"symlink", [&](Store& s) { return status(s.symlink(k_root_ino, "ns", "t", k_owner)); }},
      {"link", [&](Store& s) { return status(s.link(g, d, "ng")); }},
      {"unlink of a last link", [&](Store& s) { return status(s.unlink(k_root_ino, "g")); }},
      {"unlink of one of two links", [&](Store& s) { return status(s.unlink(d, "f")); }},
      {"unlink of a held file", [&](Store& s) { return status(s.unlink(k_root_ino, "o")); }},
      {"rmdir", [&](Store& s) { return status(s.rmdir(d, "e")); }},
      {"rename over a file", [&](Store& s) { return status(s.rename(k_root_ino, "g", d, "f", 0)); }},
      {"rename over a held file", [&](Store& s) { return status(s.rename(k_root_ino, "g", k_root_ino, "o", 0)); }},
      {"rename of a directory", [&](Store& s) { return status(s.rename(d, "e", k_root_ino, "ne", 0)); }},
      {"exchange", [&](Store& s) { return status(s.rename(k_root_ino, "g", d, "e", 2)); }},
      {"write", [&](Store& s) { return status(s.write(f, 5000, "xyz", false)); }},
      {"write across blocks", [&](Store& s) { return status(s.write(f, 4000, std::string(5000, 'x'), false)); }},
      {"write past the end", [&](Store& s) { return status(s.write(g, 9000, "xyz", false)); }},
      {"truncate",
       [&](Store& s) {
         SetAttrRequest r;
         r.size = 3;
         return status(s.setattr(f, r));
       }},
      {"chmod, chown, utimes",
       [&](Store& s) {
         SetAttrRequest r;
         r.mode = 0600;
         r.uid = 7;
         r.gid = 8;
         r.mtime = SetAttrRequest::Time::Now;
         return status(s.setattr(d, r));
       }},
      {"setxattr", [&](Store& s) { return s.setxattr(f, "user.n", "v", 0); }},
      {"removexattr", [&](Store& s) { return s.removexattr(f, "user.k"); }},
      {"open", [&](Store& s) { return s.open_file(g); }},
      {"purge of an orphan", [&](Store& s) { return s.purge(p); }},
      {"release", [&](Store& s) { return status(s.release_file(o)); }},
      {"opens counted again",
       [&](Store& s) {
         const std::pair<Ino, std::uint32_t> held[] = {{o, 2}, {g, 1}, {f, 1}};
         return status(s.hold_opens(held));
       }},
      {"a gathered file's flush", [&](Store& s) { return gathered == 0 ? Status{} : s.flush(gathered); }},
      // One script each: the sweep of a file's dead open counts (the
      // builder's), of a linked file and of the orphan.
      {"a linked file's dead opens swept", [&](Store&) { return sweep_open(o); }},
      {"an orphan's dead opens swept", [&](Store&) { return sweep_open(p); }},
      {"the sweeps after the builder's mount died",
       [&](Store& s) {
         ok(conn().command({"DEL", keys.mount(builder_session)}));  // (bookkeeping: not judged)
         return status(s.sweep_dead_mounts(100));
       }},
  };

  // The changes made of several scripts, each judged whole (a sweep goes
  // on past a file it cannot clear, which it leaves to fsck).
  const std::set<std::string> in_steps = {"the sweeps after the builder's mount died"};
  std::size_t runs = 0;
  std::size_t failed = 0;
  std::size_t no_snapshot = 0;
  auto apply = [&](const Damage& damage, Ino made) {
    for (const auto& cmd : damage.commands) {
      std::vector<std::string> argv = cmd;
      if (auto at = argv[1].find('@'); at != std::string::npos) {
        argv[1].replace(at, 1, std::to_string(made));
      }
      argv[1] = prefix + ":" + argv[1];
      ok(conn().command(argv));
    }
  };
  for (std::size_t di = 0; di < damages.size(); ++di) {
    const Damage& damage = damages[di];
    for (std::size_t ci = 0; ci < changes.size(); ++ci) {
      // Under a snapshot, a third of the pairs (each damage meets every
      // third change; each change a third of the damages): each run costs
      // a snapshot's copy and two more reads of the whole state.
      if (under_snapshot && (di + ci) % 3 != 0) {
        continue;
      }
      const auto& [name, change] = changes[ci];
      const auto prep = prepare.find(name);
      if (damage.prepared && prep == prepare.end()) {
        continue;
      }
      _restore(conn(), prefix, saved);
      if (!damage.prepared) {
        apply(damage, 0);
      }
      auto store = Store::open(pool, prefix, {});
      if (store && prep != prepare.end()) {
        prep->second(**store);
        if (damage.prepared) {
          if (gathered == 0) {
            continue;
          }
          apply(damage, gathered);
        }
      }
      std::optional<CowSnapshot> cow;
      const Keys staging(make_temp_prefix(prefix, TempKind::Copy));
      test::Content instant;
      std::optional<Pool::Lease> lease;
      if (under_snapshot) {
        const auto pre = _state(conn(), prefix);
        lease.emplace(ok(pool.acquire()));
        auto begun = CowSnapshot::begin(**lease, keys, staging, "a test");
        if (!begun) {
          ++no_snapshot;
          const auto post = _state(conn(), prefix);
          CHECK_MESSAGE(post == pre, damage.what << ": a snapshot refused (" << begun.error().message
                                                 << ") and changed:" << _differences(pre, post));
          continue;  // a state no snapshot starts from
        }
        cow.emplace(std::move(begun).value());
        instant = test::content(conn(), prefix);
      }
      if (!store) {
        if (cow) {
          _end_snapshot(**lease, keys, staging, *cow, instant, damage, "no mount");
        }
        continue;  // a superblock no mount accepts: nothing to change
      }
      const auto before = _state(conn(), prefix);
      Status st = change(**store);
      ++runs;
      if (!st && in_steps.count(name) != 0) {
        // Several scripts, each whole: what could be done was, and what
        // failed wrote nothing, so a second run fails and changes nothing.
        ++failed;
        const auto after = _state(conn(), prefix);
        Status again = change(**store);
        const auto after_again = _state(conn(), prefix);
        CHECK_MESSAGE(!again, damage.what << " / " << name << " failed (" << st.error().message << "), then ran whole");
        CHECK_MESSAGE(after_again == after,
                      damage.what << " / " << name << " failed (" << st.error().message
                                  << "), and its second run changed:" << _differences(after, after_again));
      } else if (!st) {
        ++failed;
        const auto after = _state(conn(), prefix);
        CHECK_MESSAGE(after == before, damage.what << " / " << name << " failed (" << st.error().message
                                                   << ") and changed:" << _differences(before, after));
      }
      if (cow) {
        store->reset();  // what an ending mount sends comes while the snapshot lives: judged too
        _end_snapshot(**lease, keys, staging, *cow, instant, damage, name);
      }
    }
  }
  MESSAGE(runs << " changes on " << damages.size() << " damaged states, " << failed << " refused"
               << (under_snapshot ? ", " + std::to_string(no_snapshot) + " states no snapshot starts from" : ""));
  CHECK(failed > 0);
  _restore(conn(), prefix, saved);
}
