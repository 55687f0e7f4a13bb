// Layouts of the <linux/kvm.h> structs that end in __DECLARE_FLEX_ARRAY.
// Older uapi headers (Debian 12: 6.1) expand that macro, in C++, to a struct
// holding an empty struct, which has size 1 in C++: the flexible member moves
// and sizeof() grows (kvm_cpuid2 is 12 bytes instead of 8), so even the ioctl
// numbers encode a wrong size. These are the C layouts, spelled out.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace harness::uapi {

struct Cpuid2Header {  // struct kvm_cpuid2 without entries[]
  uint32_t nent;
  uint32_t padding;
};
static_assert(sizeof(Cpuid2Header) == 8);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);

struct StatsDescHeader {  // struct kvm_stats_desc without name[]
  uint32_t flags;
  int16_t exponent;
  uint16_t size;
  uint32_t offset;
  uint32_t bucket_size;
};
static_assert(sizeof(StatsDescHeader) == 16);

}  // namespace harness::uapi
