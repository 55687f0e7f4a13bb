// The fuzz oracle against a model of the ABI (label `unit`, runs anywhere).
// A model of a correct patch must pass the whole query stream; each planted
// fault (one per row of kFaults) must be caught by the same stream: an oracle
// that passes everything would fail here.
#include <gtest/gtest.h>

#include <set>

#include "exitstats/reasons.h"
#include "fuzz_oracle.h"

namespace hostile {
namespace {

using exitstats::Regs;
using exitstats::Vendor;

enum class Fault {
  kNone,
  kUndefinedAsNotHandled,  // undefined reason answers all zeros
  kNotHandledAsUndefined,  // defined-not-handled answers EDX=~0
  kOffByOne,               // reason 78 (first past the table) treated as defined
  kTruncatedEcx,           // reason = ECX & 0xFF
  kEbxNotWritten,          // total-cycles leaf leaves EBX as the guest set it
  kGoesBackwards,          // every 1000th read of the 64-bit total is stale by 2
  kDiscoveryReadsEcx,      // discovery's EDX flags OR'ed with ECX bit 0
  kRawRangeOffByOne,       // raw code 0x410 (SVM) / 78 (VMX) tracked
  kNoSelfCount,            // the querying CPUID is not counted before answering
};

struct ModelHost {
  Vendor vendor;
  exitstats::Profile profile;
  Fault fault;
  uint64_t exits[1024] = {};   // per SDM reason (model: < 1024)
  uint64_t cycles[1024] = {};
  uint64_t raw_cpuid = 0;
  uint64_t total = 0, total_cycles = 0, reads = 0;

  uint32_t Flags() const { return vendor == Vendor::kSvm ? exitstats::flag::kSvm : exitstats::flag::kVmx; }

  Regs Discovery(uint32_t ecx) const {
    uint32_t flags = Flags();
    if (fault == Fault::kDiscoveryReadsEcx) flags |= (ecx & 1) << 3;
    return {exitstats::kSignature, exitstats::kAbiVersion, exitstats::kHighestDefinedReason, flags};
  }

  // Classify a per-reason query: 0 counted, 1 not handled, 2 undefined.
  int Class(uint32_t r) const {
    if (fault == Fault::kOffByOne && r == exitstats::kHighestDefinedReason + 1) return 0;
    if (!exitstats::IsDefined(r)) return fault == Fault::kUndefinedAsNotHandled ? 1 : 2;
    if (!exitstats::IsHandled(r, vendor)) return fault == Fault::kNotHandledAsUndefined ? 2 : 1;
    return 0;
  }

  Regs Cpuid(const Query& q) {
    // The exit is counted when taken, before the answer.
    if (fault != Fault::kNoSelfCount) Count();
    Regs out = Answer(q);
    if (fault == Fault::kNoSelfCount) Count();
    total_cycles += 700;
    cycles[exitstats::reason::kCpuid] += 700;
    return out;
  }

  void Count() {
    ++exits[exitstats::reason::kCpuid];
    ++raw_cpuid;
    ++total;
  }

