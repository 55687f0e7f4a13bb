// Exit round trips as a Linux guest's user space sees them.
// Meant to run inside the L2 guest, as a student would run their
// tests in the inner VM; it runs anywhere and skips what it cannot do.
//
//   BM_GuestExit/<type>/vcpus:N   guest TSC cycles per operation while N
//                                 vCPUs do the same operation at once
//                                 (counters cycles_per_exit, ns_per_exit)
//   BM_HostCycles/<type>/vcpus:N  host cycles per exit of that type's SDM
//                                 reason, from the exit-statistics leaves
//                                 (cycles delta / exits delta), on a
//                                 patched host only; skipped with the
//                                 reason otherwise
//
// Types are the exit catalogue's rows (exitstats/catalogue.h) whose
// user-mode trigger is `timed`, driven by the operations of
// exitstats/user_ops.h on the row's port or MSR; the others are listed as
// not timed here (see ring0_exit_benchmark).
#include <benchmark/benchmark.h>
#include <cpuid.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "exitstats/catalogue.h"
#include "exitstats/cpuid.h"
#include "exitstats/user_ops.h"
#include "flags.h"
#include "parallel.h"
#include "tsc.h"

namespace {

using exitstats::ExitKind;

constexpr long kPage = 4096;
constexpr size_t kMinWindows = 8;

struct Flags {
  int max_vcpus = 0;
  // The catalogue's write is 0 to IA32_MCG_STATUS, which is 0 whenever no
  // machine check is in progress: harmless, but --no_wrmsr turns it off.
  bool wrmsr = true;
  std::string profile = "sjsu";
};
Flags g_flags;

// Per-CPU /dev/cpu/N/msr files, opened once.
class MsrFiles {
 public:
  std::optional<std::string> Open(const std::vector<int>& cpus, bool write) {
    for (int c : cpus) {
      auto [it, fresh] = files_.try_emplace(c, c, write);
      if (!it->second.ok()) {
        std::string why = it->second.error() + " (needs root and CONFIG_X86_MSR / modprobe msr)";
        files_.erase(it);
        return why;
      }
    }
    return std::nullopt;
  }
  const exitstats::user::MsrFile& For(int cpu) const { return files_.at(cpu); }

 private:
  std::map<int, exitstats::user::MsrFile> files_;
};

// A catalogue row's user-mode trigger, made runnable.
struct Trigger {
  ExitKind kind;
  // Prepares; returns why the trigger cannot run here.
  std::function<std::optional<std::string>(const std::vector<int>& cpus)> setup;
  // One operation by participant `i`, running on CPU cpus[i % size].
  std::function<void(int i)> op;
  int64_t max_ops_per_participant = 1 << 30;  // per batch
  bool fresh_pages = false;  // each participant needs a fresh mapping per batch
};

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  sched_getaffinity(0, sizeof set, &set);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// First-touch pages: each participant has its own fresh mapping per batch.
struct TouchArea {
  std::vector<uint8_t*> base;
  std::vector<int64_t> next;
  int64_t pages = 0;
};
TouchArea g_touch;

std::optional<std::string> Granted(uint16_t port) {
  if (const std::string& why = exitstats::user::GrantPort(port); !why.empty()) return why;
  return std::nullopt;
}

// The trigger of a row whose user-mode operation this benchmark times; none
// for the others (main() refuses a timed row that has none).
std::optional<Trigger> MakeTrigger(const exitstats::ExitType& row) {
  namespace user = exitstats::user;
  using exitstats::UserOp;
  static const std::vector<int> cpus = AllowedCpus();
  static MsrFiles rd, wr;
  static const exitstats::Vendor vendor = exitstats::NativeVendor();
  const auto operand = row.user.operand;
  const auto port = static_cast<uint16_t>(operand);
  auto none = [](auto&) { return std::optional<std::string>(); };
  switch (row.user.op) {
    case UserOp::kCpuid:
      return Trigger{row.kind, none, [](int) { user::CpuidLeaf0(); }};
    case UserOp::kPortOut:
      // ioperm() is per thread: each participant's first op asks for itself.
      return Trigger{row.kind, [port](auto&) { return Granted(port); }, [port](int) {
                       if (user::GrantPort(port).empty()) user::PortOut(port, 0);
                     }};
    case UserOp::kPortIn:
      return Trigger{row.kind, [port](auto&) { return Granted(port); }, [port](int) {
                       if (user::GrantPort(port).empty())
                         benchmark::DoNotOptimize(user::PortIn(port));
                     }};
    case UserOp::kMsrRead:
      return Trigger{row.kind, [](auto& c) { return rd.Open(c, false); }, [operand](int i) {
                       uint64_t v;
                       if (!rd.For(cpus[i % cpus.size()]).Read(operand, &v)) std::abort();
                       benchmark::DoNotOptimize(v);
                     }};
    case UserOp::kMsrWrite:
      return Trigger{row.kind,
                     [](auto& c) -> std::optional<std::string> {
                       if (!g_flags.wrmsr) return std::string("MSR writes disabled by --no_wrmsr");
                       return wr.Open(c, true);
                     },
                     [operand](int i) {
                       if (!wr.For(cpus[i % cpus.size()]).Write(operand, 0)) std::abort();
                     }};
    case UserOp::kHypercall:
      return Trigger{row.kind,
                     [](auto&) -> std::optional<std::string> {
                       if (std::string why = user::HypercallAvailable(vendor); !why.empty())
                         return why;
                       return std::nullopt;
                     },
                     [](int) { user::Hypercall(vendor); }};
    case UserOp::kFreshPage:
      return Trigger{row.kind, none,
                     [](int i) {
                       volatile uint8_t* p = g_touch.base[i] + g_touch.next[i]++ * kPage;
                       *p = 1;
                     },
                     1024, true};
    default:
      return std::nullopt;
  }
}

// Gives each participant a fresh mapping for one batch of first touches.
struct TouchBatch {
  TouchBatch(int n, int64_t pages) {
    g_touch.base.assign(n, nullptr);
    g_touch.next.assign(n, 0);
    g_touch.pages = pages;
    for (int i = 0; i < n; ++i) {
      void* p = mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) std::abort();
      madvise(p, pages * kPage, MADV_NOHUGEPAGE);
      g_touch.base[i] = static_cast<uint8_t*>(p);
    }
  }
  ~TouchBatch() {
    for (uint8_t* p : g_touch.base) munmap(p, g_touch.pages * kPage);
  }
};

