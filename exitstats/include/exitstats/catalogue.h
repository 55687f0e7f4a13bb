// The exit catalogue: one row per exit type the suite drives, and the only
// list of them. The /dev/kvm harness runs a ring-0 payload per row
// (harness/src/payload_table.cc; PayloadTable.CoversTheCatalogue fails on a
// row without one). exit_stress stresses the rows whose user-mode trigger is
// `stressed`, and the guest benchmark times the rows whose trigger is
// `timed`; both perform a row's UserOp with the operations in
// exitstats/user_ops.h, on the port or MSR the row names. The report's
// anchors are checked against it through build/exitstats/catalogue.json
// (catalogue_json_main.cc). Adding an exit type is a row here, plus its
// payload loop, plus a UserOp if user space can cause it in a new way.
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
  kWbinvd,      // WBINVD in ring 0 (always intercepted; KVM skips it)
};

// What a row needs from the host before its exact checks apply.
enum Need : uint32_t {
  kNeedNone = 0,
  kNeedIrqchip = 1u << 0,    // in-kernel LAPIC (fastpath MSR writes)
  kNeedNoIrqchip = 1u << 1,  // HLT reaches userspace only without irqchip
};

// How a Linux guest's user space causes one exit of a row.
enum class UserOp {
  kNone,        // ring 0 only: user space cannot cause it
  kCpuid,       // CPUID leaf 0
  kPortOut,     // OUT to the port `operand`, after ioperm()
  kPortIn,      // IN from the port `operand`, after ioperm()
  kMsrRead,     // pread of the MSR `operand` from /dev/cpu/N/msr
  kMsrWrite,    // pwrite of 0 to the MSR `operand` through /dev/cpu/N/msr
  kIcrSelfIpi,  // pwrite of the x2APIC ICR `operand`: a reschedule IPI to self
  kIdle,        // the vCPU idles (the kernel's idle loop HLTs) waiting for a token
  kHypercall,   // VMCALL/VMMCALL from CPL3 (KVM answers -KVM_EPERM)
  kFreshPage,   // a write to a never-touched anonymous page
};

struct UserTrigger {
  UserOp op = UserOp::kNone;
  uint32_t operand = 0;   // the port or MSR; the ring-0 payload drives the same
  std::string_view how;   // one operation, for --help, reports and benchmarks
  // exit_stress drives it on every vCPU and checks that the host counted at
  // least one exit of the row's reason per operation (LowerBound.<name>).
  bool stressed = false;
  // One operation is one round trip the guest benchmark can time (not so for
  // idling, whose length is the wait, nor for a self-IPI, which adds an
  // interrupt to every operation).
  bool timed = false;
  bool needs_root = false;
  // KVM (6.12, both vendors) handles it in the vendor's fastpath, inside
  // vcpu_run() and before handle_exit(): a patch that counts only in
  // handle_exit() never sees it.
  bool kvm_fastpath = false;
  uint32_t ops_divisor = 1;  // exit_stress: ops per vCPU = --iterations / this
};

struct ExitType {
  ExitKind kind;
  std::string_view name;     // stable id used in test names and reports
  uint32_t sdm_reason;       // basic exit reason the patch must count it under
  std::string_view kvm_stat; // KVM binary stat that rises with it ("" if none)
  uint32_t needs;            // Need bits
  UserTrigger user;  // none: ring 0 only
};

std::span<const ExitType> Catalogue();
const ExitType& Lookup(ExitKind kind);
std::optional<ExitType> LookupByName(std::string_view name);

}  // namespace exitstats
