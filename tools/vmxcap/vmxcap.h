// VMX capability report (the course's assignment 1): decodes the VMX
// capability MSRs into "can this control be 0 / be 1" per named control.
//
// Source of the names and bit positions: Intel SDM Vol. 3C, chapter 25
// "Virtual Machine Control Structures" (VM-execution, VM-exit and VM-entry
// control tables) and appendix A "VMX Capability Reporting Facility",
// Order Number 325462-080US (June 2023).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "exitstats/cpuid.h"

namespace vmxcap {

namespace msr {
inline constexpr uint32_t kFeatureControl = 0x03A;
inline constexpr uint32_t kBasic = 0x480;
inline constexpr uint32_t kPinbased = 0x481;
inline constexpr uint32_t kProcbased = 0x482;
inline constexpr uint32_t kExit = 0x483;
inline constexpr uint32_t kEntry = 0x484;
inline constexpr uint32_t kProcbased2 = 0x48B;
inline constexpr uint32_t kTruePinbased = 0x48D;
inline constexpr uint32_t kTrueProcbased = 0x48E;
inline constexpr uint32_t kTrueExit = 0x48F;
inline constexpr uint32_t kTrueEntry = 0x490;
inline constexpr uint32_t kProcbased3 = 0x492;
}  // namespace msr

// Reads one MSR; nullopt if it cannot be read (absent MSR, no msr driver).
using MsrReader = std::function<std::optional<uint64_t>(uint32_t index)>;

// IA32_VMX_BASIC, appendix A.1.
struct Basic {
  uint32_t revision;      // bits 30:0
  uint32_t vmcs_size;     // bits 44:32, bytes
  bool phys_addr_32;      // bit 48: VMXON/VMCS addresses limited to 32 bits
  bool dual_monitor;      // bit 49: dual-monitor treatment of SMIs
  uint32_t memory_type;   // bits 53:50 (6 = write-back)
  bool ins_outs_info;     // bit 54: VM-exit instruction info for INS/OUTS
  bool true_controls;     // bit 55: the TRUE_* MSRs (0x48D-0x490) exist
  bool no_error_code_ok;  // bit 56: deliver HW exceptions without error code
};
Basic DecodeBasic(uint64_t value);

struct Control {
  unsigned bit;
  std::string_view name;
};

// One control field: where its capability MSR is and which bits it names.
struct ControlField {
  std::string_view title;   // "Pin-based VM-execution controls"
  std::string_view msr_name;
  uint32_t msr;
  uint32_t true_msr;        // 0 if the field has no TRUE variant
  bool allowed1_only;       // tertiary: a 64-bit allowed-1 mask, all may be 0
  std::span<const Control> controls;
};

// The tables, in SDM order: pin, primary, secondary, tertiary, exit, entry.
std::span<const ControlField> Fields();
const ControlField& Field(uint32_t msr);

// One bit of a control field as the capability MSR(s) allow it.
struct BitCap {
  unsigned bit;
  std::string_view name;  // "" for bits the SDM leaves reserved
  bool can_be_0;
  bool can_be_1;
  bool default1;          // the non-TRUE MSR says "must be 1", the TRUE one allows 0
};

// Decodes a control field. For 32-bit fields the low half is the allowed-0
// settings (bit set = must be 1) and the high half the allowed-1 settings
// (bit set = may be 1); `true_value`, when given, is the TRUE MSR, which
// replaces the allowed-0 half. Returns every named bit and every unnamed bit
// that is not plain "must be 0".
std::vector<BitCap> DecodeField(const ControlField& field, uint64_t value,
                                std::optional<uint64_t> true_value = std::nullopt);

// Why a field was not reported.
enum class Presence { kPresent, kNotAdvertised };

struct Report {
  enum class Status { kOk = 0, kVmxAbsent = 1, kMsrUnreadable = 3 } status;
  std::string text;
};

// The whole report: CPUID checks, IA32_FEATURE_CONTROL, IA32_VMX_BASIC and
// every advertised control field. Secondary controls are read only when
// primary bit 31 may be 1, tertiary only when primary bit 17 may be 1, the
// TRUE MSRs only when IA32_VMX_BASIC bit 55 says they exist: reading an MSR
// the CPU does not have is a #GP (EIO from /dev/cpu/N/msr). Without VMX it
// says so, and on AMD prints CPUID 0x8000000A (the SVM feature leaf).
Report MakeReport(const exitstats::CpuidFn& cpuid, const MsrReader& read_msr);

// The SVM feature leaf (CPUID 0x8000000A EDX) bit names, for the AMD case.
std::span<const Control> SvmFeatures();

}  // namespace vmxcap