int64_t BatchFor(const benchmark::State& state, const Trigger& t) {
  // At least one window (16 operations): nested under TCG one exit costs
  // ~30 us or more, so the first calibration rounds must stay short.
  return std::clamp<int64_t>(int64_t(state.max_iterations) / 8, 16, t.max_ops_per_participant);
}

void BM_GuestExit(benchmark::State& state, Trigger trig) {
  const int n = static_cast<int>(state.range(0));
  static const std::vector<int> cpus = AllowedCpus();
  if (auto why = trig.setup(cpus)) {
    state.SkipWithError(why->c_str());
    return;
  }
  // Windows of 16 operations; the others must have done 4 to 64 meanwhile.
  const bench::WindowPlan plan{BatchFor(state, trig), 1, 16, 4, 64};
  const int64_t batch = plan.OpsRun();
  bench::WindowSamples samples;
  while (state.KeepRunningBatch(batch)) {
    // A figure needs a few counted windows: under nested TCG one stalled
    // batch can satisfy --benchmark_min_time on its own, so a batch that
    // leaves fewer than kMinWindows counted is repeated (at most 8 times).
    double wall_ns = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
      std::optional<TouchBatch> touch;
      if (trig.fresh_pages) touch.emplace(n, batch);
      wall_ns += bench::RunWindowed(n, plan, samples, trig.op);
      if (samples.cycles_per_op.size() >= kMinWindows) break;
    }
    state.SetIterationTime(wall_ns * 1e-9);
  }
  // No counted window, no figure: the counters stay absent (not 0).
  if (!samples.cycles_per_op.empty()) {
    const double cycles = samples.MedianCyclesPerOp();
    state.counters["cycles_per_exit"] = cycles;
    state.counters["ns_per_exit"] = cycles * 1e9 / bench::TscHz();
  }
  state.counters["overlap"] = samples.OverlapFraction();
  state.counters["vcpus"] = n;
  if (samples.cycles_per_op.empty())
    state.SetLabel("no window had all vCPUs running at once: no figure");
}

// Exits and cycles of one SDM reason, VM-wide, from the leaves.
struct ReasonReading {
  uint64_t exits, cycles;
};
std::optional<ReasonReading> ReadReason(const exitstats::Client& c, uint32_t reason) {
  auto e = c.ReasonExits64(reason);
  auto y = c.ReasonCycles(reason);
  if (e.kind != exitstats::ReasonAnswer::Kind::kCounted ||
      y.kind != exitstats::ReasonAnswer::Kind::kCounted)
    return std::nullopt;
  return ReasonReading{e.value, y.value};
}

