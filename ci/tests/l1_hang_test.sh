#!/usr/bin/env bash
# Nested test (label `nested`): an L1 that goes silent after boot (its init
# stops the heartbeat, --debug-hang-l1) must end the run within the
# heartbeat limit, not at the L1 timeout: exit 3, the first stage named as
# not reached because L1 stopped responding, and L1's vCPU registers saved
# from the QEMU monitor. Catches: a heartbeat check that never fires, one
# that fires on a live L1, and a wedged host told as a bare "exit 125".
#
# usage: l1_hang_test.sh BUILD_DIR [extra nested-run args]
set -u
build=$1; shift
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$build/results-l1-hang
loss=20
t0=$(date +%s)
CI_L1_HEARTBEAT_LOSS=$loss "$repo/ci/nested-run" --build-dir "$build" --results "$out" \
  --debug-hang-l1 --l2-vcpus 2 --skip bench --timeout-l1 900 "$@" > "$build/l1_hang_test.out" 2>&1
rc=$?
secs=$(( $(date +%s) - t0 ))
cat "$build/l1_hang_test.out"
fails=0
fail() { echo "l1_hang_test: FAIL: $*"; fails=$((fails + 1)); }
[ $rc -eq 3 ] || fail "exit $rc, expected 3 (infrastructure)"
grep -q 'not reached: L1 stopped responding' "$build/l1_hang_test.out" ||
  fail "the verdict does not say L1 stopped responding"
grep -q "no heartbeat for ${loss}s" "$build/l1_hang_test.out" ||
  fail "the loss was not shown as it happened"
grep -q '^RIP=' "$out/l1/logs/l1-hang.txt" 2>/dev/null ||
  fail "no vCPU registers in l1/logs/l1-hang.txt"
grep -q 'heartbeat stopped' "$out/l1/logs/l1-hang.txt" 2>/dev/null ||
  fail "the L1 console tail is not in l1/logs/l1-hang.txt"
# It must end at the heartbeat limit: boot, the limit and a margin, far
# below the 900 s L1 timeout.
l1_secs=$(cut -d' ' -f2 "$out/l1.end" 2>/dev/null || echo 9999)
awk -v s="$l1_secs" 'BEGIN { exit !(s < 300) }' || fail "L1 ran ${l1_secs}s: the heartbeat check did not end it"
echo "l1_hang_test: run took ${secs}s (L1 ${l1_secs}s), $fails failure(s)"
[ $fails -eq 0 ]
