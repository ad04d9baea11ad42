// clock_shift: an LD_PRELOAD library that moves a process's wall clock by
// CLOCK_SHIFT_SECONDS (may be negative): gettimeofday, time and
// clock_gettime of the realtime clocks. The monotonic clocks stay as they
// are. The prod cases run a redis-server under it: a host whose clock is
// not its peers' (tests/prod/cluster_clocks.sh).
//
// The kernel is asked directly (syscall), with no dlsym of the next
// definition: the allocator's start-up reads the clock before such a lookup
// can be made (libfaketime gives up on redis-server's jemalloc there).
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

namespace {

long shift_seconds() {
  static const long s = [] {
    const char* v = std::getenv("CLOCK_SHIFT_SECONDS");
    return v == nullptr ? 0L : std::strtol(v, nullptr, 10);
  }();
  return s;
}

int kernel_clock(clockid_t id, timespec* ts) { return static_cast<int>(syscall(SYS_clock_gettime, id, ts)); }

}  // namespace

extern "C" int clock_gettime(clockid_t id, timespec* ts) noexcept {
  const int r = kernel_clock(id, ts);
  if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
    ts->tv_sec += shift_seconds();
  }
  return r;
}

extern "C" int gettimeofday(timeval* __restrict tv, void* __restrict /*tz*/) noexcept {
  timespec ts{};
  if (kernel_clock(CLOCK_REALTIME, &ts) != 0) {
    return -1;
  }
  tv->tv_sec = ts.tv_sec + shift_seconds();  // (glibc declares tv nonnull)
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

extern "C" time_t time(time_t* out) noexcept {
  timespec ts{};
  const time_t t = kernel_clock(CLOCK_REALTIME, &ts) == 0 ? ts.tv_sec + shift_seconds() : static_cast<time_t>(-1);
  if (out != nullptr) {
    *out = t;
  }
  return t;
}
