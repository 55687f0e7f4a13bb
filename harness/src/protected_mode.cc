#include "harness/protected_mode.h"

#include "flat_segment.h"
#include "harness/guest_abi.h"

namespace harness {

void EnterFlatProtectedMode(Vcpu& vcpu, uint32_t eip) {
  kvm_sregs s = vcpu.GetSregs();
  s.cs = FlatSegment(HARNESS_SEL_CODE, 0xb);  // code, execute/read, accessed
  s.ds = s.es = s.fs = s.gs = s.ss = FlatSegment(HARNESS_SEL_DATA, 0x3);  // data, read/write
  s.cr0 = 0x11;  // PE | ET
  s.cr4 = 0;
  s.efer = 0;
  vcpu.SetSregs(s);
  kvm_regs r{};
  r.rip = eip;
  r.rflags = 0x2;
  vcpu.SetRegs(r);
}

}  // namespace harness
