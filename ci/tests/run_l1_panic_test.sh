#!/usr/bin/env bash
# Unit test of ci/bochs/run-l1's judgement of an L1 that panicked (label
# `unit`), with stand-ins for Bochs and the ISO: the console is a real one
# (mutant 09 reading the reason table out of bounds in the patch's CPUID
# handler, oops=panic). Catches: a patch's oops judged as infrastructure
# (the matrix then repeats a 25-minute hang), a panic outside the patch's
# code blamed on the patch, or a step that passed before the panic failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cat > "$t/fake-build-iso" <<'FAKE'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
: > "$out/l1.iso"; echo "fake-build-iso: 1M ISO" >&2; echo "$out/l1.iso"
FAKE
# Boot: the console given, one host second per line, and the state boot-l1
# writes after stopping Bochs at the panic line.
cat > "$t/fake-boot-l1" <<'FAKE'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do [ "$1" = --logs ] && logs=$2; shift; done
cp "$FAKE_CONSOLE" "$logs/console.log"; : > "$logs/com2.raw"
awk '{ printf "%d.00\t%s\n", 100 + NR, $0 }' "$FAKE_CONSOLE" > "$logs/console.timed"
printf 'rc=143\npoweroff=0\nstart=100.00\nend=200.00\nqueued=0\nstate=%s\n' \
  "L1 panicked, Bochs stopped: Kernel panic - not syncing: Fatal exception" > "$logs/bochs.state"
exit 143
FAKE
chmod +x "$t/fake-build-iso" "$t/fake-boot-l1"
export CI_BOCHS_BOOT=$t/fake-boot-l1 CI_BOCHS_BUILD_ISO=$t/fake-build-iso
fails=0
# run CONSOLE WANT_RC: run-l1 on that console; its stages.tsv in $t/res.
run() {
  rm -rf "$t/res"
  FAKE_CONSOLE=$1 "$here/../bochs/run-l1" --kernel "$1" --results "$t/res" --vcpus 2 \
    --skip harness --vmxcap /bin/true --exitdump /bin/true > "$t/out" 2>&1
  local rc=$?
  [ $rc = "$2" ] || { echo "FAIL: run-l1 on $(basename "$1"): exit $rc, expected $2"; fails=$((fails + 1)); }
}
row() { awk -F'\t' -v s="$1" '$1 == s { print $2 "\t" $4 }' "$t/res/stages.tsv"; }
expect_row() {  # STAGE STATUS NOTE-SUBSTRING
  local got; got=$(row "$1")
  [[ ${got%%$'\t'*} == "$2" && ${got#*$'\t'} == *"$3"* ]] ||
    { echo "FAIL: stage $1: got '$got', expected $2 with '$3'"; sed 's/^/  | /' "$t/res/stages.tsv"; fails=$((fails + 1)); }
}

# The oops is in the patch's code: the patch's finding, named on its step.
run "$here/testdata/run-l1-oops-console.log" 1
expect_row vmxcap PASS "lost with L1's panic"
expect_row exitdump FAIL "host oops (bug class): BUG: unable to handle page fault"
expect_row results SKIP "L1 panicked in step exitdump"
expect_row kernel-log FAIL "host oops (bug class)"
grep -q 'failures="2"' "$t/res/junit/run-l1.xml" || { echo "FAIL: run-l1.xml does not count 2 failures"; fails=$((fails + 1)); }

# The same panic in code that is not the patch's: the run is lost, not judged.
sed 's/kvm_exit_stats_cpuid+/do_syscall_64+/' "$here/testdata/run-l1-oops-console.log" > "$t/elsewhere.log"
run "$t/elsewhere.log" 3
expect_row exitdump INFRA "L1 panicked outside the patch's code"
expect_row kernel-log PASS "outside the patch's code"

[ $fails = 0 ] && echo "run_l1_panic_test: ok"
exit $((fails > 0))
