#!/usr/bin/env python3
"""Unit tests of ci/grade (ctest label `unit`) with a fake runner
(testdata/fake-nested-run) that writes the results folder a real nested run
would, and of the sample class it is shown on. Every test names the grading
bug that fails it."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
GRADE = os.path.join(HERE, "..", "grade")
FAKE = os.path.join(HERE, "testdata", "fake-nested-run")


def read(path):
    with open(path) as f:
        return f.read()


def patch(path, marker, touches="arch/x86/kvm/vmx/vmx.c"):
    with open(path, "w") as f:
        f.write(f"Subject: [PATCH] {marker}\n---\n"
                f"diff --git a/{touches} b/{touches}\n--- a/{touches}\n+++ b/{touches}\n"
                f"@@ -1,1 +1,2 @@\n line\n+/* {marker} */\n")


class Batch(unittest.TestCase):
    """A temporary folder of submissions (self.dir) graded into self.out by
    the fake runner; subclasses fill self.dir in setUp."""

    def tearDown(self):
        self.tmp.cleanup()

    def grade(self, *extra):
        env = dict(os.environ, GRADE_RUNNER=FAKE)
        p = subprocess.run([sys.executable, GRADE, self.dir, "--out", self.out, *extra],
                           capture_output=True, text=True, env=env)
        return p.returncode, p.stderr


class Grade(Batch):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "subs")
        self.out = os.path.join(self.tmp.name, "out")
        os.makedirs(self.dir)
        patch(os.path.join(self.dir, "alice.patch"), "FAKE:PASS")
        patch(os.path.join(self.dir, "carol.diff"), "FAKE:NOAPPLY")
        patch(os.path.join(self.dir, "dave.patch"), "FAKE:NOBUILD")
        patch(os.path.join(self.dir, "erin.patch"), "FAKE:OOPS", "arch/x86/kvm/x86.c")
        patch(os.path.join(self.dir, "frank.patch"), "FAKE:BADSERIES")
        bob = os.path.join(self.dir, "bob")
        os.makedirs(bob)
        patch(os.path.join(bob, "0001-count.patch"), "FAKE:LOST", "arch/x86/kvm/svm/svm.c")
        with open(os.path.join(bob, "series"), "w") as f:
            f.write("0001-count.patch\n")
        with open(os.path.join(self.dir, "notes.txt"), "w") as f:
            f.write("not a submission\n")


    def summary(self):
        with open(os.path.join(self.out, "summary.csv")) as f:
            return {r["submission"]: r for r in csv.DictReader(f)}

    def card(self, name):
        with open(os.path.join(self.out, name, "scorecard.json")) as f:
            return json.load(f)

    def test_class_table_names_each_verdict_and_bug_class(self):
        """Catches: a failing submission summarised as PASS, a finding without
        its bug class, or an apply/build failure reported as INFRA."""
        rc, err = self.grade()
        self.assertEqual(rc, 0, err)
        s = self.summary()
        self.assertEqual(s["alice"]["verdict"], "PASS")
        self.assertEqual(s["bob"]["verdict"], "FAIL")
        self.assertEqual(s["bob"]["findings"], "lost updates")
        self.assertEqual(s["carol"]["verdict"], "ERROR")
        self.assertEqual(s["dave"]["verdict"], "ERROR")
        self.assertEqual(s["erin"]["verdict"], "FAIL")
        self.assertEqual(s["erin"]["findings"], "host oops")
        self.assertEqual(s["notes.txt"]["verdict"], "ERROR")
        self.assertEqual(s["frank"]["verdict"], "ERROR")
        md = read(os.path.join(self.out, "summary.md"))
        self.assertIn("Hunk #1 FAILED at 1636", md)
        self.assertIn("neither a series directory nor a .patch/.diff", md)
        self.assertIn("broken series: /subs/x/series names a missing file", md)

    def test_scorecard_carries_the_evidence(self):
        """Catches: a scorecard that names a bug class but not the numbers, or
        an ERROR that does not quote the compiler error."""
        self.grade()
        bob = self.card("bob")
        f = bob["findings"][0]
        self.assertEqual((f["check"], f["exit"], f["vcpus"], f["expected"], f["observed"],
                          f["shortfall"]), ("exact", "cpuid", 4, 8000, 7991, 9))
        self.assertIn("rubric=course", read(os.path.join(self.out, "bob", "scorecard.md")))
        dave = self.card("dave")
        self.assertIn("error: 'total_exits' undeclared", dave["paths"]["vmx"]["error"])
        self.assertIn("course leaves only", bob["paths"]["svm"]["host"])

    def test_path_follows_what_the_diff_touches(self):
        """Catches: a vmx.c-only submission judged on SVM (where its code never
        runs), or a vendor-neutral one judged on one vendor only."""
        self.grade()
        self.assertEqual(list(self.card("alice")["paths"]), ["vmx"])
        self.assertEqual(list(self.card("bob")["paths"]), ["svm"])
        self.assertEqual(list(self.card("erin")["paths"]), ["svm", "vmx"])
        argv = read(os.path.join(self.out, "alice", "vmx", "argv")).split("\n")
        self.assertIn("--vmx", argv)
        self.assertIn("course", argv)

    def test_base_goes_to_the_runner(self):
        """Catches: a class written on 6.1 judged on 6.12 regardless (every
        patch would be an ERROR), or a bad base that is not refused."""
        rc, err = self.grade("--only", "alice", "--base", "6.1")
        self.assertEqual(rc, 0, err)
        argv = read(os.path.join(self.out, "alice", "vmx", "argv")).split("\n")
        self.assertEqual(argv[argv.index("--base") + 1], "6.1")
        rc, err = self.grade("--only", "alice", "--base", "5.15")
        self.assertEqual(rc, 2)

    def test_tree_goes_to_the_runner(self):
        """Catches: a class's own kernel tree ignored (every series applied to
        Debian's 6.12, where a 5.15 patch does not apply), or a tree that is not
        a kernel, or one beside --base, not refused."""
        tree = tempfile.mkdtemp(prefix="grade_tree.")
        self.addCleanup(shutil.rmtree, tree, True)
        os.makedirs(os.path.join(tree, "arch", "x86", "kvm"))
        open(os.path.join(tree, "arch", "x86", "kvm", "x86.c"), "w").close()
        rc, err = self.grade("--only", "alice", "--tree", tree)
        self.assertEqual(rc, 0, err)
        argv = read(os.path.join(self.out, "alice", "vmx", "argv")).split("\n")
        self.assertEqual(argv[argv.index("--tree") + 1], os.path.realpath(tree))
        self.assertNotIn("--base", argv)
        rc, err = self.grade("--only", "alice", "--tree", tree, "--base", "6.1")
        self.assertEqual(rc, 2)
        self.assertIn("give one", err)
        rc, err = self.grade("--only", "alice", "--tree", self.out)
        self.assertEqual(rc, 2)
        self.assertIn("not a Linux source tree", err)

    def test_batch_is_resumable(self):
        """Catches: a re-run that grades everything again (hours for a class),
        or --redo that does not."""
        self.grade("--only", "alice")
        first = os.path.getmtime(os.path.join(self.out, "alice", "scorecard.json"))
        rc, err = self.grade("--only", "alice")
        self.assertIn("scorecard kept", err)
        self.assertEqual(os.path.getmtime(os.path.join(self.out, "alice", "scorecard.json")), first)
        rc, err = self.grade("--only", "alice", "--redo")
        self.assertIn("alice: grading", err)
        # The class table keeps everyone graded so far, not only --only's.
        self.grade("--only", "bob")
        self.assertEqual(sorted(self.summary()), ["alice", "bob"])

    def test_progress_lines_and_bad_input(self):
        """Catches: a silent batch, or bad input that crashes or passes."""
        rc, err = self.grade()
        self.assertRegex(err, r"\[2/7\] bob: FAIL \(lost updates\) in \d+ s; elapsed")
        rc, err = self.grade("--only", "zed")
        self.assertEqual(rc, 2)
        self.assertIn("no submission zed", err)
        env = dict(os.environ, GRADE_RUNNER=FAKE)
        p = subprocess.run([sys.executable, GRADE, os.path.join(self.tmp.name, "nope"), "--out",
                            self.out], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a directory of submissions", p.stderr)


class GitTrees(Batch):
    """A submission that is the student's own clone."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "subs")
        self.out = os.path.join(self.tmp.name, "out")
        tree = os.path.join(self.dir, "grace")
        os.makedirs(os.path.join(tree, "arch/x86/kvm/svm"))

        def git(*a):
            subprocess.run(["git", "-C", tree, "-c", "user.name=s", "-c", "user.email=s@x", *a],
                           check=True, capture_output=True)
        src = os.path.join(tree, "arch/x86/kvm/svm/svm.c")
        with open(src, "w") as f:
            f.write("line\n")
        git("init", "-q")
        git("add", "-A")
        git("commit", "-qm", "base")
        git("tag", "v6.12")
        for marker in ("FAKE:LOST", "FAKE:PASS"):
            with open(src, "a") as f:
                f.write(f"/* {marker} */\n")
            git("commit", "-qam", marker)


    def test_commits_since_the_merge_base_are_the_series(self):
        """Catches: a clone graded on its whole history or on its last commit
        only (the first commit's bug would be lost), or a git tree that is
        silently skipped when a base is given."""
        rc, err = self.grade("--git-base", "v6.12")
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.out, "grace", "scorecard.json")) as f:
            card = json.load(f)
        self.assertEqual(card["verdict"], "FAIL", err)
        self.assertEqual(list(card["paths"]), ["svm"])
        series = read(os.path.join(self.out, "grace", "series", "series")).split("\n")
        self.assertEqual(len([l for l in series if l.endswith(".patch")]), 2)

    def test_without_a_base_or_with_a_wrong_one_it_says_so(self):
        """Catches: a git tree graded against a guessed base, or a bad base
        that crashes the batch instead of an ERROR with git's reason."""
        rc, err = self.grade()
        self.assertIn("grade it with --git-base REF", err)
        rc, err = self.grade("--git-base", "v5.15")
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.out, "summary.md")) as f:
            md = f.read()
        self.assertIn("| grace | ERROR |", md)
        self.assertIn("git merge-base v5.15 HEAD", md)

