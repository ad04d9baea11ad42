// Store: the filesystem operations on Redis, one atomic step each.
//
// This is the whole filesystem minus the kernel: the FUSE daemon (fs/) maps
// each low-level op onto one call here and replies with the Result. Every
// call that changes more than one key runs one Lua script (core/lua/); reads
// are single commands, pipelines or read-only scripts. Calls are
// thread-safe: each takes a connection from the pool for its duration.
//
// Inode numbers are handed out from per-mount ranges (alloc.lua), so a
// create knows its new inode's key before it runs and a create is one round
// trip. Scripts that must follow a directory entry (unlink, rmdir, rename)
// are given the inode the entry is believed to hold (from a small cache of
// names seen by lookup/create/readdir, or one HGET) and answer RETRY if it
// holds another: every key a script touches is named in KEYS.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "redis/redis.hpp"
#include "store/attr_cache.hpp"
#include "store/dir_names.hpp"
#include "store/dir_page.hpp"
#include "store/first_pages.hpp"
#include "store/inode.hpp"
#include "store/keys.hpp"
#include "store/prefetch.hpp"
#include "store/removed_names.hpp"
#include "store/superblock.hpp"
#include "util/buffer_pool.hpp"
#include "util/result.hpp"

namespace redisfs {

// k_name_max, k_xattr_name_max, k_xattr_value_max, k_max_file_size: inode.hpp

struct Caller {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

struct SetAttrRequest {
  enum class Time { Keep, Now, Set };
  std::optional<std::uint32_t> mode;  // permission bits (07777)
  std::optional<std::uint32_t> uid;
  std::optional<std::uint32_t> gid;
  std::optional<std::uint64_t> size;
  Time atime = Time::Keep;
  std::int64_t atime_ns = 0;
  Time mtime = Time::Keep;
  std::int64_t mtime_ns = 0;
  // The change's instant (nanoseconds), its ctime and the time of its
  // "now"s; absent: the server's clock. A writeback mount's kernel keeps
  // a regular file's ctime and sends it (FUSE_SET_ATTR_CTIME); a writeback
  // mount's directory change carries the instant the mount showed.
  std::optional<std::int64_t> ctime_ns;
  // Drop setuid, and setgid of a group-executable file, after the other
  // changes (FATTR_KILL_SUIDGID: a truncate by a caller without CAP_FSETID,
  // a chown of a non-directory): fs/killpriv.hpp.
  bool kill_suidgid = false;
};

// A write by a caller without CAP_FSETID (FUSE_WRITE_KILL_SUIDGID) drops
// setuid, and setgid of a group-executable file, in the same script as its
// data (or, gathered, at the flush with it): fs/killpriv.hpp.
struct WriteKill {
  bool suidgid = false;  // asked
  bool killed = false;   // a bit went: the mode the kernel holds is stale
};

struct StatFs {  // df's numbers: see fs_usage.hpp
  std::uint64_t total_bytes = 0;  // used_bytes + free_bytes
  std::uint64_t free_bytes = 0;
  std::uint64_t used_bytes = 0;  // file data stored
  std::uint64_t inodes = 0;
  std::uint32_t block_size = 0;
};

enum RenameFlags : unsigned { k_rename_noreplace = 1, k_rename_exchange = 2 };
enum XattrFlags : int { k_xattr_create = 1, k_xattr_replace = 2 };

struct StoreOptions {
  bool read_only = false;        // every change fails with EROFS
  bool allow_snapshot_rw = false;  // mount a read-only snapshot read-write anyway
  bool create = true;            // create the filesystem if the prefix is empty
  bool noatime = false;
  std::uint32_t mkfs_block_size = k_default_block_size;
  Caller mkfs_owner{};           // owner of a new root directory
  std::string session;           // mount id (random when empty)
  std::string session_info;      // shown by `redisfs-snap list` (host, pid, mountpoint)
  // How long getattr(ino, &age) may answer with the attributes a change,
  // write or read made here read of the inode (AttrCache); 0 = never. The daemon
  // passes its attr_timeout.
  double attr_cache_seconds = 0;
  // How long lookup(parent, name, &age) may answer "absent" from the names
  // this mount knows to be the whole of a directory it made (DirNames), or
  // for a name this mount removed (RemovedNames); 0 = never. The daemon
  // passes its entry_timeout.
  double names_cache_seconds = 0;
  // fsync waits until this many replicas have every change (WAIT); -1:
  // what the server's min-replicas-to-write asks for (0 when it cannot be
  // read, or on a standalone server).
  int sync_replicas = -1;
  // Gathering (store_gather.cpp): the writes and attribute changes of a
  // file this mount created and holds open wait here, up to
  // gather_file_max bytes of data a file and gather_total_max in all,
  // and go to the server in one round trip at flush(). 0 turns it off
  // (every write reaches Redis before write(2) returns).
  std::size_t gather_file_max = 256 * 1024;
  std::size_t gather_total_max = 64 * 1024 * 1024;
  // A view: a snapshot browsed under another mount's .snapshots directory
  // (fs/snapdir.cpp), sharing that mount's pool. Read-only (whatever
  // read_only says); not a mount of its own (no session in MOUNTS, so it
  // never keeps `redisfs-snap delete` off the snapshot: the view answers
  // ESTALE then); leaves the pool's routing to the mount; and a prefix
  // without a superblock is ENOENT at once, with no SCAN of the server.
  bool view = false;
  // A writeback mount (-o writeback): it holds the filesystem alone. Its
  // registration is refused while another mount is live, and every other
  // mount's while it is (keys.hpp, WRITEBACK; session.lua).
  bool writeback = false;
  // sweep_dead_mounts looks for dead mounts' open counts (a SCAN of the
  // keyspace, a bounded piece a call) when it has seen a crash, and
  // otherwise only this long after its last look ended.
  double sweep_recheck_seconds = 3600;
};

class Store {
 public:
  // Opens (and, if the prefix holds no key and opts.create, creates) the
  // filesystem under `prefix`. Refuses an unknown format version, a prefix
  // holding keys but no superblock, and a read-write open of a read-only
  // snapshot unless opts.allow_snapshot_rw.
  static Result<std::unique_ptr<Store>> open(Pool& pool, const std::string& prefix, StoreOptions opts);
  ~Store();

  const Keys& keys() const { return m_keys; }
  const Superblock& superblock() const { return m_sb; }
  std::uint32_t block_size() const { return m_sb.block_size; }
  bool read_only() const { return m_opts.read_only; }
  // What open() did to finish a restore, copy or rollback that was
  // interrupted while moving its keys in ("" if none was): for the log.
  const std::string& finished_install() const { return m_finished_install; }
  // EROFS on a read-only mount: every change below answers it before
  // anything else (the FUSE ops that check arguments of their own first
  // ask here, to refuse in the same order).
  Status writable() const;
  const std::string& session() const { return m_opts.session; }
  // Which filesystem was opened (filesystem_identity of its superblock).
  const std::string& identity() const { return m_identity; }

