// exitdump: runs one fixed workload in a single-vCPU VM on /dev/kvm and prints
// the per-reason exit counts and cycles that the guest read from the
// exit-statistics leaves before and after it (the leaves are per-VM, so the
// guest of the measured VM has to read them). ept-report compares two dumps
// (EPT and shadow paging). The workload and the dump format are documented
// in README.md; guest.S is the guest.
//
// usage: exitdump [--iterations N] [--touch-pages P] [--switches M]
//                 [--abi sjsu|f22] [--mode LABEL] [--timeout S] [--no-vmcall]
// --no-vmcall leaves the hypercalls out (a KVM without them, e.g. kvm_pvm).
// Exit codes: 0 dumped and the checks passed; 1 a check failed; 2 usage;
// 3 the VMM failed (no /dev/kvm, unexpected exit); 4 the exit-statistics
// leaves are absent (unpatched kernel): nothing to dump.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "dump_format.h"
#include "exitstats/abi.h"
#include "exitstats/reasons.h"
#include "harness/format.h"
#include "harness/host_cpu.h"
#include "harness/kvm.h"
#include "harness/protected_mode.h"
#include "harness/vcpu_runner.h"

extern "C" const uint8_t exitdump_guest[], exitdump_guest_end[], exitdump_guest_vmcall[];

namespace {

// Guest physical layout; guest.S has the same numbers.
constexpr uint64_t kLoad = 0x10000, kParams = 0x8000, kBefore = 0x20000, kAfter = 0x30000,
                   kProbes = 0x38000;
constexpr uint64_t kMemSize = 64ull << 20;
constexpr uint16_t kPortIo = 0x1001, kPortDone = 0x1002;
constexpr uint32_t kMaxTouchPages = (kMemSize - (16ull << 20)) / 4096;

// Which paging mode KVM runs its guests with, from the module parameters.
std::string DetectMode() {
  for (const char* p : {"/sys/module/kvm_intel/parameters/ept", "/sys/module/kvm_amd/parameters/npt"}) {
    std::ifstream f(p);
    std::string v;
    if (f >> v) return (v == "Y" || v == "1") ? "ept" : "shadow";
  }
  return "unknown";
}

struct Options {
  uint32_t iterations = 2000, touch_pages = 4096, switches = 1000, timeout = 600;
  bool vmcall = true;
  std::string abi = "sjsu", mode;
};

struct Result {
  exitdump::Dump before, after;
  exitdump::Probes probes;
  uint64_t io_exits = 0, hlt_exits = 0;
  double seconds = 0;
};

// The workload in a one-vCPU VM on the harness's runner; throws on anything
// unexpected (no /dev/kvm, an exit the workload does not make, the timeout).
Result RunVm(const Options& o, bool amd, const exitstats::Profile& prof) {
  harness::Kvm kvm;
  harness::Vm vm = kvm.CreateVm();
  // Needed on VMX without unrestricted guest (shadow paging): KVM's
  // real-mode/TSS helpers live there.
  vm.SetTssAddr();
  // 4 KiB host pages: with THP one fault would map 2 MiB and the first-touch
  // count would say nothing about per-page EPT violations.
  uint8_t* g = vm.AddMemory(0, 0, kMemSize, /*no_huge=*/true);

  const size_t code = exitdump_guest_end - exitdump_guest;
  std::memcpy(g + kLoad, exitdump_guest, code);
  if (amd) g[kLoad + (exitdump_guest_vmcall - exitdump_guest) + 2] = 0xd9;  // VMMCALL
  uint32_t params[9] = {0x50444D58, o.iterations, o.touch_pages, o.switches, prof.reason_cycles,
                        exitdump::kReasons, prof.total_cycles, o.vmcall ? o.iterations : 0,
                        prof.reason_exits};
  std::memcpy(g + kParams, params, sizeof params);

  std::vector<harness::Vcpu> vcpus;
  vcpus.push_back(vm.CreateVcpu(0));
  // The guest turns paging on itself (that is part of the workload).
  harness::EnterFlatProtectedMode(vcpus[0], kLoad);

  Result res;
  harness::VcpuHooks hooks;
  hooks.exit = [&](const harness::ExitContext&, harness::Exit& e) {
    if (std::holds_alternative<harness::HltExit>(e)) {
      res.hlt_exits++;
      return harness::Next::kResume;
    }
    if (auto* io = std::get_if<harness::IoOut>(&e)) {
      if (io->port == kPortIo) {
        res.io_exits++;
        return harness::Next::kResume;
      }
      if (io->port == kPortDone) return harness::Next::kStop;
    }
    return harness::Next::kUnexpected;
  };
  // A guest that never exits to us (a fault loop, a hang in KVM) is kicked
  // out of KVM_RUN at the deadline; the failure says where it was.
  hooks.timeout = [&](uint32_t) {
    const kvm_regs now = vcpus[0].GetRegs();
    return harness::Format(
        "guest did not finish in %u s: RIP=0x%llx ESI=0x%llx EDI=0x%llx; VMM saw %llu HLT, %llu I/O",
        o.timeout, (unsigned long long)now.rip, (unsigned long long)now.rsi,
        (unsigned long long)now.rdi, (unsigned long long)res.hlt_exits,
        (unsigned long long)res.io_exits);
  };
  hooks.running = "the exitdump workload";
  const auto t0 = harness::Clock::now();
  harness::VcpuRunner runner(vm, vcpus);
  runner.Run(0, hooks, t0 + std::chrono::seconds(o.timeout));
  res.seconds = std::chrono::duration<double>(harness::Clock::now() - t0).count();
  res.before = exitdump::Dump::FromGuest(g + kBefore);
  res.after = exitdump::Dump::FromGuest(g + kAfter);
  res.probes = exitdump::Probes::FromGuest(g + kProbes);
  return res;
}

bool ParseU32(const char* s, uint32_t& out) {
  char* end;
  unsigned long v = std::strtoul(s, &end, 0);
  if (*s == '\0' || *end != '\0' || v > 0xffffffffUL) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    bool ok = i + 1 < argc;
    if (ok && a == "--iterations") ok = ParseU32(argv[++i], o.iterations);
    else if (ok && a == "--touch-pages") ok = ParseU32(argv[++i], o.touch_pages);
    else if (ok && a == "--switches") ok = ParseU32(argv[++i], o.switches);
    else if (ok && a == "--abi") o.abi = argv[++i];
    else if (ok && a == "--mode") o.mode = argv[++i];
    else if (a == "--no-vmcall") o.vmcall = false, ok = true;
    else if (ok && a == "--timeout") ok = ParseU32(argv[++i], o.timeout);
    else ok = false;
    if (!ok) {
      std::fprintf(stderr,
                   "usage: exitdump [--iterations N] [--touch-pages P] [--switches M] "
                   "[--abi sjsu|f22] [--mode LABEL] [--timeout S] [--no-vmcall]\n");
      return 2;
    }
  }
  auto prof = exitstats::ProfileByName(o.abi);
  if (!prof || o.touch_pages < 1 || o.touch_pages > kMaxTouchPages) {
    std::fprintf(stderr, "exitdump: --abi must be sjsu or f22; --touch-pages 1..%u\n",
                 kMaxTouchPages);
    return 2;
  }
  if (o.mode.empty()) o.mode = DetectMode();
  // EXITDUMP_HYPERCALL=vmcall|vmmcall overrides the vendor (for KVM modules
  // that are neither, e.g. kvm_pvm).
  const bool amd = harness::HypercallIsVmmcall("EXITDUMP_HYPERCALL");

