#!/usr/bin/env bash
# Unit test of the L1 backends' option handling (label `unit`): each option
# ci/nested-run can pass is honoured or refused with exit 2 and a reason,
# never dropped. ci/lib/run-qemu.sh refuses before it starts QEMU, and
# ci/lib/run-bochs.sh runs a stand-in for ci/bochs/run-l1, so no emulator
# runs. Catches: a backend that ignores an option (run-bochs.sh once
# clamped --vcpus 4 to 2 and ignored --verbose, --accel and ci.harness=0).
set -u
here=$(cd "$(dirname "$0")" && pwd)
lib=$here/../lib
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cat > "$t/fake-run-l1" <<'FAKE'
#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_ARGS"
while [ $# -gt 0 ]; do [ "$1" = --results ] && res=$2; shift; done
mkdir -p "$res/logs"; echo "fake console line" > "$res/logs/console.log"
printf 'boot\tPASS\t1.0\n' > "$res/stages.tsv"
FAKE
chmod +x "$t/fake-run-l1"
export FAKE_ARGS=$t/args CI_BOCHS_RUNNER=$t/fake-run-l1
fails=0
fail() { echo "FAIL: $*"; sed 's/^/  | /' "$t/err" 2>/dev/null; fails=$((fails + 1)); }
base=(--kernel /dev/null --initrd /dev/null --share "$t/share" --console "$t/console.log"
      --timeout 60)
# expect BACKEND RC REGEX ARGS...: exit RC, and stderr matches REGEX.
expect() {
  local backend=$1 want=$2 re=$3 rc; shift 3
  rm -f "$t/args"
  "$lib/$backend" "${base[@]}" "$@" 3>"$t/fd3" 2>"$t/err"; rc=$?
  [ "$rc" -eq "$want" ] || { fail "$backend $*: exit $rc, expected $want"; return; }
  [ -z "$re" ] || grep -qE -- "$re" "$t/err" || fail "$backend $*: no message matching '$re'"
}
# --- QEMU: options only the Bochs backend uses are refused, by name.
expect run-qemu.sh 2 '^run-qemu: --build-dir' --build-dir /tmp
expect run-qemu.sh 2 '^run-qemu: --user-append' --user-append "nmi_watchdog=0"
expect run-qemu.sh 2 '^run-qemu: bad --accel' --accel hvf
expect run-qemu.sh 2 '^run-qemu: unknown argument --bogus' --bogus
# --- Bochs: what it cannot honour is refused, by name.
expect run-bochs.sh 2 '^run-bochs: --vcpus 4' --vcpus 4 --append "ci.l2_vcpus=2"
expect run-bochs.sh 2 '^run-bochs: --accel' --accel tcg
expect run-bochs.sh 2 '^run-bochs: --machine' --machine pc
expect run-bochs.sh 2 '^run-bochs: ci.bench=1' --append "ci.bench=1"
expect run-bochs.sh 2 '^run-bochs: ci.hostile=1' --append "ci.hostile=1"
expect run-bochs.sh 2 '^run-bochs: ci.results=9p' --append "ci.results=9p"
expect run-bochs.sh 2 '^run-bochs: unknown argument --bogus' --bogus
# ... and what it can, it forwards: ci.harness=0 as run-l1's --skip harness,
# --vcpus 2 and --mem as they are, --verbose as the console on fd 3.
expect run-bochs.sh 0 '' --vcpus 2 --mem 768 --verbose --append "ci.harness=0 ci.bench=0 ci.results=com2"
if [ -f "$t/args" ]; then
  arg_after() { awk -v o="$1" 'p { print; exit } $0 == o { p = 1 }' "$t/args"; }
  [ "$(arg_after --skip)" = harness ] || fail "ci.harness=0 did not become run-l1 --skip harness"
  [ "$(arg_after --vcpus)" = 2 ] || fail "--vcpus 2 did not reach run-l1"
  [ "$(arg_after --mem)" = 768 ] || fail "--mem 768 did not reach run-l1"
  grep -q 'fake console line' "$t/fd3" || fail "--verbose did not show the console on fd 3"
else
  fail "run-bochs.sh did not call run-l1"
fi
expect run-bochs.sh 0 '' --append "ci.harness=1"
[ -f "$t/args" ] && grep -qx -- --skip "$t/args" && fail "ci.harness=1 skipped the harness"
[ $fails -eq 0 ] && echo "backend_options_test: ok"
exit $((fails > 0))
