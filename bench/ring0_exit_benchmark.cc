// Exit round trips of ring-0 payloads on our own /dev/kvm VMM (harness/),
// in the style of kvm-unit-tests' x86/vmexit: per payload
// of the exit catalogue, the per-vCPU iteration count doubles until the
// guest's loop takes a fixed TSC budget, then every run reports guest TSC
// cycles per operation, on 1, 2, ... all vCPUs at once.
//
// Counters per row:
//   cycles_per_exit     median over vCPUs of guest TSC cycles per operation,
//                       the least of --runs_per_point runs: the guest loop is
//                       timed in wall-clock TSC, so on a shared machine a run
//                       whose vCPU thread was preempted reads high; the
//                       fastest of a few runs is the undisturbed one
//   cycles_per_exit_median  the median of those runs, for comparison
//   ns_per_exit         the same in ns (TSC rate measured here)
//   kvm_exits_per_op    KVM's own `exits` stat delta per operation: 1 on
//                       hardware VMX/SVM for one-exit-per-op payloads; far
//                       below 1 on a paravirtual /dev/kvm that batches
//   host_cycles_per_exit, leaf_exits_per_op
//                       patched host only (guest read the leaves): VM total
//                       cycles delta / exits delta, and the payload reason's
//                       count per operation
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "exitstats/catalogue.h"
#include "harness/kvm.h"
#include "harness/payload.h"
#include "flags.h"
#include "parallel.h"
#include "tsc.h"

namespace {

struct Flags {
  int max_vcpus = 0;
  // kvm-unit-tests uses 2^30 cycles per loop; on a shared 2-CPU machine a
  // loop that long is always preempted, so the default is short and the
  // fastest of several runs counts (pass 2^30 on quiet hardware).
  double cycle_budget = double(1ull << 22);
  uint64_t max_iterations = 1ull << 24;
  int timeout_s = 60;  // per payload run; a hung payload is skipped, not waited for
  int runs_per_point = 15;
};
Flags g_flags;

harness::Kvm* g_kvm = nullptr;

// kvm-unit-tests' vmexit loop: double the count until the loop takes the
// budget. Calibrated once per payload on one vCPU, reused for N vCPUs so
// every vCPU does the same work as the single one did.
uint64_t Calibrate(const harness::PayloadSpec& spec, const harness::RunOptions& opt) {
  static std::map<std::string, uint64_t> cache;
  auto it = cache.find(std::string(spec.name));
  if (it != cache.end()) return it->second;
  uint64_t n = 16;
  for (;;) {
    harness::RunResult r = harness::RunPayload(*g_kvm, spec, 1, n, opt);
    if (double(r.vcpus.at(0).tsc_cycles) >= g_flags.cycle_budget || n >= g_flags.max_iterations)
      break;
    n *= 2;
  }
  cache[std::string(spec.name)] = n;
  return n;
}

// A payload that hung or failed once is not retried at the next vCPU count
// or repetition: each retry would cost the full timeout again.
std::map<std::string, std::string>& Failed() {
  static std::map<std::string, std::string> failed;
  return failed;
}

void BM_Ring0Exit(benchmark::State& state, const harness::PayloadSpec* spec) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  if (auto why = harness::Unsupported(*spec, *g_kvm)) {
    state.SkipWithError(why->c_str());
    return;
  }
  if (auto f = Failed().find(std::string(spec->name)); f != Failed().end()) {
    state.SkipWithError(("not retried: " + f->second).c_str());
    return;
  }
  harness::RunOptions opt;
  opt.timeout = std::chrono::seconds(g_flags.timeout_s);
  std::vector<double> run_cycles;
  double cycles_sum = 0, kvm_exits = 0, ops_sum = 0, host_cycles = 0, host_exits = 0,
         leaf_exits = 0, runs = 0;
  bool leaves = false;
  uint64_t iters = 0;
  try {
    iters = Calibrate(*spec, opt);
    for (auto _ : state) {
      double best = 0, best_ns = 0;
      for (int k = 0; k < g_flags.runs_per_point; ++k) {
        harness::RunResult r = harness::RunPayload(*g_kvm, *spec, n, iters, opt);
        std::vector<double> per_op;
        double loop_ns = 0;
        for (const harness::VcpuResult& v : r.vcpus) {
          if (!v.guest_ops) continue;
          per_op.push_back(double(v.tsc_cycles) / double(v.guest_ops));
          loop_ns += double(v.tsc_cycles) * 1e9 / bench::TscHz();
          ops_sum += double(v.guest_ops);
          auto e = v.stats.find("exits");
          if (e != v.stats.end()) kvm_exits += double(e->second);
        }
        if (per_op.empty()) {
          state.SkipWithError("no vCPU completed an operation");
          return;
        }
        std::nth_element(per_op.begin(), per_op.begin() + per_op.size() / 2, per_op.end());
        const double c = per_op[per_op.size() / 2];
        run_cycles.push_back(c);
        if (k == 0 || c < best) {
          best = c;
          best_ns = loop_ns / double(per_op.size());
        }
        if (r.vm) {
          leaves = true;
          host_cycles += double(r.vm->patch.total_cycles);
          host_exits += double(r.vm->patch.total64);
          int t = harness::TrackedIndex(exitstats::Lookup(spec->kind).sdm_reason);
          if (t >= 0) leaf_exits += double(r.vm->patch.reason64[t]);
        }
      }
      cycles_sum += best;
      runs += 1;
      state.SetIterationTime(best_ns * 1e-9);
    }
  } catch (const std::exception& e) {
    Failed()[std::string(spec->name)] = e.what();
    state.SkipWithError(e.what());
    return;
  }
  const double cycles = cycles_sum / runs;
  state.counters["cycles_per_exit"] = cycles;
  std::nth_element(run_cycles.begin(), run_cycles.begin() + run_cycles.size() / 2,
                   run_cycles.end());
  state.counters["cycles_per_exit_median"] = run_cycles[run_cycles.size() / 2];
  state.counters["ns_per_exit"] = cycles * 1e9 / bench::TscHz();
  state.counters["vcpus"] = n;
  state.counters["iterations_per_vcpu"] = double(iters);
  state.counters["kvm_exits_per_op"] = ops_sum ? kvm_exits / ops_sum : 0;
  if (leaves) {
    state.counters["host_cycles_per_exit"] = host_exits ? host_cycles / host_exits : 0;
    state.counters["leaf_exits_per_op"] = ops_sum ? leaf_exits / ops_sum : 0;
  }
  const double per_op = ops_sum ? kvm_exits / ops_sum : 0;
  if (spec->kind != exitstats::ExitKind::kFirstTouch && per_op < 0.5)
    state.SetLabel("batched: " + std::to_string(per_op) +
                   " KVM exits per operation, not one hardware exit per op");
}

