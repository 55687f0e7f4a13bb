// Running one body on N threads at once, with oneTBB, for the benchmarks.
//
// A contention measurement is only meaningful if the N participants really
// overlap. oneTBB does not promise that N indices of a parallel_for land on N
// distinct threads at the same time (a worker that wakes late lets the master
// run two indices back to back), so every participant pins itself, announces
// itself at a start barrier and waits for the others; the barrier gives up
// after a bounded spin rather than deadlock, and the result says how many
// participants actually overlapped so a report can flag a degraded run.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "tsc.h"

namespace bench {

// The machine is shared (2 CPUs, other people's builds), so a participant can
// be descheduled in the middle of its timed region. Wall time then counts the
// time it did not run; its thread CPU time does not. Both are reported.
struct ParallelRun {
  double mean_ns = 0;      // mean over participants of their wall time
  double max_ns = 0;       // slowest participant, wall
  double mean_cpu_ns = 0;  // mean over participants of their thread CPU time
  uint64_t mean_tsc = 0;   // mean TSC cycles per participant (wall)
  int overlapped = 0;      // participants that passed the barrier together
  int distinct_threads = 0;
};

// Number of CPUs this process may run on (sched_getaffinity), at least 1.
int OnlineCpus();

// Thread counts 1, 2, 4, ... up to max, plus max itself.
std::vector<int> ThreadCounts(int max);

// Runs body(index) on n participants concurrently. Participant i is pinned to
// the i-th allowed CPU (modulo their number). Timing starts after the barrier.
ParallelRun RunParallel(int n, const std::function<void(int index)>& body);

}  // namespace bench

// ---------------------------------------------------------------------------
// Windowed timing for contention measurements on a shared machine.
//
// Mean time over a whole run mixes two things: the cost of an operation while
// all N participants run it (what we want), and stretches where some of them
// were descheduled by unrelated load (on this 2-CPU box: other people's
// builds). So each participant times short windows of its own work and bumps
// a heartbeat every `ops_per_beat` operations; a window counts only if every
// other participant's heartbeat advanced by at least `min_beats` meanwhile,
// i.e. they were really running alongside, and by at most `max_beats`: far
// more means this participant was descheduled inside its window while the
// others ran on, and that window's time is preemption, not the operation.
// The result is the median over counted windows.
namespace bench {

// Samples pooled over any number of runs; the median is taken at the end so
// a short run with few windows cannot dominate.
struct WindowSamples {
  std::vector<double> cycles_per_op;  // one per counted window
  int64_t all_windows = 0;
  double wall_ns = 0;  // sum over runs of mean participant wall time
  int64_t ops = 0;     // sum over runs of ops per participant

  double MedianCyclesPerOp();
  double OverlapFraction() const {
    return all_windows ? double(cycles_per_op.size()) / double(all_windows) : 0;
  }
  double WallNsPerOp() const { return ops ? wall_ns / double(ops) : 0; }
};

struct WindowPlan {
  int64_t ops_per_participant;  // rounded down to whole windows (at least one)
  int64_t ops_per_beat;
  int beats_per_window;
  int min_beats;  // others' progress required for a window to count
  int max_beats;  // others' progress beyond which this window was preempted

  int64_t WindowOps() const { return ops_per_beat * beats_per_window; }
  int64_t Windows() const { return std::max<int64_t>(1, ops_per_participant / WindowOps()); }
  int64_t OpsRun() const { return Windows() * WindowOps(); }  // per participant
};

// Heartbeat slots, one cache line each.
class Heartbeats {
 public:
  explicit Heartbeats(int n);
  void Beat(int i) {
    beats_[i].v.store(beats_[i].v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  uint64_t Get(int i) const { return beats_[i].v.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> v{0};
  };
  std::vector<Slot> beats_;
};

// Runs op(index) plan.OpsRun() times on each of n participants and appends
// the counted windows to `out`. Returns the run's mean wall ns per participant.
template <class Op>
double RunWindowed(int n, const WindowPlan& plan, WindowSamples& out, Op&& op) {
  Heartbeats hb(n);
  const int64_t windows = plan.Windows();
  const double window_ops = double(plan.WindowOps());
  std::vector<std::vector<double>> counted(n);
  ParallelRun run = RunParallel(n, [&](int i) {
    std::vector<uint64_t> before(n);
    counted[i].reserve(windows);
    for (int64_t w = 0; w < windows; ++w) {
      for (int j = 0; j < n; ++j) before[j] = hb.Get(j);
      const uint64_t t0 = Rdtsc();
      for (int b = 0; b < plan.beats_per_window; ++b) {
        for (int64_t k = 0; k < plan.ops_per_beat; ++k) op(i);
        hb.Beat(i);
      }
      const uint64_t t1 = Rdtsc();
      bool all_ran = true;
      for (int j = 0; j < n; ++j)
        if (j != i) {
          const uint64_t d = hb.Get(j) - before[j];
          if (d < uint64_t(plan.min_beats) || d > uint64_t(plan.max_beats)) all_ran = false;
        }
      if (all_ran) counted[i].push_back(double(t1 - t0) / window_ops);
    }
  });
  for (auto& v : counted) out.cycles_per_op.insert(out.cycles_per_op.end(), v.begin(), v.end());
  out.all_windows += windows * n;
  out.wall_ns += run.mean_ns;
  out.ops += plan.OpsRun();
  return run.mean_ns;
}

}  // namespace bench
