// The exitdump data: what the guest wrote (two snapshots of the leaves), the
// per-reason deltas, the text format ept-report reads, and the checks.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "exitstats/abi.h"

namespace exitdump {

// Reasons 0..77: every basic reason the SDM defines (exitstats::
// kHighestDefinedReason) plus the reserved ones in between.
inline constexpr uint32_t kReasons = 78;
// CPUIDs one snapshot issues (guest.S dump_rel): discovery, 64-bit total,
// total cycles, then two per reason. Both snapshots' CPUIDs land in the
// CPUID delta together exactly once: the "before" snapshot's CPUIDs after
// its own reason-10 read plus the "after" snapshot's up to and including its
// reason-10 read add up to one whole snapshot, wherever reason 10 sits.
inline constexpr uint64_t kDumpCpuids = 3 + 2 * kReasons;

// Exits that may fall between a snapshot's total read and its per-reason
// reads (timer interrupts and the like); see Check().
inline constexpr uint64_t kSnapshotSlack = 16;

struct ReasonSnap {
  uint64_t exits = 0;   // 0x4FFFFFF2 EBX:ECX
  uint32_t edx = 0;     // 0x4FFFFFF2 EDX: 0xFFFFFFFF for undefined reasons
  uint64_t cycles = 0;  // profile per-reason cycles leaf EBX:ECX
};

struct Dump {
  exitstats::Regs discovery;
  uint64_t total_exits = 0, total_cycles = 0;
  std::array<ReasonSnap, kReasons> reasons{};
  // Decodes the guest buffer: 16 bytes (EAX EBX ECX EDX) per CPUID, in
  // guest.S order.
  static Dump FromGuest(const uint8_t* p);
};

struct Delta {
  uint64_t total_exits = 0, total_cycles = 0;
  std::array<ReasonSnap, kReasons> reasons{};  // edx: the "after" EDX
};
Delta Subtract(const Dump& before, const Dump& after);

// Reads beyond the table, taken after the "after" snapshot (they do not
// touch any delta): 0x4FFFFFF2 and the course per-reason exits leaf, each for
// reason 78 (first above the highest defined) and 0xFFFFFFFF.
struct Probes {
  static constexpr uint32_t kReasonsProbed[2] = {78, 0xFFFFFFFF};
  exitstats::Regs ext[2], course[2];
  static Probes FromGuest(const uint8_t* p);
};
// Every probe must answer "undefined": EAX=EBX=ECX=0, EDX=0xFFFFFFFF.
struct CheckResult;
CheckResult CheckProbes(const Probes& p);

struct Meta {
  std::string mode, vendor, abi;
  uint32_t iterations = 0, touch_pages = 0, switches = 0;
  double seconds = 0;
  uint32_t vmcalls = 0;  // iterations, or 0 with --no-vmcall
};

// Tab-separated: "meta KEY VALUE", "total EXITS CYCLES", and one
// "reason R NAME EXITS CYCLES" per SDM-defined reason.
std::string Format(const Meta& meta, const Delta& d);

struct CheckResult {
  std::string name;
  bool pass;
  std::string detail;
};
// What the workload must have produced: exact counts for the one-exit-per-op
// rows, a lower bound for first touches under EPT, undefined reasons marked
// undefined, totals equal to the sum of the reasons (up to kSnapshotSlack).
std::vector<CheckResult> Check(const Meta& meta, const Delta& d);

}  // namespace exitdump
