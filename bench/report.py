#!/usr/bin/python3
"""Turns benchmark results into a Markdown report and PNG charts.

Two kinds of input, told apart by content:

* Google Benchmark JSON (--benchmark_out=FILE --benchmark_out_format=json),
  from any bench/ binary. One file gives a table; two or more files give the
  same table side by side with ratios against the first file (e.g. unpatched
  vs reference vs atomic64 kernel, or three repeated runs: --spread checks
  that their medians agree).
* boot_profile JSON (bench/boot_profile): per-reason exit counts read at the
  L2's first user-space instruction and after the stress run; the report
  lists totals, the most frequent reasons and what the run in between added.

Usage:
  report.py [--out PREFIX] [--labels A,B,..] [--spread PCT]
            [--target-overhead PCT] FILE.json [FILE.json ...]

Writes PREFIX.md and PREFIX-<family>.png (PREFIX-boot.png for profiles) and
prints the Markdown. Uses Debian's python3-matplotlib; without it the
Markdown is still written and the PNGs are skipped with a message.
Exit status: 0 ok, 1 a --spread or --target-overhead check failed, 2 bad input.
"""

import argparse
import json
import math
import os
import statistics
import sys

# Published figures for the same round trips on recent Intel hardware
# (kvm-unit-tests x86/vmexit), in TSC cycles per exit. Only a yardstick:
# where a row stands against it says little unless the run is on real
# hardware with real VMX/SVM exits.
ANCHORS = {
    "cpuid": (1000, 1300, "kvm-unit-tests vmexit cpuid"),
    "io_kernel": (1400, 2400, "kvm-unit-tests vmexit inl_pmtimer / in-kernel port I/O"),
    # "several thousand cycles more than in-kernel I/O"
    "io_user": (1400 + 2000, 2400 + 8000, "in-kernel I/O plus a userspace round trip"),
}

# Counters that carry the figure of a row, most specific first; benchmarks
# put cycles and ns in counters because their real_time may be a wall-clock
# mean (see bench/README.md).
CYCLE_KEYS = ("cycles_per_exit", "host_cycles_per_exit", "cycles_per_update", "cycles_per_op")
NS_KEYS = ("ns_per_exit", "ns_per_update", "ns_per_op")
THREAD_KEYS = ("vcpus", "threads")
# Counters shown as extra columns when a family has them.
SIDE_COUNTERS = (
    ("kvm_exits_per_op", "KVM exits/op"),
    ("exits_per_op", "exits/op"),
    ("host_cycles_per_exit", "host cycles/exit"),
    ("host_share", "host share"),
)
TIME_TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


class InputError(Exception):
    pass


# --------------------------------------------------------------------------
# Google Benchmark JSON


def parse_name(run_name):
    """'BM_X/variant/vcpus:2/manual_time' -> ('BM_X', 'variant', 2)."""
    parts = run_name.split("/")
    family, variant, threads = parts[0], [], 1
    for p in parts[1:]:
        key, sep, val = p.partition(":")
        if sep and key in THREAD_KEYS:
            threads = int(val)
        elif p in ("manual_time", "real_time", "process_time") or p.startswith(
            ("min_time:", "repeats:", "iterations:")
        ):
            continue
        else:
            variant.append(p)
    return family, "/".join(variant) or "-", threads


def pick(entry, keys):
    for k in keys:
        if k in entry and isinstance(entry[k], (int, float)):
            return float(entry[k])
    return None


def figures(entry):
    """(cycles, ns) of one benchmark entry; either may be None."""
    if "no figure" in entry.get("label", ""):
        return None, None  # the benchmark says it measured nothing usable
    cycles = pick(entry, CYCLE_KEYS)
    ns = pick(entry, NS_KEYS)
    # real_time is the figure only for benchmarks without counters; next to
    # a cycles counter it is a wall-clock mean that would mislead.
    if ns is None and cycles is None and "real_time" in entry:
        ns = float(entry["real_time"]) * TIME_TO_NS.get(entry.get("time_unit", "ns"), 1.0)
    return cycles, ns


