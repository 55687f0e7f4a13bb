#!/usr/bin/env python3
"""Collects a results folder of ci/nested-run or ci/sanitizers/hostile-run
and prints the verdict; with --stage-table, judges ci/bochs/run-l1's (every
stage a row of its stages.tsv: see stage_table_verdict).

    verdict.py --results DIR [--quiet]
    verdict.py --results DIR --stage-table SUITE [--runner run-l1]

Reads only files (never the console for test outcomes):
  stages.tsv           host stages: name, PASS|FAIL|SKIP|INFRA, seconds, note
  expected.tsv         L1 stages that must run: name, label, required files
  run.conf, l1.end     the L1 run (backend exit code, seconds, limit)
  l1/stages/*          L1's own stage marks: NAME.start, NAME.end "rc secs limit"
  l1/**/junit/*.xml    GoogleTest JUnit XML
  l1/*/json/*.json     exit_stress --json summaries (the per-exit table)
  l1/*/rc/NAME         "rc secs limit" of each binary run in L2
  logs/l1-console.log, l1/logs/*.console.log   kernel logs (sanitizer scan;
                       run.conf's patch_dir, when set, names the series the
                       reports are attributed to, else kernel-patch/)

Writes verdict.txt and verdict.json next to them, and per kernel log
logs/klog-WHO.json and .md (scan-klog's reports and table). Exit status: 0 pass,
1 tests failed, 3 infrastructure (a stage that did not run, finish, or
return its results). A stage that FAILs or is INFRA is named, and the tail of
its log is printed.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

EXIT_OK, EXIT_TESTS, EXIT_INFRA = 0, 1, 3
TIMEOUT_RCS = {124, 137, 143}  # GNU timeout, SIGKILL, SIGTERM (busybox timeout)
# ci/lib/run-qemu.sh or run-bochs.sh: L1's init stopped its heartbeat, the
# backend ended it.
HEARTBEAT_RC = 125
HEARTBEAT_NOTE = ("did not finish: L1 stopped responding (its heartbeat stopped); "
                  "what the host saw of it (QEMU: every vCPU's registers and L1's "
                  "answer to SysRq l, w, t; Bochs: the console tail) is in "
                  "l1/logs/l1-hang.txt")
HOST_ORDER = ["deps", "kernel", "project", "images"]
HERE = os.path.dirname(os.path.abspath(__file__))
SCAN_KLOG = os.path.join(HERE, "..", "sanitizers", "scan-klog")
PATCH_DIR = os.path.join(HERE, "..", "..", "kernel-patch")
# Stages that run a test binary in L1 itself (not an L2 guest): their log,
# JUnit file and "not in the image" status (127) are named after the stage.
L1_BINARIES = {"harness": "harness_test", "hostile": "hostile_test"}

# Used only when ci/sanitizers/scan-klog is absent.
KLOG_FALLBACK = re.compile(
    r"(BUG: (KASAN|KCSAN)|UBSAN: |WARNING: CPU: \d+ PID: |kernel BUG at |BUG: |Oops: |"
    r"general protection fault|Kernel panic - not syncing|watchdog: BUG: soft lockup)")


class Stage:
    def __init__(self, name, label, status="-", secs=None, note=""):
        self.name, self.label, self.status, self.secs, self.note = name, label, status, secs, note
        self.tail = None  # log to show on failure
        self.lost = []    # L2 boots lost and repeated: [(kind, seconds)]
        self.elsewhere = False  # a kernel-log FAIL with no report in the patch's code

    def row(self):
        secs = "" if self.secs is None else f"{self.secs:.1f}"
        return (self.label, self.status, secs, self.note)


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def read_triple(path):
    """'rc secs limit' -> (int, float, float) or None."""
    text = read(path)
    if text is None:
        return None
    parts = text.split()
    try:
        rc = int(parts[0])
        secs = float(parts[1]) if len(parts) > 1 else 0.0
        limit = float(parts[2]) if len(parts) > 2 else 0.0
    except (ValueError, IndexError):
        return None
    return rc, secs, limit


def read_lost(path):
    """stages/<stage>.lost ('reset 12.3' per lost attempt) -> [(kind, secs)]."""
    lost = []
    for line in (read(path, "") or "").splitlines():
        parts = line.split()
        if parts:
            try:
                lost.append((parts[0], float(parts[1]) if len(parts) > 1 else 0.0))
            except ValueError:
                lost.append((parts[0], 0.0))
    return lost


# What each kind of lost attempt is, in the verdict's words.
LOST_WORDS = {"shutdown": "payload triple fault"}


def describe_lost(lost):
    """[(reset, 12.3)] -> 'reset once at 12 s'; several -> 'lost 2: reset at 12 s, hang at 420 s'."""
    words = [(LOST_WORDS.get(k, k), t) for k, t in lost]
    if len(words) == 1:
        return f"{words[0][0]} once at {words[0][1]:.0f} s"
    return f"lost {len(words)}: " + ", ".join(f"{k} at {t:.0f} s" for k, t in words)


# A patch that logs on every exit or query (a printk in the exit path) is the
# bug class `log flood`: more kernel log records during a stage than one per
# FLOOD_PER operations of the guest's work, and never fewer than FLOOD_MIN
# (the reference logs 1-3 records per stage, measured).
FLOOD_PER, FLOOD_MIN = 100, 1000


def log_flood(kmsg_path, work):
    """The log-flood finding for a stage, from l1-init's kmsg sequence
    numbers of its begin and end marks ("BEGIN\nEND"), or None."""
    seqs = (read(kmsg_path, "") or "").split()
    if len(seqs) != 2 or not all(x.isdigit() for x in seqs) or "0" in seqs:
        return None  # not measured (an older init, or the mark was not found)
    records = int(seqs[1]) - int(seqs[0]) - 1
    limit = max(FLOOD_MIN, work // FLOOD_PER)
    if records <= limit:
        return None
    rate = f", {100.0 * records / work:.1f} per 100 guest operations" if work else ""
    return (f"log flood (bug class): L1 logged {records} kernel records during the stage"
            f"{rate} (limit {limit})")


def timed_out(rc, secs, limit):
    # The inits write 124 themselves when the clock passed the limit; a
    # signal exit counts only if the limit was reached too.
    return rc == 124 or (rc in TIMEOUT_RCS and limit > 0 and secs >= limit - 2)


def junit_counts(path):
    """(tests, failures, errors, skipped, failed test names) of a JUnit file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    t = f = e = s = 0
    failed = []
    for suite in suites:
        for case in suite.iter("testcase"):
            t += 1
            name = f"{case.get('classname', '')}.{case.get('name', '')}"
            if case.find("failure") is not None:
                f += 1
                failed.append(name)
            elif case.find("error") is not None:
                e += 1
                failed.append(name)
            elif case.find("skipped") is not None or case.get("result") == "skipped" \
                    or case.get("status") == "notrun":
                s += 1
    return t, f, e, s, failed


