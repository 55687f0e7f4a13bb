// harness_test: gtest main plus our options (flags win over environment):
//   --abi-profile=sjsu|f22      HARNESS_ABI_PROFILE      (default sjsu)
//   --iterations-scale=X        HARNESS_ITERATIONS_SCALE (default 1; e.g. 0.1
//                                                         under Bochs)
//   --rubric=course|strict      HARNESS_RUBRIC           (default strict;
//                                   course: a host without the discovery
//                                   leaf is judged by its course leaves)
//   --clock=deterministic|free  HARNESS_CLOCK            (default free;
//                                   deterministic: the TSC follows executed
//                                   instructions, as under Bochs)
#include <gtest/gtest.h>

#include <cstdio>

#include "harness_env.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::string error;
  if (!harness_test::ParseOptions(&argc, argv, &error)) {
    std::fprintf(stderr, "harness_test: %s\n", error.c_str());
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    std::fprintf(stderr, "harness_test: unknown argument %s\n", argv[i]);
    return 2;
  }
  std::fprintf(stderr, "harness_test: ABI profile %s, iterations scale %g, rubric %s, clock %s\n",
               std::string(harness_test::config().profile.name).c_str(),
               harness_test::config().scale, harness_test::config().course ? "course" : "strict",
               harness_test::config().deterministic_clock ? "deterministic" : "free");
  if (auto off = harness_test::FastpathOff())
    std::fprintf(stderr, "harness_test: note: %s\n", off->c_str());
  std::string why;
  if (harness_test::config().course && harness_test::KvmOrWhy(&why)) {
    // Once per run: what the course-leaf probe found (tests quote it on skip).
    if (const auto* f = harness_test::Facts(&why); f && !f->course_probe.empty())
      std::fprintf(stderr, "harness_test: %s\n", f->course_probe.c_str());
  }
  return RUN_ALL_TESTS();
}
