// Prints the exit catalogue as JSON, so that consumers outside C++ (the
// benchmark report, its tests) read the rows instead of copying them.
#include <cstdio>

#include "exitstats/catalogue.h"

int main() {
  std::printf("[\n");
  bool first = true;
  for (const exitstats::ExitType& e : exitstats::Catalogue()) {
    std::printf("%s  {\"name\": \"%.*s\", \"sdm_reason\": %u, \"kvm_stat\": \"%.*s\", "
                "\"needs_irqchip\": %s, \"needs_no_irqchip\": %s}",
                first ? "" : ",\n", static_cast<int>(e.name.size()), e.name.data(),
                e.sdm_reason, static_cast<int>(e.kvm_stat.size()), e.kvm_stat.data(),
                (e.needs & exitstats::kNeedIrqchip) ? "true" : "false",
                (e.needs & exitstats::kNeedNoIrqchip) ? "true" : "false");
    first = false;
  }
  std::printf("\n]\n");
  return 0;
}
