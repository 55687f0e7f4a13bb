#include "exitstats/catalogue.h"

#include <array>
#include <stdexcept>

#include "exitstats/reasons.h"

namespace exitstats {
namespace {

constexpr std::array kCatalogue = {
    ExitType{ExitKind::kCpuid, "cpuid", reason::kCpuid, "exits", kNeedNone},
    ExitType{ExitKind::kHlt, "hlt", reason::kHlt, "halt_exits", kNeedNone},
    ExitType{ExitKind::kIoUser, "io_user", reason::kIo, "io_exits", kNeedNone},
    ExitType{ExitKind::kIoKernel, "io_kernel", reason::kIo, "exits", kNeedIrqchip},
    ExitType{ExitKind::kRdmsr, "rdmsr", reason::kRdmsr, "exits", kNeedNone},
    ExitType{ExitKind::kWrmsr, "wrmsr", reason::kWrmsr, "exits", kNeedNone},
    ExitType{ExitKind::kWrmsrFast, "wrmsr_fastpath", reason::kWrmsr, "exits", kNeedIrqchip},
    ExitType{ExitKind::kVmcall, "vmcall", reason::kVmcall, "hypercalls", kNeedNone},
    ExitType{ExitKind::kFirstTouch, "first_touch", reason::kEptViolation, "exits", kNeedNone},
};

}  // namespace

std::span<const ExitType> Catalogue() { return kCatalogue; }

const ExitType& Lookup(ExitKind kind) {
  for (const ExitType& e : kCatalogue)
    if (e.kind == kind) return e;
  throw std::logic_error("exit kind missing from the catalogue");
}

std::optional<ExitType> LookupByName(std::string_view name) {
  for (const ExitType& e : kCatalogue)
    if (e.name == name) return e;
  return std::nullopt;
}

}  // namespace exitstats
