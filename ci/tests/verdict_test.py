#!/usr/bin/env python3
"""Unit tests of ci/lib/verdict.py on synthetic results folders (label `unit`).

Each case builds the files an L1 run leaves behind, with one thing broken,
and checks the exit code and that the verdict names the right stage. The
bug each case catches is in its docstring.
"""
import atexit
import io
import shutil
import json
import os
import sys
import tempfile
import unittest
from unittest import mock
from contextlib import redirect_stderr, redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import verdict  # noqa: E402

JUNIT_OK = """<?xml version="1.0"?>
<testsuites tests="2" failures="0"><testsuite name="S" tests="2">
<testcase name="a" classname="S"/><testcase name="b" classname="S"/>
</testsuite></testsuites>"""
JUNIT_FAIL = """<?xml version="1.0"?>
<testsuites tests="2" failures="1"><testsuite name="S" tests="2">
<testcase name="a" classname="S"><failure message="boom"/></testcase>
<testcase name="b" classname="S"/></testsuite></testsuites>"""
JUNIT_EMPTY = """<?xml version="1.0"?><testsuites tests="0"></testsuites>"""
# The shape exit_stress --json writes (stress/guest/report.cc).
SUMMARY_OK = {"profile": "sjsu", "vcpus": 2, "exit_status": 0, "checks": [],
              "exits": {"cpuid": {"vcpus": 2, "expected": 1000, "observed": 1000,
                                  "pass": True, "status": "pass"},
                        "hlt": {"vcpus": 2, "expected": 10, "observed": 12,
                                "pass": True, "status": "pass"}}}


