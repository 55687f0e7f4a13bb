// The human summary table and the JSON summary of a run, and the exit status.
#pragma once

#include <string>
#include <vector>

#include "checks.h"

namespace exitstats::guest {

struct RunInfo {
  std::string profile;
  std::string vendor;  // "SVM", "VMX" or "" when no patched host
  std::vector<int> cpus;
  uint64_t iterations = 0;
  std::string absence;  // why the host is not patched, or ""
  std::string host;     // Checker::HostWords()
  std::string rubric;   // "course" or "strict"
  int assignment = 0;   // level judged
  std::string leaves;   // FoundLeaves::Summary()
};

// One line per check: check, exit, vCPUs, expected, observed, shortfall, status.
std::string SummaryTable(const std::vector<Result>& results);

// {"profile":..., "vcpus":..., "exit_status":..., "checks":[...], "exits":{name:
// {"vcpus","expected","observed","pass"}}}
std::string JsonSummary(const std::vector<Result>& results, const RunInfo& info, int exit_status);

// kExitFail if a check failed (or GoogleTest saw a failure), kExitNoHost when
// the host is not patched, kExitPartial when something skipped, else kExitPass.
int ExitStatus(const std::vector<Result>& results, bool host_present, bool gtest_failed);

std::string JsonEscape(const std::string& s);

}  // namespace exitstats::guest
