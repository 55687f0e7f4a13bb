// exit_stress --show: the course's own answers (what students otherwise get
// by looping `cpuid -l 0x4ffffffd -s N` by hand), from the leaves the leaf
// finder found: the assignment's sample line, the per-reason table, the
// reasons most frequent so far as a terminal bar chart (run first thing
// after boot, that is the boot profile), and --watch's rate over time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "checks.h"

namespace exitstats::guest {

struct ShowConfig {
  double watch_seconds = 0;  // --watch S: sample every S seconds (0: once)
  uint32_t samples = 10;     // --samples N: how many samples --watch takes
  size_t top = 10;           // reasons in the bar chart
};

// "CPUID(0x4FFFFFFF), exits=1234, cycles spent in exit=567890"
std::string SampleLine(const Client& client);

// Every reason 0..77 with its SDM name, exits and cycles; undefined and
// not-handled reasons marked; then the `top` most frequent as bars.
std::string ReasonTable(const Client& client, Vendor vendor, size_t top);

// One line per sample and a closing line on the rate's stability.
// `sleep` waits the given seconds (injected for the tests).
std::string Watch(const Client& client, const ShowConfig& cfg,
                  const std::function<void(double)>& sleep,
                  const std::function<void(const std::string&)>& emit);

// The whole --show output; returns the exit status (0, or 77 when no leaf
// counts). Output goes through `emit`, line by line.
int Show(const Checker& checker, const ShowConfig& cfg,
         const std::function<void(double)>& sleep,
         const std::function<void(const std::string&)>& emit);

}  // namespace exitstats::guest
