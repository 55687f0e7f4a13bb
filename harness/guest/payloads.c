/* The payload loops: one tight loop of one exiting instruction each, in the
 * style of kvm-unit-tests x86/vmexit.c. Each loop counts its deliberate exits
 * (count()) so the host knows exactly which exits the guest asked for. */
#include "guest.h"

static void enable_x2apic(void) {
  count(HARNESS_T_RDMSR, 1);
  uint64_t base = rdmsr(HARNESS_MSR_APIC_BASE);
  count(HARNESS_T_WRMSR, 1);
  wrmsr(HARNESS_MSR_APIC_BASE, base | (1u << 11) | (1u << 10)); /* EN | EXTD */
  /* A LAPIC comes out of reset software-disabled (SVR bit 8 clear) and then
   * accepts no interrupts: enable it, spurious vector 0xFF. */
  count(HARNESS_T_WRMSR, 1);
  wrmsr(0x80F, 0x1FF);
}

void prepare_payload(struct harness_ctx* c) {
  if (c->payload == HARNESS_P_WRMSR_FAST || c->payload == HARNESS_P_HLT_IRQCHIP)
    enable_x2apic();
}

static uint64_t loop_cpuid(uint64_t n) {
  uint32_t r[4];
  count(HARNESS_T_CPUID, n);
  for (uint64_t i = 0; i < n; i++) raw_cpuid(0, 0, r);
  return n;
}

static uint64_t loop_hlt(uint64_t n) {
  count(HARNESS_T_HLT, n);
  for (uint64_t i = 0; i < n; i++) __asm__ volatile("hlt" ::: "memory");
  return n;
}

int harness_sti_hlt(void); /* entry.S */

/* Each round: self-IPI (fixed, physical, to our own x2APIC ID: a fastpath
 * ICR write), then `sti; hlt`: the interrupt is pending, so the in-kernel
 * HLT does not block; the interrupt handler's EOI is a second WRMSR exit.
 * Rounds repeat until n HLTs have run (one may be skipped, see entry.S). */
static uint64_t loop_hlt_irqchip(const struct harness_ctx* c, uint64_t n) {
  uint64_t self = c->vcpu_id; /* KVM's x2APIC ID; RDMSR 0x802 may not exit */
  uint64_t halts = 0;
  while (halts < n) {
    /* The ICR write; the handler's EOI is not counted: with APICv/AVIC it
     * may not exit (the table marks WRMSR inexact for this payload). */
    count(HARNESS_T_WRMSR, 1);
    wrmsr(HARNESS_MSR_X2APIC_ICR, (self << 32) | HARNESS_IRQ_VECTOR);
    int ran = harness_sti_hlt();
    count(HARNESS_T_HLT, ran);
    halts += ran;
  }
  return halts;
}

static uint64_t loop_out_user(uint64_t n) {
  count(HARNESS_T_IO, n);
  for (uint64_t i = 0; i < n; i++)
    __asm__ volatile("outb %%al, %%dx" ::"a"((uint8_t)i), "d"(HARNESS_USER_PORT));
  return n;
}

static uint64_t loop_in_user(uint64_t n) {
  count(HARNESS_T_IO, n);
  for (uint64_t i = 0; i < n; i++) {
    uint8_t v;
    __asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"(HARNESS_USER_PORT));
    GUEST_ASSERT_EQ(v, 0x5A);
  }
  return n;
}

static uint64_t loop_out_kernel(uint64_t n) {
  count(HARNESS_T_IO, n);
  for (uint64_t i = 0; i < n; i++)
    __asm__ volatile("outb %%al, %%dx" ::"a"((uint8_t)0xFF), "d"(HARNESS_PIC_PORT));
  return n;
}

static uint64_t loop_in_kernel(uint64_t n) {
  count(HARNESS_T_IO, n);
  uint8_t v;
  for (uint64_t i = 0; i < n; i++)
    __asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"(HARNESS_PIC_PORT));
  (void)v;
  return n;
}

