// The check logic against models of hosts: a correct patched host passes
// every check on both vendors; each mutant-like bug makes the check that is
// meant to see it fail, with a message naming the exit and the shortfall; an
// unpatched host skips everything with status 77.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "checks.h"
#include "model_env.h"
#include "options.h"
#include "report.h"

namespace exitstats::guest {
namespace {

Config SmallConfig(size_t cpus = 2) {
  Config c;
  for (size_t i = 0; i < cpus; ++i) c.cpus.push_back(static_cast<int>(i));
  c.iterations = 3000;
  c.torn_seconds = 1.0;
  c.random_ecx = 256;
  return c;
}

std::vector<Result> RunAll(Checker& c) {
  std::vector<Result> out = {c.DiscoveryLeaf(), c.LeafRegisters(), c.UndefinedVersusNotHandled(),
                             c.OrdinaryLeaves()};
  for (const auto& row : GuestExits()) out.push_back(c.LowerBound(row.kind));
  out.push_back(c.ExactCpuid());
  out.push_back(c.TotalsSum());
  out.push_back(c.Cycles());
  out.push_back(c.TornReads());
  return out;
}

class CorrectHost : public ::testing::TestWithParam<std::tuple<Vendor, size_t, uint64_t>> {};

TEST_P(CorrectHost, EveryCheckPasses) {
  auto [vendor, cpus, seed] = GetParam();
  Bugs none;
  none.seed = seed;  // kvm.exit_stats_seed: counts start just below 2^32
  ModelEnv env(none, vendor);
  Checker c(env, kSjsu, SmallConfig(cpus));
  ASSERT_TRUE(c.discovery().has_value());
  std::vector<Result> results = RunAll(c);
  for (const Result& r : results)
    EXPECT_TRUE(r.pass()) << r.check << " " << r.exit << ":\n" << r.Text();
  EXPECT_EQ(ExitStatus(results, true, false), kExitPass);
}

INSTANTIATE_TEST_SUITE_P(VendorsAndVcpus, CorrectHost,
                         ::testing::Combine(::testing::Values(Vendor::kSvm, Vendor::kVmx),
                                            ::testing::Values(size_t{2}, size_t{4}),
                                            ::testing::Values(uint64_t{0}, uint64_t{0xFFFFFF00})),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == Vendor::kSvm ? "Svm"
                                                                                       : "Vmx") +
                                  std::to_string(std::get<1>(info.param)) + "Vcpus" +
                                  (std::get<2>(info.param) ? "Seeded" : "");
                         });

TEST(CorrectHost, F22ProfilePassesEveryCheck) {
  ModelEnv env({}, Vendor::kVmx, true, kF22);
  Checker c(env, kF22, SmallConfig());
  for (const Result& r : RunAll(c)) EXPECT_TRUE(r.pass()) << r.check << " " << r.exit << ":\n" << r.Text();
}

TEST(UnpatchedHost, EveryCheckSkipsWithTheReasonAndStatus77) {
  ModelEnv env({}, Vendor::kSvm, /*patched=*/false);
  Checker c(env, kSjsu, SmallConfig());
  EXPECT_FALSE(c.discovery().has_value());
  std::vector<Result> results = RunAll(c);
  for (const Result& r : results) {
    EXPECT_EQ(r.status, Result::Status::kSkip) << r.check;
    EXPECT_NE(r.Text().find("no exit-statistics leaves"), std::string::npos) << r.Text();
  }
  EXPECT_EQ(ExitStatus(results, false, false), kExitNoHost);
}

// One row per bug: the check that must catch it and words its message needs.
struct BugCase {
  const char* name;
  Bugs bugs;
  Vendor vendor;
  std::function<Result(Checker&)> check;
  std::vector<std::string> words;
};

Bugs With(std::function<void(Bugs&)> f) {
  Bugs b;
  f(b);
  return b;
}