  // With `age`, a name absent from a directory whose every name this mount
  // knows is answered ENOENT without a round trip; *age is then how old
  // that knowledge is in seconds, else 0.
  Result<Attr> lookup(Ino parent, std::string_view name, double* age = nullptr);
  // With `age`, the attributes a recent change made here left on a
  // directory may answer (without a round trip); *age is then how old they
  // are in seconds, else 0. While a listing of the directory waits for its
  // first page, the page comes in the same round trip (first_pages.hpp).
  Result<Attr> getattr(Ino ino, double* age = nullptr);
  Result<Attr> setattr(Ino ino, const SetAttrRequest& req);
  Result<std::string> readlink(Ino ino);

  // mode carries the type bits (S_IFREG, S_IFIFO, ...) and permissions
  // (already masked by the caller's umask).
  Result<Attr> mknod(Ino parent, std::string_view name, std::uint32_t mode, std::uint64_t rdev, const Caller& who);
  // A regular file, created open by this mount (see open_file). With
  // `gather` (and gathering on), what is written to it and its attribute
  // changes are gathered here until flush(): see store_gather.cpp. On a
  // writeback mount the create itself may wait there too, answered here
  // (defer_create, store_gather.cpp).
  Result<Attr> create(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who,
                      bool gather = false);
  // Whether changes to `ino` are being gathered, or an error of theirs
  // waits to be reported: it needs a flush().
  bool gathering(Ino ino);
  // Sends what was gathered for `ino` (one round trip), and gathers no
  // more for it: at close(2) (FLUSH) and release. The error of the first
  // change the server refused, if any (ENOSPC, EDQUOT...), also when
  // another operation had sent them earlier: close(2) reports it, as NFS
  // does. `resume` (fsync, FLUSH): a writeback mount's file gathers on
  // once its changes are on the server.
  Status flush(Ino ino, bool resume = false);
  // flush() of every file being gathered, and the directory changes that
  // wait (at unmount).
  Status flush_all();
  // What drop_gathered dropped: how many files' changes (deferred creates
  // among them) and directories' attribute changes.
  struct Dropped {
    std::size_t files = 0;
    std::size_t creates = 0;
    std::size_t dirs = 0;
    std::size_t unlinks = 0;
  };
  // What the mount's caches hold, each against its bound (the daemon's
  // statistics: the memory a long-lived mount keeps).
  struct CacheSizes {
    std::size_t attrs = 0, attrs_max = 0;      // inodes' attributes (AttrCache)
    std::size_t names = 0, names_max = 0;      // names of listed directories (DirNames)
    std::size_t removed = 0, removed_max = 0;  // names removed a moment ago (RemovedNames)
  };
  CacheSizes cache_sizes();
  // Forgets, unsent, every file's gathered changes and every directory
  // change (attributes, unlinks) that waits, once a batch on its way
  // landed, and stops the thread that sends unlinks: the unmount of a
  // mount that stopped serving (another mount holds its filesystem now),
  // where flush_all would write into it.
  Dropped drop_gathered();
  // settle() of every file being gathered: sent, and a refusal kept for the
  // file's close (flush); and the directory changes that wait (a refusal of
  // one is kept for send_dir_changes). The first error. For a writeback
  // mount's answer to a snapshot (sync_asked).
  Status send_all_gathered();
  // A writeback mount's directory attribute changes that wait
  // (store_dirs.cpp): on the server when it returns, with those another
  // thread was sending. What it returns of the first refusal not taken
  // yet (kept when another operation sent them): `take` returns it and
  // forgets it (fsyncdir, unmount), `once` returns it the first time only
  // and keeps it (the daemon's log), `none` never.
  enum class DirRefusal { take, once, none };
  Status send_dir_changes(DirRefusal report = DirRefusal::take);
  // A writeback mount's unlink that waits with the directory changes
  // (store_dirs.cpp): answered now, sent with them. The inode the name
  // held, whose last link it was, when the unlink waits; none when it must
  // go now (unlink()). `held`: whether this mount holds a file open (an
  // unlink of such a file goes now: it leaves an orphan of this mount).
  // `freeing(ino, true)` is called just before the unlink waits (the
  // caller shows the inode freed from then on: its landing may come before
  // defer_unlink returns), `freeing(ino, false)` when it must go now after
  // all.
  std::optional<Ino> defer_unlink(Ino parent, std::string_view name, const std::function<bool(Ino)>& held,
                                  const std::function<void(Ino, bool)>& freeing = {});
  // Likewise an rmdir of a directory this mount knows empty once the
  // unlinks in it that wait have landed (one it made or listed whole:
  // DirNames): the directory removed when it waits, none when it must go
  // now (rmdir()).
  std::optional<Ino> defer_rmdir(Ino parent, std::string_view name);
  // What a removal that waited did to its inode when it landed, as far as
  // the caller must know: `orphan`, it left an orphan (a file some other
  // mount's open count still holds, or any directory, as rmdir() returns
  // it): the caller treats it as an unlink's or rmdir's orphan; `kept`, an
  // unlink left the file its links after all (it had another: damage, or a
  // link this mount did not see) or was refused (it is still there): not
  // freed, whatever defer_unlink's answer implied.
  enum class Landed { orphan, kept };
  // Called with each such inode by the thread that sent the removal. Set
  // before serving; once it returns, a listener it replaced is called no
  // more.
  void on_removal_landed(std::function<void(Ino, Landed)> listener);
  Result<Attr> mkdir(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who);
  Result<Attr> symlink(Ino parent, std::string_view name, std::string_view target, const Caller& who);
  Result<Attr> link(Ino ino, Ino new_parent, std::string_view new_name);

