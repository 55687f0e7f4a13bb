// The command-line loop both exit benchmarks share (guest_exit_benchmark,
// ring0_exit_benchmark): after benchmark::Initialize has taken Google
// Benchmark's own flags, each benchmark passes its own flags to a callback;
// --max_vcpus, the unknown-flag message and the all-CPUs default are here.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "parallel.h"

namespace bench {

// What a benchmark's own flag callback made of one argument.
enum class Flag {
  kTaken,    // one of its flags, applied
  kUnknown,  // not one of its flags
  kBad,      // one of its flags, with a value it has already complained about
};

// Parses argv[1..argc): --max_vcpus=N into *max_vcpus (0 or less, or absent:
// every CPU this process may run on), anything else through `own`. An unknown
// flag prints "unknown flag X" and the flag list (Google Benchmark's,
// --max_vcpus and then `own_help`). Returns 0, or 2 (the exit status) for an
// unknown or bad flag.
inline int ParseFlags(int argc, char** argv, int* max_vcpus, const char* own_help,
                      const std::function<Flag(const std::string& arg)>& own) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--max_vcpus=", 0) == 0) {
      *max_vcpus = std::atoi(a.c_str() + 12);
      continue;
    }
    switch (own(a)) {
      case Flag::kTaken:
        continue;
      case Flag::kBad:
        return 2;
      case Flag::kUnknown:
        std::fprintf(stderr,
                     "unknown flag %s\nflags: Google Benchmark's, --max_vcpus=N (default: all "
                     "CPUs), %s\n",
                     argv[i], own_help);
        return 2;
    }
  }
  if (*max_vcpus <= 0) *max_vcpus = OnlineCpus();
  return 0;
}

}  // namespace bench
