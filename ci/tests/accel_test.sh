#!/usr/bin/env bash
# Unit test of ci/lib/accel.sh (label `unit`): the accelerator choice on fake
# /proc/cpuinfo and /sys/module trees. Catches: picking kvm on a host whose
# KVM cannot nest (this build machine: /dev/kvm without vmx/svm), ignoring
# nested=0, or never picking kvm where nesting works.
set -u
. "$(dirname "$0")/../lib/accel.sh"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fails=0
expect() {  # expect WANTED FLAGS NESTED(vendor:value|none) KVMDEV RESULT
  local want=$1 flags=$2 nested=$3 dev=$4 result=$5 got
  rm -rf "$t/sys"; mkdir -p "$t/sys"
  printf 'processor\t: 0\nflags\t\t: %s\n' "$flags" > "$t/cpuinfo"
  if [ "$nested" != none ]; then
    mkdir -p "$t/sys/kvm_${nested%%:*}/parameters"
    echo "${nested#*:}" > "$t/sys/kvm_${nested%%:*}/parameters/nested"
  fi
  got=$(CI_CPUINFO=$t/cpuinfo CI_SYSMODULE=$t/sys CI_KVM_DEV=$dev ci_pick_accel "$want" 2>/dev/null)
  if [ "$got" != "$result" ]; then
    echo "FAIL: want=$want flags='$flags' nested=$nested dev=$dev: got '$got', expected '$result'"
    fails=$((fails + 1))
  fi
}
# /dev/null stands in for a usable /dev/kvm (a read/writable char device).
expect auto "fpu sse2 hypervisor" none /dev/null tcg            # this machine
expect auto "fpu vmx sse2" intel:Y /dev/null kvm
expect auto "fpu vmx sse2" intel:N /dev/null tcg
expect auto "fpu svm sse2" amd:1 /dev/null kvm
expect auto "fpu svm sse2" amd:0 /dev/null tcg
expect auto "fpu svm sse2" none /dev/null tcg                   # kvm_amd not loaded
expect auto "fpu vmx" intel:Y "$t/no-such-kvm" tcg
expect auto "fpu svmx" intel:Y /dev/null tcg                    # word match, not substring
expect tcg "fpu vmx" intel:Y /dev/null tcg
expect kvm "fpu sse2" none /dev/null kvm                        # forced (with a warning)
if CI_CPUINFO=$t/cpuinfo ci_pick_accel bogus >/dev/null 2>&1; then
  echo "FAIL: ci_pick_accel accepted 'bogus'"; fails=$((fails + 1))
fi
echo "accel_test: $fails failure(s)"
[ $fails -eq 0 ]