void BM_HostCycles(benchmark::State& state, Trigger trig) {
  const int n = static_cast<int>(state.range(0));
  static const std::vector<int> cpus = AllowedCpus();
  const exitstats::Client client(*exitstats::ProfileByName(g_flags.profile));
  auto disc = client.Discover();
  if (!disc) {
    state.SkipWithError(client.DescribeAbsence().c_str());
    return;
  }
  if (auto why = trig.setup(cpus)) {
    state.SkipWithError(why->c_str());
    return;
  }
  const uint32_t reason = exitstats::Lookup(trig.kind).sdm_reason;
  const int64_t batch = BatchFor(state, trig);
  uint64_t d_exits = 0, d_cycles = 0, guest_tsc = 0, ops = 0;
  while (state.KeepRunningBatch(batch)) {
    std::optional<TouchBatch> touch;
    if (trig.fresh_pages) touch.emplace(n, batch);
    auto before = ReadReason(client, reason);
    bench::ParallelRun r = bench::RunParallel(n, [&](int i) {
      for (int64_t k = 0; k < batch; ++k) trig.op(i);
    });
    auto after = ReadReason(client, reason);
    if (!before || !after) {
      state.SkipWithError(("reason " + std::to_string(reason) +
                           " is not counted on this host (undefined or not handled)")
                              .c_str());
      return;
    }
    d_exits += after->exits - before->exits;
    d_cycles += after->cycles - before->cycles;
    guest_tsc += r.mean_tsc;
    ops += batch;
    state.SetIterationTime(r.mean_ns * 1e-9);
  }
  // The leaves are VM-wide: other vCPUs' exits of the same reason (timer
  // HLTs, the queries' own CPUIDs) are in the deltas too; per exit it is an
  // average over all of them, per operation it is what this workload cost.
  if (d_exits == 0) {
    // No exit of that reason happened: nothing to divide (e.g. first touch of
    // pages the guest had backed before). Say so rather than report 0.
    state.counters["exits_per_op"] = 0;
    state.counters["vcpus"] = n;
    state.SetLabel("no exit of reason " + std::to_string(reason) +
                   " during the run (the operation did not exit): no figure");
    return;
  }
  const double per_exit = double(d_cycles) / double(d_exits);
  const double exits_per_op = ops ? double(d_exits) / double(ops * n) : 0;
  const double guest_per_op = ops ? double(guest_tsc) / double(ops) : 0;
  state.counters["host_cycles_per_exit"] = per_exit;
  state.counters["exits_per_op"] = exits_per_op;
  state.counters["guest_cycles_per_op"] = guest_per_op;
  // Share of the guest-seen round trip spent in KVM's handling.
  state.counters["host_share"] = guest_per_op ? per_exit * exits_per_op / guest_per_op : 0;
  state.counters["sdm_reason"] = reason;
  state.counters["vcpus"] = n;
}

int ParseFlags(int argc, char** argv) {
  return bench::ParseFlags(
      argc, argv, &g_flags.max_vcpus,
      {{"--no_wrmsr", " (skip the MSR write rows)",
        [](const char*) { g_flags.wrmsr = false; return true; }},
       {"--wrmsr", " (the default; kept for old command lines)",
        [](const char*) { g_flags.wrmsr = true; return true; }},
       {"--profile=", "sjsu|f22", [](const char* v) {
          g_flags.profile = v;
          if (exitstats::ProfileByName(g_flags.profile)) return true;
          std::fprintf(stderr, "unknown --profile %s (sjsu, f22)\n", v);
          return false;
        }}});
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (int rc = ParseFlags(argc, argv)) return rc;
  // Rows not timed from user space are listed so a reader sees the gap.
  std::string untimed;
  for (const exitstats::ExitType& e : exitstats::Catalogue()) {
    std::optional<Trigger> trig;
    if (e.user.timed) {
      trig = MakeTrigger(e);
      if (!trig) {
        std::fprintf(stderr, "catalogue row %.*s is timed but its user-mode operation has no "
                             "trigger in this benchmark\n",
                     static_cast<int>(e.name.size()), e.name.data());
        return 2;
      }
    }
    if (!trig) {
      untimed += std::string(untimed.empty() ? "" : ", ") + std::string(e.name);
      continue;
    }
    const std::string name(e.name);
    for (const char* family : {"BM_GuestExit/", "BM_HostCycles/"}) {
      auto* b = family[3] == 'G'
                    ? benchmark::RegisterBenchmark((family + name).c_str(), BM_GuestExit, *trig)
                    : benchmark::RegisterBenchmark((family + name).c_str(), BM_HostCycles, *trig);
      for (int v : bench::ThreadCounts(g_flags.max_vcpus)) b->Arg(v);
      b->ArgName("vcpus")->UseManualTime()->Unit(benchmark::kNanosecond);
    }
    benchmark::AddCustomContext("bench.how." + name, std::string(e.user.how));
  }
  benchmark::AddCustomContext("bench.ring0_only",
                              untimed + " (not timed from user space: see ring0_exit_benchmark)");
  benchmark::AddCustomContext(
      "bench.note",
      "cycles_per_exit: guest TSC cycles per operation, median over windows in which all vCPUs "
      "ran; host_cycles_per_exit: exit-statistics cycles delta / exits delta of the reason");
  benchmark::AddCustomContext("bench.tsc_hz", std::to_string(bench::TscHz()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
