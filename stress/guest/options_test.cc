#include "options.h"

#include <gtest/gtest.h>

namespace exitstats::guest {
namespace {

TEST(Options, DefaultsSelectEveryExitType) {
  Options o;
  ASSERT_EQ(ParseOptions({}, &o), "");
  EXPECT_EQ(o.profile, "sjsu");
  EXPECT_EQ(o.iterations, 10000u);
  EXPECT_EQ(o.exits.size(), GuestExits().size());
}

TEST(Options, ParsesEveryFlagBothSpellings) {
  Options o;
  ASSERT_EQ(ParseOptions({"--abi", "f22", "--iterations=500", "--cpus", "0,1", "--exits",
                          "io,cpuid", "--junit", "/tmp/x.xml", "--json=/tmp/y.json",
                          "--torn-seconds", "2.5", "--torn-reads", "1000", "--seed", "7", "--random-ecx", "10",
                          "--gtest_filter=Conformance.*"},
                         &o),
            "");
  EXPECT_EQ(o.profile, "f22");
  EXPECT_EQ(o.iterations, 500u);
  EXPECT_EQ(o.cpus, "0,1");
  EXPECT_EQ(o.exits, (std::vector<GuestExit>{GuestExit::kIoUser, GuestExit::kCpuid}));
  EXPECT_EQ(o.json, "/tmp/y.json");
  EXPECT_DOUBLE_EQ(o.torn_seconds, 2.5);
  EXPECT_EQ(o.torn_reads, 1000u);
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.random_ecx, 10u);
  // --junit maps onto GoogleTest's own XML output; gtest flags pass through.
  EXPECT_EQ(o.passthrough,
            (std::vector<std::string>{"--gtest_filter=Conformance.*", "--gtest_output=xml:/tmp/x.xml"}));
}

TEST(Options, UsageErrorsAreNamed) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {{"--bogus"}, "unknown flag --bogus"},
           {{"--profile", "s23"}, "unknown profile s23"},
           {{"--iterations", "0"}, "--iterations needs a positive integer"},
           {{"--iterations", "12x"}, "--iterations needs a positive integer"},
           {{"--exits", "cpuid,wbinvd"}, "wbinvd is not one exit_stress drives from user space (ring 0 only"},
           {{"--exits", "cpuid,nope"}, "unknown exit type nope"},
           {{"--json"}, "--json needs a value"},
           {{"--torn-seconds", "-1"}, "--torn-seconds needs a positive number"},
           {{"--torn-reads", "0"}, "--torn-reads needs a positive count"},
           {{"positional"}, "unknown flag positional"},
           {{"--rubric", "lenient"}, "--rubric wants course or strict"},
           {{"--assignment", "4"}, "--assignment wants 2 or 3"},
           {{"--leaf-map", "total=0x4FFFFFFF"}, "--leaf-map: leaf map needs all four keys"},
       }) {
    Options o;
    EXPECT_NE(ParseOptions(c.args, &o).find(c.error), std::string::npos) << c.error;
  }
}

TEST(Options, RubricAssignmentAndLeafMap) {
  Options o;
  ASSERT_EQ(ParseOptions({}, &o), "");
  EXPECT_EQ(o.rubric, "course");  // a student's run: what the assignment asks
  EXPECT_FALSE(o.profile_given);  // the numbering is found by behaviour
  ASSERT_EQ(ParseOptions({"--rubric", "strict", "--assignment=2", "--profile", "sjsu",
                          "--leaf-map",
                          "total=0x4FFFFFFC,cycles=0x4FFFFFFD,reason=0x4FFFFFFE,"
                          "reason_cycles=0x4FFFFFFF"},
                         &o),
            "");
  EXPECT_EQ(o.rubric, "strict");
  EXPECT_EQ(o.assignment, 2);
  EXPECT_TRUE(o.profile_given);
  EXPECT_FALSE(o.leaf_map.empty());
}

TEST(Options, ResolvesCpus) {
  std::vector<int> online = {0, 1, 2, 3}, out;
  EXPECT_EQ(ResolveCpus("", online, &out), "");
  EXPECT_EQ(out, online);
  EXPECT_EQ(ResolveCpus("2", online, &out), "");
  EXPECT_EQ(out, (std::vector<int>{0, 1}));
  EXPECT_EQ(ResolveCpus("3,0-1", online, &out), "");
  EXPECT_EQ(out, (std::vector<int>{0, 1, 3}));
  EXPECT_NE(ResolveCpus("5", online, &out).find("4 CPUs are online"), std::string::npos);
  EXPECT_NE(ResolveCpus("1,7", online, &out).find("CPU 7 is not online"), std::string::npos);
  EXPECT_NE(ResolveCpus("3-1", online, &out).find("bad range"), std::string::npos);
}

TEST(Options, HelpNamesEveryExitAndStatus) {
  std::string u = Usage();
  for (const auto& r : GuestExits()) EXPECT_NE(u.find(r.name), std::string::npos) << r.name;
  for (const char* s : {"0 every", "1 a check failed", "2 usage", "3 nothing failed", "77 no patched", "not applicable"})
    EXPECT_NE(u.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace exitstats::guest
