#!/usr/bin/python3
"""Unit tests for bench/report.py on tiny synthetic inputs (ctest label unit).

Each test names the report bug it catches.
"""

import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench_doc(rows, reps=None, executable="guest_exit_benchmark"):
    """rows: {(variant, vcpus): cycles}. reps: list of multipliers -> repetitions."""
    out = []
    for (variant, n), cycles in rows.items():
        name = f"BM_GuestExit/{variant}/vcpus:{n}/manual_time"
        if reps is None:
            out.append({"name": name, "run_name": name, "run_type": "iteration",
                        "iterations": 100, "real_time": cycles / 2.0, "cpu_time": 1.0,
                        "time_unit": "ns", "cycles_per_exit": cycles,
                        "ns_per_exit": cycles / 2.0, "vcpus": n})
            continue
        for m in reps:
            out.append({"name": name, "run_name": name, "run_type": "iteration",
                        "repetitions": len(reps), "iterations": 100,
                        "real_time": cycles * m / 2.0, "cpu_time": 1.0, "time_unit": "ns",
                        "cycles_per_exit": cycles * m, "ns_per_exit": cycles * m / 2.0,
                        "vcpus": n})
    return {"context": {"executable": executable, "host_name": "t", "num_cpus": 2,
                        "mhz_per_cpu": 2000, "bench.note": "synthetic"},
            "benchmarks": out}


