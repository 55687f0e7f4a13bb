#!/usr/bin/env bash
# Nested test (label `nested`): the positive controls of the course rubric.
# The reference kernel, narrowed by kvm.exit_stats_leaves to what a student
# submits (the course leaves alone, or assignment 2's totals alone), must
# pass exit_stress under the course rubric, and the verdict must say what
# the suite found. Catches: a check that still needs the project's own
# discovery or 64-bit leaves (every real submission would then fail or skip),
# and leaf finding that mistakes a correct course patch for an unpatched host.
# The L1 harness runs too, under the same rubric: without the discovery leaf
# it must find the course leaves by how they move and pass its exact checks
# on them (total = KVM's `exits`, per reason = the guest's deliberate exits).
#
# With `fixture` it builds and runs kernel-patch/variants/course-only (a
# correct course-style patch that is not ours) instead (on demand: a build).
#
# With `vmx` the course shape runs on the Intel path (ci/nested-run --vmx,
# Bochs): the harness in L1, then exit_stress in a 2-vCPU L2 Linux on VMX,
# both under the course rubric.
#
# usage: course_control_test.sh BUILD_DIR course|a2|host-wide|fixture|vmx [extra nested-run args]
set -u
build=$1 shape=$2; shift 2
repo=$(cd "$(dirname "$0")/../.." && pwd)
case $shape in
  course) append="kvm.exit_stats_leaves=course" level=3 ;;
  a2) append="kvm.exit_stats_leaves=a2" level=2 ;;
  host-wide) append="kvm.exit_stats_leaves=course kvm.exit_stats_host_wide=1" level=3 ;;
  fixture) append= level=3 ;;
  vmx) append="kvm.exit_stats_leaves=course" level=3 ;;
  *) echo "course_control_test: shape must be course, a2, host-wide, fixture or vmx" >&2; exit 2 ;;
esac
want="course leaves only (profile sjsu, assignment $level)"
# The kernel ci.nested_run built (same series), so no second build.
kernel=$(cat "$build/results/kernel.path" 2>/dev/null)
[ -f "$kernel" ] || kernel=$repo/build/kernel/reference/arch/x86/boot/bzImage
kargs=()
[ -f "$kernel" ] && kargs=(--kernel "$kernel")
[ "$shape" = fixture ] && kargs=(--patch "$repo/kernel-patch/variants/course-only")
[ -n "$append" ] && kargs+=(--l1-append "$append")
out=$build/results-course-$shape
# Two vCPUs contend already; more repeats than the default because the
# nested emulator resets L2 now and then (README, "L2 resets").
path=(--l2-vcpus 2 --l2-retries 4)
[ "$shape" = vmx ] && path=(--vmx)
"$repo/ci/nested-run" --build-dir "$build" --results "$out" "${kargs[@]}" --rubric course \
  --skip bench "${path[@]}" "$@" > "$out.log" 2>&1
rc=$?
cat "$out.log"
fails=0
fail() { echo "course_control_test: FAIL: $*"; fails=$((fails + 1)); }
[ $rc -eq 0 ] || fail "exit $rc, expected 0 (the course rubric passes a correct course-only patch)"
harness_log=$out/l1/logs/harness.log
[ "$shape" = vmx ] && harness_log=$out/l1/bochs/l1/harness.log
grep -q "VERDICT: PASS (exit 0) - patched: $want, rubric course" "$out.log" ||
  fail "the verdict does not say 'patched: $want, rubric course'"
grep -q 'leaves: .*0x4FFFFFF0: absent, extension checks not applicable' "$out.log" ||
  fail "the verdict does not say the extension leaves are absent and not applicable"
if [ "$shape" = vmx ]; then
  grep -qE '^L2 2-vCPU +PASS' "$out.log" || fail "no passing 'L2 2-vCPU' row: exit_stress did not run on VMX"
fi
grep -q "harness_test: no discovery leaf; .*course leaves count (assignment $level)\|harness_test: no discovery leaf; .*per-reason does not (assignment $level)" \
  "$harness_log" 2>/dev/null ||
  fail "harness_test did not find the course leaves at assignment $level (see $harness_log)"
grep -q '\[       OK \] Catalogue/ExitTest.PatchedTotalsEqualKvmExits/cpuid_4vcpu' "$harness_log" 2>/dev/null ||
  fail "harness_test did not pass PatchedTotalsEqualKvmExits/cpuid_4vcpu on the course leaves"
echo "course_control_test: $shape: $fails failure(s)"
[ $fails -eq 0 ]
