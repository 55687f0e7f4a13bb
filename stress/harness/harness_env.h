// Shared state of harness_test: options, the /dev/kvm handle, cached payload
// runs and the host facts that decide skips (batching, unmaintained stats).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <variant>

#include "exitstats/abi.h"
#include "harness/payload.h"

namespace harness_test {

struct Config {
  exitstats::Profile profile = exitstats::kSjsu;  // --abi-profile / HARNESS_ABI_PROFILE
  double scale = 1.0;  // --iterations-scale / HARNESS_ITERATIONS_SCALE
  // --rubric / HARNESS_RUBRIC: "course" judges a host without the discovery
  // leaf by its course leaves alone (found by how they move); "strict"
  // (default) wants the discovery leaf for every patched-host check.
  bool course = false;
  // --clock / HARNESS_CLOCK: "deterministic" when the TSC follows executed
  // instructions (Bochs with clock sync=none), so how much of a round trip
  // KVM spends handling the exit repeats run to run and can be bounded
  // below; "free" (default) on real time.
  bool deterministic_clock = false;
};
Config& config();
// Parses (and removes) our flags after InitGoogleTest; env vars first.
// Returns false with *error set on a bad value.
bool ParseOptions(int* argc, char** argv, std::string* error);

// The KVM handle, or nullptr with the reason in *why.
const harness::Kvm* KvmOrWhy(std::string* why);

// Per-vCPU iterations for a spec after scaling (at least 1).
uint64_t Iterations(const harness::PayloadSpec& spec);

// One run per (spec, vCPU count, load) per process, shared by every test
// that checks a different aspect of it; load multiplies the iterations.
// Holds the error message if it threw.
using RunOrError = std::variant<harness::RunResult, std::string>;
const RunOrError& CachedRun(const harness::PayloadSpec& spec, uint32_t vcpus,
                            uint32_t load = 1);

// Facts about this host, measured once.
struct HostFacts {
  exitstats::Regs discovery;       // CPUID 0x4FFFFFF0 inside a guest
  bool patched = false;            // signature and version answered, or
                                   // (course rubric) the course leaves count
  // Course rubric, no discovery leaf: the patched-host checks read only the
  // course leaves; per_reason when the per-reason leaf counts (assignment 3).
  bool course_only = false;
  bool per_reason = true;
  std::string course_probe;        // what the course-leaf probe saw
  uint64_t cpuid_probe_ops = 0;    // CPUIDs in the batching probe
  uint64_t cpuid_probe_exits = 0;  // `exits` stat delta they produced
  bool batched() const { return cpuid_probe_exits < cpuid_probe_ops; }
  std::string BatchingReason() const;
  std::string AbsenceReason() const;  // why the patched-host checks skip
};
// nullopt (and *error) if even the probe run failed.
const HostFacts* Facts(std::string* error);

// Whether this KVM maintains `stat` at all: nullopt if it does, else the skip
// reason (probe: `spec` on 1 vCPU left the stat unchanged).
std::optional<std::string> StatUnmaintained(const harness::PayloadSpec& spec,
                                            const std::string& stat);

// Why KVM's exit fastpath (x2APIC ICR / TSC-deadline WRMSR, HLT) is off on
// this host, or nullopt. On SVM it needs NRIPS: QEMU TCG (7.2) has none, so
// there fastpath-only patch bugs cannot show (Bochs VMX or hardware needed).
std::optional<std::string> FastpathOff();

// The module parameter that turned two-dimensional paging off ("kvm_amd.npt=0",
// "kvm_intel.ept=0"), or nullopt when KVM uses NPT/EPT. With shadow paging a
// first touch of guest memory is a #PF intercept (SDM reason 0, which the
// guest does not track), not an EPT/NPT violation (reason 48). The nested
// runner turns NPT off under TCG, whose emulated nested paging resets L2.
std::optional<std::string> ShadowPaging();

// nullopt if a single hypercall completes; else why not (timeout).
std::optional<std::string> HypercallBroken();

}  // namespace harness_test

// Skips the current test when /dev/kvm is missing.
#define HARNESS_REQUIRE_KVM()                                               \
  do {                                                                      \
    std::string why_;                                                       \
    if (!::harness_test::KvmOrWhy(&why_)) GTEST_SKIP() << why_;             \
  } while (0)
