// The checks of the guest stress binary, as plain functions over an Env so
// that they run against a real patched host (exit_stress) and against models
// of correct and buggy hosts (checks_test.cc). README.md says, per check,
// which bug makes it fail.
#pragma once

#include <cstdio>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "env.h"
#include "exitstats/cpuid.h"
#include "exitstats/leaf_finder.h"

namespace exitstats::guest {

// What a failure violates (SPEC.md, "What the suite must judge"): `course`
// is what the assignment asks; `strict` is SPEC.md in full, extension leaves
// and per-VM scope included. Under `course`, a strict-only finding is a note.
enum class Rubric { kCourse, kStrict };
std::string_view RubricName(Rubric r);
std::optional<Rubric> RubricByName(std::string_view name);

// Bug classes a finding is named by (SPEC.md).
namespace bug {
inline constexpr std::string_view kLostUpdates = "lost updates";
inline constexpr std::string_view kTornRead = "torn read";
inline constexpr std::string_view kFastpath = "uncounted fastpath exits";
inline constexpr std::string_view kUncounted = "uncounted exits";
inline constexpr std::string_view kDoubleCount = "double counting";
inline constexpr std::string_view kWrongBucket = "wrong reason bucket";
inline constexpr std::string_view kUndefined = "undefined vs not-handled";
inline constexpr std::string_view kNotImplemented = "leaf not implemented / falls through";
inline constexpr std::string_view kEcx = "out-of-bounds or unclamped ECX";
inline constexpr std::string_view kCycles = "cycles missing or insane";
inline constexpr std::string_view kRegisters = "wrong registers";
inline constexpr std::string_view kOrdinary = "ordinary CPUID leaves changed";
inline constexpr std::string_view kExtension = "extension leaves";
}  // namespace bug

struct Config {
  std::vector<int> cpus;          // vCPUs to run on, one worker each
  uint64_t iterations = 10000;    // ops per vCPU per exit type (see the catalogue's ops_divisor)
  double torn_seconds = 15.0;     // upper bound on the torn-read phase
  uint64_t torn_reads = 0;        // and on its reads per vCPU (0: none)
  uint32_t random_ecx = 4096;     // random sub-leaves in the conformance sweep
  uint64_t seed = 1;
  // Sane range for cycles per exit (host TSC cycles from exit to re-entry).
  uint64_t min_cycles_per_exit = 16;
  uint64_t max_cycles_per_exit = uint64_t{1} << 27;
  Rubric rubric = Rubric::kCourse;
  int assignment = 0;                     // 2 or 3; 0: the level the leaves show
  bool profile_forced = false;            // --profile given: use it, do not guess
  std::vector<Profile> candidates;        // numberings to tell apart (sjsu, f22, --leaf-map)
};

struct Result {
  // kNotApplicable: the host lacks what the check reads (an extension leaf
  // under the course rubric, per-reason leaves at assignment 2); it neither
  // fails nor makes the run partial.
  enum class Status { kPass, kFail, kSkip, kNotApplicable };
  std::string check;     // "lower_bound", "exact_cpuid", ...
  std::string exit;      // exit type name, or "" for checks across exits
  int vcpus = 0;
  bool has_counts = false;
  uint64_t expected = 0, observed = 0;
  Status status = Status::kPass;
  std::vector<std::string> problems;  // one line per failure, or the skip reason
  std::vector<std::string> notes;     // printed either way (slack, sources)
  std::string rubric;                 // the rubric judged ("course", "strict")
  std::string_view bug_class;         // the check's own class, for Fail() without one
  std::vector<std::string> classes;   // bug classes of the failures, in order, unique

  bool pass() const { return status == Status::kPass; }
  // Each failure line starts with its bug class: "[lost updates] cpuid on 4 vCPUs: ...".
  void Fail(std::string line, std::string_view klass = {}) {
    if (klass.empty()) klass = bug_class;
    status = Status::kFail;
    if (!klass.empty()) {
      if (std::find(classes.begin(), classes.end(), klass) == classes.end())
        classes.emplace_back(klass);
      std::string tagged(1, '[');
      tagged.append(klass).append("] ").append(line);
      line = std::move(tagged);
    }
    problems.push_back(std::move(line));
  }
  void Skip(std::string why) {
    if (status == Status::kPass) status = Status::kSkip;
    problems.push_back(std::move(why));
  }
  void NotApplicable(std::string why) {
    if (status == Status::kPass) status = Status::kNotApplicable;
    problems.push_back("not applicable: " + std::move(why));
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

  // The extension discovery leaf; nullopt when the host has none (a course
  // submission, or an unpatched host).
  const std::optional<Discovery>& discovery() const { return discovery_; }
  // The course leaves as their behaviour showed them (printed once per run).
  const FoundLeaves& found() const { return found_; }
  // A patched host: some course leaf counts, or the discovery leaf answers.
  bool patched() const { return found_.any_counter() || discovery_.has_value(); }
  // The level judged: --assignment, else what the leaves show.
  int assignment() const { return level_; }
  Vendor vendor() const { return vendor_; }
  // "unpatched host", "patched: course leaves only (profile sjsu, assignment 3)", "patched: full ABI".
  std::string HostWords() const;
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
  // A result for `check`, already skipped or not applicable when the host
  // lacks the `roles` (course leaf roles) or, with `ext`, the extension leaves.
  Result Start(std::string check, std::string exit, std::string_view klass, unsigned roles,
               bool ext = false) const;
  uint64_t Ops(GuestExit e) const;
  // env_.Cpuid, counting each call as one of this thread's queries.
  CpuidFn CountedCpuid();
  bool Strict() const { return cfg_.rubric == Rubric::kStrict; }
  // Exits counted so far: the 64-bit leaves when the host has them, else the
  // course leaves' low 32 bits; Rise() is the wrap-safe difference of two.
  uint64_t TotalNow() const;
  ReasonAnswer ReasonNow(uint32_t reason) const;
  uint64_t Rise(uint64_t before, uint64_t after) const;
  const char* CountSource() const;
  uint64_t TotalCyclesNow() const;
  bool Fffe() const;  // sjsu's optional 0x4FFFFFFE counts (or the host has every leaf)

  Env& env_;
  Config cfg_;
  Client client_;
  std::optional<Discovery> discovery_;
  FoundLeaves found_;
  int level_ = 0;
  Vendor vendor_ = Vendor::kVmx;
  std::string absence_;
};

// Helpers shared with the tests.
std::string Hex(uint64_t v);
// printf into a string, for messages and tables (512 bytes at most).
std::string Fmt(const char* f, auto... a) {
  char b[512];
  std::snprintf(b, sizeof b, f, a...);
  return b;
}
// Raw vendor exit codes that leaf 0x4FFFFFF3 tracks (kernel-patch/README.md).
bool RawCodeTracked(uint32_t code, Vendor v);
// Raw codes whose count must equal the sum of these SDM reasons' counts.
struct RawPair {
  uint32_t raw;
  std::vector<uint32_t> reasons;
};
std::vector<RawPair> RawPairs(Vendor v);

}  // namespace exitstats::guest
