#!/usr/bin/env bash
# Unit test of the Bochs backend's command line (label `unit`): what
# ci/lib/run-bochs.sh hands to ci/bochs/run-l1 for the ring-0 boot. Catches:
# a --l1-append word silently dropped on the VMX path (it once forwarded only
# kvm.* and kvm_intel.* words), QEMU-only words leaking into Bochs, or the
# rubric and paging mode no longer reaching run-l1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
# A stand-in runner: records its arguments, leaves the files run-l1 would.
cat > "$t/fake-run-l1" <<'FAKE'
#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_ARGS"
while [ $# -gt 0 ]; do [ "$1" = --results ] && res=$2; shift; done
mkdir -p "$res/logs"; : > "$res/logs/console.log"; printf 'boot\tPASS\t1.0\n' > "$res/stages.tsv"
FAKE
chmod +x "$t/fake-run-l1"
export FAKE_ARGS=$t/args CI_BOCHS_RUNNER=$t/fake-run-l1
"$here/../lib/run-bochs.sh" --kernel /dev/null --share "$t/share" --console "$t/console.log" \
  --append "console=ttyS0 panic=-1 tsc=reliable kvm_amd.npt=0 ci.rubric=course ci.harness=1 kvm.exit_stats_seed=7 kvm_intel.ept=0 nmi_watchdog=0" \
  --user-append "kvm.exit_stats_seed=7 nmi_watchdog=0 softlockup_all_cpu_backtrace=1" 3>/dev/null 2>"$t/err"
rc=$?
fails=0
fail() { echo "FAIL: $*"; sed 's/^/  | /' "$t/args" "$t/err"; fails=$((fails + 1)); }
[ $rc -eq 0 ] || fail "run-bochs.sh exited $rc"
# The --append value run-l1 got, one line after the --append word.
got=$(awk 'p { print; exit } $0 == "--append" { p = 1 }' "$t/args")
for w in kvm.exit_stats_seed=7 nmi_watchdog=0 softlockup_all_cpu_backtrace=1; do
  [[ " $got " == *" $w "* ]] || fail "run-l1 --append lacks the user's word $w (got '$got')"
done
[ "$(grep -o 'kvm.exit_stats_seed=7' <<< "$got" | wc -l)" -eq 1 ] || fail "a word given twice reached run-l1 twice: '$got'"
for w in console=ttyS0 tsc=reliable kvm_amd.npt=0 ci.rubric=course ci.harness=1 panic=-1; do
  [[ " $got " == *" $w "* ]] && fail "QEMU's or l1-init's word $w reached run-l1: '$got'"
done
grep -qx 'HARNESS_RUBRIC=course' "$t/args" || fail "ci.rubric=course did not become HARNESS_RUBRIC"
[ "$(awk 'p { print; exit } $0 == "--ept" { p = 1 }' "$t/args")" = 0 ] || fail "kvm_intel.ept=0 did not become --ept 0"
[ $fails -eq 0 ] && echo "bochs_append_test: ok"
exit $((fails > 0))
