// exit_stress's rows of the exit catalogue and the Checker's shared
// machinery: construction (leaf discovery), the gate every check starts with,
// and the counter readers. The checks themselves are in
// conformance_checks.cc, load_checks.cc and concurrency_checks.cc.
#include "checks.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "checks_internal.h"
#include "exitstats/reasons.h"

namespace exitstats::guest {

// ------------------------------------------------- the rows exit_stress drives

std::span<const ExitType> GuestExits() {
  static const std::vector<ExitType> rows = [] {
    std::vector<ExitType> v;
    for (const ExitType& e : exitstats::Catalogue())
      if (e.user.stressed) v.push_back(e);
    return v;
  }();
  return rows;
}

const ExitType& Row(GuestExit e) { return exitstats::Lookup(e); }

std::optional<GuestExit> GuestExitByName(std::string_view name) {
  if (name == "io") name = "io_user";  // exit_stress's name before it used the catalogue's
  for (const ExitType& r : GuestExits())
    if (r.name == name) return r.kind;
  return std::nullopt;
}

// ------------------------------------------------------------------ helpers

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

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
  vendor_ = discovery_ ? discovery_->vendor() : VendorOfLeaf0(env_.Cpuid(0, 0));
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
  return std::max<uint64_t>(1, cfg_.iterations / Row(e).user.ops_divisor);
}

}  // namespace exitstats::guest
