// Restore, streamed through dump_format.hpp (dump is dump_io.cpp; both are
// declared in dump_io.hpp).
//
// RESTORE. The dump streams (dump::read, a push parser) into a staging
// prefix S = "<NAME>~restore~<hex>" whose keys also carry the TTL. Each
// record is checked as it arrives (dump_rules.hpp, shared with verify): a
// filesystem key of the schema (never FREEZE or MOUNT:*), of the type the
// schema says, and not seen before.
// Duplicates are found by the server (staging_writes.hpp, which also says
// how its replies are judged when the server ran them out of order). The
// replies are read a batch behind (the pipeline stays a few MB deep), so an
// error names the key rather than the byte where it was found. Only after
// dump::read has returned success (trailer counts and checksum verified),
// the superblock has been checked (format "redisfs", a known version) and
// the target re-checked (empty, or --force and not mounted), are the keys
// moved: RENAME + PERSIST in MULTI/EXEC batches (so no key reaches NAME with
// the staging TTL still on it), the superblock last, so a crash mid-move
// leaves keys without a superblock (refused by mount and by list), never
// something that looks like a whole filesystem. A dry run does the same
// checks with an in-memory set of key hashes and writes nothing.
//
// A restore checkpoints its staging in <NAME>~resume (restore_resume.hpp)
// so that --resume continues it after a crash or a broken pipe: the first
// records are then checked against the checkpoint's digest, not written.
//
// The input always goes through a DecompressingBuf (compress.hpp), which
// passes plain JSON through; its error() is checked before the JSON's own
// result, so a broken stream fails the restore like a bad document.
//
// INCREMENTAL dumps (version 2) are dump_incremental.cpp's:
// restore_filesystem reads through a ChooseSink, which hands a version-2
// document to an IncrementalRestore instead of the RestoreSink here.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>

#include "snap/dump_incremental.hpp"
#include "snap/dump_io.hpp"
#include "snap/dump_rules.hpp"
#include "snap/dump_verify.hpp"
#include "snap/fsck.hpp"
#include "snap/install.hpp"
#include "snap/restore_resume.hpp"
#include "snap/room.hpp"
#include "snap/snapshot.hpp"
#include "snap/staging_writes.hpp"
#include "store/keys.hpp"
#include "store/store.hpp"
#include "util/progress.hpp"
#include "util/text.hpp"
#include "util/u64_set.hpp"

namespace redisfs {

using Clock = std::chrono::steady_clock;

// After bad JSON from a compressed dump: how far to read on for a fault of
// the compressed stream itself (its checksum is at its end).
static constexpr std::uint64_t k_check_rest_bytes = 256ull << 20;

namespace {

// The one-line refusal of a taken target, saying what to do instead.
std::string _refuse_taken(const std::string& target, const std::string& what) {
  return "refusing to restore over " + redisfs::quoted(target) + ": it already holds " + what +
         "; add --force to replace it, or restore under another name with --prefix NAME";
}

class RestoreSink : public dump::Sink {
 public:
  RestoreSink(Pool* pool, Connection* c, const RestoreOptions& opts, Progress& progress)
      : m_pool(pool), m_c(c), m_opts(opts), m_progress(progress), m_rules(c == nullptr) {}

  const std::string& target() const { return m_target; }
  const std::string& source_prefix() const { return m_rules.source_prefix(); }
  const std::optional<Keys>& staging() const { return m_staging; }
  Reservation* reservation() { return m_reservation.get(); }
  // What finishing an interrupted move into the target did ("" if none).
  const std::string& finished() const { return m_finished; }
  std::int64_t dumped_ns() const { return m_rules.dumped_ns(); }
  std::uint64_t records() const { return m_rules.records(); }
  std::uint64_t resumed_records() const { return m_skip; }
  // Why the restore stopped at the header once the dump's fields were
  // verified (the target taken, mounted, reserved; the server out of reach
  // or out of room), or midway for want of room: not a flaw of the dump at
  // some byte.
  const std::optional<Error>& refusal() const { return m_refusal; }

