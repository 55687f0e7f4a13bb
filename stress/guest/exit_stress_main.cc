// exit_stress: the guest stress binary. Each check of checks.h becomes one
// GoogleTest test (so --gtest_filter, --gtest_output and JUnit XML work); the
// summary table, the JSON summary and the exit status come from the results.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "checks.h"
#include "options.h"
#include "real_env.h"
#include "report.h"
#include "show.h"

namespace exitstats::guest {
namespace {

std::vector<Result>* g_results = nullptr;

// A test whose body runs one check and reports it to GoogleTest and to the
// summary.
class CheckTest : public ::testing::Test {
 public:
  explicit CheckTest(std::function<Result()> run) : run_(std::move(run)) {}
  void TestBody() override {
    Result r = run_();
    g_results->push_back(r);
    std::string text = r.Text();
    switch (r.status) {
      case Result::Status::kSkip:
      case Result::Status::kNotApplicable: {
        // A reason shared by many checks (an unpatched host skips all of
        // them) is said in full once; later checks point back to it.
        static std::map<std::string, std::string> said;  // reason -> first test
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string me = std::string(info->test_suite_name()) + "." + info->name();
        auto [it, first] = said.emplace(text, me);
        if (!first) GTEST_SKIP() << "same reason as " << it->second << " (above)";
        GTEST_SKIP() << text;
      }
      case Result::Status::kFail:
        ADD_FAILURE() << text;
        break;
      case Result::Status::kPass:
        std::cout << text;
        break;
    }
  }

 private:
  std::function<Result()> run_;
};

void Register(const char* suite, const std::string& name, std::function<Result()> run) {
  ::testing::RegisterTest(suite, name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [run]() -> ::testing::Test* { return new CheckTest(run); });
}

// --dry-run: every selected trigger on every selected vCPU, no statistics
// read. Proves the triggers work in a given guest (root, msr driver, ioperm,
// x2APIC) before a patched host is at hand.
int DryRun(RealEnv& env, const Options& opt, const Config& cfg) {
  int status = kExitPass;
  std::printf("exit_stress --dry-run: %zu vCPUs, triggers only (no statistics read)\n",
              cfg.cpus.size());
  for (GuestExit e : opt.exits) {
    const ExitType& row = Row(e);
    if (std::string why = env.Unavailable(e); !why.empty()) {
      std::printf("  %-15s unavailable: %s\n", row.name.data(), why.c_str());
      if (status == kExitPass) status = kExitPartial;
      continue;
    }
    uint64_t n = std::max<uint64_t>(1, cfg.iterations / row.user.ops_divisor);
    std::vector<std::string> errors(cfg.cpus.size());
    auto t0 = std::chrono::steady_clock::now();
    env.BeginPhase(e, cfg.cpus);
    std::vector<uint64_t> ops = RunOnCpus(env, cfg.cpus, [&](size_t w, int cpu) {
      return env.Trigger(e, cpu, n, &errors[w]);
    });
    env.EndPhase(e);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t total = 0;
    for (size_t w = 0; w < ops.size(); ++w) {
      total += ops[w];
      if (ops[w] != n) {
        std::printf("  %-15s vCPU %d did %llu of %llu ops: %s\n", row.name.data(), cfg.cpus[w],
                    (unsigned long long)ops[w], (unsigned long long)n, errors[w].c_str());
        status = kExitFail;
      }
    }
    std::printf("  %-15s %llu ops on %zu vCPUs in %.3f s (%.0f ops/s per vCPU): %s\n",
                row.name.data(), (unsigned long long)total, cfg.cpus.size(), s,
                s > 0 ? double(total) / s / double(cfg.cpus.size()) : 0.0, row.user.how.data());
    if (auto acct = env.GuestAccounting(e, cfg.cpus); acct && !acct->source.empty())
      std::printf("  %-15s guest accounting: %s\n", "", acct->source.c_str());
  }
  std::printf("exit_stress --dry-run: exit status %d\n", status);
  return status;
}

int Main(int argc, char** argv) {
  Options opt;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::string err = ParseOptions(args, &opt); !err.empty()) {
    std::cerr << "exit_stress: " << err << "\n\n" << Usage();
    return kExitUsage;
  }
  if (opt.help) {
    std::cout << Usage();
    return kExitPass;
  }
  Config cfg;
  if (std::string err = ResolveCpus(opt.cpus, RealEnv::OnlineCpus(), &cfg.cpus); !err.empty()) {
    std::cerr << "exit_stress: " << err << "\n";
    return kExitUsage;
  }
  cfg.iterations = opt.iterations;
  cfg.torn_seconds = opt.torn_seconds;
  cfg.torn_reads = opt.torn_reads;
  cfg.random_ecx = opt.random_ecx;
  cfg.seed = opt.seed;
  cfg.rubric = *RubricByName(opt.rubric);
  cfg.assignment = opt.assignment;
  cfg.profile_forced = opt.profile_given || !opt.leaf_map.empty();
  Profile profile = *ProfileByName(opt.profile);
  if (!opt.leaf_map.empty()) {
    std::string err;
    profile = *ParseLeafMap(opt.leaf_map, &err);
  }

