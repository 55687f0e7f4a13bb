// The exit profile of a guest: every per-reason count and the totals, read
// through the exit-statistics leaves, as one JSON document.
#pragma once

#include <string>

#include "exitstats/cpuid.h"

namespace bench {

struct ProfileContext {
  std::string stage;     // e.g. "first_user_instruction", "after_stress"
  double uptime_s = -1;  // guest uptime at the read, if known
  int online_cpus = 0;
};

// JSON with "patched": false and the reason when the host has no leaves.
// Otherwise totals (64-bit and course 32-bit), total cycles, and reasons
// 0..highest with name, defined/counted, exits (64-bit) and cycles. The
// queries are CPUIDs, i.e. exits themselves: total_exits is read first and
// total_exits_end last, so query_exits says how many the read added.
std::string BootProfileJson(const exitstats::Client& client, const ProfileContext& ctx);

}  // namespace bench
