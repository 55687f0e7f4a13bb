#include "options.h"

#include "exitstats/leaf_finder.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "exitstats/abi.h"

namespace exitstats::guest {
namespace {

bool ParseU64(const std::string& s, uint64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

}  // namespace

std::string Usage() {
  std::string exits;
  for (const auto& r : GuestExits())
    exits += "                        " + std::string(r.name) + ": " + std::string(r.user.how) +
             (r.user.needs_root ? " [root]" : "") + "\n";
  return "usage: exit_stress [flags] [--gtest_* flags]\n"
         "Stress-tests KVM exit-statistics CPUID leaves from inside a Linux guest:\n"
         "conformance of every leaf, per-exit lower bounds on all vCPUs at once, CPUID\n"
         "exactness, totals versus reasons, cycles, and torn 64-bit reads.\n"
         "\n"
         "  --profile sjsu|f22    numbering of the course leaves (--abi is the same\n"
         "                        flag); default: found by behaviour, each leaf's rise\n"
         "                        over a burst of CPUIDs (sjsu when nothing counts)\n"
         "  --leaf-map MAP        a numbering of one's own, e.g. total=0x4FFFFFFC,\n"
         "                        cycles=0x4FFFFFFD,reason=0x4FFFFFFE,reason_cycles=0x4FFFFFFF\n"
         "  --rubric course|strict  course (default): what the assignment asks, the\n"
         "                        extension leaves optional; strict: SPEC.md in full\n"
         "  --assignment 2|3      level judged: 2 totals only, 3 per reason too\n"
         "                        (default: the level the leaves show)\n"
         "  --iterations N        operations per vCPU per exit type (default 10000;\n"
         "                        hlt waits N/40 times)\n"
         "  --cpus N|LIST         the first N online CPUs, or a list like 0,2-3\n"
         "                        (default: every online CPU)\n"
         "  --exits LIST          comma-separated exit types (default: all):\n" +
         exits +
         "  --junit FILE          GoogleTest XML report (same as --gtest_output=xml:FILE)\n"
         "  --json FILE           JSON summary: per check and per exit type vcpus,\n"
         "                        expected, observed, pass\n"
         "  --torn-seconds S      longest torn-read phase (default 15; it ends early\n"
         "                        once the cycle values' low halves have wrapped)\n"
         "  --torn-reads N        also end it after N reads per vCPU (default: no cap;\n"
         "                        for emulators whose guest clock crawls while every\n"
         "                        read is an exit, e.g. nested VMX under Bochs)\n"
         "  --random-ecx N        random sub-leaves in the conformance sweep (default 4096)\n"
         "  --seed N              seed for those (default 1)\n"
         "  --show                print what the leaves answer and check nothing: the\n"
         "                        assignment's line \"CPUID(0x4FFFFFFF), exits=..., cycles\n"
         "                        spent in exit=...\", every reason with its SDM name,\n"
         "                        exits and cycles (undefined and not-handled marked),\n"
         "                        and the most frequent reasons as bars (right after\n"
         "                        boot: the boot profile); exit 0, or 77 unpatched\n"
         "  --watch S             with --show: sample the total every S seconds and say\n"
         "                        whether it rises at a stable rate (implies --show)\n"
         "  --samples N           how many --watch samples (default 10)\n"
         "  --dry-run             run only the triggers on every selected vCPU and print\n"
         "                        ops and rates (works on any host; checks nothing;\n"
         "                        exit 0, or 3 if a trigger is unavailable, 1 on error)\n"
         "  --help                this text\n"
         "GoogleTest flags (--gtest_filter=..., --gtest_list_tests, ...) pass through.\n"
         "\n"
         "Exit status: 0 every selected check ran and passed; 1 a check failed;\n"
         "2 usage error; 3 nothing failed but some checks were skipped (not root,\n"
         "no /dev/cpu/N/msr, ...); 77 no patched host (no leaf behaves as a counter),\n"
         "every check skipped. Checks a host's leaves cannot support (extension\n"
         "leaves under the course rubric, per-reason leaves at assignment 2) are\n"
         "not applicable: they neither fail nor make the run partial.\n";
}

std::string ParseOptions(const std::vector<std::string>& args, Options* o) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    if (a.rfind("--gtest_", 0) == 0) {
      o->passthrough.push_back(a);
      continue;
    }
    if (a == "--help" || a == "-h") {
      o->help = true;
      continue;
    }
    if (a == "--dry-run") {
      o->dry_run = true;
      continue;
    }
    if (a == "--show") {
      o->show = true;
      continue;
    }
    static const std::set<std::string> kValued = {"--profile", "--abi",   "--iterations",
                                                  "--cpus",    "--exits", "--junit",
                                                  "--json",    "--torn-seconds", "--torn-reads",
                                                  "--random-ecx", "--seed",
                                                  "--rubric", "--assignment", "--leaf-map",
                                                  "--watch", "--samples"};
    std::string name = a;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    } else if (kValued.count(a)) {
      if (i + 1 >= args.size()) return a + " needs a value";
      value = args[++i];
    }
    if (!kValued.count(name)) return "unknown flag " + a;
    if (name == "--profile" || name == "--abi") {
      if (!ProfileByName(value)) return "unknown profile " + value + " (sjsu or f22)";
      o->profile = value;
      o->profile_given = true;
    } else if (name == "--rubric") {
      if (value != "course" && value != "strict")
        return "--rubric wants course or strict, not " + value;
      o->rubric = value;
    } else if (name == "--assignment") {
      if (value != "2" && value != "3") return "--assignment wants 2 or 3, not " + value;
      o->assignment = value[0] - '0';
    } else if (name == "--leaf-map") {
      std::string err;
      if (!ParseLeafMap(value, &err)) return "--leaf-map: " + err;
      o->leaf_map = value;
    } else if (name == "--iterations") {
      if (!ParseU64(value, &o->iterations) || o->iterations == 0)
        return "--iterations needs a positive integer, not " + value;
    } else if (name == "--cpus") {
      if (value.empty()) return "--cpus needs N or a list";
      o->cpus = value;
    } else if (name == "--exits") {
      o->exits.clear();
      for (const std::string& e : Split(value, ',')) {
        auto id = GuestExitByName(e);
        if (!id && exitstats::LookupByName(e))
          return "exit type " + e + " is not one exit_stress drives from user space (" +
                 (exitstats::LookupByName(e)->user.op == exitstats::UserOp::kNone
                      ? "ring 0 only: the harness runs it"
                      : "the guest benchmark times it") +
                 "; see --help)";
        if (!id) return "unknown exit type " + e + " (see --help)";
        if (std::find(o->exits.begin(), o->exits.end(), *id) == o->exits.end())
          o->exits.push_back(*id);
      }
    } else if (name == "--junit") {
      o->junit = value;
    } else if (name == "--json") {
      o->json = value;
    } else if (name == "--torn-seconds") {
      char* end = nullptr;
      o->torn_seconds = std::strtod(value.c_str(), &end);
      if (value.empty() || *end || o->torn_seconds <= 0)
        return "--torn-seconds needs a positive number, not " + value;
    } else if (name == "--torn-reads") {
      if (!ParseU64(value, &o->torn_reads) || o->torn_reads == 0)
        return "--torn-reads needs a positive count, not " + value;
    } else if (name == "--random-ecx") {
      uint64_t v;
      if (!ParseU64(value, &v) || v > 1'000'000) return "--random-ecx needs 0..1000000";
      o->random_ecx = static_cast<uint32_t>(v);
    } else if (name == "--seed") {
      if (!ParseU64(value, &o->seed)) return "--seed needs an integer";
    } else if (name == "--watch") {
      char* end = nullptr;
      o->watch = std::strtod(value.c_str(), &end);
      if (value.empty() || *end || !(o->watch > 0) || o->watch > 3600)
        return "--watch needs seconds between samples (0 < S <= 3600), not " + value;
      o->show = true;
    } else if (name == "--samples") {
      uint64_t v;
      if (!ParseU64(value, &v) || v == 0 || v > 100000) return "--samples needs 1..100000";
      o->samples = static_cast<uint32_t>(v);
    }
  }
  if (o->exits.empty())
    for (const auto& r : GuestExits()) o->exits.push_back(r.kind);
  if (!o->junit.empty()) o->passthrough.push_back("--gtest_output=xml:" + o->junit);
  return "";
}

