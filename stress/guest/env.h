// What the guest stress checks talk to: a CPUID source, the guest-side exit
// triggers and the guest's own accounting. RealEnv (real_env.cc) is a Linux
// guest; ModelEnv (model_env.h, tests only) simulates correct and buggy
// patched hosts so the check logic itself is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "exitstats/abi.h"
#include "exitstats/catalogue.h"

namespace exitstats::guest {

// exit_stress drives the catalogue's rows whose user-mode trigger is
// `stressed` (exitstats/catalogue.h), in catalogue order; the checks, flags,
// reports and README iterate them. It has no table of its own.
using GuestExit = exitstats::ExitKind;

std::span<const exitstats::ExitType> GuestExits();
const exitstats::ExitType& Row(GuestExit e);
// A row by its catalogue name; "io" is still accepted for io_user.
std::optional<GuestExit> GuestExitByName(std::string_view name);

// For the fastpath self-IPI (the ports and other MSRs are the catalogue's;
// README.md, "Ports and MSRs").
inline constexpr uint32_t kMsrApicBase = 0x1B;     // x2APIC mode probe
inline constexpr uint32_t kMsrX2apicId = 0x802;
inline constexpr uint32_t kRescheduleVector = 0xFD;

class Env {
 public:
  virtual ~Env() = default;

  // One CPUID on the calling thread. Every call is itself a CPUID exit.
  virtual Regs Cpuid(uint32_t leaf, uint32_t subleaf) = 0;

  // "" if exit `e` can be triggered here; otherwise why not (not root, no
  // /dev/cpu/N/msr, ...). Probes once and caches.
  virtual std::string Unavailable(GuestExit e) = 0;

  // Called before and after every parallel run of `e` on `cpus` (HLT passes
  // a token around the vCPUs and needs to know them all).
  virtual void BeginPhase(GuestExit, std::span<const int> /*cpus*/) {}
  virtual void EndPhase(GuestExit) {}

  // Performs `n` operations of `e` on the calling thread, which the caller
  // has pinned to `cpu`. Returns the operations done (n unless an error, then
  // *error says what).
  virtual uint64_t Trigger(GuestExit e, int cpu, uint64_t n, std::string* error) = 0;

  // The guest's own monotonic count that bounds `e` from below when the
  // trigger cannot count its exits itself (HLT: idle entries that execute
  // HLT), summed over `cpus`. nullopt if `e` needs none.
  struct Accounting {
    uint64_t value = 0;
    std::string source;  // e.g. "cpuidle state usage (C1 ACPI HLT)"
  };
  virtual std::optional<Accounting> GuestAccounting(GuestExit e,
                                                    std::span<const int> cpus) = 0;
  // Per-thread voluntary context switches (fallback HLT accounting).
  virtual uint64_t ThreadVoluntarySwitches() { return 0; }

  // /proc/cpuinfo fields of the first processor ("vendor_id", "cpu family").
  virtual std::string CpuinfoField(std::string_view key) = 0;

  // Pin the calling thread to `cpu` (false if that failed). Models don't pin.
  virtual bool Pin(int cpu) = 0;
  virtual void Unpin() = 0;

  // Guest TSC, for durations.
  virtual uint64_t Tsc() = 0;
};

}  // namespace exitstats::guest