  Status on_header(const dump::Header& h) override {
    TRY(m_rules.header(h));
    if (h.record_count > 0) {
      m_progress.set_total(h.record_count);
    }
    m_target = m_opts.prefix.value_or(h.prefix);
    TRY(validate_prefix(m_target));
    if (m_pool != nullptr) {
      TRY_ASSIGN(Pool::Lease lease, m_pool->acquire());
      TRY(check_toolkit_prefix(*lease, m_target));
      if (Status st = refuse_evicting_target(*lease, m_opts, m_target); !st.ok()) {
        m_refusal = std::move(st).error();  // (the target's, not the dump's)
        return *m_refusal;
      }
    }
    if (Status st = open_target(); !st.ok()) {
      // (the target's or the server's failure, not a flaw of the dump)
      if (!m_refusal) {
        m_refusal = std::move(st).error();
      }
      return *m_refusal;
    }
    return {};
  }

  // At the header, once the dump's own fields are verified: the target
  // reserved, an interrupted move into it finished, looked at (taken,
  // mounted: a refusal), and the staging begun (or resumed).
  Status open_target() {
    if (m_pool != nullptr && m_c != nullptr) {
      // Reserved before it is looked at: no mount or other tool can start
      // on it until the restore has ended (install.hpp).
      auto reserved = Reservation::acquire(*m_pool, Keys(m_target), "restore");
      if (!reserved.ok()) {
        return refusing_now(reserved.error());
      }
      m_reservation = std::move(reserved).value();
      TRY_ASSIGN(Pool::Lease lease, m_pool->acquire());
      auto finished = finish_install(*lease, Keys(m_target));
      if (!finished.ok()) {
        return refusing_now(finished.error());
      }
      m_finished = std::move(finished).value();
    }
    std::optional<ResumePoint> point;
    if (m_opts.resume && m_c != nullptr) {
      TRY_ASSIGN(point, load_resume_point(*m_c, m_target));
      if (!point) {
        return make_error(ENOENT, "nothing to resume: no interrupted restore into " + redisfs::quoted(m_target) +
                                      " (none was interrupted, it was resumed already, or its staged keys "
                                      "expired): restore without --resume");
      }
    }
    if (m_pool != nullptr) {
      if (Status st = check_target(nullptr); !st.ok()) {
        return point ? make_error(st.code(), "cannot resume the restore into " + redisfs::quoted(m_target) +
                                                 ": the target changed meanwhile: " + st.error().message)
                     : st.error();
      }
    }
    if (m_c != nullptr) {
      TRY(point ? resume_staging(*point) : start_staging());
    }
    return {};
  }

  void at(dump::Position p) override {
    if (m_writes) {
      m_writes->at(p);
    }
  }

  Status on_string(std::string_view key, std::string&& value) override {
    TRY(begin_record(key, "string"));
    TRY(first_fault(m_rules.string_value(key, value)));
    m_progress.add(1);
    m_digest.string_record(key, value);
    m_checkpoint_bytes += value.size();
    if (m_c == nullptr || skipping()) {
      return end_record();
    }
    // Listed before it is written: the index holds every staged key
    // (rewind_staging relies on it).
    TRY(m_writes->string(key, value));
    return end_record();
  }

  Status on_hash_begin(std::string_view key) override {
    TRY(begin_record(key, "hash"));
    TRY(first_fault(m_rules.hash_begin(key)));
    m_digest.hash_begin(key);
    m_in_hash = true;
    if (m_c == nullptr || skipping()) {
      return {};
    }
    return m_writes->hash_begin(key);
  }

  Status on_hash_fields(std::string_view key, std::vector<std::pair<std::string, std::string>>&& pairs) override {
    if (pairs.empty()) {
      return {};
    }
    TRY(first_fault(m_rules.hash_fields(key, pairs)));
    for (const auto& p : pairs) {
      m_digest.hash_pair(p.first, p.second);
      m_checkpoint_bytes += p.first.size() + p.second.size();
    }
    if (m_c == nullptr || skipping()) {
      return {};
    }
    return m_writes->hash_fields(key, pairs);
  }

  Status on_hash_end(std::string_view key) override {
    TRY(first_fault(m_rules.hash_end(key)));
    m_progress.add(1);
    m_digest.hash_end();
    m_in_hash = false;
    if (m_writes) {
      m_writes->hash_end();
    }
    return end_record();
  }

