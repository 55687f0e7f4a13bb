// Tests of the dump decoding, deltas, text format and checks, on synthetic
// guest buffers laid out as guest.S writes them.
#include "dump_format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "exitstats/reasons.h"

namespace exitdump {
namespace {

// A guest buffer: 16 bytes per CPUID in guest.S order.
struct Buffer {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(16 * (3 + 2 * kReasons));
  void Put(size_t i, exitstats::Regs r) { std::memcpy(bytes.data() + 16 * i, &r, 16); }
  void Reason(uint32_t r, uint64_t exits, uint64_t cycles) {
    const uint32_t edx = exitstats::IsDefined(r) ? 0 : exitstats::kUndefinedReasonEdx;
    Put(3 + 2 * r, {0, uint32_t(exits >> 32), uint32_t(exits), edx});
    Put(4 + 2 * r, {0, uint32_t(cycles >> 32), uint32_t(cycles), 0});
  }
  Buffer() {
    Put(0, {exitstats::kSignature, exitstats::kAbiVersion, 77, exitstats::flag::kVmx});
    for (uint32_t r = 0; r < kReasons; r++) Reason(r, 0, 0);
  }
  void Totals(uint64_t exits, uint64_t cycles) {
    Put(1, {0, uint32_t(exits >> 32), uint32_t(exits), 0});
    Put(2, {uint32_t(exits), uint32_t(cycles >> 32), uint32_t(cycles), 0});
  }
};

TEST(Dump, DecodesHiLoAndPositions) {
  // Catches EBX/ECX swapped, or reason r read from the wrong slot.
  Buffer b;
  b.Totals(0x100000005ull, 0x200000007ull);
  b.Reason(48, 0x300000009ull, 0x40000000Bull);
  Dump d = Dump::FromGuest(b.bytes.data());
  EXPECT_EQ(d.total_exits, 0x100000005ull);
  EXPECT_EQ(d.total_cycles, 0x200000007ull);
  EXPECT_EQ(d.reasons[48].exits, 0x300000009ull);
  EXPECT_EQ(d.reasons[48].cycles, 0x40000000Bull);
  EXPECT_EQ(d.reasons[47].exits, 0u);
  EXPECT_EQ(d.reasons[35].edx, exitstats::kUndefinedReasonEdx);
  EXPECT_EQ(d.discovery.eax, exitstats::kSignature);
}

// A workload run as the real thing would report it.
struct Scenario {
  Meta meta{"ept", "vmx", "sjsu", 100, 50, 10, 1.0, 100};
  Buffer before, after;
  Scenario() {
    before.Totals(1000, 500000);
    before.Reason(10, 900, 400000);
    before.Reason(1, 100, 100000);
    const uint64_t n = meta.iterations;
    // After: the workload's exits plus one snapshot's CPUIDs.
    after.Reason(10, 900 + n + kDumpCpuids, 400000 + (n + kDumpCpuids) * 100);
    after.Reason(1, 103, 100300);
    after.Reason(12, n, n * 100);
    after.Reason(18, n, n * 100);
    after.Reason(30, n, n * 100);
    after.Reason(31, n, n * 100);
    after.Reason(32, n, n * 100);
    after.Reason(48, 60, 6000);
    const uint64_t added = n + kDumpCpuids + 3 + 5 * n + 60;
    const uint64_t added_cycles = (n + kDumpCpuids) * 100 + 300 + 5 * n * 100 + 6000;
    after.Totals(1000 + added, 500000 + added_cycles);
  }
  Delta delta() const {
    return Subtract(Dump::FromGuest(before.bytes.data()), Dump::FromGuest(after.bytes.data()));
  }
};

bool Passed(const std::vector<CheckResult>& cs, const std::string& name) {
  for (const auto& c : cs)
    if (c.name == name) return c.pass;
  ADD_FAILURE() << "no check " << name;
  return false;
}

TEST(Check, GoodRunPasses) {
  Scenario run;
  for (const auto& c : Check(run.meta, run.delta())) EXPECT_TRUE(c.pass) << c.name << ": " << c.detail;
}

// One row per bug the checks must catch: how a good run is broken, and the
// checks that must then fail.
struct BrokenRun {
  const char* name;
  const char* catches;
  void (*breakit)(Scenario&);
  std::vector<std::string> failing;
};

const BrokenRun kBrokenRuns[] = {
    {"LostHltCount", "a patch that loses one HLT exit",
     [](Scenario& r) { r.after.Reason(12, r.meta.iterations - 1, 0); }, {"hlt"}},
    {"SnapshotCpuidsUnaccounted", "a wrong kDumpCpuids, or a dump that forgets its own exits",
     [](Scenario& r) { r.after.Reason(10, 900 + r.meta.iterations, 0); }, {"cpuid"}},
    {"ExitsWithoutCycles", "a patch that drops the cycles of exits handled in userspace",
     [](Scenario& r) { r.after.Reason(30, r.meta.iterations, 0); }, {"cycles-per-reason"}},
    {"TooFewEptViolations", "a first touch that is not counted as an EPT violation",
     [](Scenario& r) { r.after.Reason(48, r.meta.touch_pages - 1, 0); }, {"first-touch"}},
    {"ShadowModeWithEptViolations", "shadow paging judged as EPT: it wants no EPT "
     "violations (60 here) and page faults (reason 0 did not move)",
     [](Scenario& r) { r.meta.mode = "shadow"; }, {"no-ept-violations", "shadow-page-faults"}},
    {"ReservedReasonAnsweredAsDefined", "a patch that answers reserved reason 35 as defined",
     [](Scenario& r) { r.after.Put(3 + 2 * 35, {0, 0, 0, 0}); }, {"undefined-marked"}},
    {"TotalMissesExits", "a total that misses exits (e.g. a fastpath not counted in it)",
     [](Scenario& r) { r.after.Totals(1000 + 100, 10); },
     {"total-is-sum-of-reasons", "cycles-are-sum-of-reasons"}},
};

void PrintTo(const BrokenRun& row, std::ostream* os) { *os << row.name; }

class BrokenRunIsCaught : public ::testing::TestWithParam<BrokenRun> {};

TEST_P(BrokenRunIsCaught, ByItsChecks) {
  const BrokenRun& row = GetParam();
  Scenario run;
  row.breakit(run);
  const auto cs = Check(run.meta, run.delta());
  for (const std::string& name : row.failing) EXPECT_FALSE(Passed(cs, name)) << name << " misses " << row.catches;
}

INSTANTIATE_TEST_SUITE_P(Check, BrokenRunIsCaught, ::testing::ValuesIn(kBrokenRuns),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CheckProbes, ReasonAboveTheTableMustBeUndefined) {
  // Catches a bound check that lets reason 78 through (mutant 04 answers it
  // with reason 0's count and EDX=0).
  const exitstats::Regs undef{0, 0, 0, exitstats::kUndefinedReasonEdx};
  Probes good{{undef, undef}, {undef, undef}};
  EXPECT_TRUE(CheckProbes(good).pass);
  Probes bad = good;
  bad.course[0] = {5, 0, 0, 0};
  CheckResult r = CheckProbes(bad);
  EXPECT_FALSE(r.pass);
  EXPECT_NE(r.detail.find("course(78)"), std::string::npos) << r.detail;
  Probes bad2 = good;
  bad2.ext[1] = {0, 0, 0, 0};
  EXPECT_FALSE(CheckProbes(bad2).pass);
}

TEST(Format, ListsDefinedReasonsOnlyWithDeltas) {
  Scenario run;
  const std::string text = Format(run.meta, run.delta());
  EXPECT_NE(text.find("meta\tmode\tept\n"), std::string::npos);
  EXPECT_NE(text.find("reason\t12\tHLT\t100\t10000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("reason\t1\tEXTERNAL_INTERRUPT\t3\t300\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("reason\t35\t"), std::string::npos) << "35 is reserved";
}

}  // namespace
}  // namespace exitdump
