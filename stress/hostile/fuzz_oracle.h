// What every answer of the exit-statistics leaves must look like, for any
// guest-controlled ECX (SPEC.md, kernel-patch/README.md), and the query mix
// that the fuzz stage throws at them.
//
// Host-side and pure: the fuzz payload only executes CPUID in the guest and
// streams (leaf, ECX, garbage EBX/EDX in, EAX..EDX out) back in batches; the
// Checker here judges each answer. Unit-tested against a model of a correct
// patch and of known-bad ones (fuzz_oracle_test.cc), so it can fail.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "exitstats/abi.h"
#include "exitstats/cpuid.h"

namespace hostile {

// One CPUID the guest executes: EAX=leaf, ECX=ecx, and garbage in EBX/EDX
// (CPUID ignores them; a handler that forgets to write a register leaks them).
struct Query {
  uint32_t leaf, ecx, ebx_in, edx_in;
};

// The eight leaves fuzzed: the profile's four course leaves and the four
// extension leaves (their numbers overlap between profiles, so the set is
// always 0x4FFFFFF0..F3 and 0x4FFFFFFC..FF; their meaning depends on the
// profile).
inline constexpr std::array<uint32_t, 8> kFuzzedLeaves = {
    0x4FFFFFF0, 0x4FFFFFF1, 0x4FFFFFF2, 0x4FFFFFF3,
    0x4FFFFFFC, 0x4FFFFFFD, 0x4FFFFFFE, 0x4FFFFFFF};

// ECX values every run sends to `leaf` at least once: 0, the defined edges,
// every undefined hole, the first value past the table, values whose low bits
// alias a defined reason (catch u8/u16 truncation of ECX), 0x7FFFFFFF,
// 0x80000000, 0xFFFFFFFF; raw-code edges for 0x4FFFFFF3.
std::vector<uint32_t> EdgeEcx(uint32_t leaf, const exitstats::Discovery& d);

// Reproducible query stream: edges first (each leaf's, round robin), then a
// mix of uniform 32-bit ECX, small ECX (0..127, where the table is) and
// near-edge raw codes; leaves interleaved so that each gets the same share.
class QueryGen {
 public:
  QueryGen(uint64_t seed, exitstats::Discovery d);
  void Fill(std::span<Query> out);
  uint64_t generated() const { return generated_; }

 private:
  exitstats::Discovery d_;
  std::mt19937_64 rng_;
  std::vector<Query> edges_;
  size_t edge_pos_ = 0;
  uint64_t generated_ = 0;
};

// Judges the answers one vCPU saw, in the order it saw them.
class Checker {
 public:
  // `fresh_vm`: the VM was created for this run and totals are per VM, so
  // 32-bit course values cannot have wrapped and lower bounds by the vCPU's
  // own CPUIDs apply to them too.
  Checker(exitstats::Profile profile, exitstats::Regs discovery, bool fresh_vm);

  // Checks one answer. `own_cpuids` is how many CPUIDs this vCPU executed up
  // to and including this one (the querying exit is counted before the
  // answer, SPEC "Counting happens when the exit is taken").
  // Returns "" if conformant, else what is wrong.
  std::string Check(const Query& q, const exitstats::Regs& out, uint64_t own_cpuids);

  uint64_t checked(uint32_t leaf) const;
  uint64_t failures() const { return failures_; }
  // The first failures, with the query that produced them (kept for reports).
  const std::vector<std::string>& first_failures() const { return first_; }

 private:
  // A value that must never go backwards as this vCPU reads it.
  struct Series {
    uint64_t last = 0;
    uint32_t last_leaf = 0;
  };
  std::string Monotonic(const std::string& name, uint64_t value, uint32_t leaf);
  std::string Shape(const Query& q, const exitstats::Regs& out, uint64_t own);

  exitstats::Profile profile_;
  exitstats::Regs discovery_;
  exitstats::Vendor vendor_;
  bool host_wide_;
  bool fresh_vm_;
  std::map<std::string, Series> series_;
  std::map<uint32_t, uint64_t> checked_;
  uint64_t failures_ = 0;
  std::vector<std::string> first_;
};

// Raw vendor exit codes the patch tracks (0x4FFFFFF3 answers EDX=0 for them).
bool RawTracked(uint32_t code, exitstats::Vendor vendor);

std::string Hex(uint32_t v);

}  // namespace hostile