class Ranking(unittest.TestCase):
    # Fails if the class table lists a submission's classes by name, so a
    # leaf that falls through reads "cycles missing or insane; leaf not
    # implemented ..." and the grader starts from a symptom, not the cause.
    def test_root_cause_first_unknown_last(self):
        import importlib.machinery
        import importlib.util
        loader = importlib.machinery.SourceFileLoader("grade", GRADE)
        spec = importlib.util.spec_from_loader("grade", loader)
        grade = importlib.util.module_from_spec(spec)
        loader.exec_module(grade)
        self.assertEqual(grade.ranked(["uncounted exits", "zzz new class", "cycles missing or insane",
                                       "leaf not implemented / falls through", "uncounted exits"]),
                         ["leaf not implemented / falls through", "uncounted exits",
                          "cycles missing or insane", "zzz new class"])


    # Fails when stress/guest/checks.h names a bug class that CLASS_RANK
    # (ci/grade's ranking, a copy of the names) does not list: the table
    # would rank a real finding last, after every symptom, as unknown.
    def test_every_class_exit_stress_names_is_ranked(self):
        import importlib.machinery
        import importlib.util
        import re
        loader = importlib.machinery.SourceFileLoader("grade", GRADE)
        spec = importlib.util.spec_from_loader("grade", loader)
        grade = importlib.util.module_from_spec(spec)
        loader.exec_module(grade)
        checks_h = os.path.join(os.path.dirname(GRADE), "..", "stress", "guest", "checks.h")
        with open(checks_h) as f:
            names = re.findall(r'inline constexpr std::string_view k\w+ = "([^"]+)";', f.read())
        self.assertGreater(len(names), 10)
        self.assertEqual([n for n in names if n not in grade.CLASS_RANK], [])


