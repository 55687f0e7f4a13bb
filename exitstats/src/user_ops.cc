#include "exitstats/user_ops.h"

#include <fcntl.h>
#include <sys/io.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace exitstats::user {
namespace {
std::string Hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", v);
  return b;
}
}  // namespace

void CpuidLeaf0() {
  uint32_t a = 0, b, c = 0, d;
  asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
}

const std::string& GrantPort(uint16_t port) {
  // std::map: a reference to an element stays valid as others are added.
  thread_local std::map<uint16_t, std::string> granted;
  auto it = granted.find(port);
  if (it != granted.end()) return it->second;
  std::string why;
  if (ioperm(port, 1, 1) != 0)
    why = "ioperm(" + Hex(port) + "): " + std::strerror(errno) +
          (errno == EPERM ? " (needs root: CAP_SYS_RAWIO)"
                          : " (kernel without CONFIG_X86_IOPL_IOPERM, or lockdown?)");
  return granted[port] = why;
}

void PortOut(uint16_t port, uint8_t value) {
  asm volatile("outb %0, %1" ::"a"(value), "Nd"(port) : "memory");
}

uint8_t PortIn(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
  return v;
}

void Hypercall(Vendor vendor) {
  unsigned long ax = 0xFFFF;  // no such hypercall
  if (vendor == Vendor::kSvm)
    asm volatile("vmmcall" : "+a"(ax) : : "memory");
  else
    asm volatile("vmcall" : "+a"(ax) : : "memory");
}

std::string HypercallAvailable(Vendor vendor) {
  pid_t pid = fork();
  if (pid == 0) {
    Hypercall(vendor);
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return "fork failed";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return std::string(vendor == Vendor::kSvm ? "vmmcall" : "vmcall") +
         " from user mode killed a probe process (" +
         (WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "nonzero exit") +
         "): not a KVM guest that intercepts it";
}

std::string MsrFile::Path(int cpu) { return "/dev/cpu/" + std::to_string(cpu) + "/msr"; }

MsrFile::MsrFile(int cpu, bool write)
    : fd_(open(Path(cpu).c_str(), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC)) {
  if (fd_ < 0) error_ = "open " + Path(cpu) + ": " + std::strerror(errno);
}

MsrFile::~MsrFile() {
  if (fd_ >= 0) close(fd_);
}

bool MsrFile::Read(uint32_t msr, uint64_t* v) const { return pread(fd_, v, 8, msr) == 8; }
bool MsrFile::Write(uint32_t msr, uint64_t v) const { return pwrite(fd_, &v, 8, msr) == 8; }

std::string MsrFile::Available() {
  if (geteuid() != 0) return "not root: /dev/cpu/N/msr needs root (CAP_SYS_RAWIO)";
  if (access(Path(0).c_str(), F_OK) == 0) return "";
  // The msr driver may be a module that is not loaded yet.
  if (std::system("modprobe msr >/dev/null 2>&1") == 0 && access(Path(0).c_str(), F_OK) == 0)
    return "";
  return Path(0) + " is missing and `modprobe msr` did not create it (kernel without "
                   "CONFIG_X86_MSR?)";
}

}  // namespace exitstats::user