  // These return the inode that lost its last link (now an orphan, whose
  // data lives until purge()), or 0. unlink frees a file that no mount
  // holds open, of up to 16 blocks, at once (0 then). rmdir always orphans
  // the directory: a process may still have it open or as its working
  // directory. `freed`, when given, is set to the inode that unlink or a
  // rename over a file freed at once (nobody held it open), else 0: it is
  // gone from the server, and no op of any mount can change it any more.
  Result<Ino> unlink(Ino parent, std::string_view name, Ino* freed = nullptr);
  // One release for release_files. `orphan`: this mount knows the file as
  // its orphan (its unlink or rename took the last name while the file was
  // open): the release then frees it when it is the last hold of any mount
  // (release_orphan.lua), so that nothing is left for the kernel's FORGET.
  // `purge`: no release but the purge of an orphan of this mount that the
  // kernel forgot (a removed directory, mostly), queued with the releases
  // so that it shares their round trip or an unlink's, rmdir's or
  // rename's: purge.lua's first attempt (Store::purge's), guessing that no
  // mount holds it open; `purge` is the result when that did not finish
  // it (the caller then calls Store::purge).
  struct Release {
    Ino ino = 0;
    bool orphan = false;
    bool purge = false;
  };
  // What one release did: `held` nothing more to do (the file is still
  // open somewhere, or no orphan); `purge` the file is an orphan nobody
  // holds open that the release did not free (another mount's orphan, a
  // freeze, a big file): the caller purges it; `done` the orphan was freed,
  // or handed to a mount that still holds it open (purge.lua's 'HELD'):
  // this mount is done with it.
  enum class Released { held, purge, done };
  // The same, with this mount's queued releases (release_files) sent in
  // front of the unlink, in its round trip: a file closed a moment ago and
  // removed at once (sqlite's journal) is then freed by the unlink itself,
  // not kept as an orphan. `released` gets one result per inode of
  // `releases`, as release_files gives, whatever the unlink's outcome.
  Result<Ino> unlink(Ino parent, std::string_view name, Ino* freed, std::span<const Release> releases,
                     std::vector<Result<Released>>& released);
  Result<Ino> rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name, unsigned flags,
                     Ino* freed = nullptr);
  // The same, with queued releases in front, as unlink: a file closed a
  // moment ago and replaced at once is freed by the rename itself.
  Result<Ino> rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name, unsigned flags,
                     Ino* freed, std::span<const Release> releases, std::vector<Result<Released>>& released);
  Result<Ino> rmdir(Ino parent, std::string_view name);
  // The same, with queued releases (and purges) in front, as unlink.
  Result<Ino> rmdir(Ino parent, std::string_view name, std::span<const Release> releases,
                    std::vector<Result<Released>>& released);

  // Opens are recorded on the server (<prefix>:OPEN:<ino>), so that a file
  // unlinked through one mount lives on while another mount has it open.
  // open_file fails with ESTALE when the file is gone (freed by another
  // mount since this host looked it up). release_file returns true when
  // the file is an orphan of this mount that nobody holds open any more:
  // the caller purges it.
  //
  // With `seen`, an open also reads the file's attributes on the server at
  // its instant, into *seen (close-to-open: the daemon tells the kernel to
  // drop the size it holds when they differ, and what this mount held of
  // them for getattr is dropped when the file changed since). Left empty
  // when this mount's own changes of the file wait here (newer than the
  // server's), on a read-only mount of a snapshot (nothing changes it), on
  // a writeback mount (the only one), or when they cannot be read.
  using Seen = std::optional<Attr>;
  Status open_file(Ino ino, Seen* seen = nullptr);
  // The same for an open that will read (prefetch.hpp): a small file's
  // first bytes come back in the open's round trip, into *first (left
  // empty when nothing was read ahead: the cache is off, the file is big,
  // its writes wait here, the budget is spent, or the read failed; the
  // open's own outcome is the result either way).
  Status open_file(Ino ino, std::shared_ptr<const Prefetch>& first, Seen* seen = nullptr);
  // The same for an open that may write. On a writeback mount the file's
  // writes and attribute changes are then gathered until its close, from
  // the attributes the open read (store_gather.cpp).
  Status open_for_writing(Ino ino, Seen* seen = nullptr);
  Result<bool> release_file(Ino ino);
  // Several releases in one round trip (one pipeline), the plain ones
  // (not this mount's orphans) k_release_batch to a script: one result per
  // file of `files`, in order.
  static constexpr std::size_t k_release_batch = 256;
  // The most block pieces one write.lua of a gathered file's flush carries
  // (a 1 MiB write's at the smallest block size): thousands of scattered
  // small writes go as several scripts, none of them long.
  static constexpr std::size_t k_gather_script_blocks = 256;
  std::vector<Result<Released>> release_files(std::span<const Release> files);

  // Reads up to `size` bytes at `offset` (short at end of file; holes are
  // zeros) into `out`.
  Status read(Ino ino, std::uint64_t offset, std::size_t size, std::string& out);
  // The same bytes as pieces, in order, that point into the server's reply
  // (or into zeros, for holes and short blocks): the daemon hands them to
  // the kernel as they are, with no copy.
  struct ReadPieces {
    Reply reply;
    std::shared_ptr<const void> held;  // what else the pieces point into (a Prefetch)
    std::vector<std::string_view> pieces;
    std::size_t size = 0;  // their total
  };
  Status read_pieces(Ino ino, std::uint64_t offset, std::size_t size, ReadPieces& out);
  // lseek(2)'s SEEK_DATA (`data`) or SEEK_HOLE from `offset`, as the
  // server holds the file (with what this mount gathered for it sent
  // first): a block present on the server is data, a missing one is a
  // hole (a file's holes are the blocks never written, or truncated
  // away), and the end of the file is a hole. ENXIO at or past the end,
  // and for SEEK_DATA when only holes follow. Probes the blocks with
  // EXISTS, many at a time (a round trip covers up to 64 Ki blocks of
  // holes or of data); a SEEK_DATA past more holes than the server has
  // keys (and 1 Mi blocks) SCANs for the file's blocks instead.
  Result<std::uint64_t> seek_data(Ino ino, std::uint64_t offset, bool data);
  // fallocate(2)'s FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE): the bytes of
  // [offset, offset + length) that lie within the file read as zeros
  // after, and the blocks the range covers whole are removed (their bytes
  // leave the counts); the size stays. What this mount gathered for the
  // file is sent first. Done in steps of at most 1024 blocks, each atomic
  // (punch.lua), each from the next block holding data (found as
  // seek_data finds it: a sparse range costs its data, not its length);
  // every step stamps mtime and ctime (on a writeback mount, counts 'gen':
  // the kernel keeps the times), and a range of holes only that too.
  // `kill` (may be null): when asked, setuid goes, and setgid of a
  // group-executable file (a write's rule), and `killed` says whether a
  // bit went. Nothing changes when the range starts at or past the end of
  // the file.
  Status punch_hole(Ino ino, std::uint64_t offset, std::uint64_t length, WriteKill* kill);
  // The same read answered from what the open read ahead, when that still
  // holds (prefetch.hpp): true, and *more says whether `first` holds bytes
  // past this read's end for a later READ of the open. false: the caller
  // reads with read_pieces, and `first` has no use left.
  bool read_prefetched(Ino ino, const std::shared_ptr<const Prefetch>& first, std::uint64_t offset, std::size_t size,
                       ReadPieces& out, bool* more = nullptr);
  // Writes `data` at `offset`, or at the end of file when `append` (the
  // offset used is returned). Returns the offset written at.
  Result<std::uint64_t> write(Ino ino, std::uint64_t offset, std::string_view data, bool append,
                              WriteKill* kill = nullptr);
  // copy_file_range(2) on the server: up to `length` bytes of `src` from
  // `src_offset` go to `dst` at `dst_offset`, in one atomic step
  // (copy_range.lua) of at most k_copy_pieces pieces (a piece lies within
  // one block of each file): the bytes copied, fewer than asked at the
  // source's end (0 at or past it) and past the step's size (the caller
  // asks again for the rest, as copy_file_range(2) allows). A whole block
  // aligned in both files is a COPY on the server, a hole stays a hole.
  // What this mount gathered for either file is sent first. `kill` as for
  // a write, of the destination.
  Result<std::uint64_t> copy_range(Ino src, std::uint64_t src_offset, Ino dst, std::uint64_t dst_offset,
                                   std::uint64_t length, WriteKill* kill);

