#!/usr/bin/env python3
"""Figures of the CI gate, measured here with real kernels (`inv ci` under icount).

  1. A/A: `inv ci` with no series (baseline == candidate), --aa-trials times: exit codes,
     the rounds `--rounds auto` took, the wall time of each whole warm run;
  2. noise: between-boot and within-boot CV, effective n and MDE of the gated metrics;
  3. the slow-post fixture series with --per-patch: exit code, rounds, the patch named;
  4. the breaks-kernel-post fixture: exit code and the benchmark named as broken.

Runs in the developer's cache (kernels are reused: a warm run only boots).
Run: .venv/bin/python bench/scripts/ci_figures.py [--aa-trials 2] [--rounds auto]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from watchbench.flows.ci import CiOptions, CiResult, run_ci
from watchbench.host.progress import Progress
from watchbench.report import noise_table
from watchbench.report.text import attribute
from watchbench.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "patches"


def _gate(settings: Settings, options: CiOptions, progress: Progress) -> tuple[CiResult, float]:
    start = time.monotonic()
    result = run_ci(settings, options, progress=progress)
    return result, time.monotonic() - start


def _line(name: str, result: CiResult, seconds: float) -> str:
    return (f"{name}: exit {result.exit_code} ({result.answer}) after {result.rounds} "
            f"rounds, {seconds:.0f} s wall; stopped: {result.stop_reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", default="auto", help="auto or a number of rounds")
    parser.add_argument("--aa-trials", type=int, default=2, help="A/A repetitions")
    parser.add_argument("--accel", default="icount", help="accelerator")
    parser.add_argument("--skip-fixtures", action="store_true",
                        help="only the A/A trials (no slow-post, no breaks-kernel-post)")
    args = parser.parse_args()
    rounds = None if args.rounds == "auto" else int(args.rounds)
    settings = Settings()
    progress = Progress("ci-figures", every=60)
    out = Path(tempfile.mkdtemp(prefix="wb-ci-figures-"))
    lines = [f"accelerator {args.accel}, --rounds {args.rounds}, reports under {out}"]
    aa = None
    for trial in range(args.aa_trials):
        aa, seconds = _gate(settings, CiOptions(series="", rounds=rounds, accel=args.accel,
                                                out=out / f"aa{trial}"), progress)
        lines.append(_line(f"A/A trial {trial + 1}", aa, seconds))
    if aa is not None:
        lines += ["", noise_table(aa.comparisons)]
    if not args.skip_fixtures:
        slow, seconds = _gate(settings, CiOptions(series=str(FIXTURES / "slow-post"),
                                                  rounds=rounds, accel=args.accel,
                                                  per_patch=True, out=out / "slow"), progress)
        lines += ["", _line("slow-post --per-patch (3 kernels)", slow, seconds)]
        lines += [f"  {r}" for r in slow.regressed]
        lines += attribute(slow.per_patch, slow.regressed)[:8]
        broken, seconds = _gate(settings, CiOptions(series=str(FIXTURES / "breaks-kernel-post"),
                                                    rounds=rounds, accel=args.accel,
                                                    out=out / "broken"), progress)
        lines += ["", _line("breaks-kernel-post", broken, seconds)]
        lines += [f"  {r}" for r in broken.regressed]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
