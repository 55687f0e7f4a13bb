/* The contract between the host library and the freestanding guest image.
 *
 * Included by C++ host code and by the freestanding C guest (no libc), so it
 * is plain C with fixed-width fields: every struct here lives in guest memory
 * and is read or written by both sides. Guest virtual == guest physical
 * (identity map), so a guest pointer is also a guest physical address. */
#ifndef HARNESS_GUEST_ABI_H
#define HARNESS_GUEST_ABI_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

/* ---- Guest physical memory layout (slot 0 covers [0, HARNESS_MAIN_SIZE)) */
#define HARNESS_PML4 0x1000ull
#define HARNESS_PDPT 0x2000ull
#define HARNESS_PD 0x3000ull /* 4 pages: identity map of 4 GiB, 2 MiB pages */
#define HARNESS_GDT 0x7000ull
#define HARNESS_TSS 0x8000ull
#define HARNESS_IDT 0x9000ull
#define HARNESS_IMAGE 0x100000ull     /* guest image load address (1 MiB) */
#define HARNESS_IMAGE_MAX 0x100000ull /* image size limit */
#define HARNESS_VCPU_AREA 0x200000ull /* per-vCPU context + stack */
#define HARNESS_VCPU_AREA_SIZE 0x10000ull
#define HARNESS_VCPU_CTX_SIZE 0x4000ull /* rest of the area is the stack */
#define HARNESS_MAX_VCPUS 64
#define HARNESS_MAIN_SIZE 0x800000ull /* slot 0: 8 MiB */
/* Slot 1 (first-touch payload only): never-touched pages, NOHUGEPAGE. */
#define HARNESS_TOUCH_BASE 0x40000000ull
#define HARNESS_TOUCH_MAX 0xB0000000ull /* below 4 GiB, under the TSS hole */

#define HARNESS_SEL_CODE 0x08
#define HARNESS_SEL_DATA 0x10
#define HARNESS_SEL_TSS 0x18

/* ---- Ports */
#define HARNESS_UCALL_PORT 0x1000 /* OUT with RDI = struct harness_ucall* */
#define HARNESS_USER_PORT 0x80    /* io_user: the POST port, no in-kernel device */
#define HARNESS_PIC_PORT 0x21     /* io_kernel: in-kernel PIC master IMR */

/* ---- MSRs driven by the payloads */
#define HARNESS_MSR_READ 0x179      /* IA32_MCG_CAP: intercepted, KVM-emulated */
#define HARNESS_MSR_WRITE 0x17A     /* IA32_MCG_STATUS: writable with 0 */
#define HARNESS_MSR_APIC_BASE 0x1B
#define HARNESS_MSR_X2APIC_EOI 0x80B
#define HARNESS_MSR_X2APIC_ICR 0x830
#define HARNESS_IRQ_VECTOR 0x40
/* ICR for the fastpath payload: fixed, physical, no shorthand, to an APIC ID
 * no vCPU has (not broadcast), i.e. exactly what KVM's fastpath accepts and
 * nobody receives. */
#define HARNESS_ICR_NOBODY ((0xFEull << 32) | HARNESS_IRQ_VECTOR)

/* KVM hypercall nr nobody implements: KVM answers -KVM_ENOSYS (-1000). */
#define HARNESS_HC_UNKNOWN 0xFFFFu
#define HARNESS_KVM_ENOSYS 1000

#ifndef __ASSEMBLER__
/* ---- Payloads (the host's table in payload_table.cc maps ExitKind here) */
enum harness_payload {
  HARNESS_P_CPUID = 1,
  HARNESS_P_HLT = 2,         /* no irqchip: every HLT is KVM_EXIT_HLT */
  HARNESS_P_HLT_IRQCHIP = 3, /* self-IPI, sti;hlt, EOI: HLT wakes in-kernel */
  HARNESS_P_IO_USER = 4,
  HARNESS_P_IO_KERNEL = 5,
  HARNESS_P_RDMSR = 6,
  HARNESS_P_WRMSR = 7,
  HARNESS_P_WRMSR_FAST = 8,
  HARNESS_P_VMCALL = 9,
  HARNESS_P_FIRST_TOUCH = 10,
  HARNESS_P_IO_USER_IN = 11,   /* IN from the user-space port */
  HARNESS_P_IO_KERNEL_OUT = 12, /* OUT 0xFF to the in-kernel PIC IMR */
  HARNESS_P_WBINVD = 13,
  /* Self-tests of the harness itself (they must fail in a known way). */
  HARNESS_P_SELF_UD2 = 100,    /* #UD: exception reporting */
  HARNESS_P_SELF_ASSERT = 101, /* failing GUEST_ASSERT */
  HARNESS_P_SELF_MMIO = 102,   /* access outside any memslot */
};

/* ---- Reasons the guest tracks: its deliberate exits and the leaves it reads.
 * One line per reason: X(enum suffix, SDM basic reason, report name). The
 * guest's enum, the reasons it queries and the host's names all expand from
 * it; every catalogue row's reason must be here (PayloadTable tests). */
#define HARNESS_TRACKED(X)                                                    \
  X(EXTINT, 1, "external_interrupt") /* never deliberate, read for reports */ \
  X(CPUID, 10, "cpuid")                                                       \
  X(HLT, 12, "hlt")                                                           \
  X(VMCALL, 18, "vmcall")                                                     \
  X(IO, 30, "io")                                                             \
  X(RDMSR, 31, "rdmsr")                                                       \
  X(WRMSR, 32, "wrmsr")                                                       \
  X(EPT, 48, "ept_violation") /* first touches: deliberate, not exact */     \
  X(WBINVD, 54, "wbinvd")

