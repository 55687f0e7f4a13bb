#include "exitstats/cpuid.h"

#include <cpuid.h>

#include <cstdio>

namespace exitstats {

Regs NativeCpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

Vendor VendorOfLeaf0(const Regs& leaf0) {
  // EBX holds the first four letters: "Auth" or "Hygo".
  return (leaf0.ebx == 0x68747541 || leaf0.ebx == 0x6F677948) ? Vendor::kSvm : Vendor::kVmx;
}

std::optional<Profile> ProfileByName(std::string_view name) {
  for (const Profile& p : {kSjsu, kF22})
    if (p.name == name) return p;
  return std::nullopt;
}

std::optional<Discovery> Client::Discover() const {
  Regs r = cpuid_(leaf::kDiscovery, 0);
  if (r.eax != kSignature || r.ebx != kAbiVersion) return std::nullopt;
  return Discovery{r.ebx, r.ecx, r.edx};
}

std::string Client::DescribeAbsence() const {
  Regs r = cpuid_(leaf::kDiscovery, 0);
  char buf[192];
  std::snprintf(buf, sizeof buf,
                "host has no exit-statistics leaves: CPUID 0x%08X answered "
                "%08x %08x %08x %08x, not signature 0x%08X version %u "
                "(unpatched KVM, or not running under KVM)",
                leaf::kDiscovery, r.eax, r.ebx, r.ecx, r.edx, kSignature,
                kAbiVersion);
  return buf;
}

namespace {
// Per-reason leaves answer EDX=0xFFFFFFFF (and zeros elsewhere) for undefined
// reasons, EDX=0 otherwise; anything else is a malformed answer.
ReasonAnswer Decode(const Regs& r, uint64_t value, bool value_regs_zero_ok) {
  if (r.edx == kUndefinedReasonEdx)
    return {(r.eax | r.ebx | r.ecx) == 0 ? ReasonAnswer::Kind::kUndefined
                                         : ReasonAnswer::Kind::kMalformed,
            0, r};
  if (r.edx != 0 || !value_regs_zero_ok) return {ReasonAnswer::Kind::kMalformed, value, r};
  return {ReasonAnswer::Kind::kCounted, value, r};
}
}  // namespace

uint32_t Client::TotalExits32() const { return cpuid_(profile_.total_exits, 0).eax; }

uint64_t Client::TotalCycles() const {
  Regs r = cpuid_(profile_.total_cycles, 0);
  return HiLo(r.ebx, r.ecx);
}

ReasonAnswer Client::ReasonExits32(uint32_t reason) const {
  Regs r = cpuid_(profile_.reason_exits, reason);
  return Decode(r, r.eax, r.ebx == 0 && r.ecx == 0);
}

ReasonAnswer Client::ReasonCycles(uint32_t reason) const {
  Regs r = cpuid_(profile_.reason_cycles, reason);
  return Decode(r, HiLo(r.ebx, r.ecx), r.eax == 0);
}

uint64_t Client::TotalExits64() const {
  Regs r = cpuid_(leaf::kTotalExits64, 0);
  return HiLo(r.ebx, r.ecx);
}

ReasonAnswer Client::ReasonExits64(uint32_t reason) const {
  Regs r = cpuid_(leaf::kReasonExits64, reason);
  return Decode(r, HiLo(r.ebx, r.ecx), r.eax == 0);
}

ReasonAnswer Client::RawExits64(uint32_t raw_code) const {
  Regs r = cpuid_(leaf::kRawExits64, raw_code);
  return Decode(r, HiLo(r.ebx, r.ecx), r.eax == 0);
}

}  // namespace exitstats
