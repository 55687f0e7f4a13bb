#!/usr/bin/env bash
# Nested test (label `nested`): an L2 that never finishes must fail the run
# within its timeout, with exit 3, the stage named and the L2 console's tail
# shown. Catches: a timeout that does not fire, a hang reported as a test
# failure or a pass, and a verdict that does not say where it hung. With
# one repeat allowed it also proves the repeat path: the hung boot is
# repeated once, kept as l2-2vcpu.lost1, and both losses are named.
#
# usage: hang_test.sh BUILD_DIR [extra nested-run args]
set -u
build=$1; shift
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$build/results-hang
limit=45
t0=$(date +%s)
"$repo/ci/nested-run" --build-dir "$build" --results "$out" --debug-hang-l2 \
  --l2-vcpus 2 --skip harness,bench --timeout-l2 $limit --l2-retries 1 "$@" > "$build/hang_test.out" 2>&1
rc=$?
secs=$(( $(date +%s) - t0 ))
cat "$build/hang_test.out"
fails=0
fail() { echo "hang_test: FAIL: $*"; fails=$((fails + 1)); }
[ $rc -eq 3 ] || fail "exit $rc, expected 3 (infrastructure)"
grep -q 'INFRASTRUCTURE FAILURE in: L2 2-vCPU' "$build/hang_test.out" || fail "verdict does not name L2 2-vCPU"
grep -q "timed out after ${limit}s" "$build/hang_test.out" || fail "verdict does not say it timed out"
grep -q 'hanging on purpose' "$build/hang_test.out" || fail "the L2 console tail is not shown"
[ -s "$out/l1/logs/l2-2vcpu.console.log" ] || fail "the L2 console log was not kept"
grep -q 'every attempt of 2 lost' "$build/hang_test.out" || fail "the verdict does not say both attempts were lost"
[ -s "$out/l1/logs/l2-2vcpu.lost1.console.log" ] || fail "the first (lost) attempt's console was not kept"
grep -q 'attempt lost' "$build/hang_test.out" || fail "the repeat was not shown as it happened"
echo "hang_test: run took ${secs}s, $fails failure(s)"
[ $fails -eq 0 ]
