// boot_profile's JSON against a model host that counts its own queries, as
// the patch does (each CPUID is an exit, counted before it is answered).
#include "boot_profile.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>

#include "exitstats/reasons.h"

namespace {

using exitstats::Regs;

struct ModelHost {
  bool course_only = false;  // a student's patch: no discovery or 64-bit leaves
  std::map<uint32_t, uint64_t> exits{{1, 7}, {10, 100}, {30, 5000000000ull}, {48, 3}};
  std::map<uint32_t, uint64_t> cycles{{1, 70}, {10, 1000}, {30, 9000}, {48, 300}};
  uint64_t total() const {
    uint64_t s = 0;
    for (auto& [r, e] : exits) s += e;
    return s;
  }
  Regs operator()(uint32_t leaf, uint32_t sub) {
    ++exits[10];  // this CPUID
    const bool defined = exitstats::IsDefined(sub);
    auto hi = [](uint64_t v) { return uint32_t(v >> 32); };
    auto lo = [](uint64_t v) { return uint32_t(v); };
    uint64_t cyc = 0;
    for (auto& [r, c] : cycles) cyc += c;
    if (course_only && leaf >= 0x4FFFFFF0 && leaf <= 0x4FFFFFF3) return {};
    switch (leaf) {
      case 0x4FFFFFF0:
        return {0x5453584B, 1, 77, 2};
      case 0x4FFFFFF1:
        return {0, hi(total()), lo(total()), 0};
      case 0x4FFFFFFF:
      case 0x4FFFFFFE:
        return {lo(total()), hi(cyc), lo(cyc), 0};
      case 0x4FFFFFFD:
        return defined ? Regs{lo(exits[sub]), 0, 0, 0} : Regs{0, 0, 0, ~0u};
      case 0x4FFFFFFC:
        return defined ? Regs{0, hi(cycles[sub]), lo(cycles[sub]), 0} : Regs{0, 0, 0, ~0u};
      case 0x4FFFFFF2:
        return defined ? Regs{0, hi(exits[sub]), lo(exits[sub]), 0} : Regs{0, 0, 0, ~0u};
    }
    return {};
  }
};

uint64_t Field(const std::string& json, const std::string& name) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(json, m, std::regex("\"" + name + "\": ([0-9]+)"))) << name;
  return m.empty() ? 0 : std::stoull(m[1]);
}

std::string ReasonLine(const std::string& json, uint32_t reason) {
  std::smatch m;
  std::regex re("\\{\"reason\": " + std::to_string(reason) + ",[^}]*\\}");
  EXPECT_TRUE(std::regex_search(json, m, re)) << reason;
  return m.empty() ? "" : m[0].str();
}

TEST(BootProfileTest, ReportsEveryReasonAndTotals) {
  auto host = std::make_shared<ModelHost>();
  exitstats::Client client(exitstats::kSjsu,
                           [host](uint32_t l, uint32_t s) { return (*host)(l, s); });
  const std::string j = bench::BootProfileJson(client, {"first_user_instruction", 1.5, 2});
  // Bug caught: 0..77 not all listed (off-by-one on the highest reason).
  EXPECT_NE(j.find("{\"reason\": 77,"), std::string::npos);
  EXPECT_EQ(j.find("{\"reason\": 78,"), std::string::npos);
  // Bug caught: the 32-bit course leaf used instead of the 64-bit count.
  EXPECT_NE(ReasonLine(j, 30).find("\"exits\": 5000000000"), std::string::npos)
      << ReasonLine(j, 30);
  EXPECT_NE(ReasonLine(j, 30).find("\"cycles\": 9000"), std::string::npos);
  // Bug caught: an undefined reason shown as a counted zero.
  EXPECT_NE(ReasonLine(j, 35).find("\"status\": \"undefined\""), std::string::npos);
  EXPECT_NE(ReasonLine(j, 12).find("\"status\": \"counted\", \"exits\": 0"), std::string::npos);
  // The queries are exits, counted before they are answered: after the
  // start read come 2 course total reads, 2 per reason 0..77 (78 reasons)
  // and the end read, which sees itself.
  const uint64_t start = Field(j, "total_exits"), end = Field(j, "total_exits_end");
  EXPECT_EQ(end - start, 2u + 2u * 78u + 1u);
  EXPECT_EQ(Field(j, "query_exits"), end - start);
  // Sum over reasons is read between the two totals.
  EXPECT_GT(Field(j, "sum_over_reasons"), start);
  EXPECT_LT(Field(j, "sum_over_reasons"), end);
  EXPECT_NE(j.find("\"vendor\": \"svm\""), std::string::npos);
  EXPECT_NE(j.find("\"stage\": \"first_user_instruction\""), std::string::npos);
}

TEST(BootProfileTest, CourseOnlyHostIsProfiledFromTheCourseLeaves) {
  // Bug caught: a student's course-only patch (no discovery leaf) reported as
  // an unpatched host, with no boot profile at all.
  auto host = std::make_shared<ModelHost>();
  host->course_only = true;
  exitstats::Client client(exitstats::kSjsu,
                           [host](uint32_t l, uint32_t s) { return (*host)(l, s); });
  const std::string j = bench::BootProfileJson(client, {"first_user_instruction", 1.5, 2});
  EXPECT_NE(j.find("\"patched\": true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"leaves\": \"course\""), std::string::npos);
  EXPECT_NE(j.find("{\"reason\": 77,"), std::string::npos);
  // The course leaf's EAX: the low 32 bits of 5000000000.
  EXPECT_NE(ReasonLine(j, 30).find("\"exits\": 705032704"), std::string::npos)
      << ReasonLine(j, 30);
  EXPECT_NE(ReasonLine(j, 35).find("\"status\": \"undefined\""), std::string::npos);
  EXPECT_EQ(j.find("\"vendor\""), std::string::npos);
}

TEST(BootProfileTest, UnpatchedHostSaysSo) {
  // Bug caught: Intel's answer to an unknown leaf (highest basic leaf data)
  // taken for statistics.
  exitstats::Client client(exitstats::kSjsu, [](uint32_t, uint32_t) {
    return Regs{0x16, 0x756e6547, 0x6c65746e, 0x49656e69};
  });
  const std::string j = bench::BootProfileJson(client, {"first_user_instruction"});
  EXPECT_NE(j.find("\"patched\": false"), std::string::npos);
  EXPECT_NE(j.find("no exit-statistics leaves"), std::string::npos);
  EXPECT_EQ(j.find("\"reasons\""), std::string::npos);
}

}  // namespace