def profile_doc(counts, cycles_per_exit=100, stage="first_user_instruction"):
    reasons = [{"reason": r, "name": f"r{r}", "exits": c, "cycles": c * cycles_per_exit}
               for r, c in counts.items()]
    total = sum(counts.values())
    return {"tool": "boot_profile", "stage": stage, "patched": True, "vendor": "svm",
            "host_wide": False, "total_exits": total,
            "total_cycles": total * cycles_per_exit, "reasons": reasons}


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, doc):
        path = os.path.join(self.dir, name)
        with open(path, "w") as fh:
            json.dump(doc, fh)
        return path

    def run_report(self, *args):
        out = os.path.join(self.dir, "out")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = report.main(["--out", out, *args])
        md = ""
        if os.path.exists(out + ".md"):
            with open(out + ".md") as fh:
                md = fh.read()
        return rc, md, out

    def table_row(self, md, variant, n):
        """The first table row for (variant, n) as {header: cell}."""
        header = None
        for line in md.splitlines():
            if not line.startswith("|"):
                header = None
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == "variant":
                header = cells
            elif header and cells[0] == variant and cells[1] == str(n):
                return dict(zip(header, cells))
        self.fail(f"no row {variant} x{n} in:\n{md}")

    def test_one_file_gives_table_and_chart(self):
        # Catches: a family or a vCPU count dropped from the table; no PNG.
        f = self.write("a.json", bench_doc({("cpuid", 1): 1000, ("cpuid", 2): 1200,
                                            ("io_user", 1): 5000}))
        rc, md, out = self.run_report(f)
        self.assertEqual(rc, 0)
        self.assertEqual(self.table_row(md, "cpuid", 2)["a cycles"], "1,200")
        self.assertEqual(self.table_row(md, "cpuid", 2)["a ns"], "600")
        self.assertEqual(self.table_row(md, "io_user", 1)["a cycles"], "5,000")
        # Catches: one repetition shown as a 0.0% spread.
        self.assertEqual(self.table_row(md, "io_user", 1)["a cv"], "-")
        self.assertIn("synthetic", md)  # context notes carried through
        self.assertIn("not hardware timings", md)
        if HAVE_MPL:
            with open(out + "-BM_GuestExit.png", "rb") as fh:
                self.assertEqual(fh.read(8), PNG_MAGIC)

    def test_two_files_give_ratios(self):
        # Catches: ratio inverted (a/b), or taken against the wrong row.
        a = self.write("a.json", bench_doc({("cpuid", 1): 1000, ("cpuid", 4): 2000}))
        b = self.write("b.json", bench_doc({("cpuid", 1): 1010, ("cpuid", 4): 2500}))
        rc, md, _ = self.run_report("--labels", "unpatched,reference", a, b)
        self.assertEqual(rc, 0)
        self.assertIn("reference/unpatched", md)
        ratio = "reference/unpatched"
        self.assertEqual(self.table_row(md, "cpuid", 1)[ratio], "1.010")
        self.assertEqual(self.table_row(md, "cpuid", 4)[ratio], "1.250")

    def test_target_overhead_fails_over_budget(self):
        # Catches: the 2% CPUID target passing a 25% regression.
        a = self.write("a.json", bench_doc({("cpuid", 1): 1000, ("cpuid", 4): 2000}))
        b = self.write("b.json", bench_doc({("cpuid", 1): 1010, ("cpuid", 4): 2500}))
        rc, md, _ = self.run_report("--target-overhead", "2", a, b)
        self.assertEqual(rc, 1)
        self.assertIn("1.010 ok", md)
        self.assertIn("1.250 OVER", md)

    def test_repetitions_use_median_and_cv(self):
        # Catches: mean instead of median (an outlier repetition would move it).
        doc = bench_doc({("cpuid", 1): 1000}, reps=[0.9, 1.0, 3.0])
        rc, md, _ = self.run_report(self.write("r.json", doc))
        self.assertEqual(rc, 0)
        row = self.table_row(md, "cpuid", 1)
        self.assertEqual(row["r cycles"], "1,000")
        # cv = stddev / median, not stddev / mean
        self.assertEqual(row["r cv"], f"{100 * statistics.stdev([900, 1000, 3000]) / 1000:.1f}%")

    def test_aggregates_preferred(self):
        # Catches: ignoring Google Benchmark's own median aggregate.
        doc = bench_doc({("cpuid", 1): 1000})
        agg = dict(doc["benchmarks"][0], run_type="aggregate", aggregate_name="median",
                   cycles_per_exit=777.0)
        doc["benchmarks"].append(agg)
        rc, md, _ = self.run_report(self.write("g.json", doc))
        self.assertEqual(self.table_row(md, "cpuid", 1)["g cycles"], "777")

    def test_spread_across_runs(self):
        # Catches: three runs 10% apart reported as agreeing within 5%.
        files = [self.write(f"run{i}.json", bench_doc({("cpuid", 1): c}))
                 for i, c in enumerate([1000, 1020, 1100])]
        rc, md, _ = self.run_report("--spread", "5", *files)
        self.assertEqual(rc, 1)
        self.assertIn("TOO WIDE", md)
        rc, md, _ = self.run_report("--spread", "5", *files[:2])
        self.assertEqual(rc, 0)
        self.assertIn("2.0% ok", md)

    def test_skipped_benchmark_says_why(self):
        # Catches: a skipped (error_occurred) row silently vanishing.
        doc = bench_doc({("cpuid", 1): 1000})
        doc["benchmarks"].append({"name": "BM_HostCycles/cpuid/vcpus:1/manual_time",
                                  "run_name": "BM_HostCycles/cpuid/vcpus:1/manual_time",
                                  "error_occurred": True, "threads": 1,
                                  "error_message": "host has no exit-statistics leaves"})
        # Google Benchmark's own "threads" field (always 1 here) must not
        # override the vCPU count in the name.
        doc["benchmarks"].append({"name": "BM_HostCycles/cpuid/vcpus:2/manual_time",
                                  "run_name": "BM_HostCycles/cpuid/vcpus:2/manual_time",
                                  "error_occurred": True, "threads": 1,
                                  "error_message": "host has no exit-statistics leaves"})
        rc, md, _ = self.run_report(self.write("s.json", doc))
        self.assertEqual(rc, 0)
        self.assertIn("BM_HostCycles skipped: cpuid x1, cpuid x2: host has no exit-statistics leaves", md)

    def test_anchor_position(self):
        # Catches: anchors compared in ns, or "within" for an out-of-range value.
        f = self.write("a.json", bench_doc({("cpuid", 1): 1100, ("io_kernel", 1): 9000}))
        rc, md, _ = self.run_report(f)
        self.assertEqual(self.table_row(md, "cpuid", 1)["vs published"], "within 1,000-1,300")
        self.assertEqual(self.table_row(md, "io_kernel", 1)["vs published"], "above 1,400-2,400")

    def test_anchors_name_catalogue_rows(self):
        # Catches: an anchor keyed by a row the exit catalogue does not have
        # (renamed or invented there), which no benchmark row would ever meet.
        path = os.environ.get("EXITSTATS_CATALOGUE")
        if not path:
            self.skipTest("EXITSTATS_CATALOGUE unset (ctest points it at build/exitstats/catalogue.json)")
        with open(path) as f:
            names = {row["name"] for row in json.load(f)}
        self.assertIn("cpuid", names)
        self.assertEqual(set(report.ANCHORS) - names, set(), "anchors without a catalogue row")

    def test_boot_profile_totals_top_and_delta(self):
        # Catches: top reasons unsorted, the stress delta not subtracted.
        first = self.write("boot.json", profile_doc({1: 50, 10: 300, 30: 900, 48: 120}))
        after = self.write("after.json", profile_doc({1: 80, 10: 5300, 30: 1000, 48: 130},
                                                     stage="after_stress"))
        rc, md, out = self.run_report("--labels", "boot,after", first, after)
        self.assertEqual(rc, 0)
        self.assertIn("| boot | 1,370 |", md)
        self.assertIn("| after - boot | 5,140 |", md)
        boot_top = md.split("Most frequent reasons: boot")[1].split("###")[0]
        self.assertLess(boot_top.index("| 30 |"), boot_top.index("| 10 |"))
        delta_top = md.split("Most frequent reasons: after - boot")[1]
        self.assertIn("| 10 | r10 | 5,000 |", delta_top)
        if HAVE_MPL:
            with open(out + "-boot.png", "rb") as fh:
                self.assertEqual(fh.read(8), PNG_MAGIC)

    def test_unpatched_profile_reported_not_charted(self):
        # Catches: an unpatched host's zeros shown as a profile.
        f = self.write("u.json", {"tool": "boot_profile", "patched": False,
                                  "reason": "host has no exit-statistics leaves"})
        rc, md, _ = self.run_report(f)
        self.assertEqual(rc, 0)
        self.assertIn("no figures: host has no exit-statistics leaves", md)

    def test_compare_kernels_script(self):
        # Catches: compare_kernels.sh passing a reference that is 5% over the
        # unpatched kernel at 4 vCPUs, or failing one that is within 2%.
        import subprocess
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_kernels.sh")
        un = self.write("un.json", bench_doc({("cpuid", 1): 1000, ("cpuid", 4): 1000}))
        at = self.write("at.json", bench_doc({("cpuid", 1): 1030, ("cpuid", 4): 1300}))
        good = self.write("good.json", bench_doc({("cpuid", 1): 1010, ("cpuid", 4): 1015}))
        bad = self.write("bad.json", bench_doc({("cpuid", 1): 1010, ("cpuid", 4): 1050}))
        out = os.path.join(self.dir, "cmp")
        run = lambda ref: subprocess.run([script, out, un, ref, at], capture_output=True)
        self.assertEqual(run(good).returncode, 0)
        with open(out + "-all.md") as fh:
            self.assertIn("atomic64/unpatched", fh.read())
        self.assertEqual(run(bad).returncode, 1)
        with open(out + "-reference.md") as fh:
            self.assertIn("1.050 OVER", fh.read())

    def test_bad_input(self):
        # Catches: garbage accepted, or a traceback instead of exit status 2.
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as fh:
            fh.write("{not json")
        self.assertEqual(report.main(["--out", os.path.join(self.dir, "o"), bad]), 2)
        empty = self.write("e.json", {"benchmarks": []})
        self.assertEqual(report.main(["--out", os.path.join(self.dir, "o"), empty]), 2)
        mixed = [self.write("m1.json", bench_doc({("cpuid", 1): 1})),
                 self.write("m2.json", profile_doc({10: 1}))]
        self.assertEqual(report.main(["--out", os.path.join(self.dir, "o"), *mixed]), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
