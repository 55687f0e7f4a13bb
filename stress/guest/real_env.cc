#include "real_env.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/io.h>
#include <sys/resource.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "checks.h"
#include "exitstats/cpuid.h"
#include "exitstats/user_ops.h"

namespace exitstats::guest {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

using user::MsrFile;

// Asked once: CPUID is itself an exit, and a phase's workers would each add
// one to the counts they are checked against.
Vendor HypercallVendor() {
  static const Vendor vendor = NativeVendor();
  return vendor;
}

thread_local cpu_set_t saved_mask;
thread_local bool saved = false;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  std::string v = s.str();
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

}  // namespace

Regs RealEnv::Cpuid(uint32_t leaf, uint32_t subleaf) { return NativeCpuid(leaf, subleaf); }

std::vector<int> RealEnv::OnlineCpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {0};
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool RealEnv::Pin(int cpu) {
  if (!saved) {
    sched_getaffinity(0, sizeof saved_mask, &saved_mask);
    saved = true;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0 && sched_getcpu() == cpu;
}

void RealEnv::Unpin() {
  if (saved) sched_setaffinity(0, sizeof saved_mask, &saved_mask);
}

uint64_t RealEnv::Tsc() { return __rdtsc(); }

uint64_t RealEnv::ThreadVoluntarySwitches() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<uint64_t>(ru.ru_nvcsw);
}

std::string RealEnv::CpuinfoField(std::string_view key) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) break;  // first processor only
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k != key) continue;
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    return v;
  }
  return "";
}

std::string RealEnv::Unavailable(GuestExit e) {
  std::lock_guard lock(mu_);
  auto it = unavailable_.find(e);
  if (it != unavailable_.end()) return it->second;
  std::string why = Probe(e);
  unavailable_[e] = why;
  return why;
}

std::string RealEnv::ProbeMsr(const ExitType& row) {
  if (std::string why = MsrFile::Available(); !why.empty()) return why;
  const bool write = row.user.op == UserOp::kMsrWrite;
  MsrFile f(0, write);
  if (!f.ok()) return f.error();
  uint64_t v = 0;
  if (row.user.op == UserOp::kMsrRead && !f.Read(row.user.operand, &v))
    return Errno("rdmsr " + Hex(row.user.operand) + " through " + MsrFile::Path(0));
  if (write && !f.Write(row.user.operand, 0))
    return Errno("writing 0 to MSR " + Hex(row.user.operand) +
                 " (msr.allow_writes=off or kernel lockdown?)");
  return "";
}

std::string RealEnv::ProbeSelfIpi() {
  if (std::string why = MsrFile::Available(); !why.empty()) return why;
  MsrFile f(0, false);
  uint64_t base = 0;
  if (!f.ok() || !f.Read(kMsrApicBase, &base)) return Errno("rdmsr 0x1B (APIC base)");
  if (!(base & (1u << 10)))
    return "the guest's APIC is in xAPIC mode (APIC base MSR " + Hex(base) +
           "), so the ICR is MMIO, not an MSR: no fastpath WRMSR to drive (kernel without "
           "CONFIG_X86_X2APIC, or nox2apic)";
  for (int cpu : OnlineCpus()) {
    MsrFile c(cpu, false);
    uint64_t id = 0;
    if (!c.ok() || !c.Read(kMsrX2apicId, &id))
      return Errno("rdmsr 0x802 (x2APIC ID) on CPU " + std::to_string(cpu));
    x2apic_id_[cpu] = static_cast<uint32_t>(id);
  }
  if (MsrFile w(0, true); !w.ok()) return w.error();
  return "";
}

std::string RealEnv::Probe(GuestExit e) {
  const ExitType& row = Row(e);
  switch (row.user.op) {
    case UserOp::kCpuid:
    case UserOp::kIdle:
      return "";
    case UserOp::kPortOut:
    case UserOp::kPortIn:
      return user::GrantPort(static_cast<uint16_t>(row.user.operand));
    case UserOp::kMsrRead:
    case UserOp::kMsrWrite:
      return ProbeMsr(row);
    case UserOp::kIcrSelfIpi:
      return ProbeSelfIpi();
    case UserOp::kHypercall:
      return user::HypercallAvailable(HypercallVendor());
    default:
      return "exit_stress has no driver for " + std::string(row.name) + "'s user-mode operation";
  }
}

namespace {

uint64_t CpuidLoop(uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) user::CpuidLeaf0();
  return n;
}

uint64_t PortLoop(const UserTrigger& t, uint64_t n, std::string* error) {
  const auto port = static_cast<uint16_t>(t.operand);
  if (const std::string& why = user::GrantPort(port); !why.empty()) {
    *error = why;
    return 0;
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (t.op == UserOp::kPortOut)
      user::PortOut(port, 0);
    else
      user::PortIn(port);
  }
  return n;
}

// One vCPU only: nothing to pass a token to, so sleep (timer wake-ups).
uint64_t HltSleeps(uint64_t n) {
  const timespec ts{0, 200'000};
  for (uint64_t i = 0; i < n; ++i) clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
  return n;
}

}  // namespace

void RealEnv::BeginPhase(GuestExit e, std::span<const int> cpus) {
  if (Row(e).user.op != UserOp::kIdle || cpus.size() < 2) return;
  ring_cpus_.assign(cpus.begin(), cpus.end());
  for (size_t i = 0; i < cpus.size(); ++i) ring_.push_back(eventfd(0, EFD_CLOEXEC));
}

