#include "harness/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

#include "uapi.h"

namespace harness {

KvmError::KvmError(const std::string& what, int err)
    : std::runtime_error(what + ": " + std::strerror(err) + " (errno " + std::to_string(err) +
                         ")"),
      err_(err) {}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}
Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (addr_) ::munmap(addr_, size_);
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
  }
  return *this;
}
Mapping::~Mapping() {
  if (addr_) ::munmap(addr_, size_);
}

int RawIoctl(int fd, unsigned long request, void* arg) { return ::ioctl(fd, request, arg); }
int RawIoctl(int fd, unsigned long request, unsigned long arg) {
  return ::ioctl(fd, request, arg);
}
int CheckedIoctl(int fd, unsigned long request, const char* name, void* arg) {
  int r = RawIoctl(fd, request, arg);
  if (r < 0) throw KvmError(name, errno);
  return r;
}
int CheckedIoctl(int fd, unsigned long request, const char* name, unsigned long arg) {
  int r = RawIoctl(fd, request, arg);
  if (r < 0) throw KvmError(name, errno);
  return r;
}

// ---- Kvm ------------------------------------------------------------------
Kvm::Kvm(const char* path) {
  int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) throw KvmError(std::string("open ") + path, errno);
  fd_ = Fd(fd);
  int api = HARNESS_IOCTL(fd, KVM_GET_API_VERSION, 0ul);
  if (api != KVM_API_VERSION)
    throw KvmError("KVM_GET_API_VERSION returned " + std::to_string(api), EINVAL);
  run_size_ = HARNESS_IOCTL(fd, KVM_GET_VCPU_MMAP_SIZE, 0ul);
}

std::optional<Kvm> Kvm::TryOpen(std::string* why) {
  if (::access("/dev/kvm", F_OK) != 0) {
    *why = "/dev/kvm does not exist (no KVM on this host)";
    return std::nullopt;
  }
  try {
    return Kvm();
  } catch (const KvmError& e) {
    *why = std::string("/dev/kvm unusable: ") + e.what();
    return std::nullopt;
  }
}

int Kvm::CheckExtension(long cap) const {
  int r = RawIoctl(fd(), KVM_CHECK_EXTENSION, static_cast<unsigned long>(cap));
  return r < 0 ? 0 : r;
}

std::vector<kvm_cpuid_entry2> Kvm::SupportedCpuid() const {
  for (uint32_t n = 64;; n *= 2) {
    std::vector<uint8_t> buf(sizeof(uapi::Cpuid2Header) + n * sizeof(kvm_cpuid_entry2));
    auto* c = reinterpret_cast<uapi::Cpuid2Header*>(buf.data());
    c->nent = n;
    if (RawIoctl(fd(), uapi::kGetSupportedCpuid, c) == 0) {
      auto* e = reinterpret_cast<const kvm_cpuid_entry2*>(c + 1);
      return {e, e + c->nent};
    }
    if (errno != E2BIG || n > 4096) throw KvmError("KVM_GET_SUPPORTED_CPUID", errno);
  }
}

Vm Kvm::CreateVm() const {
  int fd = HARNESS_IOCTL(this->fd(), KVM_CREATE_VM, 0ul);
  return Vm(Fd(fd), run_size_);
}

// ---- Vm -------------------------------------------------------------------
int Vm::CheckExtension(long cap) const {
  int r = RawIoctl(fd(), KVM_CHECK_EXTENSION, static_cast<unsigned long>(cap));
  return r < 0 ? 0 : r;
}

void Vm::EnableCap(uint32_t cap, uint64_t arg0) {
  kvm_enable_cap c{};
  c.cap = cap;
  c.args[0] = arg0;
  HARNESS_IOCTL(fd(), KVM_ENABLE_CAP, &c);
}

uint8_t* Vm::AddMemory(uint32_t slot, uint64_t gpa, size_t size, bool no_huge) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (p == MAP_FAILED) throw KvmError("mmap guest memory", errno);
  Mapping m(p, size);
  // EINVAL/ENOSYS: a kernel without transparent huge pages maps 4 KiB anyway.
  if (no_huge && ::madvise(p, size, MADV_NOHUGEPAGE) != 0 && errno != EINVAL && errno != ENOSYS)
    throw KvmError("madvise(MADV_NOHUGEPAGE)", errno);
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.guest_phys_addr = gpa;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(p);
  HARNESS_IOCTL(fd(), KVM_SET_USER_MEMORY_REGION, &r);
  regions_.push_back({slot, gpa, std::move(m)});
  return regions_.back().host.data();
}

uint8_t* Vm::Host(uint64_t gpa, size_t len) const {
  for (const MemoryRegion& r : regions_)
    if (gpa >= r.gpa && gpa + len <= r.gpa + r.host.size() && gpa + len >= gpa)
      return r.host.data() + (gpa - r.gpa);
  char buf[96];
  std::snprintf(buf, sizeof buf, "guest physical 0x%" PRIx64 "+%zu is in no memslot", gpa, len);
  throw std::out_of_range(buf);
}

