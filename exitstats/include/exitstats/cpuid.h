// Reading the exit-statistics leaves: a raw CPUID source and a typed client.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "exitstats/abi.h"
#include "exitstats/reasons.h"

namespace exitstats {

// Executes CPUID(leaf, subleaf) on the current CPU.
Regs NativeCpuid(uint32_t leaf, uint32_t subleaf);

// The vendor that CPUID leaf 0 names: AMD and Hygon ("AuthenticAMD",
// "HygonGenuine") run SVM, everything else is taken for VMX.
Vendor VendorOfLeaf0(const Regs& leaf0);
inline Vendor NativeVendor() { return VendorOfLeaf0(NativeCpuid(0, 0)); }

// Anything that answers CPUID: the real instruction, or a model in tests.
using CpuidFn = std::function<Regs(uint32_t leaf, uint32_t subleaf)>;

struct Discovery {
  uint32_t version = 0;
  uint32_t highest_reason = 0;
  uint32_t flags = 0;
  Vendor vendor() const { return (flags & flag::kSvm) ? Vendor::kSvm : Vendor::kVmx; }
  bool host_wide() const { return flags & flag::kHostWide; }
};

// Per-reason answer, decoded.
struct ReasonAnswer {
  enum class Kind { kCounted, kUndefined, kMalformed } kind;
  uint64_t value;  // count (low 32 bits for course leaves) or cycles
  Regs raw;
};

class Client {
 public:
  explicit Client(Profile profile, CpuidFn cpuid = NativeCpuid)
      : profile_(profile), cpuid_(std::move(cpuid)) {}

  // nullopt unless the host answers the discovery leaf with the signature and
  // a known ABI version: an unpatched host is never mistaken for statistics.
  std::optional<Discovery> Discover() const;

  // A human sentence saying why Discover() failed (for skip messages).
  std::string DescribeAbsence() const;

  const Profile& profile() const { return profile_; }

  // Course leaves of the profile.
  uint32_t TotalExits32() const;
  uint64_t TotalCycles() const;
  ReasonAnswer ReasonExits32(uint32_t reason) const;
  ReasonAnswer ReasonCycles(uint32_t reason) const;

  // Extension leaves.
  uint64_t TotalExits64() const;
  ReasonAnswer ReasonExits64(uint32_t reason) const;
  ReasonAnswer RawExits64(uint32_t raw_code) const;

  Regs Raw(uint32_t leaf, uint32_t subleaf) const { return cpuid_(leaf, subleaf); }

 private:
  Profile profile_;
  CpuidFn cpuid_;
};

}  // namespace exitstats
