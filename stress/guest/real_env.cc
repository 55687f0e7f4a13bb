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

namespace exitstats::guest {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string MsrPath(int cpu) { return "/dev/cpu/" + std::to_string(cpu) + "/msr"; }

// An fd on /dev/cpu/N/msr that closes itself.
struct MsrFd {
  int fd = -1;
  MsrFd(int cpu, int flags) : fd(open(MsrPath(cpu).c_str(), flags | O_CLOEXEC)) {}
  ~MsrFd() {
    if (fd >= 0) close(fd);
  }
  bool Read(uint32_t msr, uint64_t* v) const { return pread(fd, v, 8, msr) == 8; }
  bool Write(uint32_t msr, uint64_t v) const { return pwrite(fd, &v, 8, msr) == 8; }
};

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

std::string RealEnv::ProbeMsr(bool write) {
  if (geteuid() != 0) return "not root: /dev/cpu/N/msr needs root (CAP_SYS_RAWIO)";
  if (access(MsrPath(0).c_str(), F_OK) != 0) {
    // The msr driver may be a module that is not loaded yet.
    if (std::system("modprobe msr >/dev/null 2>&1") != 0 || access(MsrPath(0).c_str(), F_OK) != 0)
      return MsrPath(0) + " is missing and `modprobe msr` did not create it (kernel without "
                          "CONFIG_X86_MSR?)";
  }
  MsrFd fd(0, write ? O_RDWR : O_RDONLY);
  if (fd.fd < 0) return Errno("open " + MsrPath(0));
  uint64_t v = 0;
  if (!fd.Read(kMsrMiscEnable, &v)) return Errno("rdmsr 0x1A0 through " + MsrPath(0));
  if (write && !fd.Write(kMsrMiscEnable, v))
    return Errno("writing MSR 0x1A0 back unchanged (msr.allow_writes=off or kernel lockdown?)");
  return "";
}

std::string RealEnv::Probe(GuestExit e) {
  switch (e) {
    case GuestExit::kCpuid:
    case GuestExit::kHlt:
      return "";
    case GuestExit::kIo: {
      if (geteuid() != 0) return "not root: ioperm(0x80) needs root (CAP_SYS_RAWIO)";
      if (ioperm(kIoPort, 1, 1) != 0)
        return Errno("ioperm(0x80) (kernel without CONFIG_X86_IOPL_IOPERM, or lockdown?)");
      ioperm(kIoPort, 1, 0);
      return "";
    }
    case GuestExit::kRdmsr:
      return ProbeMsr(false);
    case GuestExit::kWrmsr:
      return ProbeMsr(true);
    case GuestExit::kWrmsrFast: {
      if (std::string why = ProbeMsr(false); !why.empty()) return why;
      MsrFd fd(0, O_RDONLY);
      uint64_t base = 0;
      if (!fd.Read(kMsrApicBase, &base)) return Errno("rdmsr 0x1B (APIC base)");
      if (!(base & (1u << 10)))
        return "the guest's APIC is in xAPIC mode (APIC base MSR " + Hex(base) +
               "), so the ICR is MMIO, not an MSR: no fastpath WRMSR to drive (kernel without "
               "CONFIG_X86_X2APIC, or nox2apic)";
      for (int cpu : OnlineCpus()) {
        MsrFd f(cpu, O_RDONLY);
        uint64_t id = 0;
        if (f.fd < 0 || !f.Read(kMsrX2apicId, &id))
          return Errno("rdmsr 0x802 (x2APIC ID) on CPU " + std::to_string(cpu));
        x2apic_id_[cpu] = static_cast<uint32_t>(id);
      }
      MsrFd w(0, O_WRONLY);
      if (w.fd < 0) return Errno("open " + MsrPath(0) + " for writing");
      return "";
    }
  }
  return "unknown exit type";
}

namespace {

uint64_t CpuidLoop(uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t a = 0, b, c = 0, d;
    asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
  }
  return n;
}

uint64_t IoLoop(uint64_t n, std::string* error) {
  // ioperm() is per thread: oneTBB's workers need their own.
  if (ioperm(kIoPort, 1, 1) != 0) {
    *error = Errno("ioperm(0x80)");
    return 0;
  }
  for (uint64_t i = 0; i < n; ++i)
    asm volatile("outb %%al, %%dx" ::"a"(uint8_t{0}), "d"(uint16_t{kIoPort}) : "memory");
  ioperm(kIoPort, 1, 0);
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
  if (e != GuestExit::kHlt || cpus.size() < 2) return;
  ring_cpus_.assign(cpus.begin(), cpus.end());
  for (size_t i = 0; i < cpus.size(); ++i) ring_.push_back(eventfd(0, EFD_CLOEXEC));
}

void RealEnv::EndPhase(GuestExit e) {
  if (e != GuestExit::kHlt) return;
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
  switch (e) {
    case GuestExit::kCpuid:
      return CpuidLoop(n);
    case GuestExit::kIo:
      return IoLoop(n, error);
    case GuestExit::kHlt:
      return ring_.empty() ? HltSleeps(n) : HltRing(cpu, n, error);
    case GuestExit::kRdmsr:
    case GuestExit::kWrmsr:
    case GuestExit::kWrmsrFast: {
      // The msr driver runs the access on `cpu`; we are pinned there, so it
      // runs locally: one RDMSR/WRMSR exit per call, no IPI.
      MsrFd fd(cpu, e == GuestExit::kRdmsr ? O_RDONLY : O_RDWR);
      if (fd.fd < 0) {
        *error = Errno("open " + MsrPath(cpu));
        return 0;
      }
      uint64_t v = 0, done = 0;
      if (e == GuestExit::kRdmsr) {
        for (; done < n && fd.Read(kMsrMiscEnable, &v); ++done) {
        }
      } else if (e == GuestExit::kWrmsr) {
        if (!fd.Read(kMsrMiscEnable, &v)) {
          *error = Errno("rdmsr 0x1A0");
          return 0;
        }
        for (; done < n && fd.Write(kMsrMiscEnable, v); ++done) {
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
        // Fixed, physical, no shorthand, destination = own x2APIC ID: the
        // shape KVM's x2APIC ICR fastpath accepts. The reschedule vector is
        // harmless when nothing needs rescheduling.
        const uint64_t icr = (uint64_t{id} << 32) | kRescheduleVector;
        for (; done < n && fd.Write(kMsrX2apicIcr, icr); ++done) {
        }
      }
      if (done != n) *error = Errno("MSR access through " + MsrPath(cpu));
      return done;
    }
  }
  return 0;
}

std::optional<Env::Accounting> RealEnv::GuestAccounting(GuestExit e, std::span<const int> cpus) {
  if (e != GuestExit::kHlt) return std::nullopt;
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