std::string ResolveCpus(const std::string& spec, const std::vector<int>& online,
                        std::vector<int>* out) {
  out->clear();
  if (spec.empty()) {
    *out = online;
    return online.empty() ? "no online CPUs" : "";
  }
  uint64_t n;
  if (spec.find_first_of(",-") == std::string::npos && ParseU64(spec, &n)) {
    if (n == 0 || n > online.size())
      return "--cpus " + spec + ": " + std::to_string(online.size()) + " CPUs are online";
    out->assign(online.begin(), online.begin() + static_cast<long>(n));
    return "";
  }
  std::set<int> chosen;
  for (const std::string& part : Split(spec, ',')) {
    auto dash = part.find('-');
    uint64_t lo, hi;
    if (dash == std::string::npos) {
      if (!ParseU64(part, &lo)) return "--cpus: bad element " + part;
      hi = lo;
    } else if (!ParseU64(part.substr(0, dash), &lo) || !ParseU64(part.substr(dash + 1), &hi) ||
               hi < lo) {
      return "--cpus: bad range " + part;
    }
    for (uint64_t c = lo; c <= hi; ++c) {
      if (std::find(online.begin(), online.end(), static_cast<int>(c)) == online.end())
        return "--cpus: CPU " + std::to_string(c) + " is not online";
      chosen.insert(static_cast<int>(c));
    }
  }
  out->assign(chosen.begin(), chosen.end());
  return "";
}

}  // namespace exitstats::guest
