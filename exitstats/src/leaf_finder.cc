#include "exitstats/leaf_finder.h"

#include <array>
#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "exitstats/reasons.h"

namespace exitstats {

namespace {

constexpr uint32_t kFirstCourseLeaf = 0x4FFFFFFC;
// No numbering uses this leaf: KVM answers it as it answers any unknown
// hypervisor-range leaf, which is what an unimplemented course leaf looks like.
constexpr uint32_t kUnusedLeaf = 0x4FFFFFF7;

std::string Hex8(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08X", v);
  return b;
}

std::string Thousands(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

unsigned RolesAt(const std::vector<LeafRoles>& roles, uint32_t leaf) {
  for (const LeafRoles& r : roles)
    if (r.leaf == leaf) return r.roles;
  return 0;
}

}  // namespace

std::string RoleNames(unsigned roles) {
  if (roles == 0) return "none";
  if (roles == (kRoleTotalExits | kRoleTotalCycles)) return "total exits + cycles";
  if (roles == (kRoleReasonExits | kRoleReasonCycles)) return "per-reason exits + cycles";
  std::string s;
  auto add = [&](unsigned bit, const char* name) {
    if (!(roles & bit)) return;
    if (!s.empty()) s += " + ";
    s += name;
  };
  add(kRoleTotalExits, "total exits");
  add(kRoleTotalCycles, "total cycles");
  add(kRoleReasonExits, "per-reason exits");
  add(kRoleReasonCycles, "per-reason cycles");
  return s;
}

std::vector<LeafRoles> ExpectedRoles(const Profile& p) {
  std::vector<LeafRoles> out;
  auto add = [&](uint32_t leaf, unsigned role) {
    for (LeafRoles& r : out)
      if (r.leaf == leaf) {
        r.roles |= role;
        return;
      }
    out.push_back({leaf, role});
  };
  add(p.total_exits, kRoleTotalExits);
  add(p.total_cycles, kRoleTotalCycles);
  add(p.reason_exits, kRoleReasonExits);
  add(p.reason_cycles, kRoleReasonCycles);
  // sjsu: 0x4FFFFFFF and 0x4FFFFFFE both carry exits in EAX and cycles in EBX:ECX.
  if (p.name == kSjsu.name) {
    add(p.total_exits, kRoleTotalCycles);
    add(p.total_cycles, kRoleTotalExits);
  }
  return out;
}

bool FoundLeaves::has(unsigned role) const {
  if (!profile) return false;
  for (const LeafRoles& want : ExpectedRoles(*profile)) {
    if (!(want.roles & role)) continue;
    for (const LeafBehaviour& b : leaves)
      if (b.leaf == want.leaf && (b.roles & role)) return true;
  }
  return false;
}

std::string FoundLeaves::Summary() const {
  std::ostringstream o;
  bool first = true;
  for (const LeafBehaviour& b : leaves) {
    if (!b.roles) continue;
    if (!first) o << "; ";
    first = false;
    o << Hex8(b.leaf) << ": " << RoleNames(b.roles) << " (rose "
      << Thousands((b.roles & (kRoleTotalExits | kRoleReasonExits)) ? b.rise_exits_cpuid
                                                                     : b.rise_cycles_cpuid)
      << ((b.roles & (kRoleTotalExits | kRoleReasonExits)) ? "" : " cycles") << " over "
      << Thousands(burst) << " CPUIDs)";
  }
  if (first) o << "no course leaf counts exits (none rose over " << Thousands(burst) << " CPUIDs)";
  o << "; " << Hex8(leaf::kDiscovery) << ": "
    << (extensions ? "present, extension checks apply" : "absent, extension checks not applicable");
  if (profile)
    o << "; profile " << profile->name << " (" << profile_why << ")"
      << (assignment ? "; assignment " + std::to_string(assignment) : "");
  return o.str();
}

FoundLeaves FindLeaves(const CpuidFn& cpuid, uint64_t burst, const std::vector<Profile>& candidates,
                       std::optional<Profile> forced) {
  FoundLeaves f;
  f.burst = burst;
  Regs disc = cpuid(leaf::kDiscovery, 0);
  f.extensions = disc.eax == kSignature && disc.ebx == kAbiVersion;

  // Per leaf: ECX=0 (a reason the burst does not cause), ECX=10 (the SDM's
  // CPUID), ECX=0x72 (SVM's exit code for CPUID).
  constexpr std::array<uint32_t, 3> kSubleaves = {0, reason::kCpuid, reason::kSvmCodeCpuid};
  using Reads = std::array<std::array<Regs, kSubleaves.size()>, 4>;  // [leaf][sub-leaf]
  Reads before{}, after{};
  auto read_all = [&](Reads& out) {
    for (uint32_t i = 0; i < 4; ++i)
      for (size_t k = 0; k < kSubleaves.size(); ++k)
        out[i][k] = cpuid(kFirstCourseLeaf + i, kSubleaves[k]);
  };
  read_all(before);
  for (uint64_t i = 0; i < burst; ++i) cpuid(0, 0);
  read_all(after);

  const uint64_t n = burst == 0 ? 1 : burst;
  for (uint32_t i = 0; i < 4; ++i) {
    LeafBehaviour b;
    b.leaf = kFirstCourseLeaf + i;
    const auto& [a0, a10, a72] = before[i];
    const auto& [z0, z10, z72] = after[i];
    b.rise_exits_any = static_cast<uint32_t>(z0.eax - a0.eax);
    b.rise_exits_cpuid = static_cast<uint32_t>(z10.eax - a10.eax);
    b.rise_exits_svm_code = static_cast<uint32_t>(z72.eax - a72.eax);
    // A cycle value that went down is no rise (and a torn read is judged later).
    auto rise64 = [](const Regs& x, const Regs& y) {
      uint64_t u = HiLo(x.ebx, x.ecx), v = HiLo(y.ebx, y.ecx);
      return v > u ? v - u : 0;
    };
    b.rise_cycles_any = rise64(a0, z0);
    b.rise_cycles_cpuid = rise64(a10, z10);
    // Total: rises with the burst whatever ECX says. Per reason: rises with
    // the burst for reason 10 and by less than half as much for reason 0.
    // "With the burst" is at least half of it: a counter that loses updates
    // is still a counter (its losses are a finding of the checks), and an
    // unpatched answer does not move at all.
    if (2 * b.rise_exits_cpuid >= n)
      b.roles |= 2 * b.rise_exits_any >= b.rise_exits_cpuid ? kRoleTotalExits : kRoleReasonExits;
    if (b.rise_cycles_cpuid >= n)
      b.roles |= 2 * b.rise_cycles_any >= b.rise_cycles_cpuid ? kRoleTotalCycles : kRoleReasonCycles;
    // Per reason, but keyed by the SVM exit code: rises for 0x72 as a
    // per-reason leaf rises for 10, and not for 10.
    if (!(b.roles & kRoleTotalExits) && 2 * b.rise_exits_cpuid < n &&
        2 * b.rise_exits_svm_code >= n && 2 * b.rise_exits_any < b.rise_exits_svm_code)
      f.misplaced.push_back(
          Hex8(b.leaf) + ": counts exits per SVM exit code, not per SDM reason: ECX=0x72 (SVM's "
          "CPUID) rose " + Thousands(b.rise_exits_svm_code) + " over " + Thousands(burst) +
          " CPUIDs, ECX=10 (the SDM's CPUID) " + Thousands(b.rise_exits_cpuid) +
          "; the leaves take SDM basic exit reasons on both vendors");
    f.leaves.push_back(b);
  }

  // The numbering: the candidates under which every leaf that counts plays a
  // role it is meant to, and most leaves are explained.
  std::vector<Profile> cands = candidates;
  if (cands.empty()) cands = {kSjsu, kF22};
  struct Score {
    bool consistent;
    int explained;
  };
  auto score = [&](const Profile& p) {
    Score s{true, 0};
    std::vector<LeafRoles> want = ExpectedRoles(p);
    for (const LeafBehaviour& b : f.leaves) {
      if (!b.roles) continue;
      unsigned w = RolesAt(want, b.leaf);
      if (b.roles & ~w) s.consistent = false;
      if (b.roles & w) ++s.explained;
    }
    return s;
  };
  std::optional<Profile> best;
  Score best_score{false, -1};
  int ties = 0;
  for (const Profile& p : cands) {
    Score s = score(p);
    bool better = (s.consistent && !best_score.consistent) ||
                  (s.consistent == best_score.consistent && s.explained > best_score.explained);
    if (better) {
      best = p;
      best_score = s;
      ties = 1;
    } else if (s.consistent == best_score.consistent && s.explained == best_score.explained) {
      ++ties;
    }
  }
  int counting = 0;
  for (const LeafBehaviour& b : f.leaves) counting += b.roles != 0;
  if (forced) {
    Score s = score(*forced);
    f.profile = forced;
    f.profile_why = std::string("--profile ") + std::string(forced->name) +
                    (s.consistent ? "" : "; behaviour does not fit it");
  } else if (counting == 0) {
    f.profile = cands.front();
    f.profile_why = "default: no leaf counts, so no numbering to tell";
  } else {
    f.profile = best;
    f.ambiguous = ties > 1;
    f.profile_why = f.ambiguous ? "behaviour fits several numberings: pass --profile"
                    : best_score.consistent ? "the only numbering the behaviour fits"
                                            : "closest numbering; some leaves do not fit it";
  }

  // Findings against the chosen numbering.
  const Regs unused0 = cpuid(kUnusedLeaf, 0);
  bool reason_role = false, total_role = false;
  for (const LeafRoles& want : ExpectedRoles(*f.profile)) {
    const LeafBehaviour* b = nullptr;
    for (const LeafBehaviour& x : f.leaves)
      if (x.leaf == want.leaf) b = &x;
    if (!b) continue;
    unsigned shown = b->roles & want.roles;
    if (shown & (kRoleReasonExits | kRoleReasonCycles)) reason_role = true;
    if (shown & (kRoleTotalExits | kRoleTotalCycles)) total_role = true;
    unsigned lacking = want.roles & ~b->roles;
    if (lacking) {
      Regs now = cpuid(want.leaf, 0);
      std::string how = now == unused0 ? "answers like unpatched CPUID (not implemented, or the "
                                         "answer falls through to KVM's ordinary one)"
                                       : "did not rise over the burst";
      // Some semesters ask for 0x4FFFFFFE, most do not: with both totals in
      // 0x4FFFFFFF its absence is no finding under the course rubric.
      bool optional = f.profile->name == kSjsu.name && want.leaf == f.profile->total_cycles &&
                      b->roles == 0;
      f.missing.push_back({want.leaf, lacking, optional,
                           Hex8(want.leaf) + ": " + RoleNames(lacking) + " expected, " + how});
    }
    if (b->roles & ~want.roles)
      f.misplaced.push_back(Hex8(want.leaf) + ": behaves as " + RoleNames(b->roles & ~want.roles) +
                            ", but profile " + std::string(f.profile->name) + " puts " +
                            RoleNames(want.roles) + " there");
  }
  f.assignment = reason_role ? 3 : total_role ? 2 : 0;
  return f;
}

std::optional<Profile> ParseLeafMap(const std::string& text, std::string* error) {
  Profile p{"custom", 0, 0, 0, 0};
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto eq = item.find('=');
    if (eq == std::string::npos) {
      *error = "leaf map item '" + item + "' is not key=leaf";
      return std::nullopt;
    }
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    char* end = nullptr;
    unsigned long v = std::strtoul(value.c_str(), &end, 0);
    if (value.empty() || *end || v < kFirstCourseLeaf || v > 0x4FFFFFFFul) {
      *error = "leaf map: '" + value + "' is not a leaf in 0x4FFFFFFC..0x4FFFFFFF";
      return std::nullopt;
    }
    uint32_t leaf = static_cast<uint32_t>(v);
    if (key == "total") p.total_exits = leaf;
    else if (key == "cycles") p.total_cycles = leaf;
    else if (key == "reason") p.reason_exits = leaf;
    else if (key == "reason_cycles") p.reason_cycles = leaf;
    else {
      *error = "leaf map: unknown key '" + key + "' (total, cycles, reason, reason_cycles)";
      return std::nullopt;
    }
  }
  if (!p.total_exits || !p.total_cycles || !p.reason_exits || !p.reason_cycles) {
    *error = "leaf map needs all four keys: total, cycles, reason, reason_cycles";
    return std::nullopt;
  }
  return p;
}

}  // namespace exitstats