void Vm::CreateIrqchip() { HARNESS_IOCTL(fd(), KVM_CREATE_IRQCHIP, 0ul); }

void Vm::SetTssAddr() {
  // Unchecked: a guest that needs the area fails visibly at its first entry.
  if (CheckExtension(KVM_CAP_SET_TSS_ADDR)) RawIoctl(fd(), KVM_SET_TSS_ADDR, kTssAddr);
}

Vcpu Vm::CreateVcpu(uint32_t id) {
  Fd fd(HARNESS_IOCTL(this->fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
  void* p = ::mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw KvmError("mmap kvm_run", errno);
  return Vcpu(std::move(fd), Mapping(p, run_size_), id);
}

StatsReader Vm::Stats() const { return StatsReader(HARNESS_IOCTL(fd(), KVM_GET_STATS_FD, 0ul)); }

// ---- Vcpu -----------------------------------------------------------------
Exit Vcpu::Run() {
  if (RawIoctl(fd(), KVM_RUN, 0ul) < 0) {
    if (errno == EINTR || errno == EAGAIN) return InterruptedExit{};
    throw KvmError("KVM_RUN on vCPU " + std::to_string(id_), errno);
  }
  kvm_run* r = run();
  switch (r->exit_reason) {
    case KVM_EXIT_IO: {
      uint8_t* data = reinterpret_cast<uint8_t*>(r) + r->io.data_offset;
      const size_t len = size_t{r->io.size} * r->io.count;
      if (r->io.direction == KVM_EXIT_IO_OUT)
        return IoOut{r->io.port, r->io.size, r->io.count, {data, len}};
      return IoIn{r->io.port, r->io.size, r->io.count, {data, len}};
    }
    case KVM_EXIT_HLT:
      return HltExit{};
    case KVM_EXIT_MMIO:
      return MmioExit{r->mmio.phys_addr, r->mmio.is_write != 0, r->mmio.len};
    case KVM_EXIT_X86_RDMSR:
    case KVM_EXIT_X86_WRMSR:
      return MsrExit{r->exit_reason == KVM_EXIT_X86_WRMSR, r->msr.index, r->msr.reason,
                     reinterpret_cast<uint64_t*>(&r->msr.data), &r->msr.error};
    case KVM_EXIT_HYPERCALL:
      return HypercallExit{r->hypercall.nr};
    case KVM_EXIT_SHUTDOWN:
      return ShutdownExit{};
    case KVM_EXIT_FAIL_ENTRY:
      return FailEntryExit{r->fail_entry.hardware_entry_failure_reason};
    case KVM_EXIT_INTERNAL_ERROR:
      return InternalErrorExit{r->internal.suberror};
    case KVM_EXIT_SYSTEM_EVENT:
      return SystemEventExit{r->system_event.type};
    case KVM_EXIT_INTR:
      return InterruptedExit{};
    default:
      return OtherExit{r->exit_reason};
  }
}

kvm_regs Vcpu::GetRegs() const {
  kvm_regs r;
  HARNESS_IOCTL(fd(), KVM_GET_REGS, &r);
  return r;
}
void Vcpu::SetRegs(const kvm_regs& r) {
  HARNESS_IOCTL(fd(), KVM_SET_REGS, const_cast<kvm_regs*>(&r));
}
kvm_sregs Vcpu::GetSregs() const {
  kvm_sregs s;
  HARNESS_IOCTL(fd(), KVM_GET_SREGS, &s);
  return s;
}
void Vcpu::SetSregs(const kvm_sregs& s) {
  HARNESS_IOCTL(fd(), KVM_SET_SREGS, const_cast<kvm_sregs*>(&s));
}

void Vcpu::SetCpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  std::vector<uint8_t> buf(sizeof(uapi::Cpuid2Header) + entries.size() * sizeof(kvm_cpuid_entry2));
  auto* c = reinterpret_cast<uapi::Cpuid2Header*>(buf.data());
  c->nent = entries.size();
  std::memcpy(c + 1, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  CheckedIoctl(fd(), uapi::kSetCpuid2, "KVM_SET_CPUID2", c);
}

std::string Vcpu::DescribeRegs() const {
  kvm_regs r;
  kvm_sregs s;
  if (RawIoctl(fd(), KVM_GET_REGS, &r) < 0 || RawIoctl(fd(), KVM_GET_SREGS, &s) < 0)
    return "(registers unavailable)";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "RIP=0x%llx RSP=0x%llx RFLAGS=0x%llx RAX=0x%llx RBX=0x%llx RCX=0x%llx "
                "RDX=0x%llx RSI=0x%llx RDI=0x%llx CR0=0x%llx CR2=0x%llx CR3=0x%llx "
                "CR4=0x%llx EFER=0x%llx CS=0x%x",
                r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, s.cr0, s.cr2,
                s.cr3, s.cr4, s.efer, s.cs.selector);
  return buf;
}

StatsReader Vcpu::Stats() const {
  return StatsReader(HARNESS_IOCTL(fd(), KVM_GET_STATS_FD, 0ul));
}

// ---- Exit names -----------------------------------------------------------
std::string ExitReasonName(uint32_t reason) {
  static const char* const kNames[] = {
      "KVM_EXIT_UNKNOWN",     "KVM_EXIT_EXCEPTION",   "KVM_EXIT_IO",
      "KVM_EXIT_HYPERCALL",   "KVM_EXIT_DEBUG",       "KVM_EXIT_HLT",
      "KVM_EXIT_MMIO",        "KVM_EXIT_IRQ_WINDOW_OPEN", "KVM_EXIT_SHUTDOWN",
      "KVM_EXIT_FAIL_ENTRY",  "KVM_EXIT_INTR",        "KVM_EXIT_SET_TPR",
      "KVM_EXIT_TPR_ACCESS",  "KVM_EXIT_S390_SIEIC",  "KVM_EXIT_S390_RESET",
      "KVM_EXIT_DCR",         "KVM_EXIT_NMI",         "KVM_EXIT_INTERNAL_ERROR",
      "KVM_EXIT_OSI",         "KVM_EXIT_PAPR_HCALL",  "KVM_EXIT_S390_UCONTROL",
      "KVM_EXIT_WATCHDOG",    "KVM_EXIT_S390_TSCH",   "KVM_EXIT_EPR",
      "KVM_EXIT_SYSTEM_EVENT", "KVM_EXIT_S390_STSI",  "KVM_EXIT_IOAPIC_EOI",
      "KVM_EXIT_HYPERV",      "KVM_EXIT_ARM_NISV",    "KVM_EXIT_X86_RDMSR",
      "KVM_EXIT_X86_WRMSR",   "KVM_EXIT_DIRTY_RING_FULL", "KVM_EXIT_AP_RESET_HOLD",
      "KVM_EXIT_X86_BUS_LOCK", "KVM_EXIT_XEN",        "KVM_EXIT_RISCV_SBI",
      "KVM_EXIT_RISCV_CSR",   "KVM_EXIT_NOTIFY",      "KVM_EXIT_LOONGARCH_IOCSR",
      "KVM_EXIT_MEMORY_FAULT"};
  std::string name = reason < std::size(kNames) ? kNames[reason] : "KVM_EXIT_?";
  return name + " (" + std::to_string(reason) + ")";
}

namespace {
template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;
}  // namespace

std::string Describe(const Exit& exit) {
  char buf[160];
  return std::visit(
      Overload{
          [&](const IoOut& e) {
            std::snprintf(buf, sizeof buf, "%s port=0x%x out size=%u count=%u",
                          ExitReasonName(KVM_EXIT_IO).c_str(), e.port, e.size, e.count);
            return std::string(buf);
          },
          [&](const IoIn& e) {
            std::snprintf(buf, sizeof buf, "%s port=0x%x in size=%u count=%u",
                          ExitReasonName(KVM_EXIT_IO).c_str(), e.port, e.size, e.count);
            return std::string(buf);
          },
          [&](const HltExit&) { return ExitReasonName(KVM_EXIT_HLT); },
          [&](const MmioExit& e) {
            std::snprintf(buf, sizeof buf, "%s addr=0x%" PRIx64 " %s len=%u",
                          ExitReasonName(KVM_EXIT_MMIO).c_str(), e.addr,
                          e.write ? "write" : "read", e.len);
            return std::string(buf);
          },
          [&](const MsrExit& e) {
            std::snprintf(buf, sizeof buf, "%s msr=0x%x reason=%u",
                          ExitReasonName(e.write ? KVM_EXIT_X86_WRMSR : KVM_EXIT_X86_RDMSR)
                              .c_str(),
                          e.index, e.reason);
            return std::string(buf);
          },
          [&](const HypercallExit& e) {
            return ExitReasonName(KVM_EXIT_HYPERCALL) + " nr=" + std::to_string(e.nr);
          },
          [&](const ShutdownExit&) {
            return ExitReasonName(KVM_EXIT_SHUTDOWN) + " (triple fault?)";
          },
          [&](const FailEntryExit& e) {
            std::snprintf(buf, sizeof buf, "%s hardware_entry_failure_reason=0x%" PRIx64,
                          ExitReasonName(KVM_EXIT_FAIL_ENTRY).c_str(), e.hardware_reason);
            return std::string(buf);
          },
          [&](const InternalErrorExit& e) {
            return ExitReasonName(KVM_EXIT_INTERNAL_ERROR) +
                   " suberror=" + std::to_string(e.suberror);
          },
          [&](const SystemEventExit& e) {
            return ExitReasonName(KVM_EXIT_SYSTEM_EVENT) + " type=" + std::to_string(e.type);
          },
          [&](const InterruptedExit&) { return std::string("KVM_RUN interrupted (EINTR)"); },
          [&](const OtherExit& e) { return ExitReasonName(e.reason); },
      },
      exit);
}

}  // namespace harness
