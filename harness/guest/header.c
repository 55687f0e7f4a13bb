/* The image header the host reads at the load address (guest_abi.h). */
#include "guest.h"

extern char harness_entry[], harness_irq[];
#define X(n) extern char harness_exc##n[];
X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25)
X(26) X(27) X(28) X(29) X(30) X(31)
#undef X

__attribute__((section(".header"), used))
const struct harness_image_header harness_header = {
    .magic = HARNESS_IMAGE_MAGIC,
    .entry = (uint64_t)harness_entry,
    .exception_stubs =
        {
#define X(n) (uint64_t)harness_exc##n,
            X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)
            X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
            X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31)
#undef X
        },
    .irq_stub = (uint64_t)harness_irq,
};