  // After dump::read succeeded: the replies still in flight, then the checks
  // that need the whole dump.
  Status finish() {
    TRY(settle(0));
    if (m_rules.records() < m_skip) {
      m_keep_staging = true;
      return make_error(EINVAL, "cannot resume: the dump differs from the interrupted one (it has " +
                                    std::to_string(static_cast<long long>(m_rules.records())) +
                                    " records, fewer than the " + std::to_string(static_cast<long long>(m_skip)) +
                                    " the interrupted restore staged)");
    }
    return m_rules.finish();
  }

  // The input ended early (a broken pipe): keep what is staged for
  // --resume, checkpointed up to the last whole record. False when the
  // staged records cannot be vouched for (a reply says one is bad).
  bool keep_for_resume() {
    if (m_c == nullptr || !m_staging || m_failed) {
      return false;
    }
    if (m_skip > m_rules.records()) {
      m_keep_staging = true;  // still as the interrupted restore left it
      return true;
    }
    if (!settle(0).ok()) {
      return false;
    }
    if (!m_in_hash && m_rules.records() > m_checkpoint_records && !checkpoint().ok()) {
      return false;
    }
    m_keep_staging = settle(0).ok();
    return m_keep_staging;
  }
  // The staging prefix stays for --resume (the failure says so): the
  // dump did not match, or failed before reaching the checkpoint.
  bool keep_staging() const { return m_keep_staging || (m_skip > 0 && m_rules.records() <= m_skip); }
  std::uint64_t checkpointed() const { return m_checkpoint_records; }

  // Is the target free (or, with --force, replaceable)? `replace` is set
  // when it holds keys that --force allows us to delete.
  Status check_target(bool* replace) {
    TRY(refuse_temp_name(m_target, "the target of a restore"));
    TRY_ASSIGN(Pool::Lease lease, m_pool->acquire());
    Keys t(m_target);
    TRY_ASSIGN(PrefixState st, probe_prefix(*lease, t, m_opts.force));  // (copy's rule: _copy_target)
    if (st.mounts > 0) {
      return make_error(EBUSY,
                        "refusing to restore over " + redisfs::quoted(m_target) + ": it " + mounted_count(st.mounts) +
                            "; unmount it first, or restore under another name with --prefix NAME" + st.mounts_hint);
    }
    if (st.any_key && !m_opts.force) {
      return make_error(EEXIST, _refuse_taken(m_target, st.has_sb ? "a filesystem" : "keys"));
    }
    if (replace != nullptr) {
      *replace = st.any_key;
    }
    return {};
  }

  // Reads pending replies until at most `keep_bytes` of commands remain in
  // flight (0: all of them).
  Status settle(std::size_t keep_bytes) {
    if (!m_writes) {
      return {};
    }
    Status st = m_writes->settle(keep_bytes);
    m_failed = m_failed || !st.ok();
    m_lost = m_lost || (!st.ok() && st.error().fault == Fault::Lost);
    return st;
  }

  // A reply of the staging writes was lost (a server restart or failover,
  // a broken connection: the commands not sent again, SET NX and RPUSH,
  // may have run or not). What the last checkpoint vouches for stays, for
  // a resume (rewind_staging removes what came after it, and checks that
  // the staging holds what the checkpoint says).
  bool keep_after_lost() {
    if (m_c == nullptr || !m_staging || !m_lost) {
      return false;
    }
    m_keep_staging = true;
    return true;
  }

 private:
  Status begin_record(std::string_view key, std::string_view type) {
    TRY(check_cancel());
    if (m_target.empty()) {
      return make_error(EINVAL, "record before the header");
    }
    return first_fault(m_rules.begin_record(key, type));
  }

  // A record refused here is reported only if no earlier one was: the
  // server answers a batch late about duplicates (SET NX, EXISTS, HSET),
  // so its replies are read first. Restore (and verify, which finds
  // duplicates at once) then name the first fault in document order.
  Status first_fault(Status st) {
    if (!st.ok() && m_c != nullptr) {
      TRY(settle(0));
    }
    return st;
  }

  // ---- resumable staging (restore_resume.hpp)

  // A new staging prefix, checkpointed at 0 records.
  Status start_staging() {
    m_staging.emplace(make_temp_prefix(m_target, TempKind::Restore));
    m_room.stages_at(m_staging->sb());
    m_writes.emplace(*m_c, *m_staging, false);
    return checkpoint();
  }

