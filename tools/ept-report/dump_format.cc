#include "dump_format.h"

#include <cstdio>
#include <cstring>

#include "exitstats/reasons.h"

namespace exitdump {
namespace {

exitstats::Regs At(const uint8_t* p, size_t i) {
  exitstats::Regs r;
  std::memcpy(&r, p + 16 * i, 16);
  return r;
}

std::string Line(const char* fmt, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

using ull = unsigned long long;

}  // namespace

Dump Dump::FromGuest(const uint8_t* p) {
  Dump d;
  d.discovery = At(p, 0);
  const auto total = At(p, 1), cycles = At(p, 2);
  d.total_exits = exitstats::HiLo(total.ebx, total.ecx);
  d.total_cycles = exitstats::HiLo(cycles.ebx, cycles.ecx);
  for (uint32_t r = 0; r < kReasons; r++) {
    const auto e = At(p, 3 + 2 * r), c = At(p, 4 + 2 * r);
    d.reasons[r] = {exitstats::HiLo(e.ebx, e.ecx), e.edx, exitstats::HiLo(c.ebx, c.ecx)};
  }
  return d;
}

Probes Probes::FromGuest(const uint8_t* p) {
  return Probes{{At(p, 0), At(p, 1)}, {At(p, 2), At(p, 3)}};
}

CheckResult CheckProbes(const Probes& p) {
  std::string bad;
  const exitstats::Regs want{0, 0, 0, exitstats::kUndefinedReasonEdx};
  for (int i = 0; i < 2; i++) {
    const uint32_t r = Probes::kReasonsProbed[i];
    if (!(p.ext[i] == want))
      bad += Line(" 0x4FFFFFF2(%u)=%08x:%08x:%08x:%08x", r, p.ext[i].eax, p.ext[i].ebx, p.ext[i].ecx,
                  p.ext[i].edx);
    if (!(p.course[i] == want))
      bad += Line(" course(%u)=%08x:%08x:%08x:%08x", r, p.course[i].eax, p.course[i].ebx,
                  p.course[i].ecx, p.course[i].edx);
  }
  return {"undefined-above-table", bad.empty(),
          bad.empty() ? "reasons 78 and 0xFFFFFFFF answer undefined on both per-reason leaves"
                      : "not answered as undefined:" + bad};
}

Delta Subtract(const Dump& b, const Dump& a) {
  Delta d;
  d.total_exits = a.total_exits - b.total_exits;
  d.total_cycles = a.total_cycles - b.total_cycles;
  for (uint32_t r = 0; r < kReasons; r++)
    d.reasons[r] = {a.reasons[r].exits - b.reasons[r].exits, a.reasons[r].edx,
                    a.reasons[r].cycles - b.reasons[r].cycles};
  return d;
}

std::string Format(const Meta& m, const Delta& d) {
  std::string out = "# exitdump 1: exit-statistics deltas over one workload (tools/ept-report/README.md)\n";
  out += "meta\tmode\t" + m.mode + "\n";
  out += "meta\tvendor\t" + m.vendor + "\n";
  out += "meta\tabi\t" + m.abi + "\n";
  out += Line("meta\titerations\t%u\n", m.iterations);
  out += Line("meta\ttouch_pages\t%u\n", m.touch_pages);
  out += Line("meta\tswitches\t%u\n", m.switches);
  out += Line("meta\tvmcalls\t%u\n", m.vmcalls);
  out += Line("meta\tdump_cpuids\t%llu\n", static_cast<ull>(kDumpCpuids));
  out += Line("meta\tseconds\t%.3f\n", m.seconds);
  out += Line("total\t%llu\t%llu\n", static_cast<ull>(d.total_exits), static_cast<ull>(d.total_cycles));
  for (const auto& info : exitstats::DefinedReasons()) {
    if (info.reason >= kReasons) continue;
    const auto& r = d.reasons[info.reason];
    out += Line("reason\t%u\t%.*s\t%llu\t%llu\n", info.reason, static_cast<int>(info.name.size()),
                info.name.data(), static_cast<ull>(r.exits), static_cast<ull>(r.cycles));
  }
  return out;
}

std::vector<CheckResult> Check(const Meta& m, const Delta& d) {
  namespace R = exitstats::reason;
  std::vector<CheckResult> out;
  auto exact = [&](const char* name, uint32_t reason, uint64_t want) {
    const uint64_t got = d.reasons[reason].exits;
    out.push_back({name, got == want,
                   Line("reason %u: %llu exits, want exactly %llu", reason, static_cast<ull>(got),
                        static_cast<ull>(want))});
  };
  const uint64_t n = m.iterations;
  exact("cpuid", R::kCpuid, n + kDumpCpuids);
  exact("hlt", R::kHlt, n);
  exact("io", R::kIo, n);
  exact("rdmsr", R::kRdmsr, n);
  exact("wrmsr", R::kWrmsr, n);
  exact("vmcall", R::kVmcall, m.vmcalls);
  // Every workload exit takes time to handle, including those that go out
  // to the VMM (HLT, I/O here): a patch that drops their cycles fails this.
  std::string no_cycles;
  for (uint32_t r : {R::kCpuid, R::kHlt, R::kIo, R::kRdmsr, R::kWrmsr, R::kVmcall})
    if (d.reasons[r].exits > 0 && d.reasons[r].cycles == 0) no_cycles += " " + std::to_string(r);
  out.push_back({"cycles-per-reason", no_cycles.empty(),
                 no_cycles.empty() ? "every workload reason with exits has cycles > 0"
                                   : "exits but no cycles for reasons" + no_cycles});
  const uint64_t ept = d.reasons[R::kEptViolation].exits;
  if (m.mode == "ept") {
    out.push_back({"first-touch", ept >= m.touch_pages,
                   Line("reason 48: %llu exits, want at least %u (one per touched page)",
                        static_cast<ull>(ept), m.touch_pages)});
  } else if (m.mode == "shadow") {
    // No EPT, no EPT violations; the touches fault as #PF (reason 0) instead.
    out.push_back({"no-ept-violations", ept == 0,
                   Line("reason 48: %llu exits, want 0 under shadow paging", static_cast<ull>(ept))});
    const uint64_t pf = d.reasons[R::kExceptionNmi].exits;
    out.push_back({"shadow-page-faults", pf > 0,
                   Line("reason 0: %llu exits, want > 0 (shadow #PF intercepts)", static_cast<ull>(pf))});
  }
  uint64_t sum = 0, sum_cycles = 0;
  std::string bad_marks;
  for (uint32_t r = 0; r < kReasons; r++) {
    sum += d.reasons[r].exits;
    sum_cycles += d.reasons[r].cycles;
    const bool marked = d.reasons[r].edx == exitstats::kUndefinedReasonEdx;
    if (marked == exitstats::IsDefined(r)) bad_marks += " " + std::to_string(r);
  }
  out.push_back({"undefined-marked", bad_marks.empty(),
                 bad_marks.empty() ? "EDX=0xFFFFFFFF exactly for the SDM's undefined reasons"
                                   : "wrong EDX marker for reasons" + bad_marks});
  // The totals and each reason are read at slightly different moments of
  // the two snapshots, so an exit (a timer interrupt, say) that lands inside a
  // snapshot may be in one delta and not the other: allow a few, no more.
  const uint64_t diff = d.total_exits > sum ? d.total_exits - sum : sum - d.total_exits;
  out.push_back({"total-is-sum-of-reasons", diff <= kSnapshotSlack,
                 Line("total %llu vs sum of reasons %llu (allowed difference %llu)",
                      static_cast<ull>(d.total_exits), static_cast<ull>(sum),
                      static_cast<ull>(kSnapshotSlack))});
  const double ratio = d.total_cycles ? double(sum_cycles) / double(d.total_cycles) : 0;
  out.push_back({"cycles-are-sum-of-reasons", ratio > 0.95 && ratio < 1.05,
                 Line("total cycles %llu vs sum of reasons %llu (within 5%%)",
                      static_cast<ull>(d.total_cycles), static_cast<ull>(sum_cycles))});
  return out;
}

}  // namespace exitdump
