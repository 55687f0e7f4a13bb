// The control tables: SDM Vol. 3C chapter 25 (325462-080US). Bits not listed
// are reserved in that revision.
#include <stdexcept>

#include "vmxcap.h"

namespace vmxcap {
namespace {

constexpr Control kPin[] = {
    {0, "External-interrupt exiting"},
    {3, "NMI exiting"},
    {5, "Virtual NMIs"},
    {6, "Activate VMX-preemption timer"},
    {7, "Process posted interrupts"},
};

constexpr Control kPrimary[] = {
    {2, "Interrupt-window exiting"},
    {3, "Use TSC offsetting"},
    {7, "HLT exiting"},
    {9, "INVLPG exiting"},
    {10, "MWAIT exiting"},
    {11, "RDPMC exiting"},
    {12, "RDTSC exiting"},
    {15, "CR3-load exiting"},
    {16, "CR3-store exiting"},
    {17, "Activate tertiary controls"},
    {19, "CR8-load exiting"},
    {20, "CR8-store exiting"},
    {21, "Use TPR shadow"},
    {22, "NMI-window exiting"},
    {23, "MOV-DR exiting"},
    {24, "Unconditional I/O exiting"},
    {25, "Use I/O bitmaps"},
    {27, "Monitor trap flag"},
    {28, "Use MSR bitmaps"},
    {29, "MONITOR exiting"},
    {30, "PAUSE exiting"},
    {31, "Activate secondary controls"},
};

constexpr Control kSecondary[] = {
    {0, "Virtualize APIC accesses"},
    {1, "Enable EPT"},
    {2, "Descriptor-table exiting"},
    {3, "Enable RDTSCP"},
    {4, "Virtualize x2APIC mode"},
    {5, "Enable VPID"},
    {6, "WBINVD exiting"},
    {7, "Unrestricted guest"},
    {8, "APIC-register virtualization"},
    {9, "Virtual-interrupt delivery"},
    {10, "PAUSE-loop exiting"},
    {11, "RDRAND exiting"},
    {12, "Enable INVPCID"},
    {13, "Enable VM functions"},
    {14, "VMCS shadowing"},
    {15, "Enable ENCLS exiting"},
    {16, "RDSEED exiting"},
    {17, "Enable PML"},
    {18, "EPT-violation #VE"},
    {19, "Conceal VMX from PT"},
    {20, "Enable XSAVES/XRSTORS"},
    {21, "PASID translation"},
    {22, "Mode-based execute control for EPT"},
    {23, "Sub-page write permissions for EPT"},
    {24, "Intel PT uses guest physical addresses"},
    {25, "Use TSC scaling"},
    {26, "Enable user wait and pause"},
    {27, "Enable PCONFIG"},
    {28, "Enable ENCLV exiting"},
    {30, "VMM bus-lock detection"},
    {31, "Instruction timeout"},
};

constexpr Control kTertiary[] = {
    {0, "LOADIWKEY exiting"},
    {1, "Enable HLAT"},
    {2, "EPT paging-write control"},
    {3, "Guest-paging verification"},
    {4, "IPI virtualization"},
    {7, "Virtualize IA32_SPEC_CTRL"},
};

constexpr Control kExit[] = {
    {2, "Save debug controls"},
    {9, "Host address-space size"},
    {12, "Load IA32_PERF_GLOBAL_CTRL"},
    {15, "Acknowledge interrupt on exit"},
    {18, "Save IA32_PAT"},
    {19, "Load IA32_PAT"},
    {20, "Save IA32_EFER"},
    {21, "Load IA32_EFER"},
    {22, "Save VMX-preemption timer value"},
    {23, "Clear IA32_BNDCFGS"},
    {24, "Conceal VMX from PT"},
    {25, "Clear IA32_RTIT_CTL"},
    {26, "Clear IA32_LBR_CTL"},
    {27, "Clear UINV"},
    {28, "Load CET state"},
    {29, "Load PKRS"},
    {30, "Save IA32_PERF_GLOBAL_CTL"},
    {31, "Activate secondary controls"},
};

constexpr Control kEntry[] = {
    {2, "Load debug controls"},
    {9, "IA-32e mode guest"},
    {10, "Entry to SMM"},
    {11, "Deactivate dual-monitor treatment"},
    {13, "Load IA32_PERF_GLOBAL_CTRL"},
    {14, "Load IA32_PAT"},
    {15, "Load IA32_EFER"},
    {16, "Load IA32_BNDCFGS"},
    {17, "Conceal VMX from PT"},
    {18, "Load IA32_RTIT_CTL"},
    {19, "Load UINV"},
    {20, "Load CET state"},
    {21, "Load guest IA32_LBR_CTL"},
    {22, "Load PKRS"},
};

constexpr ControlField kFields[] = {
    {"Pin-based VM-execution controls", "IA32_VMX_PINBASED_CTLS", msr::kPinbased,
     msr::kTruePinbased, false, kPin},
    {"Primary processor-based VM-execution controls", "IA32_VMX_PROCBASED_CTLS",
     msr::kProcbased, msr::kTrueProcbased, false, kPrimary},
    {"Secondary processor-based VM-execution controls", "IA32_VMX_PROCBASED_CTLS2",
     msr::kProcbased2, 0, false, kSecondary},
    {"Tertiary processor-based VM-execution controls", "IA32_VMX_PROCBASED_CTLS3",
     msr::kProcbased3, 0, true, kTertiary},
    {"VM-exit controls", "IA32_VMX_EXIT_CTLS", msr::kExit, msr::kTrueExit, false, kExit},
    {"VM-entry controls", "IA32_VMX_ENTRY_CTLS", msr::kEntry, msr::kTrueEntry, false, kEntry},
};

// CPUID 0x8000000A EDX (AMD APM Vol. 3, "CPUID Fn8000_000A_EDX").
constexpr Control kSvm[] = {
    {0, "NP (nested paging)"},
    {1, "LbrVirt"},
    {2, "SVML (SVM lock)"},
    {3, "NRIPS (next RIP save)"},
    {4, "TscRateMsr"},
    {5, "VmcbClean"},
    {6, "FlushByAsid"},
    {7, "DecodeAssists"},
    {10, "PauseFilter"},
    {12, "PauseFilterThreshold"},
    {13, "AVIC"},
    {15, "VMSAVEvirt"},
    {16, "VGIF"},
    {17, "GMET"},
    {18, "x2AVIC"},
    {19, "SSSCheck"},
    {20, "SpecCtrl"},
    {21, "ROGPT"},
    {23, "HOST_MCE_OVERRIDE"},
    {24, "TlbiCtl"},
    {25, "VNMI"},
    {26, "IbsVirt"},
    {27, "ExtLvtAvicAccessChg"},
    {28, "NestedVirtVmcbAddrChk"},
    {29, "BusLockThreshold"},
};

}  // namespace

std::span<const ControlField> Fields() { return kFields; }

const ControlField& Field(uint32_t index) {
  for (const ControlField& f : kFields)
    if (f.msr == index) return f;
  throw std::out_of_range("no control field with that capability MSR");
}

std::span<const Control> SvmFeatures() { return kSvm; }

}  // namespace vmxcap
