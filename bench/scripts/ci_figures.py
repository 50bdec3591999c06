#!/usr/bin/env python3
"""Figures for the CI gate (issue 6), measured here.

  1. noise: between-boot and within-boot coefficient of variation of the headline metrics;
  2. A/A: `inv ci` with no series (baseline == candidate) repeated --aa-trials times: false alarms;
  3. the slow-post fixture series with --per-patch: verdict, exit code, the patch named;
  4. minimum detectable effect achieved and the wall time of each whole `inv ci`.

Runs in the developer's cache (kernels are reused: a warm run only boots).
Run: .venv/bin/python bench/scripts/ci_figures.py [--rounds 3] [--aa-trials 3] [--accel icount]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from watchbench.ci import CiOptions, attribute, run_ci
from watchbench.progress import Progress
from watchbench.settings import Settings

HEADLINE = ("ns_per_op", "ns_per_record", "records_per_s")
SLOW = Path(__file__).resolve().parents[2] / "tests" / "data" / "patches" / "slow-post"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="boots per kernel")
    parser.add_argument("--aa-trials", type=int, default=3, help="A/A repetitions")
    parser.add_argument("--accel", default="icount", help="accelerator")
    args = parser.parse_args()
    settings = Settings()
    progress = Progress("ci-figures", every=60)
    out = Path(tempfile.mkdtemp(prefix="wb-ci-figures-"))

    aa_alarms, aa_rows, aa_times, mdes, clean_trials = 0, 0, [], [], 0
    for trial in range(args.aa_trials):
        start = time.monotonic()
        result = run_ci(settings, CiOptions(series="", rounds=args.rounds, accel=args.accel,
                                            out=out / f"aa{trial}"), progress=progress)
        aa_times.append(time.monotonic() - start)
        cmp = result.comparisons
        aa_rows += len(cmp)
        alarms = int((cmp["verdict"].isin(["regressed", "improved"])).sum())
        aa_alarms += alarms
        clean_trials += alarms == 0
        headline = cmp[cmp["metric"].astype(str).isin(HEADLINE)]
        mdes += [m for m in headline["mde"] if m == m]

    start = time.monotonic()
    slow = run_ci(settings, CiOptions(series=str(SLOW), rounds=args.rounds, accel=args.accel,
                                      per_patch=True, out=out / "slow"), progress=progress)
    slow_time = time.monotonic() - start

    print(f"\naccelerator {args.accel}, {args.rounds} boots per kernel, reports under {out}")
    print(f"A/A: {aa_alarms} false alarms in {aa_rows} metric comparisons over {args.aa_trials} "
          f"trials ({aa_alarms / max(aa_rows, 1):.2%} per metric; "
          f"{clean_trials} of {args.aa_trials} trials clean)")
    if mdes:
        mdes.sort()
        print(f"minimum detectable effect (headline metrics, alpha 0.01, 80 % power): "
              f"median {mdes[len(mdes) // 2]:.2%}, worst {mdes[-1]:.2%}")
    print(f"inv ci wall time, A/A (2 kernels): {', '.join(f'{t:.0f} s' for t in aa_times)}")
    print(f"inv ci wall time, slow-post --per-patch (3 kernels): {slow_time:.0f} s; "
          f"exit {slow.exit_code}; {len(slow.regressed)} regressed metrics")
    for line in attribute(slow.per_patch, slow.regressed)[:8]:
        print(line)


if __name__ == "__main__":
    main()
