// fsck: the public face of a check (fsck.hpp). The work is in three parts
// (fsck_analysis.hpp): the gathering of facts from a server
// (fsck_scan.cpp, two SCAN passes), the analysis of those facts
// (fsck_analysis.cpp, also fed from a dump by dump_verify.cpp) and the
// repair (fsck_repair.cpp). Here: the entry point and the report's forms
// (one line per problem, the dry run's lines, a summary line, JSON).
#include "snap/fsck.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "snap/fsck_analysis.hpp"
#include "snap/install.hpp"
#include "snap/snapshot.hpp"
#include "store/keys.hpp"
#include "util/progress.hpp"

namespace redisfs {

using namespace fsck_detail;

std::size_t FsckReport::remaining() const {
  return static_cast<std::size_t>(
      std::count_if(problems.begin(), problems.end(), [](const FsckProblem& p) { return !p.repaired; }));
}

namespace {
// (when the mount that refuses it lapses: the session keys that never
// lapse are no running mount's, and the repair removes them)
Error _mounted_refusal(Connection& c, const Keys& keys, std::uint64_t mounts) {
  std::string hint;
  if (auto live = live_mounts(c, keys); live.ok()) {
    hint = live_mounts_hint(c, keys, *live, false);
  }
  return make_error(EBUSY, "'" + keys.prefix() + "' " + mounted_count(mounts) +
                               ": unmount it before --repair, or add --force to repair it anyway" + hint);
}
}  // namespace

Result<FsckReport> fsck(Pool& pool, const std::string& prefix, bool repair, Progress* progress, FsckMounted mounted) {
  TRY(validate_prefix(prefix));
  TRY_ASSIGN(auto c, pool.acquire());
  TRY(check_toolkit_prefix(*c, prefix));
  const Keys keys(prefix);
  std::unique_ptr<Reservation> reservation;
  std::string replaced;  // a reservation no holder set, which this one replaced
  // An error after the replacement says so: the damaged key is gone.
  auto failed = [&](Error e) {
    if (!replaced.empty()) {
      e.message += " (and it removed " + keys.reserved() + ", a reservation no tool held: " + replaced + ")";
    }
    return e;
  };
  bool confirm = false;
  if (repair) {
    if (mounted == FsckMounted::Refuse) {
      // Refused before anything changes (a damaged reservation is still
      // there), and again below for a mount that started meanwhile.
      TRY_ASSIGN(std::uint64_t mounts, running_mounts(*c, keys));
      if (mounts > 0) {
        return _mounted_refusal(*c, keys, mounts);
      }
    }
    // Reserved, then the mounts counted: one that starts later finds the
    // reservation and fails (fsck.hpp).
    TRY_ASSIGN(reservation, Reservation::acquire_over_damaged(pool, keys, "fsck --repair", replaced));
    auto mounts = running_mounts(*c, keys);
    if (!mounts.ok()) {
      return failed(std::move(mounts).error());
    }
    if (*mounts > 0 && mounted == FsckMounted::Refuse) {
      return failed(_mounted_refusal(*c, keys, *mounts));
    }
    confirm = *mounts > 0;
  }
  // A scan the server's restart or failover cut short (EAGAIN, Scanner::scan)
  // starts over: nothing was repaired by what it had found.
  for (int attempt = 1;; ++attempt) {
    if (attempt > 1 && progress != nullptr) {
      progress->restart();  // (counted from nothing: never past the whole)
    }
    auto report = fsck_scan(*c, prefix, repair, progress, confirm, reservation.get());
    if (report.ok() || report.code() != EAGAIN || attempt == 3 || (reservation && !reservation->check().ok())) {
      if (reservation) {
        (void)reservation->release();  // (a loss before the repair failed it: Scanner::run)
      }
      if (!report.ok()) {
        return failed(std::move(report).error());
      }
      if (!replaced.empty()) {
        report->problems.insert(report->problems.begin(), fsck_replaced_reservation(keys.reserved(), replaced));
      }
      return report;
    }
  }
}

bool fsck_kind_may_be_transient(std::string_view kind) {
  using namespace fsck_kind;
  for (std::string_view k : {k_wrong_counter, k_dangling_entry, k_extra_entry, k_wrong_nlink, k_wrong_parent,
                             k_lost_inode, k_detached_dir, k_stale_orphan, k_dead_orphan, k_stray_key,
                             k_block_past_eof, k_bytes_past_eof, k_wrong_bytes, k_stale_open}) {
    if (kind == k) {
      return true;
    }
  }
  return false;
}

namespace {
std::string _shown_key(std::string_view key) { return printable(cut(key, k_shown_max)); }

std::string _base_line(const FsckProblem& p) {
  return printable(cut(p.kind, k_shown_max)) + ": " + _shown_key(p.key) + ": " +
         printable(cut(p.detail, k_detail_max));
}
}  // namespace

std::string fsck_problem_line(const FsckProblem& p) {
  std::string line = _base_line(p);
  const std::string deletes = printable(cut(p.deletes, k_shown_max * 2));
  if (p.repaired) {
    line += deletes.empty() ? " (repaired)" : " (repaired: deleted " + deletes + ")";
  } else if (p.repairable && !deletes.empty()) {
    line += " (--repair deletes " + deletes + ")";
  }
  return line;
}

std::string fsck_dry_run_line(const FsckProblem& p) {
  if (!p.repairable) {
    return "no repair: " + _base_line(p);
  }
  if (!p.deletes.empty()) {
    return "repair, DELETES DATA (" + printable(cut(p.deletes, k_shown_max * 2)) + "): " + _base_line(p);
  }
  return "repair: " + _base_line(p);
}

std::string fsck_summary_line(const FsckReport& report, std::string_view prefix) {
  if (report.problems.empty()) {
    return {};
  }
  std::size_t more = report.problems.size() - 1;
  FsckProblem first = report.problems.front();
  if (!prefix.empty()) {
    if (auto rel = Keys(std::string(prefix)).relative(first.key)) {
      first.key = std::string(*rel);
    }
  }
  std::string line = _base_line(first);
  if (more > 0) {
    line += " (and " + std::to_string(more) + (more == 1 ? " more problem)" : " more problems)");
  }
  return line;
}

namespace {
std::size_t _fixed(const std::vector<FsckProblem>& problems) {
  return static_cast<std::size_t>(std::count_if(problems.begin(), problems.end(),
                                                [](const FsckProblem& p) { return p.repairable || p.mount_frees; }));
}
}  // namespace

std::string fsck_repair_reach(const std::vector<FsckProblem>& problems) {
  const std::size_t n = problems.size();
  const std::size_t fixed = _fixed(problems);
  const std::string all = std::to_string(n);
  if (fixed == 0) {
    return n == 1 ? "cannot repair it: fix it by hand" : "repairs none of the " + all + ": fix them by hand";
  }
  if (fixed == n) {
    return std::string("repairs ") + (n == 1 ? "it" : n == 2 ? "both" : "all " + all);
  }
  return "repairs " + std::to_string(fixed) + " of the " + all + " (fix the rest by hand)";
}

std::string fsck_damaged_hint(const std::vector<FsckProblem>& problems) {
  return std::string("restore --damaged restores it as it is") +
         (_fixed(problems) == 0 ? "; fsck --repair " : ", for fsck --repair, which ") + fsck_repair_reach(problems);
}

std::string fsck_as_json(const std::string& prefix, bool repair, const FsckReport& report) {
  using Json = nlohmann::ordered_json;
  Json j;
  j["prefix"] = prefix;
  j["repair"] = repair;
  j["clean"] = report.remaining() == 0;
  j["inodes"] = report.inodes;
  j["dirs"] = report.dirs;
  j["files"] = report.files;
  j["blocks"] = report.blocks;
  j["bytes"] = report.bytes;
  Json problems = Json::array();
  for (const auto& p : report.problems) {
    Json q;
    q["kind"] = p.kind;
    q["key"] = p.key;
    q["detail"] = p.detail;
    q["deletes"] = p.deletes;
    q["repairable"] = p.repairable;
    q["repaired"] = p.repaired;
    q["again"] = p.again;
    q["mount_frees"] = p.mount_frees;
    problems.push_back(std::move(q));
  }
  j["problems"] = std::move(problems);
  j["remaining"] = report.remaining();
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace redisfs
