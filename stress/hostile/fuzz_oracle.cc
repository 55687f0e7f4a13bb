#include "fuzz_oracle.h"

#include <algorithm>
#include <cstdio>

#include "exitstats/reasons.h"

namespace hostile {

using exitstats::Discovery;
using exitstats::HiLo;
using exitstats::Regs;
using exitstats::Vendor;

namespace {

// What a leaf number means under the active profile.
enum class Role {
  kDiscovery,
  kTotal64,
  kReason64,
  kRaw64,
  kTotalExits32,
  kTotalCycles,
  kReasonExits32,
  kReasonCycles,
};

Role RoleOf(uint32_t leaf, const exitstats::Profile& p) {
  namespace L = exitstats::leaf;
  if (leaf == L::kDiscovery) return Role::kDiscovery;
  if (leaf == L::kTotalExits64) return Role::kTotal64;
  if (leaf == L::kReasonExits64) return Role::kReason64;
  if (leaf == L::kRawExits64) return Role::kRaw64;
  if (leaf == p.total_exits) return Role::kTotalExits32;
  if (leaf == p.total_cycles) return Role::kTotalCycles;
  if (leaf == p.reason_exits) return Role::kReasonExits32;
  return Role::kReasonCycles;
}

bool IsSjsuLayout(const exitstats::Profile& p) { return p.name == exitstats::kSjsu.name; }

constexpr Regs kUndefined{0, 0, 0, exitstats::kUndefinedReasonEdx};
constexpr Regs kZero{0, 0, 0, 0};

// The CPUID exit's raw vendor code: SVM_EXIT_CPUID or VMX basic reason 10.
uint32_t RawCpuid(Vendor v) { return v == Vendor::kSvm ? 0x072 : 10; }

std::string Fmt(const Regs& r) {
  char b[64];
  std::snprintf(b, sizeof b, "%08x %08x %08x %08x", r.eax, r.ebx, r.ecx, r.edx);
  return b;
}

}  // namespace

std::string Hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%X", v);
  return b;
}

bool RawTracked(uint32_t code, Vendor vendor) {
  if (vendor == Vendor::kVmx) return code <= exitstats::kHighestDefinedReason;
  return code <= 0x0FF || (code >= 0x400 && code <= 0x40F);
}

