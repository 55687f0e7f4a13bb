// RunPayload: one VM, N vCPU threads, the snapshot protocol of guest/main.c.
//
// Host side of the protocol (all vCPU threads meet at a Rendezvous):
//   SYNC(phase): every thread parks (out of KVM_RUN); threads 1..N-1 then
//     stay parked until vCPU 0's snapshot is accepted.
//   SNAP(phase), vCPU 0 only: read every vCPU's binary stats. The window since
//     vCPU 0's previous park is "clean" when its `exits` stat rose by exactly
//     its deliberate exits (nothing stray, e.g. a host tick, landed between
//     its leaf reads and this exit); otherwise reply RETRY and it snapshots
//     again. An accepted snapshot releases everybody.
// The leaf values of an accepted snapshot and the stats read at its SNAP exit
// differ only by vCPU 0's deliberate exits after each leaf read, which are
// the same at both ends, so deltas compare exactly (harness/README.md).
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cinttypes>
#include <condition_variable>
#include <cpuid.h>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>
#include <unistd.h>
#include <x86intrin.h>

#include "harness/long_mode.h"
#include "harness/payload.h"
#include "harness/rendezvous.h"

namespace harness {

namespace {

using StatMap = std::map<std::string, uint64_t>;
using Tracked = std::array<uint64_t, HARNESS_NR_TRACKED>;

constexpr int kKickSignal = SIGUSR1;
constexpr uint64_t kTssAddr = 0xfffbd000;  // below 4 GiB, outside every memslot

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kKickSignal, &sa, nullptr);
  });
}

bool VendorIsAmd() {
  // The hypercall instruction must match the KVM vendor module (else KVM
  // patches or emulates it after a #UD, a different exit).
  // HARNESS_HYPERCALL=vmcall|vmmcall overrides (hosts with odd KVM modules).
  if (const char* h = getenv("HARNESS_HYPERCALL")) return std::string_view(h) == "vmmcall";
  // A kernel with KVM built in has both /sys/module/kvm_amd and kvm_intel,
  // so ask the CPU KVM runs on: svm or vmx in its flags.
  if (FILE* f = fopen("/proc/cpuinfo", "r")) {
    char line[4096];
    int vendor = -1;
    while (vendor < 0 && fgets(line, sizeof line, f)) {
      if (strncmp(line, "flags", 5) != 0) continue;
      std::string_view l(line);
      if (l.find(" svm") != l.npos) vendor = 1;
      else if (l.find(" vmx") != l.npos) vendor = 0;
      else break;
    }
    fclose(f);
    if (vendor >= 0) return vendor == 1;
  }
  unsigned a, b, c, d;
  __cpuid(0, a, b, c, d);
  return b == 0x68747541 /* Auth */ || b == 0x6f677948 /* Hygo */;
}

uint64_t Sum(const uint64_t* v) { return std::accumulate(v, v + HARNESS_NR_TRACKED, uint64_t{0}); }

Tracked ToArray(const uint64_t* v) {
  Tracked t;
  std::copy(v, v + HARNESS_NR_TRACKED, t.begin());
  return t;
}

