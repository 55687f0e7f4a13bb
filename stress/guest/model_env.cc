#include "model_env.h"

#include <x86intrin.h>

namespace exitstats::guest {
namespace {
uint32_t Hi(uint64_t v) { return static_cast<uint32_t>(v >> 32); }
uint32_t Lo(uint64_t v) { return static_cast<uint32_t>(v); }

// Raw exit code of an SDM reason the triggers produce.
uint32_t RawCode(uint32_t reason, Vendor v) {
  if (v == Vendor::kVmx) return reason;
  switch (reason) {
    case reason::kCpuid: return 0x072;
    case reason::kHlt: return 0x078;
    case reason::kIo: return 0x07B;
    case reason::kRdmsr:
    case reason::kWrmsr: return 0x07C;
  }
  return 0x400;
}
}  // namespace

uint64_t ModelEnv::Tsc() { return __rdtsc(); }

void ModelEnv::Exit(uint32_t reason, uint32_t raw, bool fastpath) {
  if (fastpath && bugs_.fastpath_not_counted) return;
  uint64_t op = ops_.fetch_add(1);
  if (bugs_.lost_updates && op % 97 == 0) return;
  if (bugs_.racy_backwards && op % 509 == 0) {
    // A read-modify-write that read long ago: the count steps back.
    uint64_t v = count_[reason].load();
    count_[reason].store(v > 50 ? v - 50 : 0);
    uint64_t t = total_.load();
    total_.store(t > 50 ? t - 50 : 0);
    return;
  }
  count_[reason].fetch_add(bugs_.double_count_cpuid && reason == reason::kCpuid ? 2 : 1);
  if (!(bugs_.total_misses_io && reason == reason::kIo)) total_.fetch_add(1);
  if (raw < raw_.size()) raw_[raw].fetch_add(1);
  if (!bugs_.cycles_not_timed) {
    prev_cycles_[reason].store(cycles_[reason].fetch_add(kCyclesPerExit));
    prev_total_cycles_.store(total_cycles_.fetch_add(kCyclesPerExit));
  }
}

// With torn_reads, the high half comes from the value before the latest
// update and the low half from after it: wrong by 2^32 right after a wrap.
uint64_t ModelEnv::ReadCycles(const std::atomic<uint64_t>& c,
                              const std::atomic<uint64_t>& prev) const {
  uint64_t now = c.load();
  if (!bugs_.torn_reads) return now;
  return (prev.load() & 0xFFFFFFFF00000000ull) | (now & 0xFFFFFFFFull);
}

Regs ModelEnv::PerReason(uint32_t leaf, uint32_t sub) {
  uint32_t r = bugs_.truncates_ecx ? (sub & 0xFF) : sub;
  bool defined = IsDefined(r) || (bugs_.off_by_one_bound && r == kHighestDefinedReason + 1);
  if (!defined) return bugs_.zeros_for_undefined ? Regs{} : Regs{0, 0, 0, kUndefinedReasonEdx};
  if (!IsHandled(r, vendor_)) return {};
  uint64_t exits = count_[r].load(), cyc = ReadCycles(cycles_[r], prev_cycles_[r]);
  if (bugs_.u32_reason_counts) exits = static_cast<uint32_t>(exits);
  if (leaf == profile_.reason_exits)
    return bugs_.fallthrough_clobber ? Regs{Lo(exits), Hi(cyc), Lo(cyc), 0} : Regs{Lo(exits), 0, 0, 0};
  if (leaf == profile_.reason_cycles) return {0, Hi(cyc), Lo(cyc), 0};
  return {0, Hi(exits), Lo(exits), 0};  // 0x4FFFFFF2
}

Regs ModelEnv::Cpuid(uint32_t leaf, uint32_t sub) {
  Exit(reason::kCpuid, RawCode(reason::kCpuid, vendor_), false);  // counted on exit
  switch (leaf) {
    case 0:
      return {0xD, 0x68747541, 0x444D4163, 0x69746E65};  // "AuthenticAMD"
    case 1:
      return {0x00A00F11, 0, 1u << 31, 0x178BFBFF};  // family 25 model 1 stepping 1
    case 0x40000000:
      if (bugs_.ordinary_leaf_clobbered) return {};
      return {0x40000001, 0x4B4D564B, 0x564B4D56, 0x4D};  // "KVMKVMKVM"
  }
  if (!patched_ || leaf < leaf::kDiscovery) return {};
  const bool f22 = profile_.name == kF22.name;
  // Leaves the shape leaves out answer as on an unpatched (AMD) host.
  if (bugs_.shape != LeafShape::kAll && leaf <= leaf::kRawExits64) return {};
  if (bugs_.shape == LeafShape::kA2 &&
      !(f22 ? leaf == profile_.total_exits || leaf == profile_.total_cycles : leaf == 0x4FFFFFFF))
    return {};
  if (leaf == leaf::kDiscovery)
    return {kSignature, kAbiVersion, kHighestDefinedReason,
            (vendor_ == Vendor::kSvm ? flag::kSvm : flag::kVmx) | (f22 ? flag::kF22 : 0u) |
                (bugs_.seed ? flag::kSeeded : 0u)};
  if (leaf == leaf::kTotalExits64) {
    uint64_t t = total_.load();
    return {0, Hi(t), Lo(t), 0};
  }
  if (leaf == leaf::kRawExits64) {
    bool tracked = vendor_ == Vendor::kVmx ? sub <= kHighestDefinedReason
                                           : (sub <= 0xFF || (sub >= 0x400 && sub <= 0x40F));
    if (!tracked) return {0, 0, 0, kUndefinedReasonEdx};
    uint64_t v = raw_[sub].load();
    return {0, Hi(v), Lo(v), 0};
  }
  if (leaf == leaf::kReasonExits64 || leaf == profile_.reason_exits ||
      leaf == profile_.reason_cycles)
    return PerReason(leaf, sub);
  uint64_t t = total_.load(), c = ReadCycles(total_cycles_, prev_total_cycles_);
  if (leaf == profile_.total_exits) return f22 ? Regs{Lo(t), 0, 0, 0} : Regs{Lo(t), Hi(c), Lo(c), 0};
  if (leaf == profile_.total_cycles) return f22 ? Regs{0, Hi(c), Lo(c), 0} : Regs{Lo(t), Hi(c), Lo(c), 0};
  return {};
}

uint64_t ModelEnv::Trigger(GuestExit e, int, uint64_t n, std::string*) {
  const ExitType& row = Row(e);
  bool fastpath = row.user.kvm_fastpath;
  for (uint64_t i = 0; i < n; ++i) Exit(row.sdm_reason, RawCode(row.sdm_reason, vendor_), fastpath);
  if (row.user.op == exitstats::UserOp::kIdle) idle_entries_.fetch_add(n);
  return n;
}

std::optional<Env::Accounting> ModelEnv::GuestAccounting(GuestExit e, std::span<const int>) {
  if (Row(e).user.op != exitstats::UserOp::kIdle) return std::nullopt;
  return Accounting{idle_entries_.load(), "model idle entries"};
}

std::string ModelEnv::CpuinfoField(std::string_view key) {
  if (key == "vendor_id") return "AuthenticAMD";
  if (key == "cpu family") return "25";
  if (key == "model") return "1";
  if (key == "stepping") return "1";
  return "";
}

}  // namespace exitstats::guest
