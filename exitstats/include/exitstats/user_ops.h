// The operations by which a Linux guest's user space causes exits, shared by
// exit_stress (stress/guest/real_env.cc) and the guest benchmark
// (bench/guest_exit_benchmark.cc), so that both drive a catalogue row the
// same way, on the port or MSR the row names. Linux/x86 only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "exitstats/reasons.h"

namespace exitstats::user {

// CPUID leaf 0: intercepted by every x86 hypervisor.
void CpuidLeaf0();

// ioperm() is per thread: every thread that touches a port asks once, and
// the answer is kept per thread and port, so that a benchmark can ask before
// every operation for the price of a lookup. "" if granted, else why not.
const std::string& GrantPort(uint16_t port);
void PortOut(uint16_t port, uint8_t value);
uint8_t PortIn(uint16_t port);

// VMCALL (Intel) or VMMCALL (AMD) with a hypercall number nobody implements.
// From CPL3 KVM takes the exit and answers -KVM_EPERM; elsewhere it may #UD.
void Hypercall(Vendor vendor);
// "" if a hypercall from user mode returns here; else why not (a child
// process tries it first, so a #UD kills the child, not the caller).
std::string HypercallAvailable(Vendor vendor);

// An fd on /dev/cpu/N/msr that closes itself. The msr driver runs the access
// on CPU N: from a thread pinned there it is one RDMSR/WRMSR exit, no IPI.
class MsrFile {
 public:
  MsrFile(int cpu, bool write);
  ~MsrFile();
  MsrFile(const MsrFile&) = delete;
  MsrFile& operator=(const MsrFile&) = delete;
  MsrFile(MsrFile&& o) noexcept : fd_(o.fd_), error_(std::move(o.error_)) { o.fd_ = -1; }

  bool ok() const { return fd_ >= 0; }
  const std::string& error() const { return error_; }  // why open() failed
  bool Read(uint32_t msr, uint64_t* v) const;
  bool Write(uint32_t msr, uint64_t v) const;

  static std::string Path(int cpu);
  // "" if /dev/cpu/0/msr exists (loading the msr module if need be), else why not.
  static std::string Available();

 private:
  int fd_ = -1;
  std::string error_;
};

}  // namespace exitstats::user
