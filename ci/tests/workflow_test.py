#!/usr/bin/env python3
"""Structural checks of .github/workflows/*.yml (ctest label `unit`).

YAML that loads is not yet a workflow GitHub accepts: this checks the parts
that, when wrong, make a hosted run silently do nothing or lose its results.
Each check names the bug it catches.
"""
import glob
import os
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def steps_of(job):
    return job.get("steps") or []


def main(argv):
    # argv[0]: a workflow directory (default: the repository's); the ctest
    # `workflow_negative` runs it on testdata/ to prove the checks can fail.
    wdir = argv[0] if argv else os.path.join(REPO, ".github", "workflows")
    files = sorted(glob.glob(os.path.join(wdir, "*.yml")) + glob.glob(os.path.join(wdir, "*.yaml")))
    check(files, "no workflow under .github/workflows")
    nested_jobs = 0
    for path in files:
        name = os.path.basename(path)
        with open(path) as f:
            doc = yaml.safe_load(f)  # a syntax error fails here, with its line
        check(isinstance(doc, dict), f"{name}: top level is not a mapping")
        if not isinstance(doc, dict):
            continue
        # PyYAML (YAML 1.1) reads the key `on` as boolean True.
        triggers = doc.get("on", doc.get(True))
        check(triggers, f"{name}: no `on:` triggers (the workflow would never run)")
        jobs = doc.get("jobs")
        check(isinstance(jobs, dict) and jobs, f"{name}: no jobs")
        for jname, job in (jobs or {}).items():
            where = f"{name}: job {jname}"
            check("runs-on" in job, f"{where}: no runs-on")
            check(isinstance(job.get("timeout-minutes"), int),
                  f"{where}: no timeout-minutes (a hung emulator would hold the runner 6 h)")
            steps = steps_of(job)
            check(steps, f"{where}: no steps")
            for i, st in enumerate(steps):
                check(("uses" in st) != ("run" in st),
                      f"{where}: step {i} needs exactly one of uses/run")
            runs = [st.get("run", "") for st in steps]
            if not any("ci/nested-run" in r for r in runs):
                continue
            nested_jobs += 1
            check(any(st.get("uses", "").startswith("actions/checkout@") for st in steps),
                  f"{where}: runs ci/nested-run without checking out the repository")
            uploads = [st for st in steps if st.get("uses", "").startswith("actions/upload-artifact@")]
            check(uploads, f"{where}: the results folder is not uploaded")
            for up in uploads:
                check("always()" in str(up.get("if", "")),
                      f"{where}: upload without `if: always()` loses the results of a failed run")
                check("results" in str((up.get("with") or {}).get("path", "")),
                      f"{where}: upload path is not the results folder")
            matrix = (job.get("strategy") or {}).get("matrix") or {}
            entries = matrix.get("include") or []
            args = " ".join(str(e.get("args", "")) for e in entries)
            check("--l2-vcpus 2" in args and "--l2-vcpus 4" in args,
                  f"{where}: the matrix must cover 2 and 4 L2 vCPUs")
            check("--vmx" in args, f"{where}: the matrix must include --vmx")
            check((job.get("strategy") or {}).get("fail-fast") is False,
                  f"{where}: fail-fast would cancel the other shapes on the first failure")
            check(any("matrix.args" in r for r in runs),
                  f"{where}: ci/nested-run does not receive matrix.args")
            check(any("/dev/kvm" in r for r in runs),
                  f"{where}: /dev/kvm is never passed to the runner (kvm would never be used)")
    check(nested_jobs > 0, "no workflow job runs ci/nested-run")
    for e in errors:
        print("workflow_test: " + e, file=sys.stderr)
    print(f"workflow_test: {len(files)} workflow(s), {nested_jobs} nested job(s), "
          f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
