#!/usr/bin/env bash
# Unit test of ci/nested-run's argument handling (label `unit`): bad options
# exit 2 before any stage runs, and a results folder it did not make is never
# emptied. Catches: a typo in --results deleting someone's files, or a bad
# option starting a 10-minute run.
set -u
nr=$(cd "$(dirname "$0")/.." && pwd)/nested-run
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fails=0
expect_rc() {  # expect_rc RC ARGS...
  local want=$1 rc; shift
  "$nr" "$@" > "$t/out" 2>&1; rc=$?
  if [ $rc -ne "$want" ]; then
    echo "FAIL: nested-run $*: exit $rc, expected $want"; sed 's/^/  | /' "$t/out"
    fails=$((fails + 1))
  fi
}
expect_rc 0 --help
grep -q -- '--results DIR' "$t/out" || { echo "FAIL: --help does not document --results"; fails=$((fails + 1)); }
expect_rc 2 --no-such-option
expect_rc 2 --accel hvf
expect_rc 2 --l2-vcpus 2,x
expect_rc 2 --l1-vcpus 0
expect_rc 2 --abi s24
expect_rc 2 --skip everything
expect_rc 2 --l1-append "kvm.x=1'; reboot"
expect_rc 2 --sanitizer msan
expect_rc 2 --hostile --vmx
# What the Bochs backend cannot honour is refused before anything is built.
expect_rc 2 --vmx --l1-vcpus 4
expect_rc 2 --vmx --accel tcg
expect_rc 2 --vmx --l1-npt off
expect_rc 2 --rubric lenient
expect_rc 2 --l2-retries -1
expect_rc 2 --soak many
expect_rc 2 --l2-args "--x;reboot"
expect_rc 2 --patch "$t/no-such-dir"
expect_rc 2 --results
# --tree: not a kernel tree; or beside another name for the kernel.
expect_rc 2 --tree "$t"
mkdir -p "$t/linux/arch/x86/kvm"; : > "$t/linux/Makefile"; : > "$t/linux/arch/x86/kvm/x86.c"
expect_rc 2 --tree "$t/linux" --base 6.1
expect_rc 2 --tree "$t/linux" --kernel /boot/vmlinuz
mkdir -p "$t/precious"; echo keep > "$t/precious/file"
expect_rc 2 --results "$t/precious"
[ -f "$t/precious/file" ] || { echo "FAIL: a foreign results folder was emptied"; fails=$((fails + 1)); }
echo "usage_test: $fails failure(s)"
[ $fails -eq 0 ]