  // One page of a directory (at most `max` entries, fewer at the end), from
  // `cursor` (0 to start). No "." or "..": the caller adds them. `parent`,
  // when given, gets the directory's parent (the root's own number for the
  // root) in the same round trip: ENOENT when the directory is gone or
  // removed (nlink 0, not purged yet). With `plus`,
  // an entry whose attributes the AttrCache holds takes them from there
  // (DirEntry::age says how old), the others are read in one more round
  // trip and kept there: a directory listed again at once (rm -rf opens
  // every directory twice) costs its HSCAN only. The names are read every
  // time, after the listing was opened. An entry whose inode cannot be
  // read (damaged) is listed all the same, without its attributes
  // (DirEntry::damage says why), so one bad inode does not hide its
  // directory.
  //
  // A listing opened at `opened` (DirReader) whose first page a getattr
  // read meanwhile takes that page instead (first_pages.hpp: rm -rf's
  // second listing then costs no round trip of its own); it says so
  // with listing_waits(dir, max) when opened and listing_done(dir) once it
  // has read a page, or was closed without.
  //
  // A writeback mount lists a directory it knows whole (DirNames: one it
  // made or listed whole, fewer names than a page) from memory, as the
  // first page (cursor 0) the server would give: the same entries, so the
  // same offsets (DirReader), with the attributes the AttrCache holds;
  // only those it does not hold, and a gathered file's, are read, in one
  // round trip. Its first page of any other directory is read with the
  // directory's change count (first_page_known), so that it knows that
  // one whole from then on when the page held every name.
  Result<DirPage> readdir(Ino dir, std::uint64_t cursor, std::size_t max, bool plus, Ino* parent = nullptr,
                          std::optional<std::chrono::steady_clock::time_point> opened = std::nullopt);
  void listing_waits(Ino dir, std::size_t max) { m_first_pages.waits(dir, max); }
  void listing_done(Ino dir) { m_first_pages.done(dir); }
  // Whether this mount changed the names of `dir` since a page of its
  // listing was asked for at `asked` (NamesChanged: list its names
  // without their inodes then).
  bool names_changed_since(Ino dir, std::chrono::steady_clock::time_point asked) const {
    return m_names_changed.since(dir, asked);
  }

  Status setxattr(Ino ino, std::string_view name, std::string_view value, int flags);
  Result<std::string> getxattr(Ino ino, std::string_view name);
  // The attributes' names, but those the kernel cannot take
  // (check_xattr_name), counted in `left_out`.
  Result<std::vector<std::string>> listxattr(Ino ino, LeftOut& left_out);
  Status removexattr(Ino ino, std::string_view name);
  // Removes security.capability (file capabilities) if the file has one,
  // as a write, truncate or chown must: no round trip while no security.*
  // attribute exists on the filesystem (security_xattrs_possible).
  Status drop_capability(Ino ino);

  Result<StatFs> statfs();

  // Frees an orphan: its blocks, xattrs and inode. Safe to call for an
  // inode that was linked again or is already gone.
  Status purge(Ino ino);
  // Purges the orphans of mounts that are no longer alive (a crash leaves
  // them behind). Returns how many were purged. One that cannot be (a
  // damaged inode) does not stop the others: the first failure is returned
  // after all, and `done` (if given) gets how many were purged even then.
  Result<std::size_t> purge_dead_orphans(std::size_t* done = nullptr);
  // Removes the open counts (<prefix>:OPEN:<n>) of mounts that are no
  // longer alive, and frees the orphans nobody holds open then. One call
  // looks at up to `max_scan_calls` SCAN pages of the keyspace, going on
  // where the last call stopped (a daemon calls it with each heartbeat:
  // the work per call stays bounded on a server with many keys); `pass_done`
  // says the last page of a whole pass was seen. Returns the number of
  // counts removed. A file that cannot be cleared does not stop the others
  // (as purge_dead_orphans; `done` likewise).
  Result<std::size_t> sweep_dead_opens(std::size_t max_scan_calls, bool* pass_done = nullptr,
                                       std::size_t* done = nullptr);
  // Removes this mount's own open counts from every OPEN key (up to
  // `max_scan_calls` SCAN pages): at unmount, after every release was sent,
  // when an open or a release may have been counted or not (its reply was
  // lost). Returns how many were removed.
  Result<std::size_t> drop_own_opens(std::size_t max_scan_calls);
  // The orphans the ORPHANS hash gives to this mount (unlinked while it
  // held them open; one whose release the server lost stays there).
  Result<std::vector<Ino>> own_orphans();
  // After a change of server (server_changes moved): raises this mount's
  // open count of each file in `held` (inode, opens this mount holds) that
  // is still there to at least that number, putting back the opens the
  // old server acknowledged and the new one lost (another mount would free
  // such a file at its unlink while this one still has it open). Never
  // lowers a count. Returns how many it raised.
  Result<std::size_t> hold_opens(std::span<const std::pair<Ino, std::uint32_t>> held);
  // A snapshot's request that this writeback mount send what it holds
  // (keys.hpp, SYNC): the request's time, or 0 when none waits (also when
  // the key is damaged: fsck's). sync_answered says the request of that
  // time is answered (nothing when the request lapsed meanwhile).
  Result<std::int64_t> sync_asked();
  Status sync_answered(std::int64_t asked);
  // Both sweeps: what every live mount runs with its heartbeat, so that a
  // crashed mount's opens and orphans go even if no mount starts again.
  // The orphans (one HGETALL) and the register's dead fields are cleared at
  // every call. The open counts sit in one key per file, found only by a
  // SCAN of the whole keyspace (bounded to `max_scan_calls` pages a call,
  // going on at the next): a pass of it starts at the first call, at the
  // call that drops a dead mount's registration (in that same call), after
  // a pass that failed, and otherwise sweep_recheck_seconds after the last
  // pass ended, for a crash whose registration another mount dropped and
  // that mount did not live (or stay mounted) to sweep. So a server
  // crowded with other keys is not scanned without end by every mount.
  struct SweepResult {
    std::size_t orphans = 0;
    std::size_t opens = 0;
    std::size_t registrations = 0;  // fields of dead mounts dropped from <prefix>:MOUNTS (prune_mounts.lua)
    // "N open counts, N orphan inodes, N registrations", for a log line
    std::string said() const;
  };
  Result<SweepResult> sweep_dead_mounts(std::size_t max_scan_calls);

