#include "exitstats/reasons.h"

#include <gtest/gtest.h>

namespace exitstats {
namespace {

TEST(Reasons, SpecUndefinedHolesAreUndefined) {
  for (uint32_t r : {35u, 38u, 42u, 65u, 71u, 78u, 300u, 0xFFFFFFFFu})
    EXPECT_FALSE(IsDefined(r)) << r;
}

TEST(Reasons, TableIsStrictlyAscendingAndEndsAtHighest) {
  auto all = DefinedReasons();
  for (size_t i = 1; i < all.size(); ++i)
    EXPECT_LT(all[i - 1].reason, all[i].reason);
  EXPECT_EQ(all.back().reason, kHighestDefinedReason);
  EXPECT_EQ(all.size(), 78u - 5u);  // 0..77 minus the five reserved holes
}

TEST(Reasons, DrivenExitsAreHandledOnBothVendors) {
  for (uint32_t r : {reason::kCpuid, reason::kHlt, reason::kVmcall, reason::kIo,
                     reason::kRdmsr, reason::kWrmsr, reason::kEptViolation}) {
    EXPECT_TRUE(IsHandled(r, Vendor::kVmx)) << r;
    EXPECT_TRUE(IsHandled(r, Vendor::kSvm)) << r;
  }
}

TEST(Reasons, VendorSpecificGapsMatchKvm612) {
  EXPECT_FALSE(IsHandled(16, Vendor::kVmx));  // RDTSC: no VMX handler
  EXPECT_TRUE(IsHandled(52, Vendor::kVmx));   // preemption timer
  EXPECT_FALSE(IsHandled(52, Vendor::kSvm));  // no SVM counterpart
  EXPECT_TRUE(IsHandled(51, Vendor::kSvm));   // RDTSCP intercept on SVM
  EXPECT_FALSE(IsHandled(35, Vendor::kSvm));  // undefined is never handled
}

}  // namespace
}  // namespace exitstats
