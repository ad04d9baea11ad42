// The key schema: the only code that formats or recognises Redis keys.
//
// Every key of a filesystem starts with "<prefix>:" and nothing else does.
//
//   <p>:SB             hash    superblock: format, version, block_size, root,
//                              next_inode, inodes, bytes, created, origin,
//                              read_only, snapshot_id (snapshots), lineage,
//                              rolled_back (superblock.hpp)
//   <p>:INODE:<ino>    hash    one inode: type, mode (octal), uid, gid, size,
//                              nlink, rdev, atime/mtime/ctime (ns), bytes
//                              (stored), parent (dirs), target (symlinks)
//   <p>:DIR:<ino>      hash    directory entries: name -> inode number
//   <p>:XATTR:<ino>    hash    extended attributes: name -> value
//   <p>:BLK:<ino>:<i>  string  file bytes [i*block_size, (i+1)*block_size);
//                              a missing key, or a short one, reads as zeros
//   <p>:ORPHANS        hash    unlinked inodes still open: ino -> session id
//   <p>:FREEZE         string  present (with a TTL) while the filesystem must
//                              not change (delete, a copy between two cluster
//                              slots, an install): every change script waits
//                              while it exists
//   <p>:COW            hash    a snapshot being taken copy-on-write
//                              (snapshot.hpp): staging (the prefix the copy
//                              is made in), token, deadline (ms, server
//                              clock: it is alive until then, refreshed
//                              every second), ttl, dst, done, total; wanted
//                              (another tool waits for it: a dump hands it
//                              over), kept (why a dump could not). While it
//                              is alive every change script first copies the
//                              filesystem keys it names to the staging
//                              prefix (if not done yet), so the staging
//                              prefix gets each key as it was at the instant
//                              the snapshot began. A dead one (its copier
//                              crashed) is ignored, and cleaned up by the
//                              next snapshot
//   <s>:TOUCHED        set     under a staging prefix <s> while its COW is
//                              alive: the relative names of the keys a change
//                              script met first (copied to <s> if they
//                              existed, else created since the instant: the
//                              copier skips those), and of the blocks a dump
//                              took (cow_copy.lua 'take': read, and their
//                              copies removed: no script copies them again)
//   <p>:CHANGED        set     per-block change tracking (incremental dumps,
//                              dump_incremental.hpp): "since:<id>" and the
//                              "<ino>:<index>" of every block written or cut
//                              since the snapshot <id> was taken of it. A
//                              live filesystem gets one, holding only
//                              "since:<id>", in the atomic step that is the
//                              instant of a snapshot <id> of it; the
//                              snapshot takes the old one over in that step
//                              (it then says what changed since the
//                              snapshot before it). write.lua,
//                              truncate.lua, punch.lua and copy_range.lua
//                              add to it (SCARD + SADD, in their own step)
//                              only while it exists and is a set: without
//                              one nothing is tracked. At
//                              k_changed_cap block members it becomes the
//                              string "overflow" (unknown: compare all).
//                              A snapshot mounted writable gets the string
//                              "written" for good (no longer its instant).
//                              The string "untracked": a mount registered
//                              by a daemon that records nothing (MOUNTS,
//                              below) was there at the instant the record
//                              began or ended, or fsck --repair changed a
//                              live filesystem; compare all. Records are
//                              trusted only between snapshots of format
//                              version 2 (superblock.hpp).
//                              At most ~4 MB (about 64 bytes a member);
//                              the string "overflow" a few bytes. Kept by
//                              copy and delete, never dumped: without it an
//                              incremental dump compares every block
//   <p>:MOUNTS         hash    the mounts' register: session id -> what
//                              MOUNT:<id> holds ("v<format version> " and
//                              host, pid, mount point: mount_registration;
//                              without the "v2 " a daemon older than
//                              format version 2 registered it, one that
//                              records no changed blocks), set in the same step as
//                              MOUNT:<id>; a field is live while its
//                              MOUNT:<id> exists (the tools count mounts
//                              here instead of SCANning for MOUNT:*); a
//                              crashed mount's field is dropped by the
//                              next live mount's sweep (prune_mounts.lua)
//   <p>:WRITEBACK      string  the session id of the writeback mount (-o
//                              writeback) that holds the filesystem alone
//                              (TTL, set and refreshed in the same step as
//                              its MOUNT:<id>, so it lapses with it): while
//                              it exists no other mount is admitted, and a
//                              writeback mount is admitted only while no
//                              other mount is live (session.lua)
//   <p>:SYNC           string  a snapshot's request that the writeback mount
//                              send what it holds (TTL): "ask:<t>", set by
//                              copy, dump, diff (t: the server's time, us),
//                              answered "done:<t>" by the mount once every
//                              write made before it saw the request is on
//                              the server (k_sync_ask, k_sync_done)
//   <p>:OPEN:<ino>     hash    open files: mount session -> count of opens
//                              there; an unlinked file is freed only when no
//                              live mount holds it open
//   <p>:RESERVED       string  present (with a TTL, refreshed) while a restore,
//                              copy or delete fills, replaces or removes the
//                              prefix: nothing mounts or mkfs's it meanwhile
//   <p>:INSTALLING     string  "<phase> <staging> <replaced>[ <kept>]" while
//                              a restore, copy or rollback moves a staged
//                              filesystem in (phase "delta": an incremental
//                              restore applies its staged changes; <kept>: a
//                              rollback keeps the replaced one under that
//                              name); whoever finds it finishes the move
//                              (install.hpp)
//   <p>:OPLOG:<id>     hash    one mount's latest outcomes (TTL): connection
//                              (and connection.place, in a pipeline) ->
//                              "<operation id>:<reply>", so a change
//                              whose reply was lost is checked, not run
//                              twice (redis.hpp); removed at unmount
//   <p>:TMP:<id>:<n>   string  write data on its way into a block (TTL): a
//                              large piece, or one that replaces its
//                              block's content (k_rename_min), is sent with
//                              a plain SET and its script RENAMEs it into
//                              place, so its bytes never pass through Lua
//
// One key lies outside every prefix (it has no ':', so no prefix's key
// can be it):
//
//   redisfs~FILESYSTEMS set  the register of filesystems: every prefix a
//                            mount (before mkfs) or a copy or restore
//                            (before its final move) made a filesystem in;
//                            delete removes its name last. It may name a
//                            prefix that holds none (a crash in between):
//                            `list` reads each superblock anyway. A user
//                            that may not write it (ACL) is not registered,
//                            and `list` then SCANs; `list --all` SCANs and
//                            registers what it finds (filesystems made by an
//                            older redisfs). A mount's .snapshots reads it
//                            too (snapshots_of), and never SCANs.
//
// CHANGED is the filesystem's bookkeeping: a snapshot keeps its own (see
// above), delete removes it, a dump and a restore leave it out.
//
// FREEZE, COW, TOUCHED, RESERVED, INSTALLING, MOUNT:*, MOUNTS, WRITEBACK, SYNC, OPEN:*, OPLOG:* and
// TMP:* describe the running system, not the filesystem: they are never
// copied, dumped or restored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace redisfs {