std::vector<BugCase> BugCases() {
  auto lower = [](GuestExit e) { return [e](Checker& c) { return c.LowerBound(e); }; };
  return {
      {"LostUpdatesFailLowerBound", With([](Bugs& b) { b.lost_updates = true; }), Vendor::kSvm,
       lower(GuestExit::kCpuid), {"cpuid on 2 vCPUs", "expected at least", "shortfall"}},
      {"LostUpdatesFailExactness", With([](Bugs& b) { b.lost_updates = true; }), Vendor::kVmx,
       [](Checker& c) { return c.ExactCpuid(); }, {"cpuid on 2 vCPUs", "shortfall", "lost updates"}},
      {"RacyBackwardsFailTornReads", With([](Bugs& b) { b.racy_backwards = true; }), Vendor::kSvm,
       [](Checker& c) { return c.TornReads(); }, {"backwards read", "vCPU"}},
      {"TornReadsFail", With([](Bugs& b) { b.torn_reads = true; }), Vendor::kSvm,
       [](Checker& c) { return c.TornReads(); }, {"cycles", "about 2^32: torn 64-bit read"}},
      {"OffByOneBoundFailsSweep", With([](Bugs& b) { b.off_by_one_bound = true; }), Vendor::kSvm,
       [](Checker& c) { return c.UndefinedVersusNotHandled(); }, {"reason 78", "undefined by the SDM"}},
      {"ZerosForUndefinedFailSweep", With([](Bugs& b) { b.zeros_for_undefined = true; }),
       Vendor::kVmx, [](Checker& c) { return c.UndefinedVersusNotHandled(); },
       {"reason 35", "edx=ffffffff", "observed eax=00000000 ebx=00000000 ecx=00000000 edx=00000000"}},
      {"TruncatedEcxFailsSweep", With([](Bugs& b) { b.truncates_ecx = true; }), Vendor::kSvm,
       [](Checker& c) { return c.UndefinedVersusNotHandled(); }, {"reason 266", "undefined"}},
      {"FallThroughClobberFailsRegisters", With([](Bugs& b) { b.fallthrough_clobber = true; }),
       Vendor::kSvm, [](Checker& c) { return c.LeafRegisters(); }, {"reason 10", "fall-through"}},
      {"FallThroughClobberFailsSweep", With([](Bugs& b) { b.fallthrough_clobber = true; }),
       Vendor::kVmx, [](Checker& c) { return c.UndefinedVersusNotHandled(); }, {"handled on VMX"}},
      {"FastpathNotCountedFailsWrmsr", With([](Bugs& b) { b.fastpath_not_counted = true; }),
       Vendor::kVmx, lower(GuestExit::kWrmsrFast),
       {"wrmsr_fastpath on 2 vCPUs", "reason 32", "shortfall 6000"}},
      {"FastpathNotCountedFailsSvmHlt", With([](Bugs& b) { b.fastpath_not_counted = true; }),
       Vendor::kSvm, lower(GuestExit::kHlt), {"hlt on 2 vCPUs", "reason 12", "shortfall"}},
      {"CyclesNotTimedFailCycles", With([](Bugs& b) { b.cycles_not_timed = true; }), Vendor::kSvm,
       [](Checker& c) { return c.Cycles(); }, {"total cycles", "not timed"}},
      {"CyclesNotTimedFailLowerBound", With([](Bugs& b) { b.cycles_not_timed = true; }),
       Vendor::kVmx, lower(GuestExit::kIoUser), {"io_user on 2 vCPUs", "reason 30 cycles", "not timed"}},
      {"CyclesNotTimedFailRegisters", With([](Bugs& b) { b.cycles_not_timed = true; }),
       Vendor::kVmx, [](Checker& c) { return c.LeafRegisters(); }, {"0 cycles", "not timed"}},
      {"DoubleCountingFailsExactness", With([](Bugs& b) { b.double_count_cpuid = true; }),
       Vendor::kSvm, [](Checker& c) { return c.ExactCpuid(); }, {"too many", "double counting"}},
      {"OrdinaryLeafClobberFails", With([](Bugs& b) { b.ordinary_leaf_clobbered = true; }),
       Vendor::kSvm, [](Checker& c) { return c.OrdinaryLeaves(); }, {"0x40000000", "KVMKVMKVM"}},
      {"TotalMissingIoFailsLowerBound", With([](Bugs& b) { b.total_misses_io = true; }),
       Vendor::kSvm, lower(GuestExit::kIoUser), {"io_user on 2 vCPUs", "total exits rose by"}},
      {"TotalMissingIoFailsSumOnVmx", With([](Bugs& b) { b.total_misses_io = true; }),
       Vendor::kVmx, [](Checker& c) {
         c.LowerBound(GuestExit::kIoUser);  // leaves I/O exits behind
         return c.TotalsSum();
       },
       {"sum over SDM reasons", "falls short of"}},
      {"TotalMissingIoFailsRawSumOnSvm", With([](Bugs& b) { b.total_misses_io = true; }),
       Vendor::kSvm, [](Checker& c) {
         c.LowerBound(GuestExit::kIoUser);
         return c.TotalsSum();
       },
       {"sum over tracked raw SVM codes"}},
      {"U32ReasonCountsFailLowerBoundWhenSeeded", With([](Bugs& b) {
         b.u32_reason_counts = true;
         b.seed = 0xFFFFFF00;
       }),
       Vendor::kSvm, lower(GuestExit::kRdmsr), {"rdmsr on 2 vCPUs", "went backwards"}},
      {"U32ReasonCountsFailTornReadsWhenSeeded", With([](Bugs& b) {
         b.u32_reason_counts = true;
         b.seed = 0xFFFFFF00;
       }),
       Vendor::kVmx, [](Checker& c) { return c.TornReads(); }, {"reason 10 exits (64-bit)", "backwards"}},
  };
}

