// TSC reads for cycle counts, as kvm-unit-tests' vmexit does.
#pragma once

#include <x86intrin.h>

#include <cstdint>

namespace bench {

// rdtsc ordered against the surrounding work: lfence before keeps earlier
// instructions from drifting past the read, lfence after keeps later ones
// from starting before it.
inline uint64_t Rdtsc() {
  _mm_lfence();
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

// TSC frequency in Hz measured against CLOCK_MONOTONIC over ~20 ms (cached).
double TscHz();

}  // namespace bench
