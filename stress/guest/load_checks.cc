// Load: each exit type driven on every vCPU at once, and what the counters
// must show for it (lower bounds, exact CPUIDs, totals against reasons, cycles).
#include "checks.h"

#include <algorithm>
#include <thread>

#include "checks_internal.h"
#include "exitstats/reasons.h"

namespace exitstats::guest {

// Each exit type on all vCPUs at once: the per-reason count rose by at least
// the work done (course 32-bit leaf, and the 64-bit extension leaf where the
// host has it), its cycles rose, and the total rose at least as much. At
// assignment 2 (totals only) the total itself must rise by the work.
Result Checker::LowerBound(GuestExit e) {
  const ExitType& row = Row(e);
  Result r = Start("lower_bound", std::string(row.name), bug::kUncounted, kRoleTotalExits);
  if (!r.pass()) return r;
  if (std::string why = env_.Unavailable(e); !why.empty()) {
    r.Skip(std::string(row.name) + ": " + why);
    return r;
  }
  const bool ext = discovery_.has_value();
  const bool per_reason = ext || level_ >= 3;
  const uint64_t n = Ops(e);
  const size_t workers = cfg_.cpus.size();
  struct Tally {
    uint64_t ops = 0, switches = 0;
    std::string error;
  };
  std::vector<Tally> tally(workers);  // each worker writes only its own slot
  const ReasonAnswer none{ReasonAnswer::Kind::kCounted, 0, {}};

  auto acct0 = env_.GuestAccounting(e, cfg_.cpus);
  uint64_t tot0 = TotalNow();
  uint64_t tc0 = TotalCyclesNow();
  auto c0 = per_reason ? client_.ReasonCycles(row.sdm_reason) : none;
  auto e32_0 = per_reason ? client_.ReasonExits32(row.sdm_reason) : none;
  auto e64_0 = ext ? client_.ReasonExits64(row.sdm_reason) : none;
  auto t_begin = Clock::now();
  env_.BeginPhase(e, cfg_.cpus);
  RunOnCpus(env_, cfg_.cpus, [&](size_t w, int cpu) -> uint64_t {
    uint64_t s0 = env_.ThreadVoluntarySwitches();
    tally[w].ops = env_.Trigger(e, cpu, n, &tally[w].error);
    tally[w].switches = env_.ThreadVoluntarySwitches() - s0;
    return tally[w].ops;
  });
  env_.EndPhase(e);
  double secs = Seconds(Clock::now() - t_begin);
  auto e64_1 = ext ? client_.ReasonExits64(row.sdm_reason) : none;
  auto e32_1 = per_reason ? client_.ReasonExits32(row.sdm_reason) : none;
  auto c1 = per_reason ? client_.ReasonCycles(row.sdm_reason) : none;
  uint64_t tc1 = TotalCyclesNow();
  uint64_t tot1 = TotalNow();
  auto acct1 = env_.GuestAccounting(e, cfg_.cpus);

  uint64_t ops = 0, switches = 0;
  for (size_t w = 0; w < workers; ++w) {
    ops += tally[w].ops;
    switches += tally[w].switches;
    if (tally[w].ops != n)
      r.Fail(Fmt("%s: the trigger on vCPU %d did %llu of %llu operations: %s", row.name.data(),
                 cfg_.cpus[w], (unsigned long long)tally[w].ops, (unsigned long long)n,
                 tally[w].error.c_str()),
             "trigger failed (not a patch finding)");
  }
  for (auto* a : {&c0, &e32_0, &e64_0, &e64_1, &e32_1, &c1})
    if (a->kind != ReasonAnswer::Kind::kCounted)
      r.Fail(Fmt("%s: reason %u leaf answered %s", row.name.data(), row.sdm_reason,
                 RegsText(a->raw).c_str()),
             bug::kRegisters);
  if (r.status == Result::Status::kFail) return r;

  // What the guest knows was done.
  uint64_t expected = ops;
  if (acct0 && acct1) {
    // HLT: every idle entry into an HLT state executes HLT, except one whose
    // wake-up lands between the idle loop's need_resched check and the HLT
    // (rare); 1/16 covers those. Without cpuidle accounting, every voluntary
    // switch of a pinned waiting worker idles an otherwise idle vCPU; half of them
    // is a floor that holds with some kernel threads running.
    if (!acct1->source.empty()) {
      uint64_t entries = acct1->value - acct0->value;
      expected = entries - entries / 16;
      r.notes.push_back(Fmt("HLT bound from %s: %llu idle entries -> at least %llu HLT exits",
                            acct1->source.c_str(), (unsigned long long)entries,
                            (unsigned long long)expected));
    } else {
      expected = switches / 2;
      r.notes.push_back(Fmt("HLT bound from voluntary context switches of the waiting workers (no "
                            "cpuidle HLT states): %llu switches -> at least %llu HLT exits",
                            (unsigned long long)switches, (unsigned long long)expected));
    }
    if (expected == 0) {
      r.Skip("hlt: the guest recorded no idle entries that execute HLT (idle=poll, MWAIT idle, "
             "or HLT exits disabled): no bound to check");
      return r;
    }
  }
  if (ext && e64_1.value < e64_0.value) {
    r.Fail(Fmt("%s on %zu vCPUs: the 64-bit count of reason %u went backwards from %s to %s "
               "(a 32-bit counter carrying into bit 32?)",
               row.name.data(), workers, row.sdm_reason, Hex(e64_0.value).c_str(),
               Hex(e64_1.value).c_str()),
           bug::kLostUpdates);
    return r;
  }
  r.has_counts = true;
  r.expected = expected;
  const uint64_t d_total = Rise(tot0, tot1);
  uint64_t obs32 = static_cast<uint32_t>(e32_1.value - e32_0.value);
  uint64_t obs64 = e64_1.value - e64_0.value;
  uint64_t obs = ext ? std::min(obs32, obs64) : per_reason ? obs32 : d_total;
  r.observed = obs;
  // Whose shortfall: an exit KVM handles in its fastpath, which a patch
  // counting only in handle_exit never sees; else, on several vCPUs, a
  // lost update, as long as most exits were counted (a race loses some,
  // never most); else exits the patch does not count at all.
  auto shortfall = [&](const std::string& leafname, uint64_t observed) {
    if (observed >= expected) return;
    const std::string_view klass = row.user.kvm_fastpath                             ? bug::kFastpath
                                   : workers > 1 && 2 * observed >= expected ? bug::kLostUpdates
                                                                             : bug::kUncounted;
    r.Fail(Fmt("%s on %zu vCPUs: %s rose by %llu, expected at least %llu: shortfall "
               "%llu (%.2f%%)",
               row.name.data(), workers, leafname.c_str(), (unsigned long long)observed,
               (unsigned long long)expected, (unsigned long long)(expected - observed),
               100.0 * double(expected - observed) / double(expected)),
           klass);
  };
  const uint64_t counted = ext ? obs64 : obs32;
  if (per_reason) {
    shortfall(Fmt("reason %u (course leaf 0x%08x)", row.sdm_reason, client_.profile().reason_exits),
              obs32);
    if (ext) shortfall(Fmt("reason %u (64-bit leaf 0x4FFFFFF2)", row.sdm_reason), obs64);
    if (d_total < counted)
      r.Fail(Fmt("%s on %zu vCPUs: total exits rose by %llu, less than reason %u alone (%llu)",
                 row.name.data(), workers, (unsigned long long)d_total, row.sdm_reason,
                 (unsigned long long)counted),
             bug::kUncounted);
  } else {
    shortfall(Fmt("total exits (course leaf 0x%08x)", client_.profile().total_exits), d_total);
  }
  // Cycles: of the reason where the host has per-reason cycles, else the total.
  const bool reason_cycles = per_reason;
  const uint64_t ca = reason_cycles ? c0.value : tc0, cb = reason_cycles ? c1.value : tc1;
  const uint64_t ex = reason_cycles ? counted : d_total;
  const std::string cname = reason_cycles ? Fmt("reason %u cycles", row.sdm_reason) : "total cycles";
  if (per_reason || found_.has(kRoleTotalCycles)) {
    uint64_t dc = cb - ca;
    if (cb < ca || dc == 0) {
      r.Fail(Fmt("%s on %zu vCPUs: %s went from %s to %s over %llu exits (not timed?)",
                 row.name.data(), workers, cname.c_str(), Hex(ca).c_str(), Hex(cb).c_str(),
                 (unsigned long long)ex),
             bug::kCycles);
    } else if (ex) {
      uint64_t cpe = dc / ex;
      if (cpe < cfg_.min_cycles_per_exit || cpe > cfg_.max_cycles_per_exit)
        r.Fail(Fmt("%s on %zu vCPUs: %llu %s per exit is outside the sane range [%llu, %llu]",
                   row.name.data(), workers, (unsigned long long)cpe, cname.c_str(),
                   (unsigned long long)cfg_.min_cycles_per_exit,
                   (unsigned long long)cfg_.max_cycles_per_exit),
               bug::kCycles);
      r.notes.push_back(Fmt("%llu %s per %s exit", (unsigned long long)cpe, cname.c_str(),
                            row.name.data()));
    }
  }
  r.notes.push_back(Fmt("%s: %llu ops on %zu vCPUs in %.2f s; %s rose by %llu (%s)",
                        row.name.data(), (unsigned long long)ops, workers, secs,
                        per_reason ? Fmt("reason %u", row.sdm_reason).c_str() : "total exits",
                        (unsigned long long)obs,
                        ext ? Fmt("64-bit %llu, course leaf %llu", (unsigned long long)obs64,
                                  (unsigned long long)obs32).c_str()
                            : "course leaf, low 32 bits"));
  return r;
}

// CPUID: the rise equals the work plus the queries themselves, up to a slack
// measured while idle (guest-kernel CPUIDs are rare but possible).
Result Checker::ExactCpuid() {
  Result r = Start("exact", "cpuid", cfg_.cpus.size() > 1 ? bug::kLostUpdates : bug::kUncounted,
                   kRoleReasonExits);
  if (!r.pass()) return r;
  const uint64_t n = Ops(GuestExit::kCpuid);
  auto run = [&](uint64_t ops) {
    return RunOnCpus(env_, cfg_.cpus, [&](size_t, int cpu) -> uint64_t {
      std::string err;
      return ops ? env_.Trigger(GuestExit::kCpuid, cpu, ops, &err) : 0;
    });
  };
  // Extra CPUID exits over an idle interval: the delta minus our own queries.
  // The interval includes a parallel run without work, so CPUIDs that the
  // runtime itself might execute (oneTBB, the loader) are in the slack too.
  auto idle_extra = [&](Clock::duration d) -> uint64_t {
    auto a = ReasonNow(reason::kCpuid);
    uint64_t q0 = queries();
    run(0);
    // Busy-wait, not sleep: the interval must not depend on guest timers
    // (nested under TCG they can be very late); clock_gettime is no exit.
    for (auto until = Clock::now() + d; Clock::now() < until;) std::this_thread::yield();
    auto b = ReasonNow(reason::kCpuid);
    uint64_t q = queries() - q0;
    uint64_t delta = Rise(a.value, b.value);
    return delta > q ? delta - q : 0;
  };
  run(0);  // warm-up: oneTBB's first start happens outside every window
  Clock::duration base1 = std::chrono::milliseconds(200);
  uint64_t extra1 = idle_extra(base1);

  auto a = ReasonNow(reason::kCpuid);
  uint64_t q0 = queries();
  auto t0 = Clock::now();
  std::vector<uint64_t> ops = run(n);
  auto work_time = Clock::now() - t0;
  auto b = ReasonNow(reason::kCpuid);
  uint64_t queries_between = queries() - q0;  // includes b's own exit

  // Second baseline as long as the work phase (capped), scaled first one.
  auto base2 = std::min<Clock::duration>(work_time, std::chrono::seconds(2));
  uint64_t extra2 = idle_extra(base2);
  double scale = std::max(1.0, Seconds(work_time) / Seconds(base1));
  uint64_t slack = std::max<uint64_t>(static_cast<uint64_t>(extra1 * scale + 0.999), extra2);

  uint64_t work = 0;
  for (uint64_t o : ops) work += o;
  r.has_counts = true;
  r.expected = work + queries_between;
  r.observed = Rise(a.value, b.value);
  if (r.observed < r.expected)
    r.Fail(Fmt("cpuid on %zu vCPUs: reason 10 rose by %llu, expected exactly %llu (%llu CPUIDs + "
               "%llu queries): shortfall %llu (lost updates?)",
               cfg_.cpus.size(), (unsigned long long)r.observed, (unsigned long long)r.expected,
               (unsigned long long)work, (unsigned long long)queries_between,
               (unsigned long long)(r.expected - r.observed)));
  else if (r.observed > r.expected + slack)
    r.Fail(Fmt("cpuid on %zu vCPUs: reason 10 rose by %llu, expected %llu + at most %llu idle "
               "slack: %llu too many (double counting?)",
               cfg_.cpus.size(), (unsigned long long)r.observed, (unsigned long long)r.expected,
               (unsigned long long)slack, (unsigned long long)(r.observed - r.expected - slack)),
           bug::kDoubleCount);
  r.notes.push_back(std::string("counts from the ") + CountSource());
  r.notes.push_back(Fmt("exactness slack %llu (idle extra CPUID exits: %llu in %.2f s, %llu in "
                        "%.2f s); work phase %.2f s",
                        (unsigned long long)slack, (unsigned long long)extra1, Seconds(base1),
                        (unsigned long long)extra2, Seconds(base2), Seconds(work_time)));
  return r;
}

// Totals equal the sum over reasons: absolutely (a sweep bracketed between
// two totals) unless the counts are seeded, and always in deltas across a
// CPUID contention phase (a sweep before and one after); on SVM the sum over
// tracked raw codes as well.
Result Checker::TotalsSum() {
  Result r = Start("totals_sum", "", bug::kUncounted, kRoleTotalExits | kRoleReasonExits);
  if (!r.pass()) return r;
  const Vendor vendor = vendor_;
  const bool ext = discovery_.has_value();
  // Course leaves: 32-bit counts, so only rises (mod 2^32) are compared, and
  // on SVM no raw-code sum exists: the SDM reasons' rise bounds the total's.
  const bool seeded = !ext || (discovery_->flags & flag::kSeeded);
  const uint64_t slack = cfg_.cpus.size();  // one in-flight exit per vCPU
  struct Sweep {
    uint64_t before = 0, reasons = 0, raw = 0, after = 0;
  };
  auto sweep = [&] {
    Sweep w;
    w.before = TotalNow();
    for (const ReasonInfo& info : DefinedReasons()) {
      auto a = ReasonNow(info.reason);
      if (a.kind == ReasonAnswer::Kind::kCounted) w.reasons += a.value;
    }
    if (ext && vendor == Vendor::kSvm)
      for (uint32_t c = 0; c <= 0x40F; c = (c == 0xFF ? 0x400 : c + 1)) {
        auto a = client_.RawExits64(c);
        if (a.kind == ReasonAnswer::Kind::kCounted) w.raw += a.value;
      }
    w.after = TotalNow();
    return w;
  };
  auto range = [&](const char* what, uint64_t v, uint64_t lo, uint64_t hi) {
    if (v + slack < lo || v > hi + slack)
      r.Fail(Fmt("totals on %zu vCPUs (%s): %s = %llu is outside [%llu, %llu] from the totals "
                 "read around it (+-%llu in flight): the total %s the parts by %llu",
                 cfg_.cpus.size(), VendorName(vendor).c_str(), what, (unsigned long long)v,
                 (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)slack,
                 v < lo ? "exceeds" : "falls short of",
                 (unsigned long long)(v < lo ? lo - v : v - hi)));
  };

  Sweep s1 = sweep();
  RunOnCpus(env_, cfg_.cpus, [&](size_t, int cpu) {
    std::string err;
    return env_.Trigger(GuestExit::kCpuid, cpu, Ops(GuestExit::kCpuid), &err);
  });
  Sweep s2 = sweep();

  // Deltas: the parts rose by as much as the total did between the sweeps.
  uint64_t d_lo = Rise(s1.after, s2.before), d_hi = Rise(s1.before, s2.after);
  const uint64_t d_reasons = Rise(s1.reasons, s2.reasons);
  if (vendor == Vendor::kVmx) {
    range("rise of the sum over SDM reasons", d_reasons, d_lo, d_hi);
  } else if (ext) {
    range("rise of the sum over tracked raw SVM codes", s2.raw - s1.raw, d_lo, d_hi);
    range("rise of the sum over SDM reasons", d_reasons, 0, d_hi);
  } else {
    range("rise of the sum over SDM reasons", d_reasons, 0, d_hi);
  }
  if (!seeded) {
    if (vendor == Vendor::kVmx) {
      range("sum over SDM reasons", s2.reasons, s2.before, s2.after);
    } else {
      range("sum over tracked raw SVM codes", s2.raw, s2.before, s2.after);
      // SVM codes without an SDM counterpart are only in the total.
      range("sum over SDM reasons", s2.reasons, 0, s2.after);
      r.notes.push_back(Fmt("SVM: %llu exits have no SDM reason (raw sum %llu - reason sum %llu)",
                            (unsigned long long)(s2.raw > s2.reasons ? s2.raw - s2.reasons : 0),
                            (unsigned long long)s2.raw, (unsigned long long)s2.reasons));
    }
  } else if (ext) {
    r.notes.push_back("counts are seeded (discovery flag bit 4): deltas compared, not absolutes");
  } else {
    r.notes.push_back("course leaves, 32-bit counts: rises compared (mod 2^32), not absolutes");
  }
  r.has_counts = true;
  r.expected = d_lo;
  r.observed = vendor == Vendor::kVmx || !ext ? d_reasons : s2.raw - s1.raw;
  r.notes.push_back(Fmt("total %llu -> %llu, parts rose by %llu (total rose by %llu..%llu); scope %s",
                        (unsigned long long)s1.before, (unsigned long long)s2.after,
                        (unsigned long long)r.observed, (unsigned long long)d_lo,
                        (unsigned long long)d_hi,
                        !ext ? "not reported (no discovery leaf)"
                        : discovery_->host_wide() ? "host-wide (not checked here)" : "per-VM"));
  return r;
}

// Cycles rise with exits, at a sane cost per exit, and the per-reason cycles
// never exceed the total.
Result Checker::Cycles() {
  Result r = Start("cycles", "", bug::kCycles, kRoleTotalExits | kRoleTotalCycles);
  if (!r.pass()) return r;
  const bool per_reason = discovery_ || (found_.has(kRoleReasonCycles) && found_.has(kRoleReasonExits));
  const uint64_t n = Ops(GuestExit::kCpuid);
  uint64_t c0 = TotalCyclesNow(), e0 = TotalNow();
  auto rc0 = client_.ReasonCycles(reason::kCpuid);
  auto rn0 = ReasonNow(reason::kCpuid);
  RunOnCpus(env_, cfg_.cpus, [&](size_t, int cpu) {
    std::string err;
    return env_.Trigger(GuestExit::kCpuid, cpu, n, &err);
  });
  auto rn1 = ReasonNow(reason::kCpuid);
  auto rc1 = client_.ReasonCycles(reason::kCpuid);
  uint64_t e1 = TotalNow(), c1 = TotalCyclesNow();

  auto per_exit = [&](const char* what, uint64_t ca, uint64_t cb, uint64_t ea, uint64_t eb) {
    if (cb <= ca) {
      r.Fail(Fmt("%s on %zu vCPUs: cycles went from %s to %s over %llu exits (not timed, or "
                 "going backwards)",
                 what, cfg_.cpus.size(), Hex(ca).c_str(), Hex(cb).c_str(),
                 (unsigned long long)Rise(ea, eb)));
      return;
    }
    uint64_t cpe = (cb - ca) / std::max<uint64_t>(1, Rise(ea, eb));
    if (cpe < cfg_.min_cycles_per_exit || cpe > cfg_.max_cycles_per_exit)
      r.Fail(Fmt("%s on %zu vCPUs: %llu cycles per exit, outside the sane range [%llu, %llu]", what,
                 cfg_.cpus.size(), (unsigned long long)cpe,
                 (unsigned long long)cfg_.min_cycles_per_exit,
                 (unsigned long long)cfg_.max_cycles_per_exit));
    r.notes.push_back(Fmt("%s: %llu cycles per exit over %llu exits", what,
                          (unsigned long long)cpe, (unsigned long long)Rise(ea, eb)));
  };
  per_exit("total cycles", c0, c1, e0, e1);
  if (!per_reason) {
    r.notes.push_back("no per-reason leaves (assignment 2): total cycles only");
    r.has_counts = true;
    r.expected = Rise(e0, e1);
    r.observed = c1 - c0;
    return r;
  }
  per_exit("reason 10 cycles", rc0.value, rc1.value, rn0.value, rn1.value);

  // Sum of per-reason cycles <= total cycles read afterwards (+ in-flight).
  uint64_t sum = 0;
  for (const ReasonInfo& info : DefinedReasons()) {
    auto a = client_.ReasonCycles(info.reason);
    if (a.kind == ReasonAnswer::Kind::kCounted) sum += a.value;
  }
  uint64_t c2 = TotalCyclesNow();
  uint64_t inflight = cfg_.cpus.size() * cfg_.max_cycles_per_exit;
  if (sum > c2 + inflight)
    r.Fail(Fmt("cycles: per-reason cycles sum to %s, more than the total read after them, %s",
               Hex(sum).c_str(), Hex(c2).c_str()));
  r.has_counts = true;
  r.expected = Rise(e0, e1);
  r.observed = c1 - c0;
  return r;
}

}  // namespace exitstats::guest