  // The session key (<prefix>:MOUNT:<id>) says this mount is alive; refresh
  // it more often than k_session_ttl_ms.
  static constexpr long k_session_ttl_ms = 30000;
  // Whether the filesystem this Store opened is still the one under its
  // prefix: ESTALE when its superblock is gone (deleted) or is another
  // filesystem's (its `created` differs: deleted and made again, restored
  // or rolled back over it); another error when the server could not say.
  Status check_same_filesystem();
  // The names this Store remembers (lookup, create, readdirplus), as
  // (parent, name): what a daemon asks the kernel to forget when the
  // filesystem is gone.
  std::vector<std::pair<Ino, std::string>> known_names();
  // Registers or refreshes the session (Store::open does it first); the
  // destructor ends it. EBUSY when the filesystem is held by a live
  // writeback mount, or (StoreOptions::writeback) is mounted elsewhere.
  Status heartbeat();
  // Whether a heartbeat of this registered session was refused so: its
  // session key lapsed (a long outage, a partition, a failover that lost
  // it) and a mount that excludes it took the filesystem meanwhile (a
  // writeback claim of a mount the register lists, or a live mount beside
  // this writeback one). Two such mounts must not both serve: the caller
  // stops serving (a writeback mount's caches would hide the other's
  // changes, and the other takes this mount's opens for a dead mount's and
  // frees them).
  bool session_taken() const { return m_session_taken.load(); }
  // A read-only mount of a snapshot that keeps what it reads (its kernel
  // caches for an hour): registered, and the snapshot was never mounted
  // writable (session.lua's admission keeps it so while this one lives).
  bool frozen() const { return m_frozen; }
  // What `redisfs-snap list` shows of this mount (host, pid, mountpoint);
  // takes effect at the next heartbeat. Not thread-safe with heartbeat().
  void set_session_info(std::string info) { m_opts.session_info = std::move(info); }
  // The kernel keeps regular files' mtime and ctime itself and writes them
  // back (a writeback mount whose kernel granted the writeback cache, and
  // sends ctimes: FUSE 7.23): a write leaves them to it (write.lua's 'k').
  void set_kernel_file_times(bool on) { m_kernel_file_times.store(on); }
  Status end_session();
  // Whether open() loaded every script ahead (Connection::preload_scripts;
  // not for a view): an error is no failure, each script is then loaded
  // at its first use.
  const Status& scripts_preloaded() const { return m_scripts_preloaded; }
  // fsync / fdatasync: every change made so far (by any mount) is on
  // sync_replicas replicas, or EIO. Also EIO (once) when the master is
  // another one than at the last sync (a failover or a restart): what the
  // old one acknowledged may be lost. Nothing to do without replicas asked.
  Status sync();
  int sync_replicas() const { return m_opts.sync_replicas; }
  // The replicas connected to the server when a mount whose fsync waits
  // for some opened (INFO replication), if it could tell: fewer than
  // sync_replicas() and every fsync fails after the timeout until more come.
  std::optional<long long> replicas_at_open() const { return m_replicas_at_open; }
  // The server changed since open (a failover or a restart, seen by any
  // connection, or now by a PING): changes the old one acknowledged may be
  // lost, the releases among them (their open counts stay).
  Result<bool> server_changed();
  // How many changes of server this mount's connections have seen so far
  // (Pool::server_changes): a moved number asks for hold_opens.
  std::uint64_t server_changes() const { return m_pool.server_changes(); }

 private:
  Store(Pool& pool, const std::string& prefix, StoreOptions opts);
  Status load_superblock(Connection& c);
  Status opened_snapshot(Connection& c);
  Result<bool> keeps_what_it_reads(Connection& c);
  Error registration_refusal(Connection& c, ReplyView v);
  Error snapshot_rw_refusal() const;
  Result<Ino> allocate_ino(Connection& c);
  // The next number of the batch allocate_ino reserved that no key holds
  // (m_ino_taken), or 0 when the batch is spent; with m_alloc_mutex held.
  Ino take_ino_locked();
  // getattr of a directory a listing waits on: its first page too, in the
  // same round trip (first_pages.hpp).
  Result<Attr> getattr_with_first_page(Connection& c, Ino dir);
  // readdir's second step: the attributes (or types) of a page's entries.
  Status readdir_attrs(Connection& c, Ino dir, DirPage& page, bool plus);
  // A writeback mount's first page of `dir` from its DirNames list (with
  // `parent`, from the directory's cached attributes, when asked), or
  // nullopt: none is known, unlinks in it wait, or the parent is not held.
  // `complete`: every entry's attributes (or type) came from the AttrCache.
  std::optional<DirPage> page_from_names(Ino dir, std::size_t max, bool plus, Ino* parent, bool& complete);
  // A writeback mount's first page of `dir` (with `parent` when asked),
  // read with the directory's change count in one transaction: when it is
  // the whole directory, DirNames knows every name from then on, as if
  // this mount had made it. nullopt when the read failed or found damage
  // (the plain read then says what).
  std::optional<DirPage> first_page_known(Connection& c, Ino dir, std::size_t max, Ino* parent);
  Result<Attr> create_node(Ino parent, std::string_view name, std::string_view type, std::uint32_t mode,
                           std::uint64_t rdev, std::string_view target, const Caller& who, bool open = false,
                           bool gather = false);
  // What a change script read of the inodes it changed (for m_attrs).
  using FreshAttrs = std::function<std::vector<Attr>(ReplyView)>;
  // Commands or scripts sent once in front of a change, in its round trip
  // (Connection::eval_after): `queue` appends them, `judge` gets their
  // replies, whatever the change's outcome. A caller that retries the
  // change (a RETRY answer) does not send them again; one whose change
  // never went (it failed before) finds `sent` false and sends them itself.
  struct Prerequisites {
    std::function<void(Connection&)> queue;
    std::function<void(std::vector<Result<Reply>>&)> judge;
    bool sent = false;
  };
  // Every directory named in `keys` loses its DirNames list, but
  // `reporting_dir`, whose caller reports the change itself when the script
  // succeeds.
  Result<Reply> eval_change(Connection& c, lua::ScriptId script, const std::vector<std::string>& keys,
                            const std::vector<std::string>& args, const FreshAttrs& fresh = {}, Ino reporting_dir = 0,
                            Prerequisites* before = nullptr);
  // The size of copy_range's source, its access recorded (relatime).
  Result<std::string> copy_source(Connection& c, Ino src);
  // Sets the size (in steps from the end for a huge shrink). `readable`:
  // refused (EIO, before any change) when the client cannot decode the
  // inode, whose fields the caller's reply carries (setattr); a purge
  // frees a damaged orphan all the same.
  Status truncate(Connection& c, Ino ino, std::uint64_t new_size, bool final_times, bool may_scan,
                  bool readable = false);
  Result<Ino> entry_ino(Connection& c, Ino parent, std::string_view name, bool use_cache);
  Result<std::vector<Ino>> ancestors(Connection& c, Ino dir);
  Result<std::pair<Reply, Ino>> remove_entry(lua::ScriptId script, Ino parent, std::string_view name, bool dir,
                                             std::size_t parent_at, Prerequisites* before = nullptr);
  Result<Ino> unlink_with(Ino parent, std::string_view name, Ino* freed, Prerequisites* before);
  Result<Ino> rename_with(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name, unsigned flags,
                          Ino* freed, Prerequisites* before);
  // release_files' commands: for each command queued, the indexes in
  // `files` of the files it releases (release.lua takes up to
  // k_release_batch of them; release_orphan.lua one).
  using ReleasePlan = std::vector<std::vector<std::size_t>>;
  ReleasePlan queue_releases(Connection& c, std::span<const Release> files);
  // What the replies to a plan's commands say, one result per file (of
  // `files` files); a command's failure is each of its files' error.
  static std::vector<Result<Released>> release_outcomes(const ReleasePlan& plan, std::vector<Result<Reply>>& replies,
                                                        std::span<const Release> files);
  // One command's reply: the results of its files (`at`, indexes into
  // `files` and `out`).
  static void release_outcome(Result<Reply> r, const std::vector<std::size_t>& at, std::span<const Release> files,
                              std::vector<Result<Released>>& out);
  // Prerequisites that send `releases` in front of a change; their results
  // go to `released`.
  Prerequisites releases_before(std::span<const Release> releases, std::vector<Result<Released>>& released);
  // The server showed `a` with other than one link: no longer in
  // m_one_link, nor cached with one (AttrCache), whoever linked it (a link
  // made behind this mount's back; the kernel may know the file by that
  // name too): defer_unlink does not take it for the file's last.
  void links_seen(const Attr& a);
  // `name` in `parent` names `ino`; `one_link`: a file this mount just
  // made, with that one link (m_one_link). `asked`: what a read asked for
  // then (a lookup, a listing's page) says so; not remembered if this
  // mount changed the names of `parent` since (a rename that landed
  // between the read and now: the name would be stale, and a writeback
  // mount's unlink that waits trusts it).
  void remember(Ino parent, std::string_view name, Ino ino, bool one_link = false,
                std::optional<std::chrono::steady_clock::time_point> asked = std::nullopt);
  void forget_name(Ino parent, std::string_view name);
  // Whether a file may have a security.* attribute: the superblock's flag,
  // read at most once a second (store_xattr.cpp).
  Result<bool> security_xattrs_possible();