// The vmx/svm CPU flag tells a hardware-virtualizing host from a
// paravirtual /dev/kvm (which runs ring-0 guests by emulation and batches).
std::string HostVirtualization() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    if (line.find(" vmx") != std::string::npos) return "vmx";
    if (line.find(" svm") != std::string::npos) return "svm";
    return "none";
  }
  return "unknown";
}

int ParseFlags(int argc, char** argv) {
  return bench::ParseFlags(
      argc, argv, &g_flags.max_vcpus,
      {{"--cycle_budget=", "CYCLES (default 2^22 guest TSC cycles per calibrated loop)",
        [](const char* v) { g_flags.cycle_budget = std::atof(v); return true; }},
       {"--max_iterations=", "N (default 2^24)",
        [](const char* v) { g_flags.max_iterations = std::strtoull(v, nullptr, 0); return true; }},
       {"--timeout_s=", "S (per payload run, default 60)",
        [](const char* v) { g_flags.timeout_s = std::atoi(v); return true; }},
       {"--runs_per_point=", "K (runs per figure, the fastest counts; default 15)",
        [](const char* v) { g_flags.runs_per_point = std::max(1, std::atoi(v)); return true; }}});
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (int rc = ParseFlags(argc, argv)) return rc;
  std::string why;
  auto kvm = harness::Kvm::TryOpen(&why);
  if (!kvm) {
    // Nothing to measure; say so in the JSON (every row skipped) and exit 0
    // so a results folder still gets a file that explains itself.
    std::fprintf(stderr, "ring0_exit_benchmark: %s\n", why.c_str());
  } else {
    g_kvm = &*kvm;
  }
  for (const harness::PayloadSpec& spec : harness::Payloads()) {
    auto* b = benchmark::RegisterBenchmark(("BM_Ring0Exit/" + std::string(spec.name)).c_str(),
                                           [s = &spec](benchmark::State& st) {
                                             if (!g_kvm) {
                                               st.SkipWithError("no usable /dev/kvm");
                                               return;
                                             }
                                             BM_Ring0Exit(st, s);
                                           });
    for (int v : bench::ThreadCounts(g_flags.max_vcpus)) b->Arg(v);
    b->ArgName("vcpus")->UseManualTime()->Iterations(1)->Unit(benchmark::kNanosecond);
    benchmark::AddCustomContext("bench.how." + std::string(spec.name), std::string(spec.what));
  }
  const std::string virt = HostVirtualization();
  benchmark::AddCustomContext("bench.host_virtualization", virt);
  if (virt == "none")
    benchmark::AddCustomContext(
        "bench.kvm_note",
        "this CPU has no vmx/svm flag: /dev/kvm here is paravirtual and batches exits, so a "
        "round trip is NOT one hardware exit per operation (see kvm_exits_per_op)");
  char budget[64];
  std::snprintf(budget, sizeof budget, "%.0f", g_flags.cycle_budget);
  benchmark::AddCustomContext("bench.cycle_budget", budget);
  benchmark::AddCustomContext("bench.tsc_hz", std::to_string(bench::TscHz()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
