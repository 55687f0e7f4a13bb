/* The exitdump guest: 32-bit protected-mode code that runs one workload in a
 * single-vCPU VM and reads the exit-statistics leaves for every SDM reason
 * before and after it, from inside the measured VM (the leaves are per-VM).
 *
 * It is assembled into the host binary as data and copied to guest physical
 * kLoad; it references its own labels only as offsets from exitdump_guest
 * (assemble-time constants), so it runs at any load address given in LOAD.
 * Layout shared with exitdump.cc (keep in sync): see the #defines below.
 *
 * Workload, in order (counts come from the parameter block):
 *   CPUID x N, HLT x N (no irqchip: each one reaches the VMM), OUT x N to the
 *   VMM's port, RDMSR x N, WRMSR x N, VMCALL x N (0 with --no-vmcall); then a boot-like memory
 *   phase: write 32-bit page tables identity-mapping 64 MiB, enable paging,
 *   touch P never-touched pages, then M "context switches" (CR3 reload +
 *   INVLPG + re-touch). EPT and shadow paging differ mostly in the last part.
 */
#define LOAD 0x10000
#define PARAMS 0x8000
#define P_ITER 0x04
#define P_TOUCH 0x08
#define P_SWITCH 0x0C
#define P_LEAF_RCYC 0x10
#define P_NREASONS 0x14
#define P_LEAF_TCYC 0x18
#define P_VMCALLS 0x1C
#define P_LEAF_REXITS 0x20
#define PROBES 0x38000
#define BEFORE 0x20000
#define AFTER 0x30000
#define STACK 0x7000
#define PD 0x100000
#define PT 0x101000
#define TOUCH 0x1000000
#define PORT_IO 0x1001
#define PORT_DONE 0x1002
#define MSR_READ 0x179  /* IA32_MCG_CAP: intercepted, emulated by KVM */
#define MSR_WRITE 0x17A /* IA32_MCG_STATUS: writable with 0 */
#define HC_UNKNOWN 0xFFFF

#define STORE mov %eax, (%edi); mov %ebx, 4(%edi); mov %ecx, 8(%edi); mov %edx, 12(%edi); add $16, %edi
#define ADDR(label) (LOAD + (label - exitdump_guest))

  .section .rodata
  .globl exitdump_guest, exitdump_guest_end, exitdump_guest_vmcall
  .code32
exitdump_guest:
  mov $STACK, %esp
  mov $BEFORE, %edi
  call dump_rel

  /* for (esi = N; esi; esi--) BODY */
#define LOOP(...)                      \
  mov PARAMS + P_ITER, %esi;           \
  test %esi, %esi;                     \
  jz 9f;                               \
8: __VA_ARGS__;                             \
  dec %esi;                            \
  jnz 8b;                              \
9:

  LOOP(xor %eax, %eax; xor %ecx, %ecx; cpuid)
  LOOP(hlt)
  LOOP(mov $PORT_IO, %dx; out %al, %dx)
  LOOP(mov $MSR_READ, %ecx; rdmsr)
  LOOP(mov $MSR_WRITE, %ecx; xor %eax, %eax; xor %edx, %edx; wrmsr)
  mov PARAMS + P_VMCALLS, %esi
  test %esi, %esi
  jz 2f
1:
  mov $HC_UNKNOWN, %eax
  xor %ebx, %ebx
  xor %ecx, %ecx
  xor %edx, %edx
exitdump_guest_vmcall:  /* the host rewrites this to VMMCALL on AMD */
  .byte 0x0f, 0x01, 0xc1
  dec %esi
  jnz 1b
2:

  /* Boot-like memory phase. Page directory: 16 tables = 64 MiB. */
  mov $PD, %edi
  mov $(PT | 3), %eax
  mov $16, %ecx
3:
  mov %eax, (%edi)
  add $4, %edi
  add $0x1000, %eax
  loop 3b
  /* Page tables: identity, present + writable. */
  mov $PT, %edi
  mov $3, %eax
  mov $(16 * 1024), %ecx
4:
  mov %eax, (%edi)
  add $4, %edi
  add $0x1000, %eax
  loop 4b
  mov $PD, %eax
  mov %eax, %cr3
  mov %cr0, %eax
  or $0x80000000, %eax
  mov %eax, %cr0

  /* First touch of P pages. */
  mov PARAMS + P_TOUCH, %ecx
  mov $TOUCH, %edi
  test %ecx, %ecx
  jz 6f
5:
  mov %ecx, (%edi)
  add $0x1000, %edi
  loop 5b
6:
  /* M context switches: reload CR3 (flushes the TLB), INVLPG one page, touch
   * it again. Under EPT none of this exits; under shadow paging each CR3
   * write, INVLPG and the refault are exits. */
  mov PARAMS + P_SWITCH, %esi
  test %esi, %esi
  jz 7f
  mov PARAMS + P_TOUCH, %ebx     /* wrap within the touched pages */
  shl $12, %ebx
  add $TOUCH, %ebx
  mov $TOUCH, %edi
10:
  mov %cr3, %eax
  mov %eax, %cr3
  invlpg (%edi)
  mov (%edi), %eax
  add $0x1000, %edi
  cmp %ebx, %edi
  jb 11f
  mov $TOUCH, %edi
11:
  dec %esi
  jnz 10b
7:
  mov $AFTER, %edi
  call dump_rel
  /* Boundary probes, after every delta has been read: reason 78 (the first
   * above the table) and 0xFFFFFFFF on the 64-bit and the course per-reason
   * leaf; all four must answer "undefined" (EDX=0xFFFFFFFF, rest 0). */
  mov $PROBES, %edi
  mov $0x4FFFFFF2, %eax
  mov $78, %ecx
  cpuid
  STORE
  mov $0x4FFFFFF2, %eax
  mov $0xFFFFFFFF, %ecx
  cpuid
  STORE
  mov PARAMS + P_LEAF_REXITS, %eax
  mov $78, %ecx
  cpuid
  STORE
  mov PARAMS + P_LEAF_REXITS, %eax
  mov $0xFFFFFFFF, %ecx
  cpuid
  STORE
  mov $PORT_DONE, %dx
  out %al, %dx
12:
  hlt
  jmp 12b

/* dump: EDI = buffer. Discovery, 64-bit total, total cycles, then for every
 * reason r < NREASONS: 0x4FFFFFF2(r) and the profile's per-reason cycles leaf.
 * 16 bytes (EAX, EBX, ECX, EDX) per CPUID. Keep in sync with kDumpCpuids. */
dump_rel:
  mov $0x4FFFFFF0, %eax
  xor %ecx, %ecx
  cpuid
  STORE
  mov $0x4FFFFFF1, %eax
  xor %ecx, %ecx
  cpuid
  STORE
  mov PARAMS + P_LEAF_TCYC, %eax
  xor %ecx, %ecx
  cpuid
  STORE
  xor %esi, %esi
13:
  mov $0x4FFFFFF2, %eax
  mov %esi, %ecx
  cpuid
  STORE
  mov PARAMS + P_LEAF_RCYC, %eax
  mov %esi, %ecx
  cpuid
  STORE
  inc %esi
  cmp PARAMS + P_NREASONS, %esi
  jb 13b
  ret
exitdump_guest_end:
  .code64
