# Shared helpers for the ci/ scripts (sourced, not run): every bash script
# of ci/ takes its log/die/tail/time helpers from here (ci/nested-run and its
# backends, ci/bochs/*, ci/build-kernel, ci/bench-kernels, ci/l2-soak,
# ci/sanitizers/*). A script may set ci_name after sourcing to name itself
# differently from its file.
# Sourced twice (a script and a library it sources): the second is a no-op.
[ -n "${CI_COMMON_SH:-}" ] && return 0
CI_COMMON_SH=1
#
# Exit codes of the whole runner (and of every stage script):
#   0 everything passed
#   1 tests ran and at least one failed (a real finding about the patch)
#   2 usage error
#   3 infrastructure: a stage failed to build, boot, finish in time or hand
#     back its result files; the run says nothing about the patch
# Infrastructure wins over test failures: a run with a missing result is 3.
readonly EXIT_OK=0 EXIT_TESTS=1 EXIT_USAGE=2 EXIT_INFRA=3

# Every message names the script that prints it ("nested-run: ...").
ci_name=$(basename "$0")
ci_log() { printf '%s: %s\n' "$ci_name" "$*" >&2; }
ci_die() { local code=$1; shift; ci_log "$*"; exit "$code"; }
# The short names the other scripts were written with.
log() { ci_log "$@"; }
die() { ci_die "$@"; }

# ci_need OPTION [VALUE]: a usage error (exit 2) unless OPTION has a value.
ci_need() { [ $# -ge 2 ] && [ -n "$2" ] || ci_die "$EXIT_USAGE" "$1 needs a value (see --help)"; }

# ci_value_opt TABLE ARGS...: one step of an option loop. TABLE names an
# array of "--option variable" pairs, the script's options that take a
# value; if ARGS' first word is one of them, the variable is set to the
# second and it returns 0 (the caller shifts 2). A missing or empty value is
# a usage error (exit 2). 1: not a value option of TABLE.
ci_value_opt() {
  local -n opts=$1
  local i
  for ((i = 0; i < ${#opts[@]}; i += 2)); do
    [ "${opts[i]}" = "${2:-}" ] || continue
    shift
    ci_need "$@"
    printf -v "${opts[i + 1]}" '%s' "$2"
    return 0
  done
  return 1
}

# Seconds since boot (host) with centiseconds: cheap, monotonic, and the same
# source the guests use (/proc/uptime), so one parser reads both.
ci_now() { cut -d' ' -f1 /proc/uptime; }
ci_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# ci_since T0 [DECIMALS]: seconds from T0 (ci_now) to now (default 1 decimal).
ci_since() { awk -v a="$1" -v b="$(ci_now)" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, b - a }'; }

# Prints the last N lines of a log, framed and named, so a failure shows its
# cause without the reader opening files.
ci_tail() {
  local file=$1 n=${2:-40}
  if [ -s "$file" ]; then
    printf -- '----- last %d lines of %s -----\n' "$n" "$file" >&2
    tail -n "$n" "$file" | sed 's/\r$//' >&2
    printf -- '----- end of %s -----\n' "$file" >&2
  else
    printf -- '----- %s is empty or missing -----\n' "$file" >&2
  fi
}

# The judge kernel's settings that change what a patch's counts can show
# (ci/kernel/base.config says why), read from the .config of the build tree
# the bzImage came from: "retpoline=y,stack_init=pattern", or "unknown" for
# a kernel without its tree (--kernel of a bzImage copied elsewhere).
ci_judge_config() {
  local cfg
  cfg=$(dirname "$1")/../../../.config
  [ -f "$cfg" ] || { echo unknown; return; }
  local retp init
  retp=$(grep -qE '^CONFIG_(MITIGATION_)?RETPOLINE=y' "$cfg" && echo y || echo n)
  init=$(sed -n 's/^CONFIG_INIT_STACK_ALL_\([A-Z]*\)=y/\1/p' "$cfg" | tr 'A-Z' 'a-z')
  echo "retpoline=$retp,stack_init=${init:-none}"
}

# ci_kernel_tree_version DIR: "VERSION.PATCHLEVEL.SUBLEVEL" from a kernel
# tree's Makefile (--tree of build-kernel and nested-run); fails, printing
# nothing, for a directory that is not a Linux tree with KVM.
ci_kernel_tree_version() {
  [ -f "$1/Makefile" ] && [ -f "$1/arch/x86/kvm/x86.c" ] || return 1
  awk -F' *= *' '$1 == "VERSION" { v = $2 } $1 == "PATCHLEVEL" { p = $2 } $1 == "SUBLEVEL" { l = $2 }
                 END { if (v == "" || p == "") exit 1; print v "." p "." (l == "" ? 0 : l) }' "$1/Makefile"
}

# Host-side stage bookkeeping: one TSV row per stage that ran
# (stage, status PASS|FAIL|SKIP|INFRA, seconds, note); verdict.py reads it.
ci_stage_record() {
  local stage=$1 status=$2 secs=$3 note=${4:-}
  # A note may quote a console line: no CR, LF or TAB may break the row.
  note=$(printf '%s' "$note" | tr '\r\n\t' '   ')
  printf '%s\t%s\t%s\t%s\n' "$stage" "$status" "$secs" "$note" >> "$CI_RESULTS/stages.tsv"
}
