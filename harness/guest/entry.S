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

/* HARNESS_IRQ_VECTOR: the hlt_irqchip payload's self-IPI. Only an x2APIC
 * EOI; the payload counts the interrupt, its WRMSR exit and the HLT. */
	.globl harness_irq
harness_irq:
	push %rax
	push %rcx
	push %rdx
	mov $HARNESS_MSR_X2APIC_EOI, %ecx
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	pop %rdx
	pop %rcx
	pop %rax
	iretq
	.section .note.GNU-stack, "", @progbits
