// redisfs-snap rollback: see rollback.hpp.
#include "snap/rollback.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>

#include "snap/install.hpp"
#include "store/keys.hpp"
#include "util/progress.hpp"
#include "snap/snapshot.hpp"
#include "store/superblock.hpp"
#include "util/text.hpp"

namespace redisfs {

namespace {

using Clock = std::chrono::steady_clock;

Result<Superblock> _read_sb(Connection& c, const Keys& keys, const std::string& absent) {
  auto sb = read_superblock(c, keys);
  if (!sb.ok() && sb.error().code == ENOENT) {
    return make_error(ENOENT, absent);
  }
  return sb;
}

// Why FS cannot be rolled back to SNAP (FS is not a live filesystem, or
// SNAP is not a snapshot of it), or "" if it can.
std::string _why_not(const std::string& fs, const Superblock& f, const std::string& snap, const Superblock& s) {
  if (f.read_only) {
    return "'" + fs + "' is " + describe_snapshot(fs, f) +
           ", not a live filesystem; roll back the filesystem it was taken from";
  }
  if (!s.read_only || (s.snapshot_created_ns == 0 && s.snapshot_id.empty())) {
    return "'" + snap + "' is not a snapshot (a read-only copy made by `redisfs-snap copy`)";
  }
  bool in_lineage = !s.snapshot_id.empty() && std::find(f.lineage.begin(), f.lineage.end(), s.snapshot_id) !=
                                                  f.lineage.end();
  if (in_lineage || (s.origin == fs && s.created_ns == f.created_ns)) {
    return "";
  }
  std::string why = s.origin == fs ? "it was taken of an earlier filesystem under that name"
                    : s.origin.empty() ? "it is " + describe_snapshot(snap, s)
                                       : "it is a snapshot of '" + s.origin + "'";
  return "'" + snap + "' is not a snapshot of '" + fs + "' (" + why + ")";
}

// The staged copy of SNAP's superblock made FS's (rollback.hpp, step 2).
Status _make_fs_superblock(Connection& c, const Keys& staged, const Superblock& f, const Superblock& s,
                           std::int64_t now_ns) {
  // A live filesystem again: of the format version of tracking
  // (superblock.hpp), whatever the snapshot's.
  Args set{"HSET",        staged.sb(),
           "read_only",   "0",
           "version",     std::to_string(k_format_version),
           "rolled_back", std::to_string(now_ns),
           "next_inode",  std::to_string(static_cast<long long>(std::max(f.next_inode, s.next_inode)))};
  auto field = [&](const char* name, const std::string& value) {
    if (!value.empty()) {
      set.insert(set.end(), {name, value});
    }
  };
  field("origin", f.origin);
  field("restored_from", f.restored_from);
  field("snapshot_created", f.snapshot_created_ns != 0 ? std::to_string(f.snapshot_created_ns) : "");
  field("dumped", f.dumped_ns != 0 ? std::to_string(f.dumped_ns) : "");
  field("lineage", lineage_text(s.lineage));
  const std::vector<Args> tx{
      {"HDEL", staged.sb(), "snapshot_id", "lineage", "origin", "restored_from", "snapshot_created", "dumped"}, set};
  TRY_ASSIGN(Reply replies, c.transaction(tx));
  if (!replies.view().is_array()) {
    return make_error(EIO, "redis: bad EXEC reply while marking " + staged.sb());
  }
  return {};
}

// Where the replaced state of FS is kept (nullopt with --discard): --keep-as
// or default_keep_name, a valid prefix other than FS and SNAP, in FS's slot
// on a cluster.
Result<std::optional<Keys>> _keep_keys(Connection& c, const Keys& fk, const std::string& snap,
                                       const RollbackOptions& opts, std::int64_t now) {
  const std::string& fs = fk.prefix();
  std::optional<Keys> kk;
  if (!opts.discard) {
    std::string name = opts.keep_as.empty() ? default_keep_name(fs, now) : opts.keep_as;
    if (Status valid = validate_prefix(name); !valid.ok()) {
      return make_error(EINVAL, "cannot keep the replaced state as '" + name + "': " + valid.error().message);
    }
    TRY(refuse_temp_name(name, "the name the replaced state is kept as"));
    if (name == fs || name == snap) {
      return make_error(EEXIST, "prefix '" + name + "' already holds keys; choose another name with --keep-as");
    }
    kk.emplace(name);
    if (c.cluster() && !same_slot(fk, *kk)) {
      return make_error(EINVAL, "--keep-as '" + name + "' must have the hash tag of '" + fs +
                                    "' on a Redis Cluster (the replaced state is renamed, not copied)");
    }
  }
  return kk;
}

// The name the replaced state is kept as, reserved (install.hpp) and empty.
Result<std::unique_ptr<Reservation>> _reserve_keep(Pool& pool, Connection& c, const Keys& kk, const std::string& fs,
                                                   std::string& warning) {
  TRY_ASSIGN(auto keep_reservation, Reservation::acquire(pool, kk, "rollback of " + fs));
  TRY_ASSIGN(std::string finished, finish_install(c, kk));
  add_warning(warning, finished);
  TRY_ASSIGN(PrefixState kept, probe_prefix(c, kk));
  if (kept.any_key) {
    return make_error(
        EEXIST, "prefix '" + kk.prefix() + "' already holds keys; choose another name with --keep-as (or --discard)");
  }
  return keep_reservation;
}

// Step 2 (rollback.hpp): SNAP copied to the staging prefix `tk` as a
// writable filesystem; the keys copied and the snapshot's instant.
Result<std::pair<std::uint64_t, std::int64_t>> _stage(Connection& c, const Keys& sk, const Keys& tk, const Keys& fk,
                                                      bool quiet, std::string& warning) {
  Progress progress("rollback " + fk.prefix() + " to " + sk.prefix(), 0, "keys", quiet);
  auto copied = snapshot_to_staging(c, sk, tk, fk, CopyOptions{false, true, quiet}, progress, warning);
  progress.finish();
  if (!copied.ok()) {
    return make_error(copied.error().code, "rollback " + fk.prefix() + ": " + copied.error().message);
  }
  return copied;
}

}  // namespace

std::string default_keep_name(const std::string& fs, std::int64_t now_ns) {
  std::time_t t = static_cast<std::time_t>(now_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
  return fs + "-before-rollback-" + when;
}

Result<RollbackStats> rollback_filesystem(Pool& pool, const std::string& fs, const std::string& snap,
                                          const RollbackOptions& opts) {
  TRY(validate_prefix(fs));
  TRY(validate_prefix(snap));
  if (fs == snap) {
    return make_error(EINVAL, "FS and SNAP are the same prefix '" + fs + "'");
  }
  auto start = Clock::now();
  TRY_ASSIGN(Pool::Lease lease, pool.acquire());
  Connection& c = *lease;
  TRY(check_toolkit_prefix(c, fs));
  TRY(check_toolkit_prefix(c, snap));
  Keys fk(fs);
  Keys sk(snap);
  // (an interrupted move into either is finished first, as a mount would)
  std::string warning;
  TRY(finish_install_before_read(pool, fk, true, warning));
  TRY(finish_install_before_read(pool, sk, true, warning));
  TRY_ASSIGN(Superblock f, _read_sb(c, fk, "no filesystem at prefix '" + fs + "'"));
  TRY_ASSIGN(Superblock s, _read_sb(c, sk, "no snapshot at prefix '" + snap + "'"));
  if (std::string why = _why_not(fs, f, snap, s); !why.empty()) {
    return make_error(EINVAL, why);
  }
  TRY_ASSIGN(std::int64_t now, server_time_ns(c, fk.sb()));
  TRY_ASSIGN(std::optional<Keys> kk, _keep_keys(c, fk, snap, opts, now));

  // Reserved first, then looked at (install.hpp): no mount starts on FS,
  // and nothing is made under the name the old state is kept as.
  TRY_ASSIGN(auto reservation, Reservation::acquire(pool, fk, "rollback to " + snap));
  TRY_ASSIGN(std::string finished, finish_install(c, fk));
  add_warning(warning, finished);
  std::unique_ptr<Reservation> keep_reservation;
  if (kk) {
    TRY_ASSIGN(keep_reservation, _reserve_keep(pool, c, *kk, fs, warning));
  }
  TRY_ASSIGN(PrefixState target, probe_prefix(c, fk));
  if (target.mounts > 0 && !opts.force) {
    return make_error(EBUSY, "'" + fs + "' " + mounted_count(target.mounts) +
                                 "; unmount it, or use --force (its mounts then fail with ESTALE)" +
                                 target.mounts_hint);
  }
  // The superblock may have changed before the reservation (a last write).
  TRY_ASSIGN(f, _read_sb(c, fk, "no filesystem at prefix '" + fs + "'"));

  Keys tk(make_temp_prefix(fs, TempKind::Copy));
  TRY_ASSIGN(auto copied, _stage(c, sk, tk, fk, opts.quiet, warning));
  auto drop_staging = [&] {
    (void)unlink_all(c, tk);
    (void)c.command({"UNLINK", staging_index_key(tk)});
  };
  Status made = _make_fs_superblock(c, tk, f, s, now);
  Status still = made.ok() ? reservation->verify(c) : made;
  if (still.ok() && keep_reservation) {
    still = keep_reservation->verify(c);
  }
  if (!still.ok()) {
    drop_staging();
    return make_error(still.code(), "rollback " + fs + ": " + still.error().message + " (nothing changed)");
  }
  auto installed = install_staging(c, tk, fk, true, copied.first, true, kk);
  if (!installed.ok()) {
    drop_staging();
    return make_error(installed.error().code, "rollback " + fs + " to " + snap + ": " + installed.error().message);
  }
  (void)reservation->release();
  if (keep_reservation) {
    (void)keep_reservation->release();
  }

  RollbackStats stats;
  stats.kept = kk ? kk->prefix() : "";
  stats.keys = installed->moved;
  stats.mounts = target.mounts;
  stats.snapshot_ns = s.snapshot_created_ns;
  stats.warning = warning;
  add_warning(stats.warning, installed->warning);
  stats.seconds = seconds_since(start);
  return stats;
}

}  // namespace redisfs
