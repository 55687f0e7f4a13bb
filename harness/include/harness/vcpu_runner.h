// The one vCPU run loop of the project's VMMs (RunPayload, stress/hostile's
// BlobVm, tools/ept-report's exitdump), in the spirit of kvmtool's kvm-cpu
// loop and the KVM selftests' ucall: KVM_RUN, decode, let the caller's hooks
// handle what is theirs, turn everything else into an error that names the
// vCPU. Around it: one thread per vCPU behind a start barrier, a kick that
// breaks KVM_RUN, a deadline, and first-error abort.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/guest_abi.h"
#include "harness/kvm.h"

namespace harness {

using Clock = std::chrono::steady_clock;

// A vCPU still in the guest at its deadline; what() says where it was.
class VcpuTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a hook tells the loop.
enum class Next {
  kResume,      // handled: run the vCPU again
  kStop,        // handled: Run() returns
  kUnexpected,  // not the hook's: Run() throws "unexpected exit" (or ucall)
};

// The exit a hook is handling.
struct ExitContext {
  uint32_t index;  // the vCPU's place in the runner's span
  Vcpu& vcpu;
  uint64_t entry_tsc;  // TSC just before the KVM_RUN that returned it
  uint64_t exit_tsc;   // TSC just after
};

struct VcpuHooks {
  // Ucalls (OUT to HARNESS_UCALL_PORT, RDI = the message) other than ASSERT
  // and EXCEPTION: the runner throws those itself, with the guest's
  // expression, file and line, or vector, RIP, error code and CR2. The
  // hook may write u.reply. Unset: every such ucall is unexpected.
  std::function<Next(const ExitContext&, harness_ucall& u)> ucall;
  // Every other exit except a kick (EINTR). Unset: all are unexpected.
  std::function<Next(const ExitContext&, Exit&)> exit;
  // The message of the VcpuTimeout thrown at the deadline. Unset: names the
  // vCPU and its RIP.
  std::function<std::string(uint32_t index)> timeout;
  // What the vCPU runs, for "unexpected exit" messages ("payload cpuid").
  std::string running;
};

class VcpuRunner {
 public:
  // `vcpus` and `vm` must outlive the runner.
  VcpuRunner(const Vm& vm, std::span<Vcpu> vcpus);
  VcpuRunner(const VcpuRunner&) = delete;
  VcpuRunner& operator=(const VcpuRunner&) = delete;

  // Runs vCPU i on the calling thread until a hook returns kStop. A timer of
  // this thread kicks it out of KVM_RUN at `deadline`. Throws whatever a hook
  // throws, the guest's ASSERT or EXCEPTION, an unexpected exit (with the
  // registers), VcpuTimeout, KvmError, and Stopped once the run aborted.
  void Run(uint32_t i, const VcpuHooks& hooks, Clock::time_point deadline);

  // Thrown by Run() in the vCPUs that another one's failure stopped.
  class Stopped : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
  };

  // Calls body(i) on one thread per vCPU (named <thread_prefix><i>), all
  // released together, and returns when every one has returned. The first
  // exception of any thread aborts the run (Abort) and is rethrown here,
  // type intact; the Stopped of the others is dropped. Threads stuck outside
  // KVM_RUN (in the caller's own waits) are aborted shortly after `deadline`
  // with VcpuTimeout(timeout_message()).
  void RunThreads(const std::function<void(uint32_t i)>& body, Clock::time_point deadline,
                  const std::function<std::string()>& timeout_message,
                  const char* thread_prefix = "vcpu");

  // Fails the run with `error` (the first one wins): runs the OnAbort
  // callbacks, then kicks every vCPU out of KVM_RUN.
  void Abort(std::exception_ptr error);
  bool aborted() const { return aborted_.load(); }
  // For the caller's own barriers: called on Abort, before the kicks.
  void OnAbort(std::function<void()> wake) { on_abort_.push_back(std::move(wake)); }

 private:
  // Throws the guest's ASSERT or EXCEPTION, else hands the ucall to the hook.
  Next Ucall(const ExitContext& cx, const VcpuHooks& hooks);

  const Vm& vm_;
  std::span<Vcpu> vcpus_;
  std::vector<std::function<void()>> on_abort_;
  std::atomic<bool> aborted_{false};
  std::mutex mu_;
  std::exception_ptr error_;
  std::vector<pthread_t> threads_;  // while RunThreads runs
};

}  // namespace harness
