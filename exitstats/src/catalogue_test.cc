#include "exitstats/catalogue.h"

#include <gtest/gtest.h>

#include <set>

#include "exitstats/reasons.h"

namespace exitstats {
namespace {

TEST(Catalogue, NamesUniqueAndReasonsHandledEverywhere) {
  std::set<std::string_view> names;
  for (const ExitType& e : Catalogue()) {
    EXPECT_TRUE(names.insert(e.name).second) << e.name;
    EXPECT_TRUE(IsHandled(e.sdm_reason, Vendor::kVmx)) << e.name;
    EXPECT_TRUE(IsHandled(e.sdm_reason, Vendor::kSvm)) << e.name;
    EXPECT_EQ(LookupByName(e.name)->kind, e.kind);
    EXPECT_EQ(Lookup(e.kind).name, e.name);
  }
  EXPECT_FALSE(LookupByName("nope").has_value());
}

}  // namespace
}  // namespace exitstats
