// Bad conditions: a guest that never finishes, a binary killed
// mid-run. Each must end with a clear message, a kept log and a non-zero
// status within its timeout. These run anywhere with /dev/kvm (no patched
// host needed). The third condition, an L1 that panics, is the runner's to
// observe from outside: HostileChild.DISABLED_PanicL1 is the trigger it uses
// (see stress/hostile/README.md).
//
// Victims besides hostile_test itself: HOSTILE_VICTIMS=path[:path...], else
// harness_test found next to this binary's build tree or in /opt/tests.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "exitstats/catalogue.h"
#include "harness/payload.h"
#include "stage.h"

namespace hostile {
namespace {

using namespace std::chrono_literals;

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string SelfExe() {
  char b[4096];
  ssize_t n = readlink("/proc/self/exe", b, sizeof b - 1);
  return n > 0 ? std::string(b, static_cast<size_t>(n)) : std::string();
}

std::string LogDir() {
  std::string d = Figures::Get().dir() + "/bad-conditions";
  mkdir(Figures::Get().dir().c_str(), 0755);
  mkdir(d.c_str(), 0755);
  return d;
}

struct Child {
  pid_t pid = -1;
  std::string log;
};

// Starts `argv` with stdout+stderr into `log` and `env` added.
Child Spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::vector<std::string>& env = {}) {
  Child c{-1, log};
  c.pid = fork();
  if (c.pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> a;
    for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  return c;
}

// waitpid with a limit; nullopt if it is still running (then it is killed).
std::optional<int> WaitFor(pid_t pid, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  int status = 0;
  while (Clock::now() < end) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    std::this_thread::sleep_for(20ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return std::nullopt;
}

bool WaitForText(const std::string& log, const std::string& text, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (Slurp(log).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// ---- the child side --------------------------------------------------------

// Run only as a child of the tests below (HOSTILE_CHILD=1): announces itself,
// then sits in KVM_RUN on a guest that never exits (or sleeps without KVM),
// so the kill lands while a vCPU is in the guest.
TEST(HostileChild, DISABLED_BusyUntilKilled) {
  if (!std::getenv("HOSTILE_CHILD")) GTEST_SKIP() << "only as a child of HostileBadConditions";
  std::printf("busy: started, pid %d\n", getpid());
  std::fflush(stdout);
  if (Probe().kvm) {
    harness::Kvm kvm;
    BlobVm vm(kvm, 1, Blob::kSpin);
    EXPECT_THROW(vm.RunBatch(0, Clock::now() + 60s), GuestTimeout);
  } else {
    std::this_thread::sleep_for(60s);
  }
  ADD_FAILURE() << "busy: nobody killed me within 60 s";
}

// The runner's L1-panic drill: panics the kernel this runs on. Only with
// HOSTILE_PANIC_L1=1, as root, and only when asked by name
// (--gtest_also_run_disabled_tests --gtest_filter=HostileChild.DISABLED_PanicL1).
TEST(HostileChild, DISABLED_PanicL1) {
  if (std::string(std::getenv("HOSTILE_PANIC_L1") ? std::getenv("HOSTILE_PANIC_L1") : "") != "1")
    GTEST_SKIP() << "set HOSTILE_PANIC_L1=1 to panic this kernel on purpose";
  std::printf("hostile_test: panicking L1 on purpose (sysrq c) to drill the runner\n");
  std::fflush(stdout);
  sync();
  int fd = open("/proc/sysrq-trigger", O_WRONLY);
  ASSERT_GE(fd, 0) << "cannot open /proc/sysrq-trigger (root? CONFIG_MAGIC_SYSRQ?)";
  (void)!write(fd, "c", 1);
  close(fd);
  ADD_FAILURE() << "still alive after sysrq c";
}

// ---- the tests ---------------------------------------------------------------

TEST(HostileBadConditions, GuestThatNeverFinishesIsKickedAtItsDeadline) {
  HOSTILE_REQUIRE_KVM();
  harness::Kvm kvm;
  BlobVm vm(kvm, 1, Blob::kSpin);
  const auto limit = std::chrono::seconds(Knob("HOSTILE_HANG_LIMIT_S", 3));
  const auto t0 = Clock::now();
  std::string message;
  try {
    vm.RunBatch(0, t0 + limit);
    FAIL() << "a guest that never exits returned from RunBatch";
  } catch (const GuestTimeout& e) {
    message = e.what();
  }
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, limit);
  EXPECT_LT(took, limit + 5s) << "the kick came late";
  EXPECT_NE(message.find("did not finish"), std::string::npos) << message;
  EXPECT_NE(message.find("RIP 0x"), std::string::npos) << message;
  Figures::Get().Add("Bad conditions", "guest that never finishes (own VMM)",
                     Format("stopped after %.1f s (limit %lld s): \"%s\"",
                         std::chrono::duration<double>(took).count(),
                         static_cast<long long>(limit.count()), message.c_str()));
}

TEST(HostileBadConditions, HarnessRunPastItsTimeoutThrowsInTime) {
  HOSTILE_REQUIRE_KVM();
  std::string why;
  auto kvm = harness::Kvm::TryOpen(&why);
  ASSERT_TRUE(kvm) << why;
  harness::RunOptions opt;
  opt.timeout = std::chrono::seconds(Knob("HOSTILE_HANG_LIMIT_S", 3));
  const auto t0 = Clock::now();
  std::string message;
  try {
    // 2^40 CPUIDs: far beyond any timeout, a stand-in for a guest that hangs.
    harness::RunPayload(*kvm, harness::PayloadFor(exitstats::ExitKind::kCpuid), 2, 1ull << 40, opt);
    FAIL() << "RunPayload of 2^40 CPUIDs returned within its timeout";
  } catch (const std::exception& e) {
    message = e.what();
  }
  const auto took = Clock::now() - t0;
  EXPECT_LT(took, opt.timeout + 30s) << "RunPayload overran its timeout: " << message;
  EXPECT_FALSE(message.empty());
  Figures::Get().Add("Bad conditions", "harness RunPayload past its timeout",
                     Format("threw after %.1f s (timeout %lld s): \"%s\"",
                         std::chrono::duration<double>(took).count(),
                         static_cast<long long>(opt.timeout.count()), message.c_str()));
}

struct KillCase {
  int sig;
  const char* name;
};

class HostileKilledMidRun : public testing::TestWithParam<KillCase> {};

TEST_P(HostileKilledMidRun, EndsWithMessageLogAndNonZeroStatus) {
  const KillCase kc = GetParam();
  const std::string log = LogDir() + "/hostile_test-" + kc.name + ".log";
  Child c = Spawn({SelfExe(), "--gtest_also_run_disabled_tests",
                   "--gtest_filter=HostileChild.DISABLED_BusyUntilKilled"},
                  log, {"HOSTILE_CHILD=1", "HOSTILE_RESULTS=" + LogDir()});
  ASSERT_GT(c.pid, 0);
  if (!WaitForText(log, "busy: started", 60s)) {
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    FAIL() << "child never started; log " << log << ":\n" << Slurp(log);
  }
  std::this_thread::sleep_for(300ms);  // let it get into KVM_RUN
  const auto t0 = Clock::now();
  kill(c.pid, kc.sig);
  auto status = WaitFor(c.pid, 10s);
  ASSERT_TRUE(status) << "still running 10 s after " << kc.name << "; log " << log;
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string text = Slurp(log);
  EXPECT_NE(text.find("busy: started"), std::string::npos) << "log not kept: " << log;
  if (kc.sig == SIGKILL) {
    // Nobody can print for SIGKILL: the supervisor (this test, the runner)
    // says what happened, from the status.
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << DescribeStatus(*status);
  } else {
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 128 + kc.sig) << DescribeStatus(*status);
    EXPECT_NE(text.find(std::string("hostile_test: killed by ") + kc.name), std::string::npos)
        << "no clear message in " << log << ":\n" << text;
  }
  Figures::Get().Add("Bad conditions", std::string("hostile_test killed mid-run by ") + kc.name,
                     Format("ended %.2f s later, %s, log kept (%s)", secs,
                         DescribeStatus(*status).c_str(), log.c_str()));
}

INSTANTIATE_TEST_SUITE_P(Signals, HostileKilledMidRun,
                         testing::Values(KillCase{SIGTERM, "SIGTERM"}, KillCase{SIGINT, "SIGINT"},
                                         KillCase{SIGKILL, "SIGKILL"}),
                         [](const testing::TestParamInfo<KillCase>& i) { return i.param.name; });

std::vector<std::string> Victims() {
  std::vector<std::string> v;
  if (const char* e = std::getenv("HOSTILE_VICTIMS")) {
    std::stringstream ss(e);
    for (std::string p; std::getline(ss, p, ':');)
      if (!p.empty()) v.push_back(p);
    return v;
  }
  const std::string self = SelfExe();
  const std::string dir = self.substr(0, self.rfind('/'));
  for (const std::string& p : {dir + "/../harness/harness_test", std::string("/opt/tests/harness_test")})
    if (access(p.c_str(), X_OK) == 0) {
      v.push_back(p);
      break;
    }
  return v;
}

TEST(HostileBadConditions, OtherBinariesKilledMidRunEndNonZeroWithLog) {
  const auto victims = Victims();
  if (victims.empty())
    GTEST_SKIP() << "no victim binary: set HOSTILE_VICTIMS=path[:path] (harness_test, exit_stress)";
  int killed = 0;
  for (const std::string& v : victims) {
    const std::string base = v.substr(v.rfind('/') + 1);
    const std::string log = LogDir() + "/" + base + "-SIGTERM.log";
    Child c = Spawn({v}, log);
    ASSERT_GT(c.pid, 0);
    // Kill it once it has said something (it is running tests), or after 2 s.
    const auto t_start = Clock::now();
    while (Clock::now() - t_start < 2s && Slurp(log).size() < 200)
      std::this_thread::sleep_for(20ms);
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
      Figures::Get().Add("Bad conditions", base + " killed mid-run",
                         "finished before the kill (" + DescribeStatus(status) + "); not exercised");
      continue;
    }
    const auto t0 = Clock::now();
    kill(c.pid, SIGTERM);
    auto st = WaitFor(c.pid, 15s);
    EXPECT_TRUE(st) << base << " still running 15 s after SIGTERM (was SIGKILLed); log " << log;
    if (!st) continue;
    ++killed;
    const bool nonzero = !(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
    EXPECT_TRUE(nonzero) << base << " reported success after being killed mid-run";
    const std::string text = Slurp(log);
    EXPECT_FALSE(text.empty()) << base << ": log not kept";
    const bool says = text.find("SIGTERM") != std::string::npos ||
                      text.find("signal 15") != std::string::npos ||
                      text.find("killed") != std::string::npos ||
                      text.find("Terminated") != std::string::npos;
    Figures::Get().Add(
        "Bad conditions", base + " killed mid-run by SIGTERM",
        Format("ended %.2f s later, %s, log kept (%zu bytes), %s", 
            std::chrono::duration<double>(Clock::now() - t0).count(), DescribeStatus(*st).c_str(),
            text.size(), says ? "message names the signal" : "no message of its own (the status says it)"));
  }
  if (killed == 0) GTEST_SKIP() << "every victim finished before it could be killed";
}

}  // namespace
}  // namespace hostile
