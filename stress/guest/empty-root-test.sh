#!/bin/sh
# empty-root-test.sh BINARY: a static guest binary (exit_stress-static,
# guest_exit_benchmark-static) must run in a root that holds nothing but
# itself (no loader, libc, libstdc++, libtbb, libbenchmark, /proc or /sys),
# as in a student's guest whose libraries are older than ours. Checks that
# the file has no ELF interpreter and no dynamic section, then runs it in a
# chroot as the table below says: exit_stress's --help, and a real run that
# on this unpatched host must reach the "unpatched host" verdict (exit 77);
# the benchmark's list and a brief real CPUID run. Needs root for chroot;
# without it the test is skipped (status 77 with the reason).
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "empty-root-test: $*" >&2; exit 1; }

# name in the root | exit status | text the output must hold | arguments
case ${bin##*/} in
  exit_stress*) runs='exit_stress|0|--exits LIST|--help
exit_stress|77|unpatched host|--iterations 100 --torn-seconds 0.2' ;;
  guest_exit_benchmark*) runs='guest_exit_benchmark|0|BM_GuestExit/cpuid/vcpus:2|--benchmark_list_tests
guest_exit_benchmark|0|BM_GuestExit/cpuid/vcpus:1|--benchmark_filter=BM_GuestExit/cpuid/vcpus:1 --benchmark_min_time=0.01' ;;
  *) fail "no runs known for ${bin##*/}" ;;
esac

[ -x "$bin" ] || fail "$bin is not built"
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
  fail "$bin asks for an ELF interpreter: it is not static"
fi
readelf -d "$bin" | grep -q 'no dynamic section' || fail "$bin has a dynamic section: it is not static"
if [ "$(id -u)" -ne 0 ]; then
  echo "empty-root-test: SKIP: chroot needs root (the file is static: checked)"
  exit 77
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/empty-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
name=${runs%%|*}
cp "$bin" "$root/$name"
echo "empty-root-test: $(ls -A "$root" | tr '\n' ' ')is all the root holds"
printf '%s\n' "$runs" | while IFS='|' read -r name status text args; do
  # $args unquoted: split into words on purpose.
  # shellcheck disable=SC2086
  out=$("$here/expect-status.sh" "$status" "$text" chroot "$root" "/$name" $args 2>&1) || {
    printf '%s\n' "$out"
    fail "/$name $args in the empty root: expected exit $status and \"$text\""
  }
  echo "empty-root-test: /$name $args: exit $status, \"$text\""
done || exit 1
echo "empty-root-test: PASS"
