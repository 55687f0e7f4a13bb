// RunOnCpus: one body on every listed CPU at once, with oneTBB.
#include <atomic>
#include <thread>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "checks.h"
#include "checks_internal.h"

namespace exitstats::guest {

std::vector<uint64_t> RunOnCpus(Env& env, const std::vector<int>& cpus,
                                const std::function<uint64_t(size_t, int)>& fn) {
  const size_t n = cpus.size();
  std::vector<uint64_t> tally(n, 0);  // one slot per worker, no sharing
  if (n == 0) return tally;
  // Allow one thread per vCPU even where oneTBB's default would be smaller.
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, n);
  tbb::task_arena arena(static_cast<int>(n));
  // Start barrier (not a tally): all workers begin their loops together so
  // the vCPUs really contend. A worker waits at most 2 s, then starts anyway.
  std::atomic<size_t> arrived{0};
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, n, 1),
        [&](const tbb::blocked_range<size_t>& range) {
          for (size_t i = range.begin(); i != range.end(); ++i) {
            bool pinned = env.Pin(cpus[i]);
            arrived.fetch_add(1);
            auto until = Clock::now() + std::chrono::seconds(2);
            while (arrived.load() < n && Clock::now() < until) std::this_thread::yield();
            tally[i] = fn(i, cpus[i]);
            if (pinned) env.Unpin();
          }
        },
        tbb::static_partitioner());
  });
  return tally;
}

}  // namespace exitstats::guest