using Ino = std::uint64_t;
inline constexpr Ino k_root_ino = 1;

// A prefix may not contain ':' (it ends the prefix), glob characters (keys
// are found with SCAN MATCH "<prefix>:*"), '\\', whitespace or control bytes.
// Braces are allowed as one Redis Cluster hash tag: "{fs1}", "{fs1}-monday",
// of at most k_max_hash_tag bytes.
inline constexpr std::size_t k_max_hash_tag = 150;
// The register of filesystems (above).
inline constexpr std::string_view k_registry_key = "redisfs~FILESYSTEMS";
Status validate_prefix(std::string_view prefix);
// A prefix as a user writes it, taken the way every command line takes
// one (redisfs --prefix, every redisfs-snap argument): "SKX:", the prefix
// as the keys spell it, is the prefix SKX. Takes one trailing ':' off, then
// validate_prefix.
Status normalize_prefix(std::string& prefix);
// The hash tag of a prefix ("fs1" for "{fs1}-monday"), if it has one: all
// the filesystem's keys are then in that tag's slot.
std::optional<std::string_view> hash_tag(std::string_view prefix);
// In cluster mode every prefix needs a hash tag; the error says how.
Status check_cluster_prefix(std::string_view prefix);

// Whether `staging` can be the staging prefix of a copy-on-write snapshot
// of `prefix` (what snapshot.hpp's make_temp_prefix makes for a copy or a
// dump: the prefix, or as much of it as fits with its hash tag, then
// "~copy~" or "~dump~" and 16 hex digits). Change scripts copy into it and
// tools remove it on the word of <prefix>:COW, which may be damaged or
// written by someone else: a COW naming another filesystem is refused.
bool is_cow_staging(std::string_view prefix, std::string_view staging);

