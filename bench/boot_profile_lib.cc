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
  if (!disc) {
    return j + "  \"patched\": false,\n  \"reason\": " + Quote(client.DescribeAbsence()) + "\n}\n";
  }
  const uint64_t total_start = client.TotalExits64();
  const uint32_t total32 = client.TotalExits32();
  const uint64_t total_cycles = client.TotalCycles();
  std::string reasons;
  uint64_t sum = 0;
  const uint32_t highest = disc->highest_reason;
  for (uint32_t r = 0; r <= highest; ++r) {
    auto info = exitstats::LookupReason(r);
    auto e = client.ReasonExits64(r);
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
  const uint64_t total_end = client.TotalExits64();
  j += "  \"patched\": true,\n";
  j += "  \"abi_version\": " + U64(disc->version) + ",\n";
  j += std::string("  \"vendor\": \"") +
       (disc->vendor() == exitstats::Vendor::kSvm ? "svm" : "vmx") + "\",\n";
  j += std::string("  \"host_wide\": ") + (disc->host_wide() ? "true" : "false") + ",\n";
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
