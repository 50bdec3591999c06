#!/usr/bin/env python3
"""How often `inv check` catches each fixture bug class, and how long a warm check takes.

Runs the whole check (every step, the default stress time) --runs times on each series,
in turn (clean, fixture, fixture, ..., then again), on the test cache's Debian tree, and
prints for every run its exit code, its first finding and its wall time (debug kernel
composed from the cache, clients, boot, files), then per series the detection rate and
the median times. A clean series must pass every time; a fixture must fail every time
with the finding its bug class predicts. Run:
  .venv/bin/python bench/scripts/check_figures.py [--runs 2] [--series clean,filter-oob]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from bench_kernel import TEST_CACHE  # beside this script

from watchbench.flows.check import CheckOptions, run_check
from watchbench.host.progress import Progress
from watchbench.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "patches"
# What each series must give: the exit code, and the start of its first finding's text.
EXPECTED = {"clean": (0, ""),
            "filter-oob": (4, "kernel bug: BUG: KASAN: slab-out-of-bounds"),
            "post-without-rcu": (4, "kernel warning: WARNING: suspicious RCU usage"),
            "leak-on-removal": (4, "not ok")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=TEST_CACHE, help="cache whose Debian tree is used")
    parser.add_argument("--runs", type=int, default=2, help="checks of each series")
    parser.add_argument("--series", default=",".join(EXPECTED),
                        help=f"comma-separated, of: {', '.join(EXPECTED)}")
    args = parser.parse_args()
    names = [n.strip() for n in args.series.split(",") if n.strip()]
    unknown = sorted(set(names) - set(EXPECTED))
    if unknown:
        parser.error(f"unknown series {', '.join(unknown)}")
    out = Path(tempfile.mkdtemp(prefix="wb-check-figures-"))
    settings = replace(Settings().scratch(Path(args.cache), shared=("downloads", "ccache")),
                       runs_dir=out / "runs")
    progress = Progress("figures")
    rows: dict[str, list[tuple[bool, float, float]]] = {n: [] for n in names}
    for run in range(args.runs):
        for name in names:
            series = "" if name == "clean" else str(FIXTURES / name)
            progress.step(f"run {run + 1}/{args.runs}: {name}")
            result = run_check(settings, CheckOptions.from_settings(
                settings, series, accel="tcg", out=out / f"{name}-{run + 1}"),
                progress=progress)
            code, start = EXPECTED[name]
            first = result.findings[0].line() if result.findings else "-"
            as_expected = result.exit_code == code and (
                not start or result.findings[0].what.startswith(start))
            rows[name].append((as_expected, result.seconds, result.booted.wall_seconds))
            print(f"{name:<17} run {run + 1}: exit {result.exit_code}, "
                  f"{'as expected' if as_expected else 'NOT AS EXPECTED'}, "
                  f"{result.seconds:.0f} s (boot {result.booted.wall_seconds:.0f} s); "
                  f"first finding: {first[:100]}", flush=True)
    print(f"\n{args.runs} whole checks of each series, tcg, stress "
          f"{settings.check.stress_seconds} s, reports under {out}")
    print(f"{'series':<17} {'as expected':>11} {'median s':>9} {'boot s':>7}")
    for name, got in rows.items():
        hits = sum(ok for ok, _, _ in got)
        print(f"{name:<17} {f'{hits}/{len(got)}':>11} "
              f"{statistics.median(s for _, s, _ in got):>9.0f} "
              f"{statistics.median(b for _, _, b in got):>7.0f}")


if __name__ == "__main__":
    main()