class Results:
    """A results folder as a passing two-shape run leaves it."""

    def __init__(self, shapes=(2, 4)):
        self.dir = tempfile.mkdtemp(prefix="verdict_test.")
        atexit.register(shutil.rmtree, self.dir, True)
        self.shapes = shapes
        self.put("stages.tsv", "".join(f"{s}\tPASS\t1.0\t\n" for s in verdict.HOST_ORDER))
        exp = "harness\tharness in L1\tjunit/harness.xml\n"
        for n in shapes:
            exp += (f"l2-{n}vcpu\tL2 {n}-vCPU\tl2-{n}vcpu/junit/exit_stress.xml "
                    f"l2-{n}vcpu/json/exit_stress.json\n")
        self.put("expected.tsv", exp)
        self.put("l1.end", "0 100.0 1800")
        self.put("logs/l1-console.log", "[    0.0] Linux version 6.12\nkvm_amd: Nested Paging enabled\n")
        self.put("l1/stages/l1-boot.host", "5.0")
        self.put("l1/stages/l1-boot.end", "1.0")
        self.stage("harness", "0 10.0 480")
        self.put("l1/junit/harness.xml", JUNIT_OK)
        self.put("l1/logs/harness.log", "[  PASSED  ] 2 tests.\n")
        for n in shapes:
            st = f"l2-{n}vcpu"
            self.stage(st, "0 20.0 600")
            self.put(f"l1/{st}/junit/exit_stress.xml", JUNIT_OK)
            self.put(f"l1/{st}/json/exit_stress.json", json.dumps(SUMMARY_OK))
            self.put(f"l1/{st}/rc/exit_stress", "0 15.0 480")
            self.put(f"l1/{st}/vcpus", f"{n}\n")
            self.put(f"l1/{st}/done", "19.0\n")
            self.put(f"l1/logs/{st}.console.log", "l2-init: done\n")

    def put(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def rm(self, rel):
        os.remove(os.path.join(self.dir, rel))

    def stage(self, name, end):
        self.put(f"l1/stages/{name}.start", "1.0")
        if end is not None:
            self.put(f"l1/stages/{name}.end", end)

    def run(self):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = verdict.main(["--results", self.dir])
        return code, out.getvalue(), err.getvalue()


def line_of(text, label):
    return next((l for l in text.splitlines() if l.startswith(label)), "")


class VerdictTest(unittest.TestCase):
    def test_clean_run_passes(self):
        """A verdict that never says PASS (or passes with a table missing) is broken."""
        code, out, _ = Results().run()
        self.assertEqual(code, 0, out)
        self.assertIn("VERDICT: PASS", out)
        for label in ("deps", "L1 boot", "harness in L1", "L2 2-vCPU", "L2 4-vCPU", "collect"):
            self.assertIn("PASS", line_of(out, label), label)
        self.assertIn("cpuid", out)  # the exit table is printed

    def test_verdict_names_the_host_and_the_findings(self):
        """Catches: a verdict that does not say what host the suite found, or
        failures without their bug class."""
        r = Results()
        summary = dict(SUMMARY_OK, host="patched: course leaves only (profile sjsu, assignment 3)",
                       rubric="course", leaves="0x4FFFFFFF: total exits + cycles",
                       checks=[{"check": "exact", "exit": "cpuid", "status": "FAIL",
                                "classes": ["lost updates"]}])
        for n in (2, 4):
            r.put(f"l1/l2-{n}vcpu/json/exit_stress.json", json.dumps(summary))
        r.put("l1/l2-4vcpu/junit/exit_stress.xml", JUNIT_FAIL)
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertEqual(out.count("host: patched: course leaves only"), 1, out)
        self.assertIn("findings: exact cpuid [lost updates]", line_of(out, "L2 4-vCPU"))
        self.assertIn("- patched: course leaves only (profile sjsu, assignment 3), rubric course", out)

    def test_junit_failure_is_a_test_failure(self):
        """Catches: JUnit failures ignored, or reported as infrastructure."""
        r = Results()
        r.put("l1/l2-4vcpu/junit/exit_stress.xml", JUNIT_FAIL)
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL", line_of(out, "L2 4-vCPU"))
        self.assertIn("S.a", out)

    def test_l2_timeout_is_infra_and_named(self):
        """Catches: a hung L2 (killed by timeout) counted as a pass or a test failure."""
        r = Results()
        r.put("l1/stages/l2-2vcpu.end", "143 600.2 600")
        r.rm("l1/l2-2vcpu/json/exit_stress.json")
        r.put("l1/logs/l2-2vcpu.console.log", "l2-init: ci.hang=1: hanging on purpose\n")
        code, out, err = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("timed out after 600s", line_of(out, "L2 2-vCPU"))
        self.assertIn("INFRASTRUCTURE FAILURE in: L2 2-vCPU", out)
        self.assertIn("hanging on purpose", err)  # the log tail is shown

    def test_missing_result_is_infra(self):
        """Catches: a stage that exits 0 but never wrote its JSON passing vacuously."""
        r = Results()
        r.rm("l1/l2-4vcpu/json/exit_stress.json")
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("missing result l2-4vcpu/json/exit_stress.json", out)
        self.assertIn("L2 ran to its end without writing them", out)
        # Without L2's end mark it reset mid-run.
        r.rm("l1/l2-4vcpu/done")
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("L2 reset after 20s, before writing results", out)

    def test_l2_reset_then_repeated_passes_and_says_so(self):
        """Catches: a lost-and-repeated L2 boot hidden (no note, no JSON count) or failed."""
        r = Results()
        r.put("l1/stages/l2-2vcpu.lost", "reset 12.3\n")
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        row = line_of(out, "L2 2-vCPU")
        self.assertIn("PASS", row)
        self.assertIn("reset once at 12 s, repeated", row)
        with open(os.path.join(r.dir, "verdict.json")) as f:
            stages = {s["name"]: s for s in json.load(f)["stages"]}
        self.assertEqual(stages["l2-2vcpu"]["lost"], 1)
        self.assertEqual(stages["l2-4vcpu"]["lost"], 0)

    def test_l2_lost_every_attempt_is_infra(self):
        """Catches: a shape that lost every attempt passing on an earlier attempt's files."""
        r = Results()
        r.put("l1/stages/l2-4vcpu.lost", "reset 9.0\nreset 20.0\nhang 420.0\n")
        r.rm("l1/l2-4vcpu/done")
        r.rm("l1/l2-4vcpu/json/exit_stress.json")
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        row = line_of(out, "L2 4-vCPU")
        self.assertIn("L2 hung: killed after 420s", row)
        self.assertIn("every attempt of 3 lost: lost 3: reset at 9 s, reset at 20 s, hang at 420 s", row)

    def test_harness_lost_to_a_payload_triple_fault_then_repeated_passes(self):
        """Catches: a harness attempt lost to the emulator (and repeated) hidden from the verdict."""
        r = Results()
        r.put("l1/stages/harness.lost", "shutdown 14.4\n")
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        self.assertIn("payload triple fault once at 14 s, repeated", line_of(out, "harness in L1"))

    def test_l1_lost_at_boot_then_booted_again_says_so(self):
        """Catches: an L1 boot that was repeated after a panic, hidden from the verdict."""
        r = Results()
        r.put("l1-boot.lost", "panicked at boot after 4.2 s\n")
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        self.assertIn("L1 panicked at boot after 4.2 s, booted again", line_of(out, "L1 boot"))

    def with_bzimage(self, header_version, banner):
        r = Results()
        image = bytearray(0x400)
        image[0x202:0x206] = b"HdrS"
        image[0x20E:0x210] = (0x300 - 0x200).to_bytes(2, "little")
        image[0x300:0x300 + len(header_version)] = header_version.encode()
        with open(os.path.join(r.dir, "bzImage"), "wb") as f:
            f.write(image)
        r.put("kernel.path", os.path.join(r.dir, "bzImage") + "\n")
        r.put("l1/logs/l1-dmesg.log", f"[    0.000000] Linux version {banner}\n")
        return r.run()

    def test_l1_that_booted_another_build_is_infra(self):
        """Catches: a boot image whose payload is an older build (a cached piggy.o
        once booted the previous kernel under a mutant's name, and the mutant
        survived): nothing that ran judged --kernel."""
        code, out, _ = self.with_bzimage(
            "6.12.118 (root@vm) #6 SMP Sun Dec  6 23:55:19 UTC 2026",
            "6.12.118 (root@vm) (gcc (Debian 12.2.0-14+deb12u1) 12.2.0) #2 SMP Sun Dec  6 22:07:36 UTC 2026")
        self.assertEqual(code, 3, out)
        self.assertIn("INFRA", line_of(out, "L1 boot"))
        self.assertIn("L1 booted 6.12.118 #2 SMP Sun Dec 6 22:07:36 UTC 2026", line_of(out, "L1 boot"))

    def test_l1_that_booted_the_named_build_passes(self):
        """A check that also fails the right kernel: header and banner spell the
        date with different spacing and the banner adds the compiler."""
        code, out, _ = self.with_bzimage(
            "6.12.118 (root@vm) #6 SMP Sun Dec  6 23:55:19 UTC 2026",
            "6.12.118 (root@vm) (gcc (Debian 12.2.0-14+deb12u1) 12.2.0) #6 SMP Sun Dec 6 23:55:19 UTC 2026")
        self.assertEqual(code, 0, out)
        self.assertIn("PASS", line_of(out, "L1 boot"))

    def test_l2_qemu_error_is_not_called_a_reset(self):
        """Catches: a QEMU that failed (exit 1) mislabelled as an L2 reset."""
        r = Results()
        r.put("l1/stages/l2-4vcpu.end", "1 3.0 600")
        r.rm("l1/l2-4vcpu/json/exit_stress.json")
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("QEMU for L2 exited 1", out)
        self.assertNotIn("L2 reset", out)

    def test_empty_junit_is_infra(self):
        """Catches: a filter that selected nothing passing with zero tests."""
        r = Results()
        r.put("l1/junit/harness.xml", JUNIT_EMPTY)
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("holds no tests", line_of(out, "harness in L1"))

    def test_l1_died_mid_stage_names_it_and_later_stages(self):
        """Catches: a panic/timeout in L1 blamed on no stage, or later stages passing."""
        r = Results()
        r.put("l1.end", "124 1800.0 1800")
        r.rm("l1/stages/harness.end")
        for n in r.shapes:
            for f in ("l1/stages/l2-%dvcpu.start", "l1/stages/l2-%dvcpu.end"):
                r.rm(f % n)
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("did not finish: L1 timed out after 1800s", line_of(out, "harness in L1"))
        self.assertIn("not reached", line_of(out, "L2 2-vCPU"))

    def test_l1_that_stopped_responding_names_the_stage_and_the_registers(self):
        """Catches: a wedged L1 (heartbeat lost, run-qemu.sh exit 125) told
        only as "exit 125", or without pointing at the saved registers."""
        r = Results()
        r.put("l1.end", "125 95.0 1800")
        r.rm("l1/stages/l2-2vcpu.end")
        r.rm("l1/stages/l2-4vcpu.start")
        r.rm("l1/stages/l2-4vcpu.end")
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("L1 stopped responding (its heartbeat stopped)", line_of(out, "L2 2-vCPU"))
        self.assertIn("l1/logs/l1-hang.txt", line_of(out, "L2 2-vCPU"))
        self.assertIn("not reached (an earlier stage failed)", line_of(out, "L2 4-vCPU"))
        # Silent before its first stage: the first stage says why.
        r = Results()
        r.put("l1.end", "125 70.0 1800")
        for st in ["harness"] + [f"l2-{n}vcpu" for n in r.shapes]:
            r.rm(f"l1/stages/{st}.start")
            r.rm(f"l1/stages/{st}.end")
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("not reached: L1 stopped responding", line_of(out, "harness in L1"))

    def test_kernel_log_flood_is_the_patchs_finding(self):
        """Catches: a printk on every exit (thousands of kernel log records
        in one L2 stage) passing, or the reference's few dozen failing."""
        r = Results()
        r.put("l1/stages/l2-2vcpu.kmsg", "1000\n1040\n")   # 39 records: quiet
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        # SUMMARY_OK's work is 1010 operations: the limit is FLOOD_MIN.
        r.put("l1/stages/l2-4vcpu.kmsg", "1000\n9001\n")
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("log flood (bug class): L1 logged 8000 kernel records", line_of(out, "L2 4-vCPU"))
        self.assertIn("792.1 per 100 guest operations", line_of(out, "L2 4-vCPU"))
        # Not measured (mark not found): no finding either way.
        r.put("l1/stages/l2-4vcpu.kmsg", "1000\n0\n")
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)

    def test_l1_lost_twice_in_the_same_stage_is_the_patchs_host_hang(self):
        """Catches: a submission that wedges its host every time reported as
        an infrastructure failure, or (the other way) an emulator loss that
        the repeat got past still failing the run."""
        first = "harness\tdid not finish: L1 stopped responding (its heartbeat stopped); x"
        r = Results()
        r.put("l1-mid.lost", first + "\n")
        r.put("l1.end", "125 95.0 1800")
        r.rm("l1/stages/harness.end")
        for n in r.shapes:
            r.rm(f"l1/stages/l2-{n}vcpu.start")
            r.rm(f"l1/stages/l2-{n}vcpu.end")
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("host hang (bug class): L1 was lost in this stage on both attempts",
                      line_of(out, "harness in L1"))
        self.assertIn("not reached (L1 was lost in harness in L1", line_of(out, "L2 2-vCPU"))
        # The repeat ran through: a pass that says what happened.
        r = Results()
        r.put("l1-mid.lost", first + "\n")
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        self.assertIn("L1 lost here once", line_of(out, "harness in L1"))

    def test_lost_mid_run_names_the_stage_for_the_repeat(self):
        """Catches: nested-run repeating a run whose tests had already
        failed (repeating findings away), or not repeating a lost one."""
        r = Results()
        r.put("l1.end", "125 95.0 1800")
        r.rm("l1/stages/l2-2vcpu.end")
        out = io.StringIO()
        with redirect_stdout(out):
            verdict.main(["--results", r.dir, "--lost-mid-run"])
        self.assertTrue(out.getvalue().startswith("l2-2vcpu\tdid not finish: L1 stopped responding"),
                        out.getvalue())
        r.put("l1/junit/harness.xml", JUNIT_FAIL)
        out = io.StringIO()
        with redirect_stdout(out):
            verdict.main(["--results", r.dir, "--lost-mid-run"])
        self.assertEqual(out.getvalue(), "")

    def test_a_kernel_report_elsewhere_does_not_stop_the_lost_l1_repeat(self):
        """Catches: an L1 lost to the emulator (an IPI never delivered: L2
        stalls in RCU, then L1 stops responding) judged at once because of
        the stall report in L2's console, which names no function of the
        patch; and the other way, a report in the patch's code repeated away."""
        stall = ("[  24.4] rcu: INFO: rcu_sched self-detected stall on CPU\n"
                 "[  24.8] RIP: 0010:%s+0x1e6/0x370\n"
                 "[  24.8] Call Trace:\n"
                 "[  24.8]  <TASK>\n"
                 "[  24.8]  %s+0x1e6/0x370\n"
                 "[  24.8]  on_each_cpu_cond_mask+0x1b/0x30\n"
                 "[  24.8]  </TASK>\n")
        for fn, repeated in (("smp_call_function_many_cond", True), ("exit_stats_query", False)):
            r = Results()
            r.put("l1.end", "125 95.0 1800")
            r.rm("l1/stages/l2-4vcpu.end")
            r.put("l1/logs/l2-4vcpu.console.log", stall % (fn, fn))
            out = io.StringIO()
            with redirect_stdout(out):
                verdict.main(["--results", r.dir, "--lost-mid-run"])
            if repeated:
                self.assertTrue(out.getvalue().startswith("l2-4vcpu\tdid not finish: L1 stopped"),
                                out.getvalue())
            else:
                self.assertEqual(out.getvalue(), "", fn)

    def l1_oops_in(self, fn):
        r = Results()
        r.put("l1.end", "0 95.0 600")
        for n in r.shapes:
            for f in ("l1/stages/l2-%dvcpu.start", "l1/stages/l2-%dvcpu.end"):
                r.rm(f % n)
        r.put("l1/stages/l2-2vcpu.start", "1")
        r.put("logs/l1-console.log",
              "[  50.0] BUG: unable to handle page fault for address: ffffc90400001000\n"
              "[  50.0] #PF: supervisor read access in kernel mode\n"
              "[  50.0] Oops: 0000 [#1] PREEMPT SMP NOPTI\n"
              "[  50.0] RIP: 0010:%s+0x3c/0x1a0\n"
              "[  50.0] Call Trace:\n"
              "[  50.0]  <TASK>\n"
              "[  50.0]  %s+0x3c/0x1a0\n"
              "[  50.0]  kvm_emulate_cpuid+0x50/0x60\n"
              "[  50.0]  </TASK>\n"
              "[  50.1] Kernel panic - not syncing: Fatal exception\n" % (fn, fn))
        return r.run()

    def test_l1_oops_in_the_patch_is_its_finding_not_infra(self):
        """Catches: a submission that oopses its host (an unbounded index on
        the guest's ECX) reported as an infrastructure failure, or (the other
        way) an emulator fault outside the patch's code blamed on the patch."""
        code, out, _ = self.l1_oops_in("exit_stats_query")
        self.assertEqual(code, 1, out)
        self.assertIn("host oops (bug class) in the patch's code", line_of(out, "L2 2-vCPU"))
        self.assertIn("not reached (L1 died of the host oops", line_of(out, "L2 4-vCPU"))
        code, out, _ = self.l1_oops_in("fdget")
        self.assertEqual(code, 3, out)
        self.assertIn("did not finish: L1 ended", line_of(out, "L2 2-vCPU"))

    def test_l1_silent_with_a_vcpu_in_the_patch_is_its_host_hang_at_once(self):
        """Catches: the host's SysRq l answer (an NMI backtrace per CPU,
        asked when L1's heartbeat stops) ignored, so a vCPU spinning in
        the patch's code is repeated and only then called a hang; and the
        other way, an idle CPU's backtrace blamed on the patch."""
        nmi = ("[  60.1] sysrq: Show backtrace of all active CPUs\n"
               "[  60.1] NMI backtrace for cpu 1\n"
               "[  60.1] CPU: 1 UID: 0 PID: 77 Comm: qemu-system-x86 Not tainted 6.12.118\n"
               "[  60.1] RIP: 0010:%s+0x3c/0x1a0\n"
               "[  60.1] Call Trace:\n"
               "[  60.1]  <TASK>\n"
               "[  60.1]  ? kvm_emulate_cpuid+0x50/0x60\n"
               "[  60.1]  </TASK>\n")
        for fn, finding in (("exit_stats_query", True), ("pv_native_safe_halt", False)):
            r = Results()
            r.put("l1.end", "125 95.0 1800")
            r.rm("l1/stages/l2-2vcpu.end")
            r.rm("l1/stages/l2-4vcpu.start")
            r.rm("l1/stages/l2-4vcpu.end")
            r.put("logs/l1-console.log", nmi % fn)
            code, out, _ = r.run()
            if finding:
                self.assertEqual(code, 1, out)
                self.assertIn("host hang (bug class) in the patch's code (RIP is in "
                              "exit_stats_query(), the patch's): NMI backtrace for cpu 1",
                              line_of(out, "L2 2-vCPU"))
            else:
                self.assertEqual(code, 3, out)
                self.assertIn("L1 stopped responding", line_of(out, "L2 2-vCPU"))
                self.assertIn("PASS", line_of(out, "kernel log (L1)"))

    def test_an_l2_rcu_stall_outside_the_patch_is_the_emulators(self):
        """Catches: a correct submission failed because Bochs starved an L2
        vCPU into an RCU stall (seen in do_idle during a passing run), and
        the other way, an L2 warning or an L1 stall waved through."""
        stall = ("[  18.8] rcu: INFO: rcu_sched self-detected stall on CPU\n"
                 "[  18.8] RIP: 0010:do_idle+0x1d0/0x1f0\n"
                 "[  18.8] Call Trace:\n[  18.8]  <TASK>\n"
                 "[  18.8]  ? cpu_startup_entry+0x20/0x30\n[  18.8]  </TASK>\n")
        warn = ("[  18.8] WARNING: CPU: 0 PID: 1 at arch/x86/kernel/cpu/common.c:99 f+0x1/0x2\n"
                "[  18.8] Call Trace:\n[  18.8]  ? g+0x1/0x2\n")
        r = Results()
        r.put("l1/logs/l2-2vcpu.console.log", "l2-init: done\n" + stall)
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        self.assertIn("L2 stalled outside the patch's code", line_of(out, "kernel log (L2 2-vCPU)"))
        r.put("l1/logs/l2-2vcpu.console.log", "l2-init: done\n" + warn)
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        r = Results()
        r.put("logs/l1-console.log", "[    0.0] Linux version 6.12\n" + stall)
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)

    def test_sleep_with_irqs_off_in_the_patch_is_a_host_oops_l1_survived(self):
        """Catches: the atomic-sleep check's report of a mutex in the
        IRQs-off exit path (L1 lives on) failing only as an anonymous
        kernel report instead of the bug class, or not failing at all."""
        r = Results()
        r.put("logs/l1-console.log",
              "[  50.0] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283\n"
              "[  50.0] in_atomic(): 0, irqs_disabled(): 1, non_block: 0, pid: 99, name: qemu-system-x86\n"
              "[  50.0] Call Trace:\n"
              "[  50.0]  <TASK>\n"
              "[  50.0]  dump_stack_lvl+0x5d/0x80\n"
              "[  50.0]  __might_resched+0x14d/0x160\n"
              "[  50.0]  mutex_lock+0x1e/0x50\n"
              "[  50.0]  kvm_exit_stats_exit+0x2a/0x110\n"
              "[  50.0]  vcpu_enter_guest+0x8ed/0x1200\n"
              "[  50.0]  </TASK>\n")
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("host oops (bug class) in the patch's code", line_of(out, "kernel log (L1)"))
        self.assertIn("PASS", line_of(out, "L2 2-vCPU"))

    def test_l1_never_booted(self):
        """Catches: a kernel that never reaches /init reported as anything but L1 boot."""
        r = Results()
        r.put("l1.end", "0 3.0 1800")
        for f in ("l1/stages/l1-boot.host", "l1/stages/l1-boot.end"):
            r.rm(f)
        r.put("logs/l1-console.log", "Kernel panic - not syncing: VFS: Unable to mount root\n")
        code, out, err = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("INFRA", line_of(out, "L1 boot"))
        self.assertIn("Unable to mount root", err)

    def test_kernel_warning_fails_naming_the_log(self):
        """Catches: a WARN/KASAN splat in L1 ignored because every test passed."""
        r = Results()
        r.put("logs/l1-console.log",
              "[   1.0] kvm-exit-stats: stage harness begin\n"
              "[   2.0] WARNING: CPU: 1 PID: 42 at arch/x86/kvm/exit_stats.c:10 x+0x1/0x2\n"
              "[   2.1] ---[ end trace 0000000000000000 ]---\n")
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL", line_of(out, "kernel log (L1)"))

    def test_l2_panic_shown_on_l1s_console_is_not_l1s(self):
        """A check that also fails a correct design: l1-init shows the tail of
        a lost L2 attempt on L1's console, prefixed "L2| "; an L2 panic there
        (an emulator loss the repeat absorbed) once failed the reference's
        "kernel log (L1)" row as if L1 had panicked."""
        r = Results()
        r.put("logs/l1-console.log",
              "[ 100.0] kvm-exit-stats: stage bench begin\n"
              "L2| [   21.458066] RSP: 0000:fffffe0000002000 EFLAGS: 00010086\n"
              "L2| [   21.458577] Kernel panic - not syncing: Fatal exception in interrupt\n"
              "L2| [   21.467355] Kernel Offset: disabled\n"
              "l1-init: L2 bench attempt 1 lost: reset 29.9\n")
        code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        self.assertIn("PASS", line_of(out, "kernel log (L1)"))
        # Unprefixed, the same lines are L1's own panic.
        r.put("logs/l1-console.log",
              "[ 100.0] kvm-exit-stats: stage bench begin\n"
              "[  121.458577] Kernel panic - not syncing: Fatal exception in interrupt\n")
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)

    def with_hostile(self, rc, junit):
        r = Results(shapes=(2,))
        with open(os.path.join(r.dir, "expected.tsv"), "a") as f:
            f.write("hostile\thostile in L1\tjunit/hostile.xml\n")
        r.stage("hostile", f"{rc} 70.0 300")
        if junit:
            r.put("l1/junit/hostile.xml", junit)
        r.put("l1/logs/hostile.log", "[  FAILED  ] S.a\n")
        return r

    def test_hostile_stage_failure_is_a_test_failure(self):
        """Catches: the hostile stage's JUnit read as the harness's (or not at
        all), so a fuzz answer off SPEC passes the run."""
        code, out, _ = self.with_hostile(1, JUNIT_FAIL).run()
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL", line_of(out, "hostile in L1"))
        self.assertIn("hostile_test exit 1", line_of(out, "hostile in L1"))
        self.assertIn("PASS", line_of(out, "harness in L1"))

    def test_hostile_binary_missing_is_infra(self):
        """Catches: a stage whose binary was never built counted as passed."""
        code, out, _ = self.with_hostile(127, None).run()
        self.assertEqual(code, 3, out)
        self.assertIn("hostile_test not built", line_of(out, "hostile in L1"))

    def test_kcsan_race_elsewhere_is_listed_not_failed(self):
        """Catches: a KCSAN kernel failing every run on the kernel's known
        benign races, or (the other way) a race in the patch passing."""
        race = ("[   1.0] ==================================================================\n"
                "[   1.0] BUG: KCSAN: data-race in {fn} / {fn}\n"
                "[   1.0] \n[   1.0] write to 0xffff888003c1e0b8 of 8 bytes by task 1 on cpu 0:\n"
                "[   1.0]  {fn}+0x20/0x40\n"
                "[   1.0] ==================================================================\n")
        for fn, want in (("tick_sched_do_timer", 0), ("kvm_exit_stats_exit", 1)):
            r = Results(shapes=(2,))
            with open(os.path.join(r.dir, "run.conf"), "w") as f:
                f.write("accel=tcg\nsanitizer=kcsan\n")
            r.put("logs/l1-console.log", race.format(fn=fn))
            code, out, _ = r.run()
            self.assertEqual(code, want, out)

    def test_exit_table_failure(self):
        """Catches: an exit row marked failed in the summary not failing the run."""
        r = Results(shapes=(2,))
        bad = {"exits": {"wrmsr": {"vcpus": 2, "expected": 100, "observed": 99,
                                   "pass": False, "status": "fail"}}}
        r.put("l1/l2-2vcpu/json/exit_stress.json", json.dumps(bad))
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("wrmsr", out)

    def test_skip_exit_code_is_a_failure_in_a_patched_l1(self):
        """Catches: exit_stress exiting 77 (no patched host) treated as a pass."""
        r = Results(shapes=(2,))
        r.put("l1/l2-2vcpu/rc/exit_stress", "77 1.0 480")
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("exit 77", line_of(out, "L2 2-vCPU"))

    def test_host_stage_failure_stops_with_infra(self):
        """Catches: a failed kernel build followed by a verdict that is not infra."""
        r = Results()
        r.put("stages.tsv", "deps\tPASS\t1.0\t\nkernel\tINFRA\t30.0\texit 3\n")
        os.remove(os.path.join(r.dir, "l1.end"))
        r.put("logs/kernel.log", "build-kernel: PATCH DOES NOT APPLY: x.patch\n")
        code, out, err = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("INFRASTRUCTURE FAILURE in: kernel", out)
        self.assertIn("PATCH DOES NOT APPLY", err)

    def test_incomplete_run_is_not_a_pass(self):
        """Catches: a run killed before L1 (nothing failed yet) printing PASS."""
        r = Results()
        r.put("stages.tsv", "deps\tPASS\t1.0\t\n")
        os.remove(os.path.join(r.dir, "l1.end"))
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("incomplete", out)

    def test_interrupted_row_is_infra(self):
        """Catches: the interrupt row nested-run records not failing the verdict."""
        r = Results()
        r.put("stages.tsv", "deps\tPASS\t1.0\t\ninterrupted\tINFRA\t0\tinterrupted by a signal\n")
        code, out, _ = r.run()
        self.assertEqual(code, 3, out)
        self.assertIn("interrupted", out)


    def test_hostile_run_folder(self):
        """ci/sanitizers/hostile-run's folder (one L1 stage, hostile, and a
        kernel given): catches its verdict drifting from nested-run's, and a
        --patch series not reaching scan-klog's attribution."""
        r = Results(shapes=())
        r.put("stages.tsv", "kernel\tSKIP\t0\t--kernel bzImage\n"
                            "project\tSKIP\t0\tbuilt\nimages\tPASS\t2.0\t\n")
        r.put("expected.tsv", "hostile\thostile in L1\tjunit/hostile.xml\n")
        for rel in ("l1/stages/harness.start", "l1/stages/harness.end", "l1/junit/harness.xml"):
            r.rm(rel)
        r.stage("hostile", "0 40.0 1680")
        r.put("l1/junit/hostile.xml", JUNIT_OK)
        r.put("l1/logs/hostile.log", "[  PASSED  ] 2 tests.\n")
        series = os.path.join(r.dir, "series")
        os.makedirs(series)
        r.put("series/0001-x.patch", "--- a/arch/x86/kvm/x.c\n+++ b/arch/x86/kvm/x.c\n")
        r.put("run.conf", f"accel=tcg\nsanitizer=kasan\npatch_dir={series}\n")
        calls = []
        real_run = verdict.subprocess.run

        def spy(cmd, **kw):
            calls.append(cmd)
            return real_run(cmd, **kw)
        with mock.patch.object(verdict.subprocess, "run", spy):
            code, out, _ = r.run()
        self.assertEqual(code, 0, out)
        self.assertIn("PASS", line_of(out, "hostile in L1"))
        if calls:  # scan-klog is there: the series given, a Markdown table written
            self.assertEqual(calls[0][calls[0].index("--patch") + 1], series)
            self.assertTrue(os.path.exists(os.path.join(r.dir, "logs", "klog-L1.md")))
        r.put("l1/stages/hostile.end", "1 40.0 1680")
        r.put("l1/junit/hostile.xml", JUNIT_FAIL)
        code, out, _ = r.run()
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL", line_of(out, "hostile in L1"))

