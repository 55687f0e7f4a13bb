// Fuzz stage: every exit-statistics leaf, random and edge ECX,
// garbage in EBX/EDX, several vCPUs at once; every answer judged against
// SPEC.md by the Checker (fuzz_oracle.h). Runs in L1 on the patched host,
// ideally on the KASAN+UBSAN kernel (ci/sanitizers/kasan-ubsan.config).
//
// Knobs (environment):
//   HOSTILE_FUZZ_PER_LEAF  queries per leaf (default 10^4 = the CI count;
//                          the on-demand run sets 10^6)
//   HOSTILE_FUZZ_VCPUS     vCPUs querying at once (default: L1's CPUs, 2..8)
//   HOSTILE_FUZZ_TIMEOUT_S wall-clock limit (default 3600)
//   HOSTILE_SEED           query stream seed (default 0x9e3779b9)
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "exitstats/reasons.h"
#include "fuzz_oracle.h"
#include "stage.h"

namespace hostile {
namespace {

using exitstats::Regs;

enum class Scope { kPerVm, kHostWide };

uint32_t DefaultVcpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<uint32_t>(std::clamp<long>(n, 2, 8));
}

class HostileFuzz : public testing::TestWithParam<Scope> {};

TEST_P(HostileFuzz, EveryAnswerMatchesSpecForAnyEcx) {
  HOSTILE_REQUIRE_PATCHED();
  const Scope scope = GetParam();
  const std::string section =
      scope == Scope::kPerVm ? "Fuzz, per-VM scope" : "Fuzz, host-wide scope";

  // Pin the scope: per-VM runs must not inherit a host-wide setting.
  ModuleParam host_wide(kHostWideParam);
  std::string why;
  if (scope == Scope::kHostWide) {
    if (!host_wide.exists()) GTEST_SKIP() << "no " << kHostWideParam << " on this kernel";
    ASSERT_TRUE(host_wide.Write("1", &why)) << why;
  } else if (host_wide.exists()) {
    ASSERT_TRUE(host_wide.Write("0", &why)) << why;
  }

  const uint64_t per_leaf = Knob("HOSTILE_FUZZ_PER_LEAF", 10'000);
  const uint32_t vcpus = static_cast<uint32_t>(Knob("HOSTILE_FUZZ_VCPUS", DefaultVcpus()));
  const auto deadline =
      Clock::now() + std::chrono::seconds(Knob("HOSTILE_FUZZ_TIMEOUT_S", 3600));
  const uint64_t seed = Knob("HOSTILE_SEED", 0x9e3779b9);

  harness::Kvm kvm;
  BlobVm vm(kvm, vcpus);
  const Regs disc = vm.Cpuid(0, exitstats::leaf::kDiscovery, 0, deadline);
  ASSERT_EQ(disc.eax, exitstats::kSignature);
  ASSERT_EQ(disc.ecx, exitstats::kHighestDefinedReason)
      << "discovery says the highest defined reason is " << disc.ecx
      << "; the oracle's table (exitstats/reasons.h) ends at " << exitstats::kHighestDefinedReason;
  ASSERT_EQ(bool(disc.edx & exitstats::flag::kHostWide), scope == Scope::kHostWide)
      << "discovery flags " << Hex(disc.edx) << " disagree with " << kHostWideParam;
  const exitstats::Discovery d{disc.ebx, disc.ecx, disc.edx};
  const exitstats::Profile profile = ActiveProfile(disc);

  // Equal shares per leaf: each vCPU's quota is a multiple of the 8 leaves.
  const uint64_t total = per_leaf * kFuzzedLeaves.size();
  uint64_t quota = (total + vcpus - 1) / vcpus;
  quota = (quota + kFuzzedLeaves.size() - 1) / kFuzzedLeaves.size() * kFuzzedLeaves.size();

  std::vector<QueryGen> gens;
  std::vector<Checker> checkers;
  std::vector<uint64_t> issued(vcpus, 0), own(vcpus, 0);
  own[0] = 1;  // the discovery CPUID above ran on vCPU 0
  for (uint32_t i = 0; i < vcpus; i++) {
    gens.emplace_back(seed + i, d);
    checkers.emplace_back(profile, disc, /*fresh_vm=*/scope == Scope::kPerVm);
  }

  KmsgWatch watch;
  const auto t0 = Clock::now();
  std::string run_error;
  try {
  vm.RunAll(
      [&](uint32_t i, Area& a) -> uint32_t {
        const uint64_t n = std::min<uint64_t>(HOSTILE_BATCH, quota - issued[i]);
        gens[i].Fill({a.queries, n});
        issued[i] += n;
        return static_cast<uint32_t>(n);
      },
      [&](uint32_t i, const Area& a, uint32_t n) {
        for (uint32_t j = 0; j < n; j++) checkers[i].Check(a.queries[j], a.answers[j], ++own[i]);
      },
      deadline);
  } catch (const std::exception& e) {
    // Keep the figures of what ran before the guest died (a long run that
    // breaks after minutes is a finding, not just a failure).
    run_error = e.what();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

  uint64_t failures = 0, min_leaf = UINT64_MAX, all = 0;
  std::string first;
  for (const Checker& c : checkers) {
    failures += c.failures();
    for (const std::string& f : c.first_failures())
      if (first.size() < 4000) first += "  " + f + "\n";
  }
  EXPECT_TRUE(run_error.empty()) << run_error;
  if (!run_error.empty()) Figures::Get().Add(section, "run ended early", run_error);
  for (uint32_t leaf : kFuzzedLeaves) {
    uint64_t n = 0;
    for (const Checker& c : checkers) n += c.checked(leaf);
    if (run_error.empty()) {
      EXPECT_GE(n, per_leaf) << "leaf " << Hex(leaf) << " got fewer queries than asked";
    }
    min_leaf = std::min(min_leaf, n);
    all += n;
  }
  EXPECT_EQ(failures, 0u) << "answers that break SPEC.md (first ones):\n" << first;

  Figures& fig = Figures::Get();
  fig.Add(section, "kernel", Format("%s, vendor %s, profile %s",
                                 KernelHas("KASAN")   ? "KASAN+UBSAN build"
                                 : KernelHas("KCSAN") ? "KCSAN build"
                                                      : "no KASAN/KCSAN detected",
                                 d.vendor() == exitstats::Vendor::kSvm ? "SVM" : "VMX",
                                 std::string(profile.name).c_str()));
  fig.Add(section, "leaves fuzzed", "0x4FFFFFF0-F3, 0x4FFFFFFC-FF (8)");
  fig.Add(section, "queries per leaf (least-queried leaf)", std::to_string(min_leaf));
  fig.Add(section, "queries in total", std::to_string(all));
  fig.Add(section, "vCPUs querying at once", std::to_string(vcpus));
  size_t edges = 0;
  for (uint32_t leaf : kFuzzedLeaves) edges += EdgeEcx(leaf, d).size();
  fig.Add(section, "edge ECX values (all leaves)", std::to_string(edges));
  fig.Add(section, "answers breaking SPEC.md", std::to_string(failures));
  fig.Add(section, "wall time", Format("%.1f s (%.0f queries/s)", secs, all / std::max(secs, 1e-9)));
  ExpectNoKernelReports(watch, section);
}

INSTANTIATE_TEST_SUITE_P(Scopes, HostileFuzz, testing::Values(Scope::kPerVm, Scope::kHostWide),
                         [](const testing::TestParamInfo<Scope>& i) {
                           return i.param == Scope::kPerVm ? "per_vm" : "host_wide";
                         });

// The fuzz pipeline itself, on any KVM (also the unpatched one here): the
// guest executes exactly the queries it is given, in order, with the given
// ECX, and the answers come back to the right slots. Leaf 0's vendor string
// and leaf 1's signature do not depend on ECX or on EBX/EDX garbage, so a
// pipeline that drops, reorders or mixes up queries shows as a mismatch.
TEST(HostileFuzzPipeline, AnswersComeBackInOrderOnEveryVcpu) {
  HOSTILE_REQUIRE_KVM();
  harness::Kvm kvm;
  const uint32_t vcpus = 2;
  BlobVm vm(kvm, vcpus);
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  const Regs leaf0 = vm.Cpuid(0, 0, 0, deadline);
  const Regs leaf1 = vm.Cpuid(0, 1, 0, deadline);
  ASSERT_NE(leaf0.ebx, 0u) << "CPUID 0 has no vendor string: the blob did not run";
  std::vector<uint64_t> batches(vcpus, 0), checked(vcpus, 0), before(vcpus);
  for (uint32_t i = 0; i < vcpus; i++) before[i] = vm.area(i).batches;  // the probes above
  std::vector<std::mt19937> rng;
  for (uint32_t i = 0; i < vcpus; i++) rng.emplace_back(i + 1);
  vm.RunAll(
      [&](uint32_t i, Area& a) -> uint32_t {
        if (batches[i]++ == 3) return 0;
        for (uint32_t j = 0; j < HOSTILE_BATCH; j++)
          a.queries[j] = {(j % 3 == 0) ? 0u : 0x80000000u + (j % 2), static_cast<uint32_t>(rng[i]()),
                          static_cast<uint32_t>(rng[i]()), static_cast<uint32_t>(rng[i]())};
        return HOSTILE_BATCH;
      },
      [&](uint32_t i, const Area& a, uint32_t n) {
        for (uint32_t j = 0; j < n; j++) {
          if (a.queries[j].leaf != 0) continue;
          ASSERT_EQ(a.answers[j].ebx, leaf0.ebx) << "vCPU " << i << " slot " << j;
          ASSERT_EQ(a.answers[j].edx, leaf0.edx) << "vCPU " << i << " slot " << j;
          ASSERT_EQ(a.answers[j].ecx, leaf0.ecx) << "vCPU " << i << " slot " << j;
          ++checked[i];
        }
      },
      deadline);
  for (uint32_t i = 0; i < vcpus; i++) {
    EXPECT_EQ(vm.area(i).batches - before[i], 3u) << "vCPU " << i;
    EXPECT_EQ(checked[i], 3u * ((HOSTILE_BATCH + 2) / 3)) << "vCPU " << i;
  }
  // Leaf 1 EAX (family/model/stepping) is the same on every vCPU.
  EXPECT_EQ(vm.Cpuid(1, 1, 0, deadline).eax, leaf1.eax);
}

}  // namespace
}  // namespace hostile
