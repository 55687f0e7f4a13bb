// Shared pieces of the L1 stages: skipping with a reason, and holding a stage
// to "zero kernel reports" from its own slice of the kernel log.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "blob_vm.h"
#include "host_env.h"

namespace hostile {

// Skips the calling test unless a guest on /dev/kvm sees the patched leaves.
#define HOSTILE_REQUIRE_PATCHED()                                            \
  do {                                                                       \
    const ::hostile::HostProbe& hp_ = ::hostile::Probe();                    \
    if (!hp_.kvm) GTEST_SKIP() << "no usable /dev/kvm: " << hp_.why_not_kvm; \
    if (!hp_.patched) GTEST_SKIP() << hp_.why_not_patched;                   \
  } while (0)

#define HOSTILE_REQUIRE_KVM()                                                 \
  do {                                                                        \
    const ::hostile::HostProbe& hp_ = ::hostile::Probe();                     \
    if (!hp_.kvm) GTEST_SKIP() << "no usable /dev/kvm: " << hp_.why_not_kvm;  \
  } while (0)

// Collects the kernel-log reports since `watch` was made, records them under
// `section` and fails the test on any KASAN/UBSAN/LOCKDEP/WARN/BUG/LEAK, and
// on KCSAN reports that name the patch's code. KCSAN reports elsewhere in the
// kernel are listed (figures and test output), not hidden, and do not fail.
void ExpectNoKernelReports(KmsgWatch& watch, const std::string& section);

// Whether the running kernel has KCSAN / KASAN (for the figures).
bool KernelHas(const char* what);

}  // namespace hostile