def exit_rows(path, vcpus):
    """Rows (exit, vcpus, expected, observed, PASS/FAIL/SKIP) from an
    exit_stress --json summary: {"exits": {NAME: {"vcpus", "expected",
    "observed", "pass", "status"}}}; a list of {"exit": NAME, ...} works too."""
    data = json.loads(read(path))
    entries = data.get("exits", []) if isinstance(data, dict) else data
    if isinstance(entries, dict):
        entries = [dict(v, exit=k) for k, v in entries.items()]
    rows = []
    for e in entries:
        name = e.get("exit", e.get("name", "?"))
        status = str(e.get("status", "")).lower()
        if status.startswith("skip"):
            result = "SKIP"
        elif status == "n/a":
            result = "N/A"
        else:
            result = "PASS" if e.get("pass", e.get("ok")) else "FAIL"
        rows.append((str(name), str(e.get("vcpus", vcpus)), str(e.get("expected", "")),
                     str(e.get("observed", "")), result))
    return rows


def tail(path, n=40):
    text = read(path)
    if text is None:
        return f"----- {path} is missing -----"
    lines = text.replace("\r", "").splitlines()[-n:]
    return "\n".join([f"----- last {len(lines)} lines of {path} -----", *lines,
                      f"----- end of {path} -----"])


def table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r) for r in rows]
    return "\n".join(out)


