#!/usr/bin/env bash
# L1 backend for Intel VMX under Bochs (`ci/nested-run --vmx`).
#
# Same contract as ci/lib/run-qemu.sh (read its header). Bochs has no virtio
# and no 9p, so L1 runs twice, each time bringing its results back over com2:
#  1. ci/bochs/run-l1: the ring-0 checks (the /dev/kvm harness suite and the
#     VMX reports) from its own image; its table lands in SHARE/bochs/
#     stages.tsv and the verdict shows those rows as "VMX <stage>". Of
#     --append it carries the module parameters (kvm.*, kvm_intel.*;
#     kvm_intel.ept=0 as run-l1's --ept 0, shadow paging) and ci.rubric=R as
#     HARNESS_RUBRIC; --user-append (nested-run's --l1-append) goes whole,
#     so a kernel parameter the user asked for is never dropped.
#  2. When --append names L2 shapes (ci.l2_vcpus=...) and --initrd is the
#     nested runner's L1 image: that image, with its own init
#     (ci/images/l1-init, ci.results=com2, no harness or bench stage), so
#     exit_stress runs in an L2 Linux on Intel VMX and its files land in
#     SHARE exactly as on the QEMU path (stages/, l2-Nvcpu/, logs/).
#     Its console is appended to CONSOLE, so the kernel-log scan sees both.
# Every option is honoured or refused (exit 2, saying why), never dropped:
# --vcpus above 2, --accel, --machine, and the --append words this path has
# no stage for (ci.bench=1, ci.hostile=1, ci.results other than com2) are
# refused; ci.harness=0 becomes run-l1's --skip harness; --verbose shows
# both boots' consoles live. (ctest ci.bochs_append, ci.backend_options.)
set -uo pipefail
# One brace group: bash reads it whole before running it, so editing this
# file during a run cannot break that run.
{
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/common.sh"
# shellcheck disable=SC2034  # read by common.sh\'s log and die
ci_name=run-bochs

kernel= initrd= share= console= vcpus=1 mem=1024 timeout=1500 build=$repo/build append= user_append= verbose=0
while [ $# -gt 0 ]; do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --share) share=$2; shift 2 ;;
    --console) console=$2; shift 2 ;;
    --vcpus) vcpus=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --user-append) user_append=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --accel) die 2 "--accel $2: Bochs emulates the CPU itself, there is no accelerator to pick (QEMU's option)" ;;
    --machine) die 2 "--machine $2: Bochs has one machine, ci/bochs/bochsrc.in (QEMU's option)" ;;
    --verbose) verbose=1; shift ;;
    *) die 2 "unknown argument $1" ;;
  esac
done

# CI_BOCHS_RUNNER: a stand-in for run-l1 (ci/tests/bochs_append_test.sh).
runner=${CI_BOCHS_RUNNER:-$repo/ci/bochs/run-l1}
if [ ! -x "$runner" ]; then
  die 3 "the Bochs (VMX) backend is missing ($runner)"
fi
mkdir -p "$share/stages" "$share/logs"
# Bochs emulates every CPU on one host thread: more than 2 only slows it.
[ "$vcpus" -gt 2 ] &&
  die 2 "--vcpus $vcpus: Bochs boots L1 with 2 CPUs at most (every emulated CPU shares one host thread); ci/nested-run --vmx uses 2"
