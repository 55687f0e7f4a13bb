// RunPayload: one VM, N vCPUs on the VcpuRunner, the snapshot protocol of guest/main.c.
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
#include <algorithm>
#include <cinttypes>
#include <numeric>
#include <x86intrin.h>

#include "harness/format.h"
#include "harness/host_cpu.h"
#include "harness/long_mode.h"
#include "harness/payload.h"
#include "harness/rendezvous.h"
#include "harness/vcpu_runner.h"

namespace harness {

namespace {

using StatMap = std::map<std::string, uint64_t>;
using Tracked = std::array<uint64_t, HARNESS_NR_TRACKED>;

uint64_t Sum(const uint64_t* v) { return std::accumulate(v, v + HARNESS_NR_TRACKED, uint64_t{0}); }

Tracked ToArray(const uint64_t* v) {
  Tracked t;
  std::copy(v, v + HARNESS_NR_TRACKED, t.begin());
  return t;
}

// What the host saw at one accepted snapshot.
struct Park {
  bool taken = false;
  std::vector<StatMap> stats;      // per vCPU
  std::vector<Tracked> deliberate; // per vCPU
  harness_leaves vm{};
};

// The host side of the snapshot protocol and the payload exits, as the
// runner's hooks.
struct RunState {
  const PayloadSpec& spec;
  std::vector<StatsReader>& stats;
  std::vector<harness_ctx*>& ctx;
  VmmSees sees;
  int max_retries;
  unsigned vmm_work_ratio;
  Rendezvous rv;
  std::vector<uint64_t> host_seen;
  std::vector<uint64_t> vmm_cycles;  // TSC cycles this VMM spent on them
  std::vector<Tracked> parked_deliberate;
  uint64_t prev0_exits = 0;
  Tracked prev0_deliberate{};
  int retries = 0;
  Park park[2];

  RunState(const PayloadSpec& s, std::vector<StatsReader>& st, std::vector<harness_ctx*>& c,
           VmmSees sees_, const RunOptions& opt)
      : spec(s), stats(st), ctx(c), sees(sees_), max_retries(opt.max_snapshot_retries),
        vmm_work_ratio(opt.vmm_work_ratio), rv(c.size()), host_seen(c.size()),
        vmm_cycles(c.size()), parked_deliberate(c.size()) {}

