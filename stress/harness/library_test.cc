// The harness library itself: ownership, error messages and guest-side
// failure reporting. Each test names the harness bug it catches.
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <cerrno>
#include <string>

#include "harness/kvm.h"
#include "harness/payload.h"
#include "harness_env.h"

namespace harness_test {
namespace {

using testing::HasSubstr;

int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

// Catches: a moved-from owner that still closes (double close), or an owner
// that never closes (fd leak).
TEST(Library, MoveTransfersOwnershipAndDestructionCloses) {
  HARNESS_REQUIRE_KVM();
  std::string why;
  const harness::Kvm* kvm = KvmOrWhy(&why);
  int before = OpenFds();
  {
    harness::Vm a = kvm->CreateVm();
    int fd = a.fd();
    harness::Vm b = std::move(a);
    EXPECT_EQ(b.fd(), fd);
    EXPECT_EQ(a.fd(), -1) << "moved-from Vm still owns its fd";
    harness::Vcpu v = b.CreateVcpu(0);
    harness::Vcpu w = std::move(v);
    EXPECT_EQ(v.fd(), -1) << "moved-from Vcpu still owns its fd";
    EXPECT_EQ(OpenFds(), before + 2);
  }
  EXPECT_EQ(OpenFds(), before) << "Vm/Vcpu destruction leaked file descriptors";
}

// Catches: a checked wrapper that swallows the error or loses the ioctl name.
TEST(Library, CheckedIoctlNamesTheIoctlRawReturnsTheResult) {
  HARNESS_REQUIRE_KVM();
  std::string why;
  harness::Vm vm = KvmOrWhy(&why)->CreateVm();
  kvm_userspace_memory_region bad{};
  bad.slot = 0;
  bad.guest_phys_addr = 0x1001;  // not page aligned: EINVAL
  bad.memory_size = 4096;
  EXPECT_EQ(harness::RawIoctl(vm.fd(), KVM_SET_USER_MEMORY_REGION, &bad), -1);
  EXPECT_EQ(errno, EINVAL);
  try {
    HARNESS_IOCTL(vm.fd(), KVM_SET_USER_MEMORY_REGION, &bad);
    ADD_FAILURE() << "checked ioctl did not throw";
  } catch (const harness::KvmError& e) {
    EXPECT_THAT(e.what(), HasSubstr("KVM_SET_USER_MEMORY_REGION"));
    EXPECT_EQ(e.error(), EINVAL);
  }
}

// Catches: a broken binary-stats parser (wrong descriptor stride or offsets).
TEST(Library, StatsReaderFindsVcpuAndVmStatsByName) {
  HARNESS_REQUIRE_KVM();
  std::string why;
  harness::Vm vm = KvmOrWhy(&why)->CreateVm();
  harness::Vcpu v = vm.CreateVcpu(0);
  harness::StatsReader s = v.Stats();
  EXPECT_THAT(s.id(), HasSubstr("vcpu"));
  for (const char* name : {"exits", "halt_exits", "io_exits", "hypercalls"})
    EXPECT_TRUE(s.TryGet(name).has_value()) << "vCPU stat " << name;
  EXPECT_EQ(s.Get("exits"), 0u) << "a vCPU that never ran has exits";
  auto all = s.ReadAll();
  EXPECT_EQ(all.size(), s.Names().size());
  EXPECT_EQ(all.at("exits"), 0u);
  try {
    s.Get("no_such_stat");
    ADD_FAILURE() << "unknown stat did not throw";
  } catch (const std::out_of_range& e) {
    EXPECT_THAT(e.what(), HasSubstr("no_such_stat"));
  }
  harness::StatsReader vs = vm.Stats();
  EXPECT_THAT(vs.id(), HasSubstr("kvm-"));
  EXPECT_TRUE(vs.TryGet("remote_tlb_flush").has_value());
}

// Runs a self-test payload expected to fail; returns the error message.
std::string FailingRun(harness_payload payload) {
  std::string why;
  harness::PayloadSpec spec = harness::PayloadFor(exitstats::ExitKind::kCpuid);
  spec.payload = payload;
  harness::RunOptions o;
  o.timeout = std::chrono::seconds(30);
  try {
    harness::RunPayload(*KvmOrWhy(&why), spec, 2, 10, o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// Catches: IDT/stub/ucall plumbing that loses the vector, RIP or error code.
TEST(Library, GuestExceptionReportsVectorRipAndErrorCode) {
  HARNESS_REQUIRE_KVM();
  std::string msg = FailingRun(HARNESS_P_SELF_UD2);
  EXPECT_THAT(msg, HasSubstr("guest exception vector 6 (#UD) at RIP=0x10"));
  EXPECT_THAT(msg, HasSubstr("error code=0x0"));
  EXPECT_THAT(msg, HasSubstr("vCPU "));
}

// Catches: an assert message without expression, file, line or values.
TEST(Library, GuestAssertCarriesExpressionFileAndLine) {
  HARNESS_REQUIRE_KVM();
  std::string msg = FailingRun(HARNESS_P_SELF_ASSERT);
  EXPECT_THAT(msg, HasSubstr("guest assertion failed: n == n + 1"));
  EXPECT_THAT(msg, HasSubstr("payloads.c:"));
  EXPECT_THAT(msg, HasSubstr("values 0xa, 0xb"));
}

// Catches: an exit loop that ignores or misnames an exit it did not expect.
TEST(Library, UnexpectedExitNamesReasonAndRegisters) {
  HARNESS_REQUIRE_KVM();
  std::string msg = FailingRun(HARNESS_P_SELF_MMIO);
  EXPECT_THAT(msg, HasSubstr("unexpected exit KVM_EXIT_MMIO (6) addr=0xc0000000 read"));
  EXPECT_THAT(msg, HasSubstr("RIP=0x"));
  EXPECT_THAT(msg, HasSubstr("CR3=0x1000"));
}

}  // namespace
}  // namespace harness_test
