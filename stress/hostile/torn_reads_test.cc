// Torn 64-bit reads (kernel-patch/mutants/03): a reader must never see an
// exit count go backwards while another vCPU's exits carry it into bit 32.
//
// A carry into bit 32 of an exit count takes 2^32 exits, out of reach of any
// test, except with the test-only seed (kvm.exit_stats_seed=0xffffff00,
// discovery flag bit 4): every per-reason count of every new vCPU then
// starts 256 below 2^32 and carries at that vCPU's 256th exit of the
// reason. One fresh VM is one more carry of the writer's CPUID count, and
// the reader spends most of its time inside the patch's read of that count,
// so over tens of VMs some read straddles a carry: a torn read (high half
// loaded before the carry, low half after) drops by about 2^32. The guest
// stress binary cannot do this: its VM is the L2 itself, whose seeded counts
// carry once, during boot or the first tests.
//
// Knobs: HOSTILE_TORN_VMS (default 40 fresh VMs), HOSTILE_TORN_WRITES (CPUIDs
// per VM on the writer, default 1024: the carry comes at the 256th).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "exitstats/reasons.h"
#include "stage.h"

namespace hostile {
namespace {

using exitstats::Regs;

constexpr uint32_t kWriterBatch = 64;  // small: the carry falls mid-run
constexpr uint32_t kReaderBatch = 16;

TEST(HostileTornReads, SeededCountsNeverGoBackwards) {
  HOSTILE_REQUIRE_PATCHED();
  const std::string section = "Torn reads (seeded counters)";
  const auto deadline = Clock::now() + std::chrono::seconds(600);
  harness::Kvm kvm;
  Regs disc;
  {
    BlobVm probe(kvm, 1);
    disc = probe.Cpuid(0, exitstats::leaf::kDiscovery, 0, deadline);
  }
  if (!(disc.edx & exitstats::flag::kSeeded))
    GTEST_SKIP() << "needs kvm.exit_stats_seed on L1's command line (discovery flag bit 4): "
                    "without it a carry into bit 32 takes 2^32 exits";
  // Per-VM scope: other VMs' exits must not move the counts under the reader.
  ModuleParam host_wide(kHostWideParam);
  std::string why;
  if (host_wide.exists()) {
    ASSERT_TRUE(host_wide.Write("0", &why)) << why;
  }

  const uint64_t vms = Knob("HOSTILE_TORN_VMS", 40);
  const uint64_t writes = std::max<uint64_t>(Knob("HOSTILE_TORN_WRITES", 1024), 512);
  uint64_t reads = 0, drops = 0, carries_seen = 0;
  std::string first_drop;
  KmsgWatch watch;
  const auto t0 = Clock::now();
  for (uint64_t v = 0; v < vms; v++) {
    BlobVm vm(kvm, 2);
    uint64_t written = 0, last = 0;
    std::atomic<bool> writer_done{false};
    std::atomic<uint64_t> writer_exits{0};  // CPUIDs the writer has finished
    bool before = false, after = false;     // the reader ran on both sides of the carry
    vm.RunAll(
        [&](uint32_t i, Area& a) -> uint32_t {
          if (i == 0) {  // writer: CPUID 0, reason 10 on vCPU 0
            const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kWriterBatch, writes - written));
            if (n == 0) {
              writer_done = true;
              return 0;
            }
            for (uint32_t j = 0; j < n; j++) a.queries[j] = {0, 0, 0, 0};
            written += n;
            return n;
          }
          if (writer_done.load()) return 0;  // reader: this VM's reason-10 count, 64-bit leaf
          if (writer_exits.load() + kWriterBatch < 256) before = true;
          for (uint32_t j = 0; j < kReaderBatch; j++)
            a.queries[j] = {exitstats::leaf::kReasonExits64, exitstats::reason::kCpuid, 0, 0};
          return kReaderBatch;
        },
        [&](uint32_t i, const Area& a, uint32_t n) {
          if (i == 0) {
            writer_exits += n;
            return;
          }
          if (writer_exits.load() > 256) after = true;
          for (uint32_t j = 0; j < n; j++) {
            const uint64_t value = exitstats::HiLo(a.answers[j].ebx, a.answers[j].ecx);
            reads++;
            // The reader's own count carries too, but at its own exit, taken
            // before the read it answers: that one cannot tear.
            if (value < last && drops++ == 0)
              first_drop = Format("VM %llu: read %llu after %llu (down by %llu)",
                               static_cast<unsigned long long>(v), static_cast<unsigned long long>(value),
                               static_cast<unsigned long long>(last),
                               static_cast<unsigned long long>(last - value));
            last = std::max(last, value);
          }
        },
        deadline);
    if (before && after) carries_seen++;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(drops, 0u) << "a 64-bit count went backwards: torn read of the high and low halves? "
                       << first_drop;
  // A run in which no read ever saw both sides of a carry proves nothing.
  EXPECT_GE(carries_seen * 4, vms) << "the reader ran on both sides of the carry in only " << carries_seen << " of " << vms
                                   << " VMs: the test did not do what it is for";

  Figures& fig = Figures::Get();
  fig.Add(section, "fresh 2-vCPU VMs (one carry into bit 32 each on the writer)", std::to_string(vms));
  fig.Add(section, "VMs whose reader saw both sides of the carry", std::to_string(carries_seen));
  fig.Add(section, "64-bit per-reason reads / reads that went backwards",
          Format("%llu / %llu", static_cast<unsigned long long>(reads), static_cast<unsigned long long>(drops)));
  fig.Add(section, "duration", Format("%.1f s", secs));
  ExpectNoKernelReports(watch, section);
}

}  // namespace
}  // namespace hostile
