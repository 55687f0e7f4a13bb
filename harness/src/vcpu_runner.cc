#include "harness/vcpu_runner.h"

#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstring>
#include <thread>

#include "harness/format.h"
#include "harness/rendezvous.h"

namespace harness {

namespace {

// One signal breaks KVM_RUN for the deadline timers and for Abort's kicks.
constexpr int kKickSignal = SIGUSR1;
// RunThreads' own deadline comes this much later: the vCPU threads' timers
// fire at the deadline itself and say which vCPU was where.
constexpr auto kBackstopGrace = std::chrono::seconds(1);

// The kvm_run of the vCPU this thread runs, so that a kick landing while the
// thread is in user space (between two KVM_RUNs) still stops the next one.
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

class RunningOnThisThread {
 public:
  explicit RunningOnThisThread(kvm_run* r) { t_running = r; }
  ~RunningOnThisThread() { t_running = nullptr; }
};

// A timer that kicks the calling thread at `deadline`, then every 100 ms: a
// kick that raced with the handler's return to user space is repeated
// rather than lost.
class DeadlineTimer {
 public:
  explicit DeadlineTimer(Clock::time_point deadline) {
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = kKickSignal;
    sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
    if (timer_create(CLOCK_MONOTONIC, &sev, &id_) != 0) throw KvmError("timer_create", errno);
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    if (left.count() < 1) left = std::chrono::nanoseconds(1);
    itimerspec its{};
    its.it_value.tv_sec = left.count() / 1'000'000'000;
    its.it_value.tv_nsec = left.count() % 1'000'000'000;
    its.it_interval.tv_nsec = 100'000'000;
    timer_settime(id_, 0, &its, nullptr);
  }
  ~DeadlineTimer() { timer_delete(id_); }
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

 private:
  timer_t id_{};
};

// "#UD" for 6 etc.
const char* ExceptionName(uint64_t v) {
  static const char* const kNames[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                       "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
                                       "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
  return v < std::size(kNames) ? kNames[v] : "?";
}

}  // namespace

VcpuRunner::VcpuRunner(const Vm& vm, std::span<Vcpu> vcpus) : vm_(vm), vcpus_(vcpus) {
  InstallKickHandler();
}

Next VcpuRunner::Ucall(const ExitContext& cx, const VcpuHooks& hooks) {
  auto* u = reinterpret_cast<harness_ucall*>(
      vm_.Host(cx.vcpu.GetRegs().rdi, sizeof(harness_ucall)));
  switch (u->cmd) {
    case HARNESS_UC_ASSERT:
      throw std::runtime_error(Format(
          "vCPU %u: guest assertion failed: %.*s at %.*s:%u (values 0x%" PRIx64 ", 0x%" PRIx64 ")",
          cx.index, int(sizeof u->expr), u->expr, int(sizeof u->file), u->file, u->line,
          u->args[0], u->args[1]));
    case HARNESS_UC_EXCEPTION:
      throw std::runtime_error(Format(
          "vCPU %u: guest exception vector %" PRIu64 " (%s) at RIP=0x%" PRIx64
          " error code=0x%" PRIx64 " CR2=0x%" PRIx64,
          cx.index, u->args[0], ExceptionName(u->args[0]), u->args[1], u->args[2], u->args[3]));
  }
  const Next next = hooks.ucall ? hooks.ucall(cx, *u) : Next::kUnexpected;
  if (next == Next::kUnexpected)
    throw std::runtime_error(Format("vCPU %u: unexpected ucall %" PRIu64, cx.index, u->cmd));
  return next;
}

void VcpuRunner::Run(uint32_t i, const VcpuHooks& hooks, Clock::time_point deadline) {
  Vcpu& v = vcpus_[i];
  RunningOnThisThread running(v.run());
  if (aborted()) throw Stopped(Format("vCPU %u: stopped because another vCPU failed", i));
  DeadlineTimer timer(deadline);
  for (;;) {
    const uint64_t entry_tsc = __rdtsc();
    Exit e = v.Run();
    const ExitContext cx{i, v, entry_tsc, __rdtsc()};
    if (std::holds_alternative<InterruptedExit>(e)) {
      __atomic_store_n(&v.run()->immediate_exit, 0, __ATOMIC_SEQ_CST);
      if (aborted()) throw Stopped(Format("vCPU %u: stopped because another vCPU failed", i));
      if (Clock::now() < deadline) continue;  // a stray signal
      if (hooks.timeout) throw VcpuTimeout(hooks.timeout(i));
      throw VcpuTimeout(Format("vCPU %u: guest did not finish in time; kicked out of KVM_RUN at "
                               "RIP 0x%llx",
                               i, static_cast<unsigned long long>(v.GetRegs().rip)));
    }
    const auto* io = std::get_if<IoOut>(&e);
    const Next next = io && io->port == HARNESS_UCALL_PORT ? Ucall(cx, hooks)
                      : hooks.exit                         ? hooks.exit(cx, e)
                                                           : Next::kUnexpected;
    if (next == Next::kResume) continue;
    if (next == Next::kStop) return;
    throw std::runtime_error(Format("vCPU %u: unexpected exit %s%s%s; %s", i,
                                    Describe(e).c_str(), hooks.running.empty() ? "" : " running ",
                                    hooks.running.c_str(), v.DescribeRegs().c_str()));
  }
}

void VcpuRunner::Abort(std::exception_ptr error) {
  {
    std::lock_guard l(mu_);
    if (!error_) error_ = error;
  }
  if (aborted_.exchange(true)) return;
  for (auto& wake : on_abort_) wake();
  for (Vcpu& v : vcpus_) __atomic_store_n(&v.run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
  std::lock_guard l(mu_);
  for (pthread_t t : threads_) pthread_kill(t, kKickSignal);
}

void VcpuRunner::RunThreads(const std::function<void(uint32_t)>& body,
                            Clock::time_point deadline,
                            const std::function<std::string()>& timeout_message,
                            const char* thread_prefix) {
  const size_t n = vcpus_.size();
  // The start barrier includes this thread, so no vCPU runs (and none can
  // Abort() and kick threads_) before every thread is recorded.
  Rendezvous start(n + 1);
  std::mutex done_mu;
  std::condition_variable done_cv;
  size_t finished = 0;
  std::vector<std::thread> threads;
  // Idempotent; also on the way out of a thread creation that threw, so no
  // thread outlives what it uses.
  auto join_all = [&] {
    start.Abort();
    for (std::thread& t : threads)
      if (t.joinable()) t.join();
    std::lock_guard l(mu_);
    threads_.clear();
  };
  struct OnExit {
    const decltype(join_all)& f;
    ~OnExit() { f(); }
  } on_exit{join_all};
  for (uint32_t i = 0; i < n; i++) {
    threads.emplace_back([&, i] {
      const std::string name = thread_prefix + std::to_string(i);
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      if (start.Wait()) {
        try {
          body(i);
        } catch (const Stopped&) {
        } catch (...) {
          Abort(std::current_exception());
        }
      }
      std::lock_guard l(done_mu);
      finished++;
      done_cv.notify_all();
    });
    std::lock_guard l(mu_);
    threads_.push_back(threads.back().native_handle());
  }
  start.Wait();
  {
    std::unique_lock l(done_mu);
    if (!done_cv.wait_until(l, deadline + kBackstopGrace, [&] { return finished == n; })) {
      l.unlock();
      Abort(std::make_exception_ptr(VcpuTimeout(timeout_message())));
    }
  }
  join_all();
  std::lock_guard l(mu_);
  if (error_) std::rethrow_exception(error_);
}

}  // namespace harness
