// The client against a software model of a host: what an unpatched AMD or
// Intel host answers, and what a patched host answers in each profile.
#include "exitstats/cpuid.h"

#include <gtest/gtest.h>

namespace exitstats {
namespace {

// Answers like the reference patch: totals 0x1'2345'6789 exits and
// 0xAB'CDEF'0123 cycles; reason r has r+1 exits and (r+1)*1000 cycles.
Regs PatchedModel(const Profile& p, uint32_t leaf, uint32_t sub) {
  const uint64_t exits = 0x123456789ull, cycles = 0xABCDEF0123ull;
  auto hi = [](uint64_t v) { return uint32_t(v >> 32); };
  auto lo = [](uint64_t v) { return uint32_t(v); };
  auto per_reason = [&](bool cycles_leaf, bool ext) -> Regs {
    if (!IsDefined(sub)) return {0, 0, 0, kUndefinedReasonEdx};
    if (!IsHandled(sub, Vendor::kSvm)) return {};
    uint64_t n = sub + 1, c = n * 1000;
    if (ext) return {0, hi(n), lo(n), 0};
    return cycles_leaf ? Regs{0, hi(c), lo(c), 0} : Regs{lo(n), 0, 0, 0};
  };
  if (leaf == leaf::kDiscovery) return {kSignature, 1, 77, flag::kSvm};
  if (leaf == leaf::kTotalExits64) return {0, hi(exits), lo(exits), 0};
  if (leaf == leaf::kReasonExits64) return per_reason(false, true);
  if (leaf == p.total_exits && leaf == p.total_cycles)
    return {lo(exits), hi(cycles), lo(cycles), 0};
  if (leaf == p.total_exits) return {lo(exits), p.name == "sjsu" ? hi(cycles) : 0,
                                     p.name == "sjsu" ? lo(cycles) : 0, 0};
  if (leaf == p.total_cycles) return {p.name == "sjsu" ? lo(exits) : 0, hi(cycles), lo(cycles), 0};
  if (leaf == p.reason_exits) return per_reason(false, false);
  if (leaf == p.reason_cycles) return per_reason(true, false);
  return {};
}

class ClientProfiles : public ::testing::TestWithParam<Profile> {};

TEST_P(ClientProfiles, DecodesEveryLeaf) {
  Profile p = GetParam();
  Client c(p, [p](uint32_t l, uint32_t s) { return PatchedModel(p, l, s); });
  ASSERT_TRUE(c.Discover().has_value());
  EXPECT_EQ(c.Discover()->vendor(), Vendor::kSvm);
  EXPECT_EQ(c.TotalExits32(), 0x23456789u);
  EXPECT_EQ(c.TotalExits64(), 0x123456789ull);
  EXPECT_EQ(c.TotalCycles(), 0xABCDEF0123ull);
  auto cpuid = c.ReasonExits32(reason::kCpuid);
  EXPECT_EQ(cpuid.kind, ReasonAnswer::Kind::kCounted);
  EXPECT_EQ(cpuid.value, 11u);
  EXPECT_EQ(c.ReasonCycles(reason::kCpuid).value, 11000u);
  EXPECT_EQ(c.ReasonExits64(reason::kCpuid).value, 11u);
  for (uint32_t undefined : {35u, 78u, 0xFFFFFFFFu}) {
    EXPECT_EQ(c.ReasonExits32(undefined).kind, ReasonAnswer::Kind::kUndefined);
    EXPECT_EQ(c.ReasonCycles(undefined).kind, ReasonAnswer::Kind::kUndefined);
  }
}

INSTANTIATE_TEST_SUITE_P(Both, ClientProfiles, ::testing::Values(kSjsu, kF22),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Client, UnpatchedHostsAreNotMistakenForStatistics) {
  // Unpatched AMD: zeros. Unpatched Intel: the highest basic leaf's data.
  Client amd(kSjsu, [](uint32_t, uint32_t) { return Regs{}; });
  EXPECT_FALSE(amd.Discover().has_value());
  Client intel(kSjsu, [](uint32_t, uint32_t) { return Regs{0x07300802, 0, 0, 0x2000}; });
  EXPECT_FALSE(intel.Discover().has_value());
  EXPECT_NE(intel.DescribeAbsence().find("no exit-statistics leaves"), std::string::npos);
}

TEST(Client, MalformedUndefinedAnswerIsFlagged) {
  // EDX=0xFFFFFFFF but a count in EAX: a patch that reads past its table.
  Client c(kSjsu, [](uint32_t, uint32_t) { return Regs{5, 0, 0, kUndefinedReasonEdx}; });
  EXPECT_EQ(c.ReasonExits32(35).kind, ReasonAnswer::Kind::kMalformed);
}

TEST(Client, ProfilesByName) {
  EXPECT_EQ(ProfileByName("sjsu")->total_exits, 0x4FFFFFFFu);
  EXPECT_EQ(ProfileByName("f22")->reason_cycles, 0x4FFFFFFFu);
  EXPECT_FALSE(ProfileByName("nope").has_value());
}

TEST(Client, NativeCpuidAnswersLeafZero) {
  Regs r = NativeCpuid(0, 0);
  EXPECT_GE(r.eax, 1u);  // every x86-64 CPU has leaf 1
}

}  // namespace
}  // namespace exitstats
