#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "tsc.h"

namespace bench {
namespace {

double ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

}  // namespace

int OnlineCpus() { return static_cast<int>(AllowedCpus().size()); }

std::vector<int> ThreadCounts(int max) {
  std::vector<int> out;
  for (int n = 1; n < max; n *= 2) out.push_back(n);
  out.push_back(std::max(max, 1));
  return out;
}

ParallelRun RunParallel(int n, const std::function<void(int)>& body) {
  static const std::vector<int> cpus = AllowedCpus();
  // oneTBB caps an arena at the process's allowed parallelism; lift the cap
  // so an oversubscribed run (n > CPUs) still gets n threads.
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism,
                            std::max<size_t>(n, cpus.size()));
  tbb::task_arena arena(n, 1);

  std::atomic<int> arrived{0};
  std::atomic<int> overlapped{0};
  std::vector<double> ns(n), cpu_ns(n);
  std::vector<uint64_t> tsc(n);
  std::mutex mu;
  std::set<std::thread::id> threads;

  arena.execute([&] {
    tbb::parallel_for(
        0, n, 1,
        [&](int i) {
          // Remember the caller's mask: TBB threads outlive this run.
          cpu_set_t old;
          pthread_getaffinity_np(pthread_self(), sizeof old, &old);
          PinTo(cpus[i % cpus.size()]);
          {
            std::lock_guard<std::mutex> lock(mu);
            threads.insert(std::this_thread::get_id());
          }
          // Start barrier, bounded at ~200 ms so a participant that TBB ran
          // on an already busy thread cannot deadlock the run.
          arrived.fetch_add(1);
          auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
          while (arrived.load() < n && std::chrono::steady_clock::now() < give_up) {
          }
          if (arrived.load() == n) overlapped.fetch_add(1);

          auto t0 = std::chrono::steady_clock::now();
          double u0 = ThreadCpuNs();
          uint64_t c0 = Rdtsc();
          body(i);
          uint64_t c1 = Rdtsc();
          double u1 = ThreadCpuNs();
          auto t1 = std::chrono::steady_clock::now();
          cpu_ns[i] = u1 - u0;
          ns[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
          tsc[i] = c1 - c0;
          pthread_setaffinity_np(pthread_self(), sizeof old, &old);
        },
        tbb::static_partitioner());
  });

  ParallelRun r;
  double sum = 0, cpu_sum = 0;
  uint64_t tsum = 0;
  for (int i = 0; i < n; ++i) {
    sum += ns[i];
    cpu_sum += cpu_ns[i];
    tsum += tsc[i];
    r.max_ns = std::max(r.max_ns, ns[i]);
  }
  r.mean_ns = sum / n;
  r.mean_cpu_ns = cpu_sum / n;
  r.mean_tsc = tsum / n;
  r.overlapped = overlapped.load();
  r.distinct_threads = static_cast<int>(threads.size());
  return r;
}

}  // namespace bench

namespace bench {

Heartbeats::Heartbeats(int n) : beats_(n) {}

double WindowSamples::MedianCyclesPerOp() {
  if (cycles_per_op.empty()) return 0;
  auto mid = cycles_per_op.begin() + cycles_per_op.size() / 2;
  std::nth_element(cycles_per_op.begin(), mid, cycles_per_op.end());
  return *mid;
}

}  // namespace bench
