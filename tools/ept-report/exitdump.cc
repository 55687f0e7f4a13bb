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
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <csignal>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dump_format.h"
#include "exitstats/abi.h"
#include "exitstats/cpuid.h"
#include "exitstats/reasons.h"

extern "C" const uint8_t exitdump_guest[], exitdump_guest_end[], exitdump_guest_vmcall[];

namespace {

// Guest physical layout; guest.S has the same numbers.
constexpr uint64_t kLoad = 0x10000, kParams = 0x8000, kBefore = 0x20000, kAfter = 0x30000,
                   kProbes = 0x38000;
constexpr uint64_t kMemSize = 64ull << 20;
constexpr uint16_t kPortIo = 0x1001, kPortDone = 0x1002;
constexpr uint32_t kMaxTouchPages = (kMemSize - (16ull << 20)) / 4096;

struct Fail : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int Ioctl(int fd, unsigned long req, const char* name, unsigned long arg = 0) {
  int r = ioctl(fd, req, arg);
  if (r < 0) throw Fail(std::string(name) + ": " + std::strerror(errno));
  return r;
}

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

std::string ToHex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return buf;
}

Result RunVm(const Options& o, bool amd, const exitstats::Profile& prof) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) throw Fail(std::string("/dev/kvm: ") + std::strerror(errno));
  int vm = Ioctl(kvm, KVM_CREATE_VM, "KVM_CREATE_VM");
  // Needed on VMX without unrestricted guest (shadow paging): KVM's
  // real-mode/TSS helpers live in these three pages below 4 GiB.
  Ioctl(vm, KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", 0xfffbd000);

  void* mem = mmap(nullptr, kMemSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw Fail("mmap guest memory");
  // 4 KiB host pages: with THP one fault would map 2 MiB and the first-touch
  // count would say nothing about per-page EPT violations.
  madvise(mem, kMemSize, MADV_NOHUGEPAGE);
  auto* g = static_cast<uint8_t*>(mem);
  kvm_userspace_memory_region region{0, 0, 0, kMemSize, reinterpret_cast<uint64_t>(mem)};
  Ioctl(vm, KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION",
        reinterpret_cast<unsigned long>(&region));

  const size_t code = exitdump_guest_end - exitdump_guest;
  std::memcpy(g + kLoad, exitdump_guest, code);
  if (amd) g[kLoad + (exitdump_guest_vmcall - exitdump_guest) + 2] = 0xd9;  // VMMCALL
  uint32_t params[9] = {0x50444D58, o.iterations, o.touch_pages, o.switches, prof.reason_cycles,
                        exitdump::kReasons, prof.total_cycles, o.vmcall ? o.iterations : 0,
                        prof.reason_exits};
  std::memcpy(g + kParams, params, sizeof params);

  int vcpu = Ioctl(vm, KVM_CREATE_VCPU, "KVM_CREATE_VCPU", 0);
  int run_size = Ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE");
  auto* run = static_cast<kvm_run*>(
      mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  if (run == MAP_FAILED) throw Fail("mmap kvm_run");

  // Flat 32-bit protected mode, paging off: the guest turns paging on itself
  // (that is part of the workload).
  kvm_sregs s;
  Ioctl(vcpu, KVM_GET_SREGS, "KVM_GET_SREGS", reinterpret_cast<unsigned long>(&s));
  kvm_segment seg{};
  seg.base = 0;
  seg.limit = 0xffffffff;
  seg.present = 1;
  seg.s = 1;
  seg.db = 1;
  seg.g = 1;
  seg.selector = 0x10;
  seg.type = 3;  // data, read/write, accessed
  s.ds = s.es = s.fs = s.gs = s.ss = seg;
  seg.selector = 0x08;
  seg.type = 11;  // code, execute/read, accessed
  s.cs = seg;
  s.cr0 = 0x11;  // PE | ET
  s.cr4 = 0;
  s.efer = 0;
  Ioctl(vcpu, KVM_SET_SREGS, "KVM_SET_SREGS", reinterpret_cast<unsigned long>(&s));
  kvm_regs r{};
  r.rip = kLoad;
  r.rflags = 2;
  Ioctl(vcpu, KVM_SET_REGS, "KVM_SET_REGS", reinterpret_cast<unsigned long>(&r));

  Result res;
  auto t0 = std::chrono::steady_clock::now();
  // A guest that never exits to us (a fault loop, a hang in KVM) would keep
  // KVM_RUN busy forever: SIGALRM every second interrupts it (EINTR) so the
  // deadline is checked and the failure says where the guest was.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigaction(SIGALRM, &sa, nullptr);
  itimerval tick{{1, 0}, {1, 0}};
  setitimer(ITIMER_REAL, &tick, nullptr);
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (secs < o.timeout) continue;
        kvm_regs now{};
        ioctl(vcpu, KVM_GET_REGS, &now);
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "guest did not finish in %u s: RIP=0x%llx ESI=0x%llx EDI=0x%llx; VMM saw %llu HLT, %llu I/O",
                      o.timeout, (unsigned long long)now.rip, (unsigned long long)now.rsi,
                      (unsigned long long)now.rdi, (unsigned long long)res.hlt_exits,
                      (unsigned long long)res.io_exits);
        throw Fail(buf);
      }
      throw Fail(std::string("KVM_RUN: ") + std::strerror(errno));
    }
    switch (run->exit_reason) {
      case KVM_EXIT_HLT:
        res.hlt_exits++;
        continue;
      case KVM_EXIT_IO:
        if (run->io.port == kPortIo) {
          res.io_exits++;
          continue;
        }
        if (run->io.port == kPortDone) break;
        throw Fail("unexpected I/O to port " + std::to_string(run->io.port));
      case KVM_EXIT_SHUTDOWN: {
        kvm_regs now{};
        ioctl(vcpu, KVM_GET_REGS, &now);
        throw Fail("guest triple-faulted (KVM_EXIT_SHUTDOWN) at RIP=0x" + ToHex(now.rip));
      }
      case KVM_EXIT_FAIL_ENTRY:
        throw Fail("VM entry failed, hardware reason " +
                   std::to_string(run->fail_entry.hardware_entry_failure_reason));
      case KVM_EXIT_INTERNAL_ERROR:
        throw Fail("KVM internal error, suberror " + std::to_string(run->internal.suberror));
      case KVM_EXIT_MMIO:
        throw Fail("guest touched unmapped memory at " + std::to_string(run->mmio.phys_addr));
      default:
        throw Fail("unexpected exit " + std::to_string(run->exit_reason));
    }
    break;
  }
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.before = exitdump::Dump::FromGuest(g + kBefore);
  res.after = exitdump::Dump::FromGuest(g + kAfter);
  res.probes = exitdump::Probes::FromGuest(g + kProbes);
  munmap(run, run_size);
  close(vcpu);
  close(vm);
  munmap(mem, kMemSize);
  close(kvm);
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
  // The hypercall must match the CPU vendor, else the first one is a #UD that
  // KVM answers by patching the instruction (one extra exception exit).
  // The /sys/module/kvm_{intel,amd} directories do not tell: a kernel with
  // both built in has both. EXITDUMP_HYPERCALL=vmcall|vmmcall overrides (for
  // KVM modules that are neither, e.g. kvm_pvm).
  const uint32_t vendor_ebx = exitstats::NativeCpuid(0, 0).ebx;
  bool amd = vendor_ebx == 0x68747541 /* Auth */ || vendor_ebx == 0x6f677948 /* Hygo */;
  if (const char* h = getenv("EXITDUMP_HYPERCALL")) amd = std::string(h) == "vmmcall";

  Result res;
  try {
    res = RunVm(o, amd, *prof);
  } catch (const Fail& e) {
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
