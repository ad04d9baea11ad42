// fsck: checks that the keys under a prefix form the filesystem the Lua
// scripts (core/lua/) maintain, and optionally repairs what it finds.
//
// The check streams over the keyspace twice with SCAN MATCH "<prefix>:*":
// the first pass reads the superblock and every inode hash (pipelined
// HGETALL), the second walks directories (HSCAN pages) and measures blocks
// (pipelined STRLEN) against the inodes. Memory holds one small record per
// inode (type, nlink, size, parent, counted links, subdirectory count,
// stored bytes, flags), plus the problems found; nothing per block or per
// directory entry. A key that SCAN returns twice (the server resized its
// keyspace during the check, i.e. something else was writing) can make a
// byte count look wrong; run fsck again to be sure before trusting a
// "wrong byte count" on a busy server. (The scan gathers facts; the
// rules that judge them are fsck_analysis.hpp, which `redisfs-snap verify`
// feeds from a dump instead: dump_verify.hpp.)
//
// Counts are compared with what they will be once the other problems are
// repaired (a block past the end of a file is not counted in the file's
// bytes, an extra entry naming a directory does not count as a link), so
// one corruption is reported once.
//
// Repair runs each fix as its own atomic step (one command, a MULTI/EXEC or
// a tiny EVAL), in four stages: the inode counter first (so new inodes get
// fresh numbers), then removals (dangling, extra or unusable entries, stray
// keys, keys of the wrong type, unusable attributes, blocks past the end,
// stale ORPHANS and OPEN records) and parent fields, then every
// counter set to the exact value computed from the scan, and last the lost
// inodes, reattached as "#<ino>" in "/lost+found" (made like mkdir would,
// mode 0700). File data that is reachable is never deleted, and nothing is
// deleted because of a field that could not be parsed (see below); a repair
// that deletes data says what in FsckProblem::deletes. Repair is meant
// for an unmounted filesystem (see count_live_mounts, FsckMounted); it
// refuses to run while a snapshot holds <prefix>:FREEZE, and repairs
// nothing when the superblock is missing or is not a redisfs superblock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

class Progress;

// Problem kinds: the first field of each report line.
namespace fsck_kind {
inline constexpr std::string_view k_missing_superblock = "missing superblock";
inline constexpr std::string_view k_bad_superblock = "bad superblock";
inline constexpr std::string_view k_wrong_counter = "wrong superblock counter";
inline constexpr std::string_view k_missing_root = "missing root";
inline constexpr std::string_view k_bad_inode = "bad inode";
inline constexpr std::string_view k_wrong_type = "wrong key type";
inline constexpr std::string_view k_unknown_key = "unknown key";
inline constexpr std::string_view k_dangling_entry = "dangling entry";
inline constexpr std::string_view k_bad_entry = "bad entry";
inline constexpr std::string_view k_extra_entry = "extra directory entry";
inline constexpr std::string_view k_wrong_nlink = "wrong link count";
inline constexpr std::string_view k_wrong_parent = "wrong parent";
inline constexpr std::string_view k_lost_inode = "lost inode";
inline constexpr std::string_view k_detached_dir = "detached directory";
inline constexpr std::string_view k_stale_orphan = "stale orphan";
inline constexpr std::string_view k_dead_orphan = "orphan of a dead mount";
inline constexpr std::string_view k_stray_key = "stray key";
inline constexpr std::string_view k_block_past_eof = "block past end of file";
inline constexpr std::string_view k_bytes_past_eof = "bytes past end of file";
inline constexpr std::string_view k_oversized_block = "oversized block";
inline constexpr std::string_view k_wrong_bytes = "wrong byte count";
inline constexpr std::string_view k_freeze_endless = "freeze that never lapses";
inline constexpr std::string_view k_claim_endless = "writeback claim that never lapses";
inline constexpr std::string_view k_reservation_endless = "reservation that never lapses";
inline constexpr std::string_view k_mount_endless = "mount session that never lapses";
inline constexpr std::string_view k_bad_cow = "bad snapshot record";
inline constexpr std::string_view k_bad_changed = "bad change record";
inline constexpr std::string_view k_stale_open = "stale open";
inline constexpr std::string_view k_bad_xattr = "bad extended attribute";
}  // namespace fsck_kind

struct FsckProblem {
  std::string kind;    // one of fsck_kind
  std::string key;     // the key at fault (raw bytes, as on the server)
  std::string detail;  // one line; quotes names and values cut to 100 bytes
  // What the repair deletes when it deletes data (file bytes, a block, a
  // key or an attribute holding data), e.g. "a block of 4096 bytes";
  // empty when it deletes none (counters, entries naming nothing, records
  // of the running system).
  std::string deletes;
  bool repairable = false;
  bool repaired = false;
  // Not repaired because a mount may be changing it: its repair found it
  // changed since the check, or one of two checks saw it (fsck's confirm).
  // Run fsck again.
  bool again = false;
  // Left for the next read-write mount, which frees it (a dead mount's
  // orphan whose inode decodes).
  bool mount_frees = false;
};

struct FsckReport {
  std::vector<FsckProblem> problems;
  std::uint64_t inodes = 0;  // inode hashes
  std::uint64_t dirs = 0;
  std::uint64_t files = 0;   // regular files
  std::uint64_t blocks = 0;  // block keys
  std::uint64_t bytes = 0;   // their total length