params= rubric= l2_shapes= l1_words= ept=1 skip_harness=0
for w in $append; do
  case $w in
    # Stages this path does not have: refused, not dropped.
    ci.bench=1) die 2 "ci.bench=1: the VMX path has no bench stage (ci/bochs/run-l1 --bench runs ring0_exit_benchmark); pass ci.bench=0" ;;
    ci.hostile=1) die 2 "ci.hostile=1: the VMX path has no hostile stage here (ci/bochs/run-l1 --hostile-filter runs one)" ;;
    ci.results=com2) ;;
    ci.results=*) die 2 "$w: under Bochs results leave on com2 only (no virtio: no 9p, no disk)" ;;
    ci.harness=0) skip_harness=1 ;;
    # The paging mode is run-l1's own option: it picks exitdump's mode and
    # the harness checks that hold under shadow paging.
    kvm_intel.ept=*) case ${w#*=} in 0|n|N) ept=0 ;; *) ept=1 ;; esac ;;
    kvm.*|kvm_intel.*) [[ " $user_append " == *" $w "* ]] || params+="${params:+ }$w" ;;
    ci.rubric=*) rubric=${w#ci.rubric=} ;;
    ci.l2_vcpus=*) l2_shapes=${w#ci.l2_vcpus=} ;;
  esac
  # What the second boot's l1-init reads; the QEMU-only words stay out
  # (console: build-iso sets its own; tsc=reliable and kvm_amd.* are TCG's).
  case $w in
    console=*|tsc=*|kvm_amd.*|ci.results=*|ci.harness=*|ci.bench=*) ;;
    *) l1_words+="${l1_words:+ }$w" ;;
  esac
done
params+="${user_append:+${params:+ }$user_append}"
extra=()
[ -n "$params" ] && extra+=(--append "$params")
[ -n "$rubric" ] && extra+=(--harness-env "HARNESS_RUBRIC=$rubric")
[ "$skip_harness" = 1 ] && extra+=(--skip harness)
# --verbose: each boot's console live, as the QEMU backend shows its own.
# show_console FILE PID: tail FILE until PID (the boot) has ended; tail's
# --pid reads the file to its end after PID is gone, so no line is lost.
show_console() {
  console_pid=
  [ "$verbose" = 1 ] || return 0
  tail -n +1 -F -s 0.5 --pid="$2" "$1" 2>/dev/null >&3 &
  console_pid=$!
}
stop_console() { [ -z "$console_pid" ] || wait "$console_pid" 2>/dev/null; }
"$runner" --kernel "$kernel" --results "$share/bochs" --vcpus "$vcpus" --ept "$ept" --mem "$mem" \
  --timeout "$timeout" --build-dir "$build" "${extra[@]}" >&2 &
boot=$!
show_console "$share/bochs/logs/console.log" "$boot"
wait "$boot"
rc=$?
stop_console
cp "$share/bochs/logs/console.log" "$console" 2>/dev/null || true
# The "L1 boot" stage: run-l1 records Bochs start to /init as its boot row.
awk -F'\t' '$1 == "boot" && $2 == "PASS" { print $3 }' "$share/bochs/stages.tsv" \
  > "$share/stages/l1-boot.host" 2>/dev/null
[ -s "$share/stages/l1-boot.host" ] || rm -f "$share/stages/l1-boot.host"

