// FindLeaves against model hosts whose counters move as a real host's do:
// every CPUID is one reason-10 exit of 1,000 cycles.
#include "exitstats/leaf_finder.h"

#include <gtest/gtest.h>

namespace exitstats {
namespace {

struct ModelHost {
  Profile profile = kSjsu;
  unsigned leaves = 0xF;      // bit i: leaf 0x4FFFFFFC+i answers (else falls through)
  bool intel = false;         // unpatched answer: highest basic leaf's data, not zeros
  bool extensions = false;    // discovery leaf answers
  bool svm_codes = false;     // per-reason leaves keyed by SVM exit code (CPUID = 0x72)
  uint64_t exits = 0x1FFFFFF00ull, cycles = 0xFFFFF000ull;  // near a 32-bit wrap
  uint64_t cpuid_exits = 0;

  Regs Unknown(uint32_t sub) const {
    if (!intel) return {};
    return {0x1A2B3C4D, 0x5E6F7081, sub, 0x0F0F0F0F};  // constant, like leaf 0xD data
  }
  Regs operator()(uint32_t leaf, uint32_t sub) {
    ++exits, ++cpuid_exits, cycles += 1000;  // this query is itself an exit
    if (leaf == leaf::kDiscovery)
      return extensions ? Regs{kSignature, kAbiVersion, 77, flag::kVmx} : Unknown(sub);
    if (leaf < 0x4FFFFFFC || leaf > 0x4FFFFFFF) return leaf == 0 ? Regs{0xD, 1, 2, 3} : Unknown(sub);
    if (!(leaves & (1u << (leaf - 0x4FFFFFFC)))) return Unknown(sub);
    const bool cpuid_reason = sub == (svm_codes ? reason::kSvmCodeCpuid : reason::kCpuid);
    const uint64_t re = cpuid_reason ? cpuid_exits : 0, rc = re * 1000;
    auto lo = [](uint64_t v) { return uint32_t(v); };
    auto hi = [](uint64_t v) { return uint32_t(v >> 32); };
    const bool sjsu = profile.name == kSjsu.name;
    if (leaf == profile.total_exits || (sjsu && leaf == profile.total_cycles))
      return sjsu ? Regs{lo(exits), hi(cycles), lo(cycles), 0} : Regs{lo(exits), 0, 0, 0};
    if (leaf == profile.total_cycles) return {0, hi(cycles), lo(cycles), 0};
    if (leaf == profile.reason_exits) return {lo(re), 0, 0, 0};
    return {0, hi(rc), lo(rc), 0};
  }
};

FoundLeaves Find(ModelHost& h, std::optional<Profile> forced = std::nullopt) {
  return FindLeaves([&](uint32_t l, uint32_t s) { return h(l, s); }, 1000, {}, forced);
}

TEST(FindLeaves, SjsuCourseLeavesAloneAreAssignment3) {
  ModelHost h;
  FoundLeaves f = Find(h);
  ASSERT_TRUE(f.profile);
  EXPECT_EQ(f.profile->name, "sjsu");
  EXPECT_FALSE(f.ambiguous);
  EXPECT_EQ(f.assignment, 3);
  EXPECT_FALSE(f.extensions);
  EXPECT_TRUE(f.missing.empty()) << f.missing[0].text;
  EXPECT_TRUE(f.has(kRoleTotalExits) && f.has(kRoleReasonCycles));
  EXPECT_NE(f.Summary().find("0x4FFFFFFF: total exits + cycles"), std::string::npos) << f.Summary();
  EXPECT_NE(f.Summary().find("absent, extension checks not applicable"), std::string::npos);
}

TEST(FindLeaves, F22IsToldApartFromSjsuByBehaviour) {
  ModelHost h;
  h.profile = kF22;
  FoundLeaves f = Find(h);
  ASSERT_TRUE(f.profile);
  EXPECT_EQ(f.profile->name, "f22");
  EXPECT_EQ(f.assignment, 3);
  EXPECT_TRUE(f.misplaced.empty());
}

TEST(FindLeaves, Assignment2OnlyTotalLeaf) {
  ModelHost h;
  h.leaves = 1u << 3;  // 0x4FFFFFFF alone
  h.intel = true;
  FoundLeaves f = Find(h);
  ASSERT_TRUE(f.profile);
  EXPECT_EQ(f.profile->name, "sjsu");
  EXPECT_EQ(f.assignment, 2);
  EXPECT_TRUE(f.has(kRoleTotalCycles));
  EXPECT_FALSE(f.has(kRoleReasonExits));
  int optional = 0, required = 0;
  for (const auto& m : f.missing) (m.optional ? optional : required)++;
  EXPECT_EQ(optional, 1);  // 0x4FFFFFFE
  EXPECT_EQ(required, 2);  // 0x4FFFFFFD, 0x4FFFFFFC
}

TEST(FindLeaves, UnpatchedAmdAndIntelAreNeverCounters) {
  for (bool intel : {false, true}) {
    ModelHost h;
    h.leaves = 0;
    h.intel = intel;
    FoundLeaves f = Find(h);
    EXPECT_EQ(f.assignment, 0) << (intel ? "intel" : "amd");
    EXPECT_FALSE(f.any_counter());
    EXPECT_NE(f.Summary().find("no course leaf counts exits"), std::string::npos);
  }
}

TEST(FindLeaves, FallThroughLeafIsNamedAsUnpatchedAnswer) {
  ModelHost h;
  h.leaves = 0xF & ~1u;  // 0x4FFFFFFC answers KVM's ordinary data
  h.intel = true;
  FoundLeaves f = Find(h);
  EXPECT_EQ(f.assignment, 3);
  ASSERT_EQ(f.missing.size(), 1u);
  EXPECT_EQ(f.missing[0].leaf, 0x4FFFFFFCu);
  EXPECT_FALSE(f.missing[0].optional);
  EXPECT_NE(f.missing[0].text.find("answers like unpatched CPUID"), std::string::npos);
}

// An SVM submission that indexes its table by exit_code: the per-reason
// leaves count CPUID under 0x72, never under the SDM's 10. Fails if that is
// taken for "not implemented" alone, or if an SDM-keyed host is named so.
TEST(FindLeaves, PerReasonLeavesKeyedBySvmCodeAreNamed) {
  ModelHost h;
  h.svm_codes = true;
  FoundLeaves f = Find(h);
  EXPECT_EQ(f.assignment, 2);
  ASSERT_EQ(f.misplaced.size(), 1u);  // sjsu's per-reason exits leaf
  EXPECT_EQ(f.misplaced[0].rfind("0x4FFFFFFD: counts exits per SVM exit code", 0), 0u)
      << f.misplaced[0];
  ModelHost sdm;
  EXPECT_TRUE(Find(sdm).misplaced.empty());
}

TEST(FindLeaves, ExtensionsAreSeenWhenPresent) {
  ModelHost h;
  h.extensions = true;
  EXPECT_TRUE(Find(h).extensions);
}

TEST(FindLeaves, ForcedProfileThatDoesNotFitIsSaid) {
  ModelHost h;  // sjsu host
  FoundLeaves f = Find(h, kF22);
  EXPECT_EQ(f.profile->name, "f22");
  EXPECT_NE(f.profile_why.find("does not fit"), std::string::npos);
  EXPECT_FALSE(f.misplaced.empty());
}

TEST(ParseLeafMap, GoodAndBad) {
  std::string err;
  auto p = ParseLeafMap("total=0x4FFFFFFC,cycles=0x4FFFFFFD,reason=0x4FFFFFFE,reason_cycles=0x4FFFFFFF",
                        &err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->reason_cycles, 0x4FFFFFFFu);
  EXPECT_FALSE(ParseLeafMap("total=0x4FFFFFFC", &err));
  EXPECT_FALSE(ParseLeafMap("total=12,cycles=1,reason=2,reason_cycles=3", &err));
  EXPECT_FALSE(ParseLeafMap("bogus=0x4FFFFFFC", &err));
}

}  // namespace
}  // namespace exitstats
