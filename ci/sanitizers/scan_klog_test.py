#!/usr/bin/env python3
"""Unit tests of scan-klog on sample logs (ctest label `unit`).

Each sample under testdata/ is shaped like the real printk output of 6.12
(mm/kasan/report.c, lib/ubsan.c, kernel/kcsan/report.c, kernel/panic.c,
kernel/locking/lockdep.c). Every test names the scanner bug that fails it.
"""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCAN = os.path.join(HERE, "scan-klog")
DATA = os.path.join(HERE, "testdata")
PATCH = os.path.join(DATA, "patch")

loader = importlib.machinery.SourceFileLoader("scan_klog", SCAN)
spec = importlib.util.spec_from_loader("scan_klog", loader)
sk = importlib.util.module_from_spec(spec)
loader.exec_module(sk)


def run(*args):
    p = subprocess.run([sys.executable, SCAN, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def scan_file(name, patch=PATCH, stage="(unmarked)"):
    with open(os.path.join(DATA, name)) as f:
        return sk.scan(f.readlines(), sk.Patch.from_dir(patch) if patch else
                       sk.Patch(sk.DEFAULT_PATCH_GLOBS), stage)


class ExitStatus(unittest.TestCase):
    # Fails if the scanner reports a clean log (e.g. matches "WARNING:" text
    # that is not a splat, or treats stage markers as reports).
    def test_clean_log_exits_0(self):
        rc, out, _ = run(os.path.join(DATA, "clean.log"), "--stage", "boot")
        self.assertEqual(rc, 0, out)
        self.assertIn("0 report(s)", out)

    # Fails if any report class is not detected or does not fail the run.
    def test_every_report_log_exits_1(self):
        for name in ("kasan-patch.log", "ubsan-patch.log", "kcsan-mixed.log",
                     "warn-elsewhere.log", "lockdep-panic-leak.log"):
            with self.subTest(log=name):
                rc, out, _ = run(os.path.join(DATA, name), "--patch", PATCH)
                self.assertEqual(rc, 1, out)

    # Fails if a missing log is taken as "clean".
    def test_unreadable_log_exits_2(self):
        rc, _, err = run(os.path.join(DATA, "no-such.log"))
        self.assertEqual(rc, 2)
        self.assertIn("scan-klog:", err)

    # Fails if a typo in --elsewhere-ok silently allows nothing (or everything).
    def test_unknown_class_exits_2(self):
        rc, _, err = run(os.path.join(DATA, "clean.log"), "--elsewhere-ok", "KSCAN")
        self.assertEqual(rc, 2, err)


class Classification(unittest.TestCase):
    def classes(self, name):
        return [r.cls for r in scan_file(name)]

    # Each fails if that class's header regex is wrong for 6.12's format.
    def test_kasan(self):
        self.assertEqual(self.classes("kasan-patch.log"), ["KASAN"])

    def test_ubsan(self):
        self.assertEqual(self.classes("ubsan-patch.log"), ["UBSAN"])

    def test_kcsan_two_reports(self):
        self.assertEqual(self.classes("kcsan-mixed.log"), ["KCSAN", "KCSAN"])

    def test_warn(self):
        self.assertEqual(self.classes("warn-elsewhere.log"), ["WARN"])

    # Fails if lockdep's "WARNING: possible circular..." is taken as a plain
    # WARN, or kmemleak / NULL deref / panic are missed.
    def test_lockdep_leak_bug_panic(self):
        self.assertEqual(self.classes("lockdep-panic-leak.log"),
                         ["LOCKDEP", "LEAK", "BUG", "BUG"])

    # Fails if the timestamp prefix is not stripped (then "^BUG:" never matches)
    # or if dmesg's "<4>" level prefix breaks detection.
    def test_prefixes(self):
        for line in ("[   12.345679] BUG: KASAN: slab-out-of-bounds in f+0x1/0x2",
                     "<3>[ 1.000000] BUG: KASAN: slab-out-of-bounds in f+0x1/0x2",
                     "BUG: KASAN: slab-out-of-bounds in f+0x1/0x2\r\n"):
            with self.subTest(line=line):
                self.assertEqual([r.cls for r in sk.scan([line], sk.Patch([]), "s")], ["KASAN"])


class Attribution(unittest.TestCase):
    def whose(self, name, patch=PATCH):
        return [(r.cls, r.in_patch) for r in scan_file(name, patch)]

    # Fails if header functions are not matched against the patch's definitions.
    def test_kasan_in_patch_function(self):
        self.assertEqual(self.whose("kasan-patch.log"), [("KASAN", True)])

    # Fails if a UBSAN file:line in the patch's new file is not recognised.
    def test_ubsan_by_file_without_patch_dir(self):
        self.assertEqual(self.whose("ubsan-patch.log", patch=None), [("UBSAN", True)])

    # Fails if attribution is per log instead of per report: one race is the
    # patch's, the tick race is the kernel's.
    def test_kcsan_split(self):
        self.assertEqual(self.whose("kcsan-mixed.log"), [("KCSAN", True), ("KCSAN", False)])

    # Fails if the noise frame "? __warn" or the mere word "kvm" marks a
    # KVM-core WARN as the patch's.
    def test_warn_elsewhere(self):
        self.assertEqual(self.whose("warn-elsewhere.log"), [("WARN", False)])

    # Fails if hunk-header context (svm_handle_exit, edited by the patch) is
    # not picked up as "modified", or if it is taken as "defined".
    def test_patch_parsing(self):
        p = sk.Patch.from_dir(PATCH)
        self.assertIn("kvm_emulate_stats_cpuid", p.defined)
        self.assertIn("stats_sum_reason", p.defined)
        self.assertIn("svm_handle_exit", p.modified)
        self.assertNotIn("svm_handle_exit", p.defined)
        self.assertTrue(p.owns_file("arch/x86/kvm/exit_stats.c"))
        self.assertFalse(p.owns_file("arch/x86/kvm/x86.c"))

    # Fails if a KASAN "Allocated by task" trace (where memory came from) is
    # used for attribution: kvm_create_vm would drag a foreign bug into the patch.
    def test_allocation_trace_ignored(self):
        log = ["BUG: KASAN: slab-use-after-free in foreign_fn+0x1/0x2",
               "Read of size 8 at addr ffff by task t/1",
               "Call Trace:", " foreign_fn+0x1/0x2", " caller+0x1/0x2",
               "Allocated by task 1:", " kvm_emulate_stats_cpuid+0x1/0x2"]
        r = sk.scan(log, sk.Patch.from_dir(PATCH), "s")
        self.assertEqual([x.in_patch for x in r], [False])

    # Fails if an edited (not defined) function deep in the stack counts: it
    # is on nearly every KVM exit path.
    def test_edited_function_counts_only_on_top(self):
        log = ["BUG: kernel NULL pointer dereference, address: 0",
               "Call Trace:", " foreign_fn+0x1/0x2", " svm_handle_exit+0x1/0x2"]
        self.assertEqual([x.in_patch for x in sk.scan(log, sk.Patch.from_dir(PATCH), "s")], [False])
        log[2] = " svm_handle_exit+0x1/0x2"
        self.assertEqual([x.in_patch for x in sk.scan(log, sk.Patch.from_dir(PATCH), "s")], [True])


    # Fails if an oops is attributed by its guessed frames only: a kernel
    # without frame pointers prints every frame as "? ...", and then only
    # the RIP line says whose code faulted.
    def test_oops_rip_in_patch_function_with_guessed_frames(self):
        log = ["BUG: unable to handle page fault for address: ffff888400645008",
               "#PF: supervisor read access in kernel mode",
               "Oops: Oops: 0000 [#1] SMP",
               "RIP: 0010:%s+0x35/0x1a0",
               "Call Trace:", " <TASK>", " ? kvm_emulate_cpuid+0x50/0x60", " </TASK>"]
        patch = sk.Patch.from_dir(PATCH)
        fn = next(iter(patch.defined))
        log[3] = log[3] % fn
        self.assertEqual([x.in_patch for x in sk.scan(log, patch, "s")], [True])
        log[3] = "RIP: 0010:fdget+0x35/0x1a0"
        self.assertEqual([x.in_patch for x in sk.scan(log, patch, "s")], [False])

    # Fails if a report with no RIP line (a sleeping call with interrupts
    # off, dump_stack only) is never attributed on a kernel whose unwinder
    # only guesses: its "? ..." frames are then all there is.
    def test_no_rip_and_only_guessed_frames_count_the_guesses(self):
        log = ["BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283",
               "in_atomic(): 1, irqs_disabled(): 1, non_block: 0, pid: 92, name: qemu-system-x86",
               "Call Trace:", " <TASK>", " ? dump_stack_lvl+0x4f/0x60",
               " ? __might_resched+0x102/0x160", " ? mutex_lock+0x15/0x30",
               " ? %s+0xc2/0x100", " ? kvm_arch_vcpu_ioctl_run+0x5c2/0x21a0", " </TASK>"]
        patch = sk.Patch.from_dir(PATCH)
        fn = next(iter(patch.defined))
        log[7] = log[7] % fn
        self.assertEqual([x.in_patch for x in sk.scan(log, patch, "s")], [True])
        log[7] = " ? futex_wake+0x127/0x140"
        self.assertEqual([x.in_patch for x in sk.scan(log, patch, "s")], [False])


    # Fails if a CPU's backtrace by NMI (SysRq l on an L1 that stopped
    # responding) is not read, or fails a log although it shows an idle
    # CPU: it says where a CPU was, a finding only in the patch's code.
    def test_nmi_backtrace_fails_only_in_the_patch(self):
        log = ["sysrq: Show backtrace of all active CPUs", "NMI backtrace for cpu 1",
               "CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 6.12.118 #5",
               "RIP: 0010:%s+0x13/0x20", "Call Trace:", " <TASK>",
               " ? default_idle+0x5/0x10", " </TASK>"]
        patch = sk.Patch.from_dir(PATCH)
        fn = next(iter(patch.defined))
        with tempfile.TemporaryDirectory() as d:
            for rip, in_patch, rc in ((fn, True, 1), ("pv_native_safe_halt", False, 0)):
                path = os.path.join(d, "console.log")
                with open(path, "w") as f:
                    f.write("\n".join(log).replace("%s", rip) + "\n")
                code, out, _ = run(path, "--patch", PATCH)
                self.assertEqual(code, rc, out)
                self.assertIn("NMI", out)
                self.assertEqual([r.in_patch for r in sk.scan(open(path).readlines(), patch, "s")],
                                 [in_patch])


class Stages(unittest.TestCase):
    # Fails if stage markers are ignored (the report would say "(unmarked)").
    def test_marker_names_stage(self):
        self.assertEqual([r.stage for r in scan_file("kcsan-mixed.log")],
                         ["kcsan-concurrency", "kcsan-concurrency"])

    # Fails if the stage sticks after its end marker.
    def test_end_marker_restores_default(self):
        log = ["kvm-exit-stats: stage fuzz begin", "kvm-exit-stats: stage fuzz end",
               "BUG: KASAN: x in f+0x1/0x2"]
        self.assertEqual([r.stage for r in sk.scan(log, sk.Patch([]), "boot")], ["boot"])


class ElsewhereOk(unittest.TestCase):
    # Fails if --elsewhere-ok hides the patch's own race or fails on the
    # kernel's: the KCSAN stage must fail only on the patch.
    def test_kcsan_stage_policy(self):
        log = os.path.join(DATA, "kcsan-mixed.log")
        rc, out, _ = run(log, "--patch", PATCH, "--elsewhere-ok", "KCSAN")
        self.assertEqual(rc, 1, out)
        self.assertIn("1 failing", out)
        self.assertIn("elsewhere, allowed", out)  # listed, not hidden
        with tempfile.TemporaryDirectory() as d:
            only_foreign = os.path.join(d, "foreign.log")
            with open(log) as f:
                lines = f.readlines()
            with open(only_foreign, "w") as f:
                f.writelines(lines[17:])  # the tick race only
            rc, out, _ = run(only_foreign, "--patch", PATCH, "--elsewhere-ok", "KCSAN")
            self.assertEqual(rc, 0, out)
            self.assertIn("tick_sched_do_timer", out)


class Outputs(unittest.TestCase):
    # Fails if the JSON or Markdown outputs lose reports or the in-patch flag.
    def test_json_and_markdown(self):
        with tempfile.TemporaryDirectory() as d:
            js, md = os.path.join(d, "r.json"), os.path.join(d, "r.md")
            rc, _, _ = run(os.path.join(DATA, "kcsan-mixed.log"), "--patch", PATCH,
                           "--json", js, "--markdown", md, "--stage", "kcsan")
            self.assertEqual(rc, 1)
            with open(js) as f:
                data = json.load(f)
            self.assertEqual([r["in_patch"] for r in data["reports"]], [True, False])
            self.assertEqual(data["failing"], 2)
            with open(md) as f:
                text = f.read()
            self.assertIn("| KCSAN | 1 | 1 |", text)
            self.assertIn("stats_count_exit / stats_sum_reason", text)


if __name__ == "__main__":
    unittest.main()
