// A flat ring-0 segment (base 0, limit 4 GiB, present) as KVM_SET_SREGS takes
// it: 64-bit code for long mode, or 32-bit code and data (D/B=1).
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace harness {

inline kvm_segment FlatSegment(uint16_t selector, uint8_t type, bool long_code = false) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.s = 1;
  s.l = long_code ? 1 : 0;
  s.db = long_code ? 0 : 1;
  s.g = 1;
  return s;
}

}  // namespace harness
