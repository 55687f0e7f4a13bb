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
             {UserOp::kCpuid, 0, "CPUID leaf 0 in user mode", true, true, false, false, 1}},
    ExitType{ExitKind::kIoUser, "io_user", reason::kIo, "io_exits", kNeedNone,
             {UserOp::kPortOut, 0x80,
              "OUT to port 0x80 after ioperm() (no in-kernel device: the userspace VMM)", true,
              true, true, false, 1}},
    ExitType{ExitKind::kIoKernel, "io_kernel", reason::kIo, "exits", kNeedIrqchip,
             {UserOp::kPortIn, 0x21,
              "IN from port 0x21 after ioperm() (PIC IMR, in-kernel irqchip)", false, true,
              true, false, 1}},
    ExitType{ExitKind::kRdmsr, "rdmsr", reason::kRdmsr, "exits", kNeedNone,
             {UserOp::kMsrRead, 0x179, "pread of MSR 0x179 (IA32_MCG_CAP) from /dev/cpu/N/msr",
              true, true, true, false, 1}},
    ExitType{ExitKind::kWrmsr, "wrmsr", reason::kWrmsr, "exits", kNeedNone,
             {UserOp::kMsrWrite, 0x17A,
              "pwrite of 0 to MSR 0x17A (IA32_MCG_STATUS) through /dev/cpu/N/msr (slow path)",
              true, true, true, false, 1}},
    ExitType{ExitKind::kWrmsrFast, "wrmsr_fastpath", reason::kWrmsr, "exits", kNeedIrqchip,
             {UserOp::kIcrSelfIpi, 0x830,
              "pwrite of x2APIC ICR 0x830: reschedule IPI to self (KVM fastpath)", true, false,
              true, true, 1}},
    ExitType{ExitKind::kHlt, "hlt", reason::kHlt, "halt_exits", kNeedNone,
             {UserOp::kIdle, 0,
              "a token passed around the vCPUs: the ones waiting idle (idle loop HLT)", true,
              false, false, true, 40}},
    ExitType{ExitKind::kVmcall, "vmcall", reason::kVmcall, "hypercalls", kNeedNone,
             {UserOp::kHypercall, 0, "VMCALL/VMMCALL from user mode (KVM answers -KVM_EPERM)",
              true, true, false, false, 1}},
    ExitType{ExitKind::kFirstTouch, "first_touch", reason::kEptViolation, "exits", kNeedNone,
             {UserOp::kFreshPage, 0,
              "write to a fresh anonymous page (a stage-2 fault only when the guest page was "
              "never touched before)",
              false, true, false, false, 1}},
    // WBINVD is privileged: from user space it raises #GP before any
    // intercept. (Not INVD: QEMU TCG before 8.1 reports a nested INVD with
    // the WBINVD exit code, so its reason would depend on the emulator.)
    ExitType{ExitKind::kWbinvd, "wbinvd", reason::kWbinvd, "exits", kNeedNone,
             {UserOp::kNone, 0, "", false, false, false, false, 1}},
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
