#!/usr/bin/env python3
"""Edit -> verdict: one changed file in the candidate, the baseline already built.

Copies the `slow-post` fixture series, changes one constant in the code its second patch
adds (so kernel/watch_queue.c, and only it, must be rebuilt), and runs `inv ci` on it
(`--rounds auto`), once with boots side by side (`--jobs` 2) and once one at a time, each
after a fresh edit. Uses the test cache (its tree and baseline kernel are reused). Run:
  .venv/bin/python bench/scripts/edit_to_verdict.py
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from watchbench.flows.ci import CiOptions, run_ci
from watchbench.host.progress import Progress
from watchbench.settings import Settings

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "data" / "patches" / "slow-post"


def edited_series(where: Path, loops: int) -> Path:
    series = where / f"slow-post-{loops}"
    shutil.copytree(FIXTURE, series)
    patch = next(series.glob("0002-*.patch"))
    text = patch.read_text()
    assert "i < 64;" in text
    patch.write_text(text.replace("i < 64;", f"i < {loops};"))
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Settings().cache_dir) + "-tests",
                        help="cache whose tree and baseline kernel are reused")
    args = parser.parse_args()
    settings = Settings().scratch(Path(args.cache), shared=("downloads", "ccache"))
    scratch = Path(tempfile.mkdtemp(prefix="wb-edit-"))
    progress = Progress("edit")
    rows = []
    for jobs in (2, 1):
        loops = random.randint(65, 4000)
        series = edited_series(scratch, loops)
        options = CiOptions.from_settings(settings, str(series), jobs=jobs,
                                          out=scratch / f"reports-{jobs}")
        start = time.monotonic()
        result = run_ci(settings, options, progress=progress)
        rows.append((jobs, loops, time.monotonic() - start, result))
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{'jobs':>4} {'edit':>10} {'verdict':>10} {'rounds':>6} {'wall':>7}")
    for jobs, loops, seconds, result in rows:
        print(f"{jobs:>4} {'i < ' + str(loops):>10} {result.answer:>10} {result.rounds:>6} "
              f"{seconds:>6.0f}s")


if __name__ == "__main__":
    main()