  // The interrupted restore's staging prefix, rewound to its checkpoint.
  Status resume_staging(const ResumePoint& point) {
    TRY(rewind_staging(*m_c, m_target, point));
    m_staging.emplace(point.staging);
    m_room.stages_at(m_staging->sb());
    m_skip = point.records;
    m_checkpoint_records = point.records;
    m_resume_digest = point.digest;
    m_writes.emplace(*m_c, *m_staging, point.records > 0);
    return {};
  }

  // The current record (the records()-th) is one the interrupted restore
  // staged already: checked, not written.
  bool skipping() const { return m_rules.records() <= m_skip; }

  Status end_record() {
    if (m_c == nullptr) {
      return {};
    }
    if (m_skip > 0 && m_rules.records() == m_skip && m_digest.hex_digest() != m_resume_digest) {
      m_keep_staging = true;  // for a --resume with the right dump
      m_refusal = make_error(EINVAL, "cannot resume: the dump differs from the interrupted one (digest mismatch at record " +
                                         std::to_string(static_cast<long long>(m_skip)) + ")");
      return *m_refusal;
    }
    // (the server is looked at, for room, at checkpoints: more often as it
    // fills, room.hpp; a key costs the server about 100 bytes of its own)
    const bool look = m_room.due(m_checkpoint_bytes - m_room_counted + 100);
    m_room_counted = m_checkpoint_bytes;
    if (!skipping() && (m_rules.records() - m_checkpoint_records >= k_checkpoint_records ||
                        m_checkpoint_bytes >= k_checkpoint_bytes || look)) {
      return checkpoint();
    }
    return {};
  }

  // Every reply read (no record refused), then the checkpoint, on the
  // server before the next record is sent (a round trip each time).
  Status checkpoint() {
    TRY(settle(0));
    if (Status room = m_room.check(*m_c); !room.ok()) {
      // (the server's state, not a flaw of the dump at some byte)
      m_refusal = make_error(room.code(), room.error().message);
      return *m_refusal;
    }
    TRY(write_resume_point(
        *m_c, m_target, ResumePoint{m_staging->prefix(), m_rules.records(), m_digest.hex_digest(), source_prefix()}));
    m_checkpoint_records = m_rules.records();
    m_checkpoint_bytes = 0;
    m_room_counted = 0;
    return {};
  }

  Pool* m_pool;
  Connection* m_c;  // null: dry run
  const RestoreOptions& m_opts;
  Progress& m_progress;

  DumpRules m_rules;  // null connection (dry run): duplicates found in memory
  std::string m_target;
  std::optional<Keys> m_staging;
  std::unique_ptr<Reservation> m_reservation;
  std::string m_finished;
  std::optional<Error> m_refusal;
  RoomGuard m_room{"the restore"};
  std::uint64_t m_room_counted = 0;  // of m_checkpoint_bytes, told m_room

  bool m_in_hash = false;

