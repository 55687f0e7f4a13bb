#include "checks.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "exitstats/reasons.h"

namespace exitstats::guest {

// ---------------------------------------------------------------- exit table

namespace {
constexpr std::array kGuestExits = {
    GuestExitRow{GuestExit::kCpuid, "cpuid", reason::kCpuid, 1, false, false,
                 "CPUID leaf 0 in user mode"},
    GuestExitRow{GuestExit::kIo, "io", reason::kIo, 1, true, false,
                 "OUT to port 0x80 after ioperm()"},
    GuestExitRow{GuestExit::kRdmsr, "rdmsr", reason::kRdmsr, 1, true, false,
                 "pread of MSR 0x1A0 (IA32_MISC_ENABLE) from /dev/cpu/N/msr"},
    GuestExitRow{GuestExit::kWrmsr, "wrmsr", reason::kWrmsr, 1, true, false,
                 "pwrite of MSR 0x1A0 with its own value (slow path)"},
    GuestExitRow{GuestExit::kWrmsrFast, "wrmsr_fastpath", reason::kWrmsr, 1, true, true,
                 "pwrite of x2APIC ICR 0x830: reschedule IPI to self (KVM fastpath)"},
    GuestExitRow{GuestExit::kHlt, "hlt", reason::kHlt, 40, false, true,
                 "a token passed around the vCPUs: the ones waiting idle (idle loop HLT)"},
};
}  // namespace

std::span<const GuestExitRow> GuestExits() { return kGuestExits; }

const GuestExitRow& Row(GuestExit e) {
  for (const auto& r : kGuestExits)
    if (r.id == e) return r;
  return kGuestExits[0];
}

std::optional<GuestExit> GuestExitByName(std::string_view name) {
  for (const auto& r : kGuestExits)
    if (r.name == name) return r.id;
  return std::nullopt;
}

// ------------------------------------------------------------------ helpers

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

namespace {

std::string RegsText(const Regs& r) {
  return Fmt("eax=%08x ebx=%08x ecx=%08x edx=%08x", r.eax, r.ebx, r.ecx, r.edx);
}

std::string VendorName(Vendor v) { return v == Vendor::kSvm ? "SVM" : "VMX"; }

// At most this many problem lines per check, then a count of the rest.
constexpr size_t kMaxLines = 24;

void AddLimited(Result& r, size_t& n, std::string line, std::string_view klass = {}) {
  if (++n <= kMaxLines) r.Fail(std::move(line), klass);
}
void CloseLimited(Result& r, size_t n) {
  if (n > kMaxLines) r.Fail(Fmt("... and %zu more", n - kMaxLines));
}

using Clock = std::chrono::steady_clock;
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::string Result::Text() const {
  std::string s;
  for (const auto& p : problems) s += p + "\n";
  for (const auto& n : notes) s += "note: " + n + "\n";
  return s;
}

bool RawCodeTracked(uint32_t code, Vendor v) {
  if (v == Vendor::kVmx) return code <= kHighestDefinedReason;
  return code <= 0xFF || (code >= 0x400 && code <= 0x40F);
}

std::vector<RawPair> RawPairs(Vendor v) {
  if (v == Vendor::kVmx)
    return {{reason::kCpuid, {reason::kCpuid}},
            {reason::kHlt, {reason::kHlt}},
            {reason::kIo, {reason::kIo}},
            {reason::kRdmsr, {reason::kRdmsr}},
            {reason::kWrmsr, {reason::kWrmsr}}};
  // SVM: one MSR exit code for both directions (EXITINFO1 tells them apart).
  return {{0x072, {reason::kCpuid}},
          {0x078, {reason::kHlt}},
          {0x07B, {reason::kIo}},
          {0x07C, {reason::kRdmsr, reason::kWrmsr}},
          {0x400, {reason::kEptViolation}}};
}

// ----------------------------------------------------------- parallel runs

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

// ------------------------------------------------------------------ checker

namespace {
thread_local uint64_t tl_queries = 0;
}  // namespace

uint64_t Checker::queries() { return tl_queries; }

std::string_view RubricName(Rubric r) { return r == Rubric::kStrict ? "strict" : "course"; }

std::optional<Rubric> RubricByName(std::string_view name) {
  if (name == "course") return Rubric::kCourse;
  if (name == "strict") return Rubric::kStrict;
  return std::nullopt;
}

namespace {
// Vendor from leaf 0 when there is no discovery leaf to say it.
Vendor VendorFromLeaf0(Env& env) {
  Regs r = env.Cpuid(0, 0);
  // "AuthenticAMD" / "HygonGenuine": EBX "Auth" / "Hygo".
  return (r.ebx == 0x68747541 || r.ebx == 0x6F677948) ? Vendor::kSvm : Vendor::kVmx;
}
}  // namespace

CpuidFn Checker::CountedCpuid() {
  return [this](uint32_t l, uint32_t s) {
    ++tl_queries;
    return env_.Cpuid(l, s);
  };
}

Checker::Checker(Env& env, Profile profile, Config cfg)
    : env_(env), cfg_(std::move(cfg)), client_(profile, CountedCpuid()) {
  discovery_ = client_.Discover();
  // The course leaves by behaviour, over a burst of CPUIDs issued through the
  // counting client (each is a reason-10 exit, as any query is).
  // With the discovery leaf the host is known to be patched and the burst
  // only reports the course leaves: keep it short, so that a test seed just
  // below 2^32 (kvm.exit_stats_seed) still wraps during the checks, not here.
  const uint64_t burst = discovery_ ? 100 : std::clamp<uint64_t>(cfg_.iterations, 1000, 10000);
  found_ = FindLeaves([this](uint32_t l, uint32_t s) { return client_.Raw(l, s); }, burst,
                      cfg_.candidates, cfg_.profile_forced ? std::optional<Profile>(profile)
                                                           : std::nullopt);
  // The numbering the leaves showed is the one the checks read.
  if (found_.profile) client_ = Client(*found_.profile, CountedCpuid());
  level_ = cfg_.assignment ? cfg_.assignment : (found_.assignment ? found_.assignment : 3);
  vendor_ = discovery_ ? discovery_->vendor() : VendorFromLeaf0(env_);
  if (!patched())
    absence_ = "no patched host: no course leaf 0x4FFFFFFC..0x4FFFFFFF rose over " +
               std::to_string(found_.burst) + " CPUIDs, and " + client_.DescribeAbsence();
}

std::string Checker::HostWords() const {
  if (!patched()) return "unpatched host";
  if (discovery_) return "patched: full ABI";
  return "patched: course leaves only (profile " + std::string(client_.profile().name) +
         ", assignment " + std::to_string(level_) + ")";
}

Result Checker::Start(std::string check, std::string exit, std::string_view klass,
                      unsigned roles, bool ext) const {
  Result r;
  r.check = std::move(check);
  r.exit = std::move(exit);
  r.vcpus = static_cast<int>(cfg_.cpus.size());
  r.rubric = std::string(RubricName(cfg_.rubric));
  r.bug_class = klass;
  if (!patched()) {
    r.Skip(absence_);
    return r;
  }
  if (ext && !discovery_) {
    // The extension leaves are this project's, not the course's.
    if (Strict())
      r.Fail("the extension leaves 0x4FFFFFF0..0x4FFFFFF3 are absent (CPUID 0x4FFFFFF0 has no "
             "signature): the strict rubric requires them",
             bug::kExtension);
    else
      r.NotApplicable("needs the extension leaves 0x4FFFFFF0..0x4FFFFFF3, which this host does "
                      "not have (course rubric: optional)");
    return r;
  }
  // Course roles: leaves the host with extension leaves may lack are read
  // through the 64-bit leaves instead; only course-only hosts are gated.
  if (discovery_ && found_.missing.empty()) return r;
  const unsigned per_reason = kRoleReasonExits | kRoleReasonCycles;
  // Cycle roles are not gated beyond the level: a cycles leaf whose values
  // do not rise is the check's own finding (cycles missing), said in its words.
  for (unsigned role : {kRoleTotalExits, kRoleTotalCycles, kRoleReasonExits, kRoleReasonCycles}) {
    if (!(roles & role) || found_.has(role)) continue;
    if ((role & per_reason) && level_ < 3) {
      r.NotApplicable("assignment " + std::to_string(level_) + " has no " + RoleNames(role) +
                      " leaf");
      break;
    }
    if (discovery_ || (role & (kRoleTotalCycles | kRoleReasonCycles))) continue;
    std::string what = RoleNames(role);
    for (const auto& m : found_.missing)
      if (m.roles & role) what = m.text;
    r.Fail("needs " + RoleNames(role) + ": " + what, bug::kNotImplemented);
  }
  return r;
}

uint64_t Checker::TotalNow() const {
  return discovery_ ? client_.TotalExits64() : client_.TotalExits32();
}

ReasonAnswer Checker::ReasonNow(uint32_t reason) const {
  return discovery_ ? client_.ReasonExits64(reason) : client_.ReasonExits32(reason);
}

uint64_t Checker::Rise(uint64_t before, uint64_t after) const {
  return discovery_ ? after - before : static_cast<uint32_t>(after - before);
}

uint64_t Checker::TotalCyclesNow() const {
  // sjsu puts the total cycles in 0x4FFFFFFF's EBX:ECX as well as in
  // 0x4FFFFFFE, which many semesters do not ask for.
  if (client_.profile().name == kSjsu.name && !Fffe()) {
    Regs r = client_.Raw(client_.profile().total_exits, 0);
    return HiLo(r.ebx, r.ecx);
  }
  return client_.TotalCycles();
}

bool Checker::Fffe() const {
  if (discovery_) return true;
  for (const LeafBehaviour& b : found_.leaves)
    if (b.leaf == 0x4FFFFFFE) return b.roles != 0;
  return false;
}

const char* Checker::CountSource() const {
  return discovery_ ? "64-bit leaves" : "course leaves, low 32 bits (wrap-safe deltas)";
}

uint64_t Checker::Ops(GuestExit e) const {
  return std::max<uint64_t>(1, cfg_.iterations / Row(e).iter_divisor);
}

// Discovery: signature, version, highest reason, one vendor bit, profile.
Result Checker::DiscoveryLeaf() {
  Result r = Start("discovery", "", bug::kExtension, 0, true);
  if (!r.pass()) return r;
  Regs d = client_.Raw(leaf::kDiscovery, 0);
  if (d.ecx != kHighestDefinedReason)
    r.Fail(Fmt("discovery: highest defined reason: expected %u, observed %u", kHighestDefinedReason,
               d.ecx));
  const uint32_t known = flag::kHostWide | flag::kSvm | flag::kVmx | flag::kF22 | flag::kSeeded;
  if (d.edx & ~known) r.Fail(Fmt("discovery: unknown flag bits %08x", d.edx & ~known));
  if (!(d.edx & flag::kSvm) == !(d.edx & flag::kVmx))
    r.Fail(Fmt("discovery: flags %08x must name exactly one vendor (bit 1 SVM, bit 2 VMX)", d.edx));
  bool host_f22 = d.edx & flag::kF22;
  bool want_f22 = client_.profile().name == kF22.name;
  if (host_f22 != want_f22)
    r.Fail(Fmt("discovery: the host serves profile %s but this run checks %s: rerun with "
               "--profile %s",
               host_f22 ? "f22" : "sjsu", std::string(client_.profile().name).c_str(),
               host_f22 ? "f22" : "sjsu"));
  r.notes.push_back(Fmt("vendor %s, profile %s, scope %s%s",
                        VendorName(discovery_->vendor()).c_str(), host_f22 ? "f22" : "sjsu",
                        discovery_->host_wide() ? "host-wide" : "per-VM",
                        (d.edx & flag::kSeeded) ? ", counts seeded (deltas only)" : ""));
  return r;
}

// Every course leaf's four registers (and the extension leaves' where the
// host has them, against which the course values are bracketed).
Result Checker::LeafRegisters() {
  Result r = Start("leaf_registers", "", bug::kRegisters, kRoleTotalExits);
  if (!r.pass()) return r;
  // The course leaves as the burst showed them: each leaf the judged level
  // needs must count, and none may count what another leaf is for.
  const unsigned level_roles = level_ >= 3 ? 0xFu : (kRoleTotalExits | kRoleTotalCycles);
  for (const auto& m : found_.missing) {
    if (!(m.roles & level_roles)) continue;
    if (m.optional && !Strict()) r.notes.push_back(m.text + " (optional under the course rubric)");
    else if (!(discovery_ && !(m.roles & (kRoleTotalCycles | kRoleReasonCycles))))
      r.Fail(m.text, bug::kNotImplemented);
  }
  for (const auto& m : found_.misplaced) r.Fail(m, bug::kWrongBucket);
  const Profile& p = client_.profile();
  const bool sjsu = p.name == kSjsu.name;
  const bool ext = discovery_.has_value();
  const uint32_t slack = static_cast<uint32_t>(cfg_.cpus.size());  // in-flight exits

  // lo32 of a value read between two 64-bit reads a <= b must lie in [a, b].
  auto bracket32 = [&](const char* what, uint64_t a, uint32_t mid, uint64_t b) {
    if (!ext) return;
    uint64_t off = static_cast<uint32_t>(mid - static_cast<uint32_t>(a));
    if (off > b - a + slack)
      r.Fail(Fmt("%s: observed %u (low 32 bits) outside [%llu, %llu] read around it "
                 "through the 64-bit leaf",
                 what, mid, (unsigned long long)a, (unsigned long long)b),
             bug::kWrongBucket);
  };

  // Totals.
  uint64_t t0 = TotalNow();
  Regs tot = client_.Raw(p.total_exits, 0);
  uint64_t t1 = TotalNow();
  bracket32("total exits leaf EAX", t0, tot.eax, t1);
  if (tot.edx != 0) r.Fail(Fmt("total exits leaf 0x%08x: EDX=%08x, expected 0", p.total_exits, tot.edx));
  if (!sjsu && (tot.ebx | tot.ecx) != 0)
    r.Fail(Fmt("f22 total exits leaf 0x%08x: EBX:ECX=%08x:%08x, expected 0 (fall-through?)",
               p.total_exits, tot.ebx, tot.ecx));
  // sjsu without 0x4FFFFFFE: the total cycles are 0x4FFFFFFF's EBX:ECX.
  Regs cyc = sjsu && !Fffe() ? tot : client_.Raw(p.total_cycles, 0);
  {
    if (cyc.edx != 0)
      r.Fail(Fmt("total cycles leaf 0x%08x: EDX=%08x, expected 0", p.total_cycles, cyc.edx));
    if (HiLo(cyc.ebx, cyc.ecx) == 0)
      r.Fail(Fmt("total cycles leaf 0x%08x: 0 cycles after %llu exits (cycles not timed?)",
                 p.total_cycles, (unsigned long long)t1),
             bug::kCycles);
  }
  if (sjsu) {
    Regs fffe = client_.Raw(0x4FFFFFFE, 0);
    if (Fffe()) {
      // 0x4FFFFFFF and 0x4FFFFFFE both carry exits in EAX and cycles in EBX:ECX.
      uint64_t t2 = TotalNow();
      bracket32("0x4FFFFFFE EAX (total exits)", t1, fffe.eax, t2);
      uint64_t c0 = HiLo(tot.ebx, tot.ecx), c1 = HiLo(fffe.ebx, fffe.ecx);
      Regs again = client_.Raw(p.total_exits, 0);
      uint64_t c2 = HiLo(again.ebx, again.ecx);
      if (!(c0 <= c1 && c1 <= c2))
        r.Fail(Fmt("total cycles disagree: 0x4FFFFFFF %s, then 0x4FFFFFFE %s, then 0x4FFFFFFF %s "
                   "(must be non-decreasing)",
                   Hex(c0).c_str(), Hex(c1).c_str(), Hex(c2).c_str()),
               bug::kCycles);
    } else {
      std::string line = "0x4FFFFFFE (total cycles, some semesters) does not count: " +
                         RegsText(fffe);
      if (Strict()) r.Fail(line, bug::kNotImplemented);
      else r.notes.push_back(line + " (optional under the course rubric)");
    }
  } else if (cyc.eax != 0) {
    r.Fail(Fmt("f22 total cycles leaf 0x%08x: EAX=%08x, expected 0", p.total_cycles, cyc.eax));
  }
  if (ext) {
    Regs t64 = client_.Raw(leaf::kTotalExits64, 0);
    if (t64.eax != 0 || t64.edx != 0)
      r.Fail("0x4FFFFFF1: " + RegsText(t64) + ", expected EAX=EDX=0");
  }

  // Per-reason leaves for the handled reasons the suite drives.
  if (level_ >= 3 || ext)
    for (uint32_t reason :
         {reason::kCpuid, reason::kIo, reason::kRdmsr, reason::kWrmsr, reason::kHlt}) {
      if (!IsHandled(reason, vendor_)) continue;
      auto a = ext ? client_.ReasonExits64(reason) : client_.ReasonExits32(reason);
      auto e32 = client_.ReasonExits32(reason);
      auto b = ext ? client_.ReasonExits64(reason) : client_.ReasonExits32(reason);
      auto c = client_.ReasonCycles(reason);
      for (auto* ans : {&a, &e32, &b, &c})
        if (ans->kind != ReasonAnswer::Kind::kCounted)
          r.Fail(Fmt("reason %u: a per-reason leaf answered %s: wrong registers for a handled "
                     "reason (fall-through clobbering?)",
                     reason, RegsText(ans->raw).c_str()));
      if (r.status == Result::Status::kFail) continue;
      bracket32(Fmt("reason %u exits leaf 0x%08x", reason, p.reason_exits).c_str(), a.value,
                static_cast<uint32_t>(e32.value), b.value);
      if (reason == reason::kCpuid && c.value == 0)
        r.Fail(Fmt("reason 10 cycles leaf 0x%08x: 0 cycles after %llu CPUID exits (cycles not "
                   "timed?)",
                   p.reason_cycles, (unsigned long long)b.value),
               bug::kCycles);
    }
  if (!ext) {
    r.notes.push_back("course leaves only: registers checked, 64-bit brackets not applicable");
    return r;
  }

  // Raw-code leaf against the SDM reasons it maps to.
  const bool seeded = discovery_->flags & flag::kSeeded;
  for (const RawPair& pair : RawPairs(discovery_->vendor())) {
    // Seeded counts start at the seed per reason and per code: a code that
    // maps to two reasons then differs by one seed; compare 1:1 pairs only.
    if (seeded && pair.reasons.size() > 1) continue;
    uint64_t lo = 0, hi = 0;
    for (uint32_t rs : pair.reasons) lo += client_.ReasonExits64(rs).value;
    auto raw = client_.RawExits64(pair.raw);
    for (uint32_t rs : pair.reasons) hi += client_.ReasonExits64(rs).value;
    if (raw.kind != ReasonAnswer::Kind::kCounted) {
      r.Fail(Fmt("raw leaf 0x4FFFFFF3 code %s: answered %s, expected a tracked code",
                 Hex(pair.raw).c_str(), RegsText(raw.raw).c_str()));
    } else if (raw.value + slack < lo || raw.value > hi + slack) {
      r.Fail(Fmt("raw code %s counts %llu exits, but the SDM reason(s) it maps to counted %llu "
                 "before and %llu after",
                 Hex(pair.raw).c_str(), (unsigned long long)raw.value, (unsigned long long)lo,
                 (unsigned long long)hi),
             bug::kWrongBucket);
    }
  }
  return r;
}

// Undefined versus not handled versus counted, over 0..300, the edges and
// random sub-leaves, in every per-reason leaf; tracked versus untracked raw
// codes in 0x4FFFFFF3.
Result Checker::UndefinedVersusNotHandled() {
  Result r = Start("undefined_vs_not_handled", "", bug::kUndefined,
                   kRoleReasonExits | kRoleReasonCycles);
  if (!r.pass()) return r;
  const Vendor vendor = vendor_;
  const Profile& p = client_.profile();
  const bool ext = discovery_.has_value();

  std::vector<uint32_t> subs;
  for (uint32_t s = 0; s <= 300; ++s) subs.push_back(s);
  // Edges: around the highest defined reason, byte/word/sign boundaries, and
  // defined reasons with high bits set (a patch that truncates ECX to 8 or 16
  // bits, or indexes with a signed int, answers these as reason 10).
  for (uint32_t s : {0xFFu, 0x100u, 0x10Au, 0xFFFFu, 0x10000u, 0x1000Au, 0x7FFFFFFFu, 0x80000000u,
                     0x8000000Au, 0xFFFFFF0Au, 0xFFFFFFFEu, 0xFFFFFFFFu})
    subs.push_back(s);
  std::mt19937_64 rng(cfg_.seed);
  for (uint32_t i = 0; i < cfg_.random_ecx; ++i) subs.push_back(static_cast<uint32_t>(rng()));

  struct LeafCase {
    const char* name;
    uint32_t leaf;
    bool ext;
  };
  std::vector<LeafCase> leaves = {{"per-reason exits", p.reason_exits, false},
                                  {"per-reason cycles", p.reason_cycles, false}};
  if (ext) leaves.push_back({"per-reason exits (64-bit)", leaf::kReasonExits64, true});
  size_t n = 0, checked = 0, revision = 0;
  for (const LeafCase& lc : leaves) {
    for (uint32_t s : subs) {
      Regs got = client_.Raw(lc.leaf, s);
      ++checked;
      const bool defined = IsDefined(s), handled = IsHandled(s, vendor);
      // Reasons 66..77 entered the SDM in later revisions: a course table
      // from an older one answers them as undefined, which the course accepts.
      if (!Strict() && defined && s >= kFirstRevisionDependentReason &&
          got == Regs{0, 0, 0, kUndefinedReasonEdx}) {
        ++revision;
        continue;
      }
      if (!defined) {
        // A value beyond the table answered as a count, or as reason
        // ECX&0xFF, is an unclamped index; zeros are the undefined/not-handled mix-up.
        if (got != Regs{0, 0, 0, kUndefinedReasonEdx})
          AddLimited(r, n, Fmt("%s leaf 0x%08x, reason %u (%s): undefined by the SDM, expected "
                               "eax=ebx=ecx=0 edx=ffffffff, observed %s",
                               lc.name, lc.leaf, s, Hex(s).c_str(), RegsText(got).c_str()),
                     got == Regs{} ? bug::kUndefined : bug::kEcx);
      } else if (!handled) {
        // The 64-bit leaf reports the stored count as it is; with seeded
        // counters (a test knob) that count starts at the seed, not 0.
        const bool seeded_ext = lc.ext && (discovery_->flags & flag::kSeeded) &&
                                got.eax == 0 && got.edx == 0;
        if (got != Regs{} && !seeded_ext)
          AddLimited(r, n, Fmt("%s leaf 0x%08x, reason %u (%s): defined but not handled on %s, "
                               "expected all four registers 0, observed %s",
                               lc.name, lc.leaf, s, std::string(LookupReason(s)->name).c_str(),
                               VendorName(vendor).c_str(), RegsText(got).c_str()));
      } else {
        // Handled: EDX=0 and the registers the leaf does not use are 0.
        bool cycles_leaf = lc.leaf == p.reason_cycles;
        bool bad = got.edx != 0 ||
                   (lc.ext || cycles_leaf ? got.eax != 0 : (got.ebx | got.ecx) != 0);
        if (bad)
          AddLimited(r, n, Fmt("%s leaf 0x%08x, reason %u (%s): handled on %s, observed %s",
                               lc.name, lc.leaf, s, std::string(LookupReason(s)->name).c_str(),
                               VendorName(vendor).c_str(), RegsText(got).c_str()));
      }
    }
  }
  if (revision)
    r.notes.push_back(Fmt("%zu answers for reasons %u..%u (defined only in later SDM revisions) "
                          "said undefined: accepted under the course rubric",
                          revision, kFirstRevisionDependentReason, kHighestDefinedReason));
  if (!ext) {
    CloseLimited(r, n);
    r.notes.push_back(Fmt("%zu sub-leaf answers checked (0..300, edges, %u random, seed %llu); "
                          "raw-code leaf 0x4FFFFFF3 not applicable (course leaves only)",
                          checked, cfg_.random_ecx, (unsigned long long)cfg_.seed));
    return r;
  }
  // Raw codes: tracked ranges answer EAX=EDX=0; everything else is untracked.
  std::vector<uint32_t> raws;
  for (uint32_t c = 0; c <= 0x4FF; ++c) raws.push_back(c);
  for (uint32_t c : {0xFFFFFFFFu, 0xFFFFFFFEu, 0x80000000u, 0x80000072u, 0x10072u})
    raws.push_back(c);
  for (uint32_t i = 0; i < cfg_.random_ecx / 4; ++i) raws.push_back(static_cast<uint32_t>(rng()));
  for (uint32_t c : raws) {
    Regs got = client_.Raw(leaf::kRawExits64, c);
    ++checked;
    if (RawCodeTracked(c, vendor)) {
      if (got.eax != 0 || got.edx != 0)
        AddLimited(r, n, Fmt("raw leaf 0x4FFFFFF3, %s code %s: tracked, observed %s",
                             VendorName(vendor).c_str(), Hex(c).c_str(), RegsText(got).c_str()));
    } else if (got != Regs{0, 0, 0, kUndefinedReasonEdx}) {
      AddLimited(r, n, Fmt("raw leaf 0x4FFFFFF3, %s code %s: not tracked, expected "
                           "eax=ebx=ecx=0 edx=ffffffff, observed %s",
                           VendorName(vendor).c_str(), Hex(c).c_str(), RegsText(got).c_str()));
    }
  }
  CloseLimited(r, n);
  r.notes.push_back(Fmt("%zu sub-leaf answers checked (0..300, edges, %u random, seed %llu)",
                        checked, cfg_.random_ecx, (unsigned long long)cfg_.seed));
  return r;
}

namespace {
std::string VendorString(const Regs& r) {
  char v[13];
  std::memcpy(v, &r.ebx, 4);
  std::memcpy(v + 4, &r.edx, 4);
  std::memcpy(v + 8, &r.ecx, 4);
  v[12] = 0;
  return v;
}
std::string HvSignature(const Regs& r) {
  char v[13];
  std::memcpy(v, &r.ebx, 4);
  std::memcpy(v + 4, &r.ecx, 4);
  std::memcpy(v + 8, &r.edx, 4);
  v[12] = 0;
  return std::string(v, strnlen(v, 12));
}
}  // namespace

// Leaves 0, 1 and 0x40000000 are what they were before the patch: sane,
// equal to what the kernel reports in /proc/cpuinfo, the same on every vCPU.
Result Checker::OrdinaryLeaves() {
  Result r = Start("ordinary_leaves", "", bug::kOrdinary, 0);
  if (!r.pass()) return r;
  Regs l0 = env_.Cpuid(0, 0), l1 = env_.Cpuid(1, 0), hv = env_.Cpuid(0x40000000, 0);
  std::string vendor = VendorString(l0), cpuinfo_vendor = env_.CpuinfoField("vendor_id");
  if (l0.eax < 1 || l0.eax > 0x100)
    r.Fail(Fmt("leaf 0: highest basic leaf %s is not sane", Hex(l0.eax).c_str()));
  if (cpuinfo_vendor.empty())
    r.notes.push_back("/proc/cpuinfo has no vendor_id: leaf 0 vendor not compared");
  else if (vendor != cpuinfo_vendor)
    r.Fail("leaf 0: vendor \"" + vendor + "\" but /proc/cpuinfo says \"" + cpuinfo_vendor + "\"");
  uint32_t base_family = (l1.eax >> 8) & 0xF, family = base_family;
  if (base_family == 0xF) family += (l1.eax >> 20) & 0xFF;
  // As Linux computes them (arch/x86/lib/cpu.c x86_family/x86_model).
  uint32_t model = (l1.eax >> 4) & 0xF;
  if (family >= 0x6) model |= ((l1.eax >> 16) & 0xF) << 4;
  for (auto [key, value] : {std::pair{"cpu family", family}, std::pair{"model", model},
                            std::pair{"stepping", l1.eax & 0xF}}) {
    std::string s = env_.CpuinfoField(key);
    if (!s.empty() && s != std::to_string(value))
      r.Fail(Fmt("leaf 1: %s %u but /proc/cpuinfo says %s", key, value, s.c_str()));
  }
  if (!(l1.ecx & (1u << 31))) r.Fail("leaf 1: ECX bit 31 (hypervisor present) is clear");
  // KVM's signature is at 0x40000000, or at 0x40000100 when Hyper-V
  // enlightenments occupy the base.
  std::string sig = HvSignature(hv);
  uint32_t kvm_base = 0x40000000;
  if (sig != "KVMKVMKVM") {
    Regs hv2 = env_.Cpuid(0x40000100, 0);
    if (HvSignature(hv2) == "KVMKVMKVM") {
      kvm_base = 0x40000100;
      hv = hv2;
    } else {
      r.Fail("leaf 0x40000000: signature \"" + sig + "\" (" + RegsText(hv) +
             "), expected \"KVMKVMKVM\"");
    }
  }
  if (hv.eax < kvm_base + 1 || hv.eax >= 0x4FFFFFF0)
    r.Fail(Fmt("leaf %s: highest hypervisor leaf %s is not sane", Hex(kvm_base).c_str(),
               Hex(hv.eax).c_str()));

  // Stable: every vCPU answers the same, 64 times over (leaf 1 EBX[31:24]
  // is the APIC ID and differs per vCPU).
  struct Seen {
    Regs l0, l1, hv;
  };
  std::vector<Seen> seen(cfg_.cpus.size());
  std::vector<uint64_t> unstable = RunOnCpus(env_, cfg_.cpus, [&](size_t w, int) -> uint64_t {
    uint64_t bad = 0;
    for (int i = 0; i < 64; ++i) {
      Seen s{env_.Cpuid(0, 0), env_.Cpuid(1, 0), env_.Cpuid(kvm_base, 0)};
      s.l1.ebx &= 0x00FFFFFF;
      if (i == 0) seen[w] = s;
      else if (!(s.l0 == seen[w].l0 && s.l1 == seen[w].l1 && s.hv == seen[w].hv)) ++bad;
    }
    return bad;
  });
  for (size_t w = 0; w < cfg_.cpus.size(); ++w) {
    if (unstable[w])
      r.Fail(Fmt("vCPU %d: leaves 0/1/%s changed between %llu of 64 reads", cfg_.cpus[w],
                 Hex(kvm_base).c_str(), (unsigned long long)unstable[w]));
    if (!(seen[w].l0 == l0) || !(seen[w].hv == hv))
      r.Fail(Fmt("vCPU %d: leaf 0 or %s differs from vCPU %d's: %s / %s", cfg_.cpus[w],
                 Hex(kvm_base).c_str(), cfg_.cpus[0], RegsText(seen[w].l0).c_str(),
                 RegsText(seen[w].hv).c_str()));
    if (!(seen[w].l1 == seen[0].l1))
      r.Fail(Fmt("vCPU %d: leaf 1 (APIC ID masked) %s differs from vCPU %d's %s", cfg_.cpus[w],
                 RegsText(seen[w].l1).c_str(), cfg_.cpus[0], RegsText(seen[0].l1).c_str()));
  }
  r.notes.push_back("vendor " + vendor + ", hypervisor " + HvSignature(hv) + " at " + Hex(kvm_base));
  return r;
}

// Each exit type on all vCPUs at once: the per-reason count rose by at least
// the work done (course 32-bit leaf, and the 64-bit extension leaf where the
// host has it), its cycles rose, and the total rose at least as much. At
// assignment 2 (totals only) the total itself must rise by the work.
Result Checker::LowerBound(GuestExit e) {
  const GuestExitRow& row = Row(e);
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
  auto c0 = per_reason ? client_.ReasonCycles(row.reason) : none;
  auto e32_0 = per_reason ? client_.ReasonExits32(row.reason) : none;
  auto e64_0 = ext ? client_.ReasonExits64(row.reason) : none;
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
  auto e64_1 = ext ? client_.ReasonExits64(row.reason) : none;
  auto e32_1 = per_reason ? client_.ReasonExits32(row.reason) : none;
  auto c1 = per_reason ? client_.ReasonCycles(row.reason) : none;
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
      r.Fail(Fmt("%s: reason %u leaf answered %s", row.name.data(), row.reason,
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
               row.name.data(), workers, row.reason, Hex(e64_0.value).c_str(),
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
    const std::string_view klass = row.kvm_fastpath                             ? bug::kFastpath
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
    shortfall(Fmt("reason %u (course leaf 0x%08x)", row.reason, client_.profile().reason_exits),
              obs32);
    if (ext) shortfall(Fmt("reason %u (64-bit leaf 0x4FFFFFF2)", row.reason), obs64);
    if (d_total < counted)
      r.Fail(Fmt("%s on %zu vCPUs: total exits rose by %llu, less than reason %u alone (%llu)",
                 row.name.data(), workers, (unsigned long long)d_total, row.reason,
                 (unsigned long long)counted),
             bug::kUncounted);
  } else {
    shortfall(Fmt("total exits (course leaf 0x%08x)", client_.profile().total_exits), d_total);
  }
  // Cycles: of the reason where the host has per-reason cycles, else the total.
  const bool reason_cycles = per_reason;
  const uint64_t ca = reason_cycles ? c0.value : tc0, cb = reason_cycles ? c1.value : tc1;
  const uint64_t ex = reason_cycles ? counted : d_total;
  const std::string cname = reason_cycles ? Fmt("reason %u cycles", row.reason) : "total cycles";
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
                        per_reason ? Fmt("reason %u", row.reason).c_str() : "total exits",
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