  // Gathering (store_gather.cpp).
  struct Gathered;
  struct DeferredCreate;
  std::shared_ptr<Gathered> start_gathering(const Attr& attr);
  // `create`: the file is not on the server yet (defer_create).
  std::shared_ptr<Gathered> start_gathering(const Attr& attr, std::unique_ptr<DeferredCreate> create);
  // KEYS and ARGV of create.lua, but its last argument (the parent's basis).
  struct CreateCall {
    std::vector<std::string> keys;
    std::vector<std::string> args;
  };
  CreateCall create_call(Ino parent, std::string_view name, std::string_view type, std::uint32_t mode,
                         std::uint64_t rdev, std::string_view target, const Caller& who, Ino ino, bool open) const;
  // The new inode create.lua's reply `v` describes.
  static Result<Attr> created_attr(Ino ino, ReplyView v, const CreateCall& call);
  // A create's reply showed the server's clock at `server_ns` (just now).
  void note_server_clock(std::int64_t server_ns);
  // A writeback mount's create answered here and sent with the file's
  // first flush (or before any other operation reaches the server); none
  // when it must go to the server now (see store_gather.cpp for when).
  std::optional<Attr> defer_create(Ino parent, std::string_view name, std::uint32_t mode, const Caller& who);
  // The server's answer to a deferred create (its reply `r`): what this
  // mount knows of the parent follows, or is dropped; `file.attr` takes
  // the group the server gave (a parent's setgid this mount did not know
  // of), unless a chown waits.
  // `combined`: `r` is create_write.lua's, the create's reply its first
  // element.
  Status created(Ino ino, Gathered& file, const DeferredCreate& create, const Result<Reply>& r, bool combined,
                 const AttrCache::Change& change, std::chrono::steady_clock::time_point sent);
  // Sends every deferred create (not the data and changes gathered with
  // them): before any operation that reaches the server but a gathered
  // file's own, so that none sees the server without them. An error is
  // kept for the file's flush().
  void send_deferred_creates();
  // The pool's connection, once the deferred creates are on the server.
  Result<Pool::Lease> acquire();
  std::shared_ptr<Gathered> gathered(Ino ino);
  // Absorbs a write or an attribute change of a file being gathered (true;
  // `out`: the attributes to answer with); false when the caller must send
  // it itself: what was gathered for the file has been sent first.
  Result<bool> gather_write(Ino ino, std::uint64_t offset, std::string_view data, bool append, WriteKill* kill);
  Result<bool> gather_setattr(Ino ino, const SetAttrRequest& req, Attr& out);
  // The same for a directory of a writeback mount (store_dirs.cpp).
  bool gather_dir_setattr(Ino ino, const SetAttrRequest& req, Attr& out);
  // Sends the directory changes that wait (attributes, then unlinks), a
  // refusal kept for send_dir_changes; with `m_dir_send_mutex` held.
  void send_waiting_dirs();
  void send_waiting_attrs();
  void send_waiting_unlinks();
  // The thread that sends waiting unlinks as soon as they wait (one batch
  // on its way at a time: those answered meanwhile go in the next).
  void unlink_sender_loop();
  void stop_unlink_sender();
  // Keeps the first refusal of a waiting directory change.
  void dir_change_refused(Error e);
  // What this mount shows of a directory whose unlinks wait.
  std::optional<Attr> unlinked_parent_attr(Ino ino);
  // The attributes this mount sees of a file being gathered: the server's
  // plus what waits here.
  std::optional<Attr> gathered_attr(Ino ino);
  // A read of `ino` left its atime at `atime_ns` on the server.
  void gathered_accessed(Ino ino, std::int64_t atime_ns);
  void overlay_gathered(Attr& attr);
  // What a file does once send_gathered sent its changes: gather no more
  // (stop); gather on if it is a writeback mount's (resume), unless the
  // server refused one; or, `create_only`, send only the deferred create,
  // and the file gathers on (but for a refused create: then nothing more).
  enum class Then { stop, resume, create_only };
  // Sends what `file` gathered (its mutex held), its deferred create first.
  // `fields`: the last script's reply carries the file's fields, kept in
  // AttrCache for when the file is released (a writeback mount's flush).
  Status send_gathered(Ino ino, Gathered& file, Then then, bool fields = false);
  // send_gathered's round trip: `create` (if any), then (with `changes`)
  // the changes, in one pipeline on `c`. The first error.
  Status send_pipelined(Connection& c, Ino ino, Gathered& file, const DeferredCreate* create, bool changes,
                        bool fields);
  // Whether `file`'s first script is a write's: its deferred create may
  // ride in it.
  static bool combines_create(const Gathered& file);
  // Where the file's fields are in the reply of the last script of
  // append_gathered (the last reply), when it was asked for them.
  enum class FieldsAt { none, write, create_write, setattr };
  // Appends the scripts of `file`'s changes to `c`: how many replies.
  // `create` (its basis argument included): the file's deferred create
  // goes in the first script, which must be a write's (combines_create);
  // `create_reply` is then set to that script's reply's place. `fields`
  // (not null): the last script is asked for the file's fields, and this
  // says where they are.
  std::size_t append_gathered(Connection& c, Ino ino, Gathered& file, const CreateCall* create,
                              std::size_t* create_reply, FieldsAt* fields);
  // The file's fields in `reply`, the last of a flush's (append_gathered).
  static std::vector<Attr> gathered_fields(Ino ino, FieldsAt at, ReplyView reply);
  // A flush's change of the file's own, with `fields`, over its whole
  // round trip: what the last script read of the file is kept if no other
  // change of it ran meanwhile. Without, none, and what an earlier send
  // kept goes (the file's own attributes answer while it gathers on).
  AttrCache::Change flush_change(Ino ino, Gathered& file, bool fields);
  // Sends what waits for `ino` before an operation that must see it; an
  // error is also kept for the file's flush() (its close). `resume`: a
  // writeback mount's file gathers on (an operation that changes none of
  // its attributes but the ones it reads back: a read).
  Status settle(Ino ino, bool resume = false);
  // settle() of every file being gathered, resumed, errors kept for their
  // flush(): before an unlink or rename, whose names may be any of them
  // (the caller stops gathering for the files the operation changed).
  void settle_all();
  // settle() of each of `inos` (0: none) that is being gathered, and it
  // gathers no more: an unlink or rename changed its links or ctime.
  void settle_changed(std::initializer_list<Ino> inos);
  // `step` (flush, settle) of every file being gathered; the first error.
  Status each_gathered(const std::function<Status(Ino)>& step);
  // Drops `ino` from the gathered files (it must not be live), and what
  // AttrCache holds of it unless `keep_attrs` (the server's fields after
  // its last changes: Gathered::kept).
  void forget_gathered(Ino ino, bool keep_attrs = false);
  // send_gathered() and forget_gathered(): the file goes to the server.
  Status stop_gathering(Ino ino, Gathered& file);
  // The file `ino` while it is being gathered, its mutex held; none when
  // it is not.
  struct LockedGathered {
    std::shared_ptr<Gathered> file;
    std::unique_lock<std::mutex> lock;
  };
  LockedGathered lock_live(Ino ino);
  std::vector<Ino> gathered_inos();
  // One write's data, or one of several a write.lua carries in turn.
  struct WritePiece {
    std::uint64_t offset = 0;
    std::string_view data;
  };
  // The writes among `file`'s changes [i, end) that the next write.lua of
  // its flush carries, into `writes` (at least one, and at most
  // k_gather_script_blocks block pieces): where the script after it starts.
  static std::size_t script_writes(const Gathered& file, std::size_t i, std::size_t end, std::uint64_t bs,
                                   std::vector<WritePiece>& writes);
  // Appends the write.lua call (and the SETs of its TMP keys) for
  // `writes`, in turn (one write, or a gathered file's writes between two
  // attribute changes, anywhere in the file), to `c`; returns how many
  // replies to read. `append`: O_APPEND (one write only). `kill`:
  // FUSE_WRITE_KILL_SUIDGID (WriteKill). `fields`: the reply
  // carries the inode's fields (for the AttrCache). `known_size`: the
  // file's size on the server as far as this mount knows (a gathered
  // file's), or nullopt: the pieces that then reach its end from their
  // block's start replace all their block holds (k_rename_min). `then`:
  // an attribute change (no size) the same script applies after the data,
  // as setattr.lua would next (a gathered file's flush), or none.
  // `create`: the file's create (its basis argument included) goes in the
  // same script, first (create_write.lua: a deferred create and the first
  // data of its file), or none. The TMP SETs borrow the data
  // (Connection::append_borrowing): the caller reads every reply before it
  // lets the data go. The script's reply is the last.
  std::size_t append_writes(Connection& c, Ino ino, std::span<const WritePiece> writes, bool append, bool kill,
                            bool fields, std::optional<std::uint64_t> known_size, const SetAttrRequest* then,
                            const CreateCall* create);
  Result<Attr> lookup_server(Ino parent, std::string_view name, double* age);
  // An inode's attributes read alone (HGETALL), kept as a read
  // (AttrCache::begin_read) when the cache holds none of it: a basis for
  // the next change of it, as a listing's are, unless its changes wait
  // here.
  Result<Attr> read_inode(Connection& c, Ino ino);
  // How many bytes an open for reading of `ino` reads ahead (prefetch.hpp);
  // 0: none.
  std::uint64_t prefetch_size(Ino ino);
  // The inode's fields an open read (open.lua's reply with ARGV[2] '1').
  static Result<Attr> open_fields(Ino ino, ReplyView v);
  // An open read `attr` of the file on the server: into `seen`, and what
  // this mount held of it for getattr goes if the file changed since.
  void opened_attr(Ino ino, Result<Attr> attr, Seen& seen);
  // OPEN:<ino>, its first blocks and the bytes they span: what free_unheld
  // (prelude.lua) needs to free a file nobody holds open at once. The
  // blocks are those the size this mount last saw of the file needs
  // (AttrCache::basis; none for an empty file, a file too big to be
  // freed at once, or ino 0), else the first k_unlink_free_blocks. The
  // script checks: a file bigger than the blocks named stays an orphan,
  // freed by purge.
  void push_free_keys(Ino ino, std::vector<std::string>& keys, std::vector<std::string>& args);
  // ARGV of setattr.lua (no size: truncate has scripts of its own).
  static std::vector<std::string> setattr_args(const SetAttrRequest& req, bool fields);
  // A read-only open whose registration failed (a replica refuses writes)
  // still must not mount a filesystem a writeback mount holds: EBUSY then.
  Status check_not_held(Connection& c);
  // Whether sweep_dead_mounts runs a piece of the open counts' pass now
  // (see there); `crash_seen`: this call dropped a dead registration.
  bool opens_pass_due(bool crash_seen);
  // After that piece: whether it failed, and whether it ended the pass.
  void opens_pass_ran(bool failed, bool pass_done);

