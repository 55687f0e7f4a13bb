// The command-line loop both exit benchmarks share (guest_exit_benchmark,
// ring0_exit_benchmark): after benchmark::Initialize has taken Google
// Benchmark's own flags, each benchmark's own flags are one table (name,
// help, how to apply it), from which both the parsing and the flag list of
// the unknown-flag message come, so the two cannot drift apart.
// --max_vcpus and the all-CPUs default are here.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "parallel.h"

namespace bench {

// One of a benchmark's own flags. A name ending in '=' takes a value (the
// rest of the argument); any other name is matched whole and applied with
// an empty value. `apply` returns false for a value it has already
// complained about.
struct OwnFlag {
  const char* name;  // "--profile=" or "--no_wrmsr"
  const char* help;  // what follows the name in the flag list, e.g. "sjsu|f22"
  std::function<bool(const char* value)> apply;
};

// Parses argv[1..argc): --max_vcpus=N into *max_vcpus (0 or less, or absent:
// every CPU this process may run on), anything else through `own`. An unknown
// flag prints "unknown flag X" and the flag list (Google Benchmark's,
// --max_vcpus and then `own`). Returns 0, or 2 (the exit status) for an
// unknown or bad flag.
inline int ParseFlags(int argc, char** argv, int* max_vcpus, const std::vector<OwnFlag>& own) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strncmp(a, "--max_vcpus=", 12) == 0) {
      *max_vcpus = std::atoi(a + 12);
      continue;
    }
    const OwnFlag* flag = nullptr;
    for (const OwnFlag& f : own) {
      const size_t n = std::strlen(f.name);
      const bool takes_value = n && f.name[n - 1] == '=';
      if (takes_value ? std::strncmp(a, f.name, n) == 0 : std::strcmp(a, f.name) == 0) flag = &f;
    }
    if (flag) {
      if (!flag->apply(a + std::strlen(flag->name))) return 2;
      continue;
    }
    std::string list;
    for (const OwnFlag& f : own) list += std::string(", ") + f.name + f.help;
    std::fprintf(stderr, "unknown flag %s\nflags: Google Benchmark's, --max_vcpus=N (default: all CPUs)%s\n",
                 a, list.c_str());
    return 2;
  }
  if (*max_vcpus <= 0) *max_vcpus = OnlineCpus();
  return 0;
}

}  // namespace bench