class SampleClass(unittest.TestCase):
    """ci/grade.d/sample-class, the eight-submission class README shows."""

    # Fails if a submission's series names a patch outside its folder (as
    # the atomic64 series once reached ../../ for the reference's patches),
    # or if an edit no longer changes its line because the correct patch
    # moved on: the "broken" submissions would then be correct ones.
    def test_eight_self_contained_submissions_two_one_line_breaks(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "class")
            p = subprocess.run([os.path.join(HERE, "..", "grade.d", "sample-class"), out],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            names = sorted(os.listdir(out))
            self.assertEqual(len(names), 8, names)
            for name in names:
                series = read(os.path.join(out, name, "series")).split()
                self.assertTrue(series, name)
                for f in series:
                    self.assertEqual(os.path.dirname(f), "", (name, f))
                    self.assertTrue(os.path.isfile(os.path.join(out, name, f)), (name, f))
            good = os.path.join(out, "01-correct-course-only")
            own = [f for f in os.listdir(good) if f.startswith("0001-KVM-x86-Report")][0]
            for broken, word in (("07-written-for-5.15", "static_call(kvm_x86_run)"),
                                 ("08-typo", "course_exit)")):
                a = read(os.path.join(good, own)).splitlines()
                b = read(os.path.join(out, broken, own)).splitlines()
                diff = [(x, y) for x, y in zip(a, b) if x != y]
                self.assertEqual(len(a), len(b), broken)
                self.assertEqual(len(diff), 1, (broken, diff))
                self.assertIn(word, diff[0][1])


if __name__ == "__main__":
    unittest.main()
