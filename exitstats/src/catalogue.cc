#include "exitstats/catalogue.h"

#include <array>
#include <stdexcept>

#include "exitstats/reasons.h"

namespace exitstats {
namespace {

// The port and MSR choices are explained in stress/guest/README.md ("Ports
// and MSRs"). io_kernel is timed but not stressed: its reason is stressed
// through io_user. first_touch has no per-operation bound from
// user space: a fresh guest page is a stage-2 fault only if no one touched
// its frame since the guest booted.
constexpr std::array kCatalogue = {
    ExitType{ExitKind::kCpuid, "cpuid", reason::kCpuid, "exits", kNeedNone,
             {.op = UserOp::kCpuid,
              .how = "CPUID leaf 0 in user mode",
              .stressed = true,
              .timed = true}},
    ExitType{ExitKind::kIoUser, "io_user", reason::kIo, "io_exits", kNeedNone,
             {.op = UserOp::kPortOut,
              .operand = 0x80,
              .how = "OUT to port 0x80 after ioperm() (no in-kernel device: the userspace VMM)",
              .stressed = true,
              .timed = true,
              .needs_root = true}},
    ExitType{ExitKind::kIoKernel, "io_kernel", reason::kIo, "exits", kNeedIrqchip,
             {.op = UserOp::kPortIn,
              .operand = 0x21,
              .how = "IN from port 0x21 after ioperm() (PIC IMR, in-kernel irqchip)",
              .timed = true,
              .needs_root = true}},
    ExitType{ExitKind::kRdmsr, "rdmsr", reason::kRdmsr, "exits", kNeedNone,
             {.op = UserOp::kMsrRead,
              .operand = 0x179,
              .how = "pread of MSR 0x179 (IA32_MCG_CAP) from /dev/cpu/N/msr",
              .stressed = true,
              .timed = true,
              .needs_root = true}},
    ExitType{ExitKind::kWrmsr, "wrmsr", reason::kWrmsr, "exits", kNeedNone,
             {.op = UserOp::kMsrWrite,
              .operand = 0x17A,
              .how = "pwrite of 0 to MSR 0x17A (IA32_MCG_STATUS) through /dev/cpu/N/msr "
                     "(slow path)",
              .stressed = true,
              .timed = true,
              .needs_root = true}},
    ExitType{ExitKind::kWrmsrFast, "wrmsr_fastpath", reason::kWrmsr, "exits", kNeedIrqchip,
             {.op = UserOp::kIcrSelfIpi,
              .operand = 0x830,
              .how = "pwrite of x2APIC ICR 0x830: reschedule IPI to self (KVM fastpath)",
              .stressed = true,
              .needs_root = true,
              .kvm_fastpath = true}},
    ExitType{ExitKind::kHlt, "hlt", reason::kHlt, "halt_exits", kNeedNone,
             {.op = UserOp::kIdle,
              .how = "a token passed around the vCPUs: the ones waiting idle (idle loop HLT)",
              .stressed = true,
              .kvm_fastpath = true,
              .ops_divisor = 40}},
    ExitType{ExitKind::kVmcall, "vmcall", reason::kVmcall, "hypercalls", kNeedNone,
             {.op = UserOp::kHypercall,
              .how = "VMCALL/VMMCALL from user mode (KVM answers -KVM_EPERM)",
              .stressed = true,
              .timed = true}},
    ExitType{ExitKind::kFirstTouch, "first_touch", reason::kEptViolation, "exits", kNeedNone,
             {.op = UserOp::kFreshPage,
              .how = "write to a fresh anonymous page (a stage-2 fault only when the guest "
                     "page was never touched before)",
              .timed = true}},
    // WBINVD is privileged: from user space it raises #GP before any
    // intercept. (Not INVD: QEMU TCG before 8.1 reports a nested INVD with
    // the WBINVD exit code, so its reason would depend on the emulator.)
    ExitType{ExitKind::kWbinvd, "wbinvd", reason::kWbinvd, "exits", kNeedNone,
             {}},
};

}  // namespace

std::span<const ExitType> Catalogue() { return kCatalogue; }

const ExitType& Lookup(ExitKind kind) {
  for (const ExitType& e : kCatalogue)
    if (e.kind == kind) return e;
  throw std::logic_error("exit kind missing from the catalogue");
}

std::optional<ExitType> LookupByName(std::string_view name) {
  for (const ExitType& e : kCatalogue)
    if (e.name == name) return e;
  return std::nullopt;
}

}  // namespace exitstats
