"""Helpers the benchmark scripts share: import paths, timing, and the row format of run_all."""

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def median_seconds(fn, repeats=5, warmup=1):
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(name, baseline_label, baseline, ours_label, ours, unit, higher_is_better=False):
    """One line of the benchmark table; ``ratio`` is how many times better ours is."""
    ratio = ours / baseline if higher_is_better else baseline / ours
    return {
        "name": name,
        "baseline_label": baseline_label,
        "baseline": baseline,
        "ours_label": ours_label,
        "ours": ours,
        "unit": unit,
        "ratio": ratio,
    }


def cells(r):
    """The baseline and ours columns of a row: label and figure to four significant digits."""
    return f"{r['baseline_label']} {r['baseline']:.4g}", f"{r['ours_label']} {r['ours']:.4g}"


def print_rows(rows, title=None):
    """Print rows as a fixed-width table."""
    if title:
        print(title)
    header = f"{'benchmark':<38} {'baseline':>22} {'ours':>22} {'unit':<10} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        base, ours = cells(r)
        print(f"{r['name']:<38} {base:>22} {ours:>22} {r['unit']:<10} {r['ratio']:>6.2f}x")


def markdown_rows(rows):
    """The same rows as a Markdown table, the form the README quotes."""
    lines = ["| benchmark | baseline | ours | unit | ratio |", "|---|---|---|---|---|"]
    for r in rows:
        base, ours = cells(r)
        lines.append(f"| {r['name']} | {base} | {ours} | {r['unit']} | {r['ratio']:.2f}x |")
    return "\n".join(lines)
