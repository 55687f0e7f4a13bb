// The exit-statistics CPUID ABI (kernel-patch/README.md is the reference).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace exitstats {

struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
  bool operator==(const Regs&) const = default;
};

// Answer for "reason not defined by the SDM" in EDX of the per-reason leaves.
inline constexpr uint32_t kUndefinedReasonEdx = 0xFFFFFFFFu;

// Extension leaves, identical in every profile.
namespace leaf {
inline constexpr uint32_t kDiscovery = 0x4FFFFFF0;
inline constexpr uint32_t kTotalExits64 = 0x4FFFFFF1;
inline constexpr uint32_t kReasonExits64 = 0x4FFFFFF2;
inline constexpr uint32_t kRawExits64 = 0x4FFFFFF3;
}  // namespace leaf

inline constexpr uint32_t kSignature = 0x5453584B;  // "KXST"
inline constexpr uint32_t kAbiVersion = 1;

namespace flag {
inline constexpr uint32_t kHostWide = 1u << 0;
inline constexpr uint32_t kSvm = 1u << 1;
inline constexpr uint32_t kVmx = 1u << 2;
inline constexpr uint32_t kF22 = 1u << 3;
// kvm.exit_stats_seed is set (test only): per-reason/raw counts start at it.
inline constexpr uint32_t kSeeded = 1u << 4;
}  // namespace flag

// Where a course profile puts each of its four statistics.
struct Profile {
  std::string_view name;
  uint32_t total_exits;    // EAX = total exits (low 32)
  uint32_t total_cycles;   // EBX:ECX = total cycles
  uint32_t reason_exits;   // ECX in = reason; EAX = exits (low 32)
  uint32_t reason_cycles;  // ECX in = reason; EBX:ECX = cycles
};

inline constexpr Profile kSjsu{"sjsu", 0x4FFFFFFF, 0x4FFFFFFE, 0x4FFFFFFD,
                               0x4FFFFFFC};
inline constexpr Profile kF22{"f22", 0x4FFFFFFC, 0x4FFFFFFD, 0x4FFFFFFE,
                              0x4FFFFFFF};

std::optional<Profile> ProfileByName(std::string_view name);

inline uint64_t HiLo(uint32_t hi, uint32_t lo) {
  return (uint64_t{hi} << 32) | lo;
}

}  // namespace exitstats
