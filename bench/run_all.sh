#!/usr/bin/env bash
# Runs the bench binaries and writes Google Benchmark JSON, the Markdown
# report and the PNG charts into OUT_DIR (bench/README.md describes them).
#
#   bench/run_all.sh [--bin DIR] [--out DIR] [--parts LIST] [--runs N]
#                    [--reps N] [--min-time S] [--label NAME] [-- EXTRA...]
#
#   --bin    directory holding the binaries (default: build-bench/bench)
#   --out    results directory (default: build-bench/results, beside the
#            binaries: runs write no measurement into the source tree)
#   --parts  comma list of: primitives, ring0, guest (default: all three)
#   --runs   separate process runs per part, for the spread check (default 3)
#   --reps   --benchmark_repetitions per run (default 3)
#   --min-time  --benchmark_min_time for primitives and guest (default 0.5)
#   --label  file name stem (default: host name), e.g. unpatched, reference
#   EXTRA    passed to every binary (e.g. --benchmark_filter=...)
#
# Writes OUT/<label>-<part>-run<i>.json, OUT/<label>-<part>.md/.png (run 1
# reported, all runs compared with --spread 5). Exit status: 0, or 1 when a
# binary failed (the others still run).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../build-bench/bench"
out="$here/../build-bench/results"
parts="primitives,ring0,guest"
runs=3
reps=3
min_time=0.5
label="$(hostname)"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --parts) parts="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --min-time) min_time="$2"; shift 2 ;;
    --label) label="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
status=0
for part in ${parts//,/ }; do
  case "$part" in
    primitives) exe=accounting_primitives_benchmark; args=(--benchmark_min_time="$min_time") ;;
    ring0) exe=ring0_exit_benchmark; args=() ;;
    guest) exe=guest_exit_benchmark; args=(--benchmark_min_time="$min_time") ;;
    *) echo "run_all.sh: unknown part $part" >&2; exit 2 ;;
  esac
  if [ ! -x "$bin/$exe" ]; then
    echo "run_all.sh: $bin/$exe missing: skipping $part" >&2
    status=1
    continue
  fi
  files=()
  for i in $(seq 1 "$runs"); do
    json="$out/$label-$part-run$i.json"
    echo "== $part run $i/$runs -> $json" >&2
    "$bin/$exe" "${args[@]}" --benchmark_repetitions="$reps" \
      --benchmark_out="$json" --benchmark_out_format=json "${extra[@]}" \
      > "$out/$label-$part-run$i.txt" 2>&1 || { echo "run_all.sh: $exe failed (see $out/$label-$part-run$i.txt)" >&2; status=1; }
    [ -s "$json" ] && files+=("$json")
  done
  [ ${#files[@]} -eq 0 ] && continue
  "$py" "$here/report.py" --out "$out/$label-$part" --title "$label: $part" "${files[0]}" > /dev/null || status=1
  if [ ${#files[@]} -gt 1 ]; then
    labels=$(seq -s, -f "run%g" 1 ${#files[@]})
    # Spread across separate process runs; a wide spread is reported, not fatal.
    "$py" "$here/report.py" --out "$out/$label-$part-spread" --labels "$labels" --spread 5 \
      --title "$label: $part, ${#files[@]} runs" "${files[@]}" > /dev/null
  fi
done
exit $status