std::vector<uint32_t> EdgeEcx(uint32_t leaf, const Discovery& d) {
  std::vector<uint32_t> v = {0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE};
  if (leaf == exitstats::leaf::kRawExits64) {
    // Raw codes: the tracked ranges' edges and their aliases.
    const uint32_t cpuid = RawCpuid(d.vendor());
    if (d.vendor() == Vendor::kSvm) {
      v.insert(v.end(), {0x0FF, 0x100, 0x101, 0x3FF, 0x400, 0x40F, 0x410,
                         0x472 /* 0x72 | 0x400 */, 0x10072, cpuid});
    } else {
      v.insert(v.end(), {76, 77, 78, 79, 0x80000000u | cpuid /* entry-failure bit */,
                         0x100 | cpuid, cpuid});
    }
    return v;
  }
  const uint32_t top = exitstats::kHighestDefinedReason;
  v.insert(v.end(), {top - 1, top, top + 1, top + 2, 0x7F, 0x80, 0xFF, 0x100,
                     // low byte / low 16 bits alias CPUID (10): a handler
                     // that truncates ECX answers with real counts here.
                     0x10A, 0x1000A, 0x8000000A, 0xFFFFFF0A, 0xFFFF000A});
  for (uint32_t r = 0; r <= top; ++r)
    if (!exitstats::IsDefined(r)) v.push_back(r);  // the holes: 35, 38, 42, 65, 71
  // Defined but not handled on this vendor, and the handled neighbours.
  for (uint32_t r = 0; r <= top; ++r)
    if (exitstats::IsDefined(r) && !exitstats::IsHandled(r, d.vendor())) v.push_back(r);
  v.push_back(exitstats::reason::kCpuid);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

QueryGen::QueryGen(uint64_t seed, Discovery d) : d_(d), rng_(seed) {
  // Edges of all leaves, interleaved so that a short CI run still covers each.
  std::vector<std::vector<uint32_t>> per_leaf;
  size_t longest = 0;
  for (uint32_t leaf : kFuzzedLeaves) {
    per_leaf.push_back(EdgeEcx(leaf, d));
    longest = std::max(longest, per_leaf.back().size());
  }
  for (size_t i = 0; i < longest; ++i)
    for (size_t l = 0; l < kFuzzedLeaves.size(); ++l) {
      const auto& e = per_leaf[l];
      uint32_t ecx = e[i % e.size()];
      edges_.push_back({kFuzzedLeaves[l], ecx, 0, 0});
    }
}

void QueryGen::Fill(std::span<Query> out) {
  for (Query& q : out) {
    const size_t slot = generated_ % kFuzzedLeaves.size();
    const uint64_t r = rng_();
    if (edge_pos_ < edges_.size() && edges_[edge_pos_].leaf == kFuzzedLeaves[slot]) {
      q = edges_[edge_pos_++];
    } else {
      q.leaf = kFuzzedLeaves[slot];
      switch (r & 3) {
        case 0:
        case 1: q.ecx = static_cast<uint32_t>(r >> 32); break;   // anywhere
        case 2: q.ecx = static_cast<uint32_t>((r >> 8) & 0x7F); break;  // the table
        case 3:  // near the raw-code and reason edges
          q.ecx = (q.leaf == exitstats::leaf::kRawExits64 && d_.vendor() == Vendor::kSvm)
                      ? 0x3F0 + static_cast<uint32_t>((r >> 8) % 0x30)
                      : 0x40 + static_cast<uint32_t>((r >> 8) % 0x20);
          break;
      }
    }
    const uint64_t g = rng_();
    q.ebx_in = static_cast<uint32_t>(g);
    q.edx_in = static_cast<uint32_t>(g >> 32);
    ++generated_;
  }
}

Checker::Checker(exitstats::Profile profile, Regs discovery, bool fresh_vm)
    : profile_(profile),
      discovery_(discovery),
      vendor_(Discovery{discovery.ebx, discovery.ecx, discovery.edx}.vendor()),
      host_wide_(discovery.edx & exitstats::flag::kHostWide),
      fresh_vm_(fresh_vm) {}

uint64_t Checker::checked(uint32_t leaf) const {
  auto it = checked_.find(leaf);
  return it == checked_.end() ? 0 : it->second;
}

std::string Checker::Monotonic(const std::string& name, uint64_t value, uint32_t leaf) {
  Series& s = series_[name];
  if (value < s.last) {
    char b[160];
    std::snprintf(b, sizeof b, "%s went backwards: %llu (leaf 0x%08X) then %llu", name.c_str(),
                  static_cast<unsigned long long>(s.last), s.last_leaf,
                  static_cast<unsigned long long>(value));
    return b;
  }
  s.last = value;
  s.last_leaf = leaf;
  return "";
}

std::string Checker::Shape(const Query& q, const Regs& o, uint64_t own) {
  const uint32_t r = q.ecx;
  // 32-bit course values are comparable with 64-bit ones (and bounded below
  // by our own CPUIDs) only in a fresh per-VM scope: host-wide counts may
  // have wrapped their low 32 bits long ago.
  const bool exact32 = fresh_vm_ && !host_wide_;
  auto expect = [&](const Regs& want, const char* what) -> std::string {
    return o == want ? "" : std::string(what) + ": want " + Fmt(want);
  };
  auto need = [&](bool ok, const char* what) -> std::string { return ok ? "" : what; };
  auto at_least = [&](uint64_t v, const char* what) -> std::string {
    if (v >= own) return "";
    return std::string(what) + " is " + std::to_string(v) + ", below this vCPU's own " +
           std::to_string(own) + " CPUIDs";
  };
  std::string e;
  switch (RoleOf(q.leaf, profile_)) {
    case Role::kDiscovery:
      return expect(discovery_, "discovery answer changed (ECX must be ignored)");
    case Role::kTotal64: {
      if (!(e = need(o.eax == 0 && o.edx == 0, "EAX and EDX must be 0")).empty()) return e;
      const uint64_t v = HiLo(o.ebx, o.ecx);
      if (!(e = at_least(v, "total exits")).empty()) return e;
      return Monotonic("exits", v, q.leaf);
    }
    case Role::kReason64:
      if (!exitstats::IsDefined(r)) return expect(kUndefined, "undefined reason");
      if (!exitstats::IsHandled(r, vendor_)) return expect(kZero, "defined, not handled");
      if (!(e = need(o.eax == 0 && o.edx == 0, "EAX and EDX must be 0")).empty()) return e;
      if (r == exitstats::reason::kCpuid &&
          !(e = at_least(HiLo(o.ebx, o.ecx), "CPUID exits")).empty())
        return e;
      return Monotonic("exits[" + std::to_string(r) + "]", HiLo(o.ebx, o.ecx), q.leaf);
    case Role::kRaw64:
      if (!RawTracked(r, vendor_)) return expect(kUndefined, "untracked raw code");
      if (!(e = need(o.eax == 0 && o.edx == 0, "EAX and EDX must be 0")).empty()) return e;
      if (r == RawCpuid(vendor_) && !(e = at_least(HiLo(o.ebx, o.ecx), "raw CPUID exits")).empty())
        return e;
      return Monotonic("raw[" + Hex(r) + "]", HiLo(o.ebx, o.ecx), q.leaf);
    case Role::kTotalExits32:
    case Role::kTotalCycles: {
      const bool exits_leaf = RoleOf(q.leaf, profile_) == Role::kTotalExits32;
      if (IsSjsuLayout(profile_)) {
        // Both sjsu total leaves: EAX exits (low 32), EBX:ECX cycles, EDX 0.
        if (!(e = need(o.edx == 0, "EDX must be 0")).empty()) return e;
        if (exact32) {
          if (!(e = at_least(o.eax, "total exits (32)")).empty()) return e;
          if (!(e = Monotonic("exits", o.eax, q.leaf)).empty()) return e;
        }
        return Monotonic("cycles", HiLo(o.ebx, o.ecx), q.leaf);
      }
      if (exits_leaf) {  // f22: EAX only
        if (!(e = need(o.ebx == 0 && o.ecx == 0 && o.edx == 0, "EBX, ECX, EDX must be 0")).empty())
          return e;
        if (exact32) {
          if (!(e = at_least(o.eax, "total exits (32)")).empty()) return e;
          return Monotonic("exits", o.eax, q.leaf);
        }
        return "";
      }
      if (!(e = need(o.eax == 0 && o.edx == 0, "EAX and EDX must be 0")).empty()) return e;
      return Monotonic("cycles", HiLo(o.ebx, o.ecx), q.leaf);
    }
    case Role::kReasonExits32:
      if (!exitstats::IsDefined(r)) return expect(kUndefined, "undefined reason");
      if (!exitstats::IsHandled(r, vendor_)) return expect(kZero, "defined, not handled");
      if (!(e = need(o.ebx == 0 && o.ecx == 0 && o.edx == 0, "EBX, ECX, EDX must be 0")).empty())
        return e;
      if (exact32) {
        if (r == exitstats::reason::kCpuid && !(e = at_least(o.eax, "CPUID exits (32)")).empty())
          return e;
        return Monotonic("exits[" + std::to_string(r) + "]", o.eax, q.leaf);
      }
      return "";
    case Role::kReasonCycles:
      if (!exitstats::IsDefined(r)) return expect(kUndefined, "undefined reason");
      if (!exitstats::IsHandled(r, vendor_)) return expect(kZero, "defined, not handled");
      if (!(e = need(o.eax == 0 && o.edx == 0, "EAX and EDX must be 0")).empty()) return e;
      return Monotonic("cycles[" + std::to_string(r) + "]", HiLo(o.ebx, o.ecx), q.leaf);
  }
  return "unknown leaf";
}

std::string Checker::Check(const Query& q, const Regs& out, uint64_t own_cpuids) {
  ++checked_[q.leaf];
  std::string e = Shape(q, out, own_cpuids);
  if (e.empty()) return e;
  ++failures_;
  char b[160];
  std::snprintf(b, sizeof b, "CPUID(0x%08X, ECX=0x%08X) [EBX,EDX in %08x,%08x] -> %s: ", q.leaf,
                q.ecx, q.ebx_in, q.edx_in, Fmt(out).c_str());
  e = b + e;
  if (first_.size() < 20) first_.push_back(e);
  return e;
}

}  // namespace hostile
