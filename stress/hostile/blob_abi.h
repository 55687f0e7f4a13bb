/* The hostile stages' guest code: tiny position-independent ring-0 loops
 * (blobs.S) copied into guest memory and entered in the harness's long mode.
 * Shared by the assembler and the host, so plain C preprocessor only.
 *
 * Per-vCPU area (RDI at entry, guest physical == virtual):
 *   +0   u64 count   host -> guest: CPUIDs in the next batch, 0 = stop
 *   +8   u64 batches guest -> host: batches completed
 *   +64  queries     count x {u32 leaf(EAX), ecx, ebx_in, edx_in}
 *   +HOSTILE_OUT_OFFSET answers count x {u32 eax, ebx, ecx, edx}
 * After each batch the guest does OUT to HOSTILE_PORT_BATCH: the host checks
 * the answers, refills, sets count and resumes it. With count == 0 the guest
 * does OUT to HOSTILE_PORT_DONE instead and, when resumed, reads count again
 * (so a VM can be parked and later queried again). */
#ifndef HOSTILE_BLOB_ABI_H
#define HOSTILE_BLOB_ABI_H

#define HOSTILE_BATCH 2048
#define HOSTILE_QUERY_OFFSET 64
#define HOSTILE_OUT_OFFSET (HOSTILE_QUERY_OFFSET + 16 * HOSTILE_BATCH)
#define HOSTILE_AREA_SIZE 0x20000 /* 128 KiB per vCPU */

#define HOSTILE_PORT_BATCH 0x2000
#define HOSTILE_PORT_DONE 0x2001

/* Where the blobs and areas live: a memory slot of our own, inside the
 * harness's 4 GiB identity map and clear of its slots 0 (main) and 1
 * (first-touch pages at 1 GiB and up, below 0xB0000000). */
#define HOSTILE_SLOT 3
#define HOSTILE_CODE_GPA 0xC0000000ull
#define HOSTILE_CODE_SIZE 0x10000ull
#define HOSTILE_AREA_GPA (HOSTILE_CODE_GPA + HOSTILE_CODE_SIZE)

#endif
