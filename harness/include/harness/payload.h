// Running a catalogue exit type on N vCPUs: the payload table and the
// RunPayload() API that stress/harness and bench/ call (harness/README.md).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "exitstats/abi.h"
#include "exitstats/catalogue.h"
#include "exitstats/cpuid.h"
#include "harness/guest_abi.h"
#include "harness/kvm.h"

namespace harness {

// Which user-space exit the VMM itself sees once per guest operation.
enum class VmmSees { kNothing, kUserPortIo, kUserPortIoIn, kHlt, kRdmsr, kWrmsr };

// One row per payload. The first row of each ExitKind is its primary payload
// (PayloadFor); extra rows are variants (e.g. HLT with the in-kernel irqchip).
struct PayloadSpec {
  std::string_view name;  // catalogue name for primary rows, else a variant id
  exitstats::ExitKind kind;
  harness_payload payload;
  bool irqchip;            // KVM_CREATE_IRQCHIP (in-kernel LAPIC, PIC, IOAPIC)
  bool msr_filter;         // route the payload's MSR to user space when possible
  VmmSees vmm_sees;        // what the VMM counts when routing is in effect
  uint64_t iterations;     // default per vCPU (TCG-sized: ~30 us per L2 exit)
  std::string_view what;   // one line for reports
  // Tracked reasons (bit = harness_tracked index) whose deliberate count is
  // only a lower bound for this payload, e.g. x2APIC EOI writes that APICv
  // or AVIC virtualize without an exit.
  uint32_t inexact = 0;
};

std::span<const PayloadSpec> Payloads();
const PayloadSpec& PayloadFor(exitstats::ExitKind kind);
const PayloadSpec* PayloadByName(std::string_view name);

// Tracked reasons, in harness_tracked order: SDM numbers and names.
inline constexpr std::array<uint32_t, HARNESS_NR_TRACKED> kTrackedReasons =
    HARNESS_TRACKED_REASONS;
std::string_view TrackedName(int t);
// Index into kTrackedReasons, or -1.
int TrackedIndex(uint32_t sdm_reason);

struct RunOptions {
  exitstats::Profile profile = exitstats::kSjsu;
  // How long the VMM works on each payload exit it handles, as a device
  // model would, in multiples of the time its KVM_RUN took (guest plus
  // KVM; 0: no work, for benchmarks). harness_test uses 2, so that a patch
  // counting time in user space as exit handling shows about three times
  // the exit cycles that the guest's loop left to KVM, on any emulator.
  unsigned vmm_work_ratio = 0;
  // Route rdmsr/wrmsr payload MSRs to user space (KVM_X86_SET_MSR_FILTER)
  // when KVM supports it, so the VMM counts them exactly.
  bool msr_to_userspace = true;
  // Read the exit-statistics leaves in the guest: nullopt = when the
  // discovery leaf answers *in the guest* (the patched KVM answers its
  // guests, not this process), true = require it, false = never.
  std::optional<bool> read_leaves;
  // Read the leaves whatever the discovery leaf answers (a course-only
  // patch has none); the caller judges the course leaves by their deltas.
  // Overrides read_leaves.
  bool course_leaves = false;
  // Wall-clock limit for the whole run; the watchdog kicks the vCPUs out.
  std::chrono::seconds timeout{600};
  // How often vCPU 0 may repeat a VM snapshot with stray exits in its window.
  int max_snapshot_retries = 100;
};

// Values of the leaves read around one interval, as after - before.
struct LeafDeltas {
  uint64_t total64 = 0;
  uint32_t total32 = 0;
  uint64_t total_cycles = 0;
  std::array<uint64_t, HARNESS_NR_TRACKED> reason64{};
  std::array<uint32_t, HARNESS_NR_TRACKED> reason32{};
  std::array<uint32_t, HARNESS_NR_TRACKED> reason_edx{};  // EDX of the "after" read
  std::array<uint64_t, HARNESS_NR_TRACKED> reason_cycles{};
};
LeafDeltas Subtract(const harness_leaves& after, const harness_leaves& before);

struct VcpuResult {
  uint32_t vcpu = 0;
  uint64_t guest_ops = 0;   // operations the guest loop completed
  uint64_t host_seen = 0;   // payload exits the VMM handled itself (see VmmSees)
  uint64_t tsc_cycles = 0;  // guest rdtsc around its loop
  // Host TSC cycles from each payload exit's return from KVM_RUN to the next
  // KVM_RUN: time in this VMM, inside the guest's loop but not exit handling.
  uint64_t vmm_cycles = 0;
  // KVM vCPU binary stats, delta over the measured interval (between the
  // two VM snapshots; see README).
  std::map<std::string, uint64_t> stats;
  // The guest's deliberate exits over the same interval, per tracked reason.
  std::array<uint64_t, HARNESS_NR_TRACKED> deliberate{};
  // This vCPU's own leaf reads around its loop (VM-wide values; patched host).
  std::optional<LeafDeltas> leaves;
};

// The patched-host cross-check, over the interval between the two VM
// snapshots vCPU 0 took with every other vCPU parked.
struct VmCheck {
  exitstats::Discovery discovery;
  LeafDeltas patch;               // VM snapshot after - before
  uint64_t stats_exits = 0;       // sum over vCPUs of the `exits` stat delta
  std::array<uint64_t, HARNESS_NR_TRACKED> deliberate{};  // sum over vCPUs
  int retries = 0;                // snapshots repeated for stray exits
};

struct RunResult {
  const PayloadSpec* spec = nullptr;
  uint32_t nr_vcpus = 0;
  uint64_t iterations = 0;   // per vCPU
  VmmSees vmm_sees = VmmSees::kNothing;  // in effect for this run
  bool leaves = false;       // the guest read the leaves
  exitstats::Regs discovery;  // CPUID 0x4FFFFFF0 as vCPU 0 saw it
  std::vector<VcpuResult> vcpus;
  std::optional<VmCheck> vm;  // when the leaves were read
  double wall_seconds = 0;
};

// Why `spec` cannot run on this KVM (a missing capability), or nullopt.
std::optional<std::string> Unsupported(const PayloadSpec& spec, const Kvm& kvm);

// Runs `spec`'s payload on `vcpus` vCPUs, `iterations` operations each. Throws
// on anything unexpected: guest exception/assert, unexpected exit (reason and
// registers), ioctl failure, timeout; the message names the vCPU.
RunResult RunPayload(const Kvm& kvm, const PayloadSpec& spec, uint32_t vcpus,
                     uint64_t iterations, const RunOptions& options = {});
// Convenience for bench/: opens /dev/kvm and runs the primary payload.
RunResult RunPayload(exitstats::ExitKind kind, uint32_t vcpus, uint64_t iterations,
                     const RunOptions& options = {});

}  // namespace harness
