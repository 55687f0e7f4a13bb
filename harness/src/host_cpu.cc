#include "harness/host_cpu.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "exitstats/cpuid.h"

namespace harness {

bool HypercallIsVmmcall(const char* override_env) {
  if (const char* h = getenv(override_env)) return std::string_view(h) == "vmmcall";
  // A kernel with KVM built in has both /sys/module/kvm_amd and kvm_intel,
  // so ask the CPU KVM runs on: svm or vmx in its flags.
  if (FILE* f = fopen("/proc/cpuinfo", "r")) {
    char line[4096];
    int vendor = -1;
    while (vendor < 0 && fgets(line, sizeof line, f)) {
      if (strncmp(line, "flags", 5) != 0) continue;
      std::string_view l(line);
      if (l.find(" svm") != l.npos) vendor = 1;
      else if (l.find(" vmx") != l.npos) vendor = 0;
      else break;
    }
    fclose(f);
    if (vendor >= 0) return vendor == 1;
  }
  return exitstats::NativeVendor() == exitstats::Vendor::kSvm;
}

}  // namespace harness
