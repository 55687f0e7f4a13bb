#include "blob_vm.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <variant>

#include "harness/guest_abi.h"
#include "host_env.h"
#include "harness/long_mode.h"

extern "C" const uint8_t hostile_cpuid_list_start[], hostile_cpuid_list_end[];
extern "C" const uint8_t hostile_spin_start[], hostile_spin_end[];

namespace hostile {

namespace {

constexpr uint64_t kTssAddr = 0xfffbd000;  // as the harness: outside every slot
// Our own kick signal: the harness's RunPayload uses SIGUSR1.
constexpr int kKickSignal = SIGUSR2;

// The kvm_run of the vCPU this thread is running, so that a kick landing
// while the thread is in user space still stops the next KVM_RUN.
thread_local kvm_run* t_running = nullptr;

void OnKick(int) {
  if (kvm_run* r = t_running) __atomic_store_n(&r->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = OnKick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kKickSignal, &sa, nullptr);
  });
}

// A one-shot timer that signals the calling thread at `deadline`.
class ThreadTimer {
 public:
  explicit ThreadTimer(Clock::time_point deadline) {
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = kKickSignal;
    sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
    if (timer_create(CLOCK_MONOTONIC, &sev, &id_) != 0)
      throw std::runtime_error(std::string("timer_create: ") + std::strerror(errno));
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    if (left.count() < 1) left = std::chrono::nanoseconds(1);
    itimerspec its{};
    its.it_value.tv_sec = left.count() / 1'000'000'000;
    its.it_value.tv_nsec = left.count() % 1'000'000'000;
    // Re-fire every 100 ms: a kick that raced with the handler's return to
    // user space is repeated rather than lost.
    its.it_interval.tv_nsec = 100'000'000;
    timer_settime(id_, 0, &its, nullptr);
  }
  ~ThreadTimer() { timer_delete(id_); }

 private:
  timer_t id_{};
};

std::span<const uint8_t> BlobBytes(Blob b) {
  if (b == Blob::kSpin) return {hostile_spin_start, hostile_spin_end};
  return {hostile_cpuid_list_start, hostile_cpuid_list_end};
}

}  // namespace

BlobVm::BlobVm(const harness::Kvm& kvm, uint32_t n, Blob blob) : vm_(kvm.CreateVm()) {
  if (n < 1 || n > 16) throw std::invalid_argument(Fmt("BlobVm: %u vCPUs outside 1..16", n));
  InstallKickHandler();
  if (vm_.CheckExtension(KVM_CAP_SET_TSS_ADDR))
    harness::RawIoctl(vm_.fd(), KVM_SET_TSS_ADDR, kTssAddr);
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
  harness::Vcpu& v = vcpus_[i];
  t_running = v.run();
  struct Clear {
    ~Clear() { t_running = nullptr; }
  } clear;
  ThreadTimer timer(deadline);
  for (;;) {
    harness::Exit e = v.Run();
    if (auto* io = std::get_if<harness::IoExit>(&e)) {
      if (io->port == HOSTILE_PORT_BATCH) return true;
      if (io->port == HOSTILE_PORT_DONE) return false;
      if (io->port == HARNESS_UCALL_PORT) {
        auto* u = reinterpret_cast<const harness_ucall*>(
            vm_.Host(v.GetRegs().rdi, sizeof(harness_ucall)));
        throw std::runtime_error(
            Fmt("vCPU %u: guest exception/ucall cmd %" PRIu64 ": vector %" PRIu64
                " at RIP 0x%" PRIx64 ", error code 0x%" PRIx64,
                i, u->cmd, u->args[0], u->args[1], u->args[2]));
      }
    }
    if (std::holds_alternative<harness::InterruptedExit>(e)) {
      __atomic_store_n(&v.run()->immediate_exit, 0, __ATOMIC_SEQ_CST);
      if (stop_.load() && Clock::now() < deadline)
        throw std::runtime_error(Fmt("vCPU %u: stopped because another vCPU failed", i));
      if (Clock::now() >= deadline)
        throw GuestTimeout(Fmt("vCPU %u: guest did not finish in time; kicked out of KVM_RUN at "
                               "RIP 0x%llx (blob base 0x%llx)",
                               i, static_cast<unsigned long long>(v.GetRegs().rip),
                               static_cast<unsigned long long>(HOSTILE_CODE_GPA)));
      continue;  // a stray signal
    }
    throw std::runtime_error(Fmt("vCPU %u: unexpected exit: %s; %s", i,
                                 harness::Describe(e).c_str(), v.DescribeRegs().c_str()));
  }
}

std::vector<exitstats::Regs> BlobVm::Query(uint32_t i, std::span<const hostile::Query> q,
                                           Clock::time_point deadline) {
  if (q.empty() || q.size() > HOSTILE_BATCH)
    throw std::invalid_argument(Fmt("BlobVm::Query: %zu queries", q.size()));
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
  std::mutex mu;
  std::string first_error;
  bool timed_out = false;
  std::vector<pthread_t> tids(vcpus_.size());
  std::atomic<uint32_t> started{0};
  auto fail = [&](uint32_t i, const std::string& what, bool timeout) {
    {
      std::lock_guard l(mu);
      if (first_error.empty()) {
        first_error = what;
        timed_out = timeout;
      }
    }
    stop_.store(true);
    for (uint32_t j = 0; j < vcpus_.size(); j++)
      if (j != i) {
        __atomic_store_n(&vcpus_[j].run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
        if (started.load() == vcpus_.size()) pthread_kill(tids[j], kKickSignal);
      }
  };
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < vcpus_.size(); i++) {
    threads.emplace_back([&, i] {
      char name[16];
      std::snprintf(name, sizeof name, "hostile-vcpu%u", i);
      pthread_setname_np(pthread_self(), name);
      tids[i] = pthread_self();
      started.fetch_add(1);
      try {
        for (;;) {
          uint32_t n = stop_.load() ? 0 : fill(i, *areas_[i]);
          areas_[i]->count = n;
          if (!RunBatch(i, deadline)) break;
          check(i, *areas_[i], n);
        }
      } catch (const GuestTimeout& e) {
        fail(i, e.what(), true);
      } catch (const std::exception& e) {
        const std::string what = e.what();
        fail(i, what.rfind("vCPU ", 0) == 0 ? what : Fmt("vCPU %u: %s", i, e.what()), false);
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!first_error.empty()) {
    if (timed_out) throw GuestTimeout(first_error);
    throw std::runtime_error(first_error);
  }
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
      p.why_not_patched = Fmt(
          "no patched host: a guest's CPUID 0x4FFFFFF0 answered %08x %08x %08x %08x, not "
          "signature 0x%08X version %u (unpatched KVM; run in L1 via ci/nested-run)",
          d.eax, d.ebx, d.ecx, d.edx, exitstats::kSignature, exitstats::kAbiVersion);
    return p;
  }();
  return probe;
}

}  // namespace hostile
