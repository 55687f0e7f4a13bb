/* Freestanding helpers for the ring-0 guest image (no libc, no SSE). */
#ifndef HARNESS_GUEST_H
#define HARNESS_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "harness/guest_abi.h"

/* The vCPU's context: GS base points at it and ctx->self holds its address. */
static inline struct harness_ctx* ctx(void) {
  struct harness_ctx* c;
  __asm__ volatile("mov %%gs:0, %0" : "=r"(c));
  return c;
}

/* Every exit the guest causes on purpose is counted first, so the host can
 * tell deliberate exits from the rest (see deliberate[] in guest_abi.h). */
static inline void count(enum harness_tracked t, uint64_t n) {
  ctx()->deliberate[t] += n;
}

static inline void raw_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ volatile("cpuid"
                   : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                   : "a"(leaf), "c"(sub)
                   : "memory");
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  count(HARNESS_T_CPUID, 1);
  raw_cpuid(leaf, sub, r);
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
  return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
  return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
                   : "memory");
}

void* memset(void* d, int c, size_t n);
void* memcpy(void* d, const void* s, size_t n);

/* Sends a message to the host and returns its reply. */
uint64_t ucall(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3);

_Noreturn void guest_assert_fail(const char* expr, const char* file, uint32_t line,
                                 uint64_t a, uint64_t b);

#define GUEST_ASSERT(cond)                                                    \
  do {                                                                        \
    if (!(cond)) guest_assert_fail(#cond, __FILE__, __LINE__, 0, 0);          \
  } while (0)
/* Carries both values to the host. */
#define GUEST_ASSERT_EQ(a, b)                                                 \
  do {                                                                        \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                          \
    if (a_ != b_) guest_assert_fail(#a " == " #b, __FILE__, __LINE__, a_, b_); \
  } while (0)

/* Payload loops (payloads.c): run the payload, return completed operations. */
uint64_t run_payload_loop(struct harness_ctx* c);
void prepare_payload(struct harness_ctx* c);

#endif
