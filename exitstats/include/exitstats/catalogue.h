// The exit catalogue: one row per exit type the suite drives. The /dev/kvm
// harness (a payload per row, harness/src/payload_table.cc) and the guest
// benchmark (a trigger per row) iterate it; exit_stress's user-mode triggers
// each name their row (stress/guest/env.h, GuestExitRow::kind); the report's
// anchors are checked against it (build/exitstats/catalogue.json, written by
// catalogue_json_main.cc). Tests fail when one of those names a row this
// table does not have, or gives it another SDM reason.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace exitstats {

enum class ExitKind {
  kCpuid,       // CPUID, any privilege level
  kHlt,         // HLT in ring 0 / idling a Linux vCPU
  kIoUser,      // OUT to a port the userspace VMM handles (KVM_EXIT_IO)
  kIoKernel,    // OUT/IN to a port KVM emulates in the kernel (PIT/PIC)
  kRdmsr,       // RDMSR of an intercepted MSR
  kWrmsr,       // WRMSR of an intercepted MSR, slow path
  kWrmsrFast,   // WRMSR handled in KVM's fastpath (TSC deadline, x2APIC ICR)
  kVmcall,      // VMCALL/VMMCALL hypercall
  kFirstTouch,  // first touch of unmapped guest memory (EPT/NPT violation)
};

// What a row needs from the host before its exact checks apply.
enum Need : uint32_t {
  kNeedNone = 0,
  kNeedIrqchip = 1u << 0,    // in-kernel LAPIC (fastpath MSR writes)
  kNeedNoIrqchip = 1u << 1,  // HLT reaches userspace only without irqchip
};

struct ExitType {
  ExitKind kind;
  std::string_view name;     // stable id used in test names and reports
  uint32_t sdm_reason;       // basic exit reason the patch must count it under
  std::string_view kvm_stat; // KVM binary stat that rises with it ("" if none)
  uint32_t needs;            // Need bits
};

std::span<const ExitType> Catalogue();
const ExitType& Lookup(ExitKind kind);
std::optional<ExitType> LookupByName(std::string_view name);

}  // namespace exitstats
