// Concurrency stage, meant for the KCSAN kernel
// (ci/sanitizers/kcsan.config): writers take CPUID exits on half the vCPUs
// while readers query every leaf on the others and a third thread flips
// kvm.exit_stats_host_wide under them. KCSAN watches the accesses; the test
// itself holds the patch to no lost update: afterwards the VM's CPUID count
// equals the CPUIDs the guest executed, exactly, and the VM's total equals
// KVM's own `exits` statistic (the plain-++ mutant loses 10-18% of updates
// under MTTCG, so this fails even without KCSAN).
//
// Knobs: HOSTILE_CONC_SECONDS (default 15), HOSTILE_CONC_VCPUS (default L1's
// CPUs, at least 2), HOSTILE_KCSAN_SKIP_WATCH (default 400: sample 10x more
// often than KCSAN's 4000 while the stage runs), HOSTILE_CONC_TOGGLE (1).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <optional>
#include <thread>

#include "exitstats/reasons.h"
#include "stage.h"

namespace hostile {
namespace {

using exitstats::Regs;

TEST(HostileConcurrency, WritersReadersAndScopeFlipsLoseNoUpdate) {
  HOSTILE_REQUIRE_PATCHED();
  const std::string section = "Concurrency (KCSAN stage)";
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const uint32_t vcpus =
      static_cast<uint32_t>(Knob("HOSTILE_CONC_VCPUS", std::clamp<long>(cpus, 2, 8)));
  const auto seconds = std::chrono::seconds(Knob("HOSTILE_CONC_SECONDS", 15));
  const auto deadline = Clock::now() + seconds + std::chrono::seconds(600);

  ModuleParam host_wide(kHostWideParam);
  std::string why;
  if (host_wide.exists()) {
    ASSERT_TRUE(host_wide.Write("0", &why)) << why;
  }
  ModuleParam skip_watch(kKcsanSkipWatch);
  if (skip_watch.exists())
    skip_watch.Write(std::to_string(Knob("HOSTILE_KCSAN_SKIP_WATCH", 400)));

  harness::Kvm kvm;
  BlobVm vm(kvm, vcpus);
  const Regs disc = vm.Cpuid(0, exitstats::leaf::kDiscovery, 0, deadline);
  const exitstats::Discovery d{disc.ebx, disc.ecx, disc.edx};
  // Readers judge shapes only: with the scope flipping, totals legitimately
  // jump between this VM's and the host's (monotonicity is the fuzz
  // stage's and the churn stage's business).
  std::vector<QueryGen> gens;
  for (uint32_t i = 0; i < vcpus; i++) gens.emplace_back(1000 + i, d);
  std::vector<uint64_t> cpuids(vcpus, 0), bad(vcpus, 0);
  std::vector<std::string> first_bad(vcpus);
  std::atomic<bool> toggling{host_wide.exists() && Knob("HOSTILE_CONC_TOGGLE", 1) != 0};
  std::atomic<uint64_t> flips{0};
  cpuids[0] = 1;  // the discovery query

  // KCSAN's own counters prove it was watching (a quiet log proves nothing
  // if no watchpoint was ever set up).
  auto kcsan_stat = [](const std::string& key) -> std::optional<uint64_t> {
    std::ifstream f("/sys/kernel/debug/kcsan");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
    return std::nullopt;
  };
  const auto wp0 = kcsan_stat("setup_watchpoints");
  const auto races0 = kcsan_stat("data_races");
  KmsgWatch watch;
  const auto t0 = Clock::now();
  std::thread toggler([&] {
    bool on = false;
    while (toggling.load()) {
      on = !on;
      if (host_wide.Write(on ? "1" : "0")) flips++;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  try {
    vm.RunAll(
        [&](uint32_t i, Area& a) -> uint32_t {
          if (Clock::now() - t0 >= seconds) return 0;
          if (i % 2 == 0) {  // writer: CPUID 0, an exit that is not a stats leaf
            for (uint32_t j = 0; j < HOSTILE_BATCH; j++) a.queries[j] = {0, 0, 0, 0};
          } else {
            gens[i].Fill({a.queries, HOSTILE_BATCH});
          }
          cpuids[i] += HOSTILE_BATCH;
          return HOSTILE_BATCH;
        },
        [&](uint32_t i, const Area& a, uint32_t n) {
          if (i % 2 == 0) return;
          for (uint32_t j = 0; j < n; j++) {
            const Query& q = a.queries[j];
            const Regs& o = a.answers[j];
            // Shape rules that hold in either scope.
            bool ok = true;
            if (q.leaf == exitstats::leaf::kDiscovery)
              ok = o.eax == disc.eax && o.ebx == disc.ebx && o.ecx == disc.ecx &&
                   (o.edx & ~exitstats::flag::kHostWide) == (disc.edx & ~exitstats::flag::kHostWide);
            else if (q.leaf == exitstats::leaf::kReasonExits64 && !exitstats::IsDefined(q.ecx))
              ok = o == Regs{0, 0, 0, exitstats::kUndefinedReasonEdx};
            else if (q.leaf == exitstats::leaf::kReasonExits64 || q.leaf == exitstats::leaf::kTotalExits64)
              ok = o.eax == 0 && o.edx == 0;
            if (!ok && bad[i]++ == 0)
              first_bad[i] = Format("CPUID(0x%08X, 0x%08X) -> %08x %08x %08x %08x", q.leaf, q.ecx,
                                 o.eax, o.ebx, o.ecx, o.edx);
          }
        },
        deadline);
  } catch (...) {
    toggling = false;
    toggler.join();
    throw;
  }
  toggling = false;
  toggler.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (host_wide.exists()) {
    ASSERT_TRUE(host_wide.Write("0", &why)) << why;
  }

  for (uint32_t i = 0; i < vcpus; i++) EXPECT_EQ(bad[i], 0u) << "vCPU " << i << ": " << first_bad[i];

  // Exactness, quiescent: every vCPU is parked in user space now.
  uint64_t executed = 0;
  for (uint64_t c : cpuids) executed += c;
  const Regs cpuid64 = vm.Cpuid(0, exitstats::leaf::kReasonExits64, exitstats::reason::kCpuid, deadline);
  executed += 1;  // the query counts itself (SPEC: counted when the exit is taken)
  const uint64_t counted_cpuids = exitstats::HiLo(cpuid64.ebx, cpuid64.ecx);
  EXPECT_EQ(counted_cpuids, executed)
      << "the VM executed " << executed << " CPUIDs; the patch counted " << counted_cpuids
      << (counted_cpuids < executed ? " (lost updates)" : " (counted exits that did not happen)");
  const Regs total64 = vm.Cpuid(0, exitstats::leaf::kTotalExits64, 0, deadline);
  const uint64_t kvm_exits = vm.KvmExitsAll();
  const uint64_t total = exitstats::HiLo(total64.ebx, total64.ecx);
  // KVM's `exits` also holds the final OUT of the last query (and any exit
  // between that CPUID and its OUT): total <= kvm_exits - 1, and nothing lost.
  EXPECT_LE(total + 1, kvm_exits) << "patch total above KVM's own exits statistic";
  EXPECT_LE(kvm_exits - total, 1u + 8u)
      << "patch total " << total << " vs KVM exits " << kvm_exits << ": updates lost";

  Figures& fig = Figures::Get();
  fig.Add(section, "kernel", KernelHas("KCSAN") ? "KCSAN build" : "no KCSAN detected (lost-update checks only)");
  fig.Add(section, "vCPUs (writers + readers)", Format("%u (%u + %u)", vcpus, (vcpus + 1) / 2, vcpus / 2));
  fig.Add(section, "duration", Format("%.1f s", secs));
  fig.Add(section, "CPUIDs executed / counted by the patch (reason 10)",
          Format("%llu / %llu", static_cast<unsigned long long>(executed),
              static_cast<unsigned long long>(counted_cpuids)));
  fig.Add(section, "VM total / KVM exits statistic",
          Format("%llu / %llu", static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(kvm_exits)));
  fig.Add(section, "host-wide scope flips during the run", std::to_string(flips.load()));
  fig.Add(section, "KCSAN skip_watch during the run",
          skip_watch.exists() ? *skip_watch.Read() : std::string("n/a (no KCSAN)"));
  if (wp0) {
    const auto wp1 = kcsan_stat("setup_watchpoints");
    const auto races1 = kcsan_stat("data_races");
    fig.Add(section, "KCSAN watchpoints set up / data races seen during the stage (whole kernel)",
            Format("%llu / %llu", static_cast<unsigned long long>(wp1.value_or(0) - *wp0),
                static_cast<unsigned long long>(races1.value_or(0) - races0.value_or(0))));
  }
  ExpectNoKernelReports(watch, section);
}

}  // namespace
}  // namespace hostile
