#include "harness/long_mode.h"

#include <cstring>
#include <stdexcept>

#include "flat_segment.h"

extern "C" const uint8_t harness_guest_image_start[];
extern "C" const uint8_t harness_guest_image_end[];

namespace harness {

namespace {
constexpr uint64_t kPresent = 1, kWritable = 2, kHuge = 1 << 7;

// 64-bit code (L=1), data (D/B=1), both DPL 0, base 0, limit 4 GiB.
constexpr uint64_t kGdtCode64 = 0x00af9b000000ffffull;
constexpr uint64_t kGdtData = 0x00cf93000000ffffull;
constexpr uint32_t kTssLimit = 0x67;

template <class T>
T* At(Vm& vm, uint64_t gpa, size_t n = 1) {
  return reinterpret_cast<T*>(vm.Host(gpa, sizeof(T) * n));
}

// 16-byte interrupt gate, DPL 0, present, IST 0.
void WriteGate(uint8_t* idt, int vector, uint64_t handler) {
  uint8_t g[16] = {};
  g[0] = handler & 0xff;
  g[1] = (handler >> 8) & 0xff;
  g[2] = HARNESS_SEL_CODE;
  g[5] = 0x8e;
  g[6] = (handler >> 16) & 0xff;
  g[7] = (handler >> 24) & 0xff;
  uint32_t high = handler >> 32;
  std::memcpy(g + 8, &high, 4);
  std::memcpy(idt + 16 * vector, g, 16);
}

}  // namespace

const harness_image_header& LoadImage(Vm& vm, std::span<const uint8_t> image) {
  if (image.size() < sizeof(harness_image_header) || image.size() > HARNESS_IMAGE_MAX)
    throw std::runtime_error("guest image has a bad size: " + std::to_string(image.size()));
  uint8_t* dst = vm.Host(HARNESS_IMAGE, image.size());
  std::memcpy(dst, image.data(), image.size());
  auto* h = reinterpret_cast<const harness_image_header*>(dst);
  if (h->magic != HARNESS_IMAGE_MAGIC)
    throw std::runtime_error("guest image has no harness header (bad magic)");
  return *h;
}

void WriteSystemTables(Vm& vm, const harness_image_header& header) {
  auto* pml4 = At<uint64_t>(vm, HARNESS_PML4, 512);
  auto* pdpt = At<uint64_t>(vm, HARNESS_PDPT, 512);
  pml4[0] = HARNESS_PDPT | kPresent | kWritable;
  for (uint64_t g = 0; g < 4; g++) {
    uint64_t pd_gpa = HARNESS_PD + g * 0x1000;
    pdpt[g] = pd_gpa | kPresent | kWritable;
    auto* pd = At<uint64_t>(vm, pd_gpa, 512);
    for (uint64_t i = 0; i < 512; i++)
      pd[i] = ((g << 30) | (i << 21)) | kPresent | kWritable | kHuge;
  }

  auto* gdt = At<uint64_t>(vm, HARNESS_GDT, 5);
  gdt[0] = 0;
  gdt[HARNESS_SEL_CODE / 8] = kGdtCode64;
  gdt[HARNESS_SEL_DATA / 8] = kGdtData;
  // 64-bit TSS descriptor (type 0xB busy, present), 16 bytes.
  uint64_t base = HARNESS_TSS;
  gdt[HARNESS_SEL_TSS / 8] = (kTssLimit & 0xffff) | ((base & 0xffffff) << 16) |
                             (0x8bull << 40) | ((base >> 24) & 0xff) << 56;
  gdt[HARNESS_SEL_TSS / 8 + 1] = base >> 32;
  // The TSS itself stays zero: no privilege changes and no IST stacks, and
  // an I/O map base of 0 past the limit (no I/O bitmap).
  std::memset(vm.Host(HARNESS_TSS, kTssLimit + 1), 0, kTssLimit + 1);

  uint8_t* idt = vm.Host(HARNESS_IDT, 4096);
  for (int v = 0; v < 32; v++) WriteGate(idt, v, header.exception_stubs[v]);
  WriteGate(idt, HARNESS_IRQ_VECTOR, header.irq_stub);
}

void EnterLongMode(Vcpu& vcpu, const VcpuEntry& entry) {
  kvm_sregs s = vcpu.GetSregs();
  s.cr0 = 0x80050033;  // PG | AM | WP | NE | ET | MP | PE
  s.cr3 = HARNESS_PML4;
  s.cr4 = 0x20;        // PAE
  s.efer = 0x500;      // LMA | LME
  s.cs = FlatSegment(HARNESS_SEL_CODE, 0xb, /*long_code=*/true);
  s.ds = s.es = s.fs = s.ss = FlatSegment(HARNESS_SEL_DATA, 0x3);
  s.gs = FlatSegment(HARNESS_SEL_DATA, 0x3);
  s.gs.base = entry.gs_base;
  s.tr = {};
  s.tr.base = HARNESS_TSS;
  s.tr.limit = kTssLimit;
  s.tr.selector = HARNESS_SEL_TSS;
  s.tr.type = 0xb;
  s.tr.present = 1;
  s.ldt = {};
  s.ldt.unusable = 1;
  s.gdt.base = HARNESS_GDT;
  s.gdt.limit = 5 * 8 - 1;
  s.idt.base = HARNESS_IDT;
  s.idt.limit = 4095;
  vcpu.SetSregs(s);

  kvm_regs r{};
  r.rip = entry.rip;
  r.rsp = entry.rsp;
  r.rdi = entry.rdi;
  r.rflags = 0x2;  // IF=0: only the hlt_irqchip payload enables interrupts
  vcpu.SetRegs(r);
}

std::span<const uint8_t> GuestImage() {
  return {harness_guest_image_start,
          static_cast<size_t>(harness_guest_image_end - harness_guest_image_start)};
}

}  // namespace harness
