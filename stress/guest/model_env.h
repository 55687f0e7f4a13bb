// A software model of a patched host as seen from a guest, for unit tests of
// the check logic: it answers the exit-statistics leaves like the reference
// patch, counts every "exit" the triggers and queries cause, and can carry
// the bugs of the kernel-patch mutants so the tests prove the checks see them.
#pragma once

#include <map>
#include <array>
#include <atomic>

#include "env.h"
#include "exitstats/reasons.h"

namespace exitstats::guest {

// Which leaves the model answers, as kvm.exit_stats_leaves shapes the
// reference: every leaf, the course leaves alone, or assignment 2's totals.
enum class LeafShape { kAll, kCourse, kA2 };

struct Bugs {
  bool lost_updates = false;         // shared counter, plain ++: 1 in 97 updates lost
  bool racy_backwards = false;       // lost updates that also show as a count going back
  bool torn_reads = false;           // 64-bit cycles read as two halves
  bool off_by_one_bound = false;     // reason 78 treated as defined ("<=" for "<")
  bool zeros_for_undefined = false;  // undefined reasons answer all zeros
  bool fallthrough_clobber = false;  // per-reason exits leaf also gets cycles in EBX:ECX
  bool fastpath_not_counted = false; // fastpath exits (ICR write, HLT) missed
  bool cycles_not_timed = false;     // cycles never added
  bool double_count_cpuid = false;   // CPUID counted twice
  bool ordinary_leaf_clobbered = false;  // 0x40000000 swallowed by the patch
  bool truncates_ecx = false;        // reason taken from ECX & 0xFF
  bool total_misses_io = false;      // I/O exits not added to the total
  bool u32_reason_counts = false;    // per-reason counts kept in 32 bits (mutant 08)
  uint64_t seed = 0;                 // not a bug: kvm.exit_stats_seed (flag bit 4)
  LeafShape shape = LeafShape::kAll; // not a bug: kvm.exit_stats_leaves
};

class ModelEnv : public Env {
 public:
  explicit ModelEnv(Bugs bugs = {}, Vendor vendor = Vendor::kSvm, bool patched = true,
                    Profile profile = kSjsu)
      : bugs_(bugs), vendor_(vendor), patched_(patched), profile_(profile) {
    // Seeded hosts start every per-reason and per-code count at the seed;
    // totals are not seeded.
    for (auto& c : count_) c.store(bugs.seed);
    for (auto& c : raw_) c.store(bugs.seed);
  }

  Regs Cpuid(uint32_t leaf, uint32_t subleaf) override;
  std::string Unavailable(GuestExit e) override {
    auto it = unavailable_.find(e);
    return it == unavailable_.end() ? "" : it->second;
  }
  uint64_t Trigger(GuestExit e, int cpu, uint64_t n, std::string* error) override;
  std::optional<Accounting> GuestAccounting(GuestExit e, std::span<const int> cpus) override;
  std::string CpuinfoField(std::string_view key) override;
  bool Pin(int) override { return false; }
  void Unpin() override {}
  uint64_t Tsc() override;

  void SetUnavailable(GuestExit e, std::string why) { unavailable_[e] = std::move(why); }
  static constexpr uint64_t kCyclesPerExit = 1u << 20;  // low half wraps every 4096 exits

 private:
  void Exit(uint32_t reason, uint32_t raw, bool fastpath);
  uint64_t ReadCycles(const std::atomic<uint64_t>& c, const std::atomic<uint64_t>& prev) const;
  Regs PerReason(uint32_t leaf, uint32_t sub);

  Bugs bugs_;
  Vendor vendor_;
  bool patched_;
  Profile profile_;  // which course layout the model serves (flag bit 3 for f22)
  std::map<GuestExit, std::string> unavailable_;
  std::array<std::atomic<uint64_t>, 80> count_{}, cycles_{}, prev_cycles_{};
  std::array<std::atomic<uint64_t>, 0x410> raw_{};
  std::atomic<uint64_t> total_{0}, total_cycles_{0}, prev_total_cycles_{0};
  std::atomic<uint64_t> ops_{0}, idle_entries_{0};
};

}  // namespace exitstats::guest
