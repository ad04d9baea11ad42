// Store::open_file with a prefetch (store/prefetch.hpp) against a real
// redis-server: the open's round trip brings a small file's first bytes,
// its first read answers from them exactly as a read of the server would,
// and never once this mount changed the file, a write of it waits here, the
// ttl passed, or the read lies past them in a file that goes on.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "fixture.hpp"
#include "store/store.hpp"

using namespace redisfs;
using redisfs::test::ok;
using redisfs::test::RedisFixture;

namespace {

const Caller k_user{1000, 1000};

std::unique_ptr<Store> _open(Pool& pool, const std::string& prefix, double ttl = 60) {
  StoreOptions o;
  o.mkfs_block_size = 4096;
  o.attr_cache_seconds = ttl;
  return ok(Store::open(pool, prefix, std::move(o)));
}

std::string _joined(const Store::ReadPieces& p) {
  std::string out;
  for (std::string_view piece : p.pieces) {
    out.append(piece);
  }
  CHECK(out.size() == p.size);
  return out;
}

std::uint64_t _round_trips() { return redis_counters().round_trips; }

// A file of `size` bytes: a hole of 1000 bytes, then bytes that differ.
Attr _file(Store& s, const char* name, std::size_t size) {
  Attr f = ok(s.mknod(k_root_ino, name, S_IFREG | 0644, 0, k_user));
  std::string data;
  for (std::size_t i = 1000; i < size; ++i) {
    data.push_back(static_cast<char>(i * 7 + 3));
  }
  ok(s.write(f.ino, 1000, data, false));
  return f;
}

// An open of `ino` that read ahead.
std::shared_ptr<const Prefetch> _read_ahead(Store& s, Ino ino) {
  std::shared_ptr<const Prefetch> first;
  ok(s.open_file(ino, first));
  REQUIRE(first);
  return first;
}

// What the server answers (read_pieces) and what an open's prefetch
// answers, for one READ; the prefetch must have answered.
void _same(Store& s, Ino ino, std::uint64_t offset, std::size_t size) {
  CAPTURE(offset);
  CAPTURE(size);
  Store::ReadPieces server;
  ok(s.read_pieces(ino, offset, size, server));
  auto first = _read_ahead(s, ino);
  Store::ReadPieces ahead;
  const std::uint64_t before = _round_trips();
  REQUIRE(s.read_prefetched(ino, first, offset, size, ahead));
  CHECK(_round_trips() == before);
  CHECK(_joined(ahead) == _joined(server));
}

}  // namespace

TEST_CASE_FIXTURE(RedisFixture,
                  "prefetch: the open's round trip brings a small file and its read answers as the server") {
  auto s = _open(pool, prefix);
  Attr f = _file(*s, "f", 10000);  // blocks of 4 KiB: a hole, two full blocks, a short one
  std::string warm;
  ok(s->read(f.ino, 0, 1, warm));  // (the scripts are loaded)
  ok(s->open_file(f.ino));
  std::shared_ptr<const Prefetch> first;
  const std::uint64_t before = _round_trips();
  ok(s->open_file(f.ino, first));
  CHECK(_round_trips() == before + 1);
  REQUIRE(first);
  CHECK(Prefetch::held() > 0);
  first.reset();
  CHECK(Prefetch::held() == 0);  // the budget comes back
  _same(*s, f.ino, 0, 12288);    // the kernel's first READ: the whole file, in pages
  _same(*s, f.ino, 0, 131072);   // more than the file: it ended within what was read
  _same(*s, f.ino, 4090, 20);    // across a block's end
  _same(*s, f.ino, 500, 1000);   // out of the hole into the bytes
  _same(*s, f.ino, 9990, 100);   // the end of the file
  _same(*s, f.ino, 20000, 100);  // past it: nothing
  // A sparse block in the middle: short, then a hole, then bytes.
  Attr g = ok(s->mknod(k_root_ino, "g", S_IFREG | 0644, 0, k_user));
  ok(s->write(g.ino, 10, "abc", false));
  ok(s->write(g.ino, 9000, "xyz", false));
  _same(*s, g.ino, 0, 12288);
  _same(*s, g.ino, 5, 9000);
}

