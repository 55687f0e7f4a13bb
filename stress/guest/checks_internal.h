// Helpers shared by the check suites (checks.cc, conformance_checks.cc,
// load_checks.cc, concurrency_checks.cc, parallel_runs.cc): failure-line
// formatting and the clock.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "checks.h"

namespace exitstats::guest {

inline std::string RegsText(const Regs& r) {
  return Fmt("eax=%08x ebx=%08x ecx=%08x edx=%08x", r.eax, r.ebx, r.ecx, r.edx);
}

inline std::string VendorName(Vendor v) { return v == Vendor::kSvm ? "SVM" : "VMX"; }

// At most this many problem lines per check, then a count of the rest.
constexpr size_t kMaxLines = 24;

inline void AddLimited(Result& r, size_t& n, std::string line, std::string_view klass = {}) {
  if (++n <= kMaxLines) r.Fail(std::move(line), klass);
}
inline void CloseLimited(Result& r, size_t n) {
  if (n > kMaxLines) r.Fail(Fmt("... and %zu more", n - kMaxLines));
}

using Clock = std::chrono::steady_clock;
inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace exitstats::guest
