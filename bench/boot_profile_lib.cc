#include <cinttypes>
#include <cstdio>
#include <string>

#include "boot_profile.h"
#include "exitstats/reasons.h"

namespace bench {
namespace {

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string U64(uint64_t v) { return std::to_string(v); }

// The course's total-exits leaf counts if its EAX rises by at least the
// CPUIDs issued between two reads (and not absurdly more): an unpatched KVM
// answers a constant (zeros, or the highest basic leaf's registers).
bool CourseLeavesCount(const exitstats::Client& client) {
  constexpr uint32_t kProbes = 100;
  const uint32_t before = client.TotalExits32();
  for (uint32_t i = 0; i < kProbes; ++i) client.Raw(0, 0);
  const uint32_t rose = client.TotalExits32() - before;  // wraps safely
  return rose >= kProbes && rose < 1000 * kProbes;
}

}  // namespace

std::string BootProfileJson(const exitstats::Client& client, const ProfileContext& ctx) {
  std::string j = "{\n  \"tool\": \"boot_profile\",\n  \"stage\": " + Quote(ctx.stage) + ",\n";
  if (ctx.uptime_s >= 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", ctx.uptime_s);
    j += "  \"uptime_s\": " + std::string(buf) + ",\n";
  }
  j += "  \"online_cpus\": " + std::to_string(ctx.online_cpus) + ",\n";
  j += "  \"profile\": " + Quote(client.profile().name) + ",\n";
  auto disc = client.Discover();
  // A course-only patch (what students submit) has no discovery leaf: its
  // counts come from the course leaves when they behave as counters.
  const bool course = !disc && CourseLeavesCount(client);
  if (!disc && !course) {
    return j + "  \"patched\": false,\n  \"reason\": " + Quote(client.DescribeAbsence()) + "\n}\n";
  }
  const uint64_t total_start = course ? client.TotalExits32() : client.TotalExits64();
  const uint32_t total32 = client.TotalExits32();
  const uint64_t total_cycles = client.TotalCycles();
  std::string reasons;
  uint64_t sum = 0;
  const uint32_t highest = course ? exitstats::kHighestDefinedReason : disc->highest_reason;
  for (uint32_t r = 0; r <= highest; ++r) {
    auto info = exitstats::LookupReason(r);
    auto e = course ? client.ReasonExits32(r) : client.ReasonExits64(r);
    auto c = client.ReasonCycles(r);
    const bool counted = e.kind == exitstats::ReasonAnswer::Kind::kCounted;
    const char* status = counted                                               ? "counted"
                         : e.kind == exitstats::ReasonAnswer::Kind::kUndefined ? "undefined"
                                                                               : "malformed";
    if (counted) sum += e.value;
    reasons += std::string(reasons.empty() ? "" : ",\n") + "    {\"reason\": " + U64(r) +
               ", \"name\": " + Quote(info ? info->name : "") + ", \"status\": \"" + status +
               "\", \"exits\": " + U64(counted ? e.value : 0) + ", \"cycles\": " +
               U64(c.kind == exitstats::ReasonAnswer::Kind::kCounted ? c.value : 0) + "}";
  }
  const uint64_t total_end = course ? client.TotalExits32() : client.TotalExits64();
  j += "  \"patched\": true,\n";
  if (course) {
    // 32-bit counts (the course leaves' EAX); vendor and scope unknown.
    j += "  \"leaves\": \"course\",\n";
  } else {
    j += "  \"leaves\": \"full\",\n";
    j += "  \"abi_version\": " + U64(disc->version) + ",\n";
    j += std::string("  \"vendor\": \"") +
         (disc->vendor() == exitstats::Vendor::kSvm ? "svm" : "vmx") + "\",\n";
    j += std::string("  \"host_wide\": ") + (disc->host_wide() ? "true" : "false") + ",\n";
  }
  j += "  \"highest_reason\": " + U64(highest) + ",\n";
  j += "  \"total_exits\": " + U64(total_start) + ",\n";
  j += "  \"total_exits32\": " + U64(total32) + ",\n";
  j += "  \"total_cycles\": " + U64(total_cycles) + ",\n";
  j += "  \"total_exits_end\": " + U64(total_end) + ",\n";
  j += "  \"query_exits\": " + U64(total_end - total_start) + ",\n";
  j += "  \"sum_over_reasons\": " + U64(sum) + ",\n";
  j += "  \"reasons\": [\n" + reasons + "\n  ]\n}\n";
  return j;
}

}  // namespace bench
