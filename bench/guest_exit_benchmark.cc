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
// Types come from the exit catalogue (exitstats/catalogue.h); each has a
// user-mode trigger below or is listed as ring-0 only (hlt, fastpath wrmsr:
// see ring0_exit_benchmark).
#include <benchmark/benchmark.h>
#include <cpuid.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/wait.h>
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
#include "parallel.h"
#include "tsc.h"

namespace {

using exitstats::ExitKind;

// Ports and MSRs. The I/O ports are chosen so that a KVM guest under QEMU
// reaches the intended handler: 0x21 is the master PIC's IMR, emulated in
// KVM with the in-kernel irqchip (a read has no side effect); 0x80 is the
// POST/delay port, which no in-kernel device claims, so every write goes to
// the userspace VMM. The MSRs match harness/guest_abi.h: IA32_MCG_CAP
// (0x179) and IA32_MCG_STATUS (0x17A) are intercepted and emulated by KVM.
constexpr uint16_t kPortKernel = 0x21;
constexpr uint16_t kPortUser = 0x80;
constexpr uint32_t kMsrRead = 0x179;
constexpr uint32_t kMsrWrite = 0x17A;
constexpr long kPage = 4096;
constexpr size_t kMinWindows = 8;

struct Flags {
  int max_vcpus = 0;
  // The write is 0 to IA32_MCG_STATUS, which is 0 whenever no machine check
  // is in progress: harmless, but --no_wrmsr turns it off.
  bool wrmsr = true;
  std::string profile = "sjsu";
};
Flags g_flags;

bool IsAmd() {
  unsigned a, b, c, d;
  __cpuid(0, a, b, c, d);
  return (b == 0x68747541 /* "Auth" */) || (b == 0x6f677948 /* "Hygo" */);
}

// vmcall/vmmcall from CPL3: KVM takes the exit and answers -KVM_EPERM in RAX
// instead of running the hypercall, so it is a clean user-mode exit on KVM.
// Elsewhere it may raise #UD; a child process tries it first.
inline void Hypercall(bool amd) {
  unsigned long ax = 0xFFFF;  // no such hypercall
  if (amd)
    asm volatile("vmmcall" : "+a"(ax) : : "memory");
  else
    asm volatile("vmcall" : "+a"(ax) : : "memory");
}

std::optional<std::string> ProbeInChild(const std::function<void()>& f, const char* what) {
  pid_t pid = fork();
  if (pid == 0) {
    f();
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return std::string("fork failed");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return std::nullopt;
  return std::string(what) + " killed a probe process (" +
         (WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "nonzero exit") +
         "): not a KVM guest that intercepts it";
}

// Per-CPU /dev/cpu/N/msr descriptors, opened once.
class MsrFiles {
 public:
  std::optional<std::string> Open(const std::vector<int>& cpus, bool write) {
    for (int c : cpus) {
      std::string path = "/dev/cpu/" + std::to_string(c) + "/msr";
      int fd = open(path.c_str(), write ? O_RDWR : O_RDONLY);
      if (fd < 0)
        return path + ": " + strerror(errno) + " (needs root and CONFIG_X86_MSR / modprobe msr)";
      fds_[c] = fd;
    }
    return std::nullopt;
  }
  int For(int cpu) const { return fds_.at(cpu); }

 private:
  std::map<int, int> fds_;
};

// One user-mode trigger per catalogue row that has one.
struct Trigger {
  ExitKind kind;
  const char* how;
  // Prepares; returns why the trigger cannot run here.
  std::function<std::optional<std::string>(const std::vector<int>& cpus)> setup;
  // One operation by participant `i`, running on CPU cpus[i % size].
  std::function<void(int i)> op;
  int64_t max_ops_per_participant = 1 << 30;  // per batch
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

// ioperm() is per thread: every participant asks for its ports once.
bool PortsGranted() {
  thread_local int state = -1;
  if (state < 0) {
    state = ioperm(kPortKernel, 1, 1) == 0 && ioperm(kPortUser, 1, 1) == 0;
  }
  return state == 1;
}

// First-touch pages: each participant has its own fresh mapping per batch.
struct TouchArea {
  std::vector<uint8_t*> base;
  std::vector<int64_t> next;
  int64_t pages = 0;
};
TouchArea g_touch;

std::vector<Trigger> MakeTriggers() {
  static const std::vector<int> cpus = AllowedCpus();
  static MsrFiles rd, wr;
  static const bool amd = IsAmd();
  std::vector<Trigger> t;
  t.push_back({ExitKind::kCpuid, "cpuid leaf 0 from user mode",
               [](auto&) { return std::optional<std::string>(); },
               [](int) {
                 unsigned a, b, c, d;
                 __cpuid_count(0, 0, a, b, c, d);
                 benchmark::DoNotOptimize(a);
               }});
  auto ports = [](auto&) -> std::optional<std::string> {
    if (ioperm(kPortKernel, 1, 1) != 0 || ioperm(kPortUser, 1, 1) != 0)
      return std::string("ioperm: ") + strerror(errno) + " (needs root/CAP_SYS_RAWIO)";
    return std::nullopt;
  };
  t.push_back(
      {ExitKind::kIoKernel, "inb 0x21 (PIC IMR, in-kernel irqchip) with ioperm", ports, [](int) {
         if (PortsGranted()) benchmark::DoNotOptimize(inb(kPortKernel));
       }});
  t.push_back({ExitKind::kIoUser, "outb 0x80 (no in-kernel device: userspace VMM) with ioperm",
               ports, [](int) {
                 if (PortsGranted()) outb(0, kPortUser);
               }});
  t.push_back({ExitKind::kRdmsr, "pread /dev/cpu/N/msr of IA32_MCG_CAP (0x179)",
               [](auto& c) { return rd.Open(c, false); },
               [](int i) {
                 uint64_t v;
                 int cpu = cpus[i % cpus.size()];
                 if (pread(rd.For(cpu), &v, 8, kMsrRead) != 8) std::abort();
                 benchmark::DoNotOptimize(v);
               }});
  t.push_back({ExitKind::kWrmsr, "pwrite 0 to /dev/cpu/N/msr IA32_MCG_STATUS (0x17A)",
               [](auto& c) -> std::optional<std::string> {
                 if (!g_flags.wrmsr) return std::string("MSR writes disabled by --no_wrmsr");
                 return wr.Open(c, true);
               },
               [](int i) {
                 uint64_t v = 0;
                 int cpu = cpus[i % cpus.size()];
                 if (pwrite(wr.For(cpu), &v, 8, kMsrWrite) != 8) std::abort();
               }});
  t.push_back(
      {ExitKind::kVmcall,
       amd ? "vmmcall from user mode (KVM answers -EPERM)"
           : "vmcall from user mode (KVM answers -EPERM)",
       [](auto&) { return ProbeInChild([] { Hypercall(amd); }, "the hypercall instruction"); },
       [](int) { Hypercall(amd); }});
  t.push_back({ExitKind::kFirstTouch,
               "write to a fresh anonymous page (guest page fault; a stage-2 fault only "
               "when the guest page was never touched before)",
               [](auto&) { return std::optional<std::string>(); },
               [](int i) {
                 volatile uint8_t* p = g_touch.base[i] + g_touch.next[i]++ * kPage;
                 *p = 1;
               },
               1024});
  return t;
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
      if (trig.kind == ExitKind::kFirstTouch) touch.emplace(n, batch);
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
    if (trig.kind == ExitKind::kFirstTouch) touch.emplace(n, batch);
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
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--max_vcpus=", 0) == 0) {
      g_flags.max_vcpus = std::atoi(a.c_str() + 12);
    } else if (a == "--wrmsr") {  // the default; kept for old command lines
      g_flags.wrmsr = true;
    } else if (a == "--no_wrmsr") {
      g_flags.wrmsr = false;
    } else if (a.rfind("--profile=", 0) == 0) {
      g_flags.profile = a.substr(10);
      if (!exitstats::ProfileByName(g_flags.profile)) {
        std::fprintf(stderr, "unknown --profile %s (sjsu, f22)\n", g_flags.profile.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "unknown flag %s\nflags: Google Benchmark's, --max_vcpus=N (default: all "
                   "CPUs), --no_wrmsr (skip the MSR write rows), --profile=sjsu|f22\n",
                   argv[i]);
      return 2;
    }
  }
  if (g_flags.max_vcpus <= 0) g_flags.max_vcpus = bench::OnlineCpus();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (int rc = ParseFlags(argc, argv)) return rc;
  // Ring-0-only rows of the catalogue are listed so a reader sees the gap.
  std::string ring0_only;
  const std::vector<Trigger> triggers = MakeTriggers();
  for (const exitstats::ExitType& e : exitstats::Catalogue()) {
    auto it = std::find_if(triggers.begin(), triggers.end(),
                           [&](const Trigger& t) { return t.kind == e.kind; });
    if (it == triggers.end()) {
      ring0_only += std::string(ring0_only.empty() ? "" : ", ") + std::string(e.name);
      continue;
    }
    const std::string name(e.name);
    for (const char* family : {"BM_GuestExit/", "BM_HostCycles/"}) {
      auto* b = family[3] == 'G'
                    ? benchmark::RegisterBenchmark((family + name).c_str(), BM_GuestExit, *it)
                    : benchmark::RegisterBenchmark((family + name).c_str(), BM_HostCycles, *it);
      for (int v : bench::ThreadCounts(g_flags.max_vcpus)) b->Arg(v);
      b->ArgName("vcpus")->UseManualTime()->Unit(benchmark::kNanosecond);
    }
    benchmark::AddCustomContext("bench.how." + name, it->how);
  }
  benchmark::AddCustomContext("bench.ring0_only",
                              ring0_only + " (no user-mode trigger: see ring0_exit_benchmark)");
  benchmark::AddCustomContext(
      "bench.note",
      "cycles_per_exit: guest TSC cycles per operation, median over windows in which all vCPUs "
      "ran; host_cycles_per_exit: exit-statistics cycles delta / exits delta of the reason");
  benchmark::AddCustomContext("bench.tsc_hz", std::to_string(bench::TscHz()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