def scan_klog(log, stage_label, out_json, sanitizer="", patch_dir=PATCH_DIR):
    """(status, note) for one kernel log: FAIL if a sanitizer/WARN/BUG report.
    On a KCSAN kernel, races outside the patch's code are listed, not failed
    (the kernel has known benign ones); races in the patch always fail."""
    if not os.path.exists(log) or os.path.getsize(log) == 0:
        return None
    if os.access(SCAN_KLOG, os.X_OK):
        cmd = [SCAN_KLOG, log, "--stage", stage_label, "--json", out_json,
               "--markdown", re.sub(r"\.json$", "", out_json) + ".md"]
        if glob.glob(os.path.join(patch_dir, "*.patch")):
            cmd += ["--patch", patch_dir]
        if sanitizer == "kcsan":
            cmd += ["--elsewhere-ok", "KCSAN"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            return ("PASS", "no reports")
        if r.returncode == 1:
            first = next((l for l in r.stdout.splitlines() if l.startswith("[")), "")
            return ("FAIL", f"kernel reports: {first.strip()}"[:160])
        return ("INFRA", f"scan-klog failed: {r.stderr.strip()[:120]}")
    for line in read(log, "").splitlines():
        if KLOG_FALLBACK.search(line):
            return ("FAIL", f"kernel report: {line.strip()}"[:160])
    return ("PASS", "no reports")


HANG = re.compile(r"soft lockup|hard LOCKUP|blocked for more than|"
                  r"rcu_\w+ (self-)?detected stall|RCU Stall|NMI backtrace", re.I)


def host_break(stages, klog_json):
    """An L1 that crashed or hung in the patch's own code is the patch's
    finding, not the infrastructure's: scan-klog attributes a report to the
    patch when its header or first frames name a function the series
    defines or edits. The stage that was running then FAILs with the bug
    class ("host oops" or "host hang") and the report's title; the stages
    after it were not reached because of it. A report elsewhere (the
    emulator's own faults have been seen in fdget) leaves them INFRA."""
    try:
        with open(klog_json) as f:
            reports = json.load(f).get("reports", [])
    except (OSError, ValueError):
        return
    fatal = [r for r in reports if r.get("in_patch") and r.get("class") in
             ("BUG", "KASAN", "UBSAN", "LOCKDEP", "NMI")]
    if not fatal:
        return
    r = fatal[0]
    cls = "host hang" if HANG.search(r.get("title", "")) else "host oops"
    finding = f"{cls} (bug class) in the patch's code ({r.get('why', '')}): {r.get('title', '')}"[:200]
    # The kernel log row names the class too: a report L1 survived (a
    # sleeping call with interrupts off) fails only there.
    for s in stages:
        if s.name == "klog-L1" and s.status == "FAIL":
            s.note = finding
    died = False
    for s in stages:
        if s.status != "INFRA":
            continue
        if s.note.startswith("did not finish: L1"):
            died = True
            s.status = "FAIL"
            s.note = finding
        elif died and s.note.startswith("not reached"):
            s.status, s.tail = "-", None
            s.note = f"not reached (L1 died of the {cls} above)"


# The kernel an L1 boots must be the one --kernel names: a boot image whose
# compressed payload is an older build (a cached piggy.o) boots the older
# kernel under the new one's name, and every check then judges the wrong
# patch. The bzImage setup header names its build ("6.12.118 (root@vm) #6
# SMP <date>", boot protocol 2.00+: a pointer at 0x20E, plus 0x200); the
# booted kernel's banner must carry the same release and "#N <date>".
def bzimage_build(path):
    try:
        with open(path, "rb") as f:
            head = f.read(0x8000)
    except OSError:
        return None
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        return None
    at = int.from_bytes(head[0x20E:0x210], "little") + 0x200
    text = head[at:at + 256].split(b"\0", 1)[0].decode("ascii", "replace")
    return build_id(text)


def build_id(version):
    """(release, "#N <date>") from a header string or a "Linux version" banner."""
    m = re.match(r"\s*(\S+).*?\s(#\d+.*?)\s*$", version)
    return (m.group(1), " ".join(m.group(2).split())) if m else None


def booted_build(*logs):
    """From L1's dmesg (the console runs at loglevel=5, below the banner's)."""
    for log in logs:
        for line in (read(log, "") or "").splitlines():
            if "Linux version " in line:
                return build_id(line.split("Linux version ", 1)[1])
    return None


def host_stages(res):
    """The host's stages.tsv as {name: fields}, and its stages in pipeline order."""
    host, stages = {}, []
    for line in (read(os.path.join(res, "stages.tsv"), "") or "").splitlines():
        parts = line.split("\t") + ["", "", "", ""]
        host[parts[0]] = parts
    for name in HOST_ORDER:
        if name in host:
            p = host[name]
            s = Stage(name, name, p[1], float(p[2] or 0), p[3])
            s.tail = os.path.join(res, "logs", f"{name}.log") if p[1] in ("FAIL", "INFRA") else None
            stages.append(s)
        else:
            stages.append(Stage(name, name, "-", None, "not run"))
    return host, stages


def l1_boot_stage(res, l1, l1_end, console):
    """L1's boot: whether its init ran, on the kernel asked for."""
    boot = Stage("l1-boot", "L1 boot")
    booted = False
    if l1_end is None:
        boot.note = "not run"
    else:
        host_boot = read(os.path.join(l1, "stages", "l1-boot.host"))
        guest_boot = read(os.path.join(l1, "stages", "l1-boot.end"))
        if host_boot or guest_boot:
            booted = True
            boot.status = "PASS"
            boot.secs = float((host_boot or guest_boot).split()[0])
            if not host_boot:
                boot.note = "L1 uptime (kernel start to /init)"
            want = bzimage_build(read(os.path.join(res, "kernel.path"), "").strip())
            got = booted_build(os.path.join(l1, "logs", "l1-dmesg.log"), console)
            if want and got and want != got:
                boot.status, boot.tail = "INFRA", console
                boot.note = (f"L1 booted {' '.join(got)}, but --kernel's header says "
                             f"{' '.join(want)}: its boot image carries another build "
                             "(a stale piggy.o?); nothing here judges --kernel")
        else:
            rc, secs, limit = l1_end
            boot.status, boot.secs, boot.tail = "INFRA", secs, console
            boot.note = (f"L1 timed out after {limit:.0f}s before its init ran" if rc == 124
                         else f"L1 ended (exit {rc}) before its init mounted the results")
    boot_lost = [l for l in (read(os.path.join(res, "l1-boot.lost"), "") or "").splitlines() if l]
    if boot_lost:
        boot.note = "; ".join(filter(None, [boot.note, (
            f"L1 {boot_lost[0]}, booted again" if len(boot_lost) == 1
            else f"L1 lost {len(boot_lost)} times at boot: " + "; ".join(boot_lost))]))
        boot.lost = [("boot", 0.0)] * len(boot_lost)
    return boot, booted


def junit_results(res, xmls, junit_rows, problems, failures):
    """Counts each JUnit file into junit_rows; an unreadable or empty one is
    a problem, failed tests are failures."""
    for x in xmls:
        rel = os.path.relpath(x, res)
        try:
            t, f, e, sk, failed = junit_counts(x)
        except (ET.ParseError, OSError) as err:
            problems.append(f"unreadable {rel}: {err}")
            continue
        junit_rows.append((rel, str(t), str(f), str(e), str(sk)))
        if t == 0:
            problems.append(f"{rel} holds no tests")
        if f or e:
            failures.append(f"{f + e} failed in {os.path.basename(x)}: "
                            + ", ".join(failed[:3]) + (" ..." if len(failed) > 3 else ""))


def exit_stress_results(res, stage_dir, label, exits, hosts, problems, notes):
    """Reads an L2 stage's exit_stress JSON: its exit table into exits, the
    host it found into hosts, the bug classes of failed checks into notes.
    Returns the guest operations it drove (its expected counts)."""
    vcpus = (read(os.path.join(stage_dir, "vcpus"), "") or "").strip()
    work = 0  # guest operations exit_stress drove (its exit table's expected counts)
    for j in sorted(glob.glob(os.path.join(stage_dir, "json", "*.json"))):
        try:
            exits.extend(exit_rows(j, vcpus))
            data = json.loads(read(j))
            if isinstance(data, dict) and isinstance(data.get("exits"), dict):
                work += sum(int(v.get("expected") or 0) for v in data["exits"].values()
                            if isinstance(v, dict))
            if isinstance(data, dict) and data.get("host"):
                hosts.append((label, data.get("host", ""), data.get("rubric", ""),
                              data.get("leaves", "")))
                found = [f"{c.get('check')}{' ' + c['exit'] if c.get('exit') else ''} "
                         f"[{', '.join(c.get('classes') or ['?'])}]"
                         for c in data.get("checks", []) if c.get("status") == "FAIL"]
                if found:
                    notes.append("findings: " + "; ".join(found[:6])
                                 + (" ..." if len(found) > 6 else ""))
        except (ValueError, AttributeError, TypeError) as err:
            problems.append(f"unreadable {os.path.relpath(j, res)}: {err}")
    return work


def l1_stage(res, l1, l1_end, console, name, label, files, previous_failed, exits,
             junit_rows, hosts):
    """One L1 stage from its marks, exit codes, result files, JUnit and
    exit_stress JSON; appends to exits, junit_rows and hosts. Returns the
    stage and whether a later stage that was not reached is explained by it."""
    s = Stage(name, label)
    st = os.path.join(l1, "stages")
    binary = L1_BINARIES.get(name)
    log = (os.path.join(l1, "logs", f"{name}.log") if binary
           else os.path.join(l1, "logs", f"{name}.console.log"))
    end = read_triple(os.path.join(st, f"{name}.end"))
    started = read(os.path.join(st, f"{name}.start"))
    if started is None:
        if l1_end is None:
            s.note = "not run"
        else:
            s.status = "INFRA"
            s.note = "not reached" + (" (an earlier stage failed)" if previous_failed
                                      else " (L1 ended early)")
            if not previous_failed:
                s.tail = console
                if l1_end[0] == HEARTBEAT_RC:
                    s.note = "not reached: L1 " + HEARTBEAT_NOTE.split("L1 ", 1)[1]
                    s.tail = os.path.join(l1, "logs", "l1-hang.txt")
        return s, True
    if end is None:
        rc, secs, limit = l1_end or (0, 0, 0)
        s.status, s.tail = "INFRA", log
        s.note = (f"did not finish: L1 timed out after {limit:.0f}s" if rc == 124
                  else HEARTBEAT_NOTE if rc == HEARTBEAT_RC
                  else f"did not finish: L1 ended (exit {rc}; panic?)")
        if rc == HEARTBEAT_RC:
            s.tail = os.path.join(l1, "logs", "l1-hang.txt")
        return s, True
    rc, secs, limit = end
    s.secs = secs
    problems, failures, notes = [], [], []
    # Lost L2 boots that L1 repeated (ci.l2_retries): the last attempt's
    # files are the result; the lost ones are kept as <stage>.lostK.
    s.lost = read_lost(os.path.join(st, f"{name}.lost"))
    # An attempt that ran to its end: L2's end mark, or the L1 binary's JUnit.
    done = (bool(glob.glob(os.path.join(l1, "junit", f"{name}.xml"))) if binary
            else os.path.exists(os.path.join(l1, name, "done")))
    if s.lost and done:
        notes.append(describe_lost(s.lost) + ", repeated")
    if timed_out(rc, secs, limit):
        problems.append(f"timed out after {limit:.0f}s")
    elif binary and rc == 127:
        problems.append(f"{binary} not built (not in the L1 image)")
    elif not binary and rc != 0:
        problems.append(f"QEMU for L2 exited {rc}")
    # Binaries run inside L2: their own exit codes and timeouts.
    for rcfile in sorted(glob.glob(os.path.join(l1, name, "rc", "*"))):
        brc = read_triple(rcfile)
        bname = os.path.basename(rcfile)
        if brc is None:
            continue
        if timed_out(*brc):
            problems.append(f"{bname} timed out after {brc[2]:.0f}s in L2")
            s.tail = os.path.join(l1, name, "logs", f"{bname}.log")
        elif brc[0] == 3 and bname == "exit_stress":
            notes.append("exit_stress: some checks skipped (exit 3)")
        elif brc[0] == 77:
            failures.append(f"{bname}: no patched host detected (exit 77)")
        elif brc[0] != 0:
            failures.append(f"{bname} exit {brc[0]}")
    if binary and rc not in (0, 127) and not timed_out(rc, secs, limit):
        failures.append(f"{binary} exit {rc}")
    # Required result files.
    missing = [p for p in files if not glob.glob(os.path.join(l1, p))]
    problems += [f"missing result {p}" for p in missing]
    # L2 writes its results and then reboots, which -no-reboot turns into
    # QEMU exit 0: exit 0 without results is an L2 that reset (or triple
    # faulted) mid-run - the rare nested-SVM-under-TCG fault.
    if s.lost and not done:
        k, t = s.lost[-1]
        what = {"reset": f"L2 reset after {t:.0f}s, before writing results",
                "hang": f"L2 hung: killed after {t:.0f}s"}.get(k, f"L2 lost ({k}) after {t:.0f}s")
        problems.append(what + (f" (every attempt of {len(s.lost)} lost: "
                                + describe_lost(s.lost) + ")" if len(s.lost) > 1 else ""))
    elif missing and not binary and rc == 0 and done:
        # L2's init ran to its end mark: nothing reset; the program wrote
        # no results (--l2-args --show or --list: a display, not a check;
        # or it died without them).
        problems.append("L2 ran to its end without writing them (exit_stress "
                        "--show or --list checks nothing; otherwise see its log)")
    elif missing and not binary and rc == 0:
        problems.append(f"L2 reset after {secs:.0f}s, before writing results")
    # JUnit.
    xmls = sorted(set(glob.glob(os.path.join(l1, "junit", f"{name}.xml")) if binary
                      else glob.glob(os.path.join(l1, name, "junit", "*.xml"))))
    junit_results(res, xmls, junit_rows, problems, failures)
    # exit_stress summaries: the exit table, what host it found, and the
    # bug classes of what failed.
    work = exit_stress_results(res, os.path.join(l1, name), label, exits, hosts, problems, notes)
    flood = log_flood(os.path.join(st, f"{name}.kmsg"), work)
    if flood:
        failures.append(flood)
    if problems:
        s.status, s.note = "INFRA", "; ".join(problems + failures)
        s.tail = s.tail or log
        return s, True
    if failures:
        s.status, s.note = "FAIL", "; ".join(failures + [n for n in notes if n.startswith("findings")])
        s.tail = s.tail or log
    else:
        s.status, s.note = "PASS", "; ".join(notes)
    return s, previous_failed


def collect(res):
    exits, junit_rows = [], []
    hosts = []  # (stage label, host words, rubric, leaves) from exit_stress --json
    t_collect = time.monotonic()

    # Host stages, in pipeline order.
    host, stages = host_stages(res)

    l1 = os.path.join(res, "l1")
    l1_end = read_triple(os.path.join(res, "l1.end"))
    console = os.path.join(res, "logs", "l1-console.log")
    expected = []
    for line in (read(os.path.join(res, "expected.tsv"), "") or "").splitlines():
        name, label, files = (line.split("\t") + ["", ""])[:3]
        expected.append((name, label, files.split()))

    # L1 boot.
    boot, booted = l1_boot_stage(res, l1, l1_end, console)
    stages.append(boot)

    # L1 stages.
    previous_failed = not booted
    for name, label, files in expected:
        s, previous_failed = l1_stage(res, l1, l1_end, console, name, label, files,
                                      previous_failed, exits, junit_rows, hosts)
        stages.append(s)

    # A backend with its own stage table (ci/bochs/run-l1 for --vmx).
    for name, status, secs, note in stage_rows(os.path.join(l1, "bochs", "stages.tsv")):
        try:
            fsecs = float(secs) if secs else None
        except ValueError:
            fsecs = None
        s = Stage(f"vmx-{name}", f"VMX {name}", status, fsecs, note)
        if status in ("FAIL", "INFRA"):
            s.tail = os.path.join(l1, "bochs", "logs", "console.log")
        stages.append(s)

    # The backend's own exit code: QEMU ends 0 after L1's final reboot; any
    # other code with no failing stage to explain it is still a failure.
    if l1_end is not None and l1_end[0] != 0 and booted and not any(
            x.status in ("FAIL", "INFRA") for x in stages):
        s = Stage("l1-backend", "L1 emulator", "INFRA", l1_end[1],
                  "timed out" if l1_end[0] == 124
                  else HEARTBEAT_NOTE if l1_end[0] == HEARTBEAT_RC else f"exit {l1_end[0]}")
        s.tail = os.path.join(res, "logs", "l1-backend.log")
        stages.append(s)

    for x in sorted(glob.glob(os.path.join(l1, "bochs", "junit", "*.xml"))):
        try:
            t, f, e, sk, _ = junit_counts(x)
            junit_rows.append((os.path.relpath(x, res), str(t), str(f), str(e), str(sk)))
        except (ET.ParseError, OSError):
            pass  # ci/bochs/run-l1 judges its own files; this is display only

    # Host-side skips recorded for L1 stages (e.g. no benchmarks built).
    for name, p in host.items():
        if name not in HOST_ORDER and not any(x.name == name for x in stages):
            stages.append(Stage(name, name, p[1], float(p[2] or 0), p[3]))

    # Kernel logs: L1's console (all of L1's life) and each L2's console.
    conf = dict(l.split("=", 1) for l in (read(os.path.join(res, "run.conf"), "") or "").splitlines()
                if "=" in l)
    sanitizer = conf.get("sanitizer", "")
    klogs = [(console, "L1")]
    for name, label, _ in expected:
        if name not in L1_BINARIES:
            klogs.append((os.path.join(l1, "logs", f"{name}.console.log"), label))
    for log, who in klogs:
        klog_json = os.path.join(res, "logs", f"klog-{who.replace(' ', '_')}.json")
        r = scan_klog(log, who, klog_json, sanitizer, conf.get("patch_dir") or PATCH_DIR)
        if r is not None:
            s = Stage(f"klog-{who}", f"kernel log ({who})", r[0], None, r[1])
            if r[0] != "PASS":
                s.tail = log
                reports = klog_reports(klog_json)
                s.elsewhere = reports is not None and not any(r.get("in_patch") for r in reports)
                stall = who != "L1" and s.elsewhere and guest_stall_only(reports)
                if stall:
                    s.status = "PASS"
                    s.note = (f"L2 stalled outside the patch's code ({stall}): the "
                              "emulator's timing, not a finding (the L2 stage's own "
                              "checks judge the patch)")[:200]
            stages.append(s)

    host_break(stages, os.path.join(res, "logs", "klog-L1.json"))

    # A run that never got to L1 and names no failure is still not a pass.
    if l1_end is None and not any(x.status in ("FAIL", "INFRA") for x in stages):
        stages.append(Stage("incomplete", "run", "INFRA", None,
                            "incomplete: L1 never ran and no stage says why"))

    coll = Stage("collect", "collect", "PASS", time.monotonic() - t_collect)
    stages.append(coll)
    return stages, exits, junit_rows, hosts


def klog_reports(path):
    """The reports in ci/sanitizers/scan-klog's JSON, or None if it cannot
    be read (then any of them may be the patch's)."""
    try:
        with open(path) as f:
            return list(json.load(f).get("reports", []))
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def guest_stall_only(reports):
    """The first report's title when every report in an L2 kernel log is a
    stall (RCU, soft lockup) outside the patch's code, else "". L2 runs no
    patched code; under Bochs its vCPUs are starved for seconds at a time
    (measured: an RCU stall in do_idle during a passing exit_stress run),
    so such a stall says nothing of the submission, while any other report
    there (a WARN about a CPUID leaf the patch changed) still fails."""
    if reports and all(not r.get("in_patch") and HANG.search(r.get("title", "")) for r in reports):
        return reports[0].get("title", "")
    return ""


def lost_mid_run(stages):
    """The stage an L1 died or went silent in, with no test failed before and
    no report in the patch's code to explain it (host_break), as
    "NAME\tNOTE"; None when the run needs no repeat. ci/nested-run repeats
    such an L1 run once (repeat_rule judges the pair). A kernel report
    outside the patch's code does not stop the repeat: an emulator that
    loses an IPI stalls L2 (RCU) and then L1, and both are its doing
    (measured: an L2 RCU stall in smp_call_function_many_cond, then L1's
    heartbeat lost with a vCPU in the same function, on a loaded host)."""
    if any(s.status == "FAIL" and not s.elsewhere for s in stages):
        return None
    for s in stages:
        if s.status == "INFRA" and s.note.startswith(("did not finish: L1", "not reached: L1")):
            return f"{s.name}\t{s.note}"
    return None


def repeat_rule(stages, res):
    """An L1 run lost mid-run was repeated (res/l1-mid.lost: "NAME\tNOTE" of
    the first attempt). Lost again in the same stage: the patch breaks its
    host there, the bug class `host hang` (it stopped responding) or `host
    oops` (it died), not the infrastructure. The repeat got past it: the
    emulator's, and the stage says so."""
    first = (read(os.path.join(res, "l1-mid.lost"), "") or "").strip().split("\t", 1)
    if len(first) != 2:
        return
    name, note = first
    again = lost_mid_run(stages)
    failed = None
    for s in stages:
        if failed and s.status == "INFRA" and s.note.startswith("not reached"):
            s.status, s.tail = "-", None
            s.note = f"not reached (L1 was lost in {failed} on both attempts)"
        if s.name != name:
            continue
        if again and again.split("\t", 1)[0] == name:
            cls = "host hang" if "stopped responding" in note + s.note else "host oops"
            s.status, failed = "FAIL", s.label
            a, b = note.split(": ", 1)[-1], s.note.split(": ", 1)[-1]
            s.note = (f"{cls} (bug class): L1 was lost in this stage on both attempts ("
                      + (a if a == b else f"first: {a}; repeat: {b}")
                      + "; the first attempt is in l1.midlost/)")[:240]
        else:
            s.note = "; ".join(filter(None, [s.note, f"L1 lost here once ({note}), repeated"]))


def stage_rows(path):
    """(stage, status, seconds, note) rows of a stages.tsv; the verdict row
    "total" and the header of a folder from before the rows were shared
    ("stage status seconds note") are not stages."""
    rows = []
    for line in (read(path, "") or "").splitlines():
        stage, status, secs, note = (line.split("\t") + ["", "", "", ""])[:4]
        if stage and stage not in ("stage", "total"):
            rows.append((stage, status, secs, note))
    return rows


def stage_table_verdict(res, suite, runner):
    """The verdict of a runner whose every stage is a row of its stages.tsv
    (ci/bochs/run-l1: host stages and guest steps alike): junit/RUNNER.xml
    with one testcase per stage (a FAIL or INFRA carries the tail of the
    step's own log, else the console's), summary.txt, and the exit code the
    worst row gives (INFRA over FAIL)."""
    rows = stage_rows(os.path.join(res, "stages.tsv"))
    ts = ET.Element("testsuite", name=suite, tests=str(len(rows)))
    counts = {"FAIL": 0, "INFRA": 0, "SKIP": 0}
    for stage, status, secs, note in rows:
        tc = ET.SubElement(ts, "testcase", classname=suite, name=stage, time=secs or "0")
        log = os.path.join(res, "l1", stage + ".log")
        if not os.path.exists(log):
            log = os.path.join(res, "logs", "console.log")
        if status in counts:
            counts[status] += 1
        if status == "FAIL":
            ET.SubElement(tc, "failure", message=note).text = tail(log)
        elif status == "INFRA":
            ET.SubElement(tc, "error", message=note).text = tail(log)
        elif status == "SKIP":
            ET.SubElement(tc, "skipped", message=note)
    ts.set("failures", str(counts["FAIL"]))
    ts.set("errors", str(counts["INFRA"]))
    ts.set("skipped", str(counts["SKIP"]))
    os.makedirs(os.path.join(res, "junit"), exist_ok=True)
    ET.ElementTree(ts).write(os.path.join(res, "junit", f"{runner}.xml"),
                             encoding="unicode", xml_declaration=True)
    if counts["INFRA"]:
        code, verdict = EXIT_INFRA, "INFRA (a stage did not run, finish or return its results)"
    elif counts["FAIL"]:
        code, verdict = EXIT_TESTS, "FAIL (tests failed)"
    else:
        code, verdict = EXIT_OK, "PASS"
    text = "\n".join([f"{runner} {suite}", table(("stage", "status", "seconds", "note"), rows),
                      f"verdict: {verdict}"])
    with open(os.path.join(res, "summary.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    return code


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--quiet", action="store_true", help="no log tails")
    ap.add_argument("--lost-mid-run", action="store_true",
                    help="only print the stage an L1 was lost in (nested-run's repeat), or nothing")
    ap.add_argument("--stage-table", metavar="SUITE",
                    help="judge a runner whose every stage is a stages.tsv row "
                         "(ci/bochs/run-l1): JUnit, summary.txt, exit code")
    ap.add_argument("--runner", default="run-l1", help="with --stage-table: the JUnit file's name")
    args = ap.parse_args(argv)
    res = args.results
    if args.stage_table:
        return stage_table_verdict(res, args.stage_table, args.runner)
    stages, exits, junit_rows, hosts = collect(res)
    if args.lost_mid_run:
        lost = lost_mid_run(stages)
        if lost:
            print(lost)
        return 0
    repeat_rule(stages, res)

    out = ["", "=== nested-run verdict ===", ""]
    conf = read(os.path.join(res, "run.conf"))
    if conf:
        out.append(" ".join(conf.split()))
        out.append("")
    out.append(table(("stage", "status", "wall s", "note"), [s.row() for s in stages]))
    if exits:
        out += ["", "exit types (exit_stress --json):", ""]
        out.append(table(("exit", "vCPUs", "expected", "observed", "result"), exits))
    if hosts:
        # What the guest suite found, once per distinct answer (the shapes agree
        # unless something is wrong).
        out += [""]
        seen = {}
        for _, host, rubric, leaves in hosts:
            seen.setdefault((host, rubric), leaves)
        for (host, rubric), leaves in seen.items():
            out.append(f"host: {host}; rubric {rubric or '?'}")
            out.append(f"leaves: {leaves}")
    if junit_rows:
        out += ["", "JUnit files:", ""]
        out.append(table(("file", "tests", "failures", "errors", "skipped"), junit_rows))
    infra = [s for s in stages if s.status == "INFRA"]
    fail = [s for s in stages if s.status == "FAIL"] + \
        [None for e in exits if e[4] == "FAIL"]
    if infra:
        code = EXIT_INFRA
        causes = [s for s in infra if not s.note.startswith("not reached")]
        verdict = "INFRASTRUCTURE FAILURE in: " + ", ".join(s.label for s in causes or infra)
        if causes and len(causes) < len(infra):
            verdict += f" ({len(infra) - len(causes)} later stage(s) not reached)"
    elif fail:
        code = EXIT_TESTS
        names = sorted({s.label for s in fail if s is not None})
        verdict = "TESTS FAILED in: " + (", ".join(names) or "exit table")
    else:
        code = EXIT_OK
        verdict = "PASS"
    # Host stages plus the whole L1 run as the host timed it (the L1 stages
    # are inside it; summing them too would count the boot twice).
    l1_end = read_triple(os.path.join(res, "l1.end"))
    total = sum(s.secs or 0 for s in stages if s.name in HOST_ORDER + ["collect"])
    total += l1_end[1] if l1_end else 0
    words = f" - {hosts[0][1]}, rubric {hosts[0][2]}" if hosts else ""
    out += ["", f"total wall: {total:.1f}s", f"VERDICT: {verdict} (exit {code}){words}", ""]
    text = "\n".join(out)
    tails = []
    if not args.quiet:
        first_infra = infra[:1]
        for s in [*first_infra, *[x for x in stages if x.status == "FAIL"]]:
            if s.tail:
                tails.append(f"{s.label}: {s.note}\n{tail(s.tail)}")
    if tails:
        print("\n\n".join(tails), file=sys.stderr)
        sys.stderr.flush()
    print(text)
    with open(os.path.join(res, "verdict.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(res, "verdict.json"), "w") as f:
        json.dump({"exit": code, "verdict": verdict,
                   "host": hosts[0][1] if hosts else "",
                   "rubric": hosts[0][2] if hosts else "",
                   "leaves": hosts[0][3] if hosts else "",
                   "stages": [dict(zip(("stage", "status", "seconds", "note"), s.row()),
                                   name=s.name, lost=len(s.lost),
                                   lost_attempts=[{"kind": k, "seconds": t} for k, t in s.lost])
                              for s in stages],
                   "exits": [dict(zip(("exit", "vcpus", "expected", "observed", "result"), e))
                             for e in exits],
                   "junit": [dict(zip(("file", "tests", "failures", "errors", "skipped"), j))
                             for j in junit_rows]}, f, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
