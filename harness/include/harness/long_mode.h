// 64-bit long mode for ring-0 guests: page tables, GDT, TSS and IDT written
// into guest memory (layout in guest_abi.h), and the vCPU state that uses them.
#pragma once

#include <cstdint>
#include <span>

#include "harness/guest_abi.h"
#include "harness/kvm.h"

namespace harness {

// Copies the flat guest image to HARNESS_IMAGE and checks its header.
const harness_image_header& LoadImage(Vm& vm, std::span<const uint8_t> image);

// Identity map of the low 4 GiB (2 MiB pages), GDT (code64, data, TSS), TSS,
// and an IDT whose vectors 0-31 point at the image's exception stubs and
// HARNESS_IRQ_VECTOR at its IRQ stub.
void WriteSystemTables(Vm& vm, const harness_image_header& header);

struct VcpuEntry {
  uint64_t rip;
  uint64_t rsp;
  uint64_t rdi;      // first argument of the entry function
  uint64_t gs_base;  // the guest reads its context at %gs:0
};
// CR0/CR4/EFER/CR3, flat 64-bit segments, TR, GDTR/IDTR, RFLAGS with IF=0.
void EnterLongMode(Vcpu& vcpu, const VcpuEntry& entry);

// The embedded guest image (harness/guest, linked in as a blob).
std::span<const uint8_t> GuestImage();

}  // namespace harness