class Row:
    """One benchmark (family, variant, threads) of one file."""

    def __init__(self, family, variant, threads):
        self.family, self.variant, self.threads = family, variant, threads
        self.samples = []  # (cycles, ns) per repetition
        self.agg = {}  # aggregate_name -> (cycles, ns)
        self.error = None
        self.label = ""
        self.counters = {}

    def _stat(self, idx, name):
        if name in self.agg and self.agg[name][idx] is not None:
            return self.agg[name][idx]
        vals = [s[idx] for s in self.samples if s[idx] is not None]
        if not vals:
            return None
        if name == "median":
            return statistics.median(vals)
        if name == "stddev":
            # One sample has no spread to speak of: "-" rather than 0.0%.
            return statistics.stdev(vals) if len(vals) > 1 else None
        return None

    def median(self, idx):
        return self._stat(idx, "median")

    def stddev(self, idx):
        return self._stat(idx, "stddev")

    def cv(self, idx):
        m, s = self.median(idx), self.stddev(idx)
        if m in (None, 0) or s is None:
            return None
        return s / m

    def reps(self):
        return max(len(self.samples), 1)

    def key(self):
        return (self.family, self.variant, self.threads)

    def value(self):
        """The row's headline figure: cycles if known, else ns."""
        c = self.median(0)
        return (c, "cycles") if c is not None else (self.median(1), "ns")


def load_bench(doc, path):
    rows = {}
    for b in doc.get("benchmarks", []):
        run_name = b.get("run_name") or b.get("name", "")
        family, variant, threads = parse_name(run_name)
        row = rows.setdefault((family, variant, threads), Row(family, variant, threads))
        if b.get("error_occurred"):
            row.error = b.get("error_message", "error")
            continue
        if b.get("label"):
            row.label = b["label"]
        if b.get("run_type") == "aggregate":
            row.agg[b.get("aggregate_name")] = figures(b)
        else:
            row.samples.append(figures(b))
            for k, v in b.items():
                if k not in ("real_time", "cpu_time", "iterations") and isinstance(v, (int, float)):
                    row.counters.setdefault(k, []).append(float(v))
    if not rows:
        raise InputError(f"{path}: no benchmarks in file")
    return rows