class BuggyHost : public ::testing::TestWithParam<BugCase> {};

TEST_P(BuggyHost, TheCheckFailsNamingWhatWentWrong) {
  const BugCase& bc = GetParam();
  ModelEnv env(bc.bugs, bc.vendor);
  Checker c(env, kSjsu, SmallConfig());
  Result r = bc.check(c);
  EXPECT_EQ(r.status, Result::Status::kFail) << r.Text();
  for (const std::string& w : bc.words) EXPECT_NE(r.Text().find(w), std::string::npos) << "missing \"" << w << "\" in:\n" << r.Text();
}

INSTANTIATE_TEST_SUITE_P(Mutants, BuggyHost, ::testing::ValuesIn(BugCases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Checks, UnavailableTriggerSkipsWithItsReasonAndPartialStatus) {
  ModelEnv env;
  env.SetUnavailable(GuestExit::kRdmsr, "not root: /dev/cpu/N/msr needs root");
  Checker c(env, kSjsu, SmallConfig());
  Result r = c.LowerBound(GuestExit::kRdmsr);
  EXPECT_EQ(r.status, Result::Status::kSkip);
  EXPECT_NE(r.Text().find("rdmsr: not root"), std::string::npos) << r.Text();
  EXPECT_EQ(ExitStatus({c.LowerBound(GuestExit::kCpuid), r}, true, false), kExitPartial);
}

// A correct patch with the course leaves alone (no discovery leaf, no 64-bit
// leaves) passes under the course rubric: the extension checks are not
// applicable, never a skip or a failure of the run. At assignment 2 the
// per-reason checks are not applicable too.
class CourseOnlyHost
    : public ::testing::TestWithParam<std::tuple<Vendor, size_t, LeafShape, Profile>> {};

TEST_P(CourseOnlyHost, PassesUnderTheCourseRubric) {
  auto [vendor, cpus, shape, profile] = GetParam();
  Bugs b;
  b.shape = shape;
  ModelEnv env(b, vendor, true, profile);
  Checker c(env, kSjsu, SmallConfig(cpus));
  EXPECT_FALSE(c.discovery());
  EXPECT_TRUE(c.patched());
  EXPECT_EQ(c.client().profile().name, profile.name) << c.found().Summary();
  EXPECT_EQ(c.assignment(), shape == LeafShape::kA2 ? 2 : 3) << c.found().Summary();
  EXPECT_NE(c.HostWords().find("course leaves only"), std::string::npos) << c.HostWords();
  std::vector<Result> all = RunAll(c);
  for (const Result& r : all)
    EXPECT_TRUE(r.status == Result::Status::kPass || r.status == Result::Status::kNotApplicable)
        << r.check << " " << r.exit << ":\n" << r.Text() << c.found().Summary();
  EXPECT_EQ(all[0].status, Result::Status::kNotApplicable);  // discovery: an extension
  EXPECT_EQ(ExitStatus(all, c.patched(), false), kExitPass);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CourseOnlyHost,
    ::testing::Values(std::tuple{Vendor::kVmx, size_t{4}, LeafShape::kCourse, kSjsu},
                      std::tuple{Vendor::kSvm, size_t{2}, LeafShape::kCourse, kSjsu},
                      std::tuple{Vendor::kVmx, size_t{2}, LeafShape::kCourse, kF22},
                      std::tuple{Vendor::kVmx, size_t{4}, LeafShape::kA2, kSjsu},
                      std::tuple{Vendor::kSvm, size_t{2}, LeafShape::kA2, kSjsu}));

TEST(CourseOnlyHost, StrictRubricWantsTheExtensionLeaves) {
  Bugs b;
  b.shape = LeafShape::kCourse;
  ModelEnv env(b, Vendor::kVmx);
  Config cfg = SmallConfig();
  cfg.rubric = Rubric::kStrict;
  Checker c(env, kSjsu, cfg);
  Result r = c.DiscoveryLeaf();
  EXPECT_EQ(r.status, Result::Status::kFail);
  EXPECT_NE(r.Text().find("[extension leaves]"), std::string::npos) << r.Text();
}

TEST(CourseOnlyHost, AssignmentThreeAskedOfAnAssignmentTwoPatchNamesTheMissingLeaves) {
  Bugs b;
  b.shape = LeafShape::kA2;
  ModelEnv env(b, Vendor::kVmx);
  Config cfg = SmallConfig();
  cfg.assignment = 3;
  Checker c(env, kSjsu, cfg);
  Result r = c.LeafRegisters();
  EXPECT_EQ(r.status, Result::Status::kFail);
  EXPECT_NE(r.Text().find("0x4FFFFFFC: per-reason cycles expected, answers like unpatched CPUID"),
            std::string::npos)
      << r.Text();
  EXPECT_NE(r.Text().find("[leaf not implemented / falls through]"), std::string::npos);
}

// The student bug classes on a course-only host: each is caught and named.
struct CourseBug {
  const char* name;
  std::function<void(Bugs&)> bug;
  size_t cpus;
  std::function<Result(Checker&)> check;
  std::string_view klass;
};

class CourseOnlyBuggyHost : public ::testing::TestWithParam<CourseBug> {};

TEST_P(CourseOnlyBuggyHost, IsCaughtWithItsBugClass) {
  const CourseBug& cb = GetParam();
  Bugs b;
  b.shape = LeafShape::kCourse;
  cb.bug(b);
  ModelEnv env(b, Vendor::kVmx);
  Checker c(env, kSjsu, SmallConfig(cb.cpus));
  Result r = cb.check(c);
  EXPECT_EQ(r.status, Result::Status::kFail) << r.Text();
  EXPECT_NE(r.Text().find("[" + std::string(cb.klass) + "]"), std::string::npos) << r.Text();
}

INSTANTIATE_TEST_SUITE_P(
    StudentBugs, CourseOnlyBuggyHost,
    ::testing::Values(
        CourseBug{"PlainIncrementLosesUpdates", [](Bugs& b) { b.lost_updates = true; }, 4,
                  [](Checker& c) { return c.ExactCpuid(); }, bug::kLostUpdates},
        CourseBug{"CountingOnlyInHandleExitMissesFastpath",
                  [](Bugs& b) { b.fastpath_not_counted = true; }, 2,
                  [](Checker& c) { return c.LowerBound(GuestExit::kWrmsrFast); }, bug::kFastpath},
        // HLT is a fastpath exit on VMX too (KVM 6.12): missing it is not a lost update.
        CourseBug{"CountingOnlyInHandleExitMissesFastpathHlt",
                  [](Bugs& b) { b.fastpath_not_counted = true; }, 2,
                  [](Checker& c) { return c.LowerBound(GuestExit::kHlt); }, bug::kFastpath},
        CourseBug{"HiLoReadTears", [](Bugs& b) { b.torn_reads = true; }, 2,
                  [](Checker& c) { return c.TornReads(); }, bug::kTornRead},
        CourseBug{"UnboundedIndex", [](Bugs& b) { b.truncates_ecx = true; }, 2,
                  [](Checker& c) { return c.UndefinedVersusNotHandled(); }, bug::kEcx},
        CourseBug{"MissingElseFallsThrough", [](Bugs& b) { b.fallthrough_clobber = true; }, 2,
                  [](Checker& c) { return c.LeafRegisters(); }, bug::kRegisters},
        CourseBug{"UndefinedAnsweredWithZeros", [](Bugs& b) { b.zeros_for_undefined = true; }, 2,
                  [](Checker& c) { return c.UndefinedVersusNotHandled(); }, bug::kUndefined}),
    [](const auto& info) { return std::string(info.param.name); });

// exit_stress's rows are the catalogue's stressed rows, in its order, each
// with an operation to drive it. Catches: a filter that drops or reorders
// rows, a stressed row without a user-mode operation, and a lost alias for
// the name exit_stress used before it took the catalogue's.
TEST(GuestExitTable, IsTheCataloguesStressedRows) {
  std::vector<exitstats::ExitKind> want, got;
  for (const exitstats::ExitType& e : exitstats::Catalogue())
    if (e.user.stressed) want.push_back(e.kind);
  for (const exitstats::ExitType& row : GuestExits()) {
    got.push_back(row.kind);
    EXPECT_NE(row.user.op, exitstats::UserOp::kNone) << row.name;
    EXPECT_GE(row.user.ops_divisor, 1u) << row.name;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(GuestExitByName("io"), GuestExit::kIoUser);
  EXPECT_EQ(GuestExitByName("io_user"), GuestExit::kIoUser);
  EXPECT_EQ(GuestExitByName("first_touch"), std::nullopt);  // not stressed
}

TEST(Checks, NumberingIsFoundByBehaviour) {
  ModelEnv f22({}, Vendor::kSvm, true, kF22);
  Checker c(f22, kSjsu, SmallConfig());
  EXPECT_EQ(c.client().profile().name, "f22");
  EXPECT_EQ(c.DiscoveryLeaf().status, Result::Status::kPass) << c.DiscoveryLeaf().Text();
}

TEST(Checks, ProfileMismatchIsNamed) {
  Config forced = SmallConfig();
  forced.profile_forced = true;  // --profile given: used as it is, and checked
  ModelEnv sjsu;
  Checker c(sjsu, kF22, forced);
  Result r = c.DiscoveryLeaf();
  EXPECT_EQ(r.status, Result::Status::kFail);
  EXPECT_NE(r.Text().find("--profile sjsu"), std::string::npos) << r.Text();
  ModelEnv f22({}, Vendor::kSvm, true, kF22);
  Checker c2(f22, kSjsu, forced);
  EXPECT_NE(c2.DiscoveryLeaf().Text().find("--profile f22"), std::string::npos);
  // Reading f22 leaves with the sjsu layout is caught by the register checks.
  EXPECT_EQ(c2.LeafRegisters().status, Result::Status::kFail);
}

TEST(Checks, LowerBoundReportsExpectedAndObserved) {
  ModelEnv env({}, Vendor::kVmx);
  Checker c(env, kSjsu, SmallConfig(4));
  Result r = c.LowerBound(GuestExit::kRdmsr);
  ASSERT_TRUE(r.pass()) << r.Text();
  EXPECT_TRUE(r.has_counts);
  EXPECT_EQ(r.vcpus, 4);
  EXPECT_EQ(r.expected, 4u * 3000u);
  EXPECT_EQ(r.observed, 4u * 3000u);  // the model has no other MSR exits
}

TEST(Checks, ExactCpuidAccountsForItsOwnQueries) {
  ModelEnv env({}, Vendor::kSvm);
  Checker c(env, kSjsu, SmallConfig());
  Result r = c.ExactCpuid();
  ASSERT_TRUE(r.pass()) << r.Text();
  EXPECT_EQ(r.observed, r.expected);
  EXPECT_EQ(r.expected, 2u * 3000u + 1u);  // the work plus the closing query
}

TEST(RunOnCpus, EachWorkerKeepsItsOwnTally) {
  ModelEnv env;
  std::vector<uint64_t> t =
      RunOnCpus(env, {0, 1, 2}, [](size_t w, int cpu) { return uint64_t(w * 10 + cpu); });
  EXPECT_EQ(t, (std::vector<uint64_t>{0, 11, 22}));
}

TEST(Report, JsonAndTableCarryExpectedObservedAndShortfall) {
  Result ok;
  ok.check = "lower_bound";
  ok.exit = "cpuid";
  ok.vcpus = 2;
  ok.has_counts = true;
  ok.expected = 100;
  ok.observed = 120;
  Result bad = ok;
  bad.exit = "io";
  bad.observed = 90;
  bad.Fail("io on 2 vCPUs: ... shortfall 10");
  RunInfo info{"sjsu", "SVM", {0, 1}, 1000, "", "patched: full ABI", "course", 3, ""};
  std::string j = JsonSummary({ok, bad}, info, kExitFail);
  EXPECT_NE(j.find("\"cpuid\": {\"vcpus\": 2, \"expected\": 100, \"observed\": 120, \"pass\": true"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"io\": {\"vcpus\": 2, \"expected\": 100, \"observed\": 90, \"pass\": false"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"exit_status\": 1"), std::string::npos);
  std::string t = SummaryTable({ok, bad});
  EXPECT_NE(t.find("FAIL"), std::string::npos);
  EXPECT_NE(t.find(" 10 "), std::string::npos) << t;
  EXPECT_EQ(ExitStatus({ok, bad}, true, false), kExitFail);
}

}  // namespace
}  // namespace exitstats::guest
