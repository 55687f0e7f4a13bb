#!/usr/bin/env bash
# L1 backend for Intel VMX under Bochs (`ci/nested-run --vmx`).
# Same contract as ci/lib/run-qemu.sh (read its header): same arguments, same
# return codes, same results layout in --share. Bochs has no 9p, so this
# backend passes ci.results=tar:/dev/DISK to L1's init and unpacks the disk
# into --share after Bochs ends.
#
# Placeholder until the Bochs engineer's ci/bochs-* scripts land: it fails
# the L1 stage by name instead of pretending.
if [ -x "$(dirname "$0")/../bochs-run" ]; then
  exec "$(dirname "$0")/../bochs-run" "$@"
fi
echo "run-bochs: the Bochs (VMX) backend is not implemented yet (ci/bochs-run missing)" >&2
exit 3
