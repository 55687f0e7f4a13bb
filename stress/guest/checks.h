// The checks of the guest stress binary, as plain functions over an Env so
// that they run against a real patched host (exit_stress) and against models
// of correct and buggy hosts (checks_test.cc). README.md says, per check,
// which bug makes it fail.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "env.h"
#include "exitstats/cpuid.h"

namespace exitstats::guest {

struct Config {
  std::vector<int> cpus;          // vCPUs to run on, one worker each
  uint64_t iterations = 10000;    // ops per vCPU per exit type (see iter_divisor)
  double torn_seconds = 15.0;     // upper bound on the torn-read phase
  uint32_t random_ecx = 4096;     // random sub-leaves in the conformance sweep
  uint64_t seed = 1;
  // Sane range for cycles per exit (host TSC cycles from exit to re-entry).
  uint64_t min_cycles_per_exit = 16;
  uint64_t max_cycles_per_exit = uint64_t{1} << 27;
};

struct Result {
  enum class Status { kPass, kFail, kSkip };
  std::string check;     // "lower_bound", "exact_cpuid", ...
  std::string exit;      // exit type name, or "" for checks across exits
  int vcpus = 0;
  bool has_counts = false;
  uint64_t expected = 0, observed = 0;
  Status status = Status::kPass;
  std::vector<std::string> problems;  // one line per failure, or the skip reason
  std::vector<std::string> notes;     // printed either way (slack, sources)

  bool pass() const { return status == Status::kPass; }
  void Fail(std::string line) {
    status = Status::kFail;
    problems.push_back(std::move(line));
  }
  void Skip(std::string why) {
    if (status == Status::kPass) status = Status::kSkip;
    problems.push_back(std::move(why));
  }
  std::string Text() const;  // problems then notes, one per line
};

// Runs fn(worker, cpu) on every cpu at once, one oneTBB task each, pinned
// when `pin`. Each task returns its own tally; no shared counters.
std::vector<uint64_t> RunOnCpus(Env& env, const std::vector<int>& cpus,
                                const std::function<uint64_t(size_t worker, int cpu)>& fn);

class Checker {
 public:
  Checker(Env& env, Profile profile, Config cfg);

  // Discovery; nullopt on an unpatched host (then every check skips).
  const std::optional<Discovery>& discovery() const { return discovery_; }
  std::string absence() const { return absence_; }
  const Config& config() const { return cfg_; }
  const Client& client() const { return client_; }

  Result DiscoveryLeaf();
  Result LeafRegisters();
  Result UndefinedVersusNotHandled();
  Result OrdinaryLeaves();
  Result LowerBound(GuestExit e);
  Result ExactCpuid();
  Result TotalsSum();
  Result Cycles();
  Result TornReads();

  // CPUID queries the calling thread issued through client() so far (each
  // is a reason-10 exit). Per thread, so readers on other vCPUs share nothing.
  static uint64_t queries();

 private:
  Result Start(std::string check, std::string exit = "") const;
  uint64_t Ops(GuestExit e) const;

  Env& env_;
  Config cfg_;
  Client client_;
  std::optional<Discovery> discovery_;
  std::string absence_;
};

// Helpers shared with the tests.
std::string Hex(uint64_t v);
// Raw vendor exit codes that leaf 0x4FFFFFF3 tracks (kernel-patch/README.md).
bool RawCodeTracked(uint32_t code, Vendor v);
// Raw codes whose count must equal the sum of these SDM reasons' counts.
struct RawPair {
  uint32_t raw;
  std::vector<uint32_t> reasons;
};
std::vector<RawPair> RawPairs(Vendor v);

}  // namespace exitstats::guest