  Result res;
  try {
    res = RunVm(o, amd, *prof);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exitdump: %s\n", e.what());
    return 3;
  }
  const exitstats::Regs& disc = res.after.discovery;
  if (disc.eax != exitstats::kSignature || disc.ebx != exitstats::kAbiVersion) {
    std::printf("exitdump: the exit-statistics leaves are absent: CPUID 0x4FFFFFF0 in the guest "
                "gave EAX=0x%08x EBX=0x%08x (want signature 0x%08x, version %u)\n",
                disc.eax, disc.ebx, exitstats::kSignature, exitstats::kAbiVersion);
    return 4;
  }

  exitdump::Delta d = exitdump::Subtract(res.before, res.after);
  const char* vendor = (disc.edx & exitstats::flag::kVmx)   ? "vmx"
                       : (disc.edx & exitstats::flag::kSvm) ? "svm"
                                                            : "unknown";
  exitdump::Meta meta{o.mode, vendor, std::string(prof->name), o.iterations,
                      o.touch_pages, o.switches, res.seconds, o.vmcall ? o.iterations : 0};
  std::fputs(exitdump::Format(meta, d).c_str(), stdout);
  auto checks = exitdump::Check(meta, d);
  checks.push_back(exitdump::CheckProbes(res.probes));
  bool ok = true;
  for (const auto& c : checks) {
    std::printf("check\t%s\t%s\t%s\n", c.name.c_str(), c.pass ? "PASS" : "FAIL", c.detail.c_str());
    ok &= c.pass;
  }
  // The VMM's own view must agree with the leaves for the exits it sees.
  if (res.hlt_exits != o.iterations || res.io_exits != o.iterations) {
    std::printf("check\tvmm-saw-workload\tFAIL\tVMM saw %llu HLT and %llu I/O exits, want %u each\n",
                static_cast<unsigned long long>(res.hlt_exits),
                static_cast<unsigned long long>(res.io_exits), o.iterations);
    ok = false;
  }
  return ok ? 0 : 1;
}