class Keys {
 public:
  explicit Keys(std::string prefix);

  const std::string& prefix() const { return m_prefix; }
  std::string sb() const;
  std::string inode(Ino ino) const;
  std::string dir(Ino ino) const;
  std::string xattr(Ino ino) const;
  std::string block(Ino ino, std::uint64_t index) const;
  std::string orphans() const;
  std::string freeze() const;
  std::string cow() const;
  // Per-block change tracking (above).
  std::string changed() const;
  // Under a staging prefix: what a copy-on-write snapshot's scripts met.
  std::string touched() const;
  std::string reserved() const;
  std::string installing() const;
  std::string mount(std::string_view session) const;
  std::string mounts() const;
  std::string writeback() const;
  std::string sync() const;
  std::string temp(std::string_view session, std::uint64_t n) const;
  // A mount's outcome records (Pool::set_op_log).
  std::string op_log(std::string_view session) const;
  std::string open(Ino ino) const;
  // SCAN MATCH pattern for every key of this filesystem.
  std::string match_all() const;
  std::string match_opens() const;

  // "SKX:INODE:5" -> "INODE:5"; nullopt when the key is not under the prefix.
  std::optional<std::string_view> relative(std::string_view key) const;
  std::string absolute(std::string_view relative) const;

 private:
  std::string m_prefix;
  std::string m_colon;  // prefix + ':'
};

// What a key (relative to the prefix) is, by the schema above.
// clang-format off
enum class KeyKind {
  Superblock, Inode, Dir, Xattr, Block, Orphans,   // the filesystem
  Changed,                                         // its change tracking
  Freeze, Cow, Touched, Reserved, Installing, Mount, Mounts, Writeback, Sync,  // the running system
  Temp, Open, OpLog,
  Unknown
};
// clang-format on
struct ParsedKey {
  KeyKind kind = KeyKind::Unknown;
  Ino ino = 0;
  std::uint64_t index = 0;  // block index
};
ParsedKey parse_relative_key(std::string_view relative);

// True for the keys that make up the filesystem itself (copied, dumped,
// restored); false for FREEZE, MOUNT:*, OPEN:*, TMP:* and anything not in
// the schema.
bool is_filesystem_key(KeyKind kind);
// True for the keys of the running system (FREEZE, COW ... OPLOG:*, MOUNTS);
// not for CHANGED.
bool is_running_system_key(KeyKind kind);
// CHANGED (above): how many block members it holds before it overflows
// (prelude.lua's k_changed_cap says the same; a test holds them equal),
// and the member naming the snapshot it counts from.
inline constexpr std::uint64_t k_changed_cap = 65536;
// CHANGED as a string: "overflow" (more than k_changed_cap blocks), or
// "written" (a snapshot mounted writable: no longer its instant's state).
inline constexpr std::string_view k_changed_overflow = "overflow";
inline constexpr std::string_view k_changed_written = "written";
// "untracked": a writer that records nothing may have changed it (above).
inline constexpr std::string_view k_changed_untracked = "untracked";
std::string changed_since_member(std::string_view snapshot_id);
// SYNC (above): the request's and the answer's values are these, then the
// request's time.
inline constexpr std::string_view k_sync_ask = "ask:";
inline constexpr std::string_view k_sync_done = "done:";
// A mount's registration (MOUNT:<id> and its MOUNTS field): "v<n> " then
// what the mount says of itself (host, pid, mount point), n the format
// version whose rules its scripts keep (superblock.hpp). One without it
// comes from a daemon that records no changed blocks (cow_begin.lua: the
// change records around that instant are "untracked").
std::string mount_registration(int format_version, std::string_view info);
// What a registration says of its mount, without the "v<n> ".
std::string_view mount_info(std::string_view registration);
// The Redis type each filesystem key must have: "hash" or "string".
std::string_view expected_type(KeyKind kind);

}  // namespace redisfs
