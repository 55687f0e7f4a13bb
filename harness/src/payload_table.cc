// The one table that maps each catalogue ExitKind to its guest payload.
#include <linux/kvm.h>

#include <stdexcept>

#include "harness/payload.h"

namespace harness {

namespace {
using exitstats::ExitKind;

// Iterations are per vCPU and sized for the slowest level that runs this
// binary (QEMU TCG: ~30 us per L2 exit; tests scale them with a knob).
constexpr PayloadSpec kPayloads[] = {
    {"cpuid", ExitKind::kCpuid, HARNESS_P_CPUID, false, false, VmmSees::kNothing, 2000,
     "CPUID leaf 0 in a loop (always intercepted)"},
    {"hlt", ExitKind::kHlt, HARNESS_P_HLT, false, false, VmmSees::kHlt, 2000,
     "HLT without in-kernel irqchip: each one is a KVM_EXIT_HLT"},
    {"io_user", ExitKind::kIoUser, HARNESS_P_IO_USER, false, false, VmmSees::kUserPortIo, 2000,
     "OUT to port 0x80, handled by this VMM (KVM_EXIT_IO)"},
    {"io_kernel", ExitKind::kIoKernel, HARNESS_P_IO_KERNEL, true, false, VmmSees::kNothing, 2000,
     "IN from port 0x21 (in-kernel PIC IMR)"},
    {"rdmsr", ExitKind::kRdmsr, HARNESS_P_RDMSR, false, true, VmmSees::kRdmsr, 2000,
     "RDMSR IA32_MCG_CAP (0x179); MSR filter sends it to this VMM when available"},
    {"wrmsr", ExitKind::kWrmsr, HARNESS_P_WRMSR, false, true, VmmSees::kWrmsr, 2000,
     "WRMSR IA32_MCG_STATUS (0x17A) = 0; MSR filter sends it to this VMM when available"},
    {"wrmsr_fastpath", ExitKind::kWrmsrFast, HARNESS_P_WRMSR_FAST, true, false,
     VmmSees::kNothing, 2000,
     "WRMSR x2APIC ICR (0x830), fixed physical IPI to an absent APIC ID: KVM fastpath"},
    {"vmcall", ExitKind::kVmcall, HARNESS_P_VMCALL, false, false, VmmSees::kNothing, 2000,
     "VMCALL/VMMCALL (by vendor) with an unknown nr: -KVM_ENOSYS"},
    {"first_touch", ExitKind::kFirstTouch, HARNESS_P_FIRST_TOUCH, false, false,
     VmmSees::kNothing, 1000,
     "one write to each never-touched 4 KiB page of a NOHUGEPAGE memslot"},
    {"wbinvd", ExitKind::kWbinvd, HARNESS_P_WBINVD, false, false, VmmSees::kNothing, 2000,
     "WBINVD (intercepted on both vendors; KVM skips it without non-coherent DMA)"},
    // Variants.
    {"hlt_irqchip", ExitKind::kHlt, HARNESS_P_HLT_IRQCHIP, true, false, VmmSees::kNothing, 2000,
     "self-IPI, sti;hlt with the in-kernel LAPIC: HLT wakes at once, EOI",
     1u << HARNESS_T_WRMSR},
    {"io_user_in", ExitKind::kIoUser, HARNESS_P_IO_USER_IN, false, false,
     VmmSees::kUserPortIoIn, 2000, "IN from port 0x80, answered by this VMM (KVM_EXIT_IO)"},
    {"io_kernel_out", ExitKind::kIoKernel, HARNESS_P_IO_KERNEL_OUT, true, false,
     VmmSees::kNothing, 2000, "OUT 0xFF to port 0x21 (in-kernel PIC: mask all)"},
};

#define HARNESS_TRACKED_NAME(sym, sdm, name) name,
constexpr std::string_view kTrackedNames[HARNESS_NR_TRACKED] = {
    HARNESS_TRACKED(HARNESS_TRACKED_NAME)};
#undef HARNESS_TRACKED_NAME
}  // namespace

std::span<const PayloadSpec> Payloads() { return kPayloads; }

const PayloadSpec& PayloadFor(exitstats::ExitKind kind) {
  for (const PayloadSpec& p : kPayloads)
    if (p.kind == kind) return p;
  throw std::logic_error("no payload for exit kind " +
                         std::string(exitstats::Lookup(kind).name));
}

const PayloadSpec* PayloadByName(std::string_view name) {
  for (const PayloadSpec& p : kPayloads)
    if (p.name == name) return &p;
  return nullptr;
}

std::string_view TrackedName(int t) { return kTrackedNames[t]; }

int TrackedIndex(uint32_t sdm_reason) {
  for (int t = 0; t < HARNESS_NR_TRACKED; t++)
    if (kTrackedReasons[t] == sdm_reason) return t;
  return -1;
}

std::optional<std::string> Unsupported(const PayloadSpec& spec, const Kvm& kvm) {
  if (!kvm.CheckExtension(KVM_CAP_BINARY_STATS_FD))
    return "KVM lacks KVM_CAP_BINARY_STATS_FD (binary stats, Linux >= 5.14)";
  if (!kvm.CheckExtension(KVM_CAP_USER_MEMORY)) return "KVM lacks KVM_CAP_USER_MEMORY";
  if (spec.irqchip && !kvm.CheckExtension(KVM_CAP_IRQCHIP))
    return "payload " + std::string(spec.name) + " needs the in-kernel irqchip (KVM_CAP_IRQCHIP)";
  if (spec.irqchip && !kvm.CheckExtension(KVM_CAP_X2APIC_API) &&
      (spec.payload == HARNESS_P_WRMSR_FAST || spec.payload == HARNESS_P_HLT_IRQCHIP))
    return "payload " + std::string(spec.name) + " needs x2APIC (KVM_CAP_X2APIC_API)";
  return std::nullopt;
}

}  // namespace harness
