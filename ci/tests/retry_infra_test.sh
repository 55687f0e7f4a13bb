#!/usr/bin/env bash
# Unit test of ci/lib/retry-infra (label `unit`). Catches: a test failure
# (exit 1) retried until it passes, an infrastructure failure not retried,
# or the first attempt's results thrown away.
set -u
ri=$(cd "$(dirname "$0")/.." && pwd)/lib/retry-infra
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fails=0
check() { [ "$1" = "$2" ] || { echo "FAIL: $3: got $1, want $2"; fails=$((fails + 1)); }; }
# A command that fails with CODE the first time and passes the second.
cat > "$t/flaky" <<'EOS'
#!/bin/sh
mkdir -p "$2"; echo attempt > "$2/marker"
if [ -e "$2.count" ]; then exit 0; fi
touch "$2.count"; exit "$1"
EOS
chmod +x "$t/flaky"
"$ri" "$t/r3" "$t/flaky" 3 "$t/r3" 2>/dev/null; check $? 0 "exit 3 then pass"
[ -f "$t/r3.infra/marker" ] || { echo "FAIL: first attempt's results not kept"; fails=$((fails + 1)); }
"$ri" "$t/r1" "$t/flaky" 1 "$t/r1" 2>/dev/null; check $? 1 "exit 1 is a verdict, not retried"
"$ri" "$t/r0" sh -c 'exit 3' 2>/dev/null; check $? 3 "exit 3 twice stays 3"
"$ri" 2>/dev/null; check $? 2 "usage"
echo "retry_infra_test: $fails failure(s)"
[ $fails -eq 0 ]
