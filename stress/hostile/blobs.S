/* Guest code of the hostile stages (see blob_abi.h). Kept in .rodata: the
 * host copies the bytes between the start/end labels into guest memory, so
 * only RIP-relative jumps, no absolute addresses. No stack, no SSE. */
#include "blob_abi.h"

	.section .rodata.hostile_blobs, "a"
	.code64

/* The CPUID-list loop: batches of (leaf, ECX, garbage EBX/EDX) -> answers. */
	.globl hostile_cpuid_list_start, hostile_cpuid_list_end
hostile_cpuid_list_start:
	mov %rdi, %r8
1:	mov (%r8), %r10
	test %r10, %r10
	jz 3f
	lea HOSTILE_QUERY_OFFSET(%r8), %rsi
	lea HOSTILE_OUT_OFFSET(%r8), %r11
	xor %r9d, %r9d
2:	mov (%rsi), %eax
	mov 4(%rsi), %ecx
	mov 8(%rsi), %ebx
	mov 12(%rsi), %edx
	cpuid
	mov %eax, (%r11)
	mov %ebx, 4(%r11)
	mov %ecx, 8(%r11)
	mov %edx, 12(%r11)
	add $16, %rsi
	add $16, %r11
	inc %r9
	cmp %r10, %r9
	jb 2b
	incq 8(%r8)
	mov $HOSTILE_PORT_BATCH, %dx
	out %al, %dx
	jmp 1b
3:	mov $HOSTILE_PORT_DONE, %dx
	out %al, %dx
	jmp 1b		/* the host may hand out another batch */
hostile_cpuid_list_end:

/* A guest that never finishes: no exit of its own, ever. */
	.globl hostile_spin_start, hostile_spin_end
hostile_spin_start:
4:	pause
	jmp 4b
hostile_spin_end:

	.section .note.GNU-stack, "", @progbits
