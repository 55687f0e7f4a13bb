#!/usr/bin/env bash
# Unit test (label unit): the com2 results transport of the Bochs path.
# ci/images/send-results (in L1) and ci/bochs/extract-results (on the host)
# must round-trip a results folder byte for byte; a missing port must be
# said; a stream cut short (a guest that died while sending) or corrupted
# must be a missing result (exit 3), never a partial unpack.
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
send=$repo/ci/images/send-results extract=$repo/ci/bochs/extract-results
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "com2_transport_test: FAIL: $*"; fails=$((fails + 1)); }

mkdir -p "$tmp/results/stages" "$tmp/results/l2-2vcpu/junit"
echo "0 51.0 420" > "$tmp/results/stages/l2-2vcpu.end"
head -c 100000 /dev/urandom > "$tmp/results/l2-2vcpu/junit/blob.bin"

"$send" "$tmp/results" /dev/nonexistent > "$tmp/none.out" 2>&1 &&
  fail "send-results to a missing port exited 0"
grep -q 'no /dev/nonexistent' "$tmp/none.out" || fail "send-results did not say the port is missing"

# The stream itself: the same script with its port write sent to fd 3 (a
# file here; in L1 it is /dev/ttyS1) and the stty of the port left out.
sed 's|> "\$tty"|>\&3|; s|stty -F "\$tty".*||' "$send" > "$tmp/send-fd3"
chmod +x "$tmp/send-fd3"
"$tmp/send-fd3" "$tmp/results" /dev/null 3> "$tmp/com2.raw" > /dev/null ||
  fail "send-results failed"
if "$extract" "$tmp/com2.raw" "$tmp/out" 2> "$tmp/extract.log"; then
  cmp -s "$tmp/results/l2-2vcpu/junit/blob.bin" "$tmp/out/l2-2vcpu/junit/blob.bin" ||
    fail "the unpacked file differs from the one sent"
  [ "$(cat "$tmp/out/stages/l2-2vcpu.end" 2>/dev/null)" = "0 51.0 420" ] ||
    fail "the stage mark did not arrive"
else
  fail "extract-results refused a whole stream: $(cat "$tmp/extract.log")"
fi

# Cut short: the last third of the stream never arrived.
head -c "$(( $(wc -c < "$tmp/com2.raw") * 2 / 3 ))" "$tmp/com2.raw" > "$tmp/short.raw"
"$extract" "$tmp/short.raw" "$tmp/out-short" 2> "$tmp/short.log"
[ $? = 3 ] || fail "a truncated stream did not exit 3"
grep -q 'truncated' "$tmp/short.log" || fail "a truncated stream was not called truncated: $(cat "$tmp/short.log")"
[ ! -e "$tmp/out-short/stages" ] || fail "a truncated stream was partly unpacked"

# Corrupted: one base64 character changed in the middle.
awk 'NR == 20 { $0 = (substr($0, 1, 1) == "A" ? "B" : "A") substr($0, 2) } { print }' \
  "$tmp/com2.raw" > "$tmp/bad.raw"
"$extract" "$tmp/bad.raw" "$tmp/out-bad" 2> "$tmp/bad.log"
[ $? = 3 ] || fail "a corrupted stream did not exit 3"
grep -qE 'checksum mismatch|length mismatch|base64' "$tmp/bad.log" ||
  fail "a corrupted stream was not named: $(cat "$tmp/bad.log")"

echo "com2_transport_test: $fails failure(s)"
[ $fails -eq 0 ]
