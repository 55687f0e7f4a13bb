#include "exitstats/reasons.h"

#include <algorithm>
#include <array>

namespace exitstats {
namespace {

// {reason, name, handled on VMX, handled on SVM}
constexpr std::array kReasons = {
    ReasonInfo{0, "EXCEPTION_NMI", true, true},
    ReasonInfo{1, "EXTERNAL_INTERRUPT", true, true},
    ReasonInfo{2, "TRIPLE_FAULT", true, true},
    ReasonInfo{3, "INIT_SIGNAL", false, false},
    ReasonInfo{4, "SIPI_SIGNAL", false, false},
    ReasonInfo{5, "IO_SMI", false, false},
    ReasonInfo{6, "OTHER_SMI", false, true},
    ReasonInfo{7, "INTERRUPT_WINDOW", true, true},
    ReasonInfo{8, "NMI_WINDOW", true, false},
    ReasonInfo{9, "TASK_SWITCH", true, true},
    ReasonInfo{10, "CPUID", true, true},
    ReasonInfo{11, "GETSEC", false, false},
    ReasonInfo{12, "HLT", true, true},
    ReasonInfo{13, "INVD", true, true},
    ReasonInfo{14, "INVLPG", true, true},
    ReasonInfo{15, "RDPMC", true, true},
    ReasonInfo{16, "RDTSC", false, false},
    ReasonInfo{17, "RSM", false, true},
    ReasonInfo{18, "VMCALL", true, true},
    ReasonInfo{19, "VMCLEAR", true, false},
    ReasonInfo{20, "VMLAUNCH", true, false},
    ReasonInfo{21, "VMPTRLD", true, false},
    ReasonInfo{22, "VMPTRST", true, false},
    ReasonInfo{23, "VMREAD", true, false},
    ReasonInfo{24, "VMRESUME", true, false},
    ReasonInfo{25, "VMWRITE", true, false},
    ReasonInfo{26, "VMXOFF", true, false},
    ReasonInfo{27, "VMXON", true, false},
    ReasonInfo{28, "CR_ACCESS", true, true},
    ReasonInfo{29, "DR_ACCESS", true, true},
    ReasonInfo{30, "IO_INSTRUCTION", true, true},
    ReasonInfo{31, "MSR_READ", true, true},
    ReasonInfo{32, "MSR_WRITE", true, true},
    ReasonInfo{33, "INVALID_STATE", true, true},
    ReasonInfo{34, "MSR_LOAD_FAIL", true, false},
    ReasonInfo{36, "MWAIT", true, true},
    ReasonInfo{37, "MONITOR_TRAP_FLAG", true, false},
    ReasonInfo{39, "MONITOR", true, true},
    ReasonInfo{40, "PAUSE", true, true},
    ReasonInfo{41, "MCE_DURING_VMENTRY", true, false},
    ReasonInfo{43, "TPR_BELOW_THRESHOLD", true, false},
    ReasonInfo{44, "APIC_ACCESS", true, true},
    ReasonInfo{45, "EOI_INDUCED", true, false},
    ReasonInfo{46, "GDTR_IDTR", true, false},
    ReasonInfo{47, "LDTR_TR", true, false},
    ReasonInfo{48, "EPT_VIOLATION", true, true},
    ReasonInfo{49, "EPT_MISCONFIG", true, false},
    ReasonInfo{50, "INVEPT", true, false},
    ReasonInfo{51, "RDTSCP", false, true},
    ReasonInfo{52, "PREEMPTION_TIMER", true, false},
    ReasonInfo{53, "INVVPID", true, false},
    ReasonInfo{54, "WBINVD", true, true},
    ReasonInfo{55, "XSETBV", true, true},
    ReasonInfo{56, "APIC_WRITE", true, false},
    ReasonInfo{57, "RDRAND", true, false},
    ReasonInfo{58, "INVPCID", true, true},
    ReasonInfo{59, "VMFUNC", true, false},
    ReasonInfo{60, "ENCLS", true, false},
    ReasonInfo{61, "RDSEED", true, false},
    ReasonInfo{62, "PML_FULL", true, false},
    ReasonInfo{63, "XSAVES", false, false},
    ReasonInfo{64, "XRSTORS", false, false},
    ReasonInfo{66, "SPP_EVENT", false, false},
    ReasonInfo{67, "UMWAIT", false, false},
    ReasonInfo{68, "TPAUSE", false, false},
    ReasonInfo{69, "LOADIWKEY", false, false},
    ReasonInfo{70, "ENCLV", false, false},
    ReasonInfo{72, "ENQCMD_PASID_FAIL", false, false},
    ReasonInfo{73, "ENQCMDS_PASID_FAIL", false, false},
    ReasonInfo{74, "BUS_LOCK", true, false},
    ReasonInfo{75, "NOTIFY", true, false},
    ReasonInfo{76, "SEAMCALL", false, false},
    ReasonInfo{77, "TDCALL", false, false},
};

static_assert(kReasons.back().reason == kHighestDefinedReason);

}  // namespace

std::span<const ReasonInfo> DefinedReasons() { return kReasons; }

std::optional<ReasonInfo> LookupReason(uint32_t reason) {
  auto it = std::lower_bound(
      kReasons.begin(), kReasons.end(), reason,
      [](const ReasonInfo& r, uint32_t v) { return r.reason < v; });
  if (it == kReasons.end() || it->reason != reason) return std::nullopt;
  return *it;
}

bool IsDefined(uint32_t reason) { return LookupReason(reason).has_value(); }

bool IsHandled(uint32_t reason, Vendor vendor) {
  auto info = LookupReason(reason);
  if (!info) return false;
  return vendor == Vendor::kVmx ? info->vmx_handled : info->svm_handled;
}

}  // namespace exitstats
