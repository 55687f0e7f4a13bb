// Finding the course leaves by how they behave, not by a signature.
//
// A real submission implements the course leaves and nothing else (no
// discovery leaf), so the only proof that a leaf is a counter is that it
// counts: over a burst of N CPUIDs a total-exits leaf rises with the burst
// (by N/2 at least, so that a lossy counter is still found) whatever ECX
// holds, a per-reason leaf rises with it for ECX=10 and by less than half as
// much for a reason the burst does not cause. Unpatched KVM answers
// a leaf it does not know with zeros (AMD) or with the highest basic leaf's
// constant data (Intel): neither rises, so neither is ever taken for a counter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "exitstats/abi.h"
#include "exitstats/cpuid.h"

namespace exitstats {

// What a course leaf can be. A leaf may play two roles (sjsu's 0x4FFFFFFF
// carries total exits in EAX and total cycles in EBX:ECX).
enum Role : unsigned {
  kRoleTotalExits = 1u << 0,
  kRoleTotalCycles = 1u << 1,
  kRoleReasonExits = 1u << 2,
  kRoleReasonCycles = 1u << 3,
};
std::string RoleNames(unsigned roles);  // "total exits + cycles", "per-reason exits", "none"

// The four course leaves as a profile places them: the roles each must play.
struct LeafRoles {
  uint32_t leaf;
  unsigned roles;
};
std::vector<LeafRoles> ExpectedRoles(const Profile& p);

// What one course leaf did over the burst.
struct LeafBehaviour {
  uint32_t leaf = 0;
  unsigned roles = 0;            // roles it showed
  uint64_t rise_exits_any = 0;   // EAX rise with ECX=0 (32-bit, wrap-safe)
  uint64_t rise_exits_cpuid = 0; // EAX rise with ECX=10
  uint64_t rise_exits_svm_code = 0;  // EAX rise with ECX=0x72, SVM's code for CPUID
  uint64_t rise_cycles_any = 0;  // EBX:ECX rise with ECX=0
  uint64_t rise_cycles_cpuid = 0;
};

struct FoundLeaves {
  uint64_t burst = 0;                     // CPUIDs issued between the reads
  std::vector<LeafBehaviour> leaves;      // 0x4FFFFFFC..0x4FFFFFFF
  std::optional<Profile> profile;         // the numbering that explains them
  std::string profile_why;                // how it was chosen, or why none was
  bool ambiguous = false;                 // behaviour fits several numberings
  int assignment = 0;                     // 0 no counter, 2 totals only, 3 per reason too
  bool extensions = false;                // discovery leaf 0x4FFFFFF0 answers the signature
  // Roles the chosen profile expects at a leaf that did not show them,
  // e.g. "0x4FFFFFFC: per-reason cycles expected, answers like unpatched CPUID".
  // Which of them is a finding depends on the assignment level judged.
  struct Missing {
    uint32_t leaf;
    unsigned roles;
    bool optional;  // sjsu's 0x4FFFFFFE when 0x4FFFFFFF carries both totals
    std::string text;
  };
  std::vector<Missing> missing;
  // A leaf with the wrong content: roles shown where the profile expects
  // none, or per-reason counts under the vendor's own exit codes (SVM's
  // 0x72 for CPUID) instead of the SDM reasons both vendors answer in (an
  // SVM patch that indexes its table by exit_code; such a leaf plays no
  // role, so a patch with only it is judged at assignment 2 plus this).
  std::vector<std::string> misplaced;

  bool any_counter() const { return assignment > 0; }
  bool has(unsigned role) const;  // the chosen profile's leaf for `role` showed it
  // One line per run, e.g. "0x4FFFFFFF: total exits + cycles (rose 10,003 over
  // 10,000 CPUIDs); 0x4FFFFFFD/C: per reason; 0x4FFFFFF0: absent, extension
  // checks not applicable".
  std::string Summary() const;
};

// Reads every course leaf with ECX=0, ECX=10 and ECX=0x72, issues `burst` CPUIDs
// (leaf 0) through `cpuid`, reads them again, and matches the behaviour
// against the numberings in `candidates` (sjsu and f22 when empty). With
// `forced`, that numbering is used and only checked.
FoundLeaves FindLeaves(const CpuidFn& cpuid, uint64_t burst,
                       const std::vector<Profile>& candidates = {},
                       std::optional<Profile> forced = std::nullopt);

// "total=0x4FFFFFFF,cycles=0x4FFFFFFE,reason=0x4FFFFFFD,reason_cycles=0x4FFFFFFC"
// -> a profile named "custom"; nullopt and *error on bad input.
std::optional<Profile> ParseLeafMap(const std::string& text, std::string* error);

}  // namespace exitstats
