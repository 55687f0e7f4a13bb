/* Guest main: the measurement protocol around one payload loop.
 *
 *   SYNC(0) [vCPU 0 alone: VM snapshot, SNAP(0), retried until the host
 *   calls the window clean] -> per-vCPU leaves -> loop -> per-vCPU leaves ->
 *   SYNC(1) [vCPU 0: VM snapshot, SNAP(1)] -> DONE
 *
 * At SYNC every vCPU is parked in the host; during vCPU 0's snapshot the
 * others stay parked, so the host's stats reads at the SNAP exits and the
 * guest's leaf reads bracket the same exits (see harness/README.md). */
#include "guest.h"

static const uint32_t kTrackedReasons[HARNESS_NR_TRACKED] = HARNESS_TRACKED_REASONS;

void* memset(void* d, int c, size_t n) {
  unsigned char* p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void* memcpy(void* d, const void* s, size_t n) {
  unsigned char* p = d;
  const unsigned char* q = s;
  while (n--) *p++ = *q++;
  return d;
}

static void copy_str(char* dst, size_t cap, const char* src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < cap; i++) dst[i] = src[i];
  dst[i] = 0;
}

uint64_t ucall(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
  struct harness_ctx* c = ctx();
  struct harness_ucall* u = &c->ucall;
  u->cmd = cmd;
  u->args[0] = a0;
  u->args[1] = a1;
  u->args[2] = a2;
  u->args[3] = a3;
  u->reply = 0;
  count(HARNESS_T_IO, 1);
  memcpy(u->deliberate, c->deliberate, sizeof u->deliberate);
  __asm__ volatile("outb %%al, %%dx" ::"a"(0), "d"(HARNESS_UCALL_PORT), "D"(u)
                   : "memory");
  return u->reply;
}

_Noreturn void guest_assert_fail(const char* expr, const char* file, uint32_t line,
                                 uint64_t a, uint64_t b) {
  struct harness_ucall* u = &ctx()->ucall;
  copy_str(u->expr, sizeof u->expr, expr);
  copy_str(u->file, sizeof u->file, file);
  u->line = line;
  for (;;) ucall(HARNESS_UC_ASSERT, a, b, 0, 0);
}

/* Called by exception_common with the stub's frame. */
_Noreturn void guest_exception(const uint64_t* frame) {
  uint64_t cr2;
  __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
  for (;;) ucall(HARNESS_UC_EXCEPTION, frame[0], frame[2], frame[1], cr2);
}

/* Reads every statistic in a fixed order: HARNESS_SNAPSHOT_CPUIDS CPUIDs. */
static void read_leaves(const struct harness_ctx* c, struct harness_leaves* l) {
  uint32_t r[4];
  cpuid(0x4FFFFFF1, 0, r);
  l->total64 = ((uint64_t)r[1] << 32) | r[2];
  cpuid(c->leaf_total_exits, 0, r);
  l->total32 = r[0];
  cpuid(c->leaf_total_cycles, 0, r);
  l->total_cycles = ((uint64_t)r[1] << 32) | r[2];
  for (int t = 0; t < HARNESS_NR_TRACKED; t++) {
    cpuid(0x4FFFFFF2, kTrackedReasons[t], r);
    l->reason64[t] = ((uint64_t)r[1] << 32) | r[2];
  }
  for (int t = 0; t < HARNESS_NR_TRACKED; t++) {
    cpuid(c->leaf_reason_exits, kTrackedReasons[t], r);
    l->reason32[t] = r[0];
    l->reason_edx[t] = r[3];
  }
  for (int t = 0; t < HARNESS_NR_TRACKED; t++) {
    cpuid(c->leaf_reason_cycles, kTrackedReasons[t], r);
    l->reason_cycles[t] = ((uint64_t)r[1] << 32) | r[2];
  }
}

/* Parks every vCPU; vCPU 0 then takes the VM snapshot the host compares with
 * KVM's stats, repeating it while the host reports stray exits in it. */
static void sync_and_snapshot(struct harness_ctx* c, uint64_t phase) {
  ucall(HARNESS_UC_SYNC, phase, 0, 0, 0);
  if (c->vcpu_id != 0) return;
  do {
    if (c->leaves) read_leaves(c, &c->vm);
  } while (ucall(HARNESS_UC_SNAP, phase, 0, 0, 0) == HARNESS_REPLY_RETRY);
}

void guest_main(struct harness_ctx* c) {
  GUEST_ASSERT(c == ctx());
  cpuid(0x4FFFFFF0, 0, c->discovery);
  int patched = c->discovery[0] == HARNESS_SIGNATURE && c->discovery[1] == HARNESS_ABI_VERSION;
  if (c->leaves_mode == HARNESS_LEAVES_REQUIRED) GUEST_ASSERT(patched);
  c->leaves = c->leaves_mode == HARNESS_LEAVES_COURSE ||
              (patched && c->leaves_mode != HARNESS_LEAVES_NEVER);
  prepare_payload(c);
  sync_and_snapshot(c, 0);
  if (c->leaves) read_leaves(c, &c->before);
  uint64_t t0 = rdtsc();
  c->ops = run_payload_loop(c);
  c->tsc_cycles = rdtsc() - t0;
  if (c->leaves) read_leaves(c, &c->after);
  sync_and_snapshot(c, 1);
  for (;;) ucall(HARNESS_UC_DONE, c->ops, 0, 0, 0);
}
