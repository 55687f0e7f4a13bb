#include "tsc.h"

#include <time.h>

namespace bench {
namespace {

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

double Measure() {
  uint64_t n0 = MonoNs(), c0 = Rdtsc();
  timespec pause{0, 20 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  uint64_t n1 = MonoNs(), c1 = Rdtsc();
  return double(c1 - c0) * 1e9 / double(n1 - n0);
}

}  // namespace

double TscHz() {
  static const double hz = Measure();
  return hz;
}

}  // namespace bench