TEST_CASE_FIXTURE(RedisFixture, "prefetch: the open's later READs take from it up to its last byte") {
  auto s = _open(pool, prefix);
  Attr f = _file(*s, "f", 100000);
  auto first = _read_ahead(*s, f.ino);
  std::string server;
  ok(s->read(f.ino, 0, 131072, server));
  REQUIRE(server.size() == 100000);
  // A reader with a small buffer: the kernel asks for 32 KiB, then the rest.
  bool more = false;
  Store::ReadPieces out;
  REQUIRE(s->read_prefetched(f.ino, first, 0, 32768, out, &more));
  CHECK(_joined(out) == server.substr(0, 32768));
  CHECK(more);
  const std::uint64_t before = _round_trips();
  REQUIRE(s->read_prefetched(f.ino, first, 32768, 98304, out, &more));
  CHECK(_round_trips() == before);
  CHECK(_joined(out) == server.substr(32768));
  CHECK_FALSE(more);  // the file's last byte: nothing left for a later READ
  first.reset();
  CHECK(Prefetch::held() > 0);  // what the answer points into lives while it does
  out = Store::ReadPieces();
  CHECK(Prefetch::held() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "prefetch: a change through this mount after the open sends the read to the server") {
  auto s = _open(pool, prefix);
  Attr f = _file(*s, "f", 5000);
  auto first = _read_ahead(*s, f.ino);
  ok(s->write(f.ino, 0, "XYZ", false));  // another descriptor of this host
  Store::ReadPieces out;
  CHECK_FALSE(s->read_prefetched(f.ino, first, 0, 8192, out));
  ok(s->read_pieces(f.ino, 0, 8192, out));
  CHECK(_joined(out).substr(0, 3) == "XYZ");
  // A truncate, a setattr of this mount.
  first = _read_ahead(*s, f.ino);
  SetAttrRequest cut;
  cut.size = 100;
  ok(s->setattr(f.ino, cut));
  CHECK_FALSE(s->read_prefetched(f.ino, first, 0, 8192, out));
}

TEST_CASE_FIXTURE(RedisFixture, "prefetch: another mount's change closed before the open is in it") {
  auto s = _open(pool, prefix);
  auto other = _open(pool, prefix);
  Attr f = _file(*s, "f", 5000);
  ok(other->write(f.ino, 0, "THEIRS", false));
  auto first = _read_ahead(*s, f.ino);
  Store::ReadPieces out;
  REQUIRE(s->read_prefetched(f.ino, first, 0, 8192, out));
  CHECK(_joined(out).substr(0, 6) == "THEIRS");
}

TEST_CASE_FIXTURE(RedisFixture, "prefetch: not past the ttl and never with the cache off") {
  auto s = _open(pool, prefix, 0.2);
  Attr f = _file(*s, "f", 5000);
  auto first = _read_ahead(*s, f.ino);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Store::ReadPieces out;
  CHECK_FALSE(s->read_prefetched(f.ino, first, 0, 8192, out));
  auto off = _open(pool, prefix, 0);
  ok(off->open_file(f.ino, first));
  CHECK_FALSE(first);
}

TEST_CASE_FIXTURE(RedisFixture,
                  "prefetch: sized by what the mount saw and a file that goes on answers only within it") {
  auto s = _open(pool, prefix);
  Attr big = _file(*s, "big", 200000);  // its size is known here: bigger than a prefetch
  std::shared_ptr<const Prefetch> first;
  ok(s->open_file(big.ino, first));
  CHECK_FALSE(first);
  Attr empty = ok(s->mknod(k_root_ino, "empty", S_IFREG | 0644, 0, k_user));
  first = _read_ahead(*s, empty.ino);  // its size not seen yet: the first block
  Store::ReadPieces none;
  REQUIRE(s->read_prefetched(empty.ino, first, 0, 4096, none));
  CHECK(none.size == 0);
  ok(s->open_file(empty.ino, first));
  CHECK_FALSE(first);  // seen empty (the open's touch of the atime): no READ comes for it
  // A mount that never saw the file reads its first block ahead.
  auto fresh = _open(pool, prefix);
  first = _read_ahead(*fresh, big.ino);
  Store::ReadPieces out;
  CHECK_FALSE(fresh->read_prefetched(big.ino, first, 0, 8192, out));  // past it, and the file goes on
  ok(fresh->open_file(big.ino, first));
  CHECK_FALSE(first);  // the size is known now (the open's touch of the atime read it)
  auto fresh2 = _open(pool, prefix);
  first = _read_ahead(*fresh2, big.ino);
  REQUIRE(fresh2->read_prefetched(big.ino, first, 0, 4096, out));
  std::string server;
  ok(fresh2->read(big.ino, 0, 4096, server));
  CHECK(_joined(out) == server);
}

TEST_CASE_FIXTURE(RedisFixture, "prefetch: not while the file's writes wait here") {
  auto s = _open(pool, prefix);
  Attr f = ok(s->create(k_root_ino, "f", 0644, k_user, true));
  ok(s->write(f.ino, 0, "gathered", false));
  REQUIRE(s->gathering(f.ino));
  std::shared_ptr<const Prefetch> first;
  ok(s->open_file(f.ino, first));
  CHECK_FALSE(first);
  ok(s->flush(f.ino));
  first = _read_ahead(*s, f.ino);
  ok(s->write(f.ino, 8, " more", false));  // gathered again: held open by its creator
  Store::ReadPieces out;
  CHECK_FALSE(s->read_prefetched(f.ino, first, 0, 4096, out));
  ok(s->read_pieces(f.ino, 0, 4096, out));
  CHECK(_joined(out) == "gathered more");
}

TEST_CASE_FIXTURE(RedisFixture, "prefetch: a damaged block or a removed file") {
  auto s = _open(pool, prefix);
  Attr f = _file(*s, "f", 5000);
  ok(conn().command({"DEL", keys.block(f.ino, 1)}));
  ok(conn().command({"HSET", keys.block(f.ino, 1), "not", "bytes"}));
  std::shared_ptr<const Prefetch> first;
  ok(s->open_file(f.ino, first));  // the open itself stands
  CHECK_FALSE(first);
  Store::ReadPieces out;
  CHECK(s->read_pieces(f.ino, 0, 8192, out).code() == EIO);  // the read reports it
  Attr g = _file(*s, "g", 100);
  auto other = _open(pool, prefix);
  ok(other->unlink(k_root_ino, "g"));
  CHECK(s->open_file(g.ino, first).code() == ESTALE);
  CHECK_FALSE(first);
  CHECK(Prefetch::held() == 0);
}

TEST_CASE_FIXTURE(RedisFixture, "prefetch: the access is recorded with the open under relatime") {
  auto s = _open(pool, prefix);
  Attr f = _file(*s, "f", 5000);
  Attr was = ok(s->getattr(f.ino));
  REQUIRE(was.atime_ns <= was.mtime_ns);
  auto first = _read_ahead(*s, f.ino);
  auto other = _open(pool, prefix);
  Attr now = ok(other->getattr(f.ino));
  CHECK(now.atime_ns > now.mtime_ns);
}

TEST_CASE_FIXTURE(RedisFixture,
                  "open: every open reads the file's attributes at its instant, and a change since drops what the "
                  "mount held of them (close-to-open)") {
  auto a = _open(pool, prefix);  // two mounts of one filesystem
  auto b = _open(pool, prefix);
  Attr f = _file(*a, "f", 3000);
  double age = -1;
  std::uint64_t size = 3000;
  for (int kind = 0; kind < 3; ++kind) {
    CAPTURE(kind);
    // b holds f's attributes for getattr (its own write left them), for 60 s
    ok(b->write(f.ino, 0, "b", false));
    std::uint64_t before = _round_trips();
    REQUIRE(ok(b->getattr(f.ino, &age)).size == size);
    REQUIRE(_round_trips() == before);
    // with nothing changed since, an open leaves them
    Store::Seen seen;
    ok(b->open_file(f.ino, &seen));
    REQUIRE(seen);
    CHECK(seen->size == size);
    before = _round_trips();
    CHECK(ok(b->getattr(f.ino, &age)).size == size);
    CHECK(_round_trips() == before);
    // a grows it: b's getattr still answers the old size, until b's next
    // open, of any kind, which sees the new one, and drops the old
    size += 2000;
    ok(a->write(f.ino, size - 1, "z", false));
    REQUIRE(ok(b->getattr(f.ino, &age)).size == size - 2000);
    std::shared_ptr<const Prefetch> first;
    if (kind == 0) {
      ok(b->open_file(f.ino, first, &seen));  // an open for reading: bytes read ahead too
    } else if (kind == 1) {
      ok(b->open_for_writing(f.ino, &seen));
    } else {
      ok(b->open_file(f.ino, &seen));
    }
    REQUIRE(seen);
    CHECK(seen->size == size);
    CHECK(seen->ino == f.ino);
    CHECK(ok(b->getattr(f.ino, &age)).size == size);
  }
  // a file removed and freed by another mount: a read-write open fails
  // with ESTALE (the VFS looks again), and so does a read-only mount's
  Store::Seen seen;
  Attr g = _file(*a, "g", 10);
  ok(a->unlink(k_root_ino, "g"));
  CHECK(b->open_file(g.ino, &seen).code() == ESTALE);
  StoreOptions ro;
  ro.read_only = true;
  ro.attr_cache_seconds = 60;
  auto c = ok(Store::open(pool, prefix, std::move(ro)));
  CHECK(c->open_file(g.ino, &seen).code() == ESTALE);
  ok(c->open_file(f.ino, &seen));
  REQUIRE(seen);
  CHECK(seen->size == size);
  const std::uint64_t before = _round_trips();
  ok(c->open_file(f.ino));  // (a read-only mount counts no open: without `seen`, no round trip)
  CHECK(_round_trips() == before);
}
