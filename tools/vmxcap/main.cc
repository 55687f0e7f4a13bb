// vmxcap: prints the VMX capability report of CPU 0 (or --cpu N).
//
// Exit codes: 0 report printed; 1 VMX absent (the report says so, and on AMD
// prints the SVM feature leaf); 2 usage; 3 the MSRs could not be read (no
// /dev/cpu/N/msr: CONFIG_X86_MSR, `modprobe msr`, root).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "vmxcap.h"

int main(int argc, char** argv) {
  int cpu = 0;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--cpu") && i + 1 < argc) {
      cpu = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: vmxcap [--cpu N]\n");
      return 2;
    }
  }
  const std::string dev = "/dev/cpu/" + std::to_string(cpu) + "/msr";
  // Opened lazily: the AMD / no-VMX report needs no MSR at all.
  int fd = -2;
  int open_errno = 0;
  auto read_msr = [&](uint32_t index) -> std::optional<uint64_t> {
    if (fd == -2) {
      fd = open(dev.c_str(), O_RDONLY);
      open_errno = errno;
      if (fd < 0) std::fprintf(stderr, "vmxcap: %s: %s\n", dev.c_str(), std::strerror(open_errno));
    }
    if (fd < 0) return std::nullopt;
    uint64_t v;
    // The msr driver takes the MSR index as the file offset.
    if (pread(fd, &v, sizeof v, index) != sizeof v) return std::nullopt;
    return v;
  };
  vmxcap::Report rep = vmxcap::MakeReport(exitstats::NativeCpuid, read_msr);
  std::fputs(rep.text.c_str(), stdout);
  if (fd >= 0) close(fd);
  return static_cast<int>(rep.status);
}