void RealEnv::EndPhase(GuestExit e) {
  if (Row(e).user.op != UserOp::kIdle) return;
  for (int fd : ring_)
    if (fd >= 0) close(fd);
  ring_.clear();
  ring_cpus_.clear();
}

uint64_t RealEnv::HltRing(int cpu, uint64_t n, std::string* error) {
  size_t me = 0;
  while (me < ring_cpus_.size() && ring_cpus_[me] != cpu) ++me;
  if (me == ring_cpus_.size() || ring_[me] < 0 || ring_[(me + 1) % ring_.size()] < 0) {
    *error = "HLT ring not set up for CPU " + std::to_string(cpu);
    return 0;
  }
  const int mine = ring_[me], next = ring_[(me + 1) % ring_.size()];
  auto wait = [&]() -> bool {
    // The timeout only guards against a worker that never started.
    pollfd p{mine, POLLIN, 0};
    if (poll(&p, 1, 10'000) != 1) {
      *error = "HLT ring: no token within 10 s (another worker did not run?)";
      return false;
    }
    uint64_t v;
    return read(mine, &v, sizeof v) == sizeof v;
  };
  auto pass = [&] {
    uint64_t one = 1;
    return write(next, &one, sizeof one) == sizeof one;
  };
  // Worker 0 holds the token first and takes it back at the very end; every
  // worker waits for the token n times (each wait idles its vCPU).
  uint64_t waits = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (me != 0 || i > 0) {
      if (!wait()) return waits;
      ++waits;
    }
    if (!pass()) {
      *error = Errno("HLT ring: eventfd write");
      return waits;
    }
  }
  if (me == 0) {
    if (!wait()) return waits;
    ++waits;
  }
  return waits;
}

uint64_t RealEnv::Trigger(GuestExit e, int cpu, uint64_t n, std::string* error) {
  const UserTrigger& t = Row(e).user;
  switch (t.op) {
    case UserOp::kCpuid:
      return CpuidLoop(n);
    case UserOp::kPortOut:
    case UserOp::kPortIn:
      return PortLoop(t, n, error);
    case UserOp::kIdle:
      return ring_.empty() ? HltSleeps(n) : HltRing(cpu, n, error);
    case UserOp::kHypercall: {
      const Vendor vendor = HypercallVendor();
      for (uint64_t i = 0; i < n; ++i) user::Hypercall(vendor);
      return n;
    }
    case UserOp::kMsrRead:
    case UserOp::kMsrWrite:
    case UserOp::kIcrSelfIpi:
      return MsrLoop(t, cpu, n, error);
    default:
      *error = "exit_stress has no driver for " + std::string(Row(e).name);
      return 0;
  }
}

// We are pinned on `cpu`, so the msr driver runs each access locally.
uint64_t RealEnv::MsrLoop(const UserTrigger& t, int cpu, uint64_t n, std::string* error) {
  MsrFile f(cpu, t.op != UserOp::kMsrRead);
  if (!f.ok()) {
    *error = f.error();
    return 0;
  }
  uint64_t v = 0, done = 0;
  if (t.op == UserOp::kMsrRead) {
    for (; done < n && f.Read(t.operand, &v); ++done) {
    }
  } else if (t.op == UserOp::kMsrWrite) {
    for (; done < n && f.Write(t.operand, 0); ++done) {
    }
  } else {
    uint32_t id;
    {
      std::lock_guard lock(mu_);
      auto it = x2apic_id_.find(cpu);
      if (it == x2apic_id_.end()) {
        *error = "no x2APIC ID known for CPU " + std::to_string(cpu);
        return 0;
      }
      id = it->second;
    }
    // Fixed, physical, no shorthand, destination = own x2APIC ID: the shape
    // KVM's x2APIC ICR fastpath accepts. The reschedule vector is harmless
    // when nothing needs rescheduling.
    const uint64_t icr = (uint64_t{id} << 32) | kRescheduleVector;
    for (; done < n && f.Write(t.operand, icr); ++done) {
    }
  }
  if (done != n) *error = Errno("MSR access through " + MsrFile::Path(cpu));
  return done;
}

std::optional<Env::Accounting> RealEnv::GuestAccounting(GuestExit e, std::span<const int> cpus) {
  if (Row(e).user.op != UserOp::kIdle) return std::nullopt;
  // Sum the usage of the cpuidle states whose entry executes HLT: ACPI "C1"
  // ("ACPI HLT"), the haltpoll driver's "haltpoll", the default "HLT".
  Accounting a;
  for (int cpu : cpus) {
    for (int s = 0;; ++s) {
      std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cpuidle/state" +
                        std::to_string(s) + "/";
      if (access(dir.c_str(), F_OK) != 0) break;
      std::string name = ReadFile(dir + "name"), desc = ReadFile(dir + "desc");
      bool hlt = name != "POLL" && (desc.find("HLT") != std::string::npos || name == "haltpoll" ||
                                    name == "HLT");
      if (!hlt) continue;
      a.value += std::strtoull(ReadFile(dir + "usage").c_str(), nullptr, 10);
      if (a.source.find(name) == std::string::npos)
        a.source += (a.source.empty() ? "cpuidle state usage: " : ", ") + name + " (" + desc + ")";
    }
  }
  return a;  // source "" means: no cpuidle HLT states, use the fallback
}

}  // namespace exitstats::guest
