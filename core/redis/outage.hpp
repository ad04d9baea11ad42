// What a process says of the waits its calls sit through (outages cost
// latency, not errors: redis.hpp), so that a wait that ends well still
// leaves a trace: a mount logs these notes, redisfs-snap prints them
// unless -q. The connection's retry loops (redis.cpp) and the toolkit's
// waits for another tool (core/snap/snapshot.cpp) report here; the
// daemon and the tools install the reporter.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "util/result.hpp"

namespace redisfs {

// What a process says of an outage. Its calls wait, each up to --timeout,
// for a server that does not answer or refuses them for a while (a
// restart, a failover, LOADING, BUSY, its limit of clients); its changes
// wait, each up to 120 s, for a filesystem frozen by a delete, an install
// or a snapshot (FROZEN). Without these notes a call that succeeds in the
// end leaves no trace of its wait.
struct OutageNote {
  enum class Kind {
    Server,  // calls wait for the server (--timeout)
    Freeze,  // changes wait for a freeze of the filesystem (FROZEN)
    Holder,  // a tool waits for another process (a snapshot, a freeze, a writeback mount): `why` in its words
  };
  Kind kind = Kind::Server;
  bool over = false;                    // false: a call has waited k_outage_note_after; true: a call succeeded since
  std::string why;                      // the error the waiting call met last; a Holder's: what it waits for, or ended
  std::chrono::milliseconds waited{0};  // (over) since the call that said so began
};
inline constexpr std::chrono::seconds k_outage_note_after{1};
// `report` is called once when calls begin to wait (the first to have
// waited k_outage_note_after) and once when the outage is over (the next
// call to succeed; for a freeze, the next change that had met it), on the
// thread of that call, one call at a time; a freeze and an outage of the
// server are noted each on its own. A call pays one relaxed atomic load
// when no outage is going on.
void set_outage_reporter(std::function<void(const OutageNote&)> report);
// Says `note` through the reporter: a wait its caller keeps count of
// itself (Kind::Holder: once it has lasted long enough, once when it
// ends).
void report_wait(const OutageNote& note);
// The note's one line, for a log or a tool's stderr: "calls wait for the
// server, each up to 30 s (--timeout): <why>", "the server answers again,
// 5.1 s after the first call that waited for it"; "changes wait for the
// end of the filesystem's freeze (a delete, an install or a snapshot),
// each up to 120 s", "the filesystem's freeze is over, 5.1 s after the
// first change that waited for it"; a Holder's `why` as it is, and when it
// is over "<why>; waited 5.1 s".
std::string outage_text(const OutageNote& note, std::chrono::milliseconds timeout);

// ---- for the waits that report (redis.cpp); a Holder's wait keeps its
// own count (report_wait).

// A call that began at `began` waits again after meeting `why` (Server or
// Freeze): said once, by the first to have waited k_outage_note_after.
void outage_waiting(OutageNote::Kind kind, std::chrono::steady_clock::time_point began, const Error& why);
// A call succeeded (Server: any; Freeze: one that had met the freeze).
// One relaxed atomic load when nothing is being waited for.
void outage_over(OutageNote::Kind kind);
// A call gave up waiting, with an error that says so: the wait is over as
// far as the notes go (no note that it is over), and the calls that
// waited with it are not said again.
void outage_given_up(OutageNote::Kind kind);

// How long a change waits out a freeze before it fails (EBUSY): 120 s, two
// under REDISFS_FAULT=short-freeze-wait (the tests').
std::chrono::seconds freeze_limit();
// --timeout as given: "30 s", "0.5 s".
std::string timeout_text(std::chrono::milliseconds timeout);

}  // namespace redisfs
