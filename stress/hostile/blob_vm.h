// A VM on the harness (RAII Kvm/Vm/Vcpu, long mode, system tables) that runs
// the hostile stages' own guest loops (blobs.S, blob_abi.h) instead of the
// harness's payload table: the fuzz stage needs "execute this list of
// CPUIDs with these registers and give me the answers", the isolation stages
// need busy and probing VMs side by side, and the bad-conditions stage needs
// a guest that never finishes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "blob_abi.h"
#include "exitstats/abi.h"
#include "fuzz_oracle.h"
#include "harness/kvm.h"
#include "harness/vcpu_runner.h"

namespace hostile {

// Host view of one vCPU's area (blob_abi.h).
struct Area {
  uint64_t count;
  uint64_t batches;
  uint64_t pad[6];
  Query queries[HOSTILE_BATCH];
  exitstats::Regs answers[HOSTILE_BATCH];
};
static_assert(offsetof(Area, queries) == HOSTILE_QUERY_OFFSET);
static_assert(offsetof(Area, answers) == HOSTILE_OUT_OFFSET);
static_assert(sizeof(Area) <= HOSTILE_AREA_SIZE);

enum class Blob { kCpuidList, kSpin };

// A guest that did not finish in time. what() names the vCPU and its RIP.
using GuestTimeout = harness::VcpuTimeout;

using harness::Clock;

class BlobVm {
 public:
  BlobVm(const harness::Kvm& kvm, uint32_t vcpus, Blob blob = Blob::kCpuidList);
  BlobVm(BlobVm&&) noexcept;
  ~BlobVm();

  uint32_t vcpus() const { return static_cast<uint32_t>(vcpus_.size()); }
  Area& area(uint32_t i) { return *areas_[i]; }
  harness::Vcpu& vcpu(uint32_t i) { return vcpus_[i]; }
  harness::Vm& vm() { return vm_; }
  // KVM's own `exits` statistic of vCPU i (binary stats fd).
  uint64_t KvmExits(uint32_t i) const;
  uint64_t KvmExitsAll() const;

  // Runs vCPU i until the guest ends its current batch (true) or stops
  // (false: count was 0). Throws GuestTimeout at `deadline` (the runner
  // kicks the vCPU out of KVM_RUN), runtime_error on any other exit.
  bool RunBatch(uint32_t i, Clock::time_point deadline);

  // One synchronous batch on vCPU i: the answers to `queries` (at most
  // HOSTILE_BATCH), in order.
  std::vector<exitstats::Regs> Query(uint32_t i, std::span<const hostile::Query> queries,
                                     Clock::time_point deadline);
  exitstats::Regs Cpuid(uint32_t i, uint32_t leaf, uint32_t ecx, Clock::time_point deadline);

  // Runs every vCPU on its own thread. Before each batch `fill(i, area)`
  // writes queries into the area and returns how many (0 = this vCPU is
  // done); after the batch `check(i, area, n)` judges the answers. Errors of
  // any thread (exceptions from the callbacks, timeouts, unexpected exits)
  // stop the others and are rethrown, first one first, naming the vCPU.
  using Fill = std::function<uint32_t(uint32_t vcpu, Area& area)>;
  using Check = std::function<void(uint32_t vcpu, const Area& area, uint32_t n)>;
  void RunAll(const Fill& fill, const Check& check, Clock::time_point deadline);

  // Stops RunAll early (from a callback or another thread): every vCPU's
  // next fill returns 0.
  void RequestStop() { stop_.store(true); }
  bool stop_requested() const { return stop_.load(); }

 private:
  bool RunBatch(harness::VcpuRunner& runner, uint32_t i, Clock::time_point deadline);

  harness::Vm vm_;
  std::vector<harness::Vcpu> vcpus_;
  std::vector<std::unique_ptr<harness::StatsReader>> stats_;
  std::vector<Area*> areas_;
  std::atomic<bool> stop_{false};
};

// One-time checks of the host: is /dev/kvm there, does the guest see the
// exit-statistics leaves. Tests call these to skip with a reason.
struct HostProbe {
  bool kvm = false;
  std::string why_not_kvm;
  bool patched = false;
  exitstats::Regs discovery;  // what the guest's CPUID 0x4FFFFFF0 answered
  std::string why_not_patched;
};
const HostProbe& Probe();

// The profile the host runs (discovery flag), for the course leaves.
exitstats::Profile ActiveProfile(const exitstats::Regs& discovery);

}  // namespace hostile
