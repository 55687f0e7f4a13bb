// Concurrency: values read on every vCPU while every vCPU changes them.
#include "checks.h"

#include "checks_internal.h"
#include "exitstats/reasons.h"

namespace exitstats::guest {

// Readers on every vCPU query the 64-bit values while every vCPU's queries
// update them; no value may go backwards. A torn read (high half of one value,
// low half of another) shows up when the low half wraps: as a drop of about
// 2^32, or as a jump of 2^32 followed by such a drop.
Result Checker::TornReads() {
  Result r = Start("torn_reads", "", bug::kTornRead, kRoleTotalCycles);
  if (!r.pass()) return r;
  struct Value {
    const char* name;
    bool cycles;
    std::function<uint64_t()> read;
  };
  // The course leaves' 64-bit values are the cycles (EBX:ECX); the exits are
  // 64-bit only in the extension leaves.
  std::vector<Value> values = {{"total cycles", true, [&] { return TotalCyclesNow(); }}};
  if (discovery_ || found_.has(kRoleReasonCycles))
    values.push_back(
        {"reason 10 cycles", true, [&] { return client_.ReasonCycles(reason::kCpuid).value; }});
  if (discovery_) {
    values.push_back({"total exits (64-bit)", false, [&] { return client_.TotalExits64(); }});
    values.push_back({"reason 10 exits (64-bit)", false,
                      [&] { return client_.ReasonExits64(reason::kCpuid).value; }});
  }
  struct Worker {
    uint64_t reads = 0, wraps = 0, violations = 0;
    std::vector<std::string> lines;
  };
  std::vector<Worker> out(cfg_.cpus.size());
  std::atomic<bool> stop{false};  // a flag, not a tally
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(cfg_.torn_seconds));
  const auto t0 = Clock::now();
  RunOnCpus(env_, cfg_.cpus, [&](size_t w, int cpu) -> uint64_t {
    Worker& me = out[w];
    std::vector<uint64_t> last(values.size());
    for (size_t i = 0; i < values.size(); ++i) last[i] = values[i].read();
    // Every other read is the total cycles, the value that wraps most often
    // (a tear needs a carry into bit 32 while the host reads the halves).
    std::vector<size_t> order;
    for (size_t i = 1; i < values.size(); ++i) order.insert(order.end(), {0, i});
    if (order.empty()) order = {0, 0};
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 64; ++k)
        for (size_t i : order) {
          uint64_t v = values[i].read();
          ++me.reads;
          if (v < last[i]) {
            ++me.violations;
            uint64_t drop = last[i] - v;
            if (me.lines.size() < 4)
              me.lines.push_back(Fmt(
                  "torn or backwards read of %s on vCPU %d of %zu: %s after %s (down by %s%s)",
                  values[i].name, cpu, cfg_.cpus.size(), Hex(v).c_str(), Hex(last[i]).c_str(),
                  Hex(drop).c_str(),
                  drop > (3ull << 30) && drop < (5ull << 30) ? ", about 2^32: torn 64-bit read"
                                                             : ""));
          }
          if ((v >> 32) != (last[i] >> 32)) ++me.wraps;
          last[i] = v;
        }
      auto now = Clock::now();
      if (now >= deadline || (me.wraps >= 8 && now - t0 >= std::chrono::milliseconds(500)) ||
          (cfg_.torn_reads && me.reads >= cfg_.torn_reads))
        stop.store(true);
    }
    return me.reads;
  });
  double secs = Seconds(Clock::now() - t0);
  uint64_t reads = 0, wraps = 0, violations = 0;
  for (const Worker& w : out) {
    reads += w.reads;
    wraps += w.wraps;
    violations += w.violations;
    for (const auto& l : w.lines) r.Fail(l);
  }
  r.has_counts = true;
  r.expected = 0;
  r.observed = violations;
  r.notes.push_back(Fmt("%llu reads on %zu vCPUs in %.2f s, %llu low-half wraps seen, "
                        "%llu values went backwards",
                        (unsigned long long)reads, cfg_.cpus.size(), secs,
                        (unsigned long long)wraps, (unsigned long long)violations));
  if (violations) {
    r.Fail(Fmt("torn_reads on %zu vCPUs: expected 0 backwards reads, observed %llu",
               cfg_.cpus.size(), (unsigned long long)violations));
  } else if (wraps == 0) {
    r.Skip(Fmt("torn_reads: no low-half wrap of a 64-bit value in %.2f s (%llu reads): torn reads "
               "could not show; rerun with a larger --torn-seconds",
               secs, (unsigned long long)reads));
  }
  return r;
}

}  // namespace exitstats::guest