  Pool& m_pool;
  Keys m_keys;
  StoreOptions m_opts;
  Superblock m_sb;
  // The superblock's created, snapshot_created, dumped and rolled_back
  // fields as read at open: which filesystem this is (a restore over it or
  // a rollback changes one).
  std::string m_identity;
  std::string m_finished_install;  // finished_install()
  // The pool's count of server changes at open, and at the last sync
  // (sync()): more now, and changes acknowledged since may be lost.
  std::uint64_t m_opened_changes = 0;
  Status m_scripts_preloaded;
  std::optional<long long> m_replicas_at_open;
  std::atomic<std::uint64_t> m_synced_changes{0};

  std::mutex m_alloc_mutex;
  Ino m_next_ino = 0;
  Ino m_last_ino = 0;
  std::unordered_set<Ino> m_ino_taken;  // numbers of the batch an INODE or OPEN key holds (damage)
  // The server's clock minus ours, as the last create's reply showed it
  // (a deferred create's times until its flush); none seen yet: INT64_MIN.
  std::atomic<std::int64_t> m_server_skew_ns{INT64_MIN};

  std::atomic<std::uint64_t> m_temp_seq{0};
  std::atomic<bool> m_registered{false};
  bool m_frozen = false;  // (set by open, before any heartbeat thread)
  std::atomic<bool> m_session_taken{false};
  std::atomic<bool> m_kernel_file_times{false};
  std::atomic<bool> m_security_possible{true};
  std::atomic<std::int64_t> m_security_checked_until{0};