  Next Ucall(uint32_t i, harness_ucall& u);
  Next Snap(harness_ucall& u);
  Next PayloadExit(const ExitContext& cx, Exit& e);
  bool CountPayloadExit(Exit& e);
};

// A ucall of the protocol; kStop when this vCPU is finished (DONE, or the
// run aborted while it waited).
Next RunState::Ucall(uint32_t i, harness_ucall& u) {
  switch (u.cmd) {
    case HARNESS_UC_SYNC:
      parked_deliberate[i] = ToArray(u.deliberate);
      if (i == 0) {
        prev0_exits = stats[0].Get("exits");
        prev0_deliberate = ToArray(u.deliberate);
      }
      if (!rv.Wait()) return Next::kStop;  // everybody parked
      // Others stay parked until vCPU 0's snapshot is accepted.
      return i == 0 || rv.Wait() ? Next::kResume : Next::kStop;
    case HARNESS_UC_SNAP:
      if (i != 0) throw std::runtime_error(Format("vCPU %u sent SNAP (vCPU 0 only)", i));
      return Snap(u);
    case HARNESS_UC_DONE:
      return Next::kStop;
  }
  return Next::kUnexpected;
}

Next RunState::Snap(harness_ucall& u) {
  uint64_t phase = u.args[0];
  if (phase > 1) throw std::runtime_error(Format("SNAP with bad phase %" PRIu64, phase));
  std::vector<StatMap> now;
  for (StatsReader& r : stats) now.push_back(r.ReadAll());
  uint64_t exits = now[0].at("exits");
  uint64_t stray = (exits - prev0_exits) - (Sum(u.deliberate) - Sum(prev0_deliberate.data()));
  prev0_exits = exits;
  prev0_deliberate = ToArray(u.deliberate);
  if (ctx[0]->leaves && stray != 0) {
    if (++retries > max_retries)
      throw std::runtime_error(Format(
          "vCPU 0: %d VM snapshots in a row had stray exits in their window (last: %" PRId64
          " more `exits` than deliberate exits); the host is too noisy for exact checks",
          retries, static_cast<int64_t>(stray)));
    u.reply = HARNESS_REPLY_RETRY;
    return Next::kResume;
  }
  Park& p = park[phase];
  p.taken = true;
  p.stats = std::move(now);
  p.deliberate = parked_deliberate;
  p.deliberate[0] = ToArray(u.deliberate);
  p.vm = ctx[0]->vm;
  u.reply = HARNESS_REPLY_OK;
  return rv.Wait() ? Next::kResume : Next::kStop;  // release the others
}

// True if `e` is the payload exit the VMM counts, after completing it.
bool RunState::CountPayloadExit(Exit& e) {
  switch (sees) {
    case VmmSees::kNothing:
      return false;
    case VmmSees::kUserPortIo: {
      auto* io = std::get_if<IoOut>(&e);
      return io && io->port == HARNESS_USER_PORT && io->size == 1 && io->count == 1;
    }
    case VmmSees::kUserPortIoIn: {
      auto* io = std::get_if<IoIn>(&e);
      if (!io || io->port != HARNESS_USER_PORT || io->size != 1 || io->count != 1) return false;
      io->data[0] = 0x5A;  // what the guest's IN reads (it checks)
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

// A payload exit costs the VMM work in proportion to its KVM_RUN, as a
// device model's would; the cycles from KVM_RUN's return until the work is
// done are the VMM's, not exit handling in KVM.
Next RunState::PayloadExit(const ExitContext& cx, Exit& e) {
  if (!CountPayloadExit(e)) return Next::kUnexpected;
  // A KVM_RUN that blocked (a kick, a preemption) must not make the work
  // unbounded.
  constexpr uint64_t kMaxWorkCycles = uint64_t{1} << 26;
  host_seen[cx.index]++;
  const uint64_t work =
      std::min<uint64_t>(vmm_work_ratio * (cx.exit_tsc - cx.entry_tsc), kMaxWorkCycles);
  while (__rdtsc() - cx.exit_tsc < work) {
  }
  vmm_cycles[cx.index] += __rdtsc() - cx.exit_tsc;
  return Next::kResume;
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

// The run's VM: memory, irqchip, MSR routing. *sees: what the VMM will count.
Vm CreatePayloadVm(const Kvm& kvm, const PayloadSpec& spec, uint32_t n, uint64_t iterations,
                   const RunOptions& opt, VmmSees* sees) {
  Vm vm = kvm.CreateVm();
  vm.SetTssAddr();
  vm.AddMemory(0, 0, HARNESS_MAIN_SIZE);
  if (spec.payload == HARNESS_P_FIRST_TOUCH) {
    const uint64_t touch_bytes = uint64_t{n} * iterations * 4096;
    if (touch_bytes == 0 || touch_bytes > HARNESS_TOUCH_MAX - HARNESS_TOUCH_BASE)
      throw std::invalid_argument(Format("first_touch: %u x %" PRIu64 " pages do not fit", n,
                                         iterations));
    vm.AddMemory(1, HARNESS_TOUCH_BASE, touch_bytes, /*no_huge=*/true);
  }
  if (spec.irqchip) vm.CreateIrqchip();
  *sees = spec.vmm_sees;
  if (spec.msr_filter) {
    bool can = vm.CheckExtension(KVM_CAP_X86_USER_SPACE_MSR) &&
               vm.CheckExtension(KVM_CAP_X86_MSR_FILTER);
    if (opt.msr_to_userspace && can)
      SetMsrFilter(vm, spec.payload == HARNESS_P_RDMSR ? HARNESS_MSR_READ : HARNESS_MSR_WRITE);
    else
      *sees = VmmSees::kNothing;
  }
  return vm;
}

// vCPU i's context in guest memory, holding the run's inputs.
harness_ctx* WriteContext(Vm& vm, const PayloadSpec& spec, uint32_t i, uint32_t n,
                          uint64_t iterations, const RunOptions& opt, bool amd) {
  static_assert(sizeof(harness_ctx) <= HARNESS_VCPU_CTX_SIZE);
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
  return c;
}

// Runs the vCPUs to DONE. On failure the message says where every vCPU
// stood (all are out of KVM_RUN by then).
void RunVcpus(Vm& vm, std::vector<Vcpu>& vcpus, RunState& st, Clock::time_point deadline,
              std::chrono::seconds timeout) {
  const PayloadSpec& spec = st.spec;
  const uint32_t n = vcpus.size();
  auto timeout_message = [&] {
    return Format("timeout: payload %.*s on %u vCPUs did not finish in %llds",
                  int(spec.name.size()), spec.name.data(), n,
                  static_cast<long long>(timeout.count()));
  };
  VcpuHooks hooks;
  hooks.ucall = [&](const ExitContext& cx, harness_ucall& u) { return st.Ucall(cx.index, u); };
  hooks.exit = [&](const ExitContext& cx, Exit& e) { return st.PayloadExit(cx, e); };
  hooks.timeout = [&](uint32_t) { return timeout_message(); };
  hooks.running = "payload " + std::string(spec.name);
  VcpuRunner runner(vm, vcpus);
  runner.OnAbort([&] { st.rv.Abort(); });
  try {
    runner.RunThreads([&](uint32_t i) { runner.Run(i, hooks, deadline); }, deadline,
                      timeout_message);
  } catch (const std::exception& e) {
    std::string where;
    for (Vcpu& v : vcpus)
      where += Format("\n  vCPU %u: last exit %s; %s", v.id(),
                      ExitReasonName(v.run()->exit_reason).c_str(), v.DescribeRegs().c_str());
    throw std::runtime_error(e.what() + where);
  }
  for (int p = 0; p < 2; p++)
    if (!st.park[p].taken)
      throw std::runtime_error(Format("payload %.*s finished without VM snapshot %d",
                                      int(spec.name.size()), spec.name.data(), p));
}

RunResult Collect(const RunState& st, uint64_t iterations) {
  const std::vector<harness_ctx*>& ctx = st.ctx;
  RunResult r;
  r.spec = &st.spec;
  r.nr_vcpus = ctx.size();
  r.iterations = iterations;
  r.vmm_sees = st.sees;
  r.leaves = ctx[0]->leaves;
  r.discovery = {ctx[0]->discovery[0], ctx[0]->discovery[1], ctx[0]->discovery[2],
                 ctx[0]->discovery[3]};
  for (uint32_t i = 0; i < ctx.size(); i++) {
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
  return r;
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
  const auto t_start = Clock::now();

  VmmSees sees;
  Vm vm = CreatePayloadVm(kvm, spec, n, iterations, opt, &sees);
  const harness_image_header& header = LoadImage(vm, GuestImage());
  WriteSystemTables(vm, header);
  const auto cpuid = kvm.SupportedCpuid();
  const bool amd = HypercallIsVmmcall();

  std::vector<Vcpu> vcpus;
  std::vector<StatsReader> stats;
  std::vector<harness_ctx*> ctx;
  for (uint32_t i = 0; i < n; i++) {
    Vcpu& v = vcpus.emplace_back(vm.CreateVcpu(i));
    v.SetCpuid(cpuid);
    if (spec.irqchip) {
      // With the in-kernel LAPIC, vCPUs other than 0 start as APs waiting
      // for INIT-SIPI; all of ours start in long mode at once.
      kvm_mp_state mp{KVM_MP_STATE_RUNNABLE};
      HARNESS_IOCTL(v.fd(), KVM_SET_MP_STATE, &mp);
    }
    ctx.push_back(WriteContext(vm, spec, i, n, iterations, opt, amd));
    const uint64_t area = ctx.back()->self;
    EnterLongMode(v, {header.entry, area + HARNESS_VCPU_AREA_SIZE, area, area});
    stats.push_back(v.Stats());
  }

  RunState st(spec, stats, ctx, sees, opt);
  RunVcpus(vm, vcpus, st, Clock::now() + opt.timeout, opt.timeout);
  RunResult r = Collect(st, iterations);
  r.wall_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return r;
}

RunResult RunPayload(exitstats::ExitKind kind, uint32_t vcpus, uint64_t iterations,
                     const RunOptions& options) {
  Kvm kvm;
  return RunPayload(kvm, PayloadFor(kind), vcpus, iterations, options);
}

}  // namespace harness
