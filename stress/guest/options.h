// Command-line flags of exit_stress (README.md "Flags"). GoogleTest's own
// --gtest_* flags pass through untouched.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "env.h"

namespace exitstats::guest {

struct Options {
  std::string profile = "sjsu";
  bool profile_given = false;   // --profile on the command line: use it, do not guess
  std::string leaf_map;         // --leaf-map: a numbering of one's own
  std::string rubric = "course";
  int assignment = 0;           // --assignment 2|3; 0: the level the leaves show
  uint64_t iterations = 10000;
  std::string cpus;  // "" = every online CPU; "N" = the first N; "0,2-3" = a list
  std::vector<GuestExit> exits;  // default: every row of GuestExits()
  std::string junit, json;
  double torn_seconds = 15.0;
  uint64_t torn_reads = 0;  // 0: no cap
  uint64_t seed = 1;
  uint32_t random_ecx = 4096;
  bool help = false;
  bool dry_run = false;  // run the triggers only, no host needed
  bool show = false;     // --show: print the leaves' answers, check nothing
  double watch = 0;      // --watch S: with --show, sample every S seconds
  uint32_t samples = 10; // --samples N: how many --watch samples
  std::vector<std::string> passthrough;  // --gtest_* and the like, for InitGoogleTest
};

// Parses argv[1..]. Returns "" or a message for a usage error (exit 2).
std::string ParseOptions(const std::vector<std::string>& args, Options* out);

// The CPUs to run on, from --cpus and the online set; "" or an error.
std::string ResolveCpus(const std::string& spec, const std::vector<int>& online,
                        std::vector<int>* out);

std::string Usage();

// Exit statuses (README.md "Exit statuses").
inline constexpr int kExitPass = 0;        // every selected check ran and passed
inline constexpr int kExitFail = 1;        // at least one check failed
inline constexpr int kExitUsage = 2;       // bad flags, or no check selected
inline constexpr int kExitPartial = 3;     // nothing failed, but some checks skipped
inline constexpr int kExitNoHost = 77;     // no patched host: every check skipped

}  // namespace exitstats::guest
