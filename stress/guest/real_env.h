// The real thing: a Linux guest's user space on a (possibly) patched host.
#pragma once

#include <map>
#include <mutex>

#include "env.h"

namespace exitstats::guest {

class RealEnv : public Env {
 public:
  Regs Cpuid(uint32_t leaf, uint32_t subleaf) override;
  std::string Unavailable(GuestExit e) override;
  uint64_t Trigger(GuestExit e, int cpu, uint64_t n, std::string* error) override;
  std::optional<Accounting> GuestAccounting(GuestExit e, std::span<const int> cpus) override;
  uint64_t ThreadVoluntarySwitches() override;
  std::string CpuinfoField(std::string_view key) override;
  bool Pin(int cpu) override;
  void Unpin() override;
  uint64_t Tsc() override;
  void BeginPhase(GuestExit e, std::span<const int> cpus) override;
  void EndPhase(GuestExit e) override;

  // Online CPUs (sched_getaffinity of this process).
  static std::vector<int> OnlineCpus();

 private:
  std::string Probe(GuestExit e);
  std::string ProbeMsr(const ExitType& row);
  std::string ProbeSelfIpi();
  uint64_t MsrLoop(const UserTrigger& t, int cpu, uint64_t n, std::string* error);

  std::mutex mu_;
  std::map<GuestExit, std::string> unavailable_;
  std::map<int, uint32_t> x2apic_id_;  // filled by the wrmsr_fastpath probe

  // HLT: one token passed around the vCPUs through eventfds. Every vCPU
  // without the token blocks, so it idles and HLTs; the token's arrival (an
  // IPI, not a timer) wakes it. Guest timers may be very late in nested
  // emulation; IPIs are not. ring_[i] is the eventfd of ring_cpus_[i].
  uint64_t HltRing(int cpu, uint64_t n, std::string* error);
  std::vector<int> ring_cpus_;
  std::vector<int> ring_;
};

}  // namespace exitstats::guest
