// Flat 32-bit protected mode with paging off, for guests that build their own
// page tables (tools/ept-report's exitdump guest: turning paging on is part
// of its workload). The harness's long mode needs none of this.
#pragma once

#include <cstdint>

#include "harness/kvm.h"

namespace harness {

// CR0 = PE | ET; CS a flat 32-bit code segment (selector HARNESS_SEL_CODE),
// the data segments flat (HARNESS_SEL_DATA); EFLAGS with IF=0. No GDT or IDT
// is written: the guest must not reload a segment register or take a fault.
void EnterFlatProtectedMode(Vcpu& vcpu, uint32_t eip);

}  // namespace harness
