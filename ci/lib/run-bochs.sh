#!/usr/bin/env bash
# L1 backend for Intel VMX under Bochs (`ci/nested-run --vmx`).
#
# Same contract as ci/lib/run-qemu.sh (read its header), with one addition:
# Bochs is too slow for an L2 Linux guest, so this backend runs the ring-0
# checks that ci/bochs/run-l1 knows (the /dev/kvm harness suite and the VMX
# reports) and leaves its own table in SHARE/bochs/stages.tsv; the verdict
# shows those rows as "VMX <stage>". ci/bochs/run-l1 brings the results back
# over com2 (Bochs has no virtio); the L1 image and kernel command line are
# its own, so --initrd is not used here, and of --append only what run-l1
# can carry: the module parameters (kvm.*, kvm_intel.*: the test knobs of
# --l1-append) go on its L1 command line, and ci.rubric=R reaches
# harness_test as HARNESS_RUBRIC (a course-only submission is judged by its
# course leaves there too).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

kernel= share= console= vcpus=1 mem=1024 timeout=1500 build=$repo/build append=
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
    --initrd|--accel|--machine) shift 2 ;;
    --verbose) shift ;;
    *) echo "run-bochs: unknown argument $1" >&2; exit 2 ;;
  esac
done

runner=$repo/ci/bochs/run-l1
if [ ! -x "$runner" ]; then
  echo "run-bochs: the Bochs (VMX) backend is missing ($runner)" >&2
  exit 3
fi
mkdir -p "$share/stages"
# Bochs emulates every CPU on one host thread: more than 2 only slows it.
[ "$vcpus" -gt 2 ] && vcpus=2
params= rubric=
for w in $append; do
  case $w in
    kvm.*|kvm_intel.*) params+="${params:+ }$w" ;;
    ci.rubric=*) rubric=${w#ci.rubric=} ;;
  esac
done
extra=()
[ -n "$params" ] && extra+=(--append "$params")
[ -n "$rubric" ] && extra+=(--harness-env "HARNESS_RUBRIC=$rubric")
"$runner" --kernel "$kernel" --results "$share/bochs" --vcpus "$vcpus" --mem "$mem" \
  --timeout "$timeout" --build-dir "$build" "${extra[@]}" >&2
rc=$?
cp "$share/bochs/logs/console.log" "$console" 2>/dev/null || true
# The "L1 boot" stage: run-l1 records Bochs start to /init as its boot row.
awk -F'\t' '$1 == "boot" && $2 == "PASS" { print $3 }' "$share/bochs/stages.tsv" \
  > "$share/stages/l1-boot.host" 2>/dev/null
[ -s "$share/stages/l1-boot.host" ] || rm -f "$share/stages/l1-boot.host"
exit $rc
