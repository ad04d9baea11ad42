// Resumable restore: the checkpoint a restore keeps of its staging prefix,
// so that `restore --resume` continues one a crash or a broken pipe
// interrupted instead of starting again.
//
// While a restore stages a dump (restore.cpp), it records, durably on the
// server, how far it got: "<NAME>~resume", a hash with the staging prefix,
// the number of records staged and confirmed (every reply read: no
// duplicate among them), and the SHA-256 hex digest of the canonical
// framing of those records (dump_format.hpp: ContentDigest), with the
// staging TTL. It is written when the staging starts (0 records), every
// k_checkpoint_records records or k_checkpoint_bytes of values, and when the
// input ends early. Like the index ("<staging>~index") it lies outside the
// staging prefix, so fsck of the staged filesystem does not see it.
//
// `restore --resume` reads the dump from its start again, checks that the
// first N records give the recorded digest (else: the dump differs from the
// interrupted one), writes nothing for them, and goes on staging from record
// N + 1; the trailer still verifies the whole document. Before that,
// rewind_staging removes what was staged after the checkpoint (the index
// lists every staged key, in record order: a key's name is listed before
// its value is written) and refreshes the TTL of what stays.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

inline constexpr std::uint64_t k_checkpoint_records = 512;
inline constexpr std::uint64_t k_checkpoint_bytes = 16ull << 20;

struct ResumePoint {
  std::string staging;       // the staging prefix ("<NAME>~restore~<hex>")
  std::uint64_t records = 0;  // records staged and confirmed
  std::string digest;        // hex SHA-256 of the framing of those records
  std::string source;        // the dump header's prefix
};

// "<target>~resume".
std::string resume_key(const std::string& target);

// Records `p` (HSET, PEXPIRE with the staging TTL; the connection has no
// reply pending before or after).
Status write_resume_point(Connection& c, const std::string& target, const ResumePoint& p);

// The interrupted restore into `target`, if its checkpoint and staging
// index still exist.
Result<std::optional<ResumePoint>> load_resume_point(Connection& c, const std::string& target);

// Removes the checkpoint of `target` if it is still that of `staging` (a
// later restore may have taken it over).
Status drop_resume_point(Connection& c, const std::string& target, const std::string& staging);

// Gets `p.staging` ready to continue after its first p.records records:
// the keys listed after them are removed and the list cut there; the TTLs
// of the staged keys, the index and the checkpoint are refreshed. Returns
// how many staged keys stay.
Result<std::uint64_t> rewind_staging(Connection& c, const std::string& target, const ResumePoint& p);

}  // namespace redisfs
