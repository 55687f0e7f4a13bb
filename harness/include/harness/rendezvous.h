// A reusable barrier that can be aborted: a failing vCPU thread must not
// leave the others waiting forever (std::barrier cannot be cancelled).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace harness {

class Rendezvous {
 public:
  explicit Rendezvous(size_t parties) : parties_(parties) {}
  // Blocks until all parties arrive; false if aborted (now or while waiting).
  bool Wait() {
    std::unique_lock l(mu_);
    if (aborted_) return false;
    size_t gen = generation_;
    if (++arrived_ == parties_) {
      arrived_ = 0;
      generation_++;
      cv_.notify_all();
      return true;
    }
    cv_.wait(l, [&] { return aborted_ || generation_ != gen; });
    return generation_ != gen;
  }
  void Abort() {
    std::lock_guard l(mu_);
    aborted_ = true;
    cv_.notify_all();
  }
  bool aborted() const {
    std::lock_guard l(mu_);
    return aborted_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t parties_;
  size_t arrived_ = 0;
  size_t generation_ = 0;
  bool aborted_ = false;
};

}  // namespace harness
