#!/usr/bin/env bash
# hostile-run, mutant-check and panic-drill refuse bad arguments with exit 2
# before building or booting anything (ctest label unit, < 1 s). Catches: a
# typo'd sanitizer or profile silently running the default, a missing kernel
# or mutant file discovered only after a 10-minute build.
set -u
here=$(cd "$(dirname "$0")" && pwd)
fail=0
expect() {  # expect RC DESCRIPTION CMD...
  local want=$1 what=$2; shift 2
  "$@" > /tmp/usage_test.$$ 2>&1
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL: $what: exit $rc, want $want"; sed 's/^/    /' /tmp/usage_test.$$; fail=1
  else
    echo "ok: $what"
  fi
}
expect 2 "unknown sanitizer"      "$here/hostile-run" --sanitizer asan
expect 2 "unknown profile"        "$here/hostile-run" --profile huge
expect 2 "missing kernel file"    "$here/hostile-run" --kernel /nonexistent/bzImage
expect 2 "missing mutant file"    "$here/hostile-run" --mutant /nonexistent.patch
expect 2 "unknown argument"       "$here/hostile-run" --frobnicate
expect 2 "refuses / as results"   "$here/hostile-run" --results /
expect 0 "help"                   "$here/hostile-run" --help
expect 2 "mutant-check no args"   "$here/mutant-check"
expect 2 "mutant-check bad class" "$here/mutant-check" --mutant "$here/mutants/04b-reason-bound-off-by-one-no-clamp.patch" --sanitizer kasan
expect 2 "check-fragment no args" "$here/check-fragment"
rm -f /tmp/usage_test.$$
exit $fail
