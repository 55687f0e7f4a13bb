#!/usr/bin/python3
"""Checks a short accounting_primitives_benchmark run (ctest label bench).

Fails if a strategy or thread count is missing, a figure is not positive,
a correct counter (everything but shared_plain) lost an update, or report.py
cannot turn the JSON into a report.
"""
import json
import os
import subprocess
import sys

path, out = sys.argv[1], sys.argv[2]
with open(path) as fh:
    doc = json.load(fh)
rows = [b for b in doc["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
errors = []
strategies = {"per_vcpu_padded", "per_vcpu_unpadded", "shared_atomic", "shared_plain", "per_cpu"}
seen = {b["run_name"].split("/")[1] for b in rows}
if seen != strategies:
    errors.append(f"strategies {sorted(seen)} != {sorted(strategies)}")
for b in rows:
    name = b["run_name"]
    if b.get("error_occurred"):
        errors.append(f"{name}: {b.get('error_message')}")
        continue
    if not b.get("cycles_per_update", 0) > 0 and "no figure" not in b.get("label", ""):
        errors.append(f"{name}: cycles_per_update {b.get('cycles_per_update')}")
    if "shared_plain" not in name and b.get("lost_updates", 1) != 0:
        errors.append(f"{name}: lost {b.get('lost_updates')} of updates")
if not any("threads:1/" in b["run_name"] for b in rows):
    errors.append("no 1-thread rows")
report = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.py")
r = subprocess.run([sys.executable, report, "--out", out, path], capture_output=True, text=True)
if r.returncode != 0 or not os.path.exists(out + ".md"):
    errors.append(f"report.py exit {r.returncode}: {r.stderr.strip()}")
for e in errors:
    print("FAIL:", e)
print(f"{len(rows)} rows checked, {len(errors)} problems")
sys.exit(1 if errors else 0)
