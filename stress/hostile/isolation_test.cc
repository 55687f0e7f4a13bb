// Isolation stages.
//  1. Per-VM scope (the default): a busy VM and an idle VM at once; the idle
//     VM's totals move only by its own exits, which KVM's own `exits`
//     statistic of its vCPU bounds from above.
//  2. Host-wide scope (kvm.exit_stats_host_wide=1): VMs are created, run and
//     destroyed in a loop while a stress VM runs; a probe VM's host-wide
//     total never goes backwards and rises at least by every exit that KVM's
//     statistics saw in between (the stress VM's and each churned VM's,
//     destroyed or not); no kvm slab objects, debugfs VM directories or
//     kmemleak suspects are left behind.
// Knobs: HOSTILE_ISO_BUSY_CPUIDS (per busy vCPU, default 20000),
//        HOSTILE_CHURN_VMS (default 200), HOSTILE_CHURN_SLACK (slab objects
//        per kvm cache that may legitimately stay, default 16; the bound is
//        max(slack, VMs/2): a leak of one object per VM exceeds it).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "stage.h"

namespace hostile {
namespace {

using exitstats::HiLo;
using exitstats::Regs;

constexpr auto kLimit = std::chrono::seconds(1800);

// Stops and joins a background VM thread on every way out of a test (a
// failed ASSERT returns early; a joinable std::thread would terminate).
struct JoinGuard {
  std::thread& t;
  BlobVm& vm;
  ~JoinGuard() {
    vm.RequestStop();
    if (t.joinable()) t.join();
  }
};

uint64_t Total64(BlobVm& vm, Clock::time_point deadline) {
  Regs r = vm.Cpuid(0, exitstats::leaf::kTotalExits64, 0, deadline);
  return HiLo(r.ebx, r.ecx);
}

// Batches of CPUID 0 until `cpuids_per_vcpu` (or until stopped when 0).
BlobVm::Fill BusyFill(std::vector<uint64_t>& done, uint64_t cpuids_per_vcpu) {
  return [&done, cpuids_per_vcpu](uint32_t i, Area& a) -> uint32_t {
    uint64_t n = HOSTILE_BATCH;
    if (cpuids_per_vcpu) n = std::min<uint64_t>(n, cpuids_per_vcpu - done[i]);
    for (uint64_t j = 0; j < n; j++) a.queries[j] = {0, 0, 0, 0};
    done[i] += n;
    return static_cast<uint32_t>(n);
  };
}

TEST(HostileIsolation, IdleVmTotalsDoNotMoveByBusyVmExits) {
  HOSTILE_REQUIRE_PATCHED();
  const std::string section = "Isolation, per-VM scope (busy VM + idle VM)";
  ModuleParam host_wide(kHostWideParam);
  std::string why;
  if (host_wide.exists()) {
    ASSERT_TRUE(host_wide.Write("0", &why)) << why;
  }

  const uint64_t per_vcpu = Knob("HOSTILE_ISO_BUSY_CPUIDS", 20'000);
  const auto deadline = Clock::now() + kLimit;
  harness::Kvm kvm;
  BlobVm busy(kvm, 2);
  BlobVm idle(kvm, 1);
  const exitstats::Profile profile =
      ActiveProfile(idle.Cpuid(0, exitstats::leaf::kDiscovery, 0, deadline));

  KmsgWatch watch;
  uint64_t p_prev = Total64(idle, deadline), s_prev = idle.KvmExits(0);
  const uint64_t p_first = p_prev, s_first = s_prev;
  uint32_t t32_prev = idle.Cpuid(0, profile.total_exits, 0, deadline).eax;
  const uint64_t s_before = idle.KvmExits(0);
  p_prev = Total64(idle, deadline);
  s_prev = idle.KvmExits(0);
  uint64_t prev_step = s_prev - s_before;

  std::vector<uint64_t> done(2, 0);
  std::atomic<bool> running{true};
  std::exception_ptr busy_error;
  std::thread t([&] {
    try {
      busy.RunAll(BusyFill(done, per_vcpu), [](uint32_t, const Area&, uint32_t) {}, deadline);
    } catch (...) {
      busy_error = std::current_exception();
    }
    running = false;
  });
  JoinGuard guard{t, busy};
  uint64_t probes = 0, max_step = 0;
  while (running.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t p = Total64(idle, deadline);
    const uint64_t s = idle.KvmExits(0);
    // P(k)-P(k-1) = strays after probe k-1's CPUID, its OUT, strays, probe
    // k's CPUID; S(k)-S(k-1) = strays, probe k's CPUID, strays, its OUT. So a
    // P step is bounded by the S step plus the previous S step's strays
    // (that step minus its own CPUID and OUT): exact up to the idle vCPU's
    // own interrupts, thousands below a leak of the busy VM's exits.
    const uint64_t allowed = (s - s_prev) + (prev_step > 2 ? prev_step - 2 : 0);
    EXPECT_LE(p - p_prev, allowed)
        << "the idle VM's total rose by " << p - p_prev << " while KVM saw only " << s - s_prev
        << " exits of its vCPU (+" << allowed - (s - s_prev)
        << " strays of the step before): another VM's exits leak into it";
    prev_step = s - s_prev;
    EXPECT_GE(p, p_prev + 2) << "a probe's own exits were not counted";
    max_step = std::max(max_step, p - p_prev);
    p_prev = p;
    s_prev = s;
    ++probes;
  }
  if (t.joinable()) t.join();
  if (busy_error) std::rethrow_exception(busy_error);
  const uint32_t t32 = idle.Cpuid(0, profile.total_exits, 0, deadline).eax;
  const uint64_t s_last = idle.KvmExits(0);
  EXPECT_LE(uint64_t{t32 - t32_prev}, s_last - s_first)
      << "course total leaf of the idle VM moved by more than its own exits";

  // The busy VM's exits were counted - for the busy VM.
  const uint64_t busy_total = Total64(busy, deadline);
  EXPECT_GE(busy_total, 2 * per_vcpu) << "the busy VM's own total misses its CPUID exits";
  EXPECT_GE(probes, 1u) << "the busy VM finished before the idle one was probed once";

  Figures& fig = Figures::Get();
  fig.Add(section, "busy VM: vCPUs x CPUIDs, KVM exits",
          Format("2 x %llu, %llu", static_cast<unsigned long long>(per_vcpu),
              static_cast<unsigned long long>(busy.KvmExitsAll())));
  fig.Add(section, "idle VM: probes during the busy run", std::to_string(probes));
  fig.Add(section, "idle VM: total moved / its own KVM exits (whole run)",
          Format("%llu / %llu", static_cast<unsigned long long>(p_prev - p_first),
              static_cast<unsigned long long>(s_last - s_first)));
  fig.Add(section, "idle VM: largest rise between two probes", std::to_string(max_step));
  ExpectNoKernelReports(watch, section);
}

TEST(HostileIsolation, HostWideChurnNeverGoesBackwardsLosesNothingLeaksNothing) {
  HOSTILE_REQUIRE_PATCHED();
  const std::string section = "Isolation, host-wide scope with VM churn";
  ModuleParam host_wide(kHostWideParam);
  if (!host_wide.exists()) GTEST_SKIP() << "no " << kHostWideParam << " on this kernel";
  std::string why;
  ASSERT_TRUE(host_wide.Write("1", &why)) << why;

  const uint64_t churn = Knob("HOSTILE_CHURN_VMS", 200);
  const uint64_t slack = Knob("HOSTILE_CHURN_SLACK", 16);
  const auto deadline = Clock::now() + kLimit;
  harness::Kvm kvm;
  BlobVm stress(kvm, 2);
  BlobVm probe(kvm, 1);
  const Regs disc = probe.Cpuid(0, exitstats::leaf::kDiscovery, 0, deadline);
  ASSERT_TRUE(disc.edx & exitstats::flag::kHostWide)
      << "discovery flags " << Hex(disc.edx) << " do not say host-wide after writing 1 to "
      << kHostWideParam;

  // Leak baselines, with the stress and probe VMs already there.
  const auto slab_before = KvmSlabObjects();
  const auto vms_before = KvmDebugfsVms();
  const bool kmemleak = KmemleakClear();

  KmsgWatch watch;
  std::vector<uint64_t> done(2, 0);
  std::exception_ptr stress_error;
  std::thread t([&] {
    try {
      stress.RunAll(BusyFill(done, 0), [](uint32_t, const Area&, uint32_t) {}, deadline);
    } catch (...) {
      stress_error = std::current_exception();
    }
  });
  JoinGuard guard{t, stress};
  const auto t0 = Clock::now();
  uint64_t h_prev = Total64(probe, deadline), checks = 0, churned_exits = 0;
  int64_t min_margin = INT64_MAX;
  std::vector<Query> q(16, Query{0, 0, 0, 0});
  for (uint64_t i = 0; i < churn && !stress_error; i++) {
    const uint64_t sa = stress.KvmExitsAll();
    uint64_t c_exits = 0, c_view = 0;
    {
      BlobVm c(kvm, 1);
      c.Query(0, q, deadline);
      c_view = Total64(c, deadline);
      c_exits = c.KvmExits(0);
    }  // destroyed here: its exits must stay in the host-wide totals
    const uint64_t sb = stress.KvmExitsAll();
    const uint64_t h = Total64(probe, deadline);
    ASSERT_GE(h, h_prev) << "host-wide total went backwards at churn " << i;
    ASSERT_GE(c_view, h_prev) << "a new VM's host-wide view is below an earlier reading";
    // KVM bumps a vCPU's `exits` statistic a little after the patch counts
    // the exit (vcpu_enter_guest), so a running stress vCPU's exit counted
    // in h_prev can still show up in sb - sa: one in flight per vCPU.
    const uint64_t in_flight = stress.vcpus();
    const uint64_t kvm_seen = (sb - sa) + c_exits;
    const uint64_t floor = kvm_seen > in_flight ? kvm_seen - in_flight : 0;
    ASSERT_GE(h - h_prev, floor)
        << "churn " << i << ": host-wide total rose by " << h - h_prev << " but KVM saw "
        << sb - sa << " stress exits and " << c_exits
        << " exits of the destroyed VM in between: counts lost";
    min_margin = std::min(min_margin, static_cast<int64_t>(h - h_prev) - static_cast<int64_t>(kvm_seen));
    churned_exits += c_exits;
    h_prev = h;
    ++checks;
  }
  stress.RequestStop();
  if (t.joinable()) t.join();
  if (stress_error) std::rethrow_exception(stress_error);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

  Figures& fig = Figures::Get();
  fig.Add(section, "VMs created, run and destroyed", std::to_string(checks));
  fig.Add(section, "exits of churned VMs (KVM statistic), all found in the host-wide total",
          std::to_string(churned_exits));
  fig.Add(section, "stress VM CPUIDs meanwhile", std::to_string(done[0] + done[1]));
  fig.Add(section, "host-wide readings checked (never backwards, nothing lost)",
          std::to_string(checks));
  fig.Add(section, "smallest (reading rise - KVM-counted exits in between); >= -2 in flight allowed",
          std::to_string(min_margin));
  fig.Add(section, "wall time", Format("%.1f s", secs));

  // Leaks: give RCU-deferred frees (TDP MMU pages) a moment first.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  if (vms_before) {
    const auto vms_after = KvmDebugfsVms();
    EXPECT_EQ(vms_after.value_or(0), *vms_before) << "VM directories left in /sys/kernel/debug/kvm";
    fig.Add(section, "debugfs VM directories before / after",
            Format("%llu / %llu", static_cast<unsigned long long>(*vms_before),
                static_cast<unsigned long long>(vms_after.value_or(0))));
  } else {
    fig.Add(section, "debugfs VM directories", "not available (debugfs not mounted)");
  }
  if (slab_before) {
    const auto slab_after = KvmSlabObjects();
    std::string grew;
    for (const auto& [name, after] : slab_after.value_or(std::map<std::string, uint64_t>{})) {
      const uint64_t before = slab_before->count(name) ? slab_before->at(name) : 0;
      // A leak of one object per VM grows a cache by `churn`; the live
      // stress and probe VMs may legitimately add a few (lazily built MMU
      // pages), hence max(slack, churn / 2).
      if (after > before + std::max<uint64_t>(slack, churn / 2)) grew += Format(" %s %llu->%llu", name.c_str(),
                                              static_cast<unsigned long long>(before),
                                              static_cast<unsigned long long>(after));
    }
    EXPECT_TRUE(grew.empty()) << "kvm slab caches grew after " << churn << " VMs:" << grew;
    std::string all;
    for (const auto& [name, after] : slab_after.value_or(std::map<std::string, uint64_t>{}))
      all += Format(" %s %llu->%llu", name.c_str(),
                 static_cast<unsigned long long>(slab_before->count(name) ? slab_before->at(name) : 0),
                 static_cast<unsigned long long>(after));
    fig.Add(section, "kvm slab objects before->after (shrunk first)", all.empty() ? "none" : all);
    fig.Add(section, "kvm slab caches grown by half an object per churned VM or more",
            grew.empty() ? "none" : grew);
  } else {
    fig.Add(section, "kvm slab objects", "not available (/proc/slabinfo needs CONFIG_SLUB_DEBUG)");
  }
  if (kmemleak) {
    std::string report;
    auto suspects = KmemleakScan(&report);
    const bool kvm_leak = report.find("kvm") != std::string::npos;
    EXPECT_FALSE(kvm_leak) << "kmemleak suspects with kvm in their backtrace:\n" << report.substr(0, 3000);
    fig.Add(section, "kmemleak suspects after the churn (kvm-related)",
            Format("%llu (%s)", static_cast<unsigned long long>(suspects.value_or(0)),
                kvm_leak ? "some kvm-related" : "none kvm-related"));
  } else {
    fig.Add(section, "kmemleak", "not in this kernel (the KASAN build has it)");
  }
  ExpectNoKernelReports(watch, section);
}

}  // namespace
}  // namespace hostile