#define HARNESS_TRACKED_ENUM(sym, sdm, name) HARNESS_T_##sym,
enum harness_tracked { HARNESS_TRACKED(HARNESS_TRACKED_ENUM) HARNESS_NR_TRACKED };
#undef HARNESS_TRACKED_ENUM
#define HARNESS_TRACKED_SDM(sym, sdm, name) sdm,
#define HARNESS_TRACKED_REASONS {HARNESS_TRACKED(HARNESS_TRACKED_SDM)}

/* What the guest read from the exit-statistics leaves at one moment. The
 * CPUIDs are issued in field order; every snapshot issues exactly
 * HARNESS_SNAPSHOT_CPUIDS of them, so their own exits are accountable. */
struct harness_leaves {
  uint64_t total64;      /* 0x4FFFFFF1 EBX:ECX */
  uint32_t total32;      /* profile total-exits leaf, EAX */
  uint32_t pad0;
  uint64_t total_cycles; /* profile total-cycles leaf, EBX:ECX */
  uint64_t reason64[HARNESS_NR_TRACKED]; /* 0x4FFFFFF2 */
  uint32_t reason32[HARNESS_NR_TRACKED]; /* profile per-reason exits leaf */
  uint32_t reason_edx[HARNESS_NR_TRACKED]; /* EDX of the course leaf (0/~0) */
  uint64_t reason_cycles[HARNESS_NR_TRACKED]; /* profile per-reason cycles leaf */
};
#define HARNESS_SNAPSHOT_CPUIDS (3 + 3 * HARNESS_NR_TRACKED)

/* Guest -> host messages. */
enum harness_ucall_cmd {
  HARNESS_UC_SYNC = 1,  /* all vCPUs park here; arg0 = phase */
  HARNESS_UC_SNAP,      /* vCPU 0 only: VM snapshot taken; arg0 = phase */
  HARNESS_UC_DONE,      /* payload finished, results in the context */
  HARNESS_UC_ASSERT,    /* GUEST_ASSERT failed: expr/file/line, arg0/arg1 */
  HARNESS_UC_EXCEPTION, /* arg0 vector, arg1 RIP, arg2 error code, arg3 CR2 */
};
enum harness_reply { HARNESS_REPLY_OK = 0, HARNESS_REPLY_RETRY = 1 };

struct harness_ucall {
  uint64_t cmd;
  uint64_t args[4];
  /* The guest's deliberate exits so far, per tracked reason, including the
   * OUT of this very ucall. */
  uint64_t deliberate[HARNESS_NR_TRACKED];
  uint64_t reply; /* host -> guest */
  uint32_t line;
  char file[92];
  char expr[160];
};

/* Whether to read the exit-statistics leaves. Only the guest can tell: the
 * patched KVM answers its own guests, not the VMM process. */
enum harness_leaves_mode {
  HARNESS_LEAVES_NEVER = 0,
  HARNESS_LEAVES_AUTO = 1,     /* when the discovery leaf answers */
  HARNESS_LEAVES_REQUIRED = 2, /* GUEST_ASSERT that it answers */
  /* Whatever 0x4FFFFFF0 answers: a course-only patch has no discovery leaf,
   * so the host judges the course leaves by how they move. */
  HARNESS_LEAVES_COURSE = 3,
};
#define HARNESS_SIGNATURE 0x5453584Bu /* "KXST", exitstats/abi.h */
#define HARNESS_ABI_VERSION 1u

/* Inputs (host-written) and results (guest-written) of one vCPU. */
struct harness_ctx {
  uint64_t self; /* GS base points here: the guest finds its ctx at %gs:0 */
  /* inputs */
  uint32_t payload;
  uint32_t vcpu_id;
  uint32_t nr_vcpus;
  uint32_t amd; /* 1: VMMCALL, 0: VMCALL */
  uint64_t iterations;
  uint32_t leaves_mode; /* enum harness_leaves_mode */
  uint32_t leaf_total_exits, leaf_total_cycles, leaf_reason_exits, leaf_reason_cycles;
  uint64_t touch_base; /* first page this vCPU touches (first_touch) */
  /* results */
  uint32_t discovery[4]; /* what CPUID 0x4FFFFFF0 answered in the guest */
  uint32_t leaves;       /* 1: the leaves were read (patched host) */
  uint64_t ops;        /* operations the payload loop completed */
  uint64_t tsc_cycles; /* rdtsc around the loop */
  uint64_t deliberate[HARNESS_NR_TRACKED];
  struct harness_leaves before, after; /* this vCPU's reads around its loop */
  struct harness_leaves vm;            /* vCPU 0: last VM snapshot */
  struct harness_ucall ucall;          /* this vCPU's message slot */
};

/* The image starts with this header (section .header, see guest.ld). */
#define HARNESS_IMAGE_MAGIC 0x314547414D49484Bull /* "KHIMAGE1" */
struct harness_image_header {
  uint64_t magic;
  uint64_t entry; /* void entry(struct harness_ctx*) with a fresh stack */
  uint64_t exception_stubs[32];
  uint64_t irq_stub; /* HARNESS_IRQ_VECTOR: x2APIC EOI and iret */
};

#endif /* __ASSEMBLER__ */
#endif