const char* ExceptionName(uint64_t v) {
  static const char* const kNames[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                       "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
                                       "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
  return v < std::size(kNames) ? kNames[v] : "?";
}

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// What the host saw at one accepted snapshot.
struct Park {
  bool taken = false;
  std::vector<StatMap> stats;      // per vCPU
  std::vector<Tracked> deliberate; // per vCPU
  harness_leaves vm{};
};

struct RunState {
  const PayloadSpec& spec;
  Vm& vm;
  std::vector<Vcpu>& vcpus;
  std::vector<StatsReader>& stats;
  std::vector<harness_ctx*> ctx;
  VmmSees sees;
  int max_retries;
  unsigned vmm_work_ratio;
  Rendezvous start, rv;
  std::vector<pthread_t> threads;
  std::vector<uint64_t> host_seen;
  std::vector<uint64_t> vmm_cycles;  // TSC cycles this VMM spent on them
  std::vector<Tracked> parked_deliberate;
  uint64_t prev0_exits = 0;
  Tracked prev0_deliberate{};
  int retries = 0;
  Park park[2];

  std::mutex mu;
  std::condition_variable cv;
  uint32_t finished = 0;
  std::string error;  // first failure

  RunState(const PayloadSpec& s, Vm& v, std::vector<Vcpu>& c, std::vector<StatsReader>& st,
           VmmSees sees_, int retries_, unsigned work_)
      : spec(s), vm(v), vcpus(c), stats(st), sees(sees_), max_retries(retries_),
        vmm_work_ratio(work_),
        start(c.size() + 1), rv(c.size()), threads(c.size()), host_seen(c.size()),
        vmm_cycles(c.size()), parked_deliberate(c.size()) {}

  // Stops everybody: wakes rendezvous waiters, kicks vCPUs out of KVM_RUN.
  void Abort(const std::string& why) {
    {
      std::lock_guard l(mu);
      if (error.empty()) error = why;
    }
    start.Abort();
    rv.Abort();
    for (size_t i = 0; i < vcpus.size(); i++) {
      __atomic_store_n(&vcpus[i].run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
      if (threads[i]) pthread_kill(threads[i], kKickSignal);
    }
  }
};

// Handles one ucall; false when this vCPU is finished (DONE or aborted).
bool HandleUcall(RunState& st, uint32_t i) {
  Vcpu& v = st.vcpus[i];
  uint64_t gva = v.GetRegs().rdi;
  auto* u = reinterpret_cast<harness_ucall*>(st.vm.Host(gva, sizeof(harness_ucall)));
  switch (u->cmd) {
    case HARNESS_UC_SYNC:
      st.parked_deliberate[i] = ToArray(u->deliberate);
      if (i == 0) {
        st.prev0_exits = st.stats[0].Get("exits");
        st.prev0_deliberate = ToArray(u->deliberate);
      }
      if (!st.rv.Wait()) return false;  // everybody parked
      return i == 0 ? true : st.rv.Wait();  // others: until vCPU 0's snapshot
    case HARNESS_UC_SNAP: {
      if (i != 0) throw std::runtime_error(Format("vCPU %u sent SNAP (vCPU 0 only)", i));
      uint64_t phase = u->args[0];
      if (phase > 1) throw std::runtime_error(Format("SNAP with bad phase %" PRIu64, phase));
      std::vector<StatMap> stats;
      for (StatsReader& r : st.stats) stats.push_back(r.ReadAll());
      uint64_t exits = stats[0].at("exits");
      uint64_t stray = (exits - st.prev0_exits) - (Sum(u->deliberate) - Sum(st.prev0_deliberate.data()));
      st.prev0_exits = exits;
      st.prev0_deliberate = ToArray(u->deliberate);
      if (st.ctx[0]->leaves && stray != 0) {
        if (++st.retries > st.max_retries)
          throw std::runtime_error(Format(
              "vCPU 0: %d VM snapshots in a row had stray exits in their window (last: %" PRId64
              " more `exits` than deliberate exits); the host is too noisy for exact checks",
              st.retries, static_cast<int64_t>(stray)));
        u->reply = HARNESS_REPLY_RETRY;
        return true;
      }
      Park& p = st.park[phase];
      p.taken = true;
      p.stats = std::move(stats);
      p.deliberate = st.parked_deliberate;
      p.deliberate[0] = ToArray(u->deliberate);
      p.vm = st.ctx[0]->vm;
      u->reply = HARNESS_REPLY_OK;
      return st.rv.Wait();  // release the others
    }
    case HARNESS_UC_DONE:
      return false;
    case HARNESS_UC_ASSERT:
      throw std::runtime_error(Format(
          "vCPU %u: guest assertion failed: %.*s at %.*s:%u (values 0x%" PRIx64 ", 0x%" PRIx64 ")",
          i, int(sizeof u->expr), u->expr, int(sizeof u->file), u->file, u->line, u->args[0],
          u->args[1]));
    case HARNESS_UC_EXCEPTION:
      throw std::runtime_error(Format(
          "vCPU %u: guest exception vector %" PRIu64 " (%s) at RIP=0x%" PRIx64
          " error code=0x%" PRIx64 " CR2=0x%" PRIx64,
          i, u->args[0], ExceptionName(u->args[0]), u->args[1], u->args[2], u->args[3]));
    default:
      throw std::runtime_error(Format("vCPU %u: unknown ucall %" PRIu64, i, u->cmd));
  }
}

// True if `e` is the payload exit the VMM counts, after completing it.
bool CountPayloadExit(RunState& st, const Exit& e) {
  switch (st.sees) {
    case VmmSees::kNothing:
      return false;
    case VmmSees::kUserPortIo: {
      auto* io = std::get_if<IoExit>(&e);
      return io && io->port == HARNESS_USER_PORT && io->out && io->size == 1 && io->count == 1;
    }
    case VmmSees::kUserPortIoIn: {
      auto* io = std::get_if<IoExit>(&e);
      if (!io || io->port != HARNESS_USER_PORT || io->out || io->size != 1 || io->count != 1)
        return false;
      *io->data = 0x5A;  // what the guest's IN reads (it checks)
      return true;
    }
    case VmmSees::kHlt:
      return std::holds_alternative<HltExit>(e);
    case VmmSees::kRdmsr: {
      auto* m = std::get_if<MsrExit>(&e);
      if (!m || m->write || m->index != HARNESS_MSR_READ) return false;
      *m->data = 0;
      *m->error = 0;
      return true;
    }
    case VmmSees::kWrmsr: {
      auto* m = std::get_if<MsrExit>(&e);
      if (!m || !m->write || m->index != HARNESS_MSR_WRITE) return false;
      *m->error = 0;
      return true;
    }
  }
  return false;
}

void VcpuLoop(RunState& st, uint32_t i) {
  std::string name = "vcpu" + std::to_string(i);
  pthread_setname_np(pthread_self(), name.c_str());
  if (!st.start.Wait()) return;
  Vcpu& v = st.vcpus[i];
  // TSC when KVM_RUN returned with a payload exit, until the next KVM_RUN:
  // the time the exit spent in this VMM, which is not exit handling in KVM.
  uint64_t payload_exit_tsc = 0;
  // A KVM_RUN that blocked (a kick, a preemption) must not make the VMM's
  // work on the next exit unbounded.
  constexpr uint64_t kMaxWorkCycles = uint64_t{1} << 26;
  for (;;) {
    if (payload_exit_tsc) {
      st.vmm_cycles[i] += __rdtsc() - payload_exit_tsc;
      payload_exit_tsc = 0;
    }
    const uint64_t called_tsc = __rdtsc();
    Exit e = v.Run();
    const uint64_t returned_tsc = __rdtsc();
    if (auto* io = std::get_if<IoExit>(&e); io && io->port == HARNESS_UCALL_PORT) {
      if (!HandleUcall(st, i)) return;
      continue;
    }
    if (CountPayloadExit(st, e)) {
      st.host_seen[i]++;
      payload_exit_tsc = returned_tsc;
      const uint64_t work =
          std::min<uint64_t>(st.vmm_work_ratio * (returned_tsc - called_tsc), kMaxWorkCycles);
      while (__rdtsc() - returned_tsc < work) {
      }
      continue;
    }
    if (std::holds_alternative<InterruptedExit>(e)) {
      if (st.rv.aborted()) return;
      continue;
    }
    throw std::runtime_error(Format("vCPU %u: unexpected exit %s running payload %.*s; %s", i,
                                    Describe(e).c_str(), int(st.spec.name.size()),
                                    st.spec.name.data(), v.DescribeRegs().c_str()));
  }
}

void SetMsrFilter(Vm& vm, uint32_t msr) {
  vm.EnableCap(KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER);
  static uint8_t deny = 0;  // bit clear = denied = exit to user space
  kvm_msr_filter f{};
  f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
  f.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
  f.ranges[0].nmsrs = 1;
  f.ranges[0].base = msr;
  f.ranges[0].bitmap = &deny;
  HARNESS_IOCTL(vm.fd(), KVM_X86_SET_MSR_FILTER, &f);
}

StatMap Delta(const StatMap& after, const StatMap& before) {
  StatMap d;
  for (const auto& [k, v] : after) d[k] = v - before.at(k);
  return d;
}

}  // namespace

LeafDeltas Subtract(const harness_leaves& a, const harness_leaves& b) {
  LeafDeltas d;
  d.total64 = a.total64 - b.total64;
  d.total32 = a.total32 - b.total32;
  d.total_cycles = a.total_cycles - b.total_cycles;
  for (int t = 0; t < HARNESS_NR_TRACKED; t++) {
    d.reason64[t] = a.reason64[t] - b.reason64[t];
    d.reason32[t] = a.reason32[t] - b.reason32[t];
    d.reason_edx[t] = a.reason_edx[t];
    d.reason_cycles[t] = a.reason_cycles[t] - b.reason_cycles[t];
  }
  return d;
}

RunResult RunPayload(const Kvm& kvm, const PayloadSpec& spec, uint32_t n, uint64_t iterations,
                     const RunOptions& opt) {
  if (n < 1 || n > HARNESS_MAX_VCPUS)
    throw std::invalid_argument(Format("vCPU count %u outside 1..%d", n, HARNESS_MAX_VCPUS));
  if (auto why = Unsupported(spec, kvm)) throw std::runtime_error(*why);
  auto t_start = std::chrono::steady_clock::now();
  InstallKickHandler();

  Vm vm = kvm.CreateVm();
  if (vm.CheckExtension(KVM_CAP_SET_TSS_ADDR))
    RawIoctl(vm.fd(), KVM_SET_TSS_ADDR, kTssAddr);  // VMX real-mode needs; harmless
  vm.AddMemory(0, 0, HARNESS_MAIN_SIZE);
  uint64_t touch_bytes = 0;
  if (spec.payload == HARNESS_P_FIRST_TOUCH) {
    touch_bytes = uint64_t{n} * iterations * 4096;
    if (touch_bytes == 0 || touch_bytes > HARNESS_TOUCH_MAX - HARNESS_TOUCH_BASE)
      throw std::invalid_argument(Format("first_touch: %u x %" PRIu64 " pages do not fit", n,
                                         iterations));
    vm.AddMemory(1, HARNESS_TOUCH_BASE, touch_bytes, /*no_huge=*/true);
  }
  if (spec.irqchip) vm.CreateIrqchip();
  VmmSees sees = spec.vmm_sees;
  if (spec.msr_filter) {
    bool can = vm.CheckExtension(KVM_CAP_X86_USER_SPACE_MSR) &&
               vm.CheckExtension(KVM_CAP_X86_MSR_FILTER);
    if (opt.msr_to_userspace && can)
      SetMsrFilter(vm, spec.payload == HARNESS_P_RDMSR ? HARNESS_MSR_READ : HARNESS_MSR_WRITE);
    else
      sees = VmmSees::kNothing;
  }

  const harness_image_header& header = LoadImage(vm, GuestImage());
  WriteSystemTables(vm, header);
  auto cpuid = kvm.SupportedCpuid();
  bool amd = VendorIsAmd();

  std::vector<Vcpu> vcpus;
  std::vector<StatsReader> stats;
  std::vector<harness_ctx*> ctx;
  for (uint32_t i = 0; i < n; i++) {
    vcpus.push_back(vm.CreateVcpu(i));
    Vcpu& v = vcpus.back();
    v.SetCpuid(cpuid);
    if (spec.irqchip) {
      // With the in-kernel LAPIC, vCPUs other than 0 start as APs waiting
      // for INIT-SIPI; all of ours start in long mode at once.
      kvm_mp_state mp{KVM_MP_STATE_RUNNABLE};
      HARNESS_IOCTL(v.fd(), KVM_SET_MP_STATE, &mp);
    }
    uint64_t area = HARNESS_VCPU_AREA + i * HARNESS_VCPU_AREA_SIZE;
    auto* c = reinterpret_cast<harness_ctx*>(vm.Host(area, sizeof(harness_ctx)));
    *c = {};
    c->self = area;
    c->payload = spec.payload;
    c->vcpu_id = i;
    c->nr_vcpus = n;
    c->amd = amd;
    c->iterations = iterations;
    c->leaves_mode = opt.course_leaves   ? HARNESS_LEAVES_COURSE
                     : !opt.read_leaves ? HARNESS_LEAVES_AUTO
                     : *opt.read_leaves ? HARNESS_LEAVES_REQUIRED
                                        : HARNESS_LEAVES_NEVER;
    c->leaf_total_exits = opt.profile.total_exits;
    c->leaf_total_cycles = opt.profile.total_cycles;
    c->leaf_reason_exits = opt.profile.reason_exits;
    c->leaf_reason_cycles = opt.profile.reason_cycles;
    c->touch_base = HARNESS_TOUCH_BASE + uint64_t{i} * iterations * 4096;
    ctx.push_back(c);
    EnterLongMode(v, {header.entry, area + HARNESS_VCPU_AREA_SIZE, area, area});
    stats.push_back(v.Stats());
  }
  static_assert(sizeof(harness_ctx) <= HARNESS_VCPU_CTX_SIZE);

  RunState st(spec, vm, vcpus, stats, sees, opt.max_snapshot_retries, opt.vmm_work_ratio);
  st.ctx = ctx;
  std::vector<std::thread> threads;
  {
    // The start barrier includes this thread, so no vCPU runs (and none can
    // Abort() and read threads[]) before every pthread_t is recorded.
    for (uint32_t i = 0; i < n; i++) {
      threads.emplace_back([&st, i] {
        try {
          VcpuLoop(st, i);
        } catch (const std::exception& e) {
          st.Abort(e.what());
        }
        std::lock_guard l(st.mu);
        st.finished++;
        st.cv.notify_all();
      });
      st.threads[i] = threads.back().native_handle();
    }
    st.start.Wait();
  }
  {
    std::unique_lock l(st.mu);
    bool done = st.cv.wait_for(l, opt.timeout, [&] { return st.finished == n; });
    if (!done) {
      l.unlock();
      st.Abort(Format("timeout: payload %.*s on %u vCPUs did not finish in %llds",
                      int(spec.name.size()), spec.name.data(), n,
                      static_cast<long long>(opt.timeout.count())));
    }
  }
  for (auto& t : threads) t.join();
  if (!st.error.empty()) {
    // Say where every vCPU stood (all are out of KVM_RUN now).
    std::string where;
    for (Vcpu& v : vcpus)
      where += Format("\n  vCPU %u: last exit %s; %s", v.id(),
                      ExitReasonName(v.run()->exit_reason).c_str(), v.DescribeRegs().c_str());
    throw std::runtime_error(st.error + where);
  }
  for (int p = 0; p < 2; p++)
    if (!st.park[p].taken)
      throw std::runtime_error(Format("payload %.*s finished without VM snapshot %d",
                                      int(spec.name.size()), spec.name.data(), p));

  RunResult r;
  r.spec = &spec;
  r.nr_vcpus = n;
  r.iterations = iterations;
  r.vmm_sees = sees;
  r.leaves = ctx[0]->leaves;
  r.discovery = {ctx[0]->discovery[0], ctx[0]->discovery[1], ctx[0]->discovery[2],
                 ctx[0]->discovery[3]};
  for (uint32_t i = 0; i < n; i++) {
    VcpuResult v;
    v.vcpu = i;
    v.guest_ops = ctx[i]->ops;
    v.host_seen = st.host_seen[i];
    v.vmm_cycles = st.vmm_cycles[i];
    v.tsc_cycles = ctx[i]->tsc_cycles;
    v.stats = Delta(st.park[1].stats[i], st.park[0].stats[i]);
    for (int t = 0; t < HARNESS_NR_TRACKED; t++)
      v.deliberate[t] = st.park[1].deliberate[i][t] - st.park[0].deliberate[i][t];
    if (ctx[i]->leaves) v.leaves = Subtract(ctx[i]->after, ctx[i]->before);
    r.vcpus.push_back(std::move(v));
  }
  if (r.leaves) {
    VmCheck c;
    c.discovery = {ctx[0]->discovery[1], ctx[0]->discovery[2], ctx[0]->discovery[3]};
    c.patch = Subtract(st.park[1].vm, st.park[0].vm);
    for (const VcpuResult& v : r.vcpus) {
      c.stats_exits += v.stats.at("exits");
      for (int t = 0; t < HARNESS_NR_TRACKED; t++) c.deliberate[t] += v.deliberate[t];
    }
    c.retries = st.retries;
    r.vm = c;
  }
  r.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return r;
}

RunResult RunPayload(exitstats::ExitKind kind, uint32_t vcpus, uint64_t iterations,
                     const RunOptions& options) {
  Kvm kvm;
  return RunPayload(kvm, PayloadFor(kind), vcpus, iterations, options);
}

}  // namespace harness
