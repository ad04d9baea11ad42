#include "redis/outage.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "util/fault.hpp"

namespace redisfs {

using Clock = std::chrono::steady_clock;

namespace {
// What set_outage_reporter keeps of one kind of wait: `on` while calls wait
// (from the first to wait k_outage_note_after until the next to succeed).
struct WaitState {
  std::atomic<bool> on{false};
  Clock::time_point since;     // under g_mutex
  Clock::time_point given_up;  // under g_mutex: calls begun before were said
};
WaitState g_server;  // the server's
WaitState g_freeze;  // the filesystem's freeze (FROZEN)
std::mutex g_mutex;
std::function<void(const OutageNote&)> g_report;  // under g_mutex

WaitState& _state(OutageNote::Kind kind) { return kind == OutageNote::Kind::Freeze ? g_freeze : g_server; }
}  // namespace

void outage_waiting(OutageNote::Kind kind, Clock::time_point began, const Error& why) {
  WaitState& w = _state(kind);
  if (w.on.load(std::memory_order_relaxed) || Clock::now() - began < k_outage_note_after) {
    return;
  }
  std::lock_guard lock(g_mutex);
  if (began < w.given_up || w.on.exchange(true)) {
    return;  // (another call said it first)
  }
  w.since = began;
  if (g_report) {
    g_report(OutageNote{kind, false, why.message, {}});
  }
}

void outage_over(OutageNote::Kind kind) {
  WaitState& w = _state(kind);
  if (!w.on.load(std::memory_order_relaxed)) {
    return;
  }
  std::lock_guard lock(g_mutex);
  if (!w.on.exchange(false)) {
    return;
  }
  if (g_report) {
    g_report(OutageNote{kind, true, {}, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - w.since)});
  }
}

void outage_given_up(OutageNote::Kind kind) {
  WaitState& w = _state(kind);
  std::lock_guard lock(g_mutex);
  w.on = false;
  w.given_up = Clock::now();
}

void set_outage_reporter(std::function<void(const OutageNote&)> report) {
  std::lock_guard lock(g_mutex);
  g_report = std::move(report);
}

void report_wait(const OutageNote& note) {
  std::lock_guard lock(g_mutex);
  if (g_report) {
    g_report(note);
  }
}

std::string timeout_text(std::chrono::milliseconds timeout) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(timeout.count()) / 1000);
  return buf;
}

std::chrono::seconds freeze_limit() { return std::chrono::seconds(fault_injected("short-freeze-wait") ? 2 : 120); }

std::string outage_text(const OutageNote& note, std::chrono::milliseconds timeout) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(note.waited.count()) / 1000);
  if (note.kind == OutageNote::Kind::Holder) {
    return note.over ? note.why + "; waited " + buf : note.why;
  }
  if (note.over) {
    return note.kind == OutageNote::Kind::Freeze
               ? std::string("the filesystem's freeze is over, ") + buf + " after the first change that waited for it"
               : std::string("the server answers again, ") + buf + " after the first call that waited for it";
  }
  if (note.kind == OutageNote::Kind::Freeze) {
    // (why: the script's FROZEN, which says no more than this)
    return "changes wait for the end of the filesystem's freeze (a delete, an install or a snapshot), each up to " +
           std::to_string(freeze_limit().count()) + " s";
  }
  return "calls wait for the server, each up to " + timeout_text(timeout) + " (--timeout): " + note.why;
}

}  // namespace redisfs
