// hostile_test's main: GoogleTest plus what a stage needs to end well in L1.
//  - Each test is a kernel-log stage: "kvm-exit-stats: stage hostile.<Test>
//    begin/end" goes to /dev/kmsg, so ci/sanitizers/scan-klog attributes any
//    report to the test that was running.
//  - SIGTERM/SIGINT/SIGHUP/SIGALRM (timeout(1), CI cancelling, a hung stage)
//    end the run with a message naming the signal and the running test, and
//    exit status 128+signal; the figures file was already written after every
//    change, so what was measured is kept.
//  - --results=DIR (or HOSTILE_RESULTS): where hostile.md goes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host_env.h"

namespace {

char g_test[256] = "(between tests)";
std::chrono::steady_clock::time_point g_start;

void OnFatalSignal(int sig) {
  // Async-signal-safe: preformatted pieces and write(2) only.
  char buf[512];
  const char* name = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT"
                   : sig == SIGHUP  ? "SIGHUP"  : sig == SIGALRM ? "SIGALRM" : "signal";
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::steady_clock::now() - g_start).count();
  int n = std::snprintf(buf, sizeof buf,
                        "\nhostile_test: killed by %s (signal %d) after %llds while running %s; "
                        "exit status %d; figures so far are in the results folder\n",
                        name, sig, static_cast<long long>(secs), g_test, 128 + sig);
  if (n > 0) (void)!write(2, buf, static_cast<size_t>(n));
  _exit(128 + sig);
}

class StageMarks : public testing::EmptyTestEventListener {
  void OnTestStart(const testing::TestInfo& t) override {
    std::snprintf(g_test, sizeof g_test, "hostile.%s.%s", t.test_suite_name(), t.name());
    hostile::MarkStage(g_test, true);
  }
  void OnTestEnd(const testing::TestInfo&) override {
    hostile::MarkStage(g_test, false);
    std::snprintf(g_test, sizeof g_test, "(between tests)");
  }
};

}  // namespace

int main(int argc, char** argv) {
  g_start = std::chrono::steady_clock::now();
  testing::InitGoogleTest(&argc, argv);
  std::string results = std::getenv("HOSTILE_RESULTS") ? std::getenv("HOSTILE_RESULTS") : "";
  for (int i = 1; i < argc; i++)
    if (std::strncmp(argv[i], "--results=", 10) == 0) results = argv[i] + 10;
  if (!results.empty()) hostile::Figures::Get().SetDir(results);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGALRM}) {
    struct sigaction sa {};
    sa.sa_handler = OnFatalSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
  testing::UnitTest::GetInstance()->listeners().Append(new StageMarks);
  return RUN_ALL_TESTS();
}