class StageTableTest(unittest.TestCase):
    """verdict.py --stage-table: ci/bochs/run-l1's verdict from its rows."""

    def judge(self, tsv):
        d = tempfile.mkdtemp(prefix="verdict_test.")
        atexit.register(shutil.rmtree, d, True)
        with open(os.path.join(d, "stages.tsv"), "w") as f:
            f.write(tsv)
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            code = verdict.main(["--results", d, "--stage-table", "vmx.ept.2vcpu"])
        import xml.etree.ElementTree as ET
        suite = ET.parse(os.path.join(d, "junit", "run-l1.xml")).getroot()
        return code, out.getvalue(), suite

    def test_worst_row_wins_and_total_is_not_a_stage(self):
        """A failed step hidden behind a PASS total (or a JUnit that counts
        the total as a test) would pass a broken patch."""
        code, out, suite = self.judge("iso\tPASS\t1.0\t\nharness\tFAIL\t9.0\texit 1\n"
                                      "exitdump\tSKIP\t2.0\tabsent\ntotal\tPASS\t12.0\t\n")
        self.assertEqual(code, 1, out)
        self.assertIn("verdict: FAIL", out)
        self.assertEqual((suite.get("tests"), suite.get("failures"), suite.get("skipped")), ("3", "1", "1"))

    def test_infra_beats_fail(self):
        """A step that lost its results says nothing about the patch."""
        code, out, _ = self.judge("harness\tFAIL\t9.0\texit 1\nresults\tINFRA\t\tlost\n")
        self.assertEqual(code, 3, out)

    def test_old_header_row_is_not_a_stage(self):
        """Folders from before the shared rows start with a header line."""
        code, out, suite = self.judge("stage\tstatus\tseconds\tnote\nharness\tPASS\t9.0\t\n")
        self.assertEqual(code, 0, out)
        self.assertEqual(suite.get("tests"), "1")


if __name__ == "__main__":
    unittest.main()