static uint64_t loop_rdmsr(uint64_t n) {
  count(HARNESS_T_RDMSR, n);
  for (uint64_t i = 0; i < n; i++) (void)rdmsr(HARNESS_MSR_READ);
  return n;
}

static uint64_t loop_wrmsr(uint64_t n) {
  count(HARNESS_T_WRMSR, n);
  for (uint64_t i = 0; i < n; i++) wrmsr(HARNESS_MSR_WRITE, 0);
  return n;
}

static uint64_t loop_wrmsr_fast(uint64_t n) {
  count(HARNESS_T_WRMSR, n);
  for (uint64_t i = 0; i < n; i++) wrmsr(HARNESS_MSR_X2APIC_ICR, HARNESS_ICR_NOBODY);
  return n;
}

/* An unknown hypercall number: KVM must answer -KVM_ENOSYS every time. */
static uint64_t loop_vmcall(uint64_t n, int amd) {
  count(HARNESS_T_VMCALL, n);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t ret = HARNESS_HC_UNKNOWN;
    if (amd)
      __asm__ volatile("vmmcall" : "+a"(ret) : "b"(0), "c"(0), "d"(0), "S"(0) : "memory");
    else
      __asm__ volatile("vmcall" : "+a"(ret) : "b"(0), "c"(0), "d"(0), "S"(0) : "memory");
    GUEST_ASSERT_EQ(ret, (uint64_t)-HARNESS_KVM_ENOSYS);
  }
  return n;
}

/* KVM intercepts WBINVD on both vendors and, with no non-coherent DMA
 * device assigned, skips it. (Not INVD: QEMU TCG before 8.1 reports a nested
 * INVD with the WBINVD exit code.) */
static uint64_t loop_wbinvd(uint64_t n) {
  count(HARNESS_T_WBINVD, n);
  for (uint64_t i = 0; i < n; i++) __asm__ volatile("wbinvd" ::: "memory");
  return n;
}

/* One write per never-touched 4 KiB page of this vCPU's part of slot 1. */
static uint64_t loop_first_touch(uint64_t base, uint64_t n) {
  count(HARNESS_T_EPT, n);
  for (uint64_t i = 0; i < n; i++) *(volatile uint64_t*)(base + i * 4096) = i + 1;
  return n;
}

uint64_t run_payload_loop(struct harness_ctx* c) {
  uint64_t n = c->iterations;
  switch (c->payload) {
    case HARNESS_P_CPUID: return loop_cpuid(n);
    case HARNESS_P_HLT: return loop_hlt(n);
    case HARNESS_P_HLT_IRQCHIP: return loop_hlt_irqchip(c, n);
    case HARNESS_P_IO_USER_IN: return loop_in_user(n);
    case HARNESS_P_IO_KERNEL_OUT: return loop_out_kernel(n);
    case HARNESS_P_IO_USER: return loop_out_user(n);
    case HARNESS_P_IO_KERNEL: return loop_in_kernel(n);
    case HARNESS_P_RDMSR: return loop_rdmsr(n);
    case HARNESS_P_WRMSR: return loop_wrmsr(n);
    case HARNESS_P_WRMSR_FAST: return loop_wrmsr_fast(n);
    case HARNESS_P_VMCALL: return loop_vmcall(n, c->amd);
    case HARNESS_P_FIRST_TOUCH: return loop_first_touch(c->touch_base, n);
    case HARNESS_P_WBINVD: return loop_wbinvd(n);
    case HARNESS_P_SELF_UD2: __asm__ volatile("ud2"); return 0;
    case HARNESS_P_SELF_ASSERT: GUEST_ASSERT_EQ(n, n + 1); return 0;
    case HARNESS_P_SELF_MMIO: return *(volatile uint64_t*)0xC0000000ull;
  }
  GUEST_ASSERT(!"unknown payload");
  return 0;
}
