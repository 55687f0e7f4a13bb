#include "report.h"

#include <cstdio>
#include <map>

#include "options.h"

namespace exitstats::guest {
namespace {

const char* StatusName(Result::Status s) {
  switch (s) {
    case Result::Status::kPass: return "PASS";
    case Result::Status::kFail: return "FAIL";
    case Result::Status::kSkip: return "SKIP";
    case Result::Status::kNotApplicable: return "N/A";
  }
  return "?";
}

std::string Join(const std::vector<std::string>& v) {
  std::string o;
  for (const auto& x : v) o += (o.empty() ? "" : ", ") + x;
  return o;
}

}  // namespace

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += c;
        }
    }
  }
  return o;
}

std::string SummaryTable(const std::vector<Result>& results) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-26s %-15s %5s %14s %14s %10s  %s\n", "check", "exit", "vCPUs",
                "expected", "observed", "shortfall", "status");
  out += line;
  for (const Result& r : results) {
    std::string exp = "-", obs = "-", sf = "-";
    if (r.has_counts) {
      exp = std::to_string(r.expected);
      obs = std::to_string(r.observed);
      sf = r.observed < r.expected ? std::to_string(r.expected - r.observed) : "0";
    }
    std::snprintf(line, sizeof line, "%-26s %-15s %5d %14s %14s %10s  %s\n", r.check.c_str(),
                  r.exit.empty() ? "-" : r.exit.c_str(), r.vcpus, exp.c_str(), obs.c_str(),
                  sf.c_str(), StatusName(r.status));
    out += line;
  }
  return out;
}

std::string JsonSummary(const std::vector<Result>& results, const RunInfo& info, int exit_status) {
  std::string j = "{\n";
  j += "  \"profile\": \"" + JsonEscape(info.profile) + "\",\n";
  j += "  \"vendor\": \"" + JsonEscape(info.vendor) + "\",\n";
  j += "  \"vcpus\": " + std::to_string(info.cpus.size()) + ",\n  \"cpus\": [";
  for (size_t i = 0; i < info.cpus.size(); ++i) j += (i ? ", " : "") + std::to_string(info.cpus[i]);
  j += "],\n  \"iterations\": " + std::to_string(info.iterations) + ",\n";
  j += "  \"patched_host\": " + std::string(info.absence.empty() ? "true" : "false") + ",\n";
  j += "  \"host\": \"" + JsonEscape(info.host) + "\",\n";
  j += "  \"rubric\": \"" + JsonEscape(info.rubric) + "\",\n";
  j += "  \"assignment\": " + std::to_string(info.assignment) + ",\n";
  j += "  \"leaves\": \"" + JsonEscape(info.leaves) + "\",\n";
  if (!info.absence.empty()) j += "  \"absence\": \"" + JsonEscape(info.absence) + "\",\n";
  j += "  \"exit_status\": " + std::to_string(exit_status) + ",\n  \"checks\": [\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    std::string msg;
    for (const auto& p : r.problems) msg += (msg.empty() ? "" : "\n") + p;
    std::string notes;
    for (const auto& n : r.notes) notes += (notes.empty() ? "" : "\n") + n;
    j += "    {\"check\": \"" + JsonEscape(r.check) + "\", \"exit\": \"" + JsonEscape(r.exit) +
         "\", \"vcpus\": " + std::to_string(r.vcpus) + ", \"status\": \"" +
         StatusName(r.status) + "\", \"pass\": " + (r.pass() ? "true" : "false");
    if (r.has_counts)
      j += ", \"expected\": " + std::to_string(r.expected) +
           ", \"observed\": " + std::to_string(r.observed);
    j += ", \"rubric\": \"" + JsonEscape(r.rubric) + "\", \"classes\": [";
    for (size_t k = 0; k < r.classes.size(); ++k)
      j += (k ? ", \"" : "\"") + JsonEscape(r.classes[k]) + "\"";
    j += "]";
    j += ", \"message\": \"" + JsonEscape(msg) + "\", \"notes\": \"" + JsonEscape(notes) + "\"}";
    j += i + 1 < results.size() ? ",\n" : "\n";
  }
  j += "  ],\n  \"exits\": {";
  bool first = true;
  for (const Result& r : results) {
    if (r.check != "lower_bound") continue;
    j += std::string(first ? "\n" : ",\n") + "    \"" + JsonEscape(r.exit) + "\": {\"vcpus\": " +
         std::to_string(r.vcpus) + ", \"expected\": " + std::to_string(r.expected) +
         ", \"observed\": " + std::to_string(r.observed) + ", \"pass\": " +
         (r.pass() ? "true" : "false") + ", \"status\": \"" + StatusName(r.status) +
         "\", \"classes\": \"" + JsonEscape(Join(r.classes)) + "\"}";
    first = false;
  }
  j += first ? "}\n}\n" : "\n  }\n}\n";
  return j;
}

int ExitStatus(const std::vector<Result>& results, bool host_present, bool gtest_failed) {
  bool failed = gtest_failed, skipped = false;
  for (const Result& r : results) {
    failed |= r.status == Result::Status::kFail;
    skipped |= r.status == Result::Status::kSkip;  // kNotApplicable is neither
  }
  if (failed) return kExitFail;
  if (!host_present) return kExitNoHost;
  if (skipped || results.empty()) return kExitPartial;
  return kExitPass;
}

}  // namespace exitstats::guest
