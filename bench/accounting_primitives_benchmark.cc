// What an exit counter update costs, by where the counter lives. The patch bumps a counter on every exit of every vCPU; this
// measures the candidate layouts on the machine we run on, 1..N threads:
//
//   per_vcpu_padded    one counter per thread, each on its own cache line,
//                      plain load+add+store (what vcpu->stat does): no
//                      sharing, so the cost should stay flat with threads.
//   per_vcpu_unpadded  one counter per thread, packed in one cache line:
//                      no logical sharing but false sharing of the line.
//   shared_atomic      one counter for everyone, lock xadd (atomic64_inc):
//                      every update pulls the line over, cost grows.
//   shared_plain       one counter, plain load+add+store: the naive course
//                      patch. Cheap-ish and WRONG: it loses updates, which
//                      the lost_updates counter shows.
//   per_cpu            one counter per CPU (sched_getcpu() index), each on
//                      its own line; lock xadd because a user thread may
//                      migrate between reading its CPU and updating (the
//                      kernel's this_cpu_inc needs no lock prefix).
//
// The figure is the cost of one update as each participant sees it while all
// N really update at the same time: the median over short windows during
// which every other participant was running too (bench/parallel.h says why),
// in counters ns_per_update and cycles_per_update (TSC). The benchmark time
// (real_time) is the plain wall-clock mean per update, which includes
// preemption by unrelated load; overlap is the fraction of windows counted.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "parallel.h"
#include "tsc.h"

namespace {

constexpr int kMaxSlots = 256;  // threads or CPUs
// Each batch is one parallel run; its fixed cost (waking and pinning threads,
// the start barrier) is outside the timed region but not outside wall time,
// so batches grow with the iteration count Google Benchmark asks for: at most
// about 8 parallel runs per measurement, never fewer than 2^16 updates each.
constexpr int64_t kMinOpsPerBatch = 1 << 16;
inline int64_t BatchFor(const benchmark::State& state) {
  return std::max<int64_t>(kMinOpsPerBatch, int64_t(state.max_iterations) / 8);
}

struct alignas(64) PaddedSlot {
  std::atomic<uint64_t> v{0};
};

// All counters live in one object so each strategy sees fresh, zeroed state.
struct Counters {
  PaddedSlot padded[kMaxSlots];
  alignas(64) std::atomic<uint64_t> packed[kMaxSlots] = {};
  alignas(64) std::atomic<uint64_t> shared{0};
  PaddedSlot per_cpu[kMaxSlots];
};

// A plain (non-locked) increment: relaxed load and store compile to mov/add/mov,
// like `vcpu->stat.exits++`, while staying well-defined C++ for racy sharing.
inline void PlainInc(std::atomic<uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

struct PerVcpuPadded {
  static void Update(Counters& c, int t) { PlainInc(c.padded[t].v); }
  static uint64_t Sum(Counters& c, int n) {
    uint64_t s = 0;
    for (int i = 0; i < n; ++i) s += c.padded[i].v.load();
    return s;
  }
};
struct PerVcpuUnpadded {
  static void Update(Counters& c, int t) { PlainInc(c.packed[t]); }
  static uint64_t Sum(Counters& c, int n) {
    uint64_t s = 0;
    for (int i = 0; i < n; ++i) s += c.packed[i].load();
    return s;
  }
};
struct SharedAtomic {
  // Using the result forces lock xadd rather than lock add; same cost class,
  // but it is the instruction atomic64_inc_return would use.
  static void Update(Counters& c, int) { benchmark::DoNotOptimize(c.shared.fetch_add(1)); }
  static uint64_t Sum(Counters& c, int) { return c.shared.load(); }
};
struct SharedPlain {
  static void Update(Counters& c, int) { PlainInc(c.shared); }
  static uint64_t Sum(Counters& c, int) { return c.shared.load(); }
};
struct PerCpu {
  static void Update(Counters& c, int) {
    c.per_cpu[static_cast<unsigned>(sched_getcpu()) % kMaxSlots].v.fetch_add(
        1, std::memory_order_relaxed);
  }
  static uint64_t Sum(Counters& c, int) {
    uint64_t s = 0;
    for (auto& slot : c.per_cpu) s += slot.v.load();
    return s;
  }
};

template <class S>
void BM_CounterUpdate(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto counters = std::make_unique<Counters>();
  // Windows of 16 x 256 updates; the others must have done between half a
  // window and four windows meanwhile for a window to count as contended.
  const bench::WindowPlan plan{BatchFor(state), 256, 16, 8, 64};
  const int64_t batch = plan.OpsRun();
  bench::WindowSamples samples;
  while (state.KeepRunningBatch(batch)) {
    double wall_ns = bench::RunWindowed(n, plan, samples, [&](int t) { S::Update(*counters, t); });
    state.SetIterationTime(wall_ns * 1e-9);
  }
  // No counted window, no figure: the counters stay absent (not 0).
  if (!samples.cycles_per_op.empty()) {
    const double cycles = samples.MedianCyclesPerOp();
    state.counters["cycles_per_update"] = cycles;
    state.counters["ns_per_update"] = cycles * 1e9 / bench::TscHz();
  }
  state.counters["overlap"] = samples.OverlapFraction();
  const uint64_t expected = uint64_t(n) * uint64_t(samples.ops);
  const uint64_t got = S::Sum(*counters, n);
  // Fraction of updates that vanished (only the racy shared_plain may lose).
  state.counters["lost_updates"] = expected ? double(expected - got) / double(expected) : 0;
  if (samples.cycles_per_op.empty())
    state.SetLabel("no window had all threads running at once (busy machine): no figure");
}

struct Strategy {
  const char* name;
  void (*fn)(benchmark::State&);
};

constexpr Strategy kStrategies[] = {
    {"per_vcpu_padded", BM_CounterUpdate<PerVcpuPadded>},
    {"per_vcpu_unpadded", BM_CounterUpdate<PerVcpuUnpadded>},
    {"shared_atomic", BM_CounterUpdate<SharedAtomic>},
    {"shared_plain", BM_CounterUpdate<SharedPlain>},
    {"per_cpu", BM_CounterUpdate<PerCpu>},
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // Our own flag, after Google Benchmark took its own: --max_threads=N
  // (default: the CPUs this process may use).
  int max_threads = bench::OnlineCpus();
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--max_threads=", 14) == 0) {
      max_threads = std::atoi(argv[i] + 14);
    } else {
      std::fprintf(stderr, "unknown flag %s (Google Benchmark flags plus --max_threads=N)\n",
                   argv[i]);
      return 2;
    }
  }
  if (max_threads < 1 || max_threads > kMaxSlots) {
    std::fprintf(stderr, "--max_threads must be 1..%d\n", kMaxSlots);
    return 2;
  }
  for (const Strategy& s : kStrategies) {
    auto* b =
        benchmark::RegisterBenchmark((std::string("BM_CounterUpdate/") + s.name).c_str(), s.fn);
    for (int n : bench::ThreadCounts(max_threads)) b->Arg(n);
    b->ArgName("threads")->UseManualTime()->Unit(benchmark::kNanosecond);
  }
  benchmark::AddCustomContext(
      "bench.note",
      "ns_per_update/cycles_per_update: median cost of one counter update per "
      "thread over windows in which all threads were running at once; "
      "real_time: wall-clock mean including preemption by other load");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
