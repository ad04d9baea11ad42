// Dump a filesystem to a redisfs dump (dump_format.hpp) and restore one,
// both streamed: memory stays bounded whatever the filesystem's size. The
// dump is dump_io.cpp, the restore restore.cpp.
//
// dump: freeze, COPY every key into a temporary prefix (keys with a TTL),
// unfreeze, then stream the temporary copy out and delete it. The dump is
// the state of one instant even while the filesystem is mounted and busy.
//
// restore: reserve the target, stream the dump into a staging prefix, and
// only when the whole document has been read and verified (trailer,
// checksum, superblock) and the staged filesystem passes fsck, move the
// staged keys to their prefix, superblock last (install.hpp: an old
// filesystem replaced with --force survives until the new one is whole).
// Any failure deletes the staging keys: the target is left exactly as it
// was. A restored filesystem mounts read-write and remembers where it came
// from (restored_from, dumped); with `snapshot` it stays a read-only
// snapshot. A restore a crash or a broken pipe interrupted can be continued
// (RestoreOptions::resume, restore_resume.hpp). An incremental dump
// (version 2) is dumped and restored by dump_incremental.hpp: dump_to_path
// with DumpOptions::since, and restore_filesystem hands a version-2
// document to it.
#pragma once

#include <cstdint>
#include <fstream>
#include <iosfwd>
#include <optional>
#include <string>

#include "redis/redis.hpp"
#include "snap/compress.hpp"
#include "snap/dump_format.hpp"
#include "store/keys.hpp"
#include "util/result.hpp"

namespace redisfs {

struct DumpOptions {
  bool quiet = false;
  // dump_to_path compresses what it writes (compress.hpp); the trailer's
  // counts and checksum stay those of the records, as in a plain dump.
  Compression compression = Compression::None;
  int compression_level = 0;  // 0: the codec's default (zstd 3, gzip 6)
  // An incremental dump of what changed since this snapshot
  // (dump_incremental.hpp); the prefix dumped must descend from it.
  std::optional<std::string> since{};
};

struct DumpStats {
  std::string prefix;
  dump::Trailer trailer;
  std::int64_t snapshot_ns = 0;
  double seconds = 0;
  std::string warning;  // something to tell the user although the dump succeeded
  Compression compression = Compression::None;
  std::uint64_t json_bytes = 0;     // the JSON document's length (compressed dumps only)
  std::uint64_t written_bytes = 0;  // what was written: the compressed length (compressed dumps only)
  std::string base;                 // an incremental dump: the snapshot it is taken against
};

Result<DumpStats> dump_filesystem(Pool& pool, const std::string& prefix, std::ostream& out, const DumpOptions& opts);

// `path` "-" is stdout. Otherwise the dump goes to "<path>.tmp-<hex>" in
// the same directory (mode 0666 less the umask), is fsynced and renamed to
// `path` only when complete, then the directory is fsynced, so a failed
// dump never leaves a half file under the final name. With
// opts.compression the stream is compressed (a failed dump to stdout or a
// FIFO leaves a truncated compressed stream, which restore refuses).
Result<DumpStats> dump_to_path(Pool& pool, const std::string& prefix, const std::string& path,
                               const DumpOptions& opts);

struct RestoreOptions {
  std::optional<std::string> prefix;  // default: the prefix in the dump's header
  bool force = false;                 // replace an existing (unmounted) filesystem
  bool dry_run = false;               // verify everything, write nothing
  bool snapshot = false;              // keep it a read-only snapshot (default: a writable filesystem)
  // Restore a full dump whose filesystem fsck finds damaged as it is (the
  // damage too), with the summary as a warning, rather than refuse it.
  bool damaged = false;
  bool quiet = false;
  // Continue the interrupted restore into the target (restore_resume.hpp):
  // its first records are checked against the checkpoint, not written.
  bool resume = false;
  // When the input ends early (a broken pipe), keep what was staged for
  // --resume instead of removing it; restore_from_path sets it for input
  // that is not a regular file (a pipe, a FIFO, a socket).
  bool keep_on_early_end = false;
  // Restore into a prefix whose master (on a Redis Cluster) may evict keys
  // (refuse_evicting_master; the target is known at the dump's header).
  bool allow_evicting_server = false;
  dump::ReadLimits limits{};
};

// Restore's refusal of a target whose master may evict keys
// (refuse_evicting_master, snapshot.hpp), unless a dry run or allowed.
Status refuse_evicting_target(Connection& c, const RestoreOptions& opts, std::string_view target);

// How many times restore_from_path resumes a restore from a file by
// itself after a lost reply of its staging writes (a server restart or
// failover, a broken connection: Fault::Lost).
inline constexpr int k_restore_auto_resumes = 3;

struct RestoreStats {
  std::string prefix;         // where it was (or would be) restored
  std::string source_prefix;  // the prefix in the dump's header
  dump::Trailer trailer;
  bool replaced = false;  // an existing filesystem was replaced (--force)
  Compression compression = Compression::None;  // what the input's first bytes said
  std::string warning;    // something to tell the user although the restore succeeded
  std::uint64_t resumed_records = 0;  // --resume: records the interrupted restore had staged
  int lost_replies = 0;               // restore_from_path resumed by itself this many times (k_restore_auto_resumes)
  std::string base_snapshot_id;  // an incremental dump: the snapshot it applied to
  double seconds = 0;
};

// `path` opened to read a dump from, or why not: "cannot open PATH:
// <errno text>", a directory too (EISDIR), which a stream would open and
// then fail to read.
Result<std::ifstream> open_dump_file(const std::string& path);

// `pool` may be null for a dry run (then the target is not checked). A
// zstd or gzip stream is told by its magic number and decompressed on the
// way (compress.hpp); a corrupt or truncated one fails like a bad dump.
Result<RestoreStats> restore_filesystem(Pool* pool, std::istream& in, const RestoreOptions& opts);
// dump::read through a DecompressingBuf, as restore reads: `detected`
// (may be null) gets what the first bytes said; a broken compressed stream
// is reported as such ("dump: <why>") rather than as the bad JSON it made.
// `refusal` (may be null): a Sink's refusal of the target, returned as is.
Result<dump::Trailer> read_dump_stream(std::istream& in, dump::Sink& sink, const dump::ReadLimits& limits,
                                       Compression* detected, const std::optional<Error>* refusal = nullptr,
                                       bool* ended_early = nullptr);

// What the staged superblock of a restore says of where the filesystem
// came from (restored_superblock_marks, dump_rules.hpp).
Status mark_restored(Connection& c, const Keys& staging, const std::string& target, const std::string& source,
                     std::int64_t dumped_ns, bool snapshot);

// `path` "-" is stdin. Sets keep_on_early_end unless the input is a
// regular file.
Result<RestoreStats> restore_from_path(Pool* pool, const std::string& path, const RestoreOptions& opts);

}  // namespace redisfs
