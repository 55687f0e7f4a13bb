/* Entry point and interrupt stubs of the guest image. */
#include "harness/guest_abi.h"

	.section .text.entry, "ax"
	.globl harness_entry
/* RDI = struct harness_ctx*, RSP = top of this vCPU's stack (16-aligned). */
harness_entry:
	call guest_main
1:	hlt /* guest_main never returns: its DONE ucall is the last exit */
	jmp 1b

/* Exception stubs: push a zero error code where the CPU pushes none, then the
 * vector, so guest_exception() always sees the same frame. */
.macro STUB vec, has_error
	.globl harness_exc\vec
harness_exc\vec:
	.if \has_error == 0
	pushq $0
	.endif
	pushq $\vec
	jmp exception_common
.endm

	.text
STUB 0,0;  STUB 1,0;  STUB 2,0;  STUB 3,0;  STUB 4,0;  STUB 5,0;  STUB 6,0
STUB 7,0;  STUB 8,1;  STUB 9,0;  STUB 10,1; STUB 11,1; STUB 12,1; STUB 13,1
STUB 14,1; STUB 15,0; STUB 16,0; STUB 17,1; STUB 18,0; STUB 19,0; STUB 20,0
STUB 21,1; STUB 22,0; STUB 23,0; STUB 24,0; STUB 25,0; STUB 26,0; STUB 27,0
STUB 28,0; STUB 29,1; STUB 30,1; STUB 31,0

/* Frame at RSP: vector, error code, RIP, CS, RFLAGS, RSP, SS. Exceptions are
 * fatal: guest_exception() reports them and never returns. */
exception_common:
	mov %rsp, %rdi
	and $-16, %rsp
	call guest_exception
2:	hlt
	jmp 2b

/* int harness_sti_hlt(void): `sti; hlt; cli`, returning 1 if the HLT ran and
 * 0 if the interrupt arrived before it (see harness_irq). */
	.globl harness_sti_hlt
harness_sti_hlt:
	mov $1, %eax
	sti
harness_hlt_site:
	hlt
	cli
	ret

/* HARNESS_IRQ_VECTOR: the hlt_irqchip payload's self-IPI; an x2APIC EOI.
 * `sti; hlt` relies on the STI interrupt shadow to take the interrupt only
 * once HLT has run. Some emulators (QEMU TCG with nested SVM) deliver it
 * inside the shadow, before the HLT, which would then sleep forever. So if
 * the interrupted RIP is the HLT, skip it and make harness_sti_hlt return 0:
 * the payload repeats the round and counts exactly the HLTs that ran. */
	.globl harness_irq
harness_irq:
	push %rax
	push %rcx
	push %rdx
	lea harness_hlt_site(%rip), %rax
	cmp %rax, 24(%rsp)
	jne 1f
	incq 24(%rsp)       /* hlt is one byte */
	movq $0, 16(%rsp)   /* the saved RAX: harness_sti_hlt returns 0 */
1:	mov $HARNESS_MSR_X2APIC_EOI, %ecx
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	pop %rdx
	pop %rcx
	pop %rax
	iretq
	.section .note.GNU-stack, "", @progbits
