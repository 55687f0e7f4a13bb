#!/usr/bin/env bash
# The exit catalogue is the only list of exit types. The programs that drive
# its rows from a guest's user space (exit_stress, the guest benchmark) must
# not name a row: they act on a row's UserTrigger, so that a new row needs no
# code there. CPUID is the exception: besides being a row it is the
# instrument the checks read the counters with (Exact.cpuid, torn reads).
# Usage: rows_only_here_test.sh SOURCE_ROOT
set -euo pipefail
root=${1:?usage: rows_only_here_test.sh SOURCE_ROOT}
files=("$root"/stress/guest/*.cc "$root"/stress/guest/*.h "$root"/bench/guest_exit_benchmark.cc)
hits=$(grep -nE '\b(ExitKind|GuestExit)::k[A-Z][A-Za-z]*' "${files[@]}" |
       grep -v '_test\.cc:' | grep -vE '::kCpuid\b' || true)
if [ -n "$hits" ]; then
  echo "FAIL: these lines name a catalogue row; act on its UserTrigger instead:"
  echo "$hits"
  exit 1
fi
echo "PASS: no user-space driver names a catalogue row (${#files[@]} files)"
