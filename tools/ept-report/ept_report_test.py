#!/usr/bin/env python3
"""Unit tests of ept-report on synthetic exitdump outputs (ctest label unit)."""
import importlib.machinery
import importlib.util
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_loader = importlib.machinery.SourceFileLoader("ept_report", os.path.join(HERE, "ept-report"))
_spec = importlib.util.spec_from_loader("ept_report", _loader)
ept_report = importlib.util.module_from_spec(_spec)
_loader.exec_module(ept_report)


def dump(mode, reasons, total, **meta):
    m = {"mode": mode, "vendor": "vmx", "abi": "sjsu", "iterations": "100", "touch_pages": "50",
         "switches": "10", "vmcalls": "100", "dump_cpuids": "159"}
    m.update(meta)
    lines = ["# exitdump 1"] + [f"meta\t{k}\t{v}" for k, v in m.items()]
    lines.append(f"total\t{total[0]}\t{total[1]}")
    lines += [f"reason\t{r}\t{n}\t{e}\t{c}" for r, (n, e, c) in reasons.items()]
    return "\n".join(lines) + "\n"


EPT = dump("ept", {0: ("EXCEPTION_NMI", 0, 0), 10: ("CPUID", 259, 2590), 14: ("INVLPG", 0, 0),
                   28: ("CR_ACCESS", 1, 10), 48: ("EPT_VIOLATION", 60, 6000), 49: ("EPT_MISCONFIG", 0, 0)},
           (320, 8600))
SHADOW = dump("shadow", {0: ("EXCEPTION_NMI", 70, 14000), 10: ("CPUID", 259, 2590), 14: ("INVLPG", 10, 500),
                         28: ("CR_ACCESS", 22, 440), 48: ("EPT_VIOLATION", 0, 0), 49: ("EPT_MISCONFIG", 0, 0)},
              (361, 17530))


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.text = ept_report.report(ept_report.parse(EPT), ept_report.parse(SHADOW))

    def test_rows_with_both_modes_and_ratios(self):
        # Catches columns swapped or the ratio inverted.
        self.assertIn("| 28 | CR_ACCESS | 1 | 22 | 22.00x | 10 | 440 | 44.00x |", self.text)
        self.assertIn("| 10 | CPUID | 259 | 259 | 1.00x | 2590 | 2590 | 1.00x |", self.text)

    def test_one_sided_rows_are_named(self):
        self.assertIn("| 48 | EPT_VIOLATION | 60 | 0 | only EPT |", self.text)
        self.assertIn("| 14 | INVLPG | 0 | 10 | only shadow |", self.text)
        self.assertIn("Exits only under shadow paging: EXCEPTION_NMI (0): 70; INVLPG (14): 10.", self.text)
        self.assertIn("Exits only under EPT: EPT_VIOLATION (48): 60.", self.text)

    def test_quiet_reasons_are_left_out(self):
        self.assertNotIn("EPT_MISCONFIG", self.text)

    def test_totals(self):
        self.assertIn("| | **total** | **320** | **361** | **1.13x** | **8600** | **17530** | **2.04x** |", self.text)

    def test_arguments_in_the_wrong_order_are_refused(self):
        with self.assertRaises(ept_report.DumpError):
            ept_report.report(ept_report.parse(SHADOW), ept_report.parse(EPT))

    def test_different_workloads_are_refused(self):
        other = dump("shadow", {10: ("CPUID", 1, 1)}, (1, 1), iterations="200")
        with self.assertRaisesRegex(ept_report.DumpError, "iterations 100 vs 200"):
            ept_report.report(ept_report.parse(EPT), ept_report.parse(other))

    def test_absent_abi_output_is_not_a_dump(self):
        with self.assertRaises(ept_report.DumpError):
            ept_report.parse("exitdump: the exit-statistics leaves are absent: ...\n")


if __name__ == "__main__":
    unittest.main()
