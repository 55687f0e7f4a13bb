#include "blob_vm.h"

#include <cstring>
#include <string_view>
#include <variant>

#include "harness/guest_abi.h"
#include "harness/long_mode.h"
#include "host_env.h"

extern "C" const uint8_t hostile_cpuid_list_start[], hostile_cpuid_list_end[];
extern "C" const uint8_t hostile_spin_start[], hostile_spin_end[];

namespace hostile {

namespace {

std::span<const uint8_t> BlobBytes(Blob b) {
  if (b == Blob::kSpin) return {hostile_spin_start, hostile_spin_end};
  return {hostile_cpuid_list_start, hostile_cpuid_list_end};
}

}  // namespace

BlobVm::BlobVm(const harness::Kvm& kvm, uint32_t n, Blob blob) : vm_(kvm.CreateVm()) {
  if (n < 1 || n > 16) throw std::invalid_argument(Format("BlobVm: %u vCPUs outside 1..16", n));
  vm_.SetTssAddr();
  vm_.AddMemory(0, 0, HARNESS_MAIN_SIZE);
  // The harness image provides the exception stubs behind the IDT: a fault
  // in our code becomes a ucall naming vector and RIP instead of a shutdown.
  const harness_image_header& header = harness::LoadImage(vm_, harness::GuestImage());
  harness::WriteSystemTables(vm_, header);
  vm_.AddMemory(HOSTILE_SLOT, HOSTILE_CODE_GPA, HOSTILE_CODE_SIZE + uint64_t{n} * HOSTILE_AREA_SIZE);
  auto code = BlobBytes(blob);
  std::memcpy(vm_.Host(HOSTILE_CODE_GPA, code.size()), code.data(), code.size());

  const auto cpuid = kvm.SupportedCpuid();
  for (uint32_t i = 0; i < n; i++) {
    vcpus_.push_back(vm_.CreateVcpu(i));
    harness::Vcpu& v = vcpus_.back();
    v.SetCpuid(cpuid);
    const uint64_t ctx = HARNESS_VCPU_AREA + i * HARNESS_VCPU_AREA_SIZE;
    auto* c = reinterpret_cast<harness_ctx*>(vm_.Host(ctx, sizeof(harness_ctx)));
    *c = {};
    c->self = ctx;
    c->vcpu_id = i;
    const uint64_t area = HOSTILE_AREA_GPA + uint64_t{i} * HOSTILE_AREA_SIZE;
    areas_.push_back(reinterpret_cast<Area*>(vm_.Host(area, sizeof(Area))));
    harness::EnterLongMode(v, {HOSTILE_CODE_GPA, ctx + HARNESS_VCPU_AREA_SIZE, area, ctx});
    stats_.push_back(std::make_unique<harness::StatsReader>(v.Stats()));
  }
}

BlobVm::BlobVm(BlobVm&& o) noexcept
    : vm_(std::move(o.vm_)),
      vcpus_(std::move(o.vcpus_)),
      stats_(std::move(o.stats_)),
      areas_(std::move(o.areas_)),
      stop_(o.stop_.load()) {}

BlobVm::~BlobVm() = default;

uint64_t BlobVm::KvmExits(uint32_t i) const { return stats_[i]->Get("exits"); }

uint64_t BlobVm::KvmExitsAll() const {
  uint64_t s = 0;
  for (uint32_t i = 0; i < vcpus_.size(); i++) s += KvmExits(i);
  return s;
}

bool BlobVm::RunBatch(uint32_t i, Clock::time_point deadline) {
  harness::VcpuRunner runner(vm_, vcpus_);
  return RunBatch(runner, i, deadline);
}

bool BlobVm::RunBatch(harness::VcpuRunner& runner, uint32_t i, Clock::time_point deadline) {
  bool more = false;
  harness::VcpuHooks hooks;
  hooks.exit = [&](const harness::ExitContext&, harness::Exit& e) {
    auto* io = std::get_if<harness::IoOut>(&e);
    if (!io || (io->port != HOSTILE_PORT_BATCH && io->port != HOSTILE_PORT_DONE))
      return harness::Next::kUnexpected;
    more = io->port == HOSTILE_PORT_BATCH;
    return harness::Next::kStop;
  };
  hooks.timeout = [&](uint32_t) {
    return Format("vCPU %u: guest did not finish in time; kicked out of KVM_RUN at RIP 0x%llx "
               "(blob base 0x%llx)",
               i, static_cast<unsigned long long>(vcpus_[i].GetRegs().rip),
               static_cast<unsigned long long>(HOSTILE_CODE_GPA));
  };
  runner.Run(i, hooks, deadline);
  return more;
}

std::vector<exitstats::Regs> BlobVm::Query(uint32_t i, std::span<const hostile::Query> q,
                                           Clock::time_point deadline) {
  if (q.empty() || q.size() > HOSTILE_BATCH)
    throw std::invalid_argument(Format("BlobVm::Query: %zu queries", q.size()));
  Area& a = area(i);
  std::copy(q.begin(), q.end(), a.queries);
  a.count = q.size();
  if (!RunBatch(i, deadline)) throw std::runtime_error("BlobVm::Query: guest stopped");
  return {a.answers, a.answers + q.size()};
}

exitstats::Regs BlobVm::Cpuid(uint32_t i, uint32_t leaf, uint32_t ecx, Clock::time_point d) {
  hostile::Query q{leaf, ecx, 0, 0};
  return Query(i, {&q, 1}, d)[0];
}

void BlobVm::RunAll(const Fill& fill, const Check& check, Clock::time_point deadline) {
  harness::VcpuRunner runner(vm_, vcpus_);
  runner.OnAbort([this] { stop_.store(true); });
  auto batches = [&](uint32_t i) {
    try {
      for (;;) {
        uint32_t n = stop_.load() ? 0 : fill(i, *areas_[i]);
        areas_[i]->count = n;
        if (!RunBatch(runner, i, deadline)) break;
        check(i, *areas_[i], n);
      }
    } catch (const std::exception& e) {
      // The callbacks' errors do not say which vCPU they judged; the
      // runner's do (and keep their type: Stopped, GuestTimeout).
      if (std::string_view(e.what()).starts_with("vCPU ")) throw;
      throw std::runtime_error(Format("vCPU %u: %s", i, e.what()));
    }
  };
  runner.RunThreads(
      batches, deadline,
      [] { return std::string("guest did not finish in time: a vCPU thread hung outside KVM_RUN"); },
      "hostile-vcpu");
}

exitstats::Profile ActiveProfile(const exitstats::Regs& d) {
  return (d.edx & exitstats::flag::kF22) ? exitstats::kF22 : exitstats::kSjsu;
}

const HostProbe& Probe() {
  static const HostProbe probe = [] {
    HostProbe p;
    auto kvm = harness::Kvm::TryOpen(&p.why_not_kvm);
    if (!kvm) return p;
    p.kvm = true;
    try {
      BlobVm vm(*kvm, 1);
      p.discovery = vm.Cpuid(0, exitstats::leaf::kDiscovery, 0,
                             Clock::now() + std::chrono::seconds(30));
    } catch (const std::exception& e) {
      p.why_not_patched = std::string("could not run a guest on /dev/kvm: ") + e.what();
      return p;
    }
    const exitstats::Regs& d = p.discovery;
    p.patched = d.eax == exitstats::kSignature && d.ebx == exitstats::kAbiVersion;
    if (!p.patched)
      p.why_not_patched = Format(
          "no patched host: a guest's CPUID 0x4FFFFFF0 answered %08x %08x %08x %08x, not "
          "signature 0x%08X version %u (unpatched KVM; run in L1 via ci/nested-run)",
          d.eax, d.ebx, d.ecx, d.edx, exitstats::kSignature, exitstats::kAbiVersion);
    return p;
  }();
  return probe;
}

}  // namespace hostile