  std::vector<std::string> gargs_s = {argv[0]};
  gargs_s.insert(gargs_s.end(), opt.passthrough.begin(), opt.passthrough.end());
  std::vector<char*> gargs;
  for (auto& s : gargs_s) gargs.push_back(s.data());
  int gargc = static_cast<int>(gargs.size());
  ::testing::InitGoogleTest(&gargc, gargs.data());
  if (gargc > 1) {
    std::cerr << "exit_stress: unknown flag " << gargs[1] << "\n\n" << Usage();
    return kExitUsage;
  }

  RealEnv env;
  if (opt.dry_run) return DryRun(env, opt, cfg);
  Checker checker(env, profile, cfg);
  if (opt.show) {
    ShowConfig sc;
    sc.watch_seconds = opt.watch;
    sc.samples = opt.samples;
    return Show(
        checker, sc,
        [](double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); },
        [](const std::string& line) {
          std::printf("%s\n", line.c_str());
          std::fflush(stdout);
        });
  }
  std::vector<Result> results;
  g_results = &results;

  RunInfo info;
  info.profile = std::string(checker.client().profile().name);
  info.cpus = cfg.cpus;
  info.iterations = cfg.iterations;
  info.host = checker.HostWords();
  info.rubric = opt.rubric;
  info.assignment = checker.assignment();
  info.leaves = checker.found().Summary();
  if (checker.patched())
    info.vendor = checker.vendor() == Vendor::kSvm ? "SVM" : "VMX";
  else
    info.absence = checker.absence();

  // What was found and why, once per run.
  std::printf("exit_stress: %s; rubric %s; %zu vCPUs, %llu iterations per vCPU per exit type\n",
              info.host.c_str(), opt.rubric.c_str(), cfg.cpus.size(),
              (unsigned long long)cfg.iterations);
  std::printf("exit_stress: leaves: %s\n", info.leaves.c_str());
  for (const auto& m : checker.found().misplaced) std::printf("exit_stress: leaf: %s\n", m.c_str());
  if (!checker.patched()) std::printf("exit_stress: %s\n", info.absence.c_str());
  std::fflush(stdout);

  // Registration order is run order: conformance first, then the load
  // phases, then the checks that read what the load left behind.
  Checker* c = &checker;
  Register("Conformance", "Discovery", [c] { return c->DiscoveryLeaf(); });
  Register("Conformance", "LeafRegisters", [c] { return c->LeafRegisters(); });
  Register("Conformance", "UndefinedVersusNotHandled", [c] { return c->UndefinedVersusNotHandled(); });
  Register("Conformance", "OrdinaryLeaves", [c] { return c->OrdinaryLeaves(); });
  for (GuestExit e : opt.exits)
    Register("LowerBound", std::string(Row(e).name), [c, e] { return c->LowerBound(e); });
  if (std::find(opt.exits.begin(), opt.exits.end(), GuestExit::kCpuid) != opt.exits.end())
    Register("Exact", "cpuid", [c] { return c->ExactCpuid(); });
  Register("Totals", "SumOfReasons", [c] { return c->TotalsSum(); });
  Register("Totals", "Cycles", [c] { return c->Cycles(); });
  Register("Concurrency", "TornReads", [c] { return c->TornReads(); });

  int gtest_rc = RUN_ALL_TESTS();
  const auto* unit = ::testing::UnitTest::GetInstance();
  if (::testing::GTEST_FLAG(list_tests)) return kExitPass;
  if (unit->test_to_run_count() == 0) {
    std::cerr << "exit_stress: no check selected (--gtest_filter matches nothing)\n";
    return kExitUsage;
  }
  int status = ExitStatus(results, checker.patched(),
                          gtest_rc != 0 && unit->failed_test_count() > 0);

  std::printf("\nexit_stress summary (%s, rubric %s, %zu vCPUs, vendor %s):\n%s", info.host.c_str(),
              opt.rubric.c_str(),
              cfg.cpus.size(), info.vendor.empty() ? "none" : info.vendor.c_str(),
              SummaryTable(results).c_str());
  const char* word = status == kExitPass      ? "PASS: every selected check ran and passed"
                     : status == kExitFail    ? "FAIL: see the failures above"
                     : status == kExitNoHost  ? "SKIPPED: unpatched host (no leaf behaves as a counter)"
                     : status == kExitPartial ? "PARTIAL: nothing failed, but some checks were skipped"
                                              : "?";
  std::printf("exit_stress: %s (exit status %d)\n", word, status);
  if (!opt.json.empty()) {
    std::ofstream f(opt.json);
    f << JsonSummary(results, info, status);
    if (!f) std::fprintf(stderr, "exit_stress: could not write %s\n", opt.json.c_str());
  }
  return status;
}

}  // namespace
}  // namespace exitstats::guest

int main(int argc, char** argv) { return exitstats::guest::Main(argc, argv); }