  Regs Answer(const Query& q) {
    namespace L = exitstats::leaf;
    uint32_t r = q.ecx;
    if (fault == Fault::kTruncatedEcx) r &= 0xFF;
    const Regs undefined{0, 0, 0, exitstats::kUndefinedReasonEdx};
    auto hi = [](uint64_t v) { return static_cast<uint32_t>(v >> 32); };
    auto lo = [](uint64_t v) { return static_cast<uint32_t>(v); };
    if (q.leaf == L::kDiscovery) return Discovery(q.ecx);
    if (q.leaf == L::kTotalExits64) {
      uint64_t t = total;
      if (fault == Fault::kGoesBackwards && ++reads % 1000 == 0) t -= 2;
      return {0, hi(t), lo(t), 0};
    }
    if (q.leaf == L::kRawExits64) {
      uint32_t cpuid_code = vendor == Vendor::kSvm ? 0x72 : 10;
      bool tracked = RawTracked(q.ecx, vendor) ||
                     (fault == Fault::kRawRangeOffByOne &&
                      q.ecx == (vendor == Vendor::kSvm ? 0x410u : 78u));
      if (!tracked) return undefined;
      uint64_t v = q.ecx == cpuid_code ? raw_cpuid : 0;
      return {0, hi(v), lo(v), 0};
    }
    const bool sjsu = profile.name == "sjsu";
    if (q.leaf == profile.total_exits || q.leaf == profile.total_cycles) {
      const bool exits_leaf = q.leaf == profile.total_exits;
      Regs o;
      if (sjsu) o = {lo(total), hi(total_cycles), lo(total_cycles), 0};
      else o = exits_leaf ? Regs{lo(total), 0, 0, 0} : Regs{0, hi(total_cycles), lo(total_cycles), 0};
      if (fault == Fault::kEbxNotWritten && !exits_leaf) o.ebx = q.ebx_in;
      return o;
    }
    // Per-reason leaves (course and 0x4FFFFFF2).
    switch (Class(r)) {
      case 2: return undefined;
      case 1: return {0, 0, 0, 0};
    }
    const uint64_t n = r < 1024 ? exits[r] : 0, c = r < 1024 ? cycles[r] : 0;
    if (q.leaf == L::kReasonExits64) return {0, hi(n), lo(n), 0};
    if (q.leaf == profile.reason_exits) return {lo(n), 0, 0, 0};
    return {0, hi(c), lo(c), 0};
  }
};

struct RunResult {
  uint64_t failures;
  std::vector<std::string> first;
  std::map<uint32_t, uint64_t> per_leaf;
};

RunResult RunModel(Vendor vendor, exitstats::Profile profile, Fault fault, uint64_t n) {
  ModelHost host{vendor, profile, fault};
  const Regs disc = host.Discovery(0);
  exitstats::Discovery d{disc.ebx, disc.ecx, disc.edx};
  QueryGen gen(42, d);
  Checker checker(profile, disc, /*fresh_vm=*/true);
  std::vector<Query> batch(512);
  uint64_t own = 0;
  for (uint64_t done = 0; done < n; done += batch.size()) {
    gen.Fill(batch);
    for (const Query& q : batch) checker.Check(q, host.Cpuid(q), ++own);
  }
  RunResult r{checker.failures(), checker.first_failures(), {}};
  for (uint32_t leaf : kFuzzedLeaves) r.per_leaf[leaf] = checker.checked(leaf);
  return r;
}

struct Case {
  Vendor vendor;
  exitstats::Profile profile;
};
const Case kCases[] = {{Vendor::kSvm, exitstats::kSjsu},
                       {Vendor::kVmx, exitstats::kSjsu},
                       {Vendor::kSvm, exitstats::kF22},
                       {Vendor::kVmx, exitstats::kF22}};

std::string CaseName(const Case& c) {
  return std::string(c.vendor == Vendor::kSvm ? "svm_" : "vmx_") + std::string(c.profile.name);
}

TEST(FuzzOracle, CorrectModelPassesEveryQueryOnEveryVendorAndProfile) {
  for (const Case& c : kCases) {
    RunResult r = RunModel(c.vendor, c.profile, Fault::kNone, 40'960);
    EXPECT_EQ(r.failures, 0u) << CaseName(c) << ": " << (r.first.empty() ? "" : r.first[0]);
    for (auto [leaf, n] : r.per_leaf) EXPECT_EQ(n, 5120u) << CaseName(c) << " leaf " << Hex(leaf);
  }
}

struct FaultRow {
  Fault fault;
  const char* name;
};
const FaultRow kFaults[] = {
    {Fault::kUndefinedAsNotHandled, "undefined_as_not_handled"},
    {Fault::kNotHandledAsUndefined, "not_handled_as_undefined"},
    {Fault::kOffByOne, "off_by_one_reason_78"},
    {Fault::kTruncatedEcx, "ecx_truncated_to_u8"},
    {Fault::kEbxNotWritten, "ebx_not_written"},
    {Fault::kGoesBackwards, "total_goes_backwards"},
    {Fault::kDiscoveryReadsEcx, "discovery_reads_ecx"},
    {Fault::kRawRangeOffByOne, "raw_range_off_by_one"},
    {Fault::kNoSelfCount, "querying_exit_not_counted"},
};

// Every planted fault is caught on every vendor and profile, and already by
// the CI-sized run (10^4 per leaf would be 80,000; 8,000 queries suffice).
TEST(FuzzOracle, EveryPlantedFaultIsCaughtBySmallRun) {
  for (const Case& c : kCases)
    for (const FaultRow& f : kFaults) {
      // Not-handled reasons exist on both vendors (checked below), so every
      // row applies everywhere.
      RunResult r = RunModel(c.vendor, c.profile, f.fault, 8'000);
      EXPECT_GT(r.failures, 0u) << CaseName(c) << ": fault " << f.name << " not caught";
    }
}

TEST(FuzzOracle, EdgesCoverTheIssueList) {
  exitstats::Discovery d{1, 77, exitstats::flag::kSvm};
  for (uint32_t leaf : {0x4FFFFFFDu, 0x4FFFFFF2u}) {
    std::vector<uint32_t> e = EdgeEcx(leaf, d);
    std::set<uint32_t> s(e.begin(), e.end());
    for (uint32_t must : {0u, 77u, 78u, 35u, 38u, 42u, 65u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu})
      EXPECT_TRUE(s.count(must)) << "leaf " << Hex(leaf) << " misses ECX " << Hex(must);
    bool has_not_handled = false;
    for (uint32_t r : e)
      has_not_handled |= exitstats::IsDefined(r) && !exitstats::IsHandled(r, d.vendor());
    EXPECT_TRUE(has_not_handled) << "no defined-but-not-handled reason among the edges";
  }
  std::vector<uint32_t> raw = EdgeEcx(exitstats::leaf::kRawExits64, d);
  std::set<uint32_t> s(raw.begin(), raw.end());
  for (uint32_t must : {0xFFu, 0x100u, 0x40Fu, 0x410u, 0xFFFFFFFFu}) EXPECT_TRUE(s.count(must)) << Hex(must);
}

// Edges come first: a run of one round of edges already holds every edge.
TEST(FuzzOracle, EdgesLeadTheStream) {
  exitstats::Discovery d{1, 77, exitstats::flag::kVmx};
  QueryGen gen(1, d);
  std::vector<Query> q(8 * 128);
  gen.Fill(q);
  std::set<std::pair<uint32_t, uint32_t>> seen;
  for (const Query& x : q) seen.insert({x.leaf, x.ecx});
  for (uint32_t leaf : kFuzzedLeaves)
    for (uint32_t ecx : EdgeEcx(leaf, d)) EXPECT_TRUE(seen.count({leaf, ecx})) << Hex(leaf) << " " << Hex(ecx);
}

}  // namespace
}  // namespace hostile
