# The host side every L1 runner shares (sourced, not run): ci/nested-run,
# ci/bochs/run-l1 and ci/sanitizers/hostile-run each take from here their
# results folder, their timed stages (with a progress line while one runs)
# and the kernel build, so the three cannot drift apart in what a stage row
# means, which folder they may empty, or which kernel tree a build reuses.
# Sourced twice: the second is a no-op.
[ -n "${CI_HOST_STEPS_SH:-}" ] && return 0
CI_HOST_STEPS_SH=1
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CI_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ci_results_init DIR OWNER: DIR becomes this run's results folder: emptied,
# with logs/, an empty stages.tsv, CI_RESULTS exported, and a mark .OWNER.
# A non-empty folder is emptied only if a runner made it (any runner's mark,
# or, from before the marks, a stages.tsv beside logs/): a typo in --results
# must never delete someone's files.
ci_results_init() {
  local dir=$1 owner=$2 m ours=0
  case $dir in /|"$HOME"|"$CI_REPO")
    ci_die "$EXIT_USAGE" "refusing --results $dir" ;;
  esac
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    for m in nested-run run-l1 hostile-run; do [ -e "$dir/.$m" ] && ours=1; done
    [ -f "$dir/stages.tsv" ] && [ -d "$dir/logs" ] && ours=1
    [ $ours = 1 ] || ci_die "$EXIT_USAGE" "$dir is not empty and was not made by a ci runner; pick another --results"
  fi
  rm -rf "$dir"
  mkdir -p "$dir/logs"
  : > "$dir/.$owner"
  export CI_RESULTS=$dir
  : > "$dir/stages.tsv"
}

# ci_stage_progress NAME LOG: how far a running stage got, from its log.
ci_stage_progress() {
  case $1 in
    kernel) echo "$(grep -c '^  CC ' "$2" 2>/dev/null) objects compiled so far" ;;
    project) echo "cmake at $(grep -o '^\[ *[0-9]*%\]' "$2" 2>/dev/null | tail -n1)" ;;
    *) echo "last log line: $(tail -n1 "$2" 2>/dev/null | cut -c1-100)" ;;
  esac
}

# ci_run_stage NAME LOG CMD...: runs one host stage (stdout to LOG.out,
# stderr to LOG), times it, records its row, and on failure names the stage
# and prints the log's tail. Fd 8 (nested-run's run lock) is not inherited:
# a stage that outlives a killed run must not hold every later run.
ci_run_stage() {
  local name=$1 log=$2 t0 rc pid ticks=0 secs
  shift 2
  ci_log "stage $name: $*"
  t0=$(ci_now)
  "$@" > "$log.out" 2> "$log" 8>&- &
  pid=$!
  # A line every 30 s, so a long stage (a cold kernel build is ~14 min)
  # shows it is alive and how far it got.
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    [ $((ticks % 30)) = 0 ] && ci_log "stage $name: running for $(ci_since "$t0")s, $(ci_stage_progress "$name" "$log")"
  done
  wait "$pid"
  rc=$?
  secs=$(ci_since "$t0")
  if [ $rc -eq 0 ]; then
    ci_stage_record "$name" PASS "$secs"
    ci_log "stage $name: done in ${secs}s"
  else
    ci_stage_record "$name" INFRA "$secs" "exit $rc"
    ci_log "stage $name: FAILED (exit $rc) after ${secs}s; log: $log"
    ci_tail "$log" 40
  fi
  return $rc
}

# ci_kernel_name BASE PATCH MUTANT FRAGMENT...: the ci/build-kernel tree a
# runner builds in: BASE (reference, or hostile-SANITIZER), then what differs
# from it. One rule for every runner, so nested-run --sanitizer and
# hostile-run reuse each other's trees, mutants included.
ci_kernel_name() {
  local name=$1 patch=$2 mutant=$3 f
  shift 3
  [ -n "$patch" ] && name+=-patch-$(basename "$patch")
  [ -n "$mutant" ] && name+=-mutant-$(basename "$mutant" .patch)
  for f in "$@"; do
    case $f in */ci/sanitizers/*) ;; *) name+=-$(basename "$f" .config) ;; esac
  done
  echo "${name//[^A-Za-z0-9_.-]/_}"
}

# ci_kernel_stage LOG BASE ARGS...: the "kernel" stage, ci/build-kernel ARGS
# (which must include --name) started as a copy of BASE when the name
# differs (only what differs recompiles). On success CI_KERNEL is the
# bzImage. A series that does not apply is named with its first failing
# hunk, in the log and in the stage's note, even if it scrolled out of the
# tail.
ci_kernel_stage() {
  local log=$1 base=$2 name bad hunk
  shift 2
  name=$(printf '%s\n' "$@" | sed -n '/^--name$/{n;p;q}')
  [ -n "$name" ] && [ "$name" != "$base" ] && set -- "$@" --from "$base"
  CI_KERNEL=
  if ! ci_run_stage kernel "$log" "$CI_REPO/ci/build-kernel" "$@"; then
    if grep -q 'PATCH DOES NOT APPLY' "$log"; then
      bad=$(sed -n 's/^build-kernel: PATCH DOES NOT APPLY: //p' "$log" | head -n1)
      ci_log "the patch series does not apply: ${bad##*/}"
      sed -n '/PATCH DOES NOT APPLY/,$p' "$log" |
        grep -E '^build-kernel: \(after:|^patching file|FAILED|can.t find|malformed|Reversed|garbage' |
        awk -v n="$ci_name" '!seen[$0]++ { print n ":   " $0 }' >&2
      hunk=$(grep -m1 -E 'FAILED at|can.t find file|malformed|Reversed' "$log")
      sed -i "\$s|\texit [0-9]*\$|\tpatch does not apply: ${bad##*/}: ${hunk//|/ }|" "$CI_RESULTS/stages.tsv"
    fi
    return 1
  fi
  CI_KERNEL=$(tail -n1 "$log.out")
  [ -f "$CI_KERNEL" ] && return 0
  ci_log "ci/build-kernel did not print a bzImage path (got '$CI_KERNEL')"
  sed -i "\$s|\tPASS\t\([^\t]*\)\t.*\$|\tINFRA\t\1\tno bzImage path printed|" "$CI_RESULTS/stages.tsv"
  return 1
}
