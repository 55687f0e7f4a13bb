#!/usr/bin/env bash
# Unit test of the runners' option tables (label `unit`): every option that
# --help documents is one the option loop takes, and takes a value exactly
# when --help shows one. Catches: an option documented but missing from the
# value_opts table (refused as unknown), a value option in the flag arms (its
# value read as the next option), or a typo that sets another variable's
# option. Each call ends in two bogus options: parsing must stop at the
# first, which proves the documented one was consumed whole; an option that
# wrongly takes the first as its value is caught by the second, so nothing
# ever runs past argument parsing.
set -u
ci=$(cd "$(dirname "$0")/.." && pwd)
fails=0 checked=0
for runner in nested-run bochs/run-l1 sanitizers/hostile-run; do
  # "  --name VALUE ..." or "  --name  text": a value is an upper-case word
  # (or a|b list) right after the option on its usage line.
  while read -r opt value; do
    args=("$opt")
    [ -n "$value" ] && args+=(x1)
    out=$("$ci/$runner" "${args[@]}" --zz-end --zz-end2 2>&1)
    if [[ $out != *"unknown argument '--zz-end'"* ]]; then
      echo "FAIL: $runner ${args[*]} --zz-end: the documented option was not taken whole:"
      printf '%s\n' "$out" | sed 's/^/  | /' | head -5
      fails=$((fails + 1))
    fi
    checked=$((checked + 1))
  done < <("$ci/$runner" --help |
             sed -nE 's/^ +(--[a-z0-9-]+)( ([A-Z][A-Z_=,]*|[a-z0-9.]+(\|[a-z0-9.]+)+|"[^"]*"))?( |$).*/\1 \3/p' |
             grep -v -- '^--help')
done
echo "documented options checked: $checked, failures: $fails"
[ $fails = 0 ] && [ $checked -gt 40 ]