# --- 2. the L2 stages: the nested runner's L1 image under Bochs ---------------
if [ -n "$l2_shapes" ] && [ -n "$initrd" ] && [ "$rc" != 124 ]; then
  work=$share/bochs-l2
  rm -rf "$work"; mkdir -p "$work"
  echo "nested-run: VMX L2 stages: booting the L1 image under Bochs (L2 shapes $l2_shapes)" >&3
  # 2+ CPUs need nohz=off under Bochs (ci/bochs/README.md, "SMP idle").
  words="ci.results=com2 ci.harness=0 ci.bench=0 ci.l2_console=tee $l1_words"
  [ "$vcpus" -gt 1 ] && words="nohz=off $words"
  if ! "$repo/ci/bochs/build-iso" --kernel "$kernel" --initrd "$initrd" --out "$work/iso" \
         --append "$words" > "$work/build-iso.log" 2>&1; then
    die 3 "could not build the L2 stages' ISO (see $work/build-iso.log)"
  fi
  # Progress: l1-init's stage marks as the console shows them, and a line
  # a minute saying what the run is waiting for.
  ( sleep 1; tail -s 1 -F "$work/logs/console.log" 2>/dev/null |
      grep --line-buffered -aoE 'l1-init: (STAGE .*|L2 .* lost.*|up after .*)|L2\| l2-init: (up after|START|END|done after) .*' |
      sed -u 's/^/nested-run: VMX /' >&3 ) &
  watcher=$!
  # Liveness as on the QEMU path: l1-init writes "l1-init: heartbeat" to
  # the console every 10 guest seconds; when none has come for
  # CI_L1_HEARTBEAT_LOSS_BOCHS wall seconds (default 240: in exit-heavy
  # phases a guest second takes up to ~4.5 wall seconds here), L1 is
  # taken for hung: the console tail goes to SHARE/logs/l1-hang.txt (Bochs
  # has no monitor to read registers from), Bochs is ended and the run
  # exits 125, which the verdict names "L1 stopped responding".
  hb_loss=${CI_L1_HEARTBEAT_LOSS_BOCHS:-240}
  ( t0=$(ci_now); t=0
    while sleep 15; do
      t=$((t + 15))
      if [ $((t % 60)) = 0 ]; then
        last=$(grep -aE 'l1-init: |L2\| (l2-init: |\[ RUN)' "$work/logs/console.log" 2>/dev/null |
               grep -av 'l1-init: heartbeat' | tail -n 1 | tr -d '\r' | cut -c1-120)
        echo "nested-run: VMX L2 stages running ${t}s of ${timeout}s; last mark: ${last:-none yet (L1 booting)}" >&3
      fi
      [ "$hb_loss" -gt 0 ] || continue
      beat=$(awk -F'\t' '$2 ~ /^l1-init: (heartbeat|up after)/ { t = $1 } END { print t }' \
               "$work/logs/console.timed" 2>/dev/null)
      [ -n "$beat" ] || beat=$t0
      age=$(ci_since "$beat" 0)
      if [ "$age" -ge "$hb_loss" ]; then
        { echo "L1 (Bochs) heartbeat stopped: none for ${age}s of wall time (limit ${hb_loss}s)."
          echo "Bochs has no monitor to read the vCPUs' registers from; the console's tail:"
          tail -n 60 "$work/logs/console.log"
        } > "$share/logs/l1-hang.txt" 2>/dev/null
        echo "nested-run: VMX L1 stopped responding (no heartbeat for ${age}s); ending Bochs" >&3
        : > "$work/heartbeat-lost"
        pkill -f -- "-f $work/logs/bochsrc"
        break
      fi
    done ) &
  ticker=$!
  "$repo/ci/bochs/boot-l1" --iso "$work/iso/l1.iso" --logs "$work/logs" --vcpus "$vcpus" \
    --mem "$mem" --timeout "$timeout" >&2 &
  boot=$!
  show_console "$work/logs/console.log" "$boot"
  wait "$boot"
  l2rc=$?
  stop_console
  pkill -P "$watcher" 2>/dev/null; kill "$watcher" "$ticker" 2>/dev/null; wait "$watcher" "$ticker" 2>/dev/null
  cat "$work/logs/console.log" >> "$console" 2>/dev/null
  if ! "$repo/ci/bochs/extract-results" "$work/logs/com2.raw" "$share" 2> "$work/extract.log"; then
    log "the L2 stages' L1 sent no results: $(cat "$work/extract.log")"
    # Its stage marks went down with the stream; the console still shows
    # which stages started, so the verdict can name the one that never
    # ended instead of calling it not reached.
    grep -aoE 'l1-init: STAGE [^ ]+ start' "$work/logs/console.log" | awk '{ print $3 }' |
      while read -r st; do echo 0 > "$share/stages/$st.start"; done
    [ -e "$work/heartbeat-lost" ] && exit 125
    [ "$l2rc" = 124 ] || [ "$l2rc" = 137 ] && exit 124
    exit 3
  fi
fi
exit $rc
}
