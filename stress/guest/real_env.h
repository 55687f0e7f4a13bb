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

  // Online CPUs (sched_getaffinity of this process).
  static std::vector<int> OnlineCpus();

 private:
  std::string Probe(GuestExit e);
  std::string ProbeMsr(bool write);

  std::mutex mu_;
  std::map<GuestExit, std::string> unavailable_;
  std::map<int, uint32_t> x2apic_id_;  // filled by the wrmsr_fastpath probe
};

}  // namespace exitstats::guest