  // Problems that are still there (not repaired).
  std::size_t remaining() const;
};

// Checks (and with `repair`, repairs) the filesystem under `prefix`.
// ENOENT when the prefix holds no filesystem key at all; EBUSY with repair
// while a snapshot is being taken. Problems are not errors: they are in the
// report. `progress` (may be null) counts keys; its total is set after the
// first pass. Errors (the server's, a lost connection) name the key being
// read, in one bounded line. TTLs are not judged (but a FREEZE's): a staged
// copy of a sound filesystem whose keys expire checks clean, so restore can
// check a dump's keys before it moves them into place:
//   auto r = fsck(pool, staging_prefix, false, nullptr);
//   if (!r->problems.empty()) refuse with fsck_summary_line(*r, staging_prefix)
//
// A field that cannot be parsed, or holds a value the filesystem cannot
// serve, makes its inode "bad": reported, never judged, never changed, and
// nothing is deleted on its strength (its blocks, entries and attributes
// stay, whatever its size or type field says).
//
// What a repair does about running mounts (count_live_mounts), which may
// change the filesystem while it is checked.
enum class FsckMounted {
  Refuse,   // fails with EBUSY, nothing checked
  Confirm,  // checks twice, and repairs only what both checks found alike;
            // the rest is reported, not repaired (a change seen half done
            // is seldom seen twice)
};

// A repair reserves the prefix (<prefix>:RESERVED, as a restore reserves
// its target; EBUSY while another tool holds it) for the check and the
// repair, then counts the running mounts: a mount registers before it
// looks for a reservation (Store::open), so one that starts after the
// count finds it and fails, and no restore, copy or delete into it begins.
// A reservation lost meanwhile (the server stalled past its TTL) fails the
// repair with EAGAIN before anything is repaired. The repairs are written
// under a snapshot's freeze (Freeze: a snapshot begun meanwhile waits, and
// the mounts' changes too), each step only while it is still held. A
// reservation or freeze no holder set, which would refuse the repair that
// removes it, is replaced by the repair's own and reported repaired.
Result<FsckReport> fsck(Pool& pool, const std::string& prefix, bool repair, Progress* progress,
                        FsckMounted mounted = FsckMounted::Confirm);

// The running mounts: those registered (<prefix>:MOUNTS) whose session key
// (<prefix>:MOUNT:<session>) lives and lapses unless refreshed, as a
// mount's heartbeat keeps it; one that never lapses is no running mount's
// (the repair removes it). Repair refuses a mounted filesystem unless
// forced (the caller decides).
Result<std::uint64_t> count_live_mounts(Pool& pool, const std::string& prefix);

// Kinds a check of a mounted filesystem that is being written can show for
// a moment, a change seen half done: counters, link counts, byte counts,
// entries and the inodes they name, orphans and opens. The other kinds are
// about one key's own content and stay until repaired.
bool fsck_kind_may_be_transient(std::string_view kind);

// "<kind>: <key>: <detail>", then, after a repair, " (repaired)" or
// " (repaired: deleted <deletes>)", and before one, for a repair that
// deletes data, " (--repair deletes <deletes>)". Bytes that are not
// printable UTF-8 (control characters, invalid sequences) are shown as \xNN
// and '\' as "\\", and the key and detail are cut (with "...") so one
// problem is always one line of at most a few KiB.
std::string fsck_problem_line(const FsckProblem& p);

// What `fsck --repair --dry-run` prints for a problem of a check (repair
// false): "repair: <line>", "repair, DELETES DATA (<deletes>): <line>", or
// "no repair: <line>" (with <line> as above, without a suffix).
std::string fsck_dry_run_line(const FsckProblem& p);

// The first problem's line and how many more, e.g. "bad inode: P:INODE:5:
// ... (and 3 more problems)": one line for a tool that refuses a
// filesystem with problems. With `prefix` (e.g. a staging prefix), keys
// under it are shown without "<prefix>:" ("bad inode: INODE:5: ..."), as
// a dump names them. Empty when the report is clean.
std::string fsck_summary_line(const FsckReport& report, std::string_view prefix = {});

// What restore --damaged and fsck --repair make of the problems a check of
// a dump's filesystem found (nothing repaired): "restore --damaged
// restores it as it is, for fsck --repair, which repairs all 3" ("it",
// "both", "2 of the 3 (fix the rest by hand)", or "; fsck --repair
// repairs none of the 3: fix them by hand"). A problem a read-write mount
// settles (FsckProblem::mount_frees) counts as repaired.
std::string fsck_damaged_hint(const std::vector<FsckProblem>& problems);
// Its last part, what fsck --repair does of them: "repairs all 3" ("it",
// "both"), "repairs 2 of the 3 (fix the rest by hand)", "cannot repair it:
// fix it by hand", "repairs none of the 3: fix them by hand".
std::string fsck_repair_reach(const std::vector<FsckProblem>& problems);

// The whole report as one JSON document (ends with a newline):
// {"prefix", "repair", "clean", "inodes", "dirs", "files", "blocks",
//  "bytes", "problems": [{"kind", "key", "detail", "deletes",
//  "repairable", "repaired"}], "remaining"}; invalid UTF-8 becomes U+FFFD.
std::string fsck_as_json(const std::string& prefix, bool repair, const FsckReport& report);

}  // namespace redisfs