  dump::ContentDigest m_digest;          // of the records so far
  std::uint64_t m_checkpoint_records = 0;  // records at the last checkpoint
  std::uint64_t m_checkpoint_bytes = 0;    // value bytes since
  std::uint64_t m_skip = 0;                // --resume: records staged before
  std::string m_resume_digest;            // and their digest
  bool m_keep_staging = false;
  bool m_failed = false;  // a reply refused a record, or the connection failed
  bool m_lost = false;    // ... a reply of the staging writes was lost (keep_after_lost)
  std::optional<StagingWrites> m_writes;  // once the staging prefix is chosen
};

}  // namespace

// What the staged superblock says of where the filesystem came from
// (restored_superblock_marks, dump_rules.hpp).
Status mark_restored(Connection& c, const Keys& staging, const std::string& target, const std::string& source,
                      std::int64_t dumped_ns, bool snapshot) {
  TRY_ASSIGN(Reply origin, c.command({"HGET", staging.sb(), "origin"}));
  std::optional<std::string> had;
  if (!origin.view().is_nil()) {
    had.emplace(origin.view().str());
  }
  SuperblockMarks marks = restored_superblock_marks(had, target, source, dumped_ns, snapshot);
  std::vector<Args> tx;
  if (!marks.remove.empty()) {
    Args hdel{"HDEL", staging.sb()};
    hdel.insert(hdel.end(), marks.remove.begin(), marks.remove.end());
    tx.push_back(std::move(hdel));
  }
  Args hset{"HSET", staging.sb()};
  for (auto& [k, v] : marks.set) {
    hset.push_back(k);
    hset.push_back(v);
  }
  tx.push_back(std::move(hset));
  TRY(c.transaction(tx));
  return {};
}

namespace {

// The filesystem in a dump is damaged (fsck's `found`, with `prefix` the
// keys' as fsck_summary_line takes it): refused, or with --damaged a
// warning.
Status _damage_found(const FsckReport& found, std::string_view prefix, const std::string& target,
                     const RestoreOptions& o, std::string& warning) {
  const std::string line = fsck_summary_line(found, prefix);
  if (o.damaged) {
    add_warning(warning, "the filesystem in the dump is damaged: " + line + (o.dry_run ? "; it would be" : ";") +
                             " restored as it is: 'redisfs-snap fsck " + target + " --repair' " +
                             fsck_repair_reach(found.problems));
    return {};
  }
  return make_error(EINVAL,
                    "the filesystem in the dump is damaged: " + line + " (" + fsck_damaged_hint(found.problems) + ")");
}

// Everything fsck checks must hold before a staged filesystem is moved into
// place: a dump that restore accepts mounts and works. With --damaged it
// goes in as it is, and `warning` gets the summary.
Status _check_staged(Pool& pool, const Keys& staging, const std::string& target, const RestoreOptions& opts,
                     std::string& warning) {
  TRY_ASSIGN(FsckReport report, fsck(pool, staging.prefix(), false, nullptr));
  if (report.problems.empty()) {
    return {};
  }
  return _damage_found(report, staging.prefix(), target, opts, warning);
}

// A failed restore removes what it staged, unless that is kept for
// --resume: the input ended early (a broken pipe: not a regular file), a
// reply of the staging writes was lost, or a --resume did not get past its
// checkpoint. The error then says so. Its fault is Fault::Lost only when a
// lost reply failed it (RestoreSink::settle saw it, whatever the dump
// reader made of the message) and the staging stays: restore_from_path
// then resumes by itself. None otherwise.
Error _restore_failed(Connection* c, RestoreSink& sink, const RestoreOptions& opts, bool ended_early, Error e) {
  e.fault = Fault::None;
  if (c == nullptr || !sink.staging()) {
    return e;
  }
  // (Never after SIGINT or SIGTERM: the user asked for it to stop.)
  const bool alive = check_cancel().ok();
  const bool resumable = alive && sink.keep_after_lost();
  bool keep =
      alive && (resumable || sink.keep_staging() || (ended_early && opts.keep_on_early_end && sink.keep_for_resume()));
  c->drain();
  if (keep) {
    Error kept = make_error(e.code, e.message + "; the " + std::to_string(static_cast<long long>(sink.checkpointed())) +
                                        " records staged are kept for 12 h: 'restore --resume' with the same dump"
                                        " continues from there");
    kept.fault = resumable ? Fault::Lost : Fault::None;
    return kept;
  }
  (void)unlink_all(*c, *sink.staging());
  (void)c->command({"UNLINK", staging_index_key(*sink.staging())});
  (void)drop_resume_point(*c, sink.target(), sink.staging()->prefix());
  return e;
}

}  // namespace

Result<dump::Trailer> read_dump_stream(std::istream& in, dump::Sink& sink, const dump::ReadLimits& limits,
                                       Compression* detected, const std::optional<Error>* refusal,
                                       bool* ended_early) {
  // Plain JSON passes through; zstd and gzip are told by their magic.
  DecompressingBuf decompressed(in.rdbuf());
  std::istream json(&decompressed);
  auto trailer = dump::read(json, sink, limits);
  if (detected != nullptr) {
    *detected = decompressed.detected();
  }
  if (ended_early != nullptr) {
    *ended_early = !trailer.ok() && json.eof();
  }
  if (refusal != nullptr && *refusal) {
    return **refusal;
  }
  // A broken compressed stream ends the JSON early, or decodes to garbage
  // before its checksum tells: say so rather than what the JSON looked
  // like, and whether or not it looked whole.
  if (!trailer.ok()) {
    decompressed.check_rest(k_check_rest_bytes);
  }
  if (decompressed.error()) {
    return make_error(decompressed.error()->code, "dump: " + decompressed.error()->message);
  }
  return trailer;
}

// A fault of the dump's content found after its reader: "dump: " names
// it so, and fault_at's message names its record already.
static Status _in_dump(Status st) {
  if (dump::is_placed(st.error())) {
    return st;
  }
  return make_error(st.code(), "dump: " + st.error().message);
}

// A full restore's staged filesystem, read and verified whole, checked
// (fsck) and moved into place; `replaced`: it replaced a filesystem.
static Status _install_restored(Pool& pool, Connection& c, RestoreSink& sink, const RestoreOptions& opts,
                                RestoreStats& stats, bool& replaced) {
  const Keys& staging = *sink.staging();
  TRY(mark_restored(c, staging, sink.target(), sink.source_prefix(), sink.dumped_ns(), opts.snapshot));
  TRY_ASSIGN(std::uint64_t dropped, drop_staged_orphans(c, staging));
  std::string damage;
  Status checked = _check_staged(pool, staging, sink.target(), opts, damage);
  if (!checked.ok()) {
    return make_error(checked.code(), "dump: " + checked.error().message);
  }
  // Commit. The target is reserved; check it again all the same.
  bool replace = false;
  TRY(sink.reservation()->verify(c));
  TRY(sink.check_target(&replace));
  Keys target(sink.target());
  if (!replace) {
    // What the cheap probe could not see: a key of the target the
    // restored filesystem would take.
    TRY_ASSIGN(auto collision, find_collision(c, staging, target));
    if (collision && !opts.force) {
      return make_error(EEXIST, _refuse_taken(sink.target(), "keys (" + redisfs::quoted(*collision) + ")"));
    }
    replace = collision.has_value();
  }
  // From here the move is journaled (install.hpp) and finished by the next
  // tool or mount if it is interrupted: nothing is left to resume.
  TRY(drop_resume_point(c, sink.target(), staging.prefix()));
  auto installed = install_staging(c, staging, target, replace, sink.records() - dropped, true);
  if (!installed.ok()) {
    return make_error(installed.error().code, "restore into " + redisfs::quoted(sink.target()) +
                                                  " failed while moving the keys: " + installed.error().message);
  }
  replaced = installed->replaced;
  stats.warning = sink.finished();
  add_warning(stats.warning, installed->warning);
  add_warning(stats.warning, damage);
  (void)sink.reservation()->release();
  return {};
}

Status refuse_evicting_target(Connection& c, const RestoreOptions& opts, std::string_view target) {
  if (opts.dry_run || opts.allow_evicting_server) {
    return {};
  }
  return refuse_evicting_master(c, target, "restore");
}

Result<RestoreStats> restore_filesystem(Pool* pool, std::istream& in, const RestoreOptions& opts) {
  if (opts.prefix) {
    TRY(validate_prefix(*opts.prefix));
  }
  if (pool == nullptr && !opts.dry_run) {
    return make_error(EINVAL, "restore needs a server");
  }
  auto start = Clock::now();
  std::optional<Pool::Lease> lease;
  if (!opts.dry_run) {
    TRY_ASSIGN(Pool::Lease l, pool->acquire());
    lease.emplace(std::move(l));
  }
  if (opts.prefix && pool != nullptr) {
    // Refused before the dump is read (its own prefix is checked at its header).
    if (lease) {
      TRY(check_toolkit_prefix(**lease, *opts.prefix));
      TRY(refuse_evicting_target(**lease, opts, *opts.prefix));
    } else {
      TRY_ASSIGN(Pool::Lease l, pool->acquire());
      TRY(check_toolkit_prefix(*l, *opts.prefix));
    }
  }
  Connection* c = lease ? &**lease : nullptr;
  Progress progress(opts.dry_run ? "verify" : "restore", 0, "keys", opts.quiet);
  RestoreSink sink(pool, c, opts, progress);
  // A version-2 document goes to the incremental restore (dump_incremental.hpp).
  IncrementalRestore incremental(pool, c, opts, progress);
  ChooseSink chooser(sink, incremental);

  RestoreStats stats;
  bool replaced = false;
  bool ended_early = false;
  auto body = [&]() -> Status {
    auto trailer = read_dump_stream(in, chooser, opts.limits, &stats.compression, &sink.refusal(), &ended_early);
    if (incremental.refusal()) {
      return *incremental.refusal();
    }
    if (!trailer.ok() && !sink.refusal() && !incremental.active()) {
      if (Status dup = sink.settle(0); !dup.ok()) {  // a duplicate before the fault is the first fault
        return _in_dump(std::move(dup));
      }
    }
    TRY_ASSIGN(stats.trailer, std::move(trailer));
    if (incremental.active()) {
      return incremental.commit(stats);
    }
    if (Status fin = sink.finish(); !fin.ok()) {
      return _in_dump(std::move(fin));
    }
    if (c == nullptr) {
      return {};
    }
    TRY(check_cancel());
    return _install_restored(*pool, *c, sink, opts, stats, replaced);
  };
  Status st = body();
  progress.finish();
  if (!st.ok()) {
    if (c != nullptr) {
      incremental.discard();
    }
    return _restore_failed(c, sink, opts, ended_early, std::move(st).error());
  }
  if (!incremental.active()) {
    stats.prefix = sink.target();
    stats.source_prefix = sink.source_prefix();
  }
  stats.replaced = replaced;
  stats.resumed_records = sink.resumed_records();
  stats.seconds = seconds_since(start);
  return stats;
}

// A dry run's check of the filesystem in a full dump, fsck's analysis as
// verify runs it (it reads the file again): what restore would refuse
// once staged. From a stream it cannot be read again: the warning says so.
static Status _dry_run_check(const std::string& path, bool seekable, const RestoreOptions& o, RestoreStats& stats) {
  if (!stats.base_snapshot_id.empty()) {
    return {};  // an incremental dump's result is checked against its base, on the server
  }
  if (!seekable) {
    add_warning(stats.warning,
                "the filesystem in the dump is not checked when it is read from a stream (fsck's "
                "analysis reads it more than once): 'redisfs-snap verify FILE' checks a file");
    return {};
  }
  VerifyOptions vo;
  vo.limits = o.limits;
  TRY_ASSIGN(VerifyReport report, verify_dump(path, vo));
  if (!report.refusal.empty()) {
    return make_error(EINVAL, report.refusal);  // (the dump changed since the dry run read it)
  }
  if (report.problems.empty()) {
    return {};
  }
  FsckReport found;
  found.problems = std::move(report.problems);
  Status st = _damage_found(found, {}, stats.prefix, o, stats.warning);
  return st.ok() ? st : _in_dump(std::move(st));
}

Result<std::ifstream> open_dump_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return make_error(EISDIR, "cannot open " + path + ": " + errno_text(EISDIR));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno != 0 ? errno : ENOENT;
    return make_error(e, "cannot open " + path + ": " + errno_text(e));
  }
  return in;
}

Result<RestoreStats> restore_from_path(Pool* pool, const std::string& path, const RestoreOptions& opts) {
  RestoreOptions o = opts;
  struct stat st{};
  if (path == "-") {
    o.keep_on_early_end = ::fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode);
    TRY_ASSIGN(RestoreStats stats, restore_filesystem(pool, std::cin, o));
    if (o.dry_run) {
      TRY(_dry_run_check(path, false, o, stats));
    }
    return stats;
  }
  o.keep_on_early_end = ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode);
  // A file can be read again: a restore a lost reply failed (its staging
  // kept: _restore_failed) resumes from its last checkpoint by itself.
  for (int lost = 0;; ++lost) {
    TRY_ASSIGN(std::ifstream in, open_dump_file(path));
    auto done = restore_filesystem(pool, in, o);
    if (done.ok()) {
      done->lost_replies = lost;
      if (o.dry_run) {
        TRY(_dry_run_check(path, !o.keep_on_early_end, o, *done));
      }
      return done;
    }
    if (done.error().fault != Fault::Lost || o.keep_on_early_end || lost == k_restore_auto_resumes) {
      return done;
    }
    o.resume = true;
  }
}

}  // namespace redisfs