  std::mutex m_sweep_mutex;
  std::string m_sweep_cursor = "0";  // SCAN cursor of sweep_dead_opens
  std::string m_sweep_server;        // ...and the server it is for (ScanWalk::resume)
  // sweep_dead_mounts' pass of the open counts (guarded by m_sweep_mutex):
  // whether one is wanted, and when the last ended
  bool m_sweep_wanted = true;
  std::chrono::steady_clock::time_point m_sweep_pass_ended{};

  std::mutex m_names_mutex;
  std::unordered_map<std::string, Ino> m_names;  // "<parent>/<name>" -> ino
  // Files (not directories) this mount made that it gave no other link
  // since: one link each, as far as this mount knows (defer_unlink). The
  // same bound as m_names.
  std::unordered_set<Ino> m_one_link;

  std::mutex m_gather_mutex;
  std::unordered_map<Ino, std::shared_ptr<Gathered>> m_gathered;
  std::atomic<std::size_t> m_gathered_count{0};  // m_gathered.size(), read without the lock
  std::size_t m_gathered_bytes = 0;              // guarded by m_gather_mutex
  std::atomic<std::size_t> m_deferred_creates{0};  // files in m_gathered whose create waits too
  BufferPool m_gather_buffers{16, 64 * 1024};      // guarded by m_gather_mutex: the writes' strings, for reuse

  // A writeback mount's directory attribute changes (store_dirs.cpp).
  struct WaitingDir {
    Attr attr;              // what this mount answered (its ctime: the instant the server sets)
    SetAttrRequest change;  // the changes, merged (no time "now": the instant this mount showed)
  };
  std::mutex m_dirs_mutex;      // guards m_dirs and m_dirs_failure
  std::mutex m_dir_send_mutex;  // one batch on its way at a time
  std::map<Ino, WaitingDir> m_dirs;
  std::atomic<std::size_t> m_dirs_waiting{0};    // in m_dirs or on their way
  std::optional<Error> m_dirs_failure;           // the first refusal not taken yet
  bool m_dirs_failure_shown = false;             // returned `once` already
  // A writeback mount's unlinks that wait (store_dirs.cpp), in order: the
  // unlink.lua call each is, made when it was answered.
  struct WaitingUnlink {
    Ino parent = 0;
    std::string name;
    Ino ino = 0;
    bool dir = false;           // an rmdir (rmdir.lua), else an unlink
    std::optional<Attr> basis;  // the parent as the server holds it once those before it landed
    std::vector<std::string> keys;
    std::vector<std::string> args;
  };
  // A directory whose unlinks wait or are on their way: what this mount
  // shows of it (their times, count), and how many.
  struct UnlinkedParent {
    Attr attr;
    std::size_t waiting = 0;
  };
  // defer_unlink's and defer_rmdir's: the inode the name holds as far as
  // this mount knows, if a removal of it may wait at all.
  std::optional<Ino> removal_may_wait(Ino parent, std::string_view name);
  // Queues `u` (its keys and first arguments made), with what this mount
  // then shows of its parent; false when it must go now.
  bool removal_waits(WaitingUnlink u);
  // The replies of a batch of removals sent in one pipeline, each as if it
  // had run in its order (store_dirs.cpp).
  std::vector<Result<Reply>> read_removals(Connection& c, const std::vector<WaitingUnlink>& batch);
  // What a removal's reply `r` says when it lands: the parent's attributes
  // after it (none: not known), what it did to the inode (`landed`, for
  // the listener), or its refusal (kept for send_dir_changes).
  std::vector<Attr> removal_landed(const WaitingUnlink& u, Result<Reply> r,
                                   std::vector<std::pair<Ino, Landed>>& landed);
  std::vector<WaitingUnlink> m_unlinks;                      // guarded by m_dirs_mutex
  std::unordered_map<Ino, UnlinkedParent> m_unlink_parents;  // guarded by m_dirs_mutex
  std::atomic<std::size_t> m_unlinks_waiting{0};  // in m_unlinks or on their way (counted in m_dirs_waiting too)
  std::function<void(Ino, Landed)> m_removal_landed;  // guarded by m_dir_send_mutex
  std::thread m_unlink_sender;           // started at the first unlink that waits
  std::condition_variable m_unlinks_cv;  // with m_dirs_mutex: unlinks wait, or the sender stops
  bool m_unlink_sender_stop = false;     // guarded by m_dirs_mutex

  AttrCache m_attrs;      // attributes our own changes, writes and reads left
  DirNames m_dir_names;   // whole name lists of directories this mount fills
  RemovedNames m_removed;  // names this mount removed a moment ago
  FirstPages m_first_pages;  // first pages read by the getattr between an opendir and its first readdir
  NamesChanged m_names_changed;  // when this mount last changed each directory's names
  // This mount changed the names of `dir` (landed, or answered before it
  // lands): what its listings read before is stale (FirstPages, NamesChanged).
  void names_changed(Ino dir) {
    m_first_pages.changed(dir);
    m_names_changed.changed(dir);
  }
};

// Reads an inode's hash reply (HGETALL) into an Attr.
Result<Attr> attr_from_reply(Ino ino, ReplyView r);
// The same from the read itself: an error the server answered for the key
// alone (WRONGTYPE: a damaged inode) is EIO naming the inode and its key;
// the connection's own failures pass as they are.
Result<Attr> attr_from_read(const Keys& keys, Ino ino, const Result<Reply>& r);
// Such an error of the server's for one key, as EIO naming it.
Error key_refused(std::string_view what, const std::string& key, const Error& e);

// Whether the filesystem under `keys` is still the one whose identity
// (filesystem_identity) is `identity`: ESTALE when its superblock is gone
// or is another filesystem's (the message begins with `what`); another
// error when the server could not say, EAGAIN when it cannot say yet: the
// superblock is gone while <prefix>:INSTALLING journals a restore or
// rollback moving another filesystem in (a failed one puts this one back).
Status check_filesystem_identity(Connection& c, const Keys& keys, std::string_view identity,
                                 std::string_view what = "the filesystem under this mount");

}  // namespace redisfs