def fmt(v):
    """Three significant figures, thousands separated from 1,000 up."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def anchor_note(row):
    a = ANCHORS.get(row.variant)
    c = row.median(0)
    if not a or c is None or not row.family.startswith(("BM_Ring0Exit", "BM_GuestExit")):
        return ""
    lo, hi, _ = a
    where = "below" if c < lo else "above" if c > hi else "within"
    return f"{where} {lo:,}-{hi:,}"


def bench_markdown(files, labels, args):
    out = []
    notes = []
    for (doc, _), label in zip(files, labels):
        ctx = doc.get("context", {})
        for k, v in sorted(ctx.items()):
            if k.startswith("bench.") and f"{k}: {v}" not in notes:
                notes.append(f"{k}: {v}")
        out.append(
            f"- **{label}**: {ctx.get('executable', '?')} on {ctx.get('host_name', '?')}, "
            f"{ctx.get('date', '?')}, {ctx.get('num_cpus', '?')} CPUs at "
            f"{ctx.get('mhz_per_cpu', '?')} MHz, load {ctx.get('load_avg', '?')}"
        )
    if notes:
        out.append("")
        out += [f"> {n}" for n in notes]
    exits = any(k[0].startswith(("BM_Ring0Exit", "BM_GuestExit", "BM_HostCycles"))
                for _, rows in files for k in rows)
    out.append("")
    out.append(
        "> Emulator timings (QEMU TCG, Bochs) are not hardware timings: compare ratios "
        "between kernels measured in the same run, not absolute cycles. On a paravirtual "
        "/dev/kvm (no VT-x/AMD-V) exits are batched, so a round trip there is not one "
        "hardware exit per operation."
        if exits else "> Figures are medians over repetitions; cv = stddev / median."
    )
    failed = False
    rowsets = [rows for _, rows in files]
    families = sorted({k[0] for rows in rowsets for k in rows})
    for fam in families:
        all_keys = {k for rows in rowsets for k in rows if k[0] == fam}
        # Rows without a figure in any file are only listed as skipped.
        keys = sorted((k for k in all_keys
                       if any(k in rows and not rows[k].error and rows[k].value()[0] is not None
                              for rows in rowsets)), key=lambda k: (k[1], k[2]))
        skipped = {}  # message -> {row: [labels]}
        for k in sorted(all_keys - set(keys), key=lambda k: (k[1], k[2])):
            for rows, label in zip(rowsets, labels):
                if k in rows and rows[k].error:
                    skipped.setdefault(rows[k].error, {}).setdefault(f"{k[1]} x{k[2]}", []).append(label)
        out.append(f"\n### {fam}\n")
        if not keys:
            out.append("No figures.")
        head = ["variant", "threads"]
        for i, label in enumerate(labels):
            head += [f"{label} cycles", f"{label} ns", f"{label} cv"]
            if i:
                head.append(f"{label}/{labels[0]}")
        if len(files) > 1 and args.spread is not None:
            head.append("spread")
        if any(anchor_note(r) for rows in rowsets for k, r in rows.items() if k[0] == fam):
            head.append("vs published")
        # Side counters of the first file that explain the figure.
        side = [(c, title) for c, title in SIDE_COUNTERS
                if any(c in r.counters for k, r in rowsets[0].items() if k[0] == fam)]
        head += [f"{labels[0]} {title}" for _, title in side]
        if keys:
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
        for k in keys:
            cells = [k[1], str(k[2])]
            base = rowsets[0].get(k)
            base_v = base.value() if base and not base.error else (None, None)
            medians = []
            anchor = ""
            errors = []
            for i, rows in enumerate(rowsets):
                r = rows.get(k)
                if r is None or r.error:
                    cells += ["-", "-", "-"]
                    if r is not None:
                        errors.append((labels[i], r.error))
                    if i:
                        cells.append("-")
                    continue
                cells += [fmt(r.median(0)), fmt(r.median(1)), pct(r.cv(0) if r.median(0) is not None else r.cv(1))]
                v, unit = r.value()
                medians.append(v)
                if i:
                    ratio = v / base_v[0] if base_v[0] and v is not None and unit == base_v[1] else None
                    cells.append("-" if ratio is None else f"{ratio:.3f}")
                    if (args.target_overhead is not None and ratio is not None and k[1] == "cpuid"
                            and fam.startswith(("BM_GuestExit", "BM_Ring0Exit"))):
                        ok = ratio <= 1 + args.target_overhead / 100
                        cells[-1] += " ok" if ok else " OVER"
                        failed |= not ok
                anchor = anchor or anchor_note(r)
            if len(files) > 1 and args.spread is not None:
                vals = [m for m in medians if m is not None]
                if len(vals) > 1 and statistics.median(vals):
                    s = (max(vals) - min(vals)) / statistics.median(vals)
                    ok = s <= args.spread / 100
                    failed |= not ok
                    cells.append(f"{pct(s)} {'ok' if ok else 'TOO WIDE'}")
                else:
                    cells.append("-")
            if "vs published" in head:
                cells.append(anchor or "-")
            for c, _ in side:
                vals = base.counters.get(c) if base and not base.error else None
                cells.append(fmt(statistics.median(vals)) if vals else "-")
            out.append("| " + " | ".join(cells) + " |")
            for label, e in errors:
                skipped.setdefault(e, {}).setdefault(f"{k[1]} x{k[2]}", []).append(label)
        for msg, rows_ in skipped.items():
            where = ", ".join(f"{r}" + ("" if len(ls) == len(labels) else f" ({'/'.join(ls)})")
                              for r, ls in rows_.items())
            out.append(f"\n> {fam} skipped: {where}: {msg}")
        extra = extra_counters(rowsets[0], keys)
        if extra:
            out.append("")
            out += extra
    if any(k[1] in ANCHORS for rows in rowsets for k in rows):
        out.append("\n### Published anchors (recent Intel hardware, cycles per exit)\n")
        for name, (lo, hi, src) in ANCHORS.items():
            out.append(f"- {name}: {lo:,}-{hi:,} ({src})")
    if args.spread is not None and len(files) > 1:
        out.append(f"\nSpread = (max - min) / median of the files' medians; limit {args.spread}%.")
    if args.target_overhead is not None:
        out.append(
            f"\nTarget: CPUID round trip at most {args.target_overhead}% above "
            f"{labels[0]}, at every vCPU count (flat from 1 to 4 vCPUs)."
        )
    return "\n".join(out) + "\n", failed


def extra_counters(rows, keys):
    """Counters worth a line of their own (lost updates, overlap, skips)."""
    lines = []
    for k in keys:
        r = rows.get(k)
        if not r or r.error:
            continue
        lost = r.counters.get("lost_updates")
        if lost and statistics.median(lost) > 0:
            lines.append(f"- {k[1]} x{k[2]}: lost {pct(statistics.median(lost))} of updates (racy counter)")
        ov = r.counters.get("overlap")
        if ov and k[2] > 1:
            lines.append(f"- {k[1]} x{k[2]}: threads overlapped in {pct(statistics.median(ov))} of windows")
        if r.label:
            lines.append(f"- {k[1]} x{k[2]}: {r.label}")
    return lines


def bench_charts(files, labels, prefix, plt):
    written = []
    rowsets = [rows for _, rows in files]
    families = sorted({k[0] for rows in rowsets for k in rows})
    for fam in families:
        keys = {k for rows in rowsets for k, r in rows.items()
                if k[0] == fam and not r.error and r.value()[0] is not None}
        if not keys:
            continue  # everything skipped: the Markdown says why
        variants = sorted({k[1] for k in keys})
        threads = sorted({k[2] for k in keys})
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
        # Left: per exit type at the fewest threads, one bar per file.
        t0 = threads[0]
        width = 0.8 / len(files)
        unit = "cycles"
        for i, (rows, label) in enumerate(zip(rowsets, labels)):
            vals = []
            for v in variants:
                r = rows.get((fam, v, t0))
                val, u = r.value() if r and not r.error else (None, "cycles")
                unit = u if val is not None else unit
                vals.append(val if val is not None else 0)
            xs = [j + i * width for j in range(len(variants))]
            ax1.bar(xs, vals, width, label=label)
        ax1.set_xticks([j + width * (len(files) - 1) / 2 for j in range(len(variants))])
        ax1.set_xticklabels(variants, rotation=30, ha="right")
        ax1.set_ylabel(f"{unit} per op (median)")
        ax1.set_title(f"{fam}: per type, {t0} thread/vCPU" + ("s" if t0 > 1 else ""))
        if len(files) > 1:
            ax1.legend()
        # Right: scaling with threads/vCPUs.
        for rows, label in zip(rowsets, labels):
            for v in variants:
                pts = [(t, rows[(fam, v, t)].value()[0]) for t in threads
                       if (fam, v, t) in rows and not rows[(fam, v, t)].error
                       and rows[(fam, v, t)].value()[0] is not None]
                if pts:
                    name = v if len(files) == 1 else f"{v} ({label})"
                    ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax2.set_xlabel("threads / vCPUs in parallel")
        ax2.set_ylabel(f"{unit} per op (median)")
        ax2.set_xticks(threads)
        ax2.set_yscale("log")
        ax2.set_title("scaling")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        path = f"{prefix}-{fam}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# --------------------------------------------------------------------------
# boot_profile JSON


def load_profile(doc, path):
    if not doc.get("patched"):
        return doc  # kept: the report says why there are no figures
    reasons = doc.get("reasons")
    if not isinstance(reasons, list):
        raise InputError(f"{path}: boot profile without a reasons list")
    return doc


def top(reasons, n, key="exits"):
    rs = [r for r in reasons if r.get(key)]
    return sorted(rs, key=lambda r: -r[key])[:n]


def delta(after, before):
    b = {r["reason"]: r for r in before["reasons"]}
    out = []
    for r in after["reasons"]:
        p = b.get(r["reason"], {})
        out.append({**r, "exits": r.get("exits", 0) - p.get("exits", 0),
                    "cycles": r.get("cycles", 0) - p.get("cycles", 0)})
    return out


def profile_markdown(profiles, labels, n_top):
    out = ["## Exit profile of a guest boot\n"]
    usable = []
    for doc, label in zip(profiles, labels):
        if not doc.get("patched"):
            out.append(f"- **{label}**: no figures: {doc.get('reason', 'host not patched')}")
        else:
            usable.append((doc, label))
    if not usable:
        return "\n".join(out) + "\n", []
    out.append("| stage | total exits | total cycles | cycles/exit | sum over reasons |")
    out.append("|---|---|---|---|---|")
    stages = []
    for doc, label in usable:
        stages.append((label, doc["reasons"], doc["total_exits"], doc["total_cycles"]))
    if len(usable) >= 2:
        a, b = usable[0][0], usable[-1][0]
        stages.append((f"{usable[-1][1]} - {usable[0][1]}", delta(b, a),
                       b["total_exits"] - a["total_exits"], b["total_cycles"] - a["total_cycles"]))
    for label, reasons, te, tc in stages:
        s = sum(r.get("exits", 0) for r in reasons)
        out.append(f"| {label} | {te:,} | {tc:,} | {fmt(tc / te if te else None)} | {s:,} |")
    for label, reasons, te, _ in stages:
        out.append(f"\n### Most frequent reasons: {label}\n")
        out.append("| reason | name | exits | share | cycles/exit |")
        out.append("|---|---|---|---|---|")
        for r in top(reasons, n_top):
            cpe = r["cycles"] / r["exits"] if r.get("exits") else None
            out.append(f"| {r['reason']} | {r.get('name', '?')} | {r['exits']:,} | "
                       f"{pct(r['exits'] / te if te else None)} | {fmt(cpe)} |")
    doc0 = usable[0][0]
    if doc0.get("leaves") == "course":
        out.append("\nFrom the course leaves alone (no discovery leaf: vendor and scope "
                   "unknown, counts are their 32-bit EAX); counts include the exits of "
                   "the CPUID queries that read them.")
    else:
        out.append(f"\nVendor {doc0.get('vendor', '?')}, scope "
                   f"{'host-wide' if doc0.get('host_wide') else 'this VM'}; counts "
                   "include the exits of the CPUID queries that read them.")
    return "\n".join(out) + "\n", stages


def profile_chart(stages, prefix, n_top, plt):
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 4.8), squeeze=False)
    for ax, (label, reasons, _, _) in zip(axes[0], stages):
        t = list(reversed(top(reasons, n_top)))
        ax.barh([f"{r['reason']} {r.get('name', '')}"[:28] for r in t], [r["exits"] for r in t])
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("exits")
        ax.set_xscale("log")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path = f"{prefix}-boot.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


# --------------------------------------------------------------------------


def load_pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        print("report.py: matplotlib missing (apt-get install python3-matplotlib): "
              "no PNG written", file=sys.stderr)
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="Google Benchmark or boot_profile JSON")
    ap.add_argument("--out", default="bench-report", help="output prefix (PREFIX.md, PREFIX-*.png)")
    ap.add_argument("--labels", help="comma-separated names for the files (default: file names)")
    ap.add_argument("--spread", type=float, metavar="PCT",
                    help="fail if the files' medians differ by more than PCT%% of their median")
    ap.add_argument("--target-overhead", type=float, metavar="PCT",
                    help="fail if a cpuid row of file 2.. is more than PCT%% above file 1")
    ap.add_argument("--top", type=int, default=10, help="reasons listed per boot profile stage")
    ap.add_argument("--title", default="Exit benchmark report")
    args = ap.parse_args(argv)

    labels = args.labels.split(",") if args.labels else [
        os.path.splitext(os.path.basename(f))[0] for f in args.files]
    if len(labels) != len(args.files):
        print("report.py: --labels needs one name per file", file=sys.stderr)
        return 2
    try:
        docs = []
        for f in args.files:
            with open(f) as fh:
                try:
                    docs.append(json.load(fh))
                except json.JSONDecodeError as e:
                    raise InputError(f"{f}: not JSON ({e})")
        kinds = {"boot" if d.get("tool") == "boot_profile" else "bench" for d in docs}
        if len(kinds) != 1:
            raise InputError("mix of benchmark and boot_profile files: report them separately")
        kind = kinds.pop()
        plt = load_pyplot()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        failed = False
        if kind == "bench":
            files = [(d, load_bench(d, f)) for d, f in zip(docs, args.files)]
            body, failed = bench_markdown(files, labels, args)
            pngs = bench_charts(files, labels, args.out, plt) if plt else []
        else:
            profiles = [load_profile(d, f) for d, f in zip(docs, args.files)]
            body, stages = profile_markdown(profiles, labels, args.top)
            pngs = profile_chart(stages, args.out, args.top, plt) if plt and stages else []
    except (InputError, OSError, KeyError, ValueError, TypeError) as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    md = f"# {args.title}\n\n" + body
    if pngs:
        md += "\n" + "\n".join(f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in pngs) + "\n"
    with open(args.out + ".md", "w") as fh:
        fh.write(md)
    print(md)
    print("wrote " + ", ".join([args.out + ".md"] + pngs), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
