// Move-only RAII wrappers for /dev/kvm: Kvm -> Vm -> Vcpu (rust-vmm style),
// ioctl wrappers in pairs (raw result / checked, naming the ioctl) and a typed
// exit returned by Vcpu::Run().
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "harness/stats.h"

namespace harness {

// A failed ioctl or system call; what() names it and the errno.
class KvmError : public std::runtime_error {
 public:
  KvmError(const std::string& what, int err);
  int error() const { return err_; }

 private:
  int err_;
};

// Owns one file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

// Owns one mmap()ed range; unmaps it on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  Mapping(Mapping&& o) noexcept : addr_(o.addr_), size_(o.size_) { o.addr_ = nullptr; }
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// The ioctl pair. Raw: returns ioctl()'s result (errno set on -1), retrying
// nothing. Checked: throws KvmError("KVM_FOO: <strerror>") on failure.
int RawIoctl(int fd, unsigned long request, void* arg);
int RawIoctl(int fd, unsigned long request, unsigned long arg);
int CheckedIoctl(int fd, unsigned long request, const char* name, void* arg);
int CheckedIoctl(int fd, unsigned long request, const char* name, unsigned long arg);
// Checked ioctl named after its request macro.
#define HARNESS_IOCTL(fd, request, arg) \
  ::harness::CheckedIoctl((fd), (request), #request, (arg))

// ---- Typed exits (KVM_RUN results) ----------------------------------------
// KVM_EXIT_IO, one type per direction so that the data's writability follows
// it: an OUT's bytes are the guest's to read, an IN's are the VMM's to fill
// before the next Run(). `data` is size * count bytes in the kvm_run page.
template <class Byte>
struct PortIo {
  uint16_t port;
  uint8_t size;    // bytes per access
  uint32_t count;  // accesses (string I/O)
  std::span<Byte> data;
};
using IoOut = PortIo<const uint8_t>;
using IoIn = PortIo<uint8_t>;
struct HltExit {};
struct MmioExit {
  uint64_t addr;
  bool write;
  uint32_t len;
};
// KVM_EXIT_X86_RDMSR/WRMSR (user-space MSR handling): set *data (reads) and
// *error before the next Run().
struct MsrExit {
  bool write;
  uint32_t index;
  uint32_t reason;  // KVM_MSR_EXIT_REASON_*
  uint64_t* data;
  uint8_t* error;
};
struct HypercallExit {
  uint64_t nr;
};
struct ShutdownExit {};
struct FailEntryExit {
  uint64_t hardware_reason;
};
struct InternalErrorExit {
  uint32_t suberror;
};
struct SystemEventExit {
  uint32_t type;
};
// KVM_RUN returned EINTR (a signal, e.g. the runner's watchdog kick).
struct InterruptedExit {};
struct OtherExit {
  uint32_t reason;
};
using Exit = std::variant<IoOut, IoIn, HltExit, MmioExit, MsrExit, HypercallExit, ShutdownExit,
                          FailEntryExit, InternalErrorExit, SystemEventExit,
                          InterruptedExit, OtherExit>;

// "KVM_EXIT_IO" etc.
std::string ExitReasonName(uint32_t reason);
// One line with the exit's name and fields.
std::string Describe(const Exit& exit);

// Three pages below 4 GiB, outside every memslot the project's guests use.
inline constexpr uint64_t kTssAddr = 0xfffbd000;

class Vm;

class Vcpu {
 public:
  Vcpu(Vcpu&&) noexcept = default;
  Vcpu& operator=(Vcpu&&) noexcept = default;
  int fd() const { return fd_.get(); }
  uint32_t id() const { return id_; }
  kvm_run* run() const { return reinterpret_cast<kvm_run*>(run_.data()); }

  // KVM_RUN and decode. EINTR becomes InterruptedExit; other errors throw.
  Exit Run();

  kvm_regs GetRegs() const;
  void SetRegs(const kvm_regs& r);
  kvm_sregs GetSregs() const;
  void SetSregs(const kvm_sregs& s);
  void SetCpuid(const std::vector<kvm_cpuid_entry2>& entries);
  // General and control registers, for "unexpected exit" messages.
  std::string DescribeRegs() const;
  StatsReader Stats() const;

 private:
  friend class Vm;
  Vcpu(Fd fd, Mapping run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}
  Fd fd_;
  Mapping run_;
  uint32_t id_;
};

struct MemoryRegion {
  uint32_t slot;
  uint64_t gpa;
  Mapping host;
};

class Vm {
 public:
  Vm(Vm&&) noexcept = default;
  Vm& operator=(Vm&&) noexcept = default;
  int fd() const { return fd_.get(); }

  int CheckExtension(long cap) const;
  void EnableCap(uint32_t cap, uint64_t arg0);
  // Anonymous, zeroed memory at gpa; `no_huge` keeps it 4 KiB-granular on the
  // host so every guest page's first touch is a separate stage-2 fault.
  uint8_t* AddMemory(uint32_t slot, uint64_t gpa, size_t size, bool no_huge = false);
  // Host address of [gpa, gpa+len) inside one region; throws if outside.
  uint8_t* Host(uint64_t gpa, size_t len) const;
  void CreateIrqchip();
  // KVM_SET_TSS_ADDR at kTssAddr: VMX without unrestricted guest (real mode,
  // shadow paging) keeps three pages of its own there. Harmless elsewhere;
  // skipped when KVM lacks the capability.
  void SetTssAddr();
  Vcpu CreateVcpu(uint32_t id);
  StatsReader Stats() const;

 private:
  friend class Kvm;
  Vm(Fd fd, size_t run_size) : fd_(std::move(fd)), run_size_(run_size) {}
  Fd fd_;
  size_t run_size_;
  std::vector<MemoryRegion> regions_;
};

class Kvm {
 public:
  // Throws KvmError if the device cannot be opened or has the wrong API.
  explicit Kvm(const char* path = "/dev/kvm");
  // nullopt with *why set when /dev/kvm is absent or unusable (tests skip).
  static std::optional<Kvm> TryOpen(std::string* why);

  Kvm(Kvm&&) noexcept = default;
  Kvm& operator=(Kvm&&) noexcept = default;
  int fd() const { return fd_.get(); }
  int CheckExtension(long cap) const;
  std::vector<kvm_cpuid_entry2> SupportedCpuid() const;
  Vm CreateVm() const;

 private:
  Fd fd_;
  size_t run_size_ = 0;
};

}  // namespace harness
